"""The window graph of graphs.py kept up to date frame by frame, for streaming detection.

graphs.build_raw builds every window of a capture at once; a detector on a live bus sees one
frame at a time and needs the graph of the latest W frames after each `stride` of them. Here a
ring of the last W frames is kept with, per CAN ID in the window, the positions of its frames,
and per transition (ID a followed by ID b) the steps where it occurs. A new frame touches two
IDs (it enters, the oldest leaves) and two transitions; only those are marked dirty, and when a
graph is asked for only the dirty IDs' and transitions' features are recomputed, from their own
frames in window order. Features that do not allow an O(1) update (byte range: a sliding max;
timing and payload-change sums, which must add in the order build_raw adds them to give the
same floats) are recomputed per dirty ID, not per window. Positions and degrees, which shift
for every node, are a vectorised pass over the N nodes.

Frames are applied lazily, when a graph is asked for: at a stride of W (the default, 100)
nothing of the previous window survives, so the window is built in one build_raw pass straight
from the frame tuples (with cached payload entropies) instead of W table updates; its frames are
written to the ring, and the tables rebuilt from it, only when a later graph needs them (a
shorter stride).

The graphs equal build_raw's for the default feature set (NODE_FEATURES, EDGE_FEATURES) bit for
bit (tests/data/automotive/test_incremental.py); another feature set needs its own update rules here.
"""

from collections import deque
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from kdgat.data.automotive.frames import Frames
from kdgat.data.automotive.graphs import EDGE_FEATURES, NODE_FEATURES, build_raw
from kdgat.data.text.words import byte_entropy, byte_entropy_one

_FEW = 8  # frames written at once below which entropies are looked up, not vectorised
_ENTROPY_CACHE = 1 << 16  # distinct payloads remembered
STATIC_WIDTH = 29  # byte mean/std/range (24), dlc mean, change rate, entropy, gap mean, gap std


class _Slots:
    """Rows of a growing float64 table handed out to IDs / transitions and taken back."""

    def __init__(self, width: int) -> None:
        self.table = np.zeros((64, width), dtype=np.float64)
        self.free: list[int] = list(range(63, -1, -1))

    def take(self) -> int:
        if not self.free:
            old = len(self.table)
            self.table = np.concatenate([self.table, np.zeros_like(self.table)])
            self.free = list(range(2 * old - 1, old - 1, -1))
        return self.free.pop()

    def give(self, slot: int) -> None:
        self.free.append(slot)


class _Items:
    """Positions (frames of an ID, or steps of a transition) in the window, each with a slot."""

    __slots__ = ("positions", "slot")

    def __init__(self, slot: int) -> None:
        self.positions: deque[int] = deque()
        self.slot = slot


