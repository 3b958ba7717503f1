"""The graph stage: VGAE (unsupervised), GAT classifier, fusion GAT (GAT over node features plus frozen
VGAE outputs), with all_samples / normals_only / curriculum_classifier; prepared graphs -> trained
model -> metrics dict, with the threshold chosen on validation.
"""

from pathlib import Path
from typing import Any

import numpy as np
import torch

from configs import ExperimentConfig
from kdgat.config.presets import preset_name
from kdgat.config.resolve import calibration_rule
from kdgat.data.dataset import Splits
from kdgat.data.graphs import Graphs
from kdgat.data.placement import place_on_device
from kdgat.evaluation.metrics import binary_metrics
from kdgat.evaluation.predictions import write_predictions
from kdgat.evaluation.report import (
    add_modality_reports,
    decision_scores,
    evaluate_scores,
    log_pr_curves,
    scores_are_probabilities,
    window_flows,
)
from kdgat.evaluation.thresholds import at_each_method, calibration_choice, threshold_choice
from kdgat.evaluation.thresholds import flow_threshold as edge_threshold
from kdgat.models import build_from_dims, count_parameters, wants_edge_readout
from kdgat.runs.prerequisites import needs
from kdgat.runs.store import portable
from kdgat.stages.distillation import DistilledTask, load_graph_teacher
from kdgat.stages.frozen import bound, upstream_run
from kdgat.stages.fusion import augment_with_vgae
from kdgat.training.checkpoint import RunInfo, read_best
from kdgat.training.graph_trainer import fit, predict
from kdgat.training.tasks import ClassifierTask, Task, VGAETask


