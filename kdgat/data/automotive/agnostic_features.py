"""The vehicle-agnostic CAN feature set (--dataset-config.automotive.features agnostic).

The default set (graphs.py) describes each CAN ID by what it is on the training vehicle: an
embedding of its ID, an is_unknown_id flag, the absolute values of its payload bytes and its
period. None of that carries to a vehicle the model never saw: every ID is unknown there, so a
model that learnt "unknown ID = attack" from fuzzing flags every window of a new car.

This set keeps only what an ID does relative to its own window, and what the window does as a
whole, so the same attack looks the same on any bus:
- no ID embedding and no unknown-ID flag (the modality variant does not learn identities: every
  node is UNKNOWN_ID and no flag column is appended);
- per ID: its priority rank among the window's IDs (0 = lowest arbitration ID), its share of the
  window's frames (also against an even share), first/last position, inter-arrival mean and
  regularity (log-gap std, and its period against the window's median period), payload-change
  rate, byte entropy and payload spread (mean byte std, mean and max byte range), DLC, degree
  against the window's size, and whether it was absent from the window before it (new-ID burst);
- per window, broadcast to each of its nodes: distinct IDs per frame, share of IDs absent from
  the window before, log duration, and the mean and largest gap between consecutive frames.

It is computed from build_raw's arrays (the default builder is not changed, so the default set's
graphs and caches stay bit-identical), plus the frame times it needs for the window statistics.
Edge features are the default set's (transition count and gaps), which hold no identity.
"""

import numpy as np

from kdgat.data.automotive.frames import Frames
from kdgat.data.automotive.graphs import NODE_FEATURES, build_raw, window_starts

AGNOSTIC_NODE_FEATURES: tuple[str, ...] = (
    "share",
    "share_vs_even",
    "first_position",
    "last_position",
    "priority_rank",
    "byte_std_mean",
    "byte_range_mean",
    "byte_range_max",
    "dlc_mean",
    "payload_change_rate",
    "payload_entropy",
    "log_gap_mean",
    "log_gap_std",
    "log_gap_vs_window",
    "in_degree_share",
    "out_degree_share",
    "new_since_previous_window",
    "has_timing",
    "window_distinct_ids",
    "window_new_id_share",
    "window_log_duration",
    "window_log_step_mean",
    "window_log_step_max",
)

_COLUMN = {name: i for i, name in enumerate(NODE_FEATURES)}
_BYTE_STD = slice(_COLUMN["byte0_std"], _COLUMN["byte7_std"] + 1)
_BYTE_RANGE = slice(_COLUMN["byte0_range"], _COLUMN["byte7_range"] + 1)


def _new_since_previous(node_window: np.ndarray, node_entity: np.ndarray) -> np.ndarray:
    """1 where a node's ID is absent from the window before its own (0 in a block's first window).

    Nodes are sorted window-major and by ID, so (window, ID) keys are sorted and one searchsorted
    finds each node's (window - 1, ID) pair."""
    key = node_window * (1 << 32) + node_entity
    previous = (node_window - 1) * (1 << 32) + node_entity
    at = np.minimum(np.searchsorted(key, previous), len(key) - 1)
    present = key[at] == previous
    return ((~present) & (node_window > 0)).astype(np.float64)


def _window_median(
    values: np.ndarray, valid: np.ndarray, node_window: np.ndarray, num_windows: int
) -> np.ndarray:
    """Per window, the median of `values` over its nodes where valid (0 for a window with none)."""
    out = np.zeros(num_windows)
    order = np.lexsort((values, ~valid, node_window))  # by window, valid first, then by value
    counts = np.bincount(node_window[valid], minlength=num_windows)
    starts = np.searchsorted(node_window[order], np.arange(num_windows))
    has = counts > 0
    lo = starts[has] + (counts[has] - 1) // 2
    hi = starts[has] + counts[has] // 2
    out[has] = (values[order][lo] + values[order][hi]) / 2
    return out


def build_agnostic(
    frames: Frames, block_start: int, block_stop: int, window: int, stride: int
) -> dict[str, np.ndarray]:
    """build_raw's graphs with AGNOSTIC_NODE_FEATURES as node features (same nodes, edges, labels)."""
    raw = build_raw(frames, block_start, block_stop, window, stride)
    if not raw:
        return raw
    x = raw["x"].astype(np.float64)
    node_ptr = raw["node_ptr"]
    num_windows = len(node_ptr) - 1
    sizes = np.diff(node_ptr)
    node_window = np.repeat(np.arange(num_windows, dtype=np.int64), sizes)
    size = sizes[node_window].astype(np.float64)
    rank = (np.arange(len(node_window)) - node_ptr[node_window]) / np.maximum(size - 1, 1)
    share = x[:, _COLUMN["count"]]
    gap_mean = x[:, _COLUMN["log_gap_mean"]]
    repeated = share * window >= 2  # IDs with at least one inter-arrival gap in the window
    period = _window_median(gap_mean, repeated, node_window, num_windows)[node_window]
    new = _new_since_previous(node_window, raw["node_entity"])
    new_share = np.bincount(node_window, weights=new, minlength=num_windows) / sizes

    starts = block_start + window_starts(block_stop - block_start, window, stride)
    if frames.has_time:
        times = frames.time[starts[:, None] + np.arange(window)[None, :]]
        steps = np.log1p(np.abs(np.diff(times, axis=1)) * 1e3)  # log(1 + ms) as the default set
        duration = np.log1p((times[:, -1] - times[:, 0]) * 1e3)
    else:
        steps = np.zeros((num_windows, window - 1))
        duration = np.zeros(num_windows)
    per_window = {
        "window_distinct_ids": sizes / window,
        "window_new_id_share": new_share,
        "window_log_duration": duration,
        "window_log_step_mean": steps.mean(axis=1),
        "window_log_step_max": steps.max(axis=1),
    }
    columns = {
        "share": share,
        "share_vs_even": share * size,
        "first_position": x[:, _COLUMN["first_position"]],
        "last_position": x[:, _COLUMN["last_position"]],
        "priority_rank": rank,
        "byte_std_mean": x[:, _BYTE_STD].mean(axis=1),
        "byte_range_mean": x[:, _BYTE_RANGE].mean(axis=1),
        "byte_range_max": x[:, _BYTE_RANGE].max(axis=1),
        "dlc_mean": x[:, _COLUMN["dlc_mean"]],
        "payload_change_rate": x[:, _COLUMN["payload_change_rate"]],
        "payload_entropy": x[:, _COLUMN["payload_entropy"]],
        "log_gap_mean": gap_mean,
        "log_gap_std": x[:, _COLUMN["log_gap_std"]],
        "log_gap_vs_window": np.where(repeated, gap_mean - period, 0.0),
        "in_degree_share": x[:, _COLUMN["in_degree"]] / size,
        "out_degree_share": x[:, _COLUMN["out_degree"]] / size,
        "new_since_previous_window": new,
        "has_timing": x[:, _COLUMN["has_timing"]],
        **{name: value[node_window] for name, value in per_window.items()},
    }
    agnostic = np.empty((len(node_window), len(AGNOSTIC_NODE_FEATURES)), dtype=np.float32)
    for j, name in enumerate(AGNOSTIC_NODE_FEATURES):
        agnostic[:, j] = columns[name]
    return {**raw, "x": agnostic}