class IncrementalWindow:
    """The graph of the latest `window` frames, updated one frame at a time.

    push() adds a frame; graph() returns the current window's raw graph in build_raw's layout
    (one window): x (without is_unknown_id, which `assemble` appends), node_entity, edge_index,
    edge_attr, y, frame_start, frame_stop.
    """

    def __init__(self, window: int, has_time: bool = True) -> None:
        if window < 2:
            raise ValueError("a window holds at least 2 frames")
        self.window = window
        self.has_time = has_time
        self.frames = 0  # frames pushed so far; the window is frames [frames - window, frames)
        # Frames pushed since the last graph(), applied when a graph is asked for: at a stride
        # of W nothing of the last window survives and the new one is built in one pass.
        self._pending: deque[tuple[int, float, bytes, int, int]] = deque(maxlen=window)
        self._applied = 0  # frames written to the ring
        # A whole window's frames (and its first frame's index), built straight from the pending
        # tuples and written to the ring only when a later, shorter stride needs the tables.
        self._unwritten: tuple[list[tuple[int, float, bytes, int, int]], int] | None = None
        self._id = [0] * window
        self._stamp = [0.0] * window  # frame times as received (self._time is 0 without timing)
        self._time = np.zeros(window, dtype=np.float64)
        self._payload = np.zeros((window, 8), dtype=np.uint8)
        self._word = self._payload.view(np.uint64).reshape(-1)  # 8 bytes compared at once
        self._dlc = np.zeros(window, dtype=np.float64)
        self._entropy = np.zeros(window, dtype=np.float64)
        self._label = [0] * window
        self._tables_from: int | None = 0  # first frame the ID / transition tables hold (None: stale)
        self._attack_frames = 0
        self._nodes: dict[int, _Items] = {}
        self._edges: dict[tuple[int, int], _Items] = {}
        self._node_rows = _Slots(STATIC_WIDTH)
        self._edge_rows = _Slots(len(EDGE_FEATURES))
        self._dirty_nodes: set[int] = set()
        self._dirty_edges: set[tuple[int, int]] = set()
        self._entropy_cache: dict[tuple[bytes, int], float] = {}
        self._scale = np.array(
            [window, window, window, *([255.0] * 24), 8.0, 1.0, 3.0, 1.0, 1.0, 1.0, 1.0, 1.0],
            dtype=np.float64,
        )

    @property
    def full(self) -> bool:
        return self.frames >= self.window

    def push(self, can_id: int, time: float, payload: bytes, dlc: int, label: int = 0) -> None:
        """Add one frame. payload: its data bytes (at most 8; zero-padded, as readers pad)."""
        self._pending.append((can_id, time, payload, dlc, label))
        self.frames += 1

    def _leave(self, table: dict, slots: _Slots, dirty: set, key: Any) -> None:
        items = table[key]
        items.positions.popleft()
        if items.positions:
            dirty.add(key)
        else:
            del table[key]
            slots.give(items.slot)
            dirty.discard(key)

    def _enter(self, table: dict, slots: _Slots, dirty: set, key: Any, position: int) -> None:
        items = table.get(key)
        if items is None:
            items = table[key] = _Items(slots.take())
        items.positions.append(position)
        dirty.add(key)

    def _track(self, k: int, old: tuple[int, int, int] | None = None) -> None:
        """Frame k (already in the ring) enters the tables; old = (ID, label, next ID) of frame
        k - W, whose ring row frame k overwrote, leaves them with its transition to the next."""
        w = self.window
        pos = k % w
        can_id = self._id[pos]
        if old is not None:
            self._leave(self._nodes, self._node_rows, self._dirty_nodes, old[0])
            self._leave(self._edges, self._edge_rows, self._dirty_edges, (old[0], old[2]))
            self._attack_frames -= old[1]
        self._enter(self._nodes, self._node_rows, self._dirty_nodes, can_id, k)
        if self._tables_from is not None and k - 1 >= self._tables_from:  # (never None here)
            self._enter(
                self._edges, self._edge_rows, self._dirty_edges, (self._id[(k - 1) % w], can_id), k - 1
            )
        self._attack_frames += self._label[pos]

    def _write(
        self, frames: list[tuple[int, float, bytes, int, int]], first: int, entropy: bool = True
    ) -> np.ndarray:
        """Frames first, first+1, ... into the ring, vectorised; returns their ring rows.
        entropy=False leaves their payload entropies to be computed when the tables need them."""
        w = self.window
        rows = np.arange(first, first + len(frames)) % w
        ids, stamps, payloads, dlcs, labels = zip(*frames, strict=True)
        words = [bytes(p[:8]).ljust(8, b"\0") for p in payloads]
        payload = np.frombuffer(b"".join(words), dtype=np.uint8).reshape(-1, 8)
        dlc = np.asarray(dlcs, dtype=np.int8)
        self._payload[rows] = payload
        self._dlc[rows] = dlc
        self._time[rows] = stamps if self.has_time else 0.0
        if entropy and len(frames) > _FEW:
            self._entropy[rows] = byte_entropy(payload, dlc)
        elif entropy:  # a frame or a few (a short stride): most payloads repeat, look them up
            self._entropy[rows] = [self._entropy_of(word, d) for word, d in zip(words, dlcs, strict=True)]
        for row, can_id, stamp, label in zip(rows.tolist(), ids, stamps, labels, strict=True):
            self._id[row], self._stamp[row], self._label[row] = can_id, stamp, 1 if label else 0
        return rows

    def _entropy_of(self, word: bytes, dlc: int) -> float:
        """byte_entropy of one padded payload (the same float: the function itself, cached)."""
        key = (word, dlc)
        value = self._entropy_cache.get(key)
        if value is None:
            value = float(byte_entropy_one(word, dlc))
            if len(self._entropy_cache) >= _ENTROPY_CACHE:
                self._entropy_cache.clear()
            self._entropy_cache[key] = value
        return value

    def _reset_tables(self, start: int) -> None:
        for table, slots in ((self._nodes, self._node_rows), (self._edges, self._edge_rows)):
            for items in table.values():
                slots.give(items.slot)
            table.clear()
        self._dirty_nodes.clear()
        self._dirty_edges.clear()
        self._attack_frames = 0
        self._tables_from = start

    def _sync(self) -> bool:
        """Apply the pending frames. Returns True when the tables are up to date, False when
        the window is all new (the ring then holds it and the tables are stale)."""
        pending = list(self._pending)
        self._pending.clear()
        first = self.frames - len(pending)
        w = self.window
        if pending:
            if len(pending) >= w or self._applied < first:
                # A whole window of new frames: built by build_raw from the tuples themselves
                # (_whole_window); the ring is written only if a later graph needs the tables.
                self._unwritten = (pending[-w:], self.frames - min(len(pending), w))
                self._applied, self._tables_from = self.frames, None
                return False
            if self._unwritten is not None:  # build_raw computes the entropies of the window itself
                self._write(*self._unwritten, entropy=False)
                self._unwritten = None
            tables_from = self._tables_from
            if tables_from is None:  # tables stale: rebuild them from the ring's window
                self._entropy[:] = byte_entropy(self._payload, self._dlc.astype(np.int8))
                tables_from = max(first - w, 0)
                self._reset_tables(tables_from)
                for k in range(tables_from, first):
                    self._track(k)
            rows = (np.arange(first, self.frames + 1) % w).tolist()
            leaving = [(self._id[a], self._label[a], self._id[b]) for a, b in pairwise(rows)]
            self._write(pending, first)
            for k, old in zip(range(first, self.frames), leaving, strict=True):
                self._track(k, old if k - w >= tables_from else None)
            self._applied = self.frames
        return self._tables_from is not None

    def _gather(self, table: dict, keys: set) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ring rows of the positions of `keys` (each key's in window order, key after key),
        the key index of each, and the keys' slots."""
        items = [table[key] for key in keys]
        flat: list[int] = []
        for item in items:
            flat.extend(item.positions)
        counts = np.fromiter((len(item.positions) for item in items), dtype=np.int64, count=len(items))
        rows = np.asarray(flat, dtype=np.int64) % self.window
        owner = np.repeat(np.arange(len(items)), counts)
        slots = np.fromiter((item.slot for item in items), dtype=np.int64, count=len(items))
        return rows, owner, slots

    def _update_nodes(self) -> None:
        """Recompute the dirty IDs' position-free features in one vectorised pass, with
        build_raw's arithmetic: integer sums (exact in any order), float sums by bincount
        in window order (the order build_raw adds them in)."""
        if not self._dirty_nodes:
            return
        rows, owner, slots = self._gather(self._nodes, self._dirty_nodes)
        self._dirty_nodes.clear()
        n = len(slots)
        count_int = np.bincount(owner, minlength=n)
        count = count_int.astype(np.float64)
        seg = np.cumsum(count_int) - count_int
        payload = self._payload[rows]
        values = payload.astype(np.float64)
        # Integer-valued sums (bytes, squares, DLCs) are exact in any order: reduceat, 1 call each.
        mean = np.add.reduceat(values, seg, axis=0) / count[:, None]
        std = np.add.reduceat(values * values, seg, axis=0) / count[:, None]
        std -= mean**2
        np.sqrt(np.maximum(std, 0.0, out=std), out=std)
        byte_range = np.maximum.reduceat(payload, seg, axis=0) - np.minimum.reduceat(payload, seg, axis=0)
        dlc_mean = np.add.reduceat(self._dlc[rows], seg) / count
        entropy_mean = np.bincount(owner, weights=self._entropy[rows], minlength=n) / count
        same = owner[1:] == owner[:-1]
        prev, nxt = rows[:-1][same], rows[1:][same]
        succ = owner[1:][same]
        log_gap = np.log1p(np.abs(self._time[nxt] - self._time[prev]) * 1e3)
        changed = (self._word[nxt] != self._word[prev]).astype(np.float64)
        pairs = np.maximum(count - 1, 1)
        gap_mean = np.bincount(succ, weights=log_gap, minlength=n) / pairs
        gap_sq = np.bincount(succ, weights=log_gap**2, minlength=n) / pairs
        gap_std = np.sqrt(np.maximum(gap_sq - gap_mean**2, 0.0))
        change_rate = np.bincount(succ, weights=changed, minlength=n) / pairs
        self._node_rows.table[slots] = np.column_stack(
            [mean, std, byte_range, dlc_mean, change_rate, entropy_mean, gap_mean, gap_std]
        )

    def _update_edges(self) -> None:
        """Recompute the dirty transitions' features (log count, log gap mean and std)."""
        if not self._dirty_edges:
            return
        steps, owner, slots = self._gather(self._edges, self._dirty_edges)
        self._dirty_edges.clear()
        n = len(slots)
        gap = np.log1p(np.abs(self._time[(steps + 1) % self.window] - self._time[steps]) * 1e3)
        count = np.bincount(owner, minlength=n).astype(np.float64)
        mean = np.bincount(owner, weights=gap, minlength=n) / count
        sq = np.bincount(owner, weights=gap**2, minlength=n) / count
        table = self._edge_rows.table
        table[slots] = np.stack([np.log1p(count), mean, np.sqrt(np.maximum(sq - mean**2, 0.0))], axis=1)

    def graph(self) -> dict[str, Any]:
        """The current window's raw graph (build_raw's arrays for one window)."""
        if not self.full:
            raise ValueError(f"the window is not full yet ({self.frames} of {self.window} frames)")
        start = self.frames - self.window
        if not self._sync():  # a whole window of new frames
            return {**self._whole_window(), "frame_start": start, "frame_stop": self.frames}
        span = {
            "frame_start": start,
            "frame_stop": self.frames,
            "time_start": self._stamp[start % self.window],
            "time_stop": self._stamp[(self.frames - 1) % self.window],
        }
        self._update_nodes()
        self._update_edges()
        entities = sorted(self._nodes)
        nodes = [self._nodes[entity] for entity in entities]
        n = len(entities)
        values = np.empty((n, len(NODE_FEATURES) - 1), dtype=np.float64)
        values[:, 0] = [len(node.positions) for node in nodes]
        values[:, 1] = [node.positions[0] for node in nodes]
        values[:, 2] = [node.positions[-1] for node in nodes]
        values[:, 1:3] -= start
        values[:, 3:32] = self._node_rows.table[[node.slot for node in nodes]]
        # Edges in build_raw's order: by local source, then local destination.
        keys = list(self._edges)
        entity_array = np.asarray(entities, dtype=np.int64)
        pairs = np.asarray(keys, dtype=np.int64).reshape(-1, 2)
        src = np.searchsorted(entity_array, pairs[:, 0])
        dst = np.searchsorted(entity_array, pairs[:, 1])
        order = np.argsort(src * n + dst)
        edge_index = np.stack([src[order], dst[order]])
        edge_slots = np.fromiter((self._edges[key].slot for key in keys), dtype=np.int64, count=len(keys))
        edge_attr = self._edge_rows.table[edge_slots[order]].astype(np.float32)
        values[:, 32] = np.bincount(edge_index[1], minlength=n)
        values[:, 33] = np.bincount(edge_index[0], minlength=n)
        values[:, 34] = 1.0 if self.has_time else 0.0
        return {
            "x": (values / self._scale).astype(np.float32),
            "node_entity": entity_array,
            "edge_index": edge_index,
            "edge_attr": edge_attr,
            "y": int(self._attack_frames > 0),
            **span,
        }

    def _whole_window(self) -> dict[str, Any]:
        """A window of new frames only: build_raw itself, on arrays made from the frame tuples
        (as _write pads and converts them; no ring round trip: a lone window's graph update is
        mostly per-call overhead, so each numpy call saved counts)."""
        if self._unwritten is None:
            raise RuntimeError("_whole_window without a whole window of new frames")
        frames_in, _ = self._unwritten
        ids, stamps, payloads, dlcs, labels = zip(*frames_in, strict=True)
        w = self.window
        words = [bytes(p[:8]).ljust(8, b"\0") for p in payloads]
        # Looked up (most payloads repeat), each miss in plain Python: byte_entropy's own floats
        # at a fraction of its ~20 numpy calls for a window.
        entropy = np.array(
            [self._entropy_of(word, d) for word, d in zip(words, dlcs, strict=True)], np.float32
        )
        frames = Frames(
            source=Path("<stream>"),
            time=np.array(stamps, dtype=np.float64) if self.has_time else np.zeros(w),
            can_id=np.array(ids, dtype=np.int64),
            payload=np.frombuffer(b"".join(words), np.uint8).reshape(-1, 8),
            dlc=np.array(dlcs, dtype=np.int8),
            label=np.array([1 if label else 0 for label in labels], dtype=np.int8),
            has_time=self.has_time,
        )
        raw = build_raw(frames, 0, w, w, w, entropy=entropy)
        keys = ("x", "node_entity", "edge_index", "edge_attr")
        return {
            **{k: raw[k] for k in keys},
            "y": int(raw["y"][0]),
            "time_start": stamps[0],
            "time_stop": stamps[-1],
        }
