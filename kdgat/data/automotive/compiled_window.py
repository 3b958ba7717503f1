"""The window graph of the latest W frames, built by one compiled (numba) call per graph.

IncrementalWindow (incremental.py) updates only what a frame changes, but each update and each
graph is dozens of numpy calls and Python bookkeeping: at a stride of 1 a window's graph costs
~300 µs of per-call overhead for ~100 frames of arithmetic. Here the frames go into a ring of
plain arrays (a push is a few element stores) and graph() computes the whole window in one
compiled call, in a few µs at W = 100: O(W) work per graph, but no per-call overhead, so it
beats the incremental tables until windows of thousands of frames.

The arithmetic is build_raw's (graphs.py), in the order build_raw adds its floats: per node
its frames in window order, per edge its steps in order, the payload entropies as
byte_entropy's float32 operations (kdgat/data/text/words.py). So the graphs equal build_raw's
bit for bit (tests/data/automotive/test_incremental.py), for the default feature set only.
"""

import numpy as np

from kdgat.common.kernels import kernel
from kdgat.data.text.words import _LOG2, _PAIR_LOG2

_TABLES = (_PAIR_LOG2, _LOG2)

_TIME_SCALE = 1e3  # gaps in ms, as graphs.py: log1p(|dt| * 1e3)


@kernel()
def _entropy(payload: np.ndarray, length: int, pair_log2: np.ndarray, log2: np.ndarray) -> np.float32:
    """byte_entropy of one payload: the same float32 table sums in the same order."""
    n_used = min(max(length, 0), 8)
    c = [0, 0, 0, 0, 0, 0, 0, 0]
    for i in range(n_used):
        for j in range(n_used):
            if payload[j] == payload[i]:
                c[i] += 1
    logs = (pair_log2[c[0] + 256 * c[1]] + pair_log2[c[2] + 256 * c[3]]) + (
        pair_log2[c[4] + 256 * c[5]] + pair_log2[c[6] + 256 * c[7]]
    )
    n = max(length, 1)
    return log2[n] - logs / np.float32(n)


@kernel(inline="always")
def _frame_steps(rows, k, p, stamps, payload, dlc, per_frame, has_time):
    """per_frame of the fresh row at window position k (see _window_graph), p the position of
    the previous frame of its ID (-1: none in the window)."""
    pair_log2, log2 = _TABLES  # globals: numba freezes them into the code, not passed per call
    r = rows[k]
    per_frame[r, 0] = _entropy(payload[r], dlc[r], pair_log2, log2)
    per_frame[r, 1] = 0.0
    per_frame[r, 2] = 0.0
    per_frame[r, 3] = 0.0
    t = stamps[r] if has_time else 0.0
    if p >= 0:
        before = stamps[rows[p]] if has_time else 0.0
        per_frame[r, 1] = np.log1p(np.abs(t - before) * _TIME_SCALE)
        for b in range(8):
            if payload[rows[p], b] != payload[r, b]:
                per_frame[r, 2] = 1.0
                break
    if k > 0:
        before = stamps[rows[k - 1]] if has_time else 0.0
        per_frame[r, 3] = np.log1p(np.abs(t - before) * _TIME_SCALE)


@kernel(inline="always")
def _node_sums(rows, node, n, stamps, payload, dlc, label, per_frame, fresh, has_time):
    """Per node, its frames' sums in window order: (count, first and last position, dlc,
    entropy, gap, gap², payload changes), the byte columns' (sum, sum², min, max), and whether
    any frame is an attack; fills per_frame for the fresh rows on the way."""
    count = np.zeros(n)
    first_pos = np.full(n, -1.0)
    last_pos = np.zeros(n)
    byte_sum = np.zeros((n, 8))
    byte_sq = np.zeros((n, 8))
    byte_min = np.full((n, 8), 255, dtype=np.int64)
    byte_max = np.zeros((n, 8), dtype=np.int64)
    dlc_sum = np.zeros(n)
    entropy_sum = np.zeros(n)
    gap_sum = np.zeros(n)
    gap_sq = np.zeros(n)
    changes = np.zeros(n)
    previous = np.full(n, -1, dtype=np.int64)  # each node's last frame so far (window position)
    attack = 0
    for k in range(len(rows)):
        r, v = rows[k], node[k]
        p = previous[v]
        if fresh[r]:
            _frame_steps(rows, k, p, stamps, payload, dlc, per_frame, has_time)
            fresh[r] = 0
        count[v] += 1.0
        if first_pos[v] < 0:
            first_pos[v] = k
        last_pos[v] = k
        for b in range(8):
            value = payload[r, b]
            byte_sum[v, b] += value
            byte_sq[v, b] += float(value) * float(value)
            byte_min[v, b] = min(byte_min[v, b], value)
            byte_max[v, b] = max(byte_max[v, b], value)
        dlc_sum[v] += dlc[r]
        entropy_sum[v] += per_frame[r, 0]
        if p >= 0:
            gap = per_frame[r, 1]
            gap_sum[v] += gap
            gap_sq[v] += gap * gap
            changes[v] += per_frame[r, 2]
        previous[v] = k
        if label[r] > 0:
            attack = 1
    sums = (count, first_pos, last_pos, dlc_sum, entropy_sum, gap_sum, gap_sq, changes)
    return sums, (byte_sum, byte_sq, byte_min, byte_max), attack


