"""CAN frames -> one graph per window, vectorised over all windows at once.

Per window of W frames: nodes are the distinct CAN IDs, directed edges the transitions between
consecutive frames (counted; self-loops kept). All windows of a frame block are built in one pass
of numpy sorting and bincounts; there is no Python loop per window (benchmarks/preprocess.py
holds a per-window reference implementation, and a test checks both give the same graphs).

Node features (NODE_FEATURES): occurrence count, first/last position in the window, per-byte
mean/std/range, mean DLC, payload change rate between successive frames of the ID, mean payload
byte entropy, log inter-arrival mean/std, in/out degree, has_timing (0 for captures without
timestamps, whose timing features are then all 0) and is_unknown_id (ID not in the training
vocabulary). Edge features (EDGE_FEATURES): log transition count, log gap mean/std. Plus the
ID index for an embedding (node_id, UNK = 0), graph label y, attack_type and per-node labels.
"""

import numpy as np

from kdgat.data.automotive.frames import Frames
from kdgat.data.graphset import GraphSet, assemble
from kdgat.data.text.words import byte_entropy

NODE_FEATURES: tuple[str, ...] = (
    "count",
    "first_position",
    "last_position",
    *(f"byte{i}_mean" for i in range(8)),
    *(f"byte{i}_std" for i in range(8)),
    *(f"byte{i}_range" for i in range(8)),
    "dlc_mean",
    "payload_change_rate",
    "payload_entropy",
    "log_gap_mean",
    "log_gap_std",
    "in_degree",
    "out_degree",
    "has_timing",
    "is_unknown_id",
)
EDGE_FEATURES: tuple[str, ...] = ("log_count", "log_gap_mean", "log_gap_std")


def window_starts(num_frames: int, window: int, stride: int) -> np.ndarray:
    """Start offsets of every full window inside a block of num_frames frames."""
    if num_frames < window:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, num_frames - window + 1, stride, dtype=np.int64)


_LOG2 = np.log2(np.maximum(np.arange(9), 1)).astype(np.float32)


