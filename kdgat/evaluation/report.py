"""Detection reports shared by every stage and by `python -m kdgat.evaluate`: the scores a
modality decides on, metrics at a threshold (all test sets and each alone, per attack type, flow-level
where edges stand for flows), the modality's own figures, and TensorBoard PR curves.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from configs import ExperimentConfig
from kdgat.data.graphs import Graphs, concat_graphs
from kdgat.evaluation.field_metrics import field_metrics, field_metrics_by_attack_type
from kdgat.evaluation.flow_metrics import flow_report, window_scores_on_edges
from kdgat.evaluation.metrics import binary_metrics, recall_by_attack_type
from kdgat.evaluation.modality_scoring import modality_scoring


def decision_scores(cfg: ExperimentConfig, graphs: Graphs, scores: np.ndarray) -> np.ndarray:
    """The scores thresholded for graphs' decisions (the modality may filter them over time)."""
    return modality_scoring(cfg.modality).decision_scores(graphs, scores, cfg.dataset_config)


def scores_are_probabilities(cfg: ExperimentConfig) -> bool:
    """Whether the run's score is an attack probability (a classifier's or the DQN fusion's), so
    its calibration (ECE) means something; a VGAE's anomaly score is not one."""
    return cfg.model_architecture != "VGAE"


def report(
    y: np.ndarray, scores: np.ndarray, threshold: float, attack_types: list[str], *, probability: bool
) -> dict[str, Any]:
    """binary_metrics and the field's metrics (kdgat/evaluation/field_metrics.py) of these windows,
    and per attack type its recall and the field's metrics against every benign window."""
    out = binary_metrics(y, scores, threshold)
    out.update(field_metrics(y, scores, threshold, probability))
    out["attack_types"] = recall_by_attack_type(attack_types, y, scores >= threshold)
    extra = field_metrics_by_attack_type(attack_types, y, scores, threshold, probability)
    for name, figures in out["attack_types"].items():
        figures.update(extra.get(name, {}))
    return out


def evaluate_scores(
    val: tuple[np.ndarray, np.ndarray],
    tests: dict[str, tuple[np.ndarray, np.ndarray, list[str]]],
    threshold: float,
    flows: dict[str, tuple[Graphs, np.ndarray]] | None = None,
    flow_source: str = "window",
    flow_threshold: float = 0.5,
    *,
    probability: bool,
) -> dict[str, Any]:
    """Validation and test metrics at one threshold: all test folders together and each alone.

    flows (graphs whose edges stand for labelled flows): each test set's graphs and edge scores;
    flow-level metrics go under 'flows' beside the window-level ones (kdgat/evaluation/flow_metrics.py).
    probability: the scores are attack probabilities (scores_are_probabilities), for the ECE."""
    out: dict[str, Any] = {"val": binary_metrics(val[0], val[1], threshold), "test_by_split": {}}
    out["val"].update(field_metrics(val[0], val[1], threshold, probability))
    for name, (y, scores, types) in tests.items():
        out["test_by_split"][name] = report(y, scores, threshold, types, probability=probability)
    y = np.concatenate([v[0] for v in tests.values()])
    scores = np.concatenate([v[1] for v in tests.values()])
    types = [t for v in tests.values() for t in v[2]]
    out["test"] = report(y, scores, threshold, types, probability=probability)
    if flows:
        for name, (graphs, edge_scores) in flows.items():
            out["test_by_split"][name]["flows"] = flow_report(
                graphs, edge_scores, flow_threshold, flow_source
            )
        every = concat_graphs([g for g, _ in flows.values()])
        edge_scores = np.concatenate([s for _, s in flows.values()])
        out["test"]["flows"] = flow_report(every, edge_scores, flow_threshold, flow_source)
    return out


def add_modality_reports(
    metrics: dict[str, Any],
    cfg: ExperimentConfig,
    tests: Mapping[str, Graphs],
    scores: dict[str, np.ndarray],
    threshold: float,
) -> None:
    """The modality's own figures (BATADAL's S) beside each test set's, and beside the overall test
    figures when there is one test set."""
    modality = modality_scoring(cfg.modality)
    for name, graphs in tests.items():
        metrics["test_by_split"][name].update(modality.report(graphs, scores[name], threshold))
    if len(tests) == 1:
        [(name, graphs)] = tests.items()
        metrics["test"].update(modality.report(graphs, scores[name], threshold))


def window_flows(
    tests: Mapping[str, Graphs], scores: dict[str, np.ndarray]
) -> dict[str, tuple[Graphs, np.ndarray]] | None:
    """Flow inputs where each edge takes its window's score (models without an edge read-out)."""
    # A test set without windows (a capture shorter than one test block) has no edges to score.
    tests = {name: g for name, g in tests.items() if len(g)}
    if not tests or not all(g.has_edge_labels for g in tests.values()):
        return None
    return {name: (g, window_scores_on_edges(g, scores[name])) for name, g in tests.items()}


def log_pr_curves(run_dir: Path, curves: dict[str, tuple[np.ndarray, np.ndarray]], step: int) -> None:
    """TensorBoard PR curves (scores min-max scaled into [0, 1], which keeps the curve's shape)."""
    writer = SummaryWriter(str(run_dir), filename_suffix=".kdgat_pr")
    for name, (y, scores) in curves.items():
        if len(y) == 0:
            continue
        span = scores.max() - scores.min()
        scaled = (scores - scores.min()) / span if span > 0 else np.zeros_like(scores)
        writer.add_pr_curve(f"pr/{name}", torch.from_numpy(y), torch.from_numpy(scaled), global_step=step)
    writer.close()
