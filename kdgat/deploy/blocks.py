"""Frames handed to the detector in blocks: numpy arrays in, every window they complete out.

The per-frame path (Detector.feed / push) pays a Python call per frame, ~1.5 µs, which at a
stride of 100 costs more than building and scoring the window. A Block is a run of frames as
numpy arrays (as readers give them); BlockWindows keeps the frames from the next window to score
onwards as arrays, appends a block with one concatenate per column and builds the windows the
block completes with one vectorised build_raw call per chunk of them (graphs.py: the same
arithmetic as IncrementalWindow and kdgat.evaluate, so the same graphs bit for bit). Sources:
replay_blocks (a capture, as fast as possible or paced by its timestamps) and bus_blocks (a
python-can bus: whatever frames wait, drained into a block, with a bounded wait for more so a
window's latency stays bounded).
"""

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from kdgat.data.automotive.canlogs import message_problem
from kdgat.data.automotive.frames import Frames
from kdgat.data.automotive.graphs import build_raw


@dataclasses.dataclass
class Block:
    """Consecutive frames of a stream. payload: (n, 8) uint8 zero-padded past dlc; label: int8,
    -1 where unknown (a live bus). malformed: frames the source skipped before the block's last."""

    time: np.ndarray
    can_id: np.ndarray
    payload: np.ndarray
    dlc: np.ndarray
    label: np.ndarray
    malformed: int = 0

    def __len__(self) -> int:
        return int(self.time.shape[0])


def frames_block(frames: Frames, start: int, stop: int) -> Block:
    """frames[start:stop] as a block (labels -1 for an unlabelled capture)."""
    label = frames.label[start:stop] if frames.labelled else np.full(stop - start, -1, np.int8)
    return Block(
        frames.time[start:stop],
        frames.can_id[start:stop],
        frames.payload[start:stop],
        frames.dlc[start:stop],
        label,
    )


class BlockWindows:
    """The frames of a stream from frame `start` (the first window not yet scored) onwards, as
    arrays; take() builds the next complete windows' graphs in one build_raw call."""

    def __init__(self, window: int, stride: int, has_time: bool) -> None:
        self.window, self.stride, self.has_time = window, stride, has_time
        self.start = 0  # stream index of the first frame held: the next window's start
        self.seen = 0  # frames added so far
        self.frames = Frames(
            source=Path("<stream>"),
            time=np.zeros(0, np.float64),
            can_id=np.zeros(0, np.int64),
            payload=np.zeros((0, 8), np.uint8),
            dlc=np.zeros(0, np.int8),
            label=np.zeros(0, np.int8),
            has_time=has_time,
        )

    def extend(self, block: Block) -> None:
        """Append a block (frames before the next window's start are not held: a stride longer
        than the window skips frames)."""
        skip = min(max(self.start - self.seen, 0), len(block))
        self.seen += len(block)
        f = self.frames
        self.frames = dataclasses.replace(
            f,
            time=np.concatenate([f.time, np.asarray(block.time[skip:], np.float64)]),
            can_id=np.concatenate([f.can_id, np.asarray(block.can_id[skip:], np.int64)]),
            payload=np.concatenate([f.payload, np.asarray(block.payload[skip:], np.uint8)]),
            dlc=np.concatenate([f.dlc, np.asarray(block.dlc[skip:], np.int8)]),
            label=np.concatenate([f.label, (np.asarray(block.label[skip:]) > 0).astype(np.int8)]),
        )

    @property
    def complete(self) -> int:
        """Windows whose every frame is held."""
        held = self.seen - self.start
        return 0 if held < self.window else (held - self.window) // self.stride + 1

    def take(self, count: int) -> dict[str, Any]:
        """build_raw's arrays for the next `count` complete windows (node_ptr / edge_ptr split
        them), with their stream frame spans and times; drops the frames no later window needs."""
        w, s = self.window, self.stride
        stop = (count - 1) * s + w
        raw = build_raw(self.frames, 0, stop, w, s)
        first = np.arange(count, dtype=np.int64) * s
        raw["frame_start"] = self.start + first
        raw["frame_stop"] = self.start + first + w
        raw["time_start"] = self.frames.time[first]
        raw["time_stop"] = self.frames.time[first + w - 1]
        drop = min(count * s, len(self.frames))
        self.frames = self.frames.slice(drop, len(self.frames))
        self.start += count * s
        return raw


def replay_blocks(frames: Frames, size: int, realtime: bool = False) -> Iterator[Block]:
    """The capture in blocks of up to `size` frames; realtime: each block holds the frames whose
    time has come (paced by their timestamps), so a block waits for no frame."""
    n = len(frames)
    if not realtime or not frames.has_time:
        for k in range(0, n, size):
            yield frames_block(frames, k, min(k + size, n))
        return
    offset = frames.time - frames.time[0] if n else frames.time
    start_wall, k = time.perf_counter(), 0
    while k < n:
        due = int(np.searchsorted(offset, time.perf_counter() - start_wall, side="right"))
        if due <= k:  # nothing due yet: sleep until the next frame's time
            time.sleep(max(offset[k] - (time.perf_counter() - start_wall), 0.0))
            continue
        stop = min(due, k + size)
        yield frames_block(frames, k, stop)
        k = stop


def bus_blocks(
    bus, idle_timeout: float | None, max_frames: int | None, size: int, max_wait: float
) -> Iterator[Block]:
    """Frames from an open python-can bus in blocks: wait for a frame (up to idle_timeout
    seconds, then end), then take frames for up to max_wait seconds more or until the block
    holds `size`; malformed ones are counted in the block, not held. Ends after max_frames
    messages (the bus is then shut down)."""
    import can

    seen = 0
    rows: list[tuple[float, int, bytes, int]] = []
    malformed = 0
    try:
        while max_frames is None or seen < max_frames:
            deadline = None
            while len(rows) < size and (max_frames is None or seen < max_frames):
                if deadline is None:  # the block's first message: wait up to idle_timeout
                    timeout = idle_timeout
                else:
                    timeout = max(deadline - time.perf_counter(), 0.0)
                try:
                    msg = bus.recv(timeout=timeout)
                except can.CanError:  # a frame the interface could not decode: count it, go on
                    seen, malformed = seen + 1, malformed + 1
                    continue
                if msg is None:
                    break
                seen += 1
                if deadline is None:
                    deadline = time.perf_counter() + max_wait
                if message_problem(msg):
                    malformed += 1
                else:
                    rows.append((msg.timestamp, msg.arbitration_id, bytes(msg.data), len(msg.data)))
            if rows or malformed:
                yield _rows_block(rows, malformed)
                rows, malformed = [], 0
            if deadline is None:  # no message within idle_timeout: the bus went quiet
                return
    finally:
        bus.shutdown()


def _rows_block(rows: list[tuple[float, int, bytes, int]], malformed: int) -> Block:
    """A block of (time, ID, data, dlc) tuples, labels unknown."""
    payload = np.frombuffer(b"".join(d.ljust(8, b"\0") for _, _, d, _ in rows), np.uint8).reshape(-1, 8)
    return Block(
        np.fromiter((r[0] for r in rows), np.float64, len(rows)),
        np.fromiter((r[1] for r in rows), np.int64, len(rows)),
        payload,
        np.fromiter((r[3] for r in rows), np.int8, len(rows)),
        np.full(len(rows), -1, np.int8),
        malformed,
    )
