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


def fit_normalisation(train: GraphSet, kind: str, benign_only: bool = True) -> dict[str, list[float]]:
    """Per-feature mean and std of node and edge features over the benign training windows
    (benign_only=False: over every window, labels unread: a calibration capture given as benign)."""
    if kind == "none":
        return {
            "x_mean": [0.0] * train.x.shape[1],
            "x_std": [1.0] * train.x.shape[1],
            "edge_mean": [0.0] * train.edge_attr.shape[1],
            "edge_std": [1.0] * train.edge_attr.shape[1],
        }
    benign = train.y == 0 if benign_only else torch.ones(len(train), dtype=torch.bool)
    benign_nodes = torch.repeat_interleave(benign, train.node_ptr[1:] - train.node_ptr[:-1])
    benign_edges = torch.repeat_interleave(benign, train.edge_ptr[1:] - train.edge_ptr[:-1])
    if not benign_nodes.any():
        raise DataError(
            "the training split has no benign windows, so normalisation statistics (fitted on "
            "benign training windows only) cannot be computed. Add attack-free captures to the "
            "training data, use smaller windows, or --dataset-config.normalisation none."
        )
    x, e = train.x[benign_nodes].double(), train.edge_attr[benign_edges].double()
    # Features that barely vary in benign traffic (is_unknown_id, a constant byte) would be
    # divided by ~0 and explode on attacks; a floor on std keeps them on a trainable scale.
    return {
        "x_mean": x.mean(0).tolist(),
        "x_std": x.std(0).clamp_min(STD_FLOOR).tolist(),
        "edge_mean": e.mean(0).tolist(),
        "edge_std": e.std(0).clamp_min(STD_FLOOR).tolist(),
    }


def normalise(graphs: GraphSet, stats: dict[str, list[float]]) -> GraphSet:
    x = (graphs.x - torch.tensor(stats["x_mean"])) / torch.tensor(stats["x_std"])
    edge_attr = (graphs.edge_attr - torch.tensor(stats["edge_mean"])) / torch.tensor(stats["edge_std"])
    return dataclasses.replace(graphs, x=x.clamp(-CLIP, CLIP), edge_attr=edge_attr.clamp(-CLIP, CLIP))
