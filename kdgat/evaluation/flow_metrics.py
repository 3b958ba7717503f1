"""Flow-level detection metrics, as the network-intrusion field reports them (E-GraphSAGE and
successors), beside the window-level ones.

Every edge of a host graph stands for the flows between one host pair in one window, some
benign and some malicious (GraphSet.edge_flows). An edge's decision is the decision on each of
its flows, so the confusion matrix counts flows: a flagged edge with 3 attack and 1 benign flows
adds 3 true and 1 false positives. Edges come from the GAT's edge read-out where the model has
one, else every edge takes its window's score ('window' source: the window decision applied to
its flows). With stride = window (the default) every flow is in exactly one window and each flow
counts once; overlapping windows count a flow once per window it is in. Unlabelled flows
(policy context) are not counted. Per attack type, an edge counts as its majority type.
"""

from typing import Any

import numpy as np
import torch

from kdgat.data.graphs import Graphs


def window_scores_on_edges(graphs: Graphs, window_scores: np.ndarray) -> np.ndarray:
    """Each edge gets the score of the window it is in."""
    counts = (graphs.edge_ptr[1:] - graphs.edge_ptr[:-1]).numpy()
    return np.repeat(np.asarray(window_scores, dtype=np.float64), counts)


def weighted_auroc(scores: np.ndarray, attack: np.ndarray, benign: np.ndarray) -> float | None:
    """P(score of a random attack flow > that of a random benign flow), ties counting half."""
    total_a, total_b = float(attack.sum()), float(benign.sum())
    if total_a == 0 or total_b == 0:
        return None
    distinct, group = np.unique(scores, return_inverse=True)
    a = np.bincount(group, weights=attack, minlength=len(distinct))
    b = np.bincount(group, weights=benign, minlength=len(distinct))
    below = np.cumsum(b) - b
    return float((a * (below + 0.5 * b)).sum() / (total_a * total_b))


def flow_metrics(
    scores: np.ndarray, flows: np.ndarray, threshold: float, attack_types: list[str] | None = None
) -> dict[str, Any]:
    """Flow-weighted precision, recall, F1, benign FPR, AUROC, the flag-everything floor and
    per-type recall. flows: (edges, 2) benign and attack flow counts of each edge."""
    scores = np.asarray(scores, dtype=np.float64)
    benign, attack = flows[:, 0].astype(np.float64), flows[:, 1].astype(np.float64)
    flagged = scores >= threshold
    tp, fn = float(attack[flagged].sum()), float(attack[~flagged].sum())
    fp, tn = float(benign[flagged].sum()), float(benign[~flagged].sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    share = (tp + fn) / (tp + fn + fp + tn) if tp + fn + fp + tn else 0.0
    out: dict[str, Any] = {
        "n_flows": int(tp + fn + fp + tn),
        "n_attack_flows": int(tp + fn),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "benign_fpr": fp / (fp + tn) if fp + tn else 0.0,
        "auroc": weighted_auroc(scores, attack, benign),
        "threshold": threshold,
        "confusion_matrix": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
        "flag_all": {"precision": share, "recall": 1.0, "f1": 2 * share / (1 + share) if share else 0.0},
    }
    if attack_types is not None:
        types = np.asarray(attack_types, dtype=object)
        by_type = {}
        for name in sorted(set(attack_types) - {"benign"}):
            mine = (types == name) & (attack > 0)
            if mine.any():
                total = float(attack[mine].sum())
                by_type[name] = {"n_flows": int(total), "recall": float(attack[mine & flagged].sum()) / total}
        out["attack_types"] = by_type
    return out


def flow_report(graphs: Graphs, edge_scores: np.ndarray, threshold: float, source: str) -> dict[str, Any]:
    """flow_metrics of one graph set; source says where the edge scores came from."""
    if graphs.edge_flows is None:
        if len(graphs):
            raise ValueError("flow metrics need graphs whose edges stand for labelled flows (edge_flows)")
        # A capture whose test block holds no full window (CICIDS Heartbleed: 11 flows) has an
        # empty test set, stored without the optional edge parts: it scores no flow.
        flows: np.ndarray = np.zeros((0, 2))
        types: list[str] | None = []
    else:
        edge_flows = graphs.edge_flows
        flows = edge_flows.numpy() if isinstance(edge_flows, torch.Tensor) else edge_flows
        types = graphs.edge_attack_type
    out = flow_metrics(edge_scores, flows, threshold, types)
    out["scored_by"] = source
    return out