def threshold_decision(
    cfg: ExperimentConfig,
    threshold: float,
    val: tuple[np.ndarray, np.ndarray],
    tests: dict[str, tuple[np.ndarray, np.ndarray, list[str]]],
    calibrated: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """How the threshold was chosen, and the test metrics every method would have given; with a
    calibration capture, the calibration threshold that decided the test windows too."""
    test = (np.concatenate([t[0] for t in tests.values()]), np.concatenate([t[1] for t in tests.values()]))
    probability = cfg.model_architecture != "VGAE"
    out: dict[str, Any] = {
        "threshold_choice": threshold_choice(cfg, threshold, val),
        "test_by_threshold": at_each_method(cfg.learning_config.threshold, val, test, probability),
    }
    if calibrated is not None:
        at = binary_metrics(test[0], test[1], calibrated["threshold"])
        out["calibration_threshold"] = calibrated
        out["test_by_threshold"]["calibration"] = {
            "threshold": calibrated["threshold"],
            **{k: at[k] for k in ("f1", "precision", "recall", "benign_fpr")},
        }
    return out


def calibrated_threshold(
    cfg: ExperimentConfig,
    task: Task,
    model: torch.nn.Module,
    graphs: Graphs,
    vgae: Any,
    run_threshold: float,
    device: torch.device,
) -> dict[str, Any]:
    """The threshold chosen on the calibration windows' scores (--learning-config.threshold
    .calibration*), with how: the target's test windows are decided at it."""
    if vgae is not None:
        graphs = augment_with_vgae(graphs, vgae.model, device)
    scores = decision_scores(cfg, graphs, predict(task, model, graphs, device, cfg))
    probability = cfg.model_architecture != "VGAE"
    return calibration_choice(
        cfg.learning_config.threshold, calibration_rule(cfg), scores, run_threshold, probability
    )


def train_graph_stage(
    cfg: ExperimentConfig, splits: Splits, run_dir: Path, device: torch.device, extra: dict[str, Any]
) -> dict[str, Any]:
    train: Graphs = splits.train
    val: Graphs = splits.val
    tests: dict[str, Graphs] = dict(splits.test)
    upstream: dict[str, str] = {}
    vgae = None
    if needs(cfg, "vgae_run"):
        purpose = f"{preset_name(cfg)} ({cfg.learning_type}, {cfg.training_mode})"
        vgae = upstream_run(cfg, "vgae_run", splits, device, purpose)
        upstream["vgae_run"] = portable(vgae.path, run_dir)
    curriculum = None
    if cfg.training_mode == "curriculum_classifier":
        assert vgae is not None, "needs(cfg, 'vgae_run') holds for curriculum runs"
        curriculum = predict(VGAETask(vgae.config, train), vgae.model, train, device, vgae.config)
    if cfg.learning_type == "fusion":
        assert vgae is not None, "needs(cfg, 'vgae_run') holds for fusion runs"
        train, val = augment_with_vgae(train, vgae.model, device), augment_with_vgae(val, vgae.model, device)
        tests = {name: augment_with_vgae(g, vgae.model, device) for name, g in tests.items()}
    # On a GPU, the sets read every epoch stay there when they fit (kdgat/data/placement.py).
    train, val = place_on_device([train, val], device)

    task: Task
    if cfg.model_architecture == "VGAE":
        task = VGAETask(cfg, train)
    else:
        task = ClassifierTask(cfg, train, curriculum)
    torch.manual_seed(cfg.training_config.seed)
    dims = {"num_ids": splits.num_ids, "node_dim": train.node_dim, "edge_dim": train.edge_dim}
    if wants_edge_readout(cfg, train.has_edge_labels):
        dims["edge_readout"] = True
    model = build_from_dims(cfg, dims)
    teacher_params = None
    if needs(cfg, "teacher_run"):
        purpose = f"{preset_name(cfg)} (distillation)"
        teacher_dir = bound(cfg, "teacher_run", purpose)
        teacher = load_graph_teacher(teacher_dir, splits.vocabulary, splits.normalisation, device, purpose)
        task = DistilledTask(task, teacher, model)
        upstream["teacher_run"] = portable(teacher_dir, run_dir)
        teacher_params = count_parameters(teacher.model)
        print(f"distilling from {teacher_dir} ({teacher_params} parameters)", flush=True)
    info = RunInfo(**extra, upstream=upstream, input_dims=dims)
    summary = fit(cfg, task, model, val, run_dir, device, info)

    model.load_state_dict(read_best(run_dir, device).model)
    val_scores = decision_scores(cfg, val, predict(task, model, val, device, cfg))
    threshold = task.threshold(val.y.numpy(), val_scores)
    validation_cut, calibrated = threshold, None
    if splits.calibration_fit is not None:  # the target's windows: decided on its calibration's scores
        graphs = splits.calibration_fit.graphs
        calibrated = calibrated_threshold(cfg, task, model, graphs, vgae, threshold, device)
        threshold = calibrated["threshold"]
    test_scores = {
        n: (g.y.numpy(), decision_scores(cfg, g, predict(task, model, g, device, cfg)), g.attack_type)
        for n, g in tests.items()
    }
    window_scores = {n: s for n, (_, s, _) in test_scores.items()}
    flow_threshold = None
    if dims.get("edge_readout"):
        # Flows are decided by the edge read-out, so their threshold is chosen on validation flows.
        val_flows = val.edge_flows
        assert val_flows is not None, "an edge read-out is built only where graphs have edge labels"
        val_edge_scores = predict(task, model, val, device, cfg, per="edge")
        flow_threshold = edge_threshold(cfg, val_flows.numpy(), val_edge_scores)
        flows: dict[str, tuple[Graphs, np.ndarray]] | None = {
            n: (g, predict(task, model, g, device, cfg, per="edge")) for n, g in tests.items()
        }
        metrics = evaluate_scores(
            (val.y.numpy(), val_scores),
            test_scores,
            threshold,
            flows,
            "edge_readout",
            flow_threshold,
            probability=scores_are_probabilities(cfg),
        )
    else:
        flows = window_flows(tests, window_scores)
        metrics = evaluate_scores(
            (val.y.numpy(), val_scores),
            test_scores,
            threshold,
            flows,
            "window",
            threshold,
            probability=scores_are_probabilities(cfg),
        )
    add_modality_reports(metrics, cfg, splits.test, window_scores, threshold)
    write_predictions(run_dir, splits.test, window_scores, threshold)
    curves = {"val": (val.y.numpy(), val_scores)}
    curves.update({f"test/{n}": (y, score) for n, (y, score, _) in test_scores.items()})
    log_pr_curves(run_dir, curves, summary["best_epoch"])
    # metrics.json's threshold stays the validation one: kdgat.evaluate and fusion runs read it.
    metrics.update(threshold=validation_cut, params=count_parameters(model), upstream=upstream, **summary)
    if flow_threshold is not None:
        metrics["flow_threshold"] = flow_threshold
    val_pair = (val.y.numpy(), val_scores)
    metrics.update(threshold_decision(cfg, validation_cut, val_pair, test_scores, calibrated))
    if teacher_params is not None:
        metrics["teacher_params"] = teacher_params
    return metrics