def payload_entropy(payload: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Shannon entropy (bits) of each frame's data bytes (0 for 0-1 bytes), all frames at once.

    For byte j, c_j = how many used bytes share its value; H = log2(n) - mean_j log2(c_j).
    """
    used = np.arange(8)[None, :] < length[:, None]
    # Unused bytes get distinct out-of-range values (256 + j) so they never match anything.
    values = np.where(used, payload.astype(np.int16), np.arange(256, 264, dtype=np.int16)[None, :])
    twice = np.concatenate([values, values], axis=1)
    count = np.zeros(payload.shape, dtype=np.uint8)
    for k in range(8):
        count += values == twice[:, k : k + 8]
    n = np.maximum(length, 1)
    logs = (_LOG2[count] * used).sum(axis=1)
    return _LOG2[n] - logs / n


def _window_nodes(
    window_of: np.ndarray, entity: np.ndarray, num_windows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (window, entity) pairs, window-major and by entity: (node window, node entity,
    node of each frame). Without sorting when the entity table is small (11-bit CAN IDs):
    entities are densified by a lookup table and nodes found by counting (window, entity)."""
    if len(entity) and 0 <= entity.min() and entity.max() < (1 << 20):
        present = np.zeros(int(entity.max()) + 1, dtype=bool)
        present[entity] = True
        distinct = np.flatnonzero(present)
        if num_windows * len(distinct) <= 8 * len(entity) + (1 << 16):
            dense_of = np.cumsum(present) - 1
            key = window_of * len(distinct) + dense_of[entity]
            used = np.zeros(num_windows * len(distinct), dtype=bool)
            used[key] = True
            node_keys = np.flatnonzero(used)
            node_of_key = np.cumsum(used) - 1
            return node_keys // len(distinct), distinct[node_keys % len(distinct)], node_of_key[key]
    key = window_of * (1 << 32) + entity
    node_keys, frame_node = np.unique(key, return_inverse=True)
    return node_keys >> 32, node_keys & ((1 << 32) - 1), frame_node.reshape(-1)


def build_raw(
    frames: Frames,
    block_start: int,
    block_stop: int,
    window: int,
    stride: int,
    entropy: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Vocabulary-free graphs of every full window inside frames[block_start:block_stop].

    Returns flat numpy arrays (what the cache stores); `assemble` maps node entities through a
    vocabulary and appends the is_unknown_id feature. entropy: byte_entropy (float32) of each
    frame from the first window's start to the last one's end, where the caller has them (the
    streaming builder caches them by payload).
    """
    starts = block_start + window_starts(block_stop - block_start, window, stride)
    num_windows = len(starts)
    if num_windows == 0:
        return {}
    lo, hi = int(starts[0]), int(starts[-1]) + window
    # Per-frame quantities once per frame, not once per window the frame is in.
    if entropy is None:
        entropy_frame = byte_entropy(frames.payload[lo:hi], frames.dlc[lo:hi])
    else:
        entropy_frame = entropy[: hi - lo]
    if stride == window:  # windows tile the block: every frame once, in order (views, no gather)
        flat_index: slice | np.ndarray = slice(0, hi - lo)
    else:
        flat_index = ((starts - lo)[:, None] + np.arange(window)[None, :]).reshape(-1)  # (G*W,)
    can_id = frames.can_id[lo:hi][flat_index]
    time = frames.time[lo:hi][flat_index] if frames.has_time else np.zeros(num_windows * window)
    payload = frames.payload[lo:hi][flat_index]  # (G*W, 8) uint8
    label = frames.label[lo:hi][flat_index].reshape(num_windows, window)
    dlc = frames.dlc[lo:hi][flat_index].astype(np.float64)
    entropy = entropy_frame[flat_index]

    # Nodes: distinct (window, entity), sorted window-major so each graph's nodes are contiguous.
    window_of = np.repeat(np.arange(num_windows, dtype=np.int64), window)
    node_window, node_entity, frame_node = _window_nodes(window_of, can_id, num_windows)
    num_nodes = len(node_window)
    node_ptr = np.searchsorted(node_window, np.arange(num_windows + 1))

    # Frames grouped by node (stable: capture order inside each node).
    order = np.argsort(frame_node, kind="stable")
    count_int = np.bincount(frame_node, minlength=num_nodes)
    seg = np.concatenate([[0], np.cumsum(count_int)[:-1]])
    seg_last = seg + count_int - 1
    count = count_int.astype(np.float64)
    position = np.tile(np.arange(window, dtype=np.float64), num_windows)
    first = position[order[seg]]
    last = position[order[seg_last]]
    sorted_payload = payload[order]
    # Per-byte sums: one bincount over (node, byte) cells, laid out (nodes, 8) like x's columns
    # (exact: integer-valued floats, so the same values as summing each node's frames in order).
    cell = (frame_node[:, None] * 8 + np.arange(8)).reshape(-1)
    values = np.ascontiguousarray(payload).reshape(-1).astype(np.float64)
    byte_sum = np.bincount(cell, weights=values, minlength=8 * num_nodes).reshape(num_nodes, 8)
    values *= values
    byte_sq_sum = np.bincount(cell, weights=values, minlength=8 * num_nodes).reshape(num_nodes, 8)
    # In place: (nodes, 8) float64 temporaries are the builder's largest, and fresh ones page-fault.
    byte_mean = np.divide(byte_sum, count[:, None], out=byte_sum)
    byte_std = np.divide(byte_sq_sum, count[:, None], out=byte_sq_sum)
    byte_std -= byte_mean**2
    np.sqrt(np.maximum(byte_std, 0.0, out=byte_std), out=byte_std)
    byte_range = np.maximum.reduceat(sorted_payload, seg, axis=0) - np.minimum.reduceat(
        sorted_payload, seg, axis=0
    )
    dlc_mean = np.bincount(frame_node, weights=dlc, minlength=num_nodes) / count
    entropy_mean = np.bincount(frame_node, weights=entropy, minlength=num_nodes) / count

    # Same-entity successions inside a window: gaps and payload changes.
    sorted_node = frame_node[order]
    same = sorted_node[1:] == sorted_node[:-1]
    prev, nxt = order[:-1][same], order[1:][same]
    log_gap = np.log1p(np.abs(time[nxt] - time[prev]) * 1e3)  # log(1 + ms); 0 without timestamps
    payload_word = np.ascontiguousarray(payload).view(np.uint64).reshape(-1)  # 8 bytes compared at once
    changed = (payload_word[nxt] != payload_word[prev]).astype(np.float64)
    succ_node = sorted_node[1:][same]
    pairs = np.maximum(count - 1, 1)
    gap_mean = np.bincount(succ_node, weights=log_gap, minlength=num_nodes) / pairs
    gap_sq = np.bincount(succ_node, weights=log_gap**2, minlength=num_nodes) / pairs
    gap_std = np.sqrt(np.maximum(gap_sq - gap_mean**2, 0.0))
    change_rate = np.bincount(succ_node, weights=changed, minlength=num_nodes) / pairs

    # Edges: consecutive-frame transitions, counted, in window-major order.
    node_of = frame_node.reshape(num_windows, window)
    src, dst = node_of[:, :-1].reshape(-1), node_of[:, 1:].reshape(-1)
    step_gap = np.log1p(np.abs(np.diff(time.reshape(num_windows, window), axis=1)).reshape(-1) * 1e3)
    edge_keys, edge_of_step = np.unique(src * num_nodes + dst, return_inverse=True)
    edge_of_step = edge_of_step.reshape(-1)
    edge_src, edge_dst = edge_keys // num_nodes, edge_keys % num_nodes
    edge_count = np.bincount(edge_of_step, minlength=len(edge_keys)).astype(np.float64)
    edge_gap = np.bincount(edge_of_step, weights=step_gap, minlength=len(edge_keys)) / edge_count
    edge_sq = np.bincount(edge_of_step, weights=step_gap**2, minlength=len(edge_keys)) / edge_count
    edge_gap_std = np.sqrt(np.maximum(edge_sq - edge_gap**2, 0.0))
    in_degree = np.bincount(edge_dst, minlength=num_nodes).astype(np.float64)
    out_degree = np.bincount(edge_src, minlength=num_nodes).astype(np.float64)
    edge_window = node_window[edge_src]
    edge_ptr = np.searchsorted(edge_window, np.arange(num_windows + 1))
    local_src = edge_src - node_ptr[edge_window]
    local_dst = edge_dst - node_ptr[edge_window]

    # (value, scale) per column or (nodes, 8) byte group, divided straight into x's float32 columns
    # (computed in float64, rounded once, as value / scale followed by astype would).
    x = np.empty((num_nodes, len(NODE_FEATURES) - 1), dtype=np.float32)
    columns = [
        (count, window),
        (first, window),
        (last, window),
        (byte_mean, 255.0),
        (byte_std, 255.0),
        (byte_range, 255.0),
        (dlc_mean, 8.0),
        (change_rate, 1.0),
        (entropy_mean, 3.0),
        (gap_mean, 1.0),
        (gap_std, 1.0),
        (in_degree, 1.0),
        (out_degree, 1.0),
        (np.full(num_nodes, 1.0 if frames.has_time else 0.0), 1.0),
    ]
    row = 0
    for value, scale in columns:
        width = 1 if value.ndim == 1 else value.shape[1]
        np.divide(value.reshape(num_nodes, width), scale, out=x[:, row : row + width], casting="unsafe")
        row += width
    node_label = np.zeros(num_nodes, dtype=np.int64)
    np.maximum.at(node_label, frame_node[label.reshape(-1) > 0], 1)
    edge_attr = np.empty((len(edge_keys), len(EDGE_FEATURES)), dtype=np.float32)
    for j, column in enumerate((np.log1p(edge_count), edge_gap, edge_gap_std)):
        edge_attr[:, j] = column
    edge_index = np.empty((2, len(edge_keys)), dtype=np.int64)
    edge_index[0], edge_index[1] = local_src, local_dst
    return {
        "x": x,
        "node_entity": node_entity.astype(np.int64),
        "node_label": node_label,
        "edge_index": edge_index,
        "edge_attr": edge_attr,
        "node_ptr": node_ptr.astype(np.int64),
        "edge_ptr": edge_ptr.astype(np.int64),
        "y": label.max(axis=1).astype(np.int64),
        "frame_start": starts.astype(np.int64),
        "frame_stop": (starts + window).astype(np.int64),
    }


def build_graphs(
    frames: Frames, block_start: int, block_stop: int, window: int, stride: int, vocabulary: dict[int, int]
) -> GraphSet:
    """Graphs of every full window inside frames[block_start:block_stop] (tests, references)."""
    raw = build_raw(frames, block_start, block_stop, window, stride)
    widths = (len(NODE_FEATURES), len(EDGE_FEATURES))
    return assemble(raw, vocabulary, frames.attack_type, str(frames.source), widths)
