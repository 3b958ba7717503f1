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
    x_mean, x_std = _column_stats(lambda cols: train.node_columns(cols, benign), train.node_dim, nodes)
    edge_mean, edge_std = _column_stats(lambda cols: train.edge_columns(cols, benign), train.edge_dim, edges)
    return {"x_mean": x_mean, "x_std": x_std, "edge_mean": edge_mean, "edge_std": edge_std}


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
