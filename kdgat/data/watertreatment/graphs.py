"""Sliding windows of hours -> one process graph per decided hour, as flat arrays (the cache format).

Window k of a block [block_start, block_stop) covers rows [s, s + window) with s = block_start + k
and slides by one hour; it DECIDES its last hour s + window - 1: its y and attack_id are that
hour's, so a detector decides every hour as the BATADAL competition does. No window crosses the
block's bounds, so the first window - 1 hours of a block are never decided (callers that score a
whole file should treat them as benign decisions, or start the block window - 1 hours earlier in
the same file). Rows are taken as consecutive hours (the reader guarantees order, not spacing).

Hours whose label is -1 (dataset04's -999, unlabelled) yield no graph: there is nothing to train
or score against. Their readings still feed the windows of later hours.

Every graph has the same nodes and edges (the plant does not change shape); only node features,
labels and ids differ. Node features per node and window: for each of its readings (slot 1: level,
flow or pressure; slot 2: pump/valve status, 0 for tanks and junctions) the statistics STATS over
the window, then the node kind one-hot (NODE_FEATURES). Edge features: kind one-hot and hops
(EDGE_FEATURES). node_label is the decided hour's label for every node: BATADAL labels hours, not
elements. node_entity is the node's index in graph.nodes + 1 (0 stays "unknown").
"""

import numpy as np

from kdgat.data.watertreatment.batadal import ProcessLog
from kdgat.data.watertreatment.process_graph import EDGE_KINDS, NODE_KINDS, ProcessGraph

STATS = ("last", "mean", "std", "min", "max", "delta", "last_minus_mean")
SLOTS = ("primary", "status")
NODE_FEATURES: tuple[str, ...] = (
    *(f"{slot}_{stat}" for slot in SLOTS for stat in STATS),
    *(f"kind_{k}" for k in NODE_KINDS),
)
EDGE_FEATURES: tuple[str, ...] = (*(f"kind_{k}" for k in EDGE_KINDS), "hops")
KEYS = (
    "x",
    "node_entity",
    "node_label",
    "edge_index",
    "edge_attr",
    "node_ptr",
    "edge_ptr",
    "y",
    "attack_id",
    "frame_start",
    "frame_stop",
    "time_start",
    "time_stop",
)


def window_stats(values: np.ndarray, window: int) -> np.ndarray:
    """(windows, columns, len(STATS)) statistics of every sliding window of `window` rows."""
    view = np.lib.stride_tricks.sliding_window_view(values, window, axis=0)  # (G, C, W), no copy
    last, first = view[..., -1], view[..., 0]
    mean = view.mean(axis=-1)
    stats = (last, mean, view.std(axis=-1), view.min(axis=-1), view.max(axis=-1), last - first, last - mean)
    return np.stack(stats, axis=-1)


def build_raw(
    log: ProcessLog,
    graph: ProcessGraph,
    block_start: int,
    block_stop: int,
    window: int,
    stats: tuple[str, ...] = STATS,
) -> dict[str, np.ndarray]:
    """Graphs of every window inside rows [block_start, block_stop) whose decided hour is labelled.

    stats: the statistics that are node features; the others are 0 (the layout stays fixed)."""
    if window < 1:
        raise ValueError(f"window must be at least 1 hour, got {window}")
    unknown = sorted(set(stats) - set(STATS))
    if unknown:
        raise ValueError(f"unknown window statistics {unknown}; known: {', '.join(STATS)}")
    if not 0 <= block_start <= block_stop <= len(log):
        raise ValueError(f"block [{block_start}, {block_stop}) is not inside the log's {len(log)} rows")
    n_nodes, n_edges = graph.num_nodes, graph.num_edges
    starts = np.arange(block_start, max(block_start, block_stop - window + 1), dtype=np.int64)
    decided = starts + window - 1
    keep = log.label[decided] >= 0
    starts, decided = starts[keep], decided[keep]
    count = len(starts)

    values = log.values[block_start:block_stop]
    chosen = np.isin(np.array(STATS), np.array(stats, dtype=object))
    table = (
        window_stats(values, window) if len(values) >= window else np.zeros((0, values.shape[1], len(STATS)))
    )
    table = np.where(chosen, table[starts - block_start], 0.0)  # (G, C, S), decided labelled hours
    slot_column = np.full((n_nodes, len(SLOTS)), -1, dtype=np.int64)
    for i, cols in enumerate(graph.readings):
        slot_column[i, : len(cols)] = cols[: len(SLOTS)]
    features = table[:, np.maximum(slot_column, 0), :]  # (G, N, slots, S)
    features = np.where((slot_column >= 0)[None, :, :, None], features, 0.0)
    kind = np.zeros((n_nodes, len(NODE_KINDS)))
    kind[np.arange(n_nodes), graph.kind] = 1.0
    x = np.concatenate(
        [
            features.reshape(count, n_nodes, len(SLOTS) * len(STATS)),
            np.broadcast_to(kind, (count, n_nodes, len(NODE_KINDS))),
        ],
        axis=2,
    )

    edge_attr = np.zeros((n_edges, len(EDGE_FEATURES)), dtype=np.float32)
    edge_attr[np.arange(n_edges), graph.edge_kind] = 1.0
    edge_attr[:, -1] = graph.edge_hops
    y = log.label[decided].astype(np.int64)
    return {
        "x": x.reshape(count * n_nodes, len(NODE_FEATURES)).astype(np.float32),
        "node_entity": np.tile(np.arange(1, n_nodes + 1, dtype=np.int64), count),
        "node_label": np.repeat(y, n_nodes),
        "edge_index": np.tile(graph.edge_index.astype(np.int64), (1, count)),
        "edge_attr": np.tile(edge_attr, (count, 1)),
        "node_ptr": np.arange(count + 1, dtype=np.int64) * n_nodes,
        "edge_ptr": np.arange(count + 1, dtype=np.int64) * n_edges,
        "y": y,
        "attack_id": log.attack_id[decided].astype(np.int64),
        "frame_start": starts,
        "frame_stop": starts + window,
        "time_start": log.time[starts].astype(np.float64),
        "time_stop": log.time[decided].astype(np.float64),
    }
