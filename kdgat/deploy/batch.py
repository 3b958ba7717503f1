"""Micro-batching for a detector that has fallen behind: the frames of several complete
windows built into their graphs by one vectorised build_raw call.

When frames arrive faster than windows are scored (a replay at --speed max, a bus burst that
outran the detector), the detector keeps the frames from the next window to score onwards in a
FrameBlock. Once max_batch windows are complete, or the source has no frame waiting, the block's
windows are built at once: build_raw is vectorised over windows, so its ~60 numpy calls are paid
once per batch instead of once per window. The graphs equal the one-at-a-time path's bit for bit
(IncrementalWindow and build_raw are the same arithmetic; tests/e2e/test_deploy.py checks the
detector's scores, alerts and order on a real capture).
"""

from pathlib import Path
from typing import Any

import numpy as np

from kdgat.data.automotive.frames import Frames
from kdgat.data.automotive.graphs import build_raw


class FrameBlock:
    """The frames of a stream from frame `start` (the first window not yet scored) onwards."""

    def __init__(self, window: int, stride: int, has_time: bool) -> None:
        self.window, self.stride, self.has_time = window, stride, has_time
        self.start = 0  # stream index of the first frame held: the next window's start
        self.seen = 0  # frames pushed so far
        self._time: list[float] = []
        self._id: list[int] = []
        self._payload: list[bytes] = []
        self._dlc: list[int] = []
        self._label: list[int] = []

    def push(self, t: float, can_id: int, data: bytes, label: int) -> None:
        """Add the stream's next frame (not held when it lies before the next window's start:
        a stride longer than the window skips frames)."""
        self.seen += 1
        if self.seen <= self.start:
            return
        self._time.append(t)
        self._id.append(can_id)
        self._payload.append(
            data.ljust(8, b"\0") if len(data) < 8 else bytes(data[:8])
        )  # padded as readers pad
        self._dlc.append(len(data))
        self._label.append(1 if label > 0 else 0)

    @property
    def complete(self) -> int:
        """Windows whose every frame is held."""
        held = self.seen - self.start
        return 0 if held < self.window else (held - self.window) // self.stride + 1

    def take(self, count: int) -> list[dict[str, Any]]:
        """The graphs of the next `count` complete windows (build_raw's arrays, one dict per
        window, in IncrementalWindow.graph()'s layout), and drops the frames no later window needs."""
        w, s = self.window, self.stride
        stop = (count - 1) * s + w
        frames = Frames(
            source=Path("<stream>"),
            time=np.asarray(self._time[:stop], dtype=np.float64),
            can_id=np.asarray(self._id[:stop], dtype=np.int64),
            payload=np.frombuffer(b"".join(self._payload[:stop]), dtype=np.uint8).reshape(-1, 8),
            dlc=np.asarray(self._dlc[:stop], dtype=np.int8),
            label=np.asarray(self._label[:stop], dtype=np.int8),
            has_time=self.has_time,
        )
        raw = build_raw(frames, 0, stop, w, s)
        node_ptr, edge_ptr = raw["node_ptr"].tolist(), raw["edge_ptr"].tolist()
        graphs = []
        for g in range(count):
            n0, n1, e0, e1 = node_ptr[g], node_ptr[g + 1], edge_ptr[g], edge_ptr[g + 1]
            first = g * s
            graphs.append(
                {
                    "x": raw["x"][n0:n1],
                    "node_entity": raw["node_entity"][n0:n1],
                    "edge_index": raw["edge_index"][:, e0:e1],
                    "edge_attr": raw["edge_attr"][e0:e1],
                    "y": int(raw["y"][g]),
                    "frame_start": self.start + first,
                    "frame_stop": self.start + first + w,
                    "time_start": self._time[first],
                    "time_stop": self._time[first + w - 1],
                }
            )
        self.drop(count)
        return graphs

    def drop(self, count: int) -> None:
        """Move past the next `count` windows (scored elsewhere): their frames no later window needs."""
        drop = count * self.stride
        for column in (self._time, self._id, self._payload, self._dlc, self._label):
            del column[:drop]
        self.start += drop