@kernel(inline="always")
def _edges(rows, node, n, per_frame):
    """The transitions between consecutive frames, by (source, destination) node: edge_index
    (2, E), edge_attr (E, 3) float32 (log count, mean and std of the gaps) and the nodes' in-
    and out-degrees."""
    w = len(rows)
    keys = np.empty(w - 1, dtype=np.int64)
    for k in range(w - 1):
        keys[k] = node[k] * n + node[k + 1]
    edge_keys = np.unique(keys)
    e = len(edge_keys)
    edge_of = np.searchsorted(edge_keys, keys)
    edge_count = np.zeros(e)
    edge_sum = np.zeros(e)
    edge_sq = np.zeros(e)
    for k in range(w - 1):
        j = edge_of[k]
        gap = per_frame[rows[k + 1], 3]
        edge_count[j] += 1.0
        edge_sum[j] += gap
        edge_sq[j] += gap * gap
    edge_index = np.empty((2, e), dtype=np.int64)
    edge_attr = np.empty((e, 3), dtype=np.float32)
    in_degree = np.zeros(n)
    out_degree = np.zeros(n)
    for j in range(e):
        src, dst = edge_keys[j] // n, edge_keys[j] % n
        edge_index[0, j], edge_index[1, j] = src, dst
        out_degree[src] += 1.0
        in_degree[dst] += 1.0
        mean = edge_sum[j] / edge_count[j]
        edge_attr[j, 0] = np.log1p(edge_count[j])
        edge_attr[j, 1] = mean
        edge_attr[j, 2] = np.sqrt(max(edge_sq[j] / edge_count[j] - mean * mean, 0.0))
    return edge_index, edge_attr, in_degree, out_degree


@kernel(inline="always")
def _node_features(sums, byte_stats, in_degree, out_degree, w, has_time):
    """x (N, 35) float32 from _node_sums' sums and the degrees, in build_raw's column order."""
    count, first_pos, last_pos, dlc_sum, entropy_sum, gap_sum, gap_sq, changes = sums
    byte_sum, byte_sq, byte_min, byte_max = byte_stats
    n = len(count)
    x = np.empty((n, 35), dtype=np.float32)
    for v in range(n):
        c = count[v]
        x[v, 0] = c / w
        x[v, 1] = first_pos[v] / w
        x[v, 2] = last_pos[v] / w
        for b in range(8):
            mean = byte_sum[v, b] / c
            x[v, 3 + b] = mean / 255.0
            x[v, 11 + b] = np.sqrt(max(byte_sq[v, b] / c - mean * mean, 0.0)) / 255.0
            x[v, 19 + b] = (byte_max[v, b] - byte_min[v, b]) / 255.0
        pairs = max(c - 1.0, 1.0)
        gap_mean = gap_sum[v] / pairs
        x[v, 27] = dlc_sum[v] / c / 8.0
        x[v, 28] = changes[v] / pairs
        x[v, 29] = entropy_sum[v] / c / 3.0
        x[v, 30] = gap_mean
        x[v, 31] = np.sqrt(max(gap_sq[v] / pairs - gap_mean * gap_mean, 0.0))
        x[v, 32] = in_degree[v]
        x[v, 33] = out_degree[v]
        x[v, 34] = 1.0 if has_time else 0.0
    return x


