"""The training vocabulary of node identities and feature normalisation, both fitted on benign
training data only, so nothing about validation, test or attacks leaks into them."""

import dataclasses

import numpy as np
import torch

from kdgat.common.errors import DataError
from kdgat.data.graphset import GraphSet

STD_FLOOR = 0.05
CLIP = 20.0


def build_vocabulary(identities: list[np.ndarray]) -> dict[int, int]:
    """Identity -> index 1..V (0 is UNKNOWN_ID), in sorted order of the identities."""
    ids = np.unique(np.concatenate(identities or [np.zeros(0, np.int64)]))
    return {int(entity): index for index, entity in enumerate(ids.tolist(), start=1)}


# Memory the fit may use for one block of feature columns (float64).
FIT_BYTES = 256 << 20


def fit_normalisation(train, kind: str, benign_only: bool = True) -> dict[str, list[float]]:
    """Per-feature mean and std of node and edge features over the benign training windows
    (benign_only=False: over every window, labels unread: a calibration capture given as benign).
    train: a GraphSet or a GraphStore (read a few columns at a time, FIT_BYTES at most)."""
    if kind == "none":
        return {
            "x_mean": [0.0] * train.node_dim,
            "x_std": [1.0] * train.node_dim,
            "edge_mean": [0.0] * train.edge_dim,
            "edge_std": [1.0] * train.edge_dim,
        }
    benign = train.y == 0 if benign_only else torch.ones(len(train), dtype=torch.bool)
    nodes = int((train.node_ptr[1:] - train.node_ptr[:-1])[benign].sum())
    edges = int((train.edge_ptr[1:] - train.edge_ptr[:-1])[benign].sum())
    if nodes == 0:
        raise DataError(
            "the training split has no benign windows, so normalisation statistics (fitted on "
            "benign training windows only) cannot be computed. Add attack-free captures to the "
            "training data, use smaller windows, or --dataset-config.normalisation none."
        )
    # Features that barely vary in benign traffic (is_unknown_id, a constant byte) would be
    # divided by ~0 and explode on attacks; a floor on std keeps them on a trainable scale.
    node_counts = train.node_ptr[1:] - train.node_ptr[:-1]
    edge_counts = train.edge_ptr[1:] - train.edge_ptr[:-1]
    x_mean, x_std = _feature_stats(train.node_columns, benign, node_counts, train.node_dim, nodes)
    edge_mean, edge_std = _feature_stats(train.edge_columns, benign, edge_counts, train.edge_dim, edges)
    return {"x_mean": x_mean, "x_std": x_std, "edge_mean": edge_mean, "edge_std": edge_std}


def _feature_stats(read, mask: torch.Tensor, counts: torch.Tensor, width: int, rows: int):
    """Mean and floored std of each column read(columns, graph_mask) gives over the graphs in mask.

    While two columns of every row fit in FIT_BYTES, columns are read a block at a time and torch
    reduces each block as it would the whole matrix (_column_stats: the figures of the in-memory
    fit, bit for bit). Past that (more than FIT_BYTES / 16 rows: ~17 M edges, a corpus of ~10^8
    frames) even two columns would hold the corpus in memory, so the graphs are read in groups of
    at most FIT_BYTES of rows and the statistics accumulated over the groups in float64 (two
    passes: the mean, then the squared deviations from it): equal to the whole-matrix figures to
    rounding (~1e-15 relative), no longer to the last bit."""
    if 16 * rows <= FIT_BYTES:
        return _column_stats(lambda cols: read(cols, mask), width, rows)
    groups = _graph_groups(mask, counts, max(1, FIT_BYTES // (16 * max(width, 1))))
    every = list(range(width))
    total = torch.zeros(width, dtype=torch.float64)
    for group in groups:
        total += read(every, group).sum(0)
    mean = total / rows
    squares = torch.zeros(width, dtype=torch.float64)
    for group in groups:
        squares += read(every, group).sub_(mean).square_().sum(0)  # in place: one block held
    std = (squares / max(rows - 1, 1)).sqrt().clamp_min(STD_FLOOR)
    return mean.tolist(), std.tolist()


def _graph_groups(mask: torch.Tensor, counts: torch.Tensor, rows_per_group: int) -> list[torch.Tensor]:
    """mask split into masks of consecutive selected graphs holding about rows_per_group rows each
    (a group ends at the first graph that reaches the limit)."""
    selected = torch.nonzero(mask).flatten()
    ends = torch.cumsum(counts[selected], 0)
    group_of = torch.div(ends - 1, rows_per_group, rounding_mode="floor")
    groups = []
    for g in torch.unique(group_of).tolist():
        member = torch.zeros_like(mask)
        member[selected[group_of == g]] = True
        groups.append(member)
    return groups


def _column_stats(columns, width: int, rows: int) -> tuple[list[float], list[float]]:
    """Mean and floored std of each of `width` feature columns over `rows` rows, read through
    columns(list of column numbers) -> float64 [rows, k], a block of columns at a time.

    torch reduces a [rows, k] float64 block column by column in the same order for every k >= 2
    (a lone [rows, 1] column is reduced differently), so a block's statistics are bit for bit
    those of the whole [rows, width] matrix (tests/data/test_store.py checks it): a lone last
    column is read twice to make a block of two."""
    block = max(2, FIT_BYTES // max(8 * rows, 1))
    means: list[float] = []
    stds: list[float] = []
    for start in range(0, width, block):
        wanted = list(range(start, min(start + block, width)))
        cols = wanted * 2 if len(wanted) == 1 and width > 1 else wanted
        values = columns(cols)
        means += values.mean(0)[: len(wanted)].tolist()
        stds += values.std(0).clamp_min(STD_FLOOR)[: len(wanted)].tolist()
    return means, stds


def normalise(graphs, stats: dict[str, list[float]]):
    """graphs with features normalised by stats: a GraphSet at once, a GraphStore per batch."""
    if not isinstance(graphs, GraphSet):
        return graphs.normalised(stats)
    x = (graphs.x - torch.tensor(stats["x_mean"])) / torch.tensor(stats["x_std"])
    edge_attr = (graphs.edge_attr - torch.tensor(stats["edge_mean"])) / torch.tensor(stats["edge_std"])
    return dataclasses.replace(graphs, x=x.clamp(-CLIP, CLIP), edge_attr=edge_attr.clamp(-CLIP, CLIP))