@kernel()
def _window_graph(ids, stamps, payload, dlc, label, per_frame, fresh, first, window, has_time):
    """The raw graph of ring rows first, first+1, ... (mod window): x (N, 35) float32 without
    is_unknown_id, node entities, edge_index (2, E), edge_attr (E, 3) float32, y.

    per_frame (window, 4): each row's payload entropy, log gap and payload change to the
    previous frame of its ID, and log gap to the frame before it; computed for the rows marked
    fresh (written since the last graph) and kept: a frame's previous frame of its ID and the
    frame before it are fixed when it arrives, and once they leave the window they are unused.
    The steps are inlined into this one kernel (inline="always"): one compiled call per graph."""
    w = window
    rows = np.empty(w, dtype=np.int64)
    for k in range(w):
        rows[k] = (first + k) % w
    cid = ids[rows]
    entities = np.unique(cid)
    n = len(entities)
    node = np.searchsorted(entities, cid)
    sums, byte_stats, attack = _node_sums(
        rows, node, n, stamps, payload, dlc, label, per_frame, fresh, has_time
    )
    edge_index, edge_attr, in_degree, out_degree = _edges(rows, node, n, per_frame)
    x = _node_features(sums, byte_stats, in_degree, out_degree, w, has_time)
    return x, entities, edge_index, edge_attr, attack


class CompiledWindow:
    """The graph of the latest `window` frames; IncrementalWindow's interface (push, graph,
    full, frames) and graph layout, with each graph built by one compiled call."""

    def __init__(self, window: int, has_time: bool = True) -> None:
        if window < 2:
            raise ValueError("a window holds at least 2 frames")
        self.window = window
        self.has_time = has_time
        self.frames = 0
        self._ids = np.zeros(window, dtype=np.int64)
        self._stamps = np.zeros(window, dtype=np.float64)
        self._bytes = bytearray(8 * window)  # a slice store per frame; read as the array below
        self._payload = np.frombuffer(self._bytes, dtype=np.uint8).reshape(window, 8)
        self._dlc = np.zeros(window, dtype=np.int64)
        self._label = np.zeros(window, dtype=np.int8)
        self._per_frame = np.zeros((window, 4), dtype=np.float64)  # see _window_graph
        self._fresh = np.ones(window, dtype=np.int8)
        _warm_up()

    @property
    def full(self) -> bool:
        return self.frames >= self.window

    def push(self, can_id: int, time: float, payload: bytes, dlc: int, label: int = 0) -> None:
        """Add one frame. payload: its data bytes (at most 8 are kept, zero-padded, as readers pad)."""
        row = self.frames % self.window
        self._ids[row] = can_id
        self._stamps[row] = time
        self._bytes[8 * row : 8 * row + 8] = payload[:8].ljust(8, b"\0")
        self._dlc[row] = min(dlc, 8)
        self._label[row] = 1 if label else 0
        self._fresh[row] = 1
        self.frames += 1

    def ring(self) -> tuple:
        """_window_graph's arguments for the current window (the ring arrays and where it
        starts), for compiled callers that build the graph inside their own kernel."""
        if not self.full:
            raise ValueError(f"the window is not full yet ({self.frames} of {self.window} frames)")
        first = self.frames % self.window  # the oldest frame's row
        return (
            self._ids,
            self._stamps,
            self._payload,
            self._dlc,
            self._label,
            self._per_frame,
            self._fresh,
            first,
            self.window,
            self.has_time,
        )

    def span(self) -> dict:
        """The current window's frames and times, as graph() gives them."""
        w = self.window
        return {
            "frame_start": self.frames - w,
            "frame_stop": self.frames,
            "time_start": float(self._stamps[self.frames % w]),
            "time_stop": float(self._stamps[(self.frames - 1) % w]),
        }

    def graph(self) -> dict:
        """The current window's raw graph, in IncrementalWindow.graph()'s layout."""
        x, entities, edge_index, edge_attr, attack = _window_graph(*self.ring())
        return {
            "x": x,
            "node_entity": entities,
            "edge_index": edge_index,
            "edge_attr": edge_attr,
            "y": int(attack),
            **self.span(),
        }


_warm = False


def _warm_up() -> None:
    """Compile (or load numba's cache for) the kernel once per process, at the first builder's
    construction rather than on the first window a live bus completes."""
    global _warm
    if not _warm:
        _warm = True
        ring = CompiledWindow(2, True)
        ring.push(0x100, 0.0, b"\x01", 1)
        ring.push(0x200, 0.001, b"", 0)
        ring.graph()
