"""The three KD-GAT stages, each: prepared graphs -> trained model -> metrics dict.

Graph stage: VGAE (unsupervised), GAT classifier, fusion GAT (GAT over node features plus frozen
VGAE outputs), with all_samples / normals_only / curriculum_classifier. DQN stage: decision-level
fusion of a frozen VGAE and a frozen GAT. Every stage reports validation and test metrics with
the threshold chosen on validation, per test folder and per attack type.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

import configs
from configs import ExperimentConfig
from kdgat.data.dataset import Splits
from kdgat.data.graphset import GraphSet
from kdgat.data.registry import modality_of
from kdgat.distill import DistilledTask, dqn_teacher_q_values, load_graph_teacher
from kdgat.dqn_agent import train_dqn
from kdgat.errors import PrerequisiteError
from kdgat.flow_metrics import flow_report, window_scores_on_edges
from kdgat.fusion import StateScaler, augment_with_vgae, fused_probability, fusion_inputs, greedy_alpha
from kdgat.metrics import binary_metrics, recall_by_attack_type
from kdgat.models import build_from_dims, build_q_network, count_parameters, wants_edge_readout
from kdgat.predictions import write_predictions
from kdgat.runs import Run, portable
from kdgat.stage_graph import needs
from kdgat.training.graph_trainer import fit, predict, predict_edges
from kdgat.training.tasks import ClassifierTask, Task, VGAETask
from kdgat.upstream import check_same_data


def decision_scores(cfg: ExperimentConfig, graphs: GraphSet, scores: np.ndarray) -> np.ndarray:
    """The scores thresholded for graphs' decisions (the modality may filter them over time)."""
    return modality_of(cfg).decision_scores(graphs, scores, cfg.dataset_config)


def report(y: np.ndarray, scores: np.ndarray, threshold: float, attack_types: list[str]) -> dict[str, Any]:
    out = binary_metrics(y, scores, threshold)
    out["attack_types"] = recall_by_attack_type(attack_types, y, scores >= threshold)
    return out


def evaluate_scores(
    val: tuple[np.ndarray, np.ndarray],
    tests: dict[str, tuple[np.ndarray, np.ndarray, list[str]]],
    threshold: float,
    flows: dict[str, tuple[GraphSet, np.ndarray]] | None = None,
    flow_source: str = "window",
    flow_threshold: float = 0.5,
) -> dict[str, Any]:
    """Validation and test metrics at one threshold: all test folders together and each alone.

    flows (graphs whose edges stand for labelled flows): each test set's graphs and edge scores;
    flow-level metrics go under 'flows' beside the window-level ones (kdgat/flow_metrics.py)."""
    out: dict[str, Any] = {"val": binary_metrics(val[0], val[1], threshold), "test_by_split": {}}
    for name, (y, scores, types) in tests.items():
        out["test_by_split"][name] = report(y, scores, threshold, types)
    y = np.concatenate([v[0] for v in tests.values()])
    scores = np.concatenate([v[1] for v in tests.values()])
    types = [t for v in tests.values() for t in v[2]]
    out["test"] = report(y, scores, threshold, types)
    if flows:
        for name, (graphs, edge_scores) in flows.items():
            out["test_by_split"][name]["flows"] = flow_report(
                graphs, edge_scores, flow_threshold, flow_source
            )
        every = GraphSet.concat([g for g, _ in flows.values()])
        edge_scores = np.concatenate([s for _, s in flows.values()])
        out["test"]["flows"] = flow_report(every, edge_scores, flow_threshold, flow_source)
    return out


def add_modality_reports(
    metrics: dict[str, Any],
    cfg: ExperimentConfig,
    tests: dict[str, GraphSet],
    scores: dict[str, np.ndarray],
    threshold: float,
) -> None:
    """The modality's own figures (BATADAL's S) beside each test set's, and beside the overall test
    figures when there is one test set."""
    modality = modality_of(cfg)
    for name, graphs in tests.items():
        metrics["test_by_split"][name].update(modality.report(graphs, scores[name], threshold))
    if len(tests) == 1:
        metrics["test"].update(modality.report(*tests.values(), *scores.values(), threshold))


def window_flows(
    tests: dict[str, GraphSet], scores: dict[str, np.ndarray]
) -> dict[str, tuple[GraphSet, np.ndarray]] | None:
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


def _bound(cfg: ExperimentConfig, field: str, purpose: str) -> Path:
    """The run bound to a prerequisite field (kdgat.stage_graph): run_experiment binds them all."""
    path = getattr(cfg, field)
    if path is None:
        raise PrerequisiteError(
            f"{purpose}: {field} is not bound. Train through kdgat.experiment.run_experiment "
            f"(train.py, launch.py), which binds every run an experiment builds on, or set {field}."
        )
    return Path(path)


def _upstream_run(
    cfg: ExperimentConfig, field: str, splits: Splits, device: torch.device, purpose: str
) -> Run:
    """A bound upstream run, frozen on device, checked to have seen identically prepared graphs."""
    run = Run.open(_bound(cfg, field, purpose), device)
    check_same_data(run, splits.vocabulary, splits.normalisation, purpose)
    return run


def _vgae_threshold(vgae: Run) -> float:
    return float(vgae.metrics["threshold"])


def train_graph_stage(
    cfg: ExperimentConfig, splits: Splits, run_dir: Path, device: torch.device, extra: dict[str, Any]
) -> dict[str, Any]:
    train, val, tests = splits.train, splits.val, dict(splits.test)
    upstream: dict[str, str] = {}
    vgae = None
    if needs(cfg, "vgae_run"):
        purpose = f"{configs.preset_name(cfg)} ({cfg.learning_type}, {cfg.training_mode})"
        vgae = _upstream_run(cfg, "vgae_run", splits, device, purpose)
        upstream["vgae_run"] = portable(vgae.path, run_dir)
    curriculum = None
    if cfg.training_mode == "curriculum_classifier":
        curriculum = predict(VGAETask(vgae.config, train), vgae.model, train, device, vgae.config)
    if cfg.learning_type == "fusion":
        train, val = augment_with_vgae(train, vgae.model, device), augment_with_vgae(val, vgae.model, device)
        tests = {name: augment_with_vgae(g, vgae.model, device) for name, g in tests.items()}

    task: Task
    if cfg.model_architecture == "VGAE":
        task = VGAETask(cfg, train)
    else:
        task = ClassifierTask(cfg, train, curriculum)
    torch.manual_seed(cfg.training_config.seed)
    dims = {"num_ids": splits.num_ids, "node_dim": train.x.shape[1], "edge_dim": train.edge_attr.shape[1]}
    if wants_edge_readout(cfg, train.has_edge_labels):
        dims["edge_readout"] = True
    model = build_from_dims(cfg, dims)
    teacher_params = None
    if needs(cfg, "teacher_run"):
        purpose = f"{configs.preset_name(cfg)} (distillation)"
        teacher_dir = _bound(cfg, "teacher_run", purpose)
        teacher = load_graph_teacher(teacher_dir, splits.vocabulary, splits.normalisation, device, purpose)
        task = DistilledTask(task, teacher, model)
        upstream["teacher_run"] = portable(teacher_dir, run_dir)
        teacher_params = count_parameters(teacher.model)
        print(f"distilling from {teacher_dir} ({teacher_params} parameters)", flush=True)
    summary = fit(cfg, task, model, val, run_dir, device, {**extra, "upstream": upstream, "input_dims": dims})

    best = torch.load(run_dir / "checkpoints" / "best.pt", map_location=device, weights_only=False)
    model.load_state_dict(best["model"])
    val_scores = decision_scores(cfg, val, predict(task, model, val, device, cfg))
    threshold = task.threshold(val.y.numpy(), val_scores)
    test_scores = {
        n: (g.y.numpy(), decision_scores(cfg, g, predict(task, model, g, device, cfg)), g.attack_type)
        for n, g in tests.items()
    }
    window_scores = {n: s for n, (_, s, _) in test_scores.items()}
    if dims.get("edge_readout"):
        flows = {n: (g, predict_edges(task, model, g, device, cfg)) for n, g in tests.items()}
        metrics = evaluate_scores((val.y.numpy(), val_scores), test_scores, threshold, flows, "edge_readout")
    else:
        flows = window_flows(tests, window_scores)
        metrics = evaluate_scores(
            (val.y.numpy(), val_scores), test_scores, threshold, flows, "window", threshold
        )
    add_modality_reports(metrics, cfg, splits.test, window_scores, threshold)
    write_predictions(run_dir, splits.test, window_scores, threshold)
    curves = {"val": (val.y.numpy(), val_scores)}
    curves.update({f"test/{n}": (y, score) for n, (y, score, _) in test_scores.items()})
    log_pr_curves(run_dir, curves, summary["best_epoch"])
    metrics.update(threshold=threshold, params=count_parameters(model), upstream=upstream, **summary)
    if teacher_params is not None:
        metrics["teacher_params"] = teacher_params
    return metrics


DQN_BLOCK = 16  # consecutive validation windows kept together when validation is halved


def dqn_graphs(cfg: ExperimentConfig, splits: Splits) -> tuple[GraphSet, GraphSet]:
    """Graphs the agent learns from and graphs that select its best epoch.

    'validation' (default): the frozen VGAE and GAT never trained on validation graphs, so their
    outputs there are what they will be on new data; on training graphs the GAT is near-perfect
    and the agent would only learn to trust it. Validation is halved in alternating blocks of
    DQN_BLOCK consecutive windows (learn / select). 'train': learn on training graphs, select on
    validation.
    """
    if cfg.learning_config.dqn.fit_on == "train":
        return splits.train, splits.val
    block = (torch.arange(len(splits.val)) // DQN_BLOCK) % 2
    return splits.val.subset(block == 0), splits.val.subset(block == 1)


def train_dqn_stage(
    cfg: ExperimentConfig, splits: Splits, run_dir: Path, device: torch.device, extra: dict[str, Any]
) -> dict[str, Any]:
    purpose = f"{configs.preset_name(cfg)} (DQN fusion)"
    vgae = _upstream_run(cfg, "vgae_run", splits, device, purpose)
    gat = _upstream_run(cfg, "gat_run", splits, device, purpose)
    threshold = _vgae_threshold(vgae)

    def inputs(graphs: GraphSet):
        return fusion_inputs(cfg, graphs, vgae.model, threshold, gat.model, device)

    fit_graphs, select_graphs = dqn_graphs(cfg, splits)
    train_in, val_in = inputs(fit_graphs), inputs(select_graphs)
    tests_in = {name: inputs(g) for name, g in splits.test.items()}
    scaler = StateScaler(train_in.state)
    upstream = {"vgae_run": portable(vgae.path, run_dir), "gat_run": portable(gat.path, run_dir)}
    teacher_q, teacher_params = None, None
    if needs(cfg, "teacher_run"):
        teacher_dir = _bound(cfg, "teacher_run", purpose)
        teacher_q = dqn_teacher_q_values(
            teacher_dir,
            fit_graphs,
            splits.vocabulary,
            splits.normalisation,
            device,
            purpose,
            cfg.learning_config.dqn.actions,
        ).cpu()
        upstream["teacher_run"] = portable(teacher_dir, run_dir)
        teacher_params = Run.open(teacher_dir).metrics["params"]
        print(f"distilling Q-values from {teacher_dir} ({teacher_params} parameters)", flush=True)
    torch.manual_seed(cfg.training_config.seed)
    q_net = build_q_network(cfg, train_in.state.shape[1])  # state width derived from the data
    summary = train_dqn(
        cfg,
        q_net,
        train_in,
        val_in,
        scaler,
        run_dir,
        {**extra, "upstream": upstream, "state_scaler": scaler.state_dict()},
        teacher_q,
    )
    best = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=False)
    q_net.load_state_dict(best["model"])

    def fused(x, graphs: GraphSet):
        return decision_scores(cfg, graphs, fused_probability(x, greedy_alpha(q_net, scaler(x.state), cfg)))

    test_scores = {n: (x.y, fused(x, splits.test[n]), x.attack_type) for n, x in tests_in.items()}
    window_scores = {n: s for n, (_, s, _) in test_scores.items()}
    flows = window_flows(splits.test, window_scores)
    val_scores = fused(val_in, select_graphs)
    metrics = evaluate_scores((val_in.y, val_scores), test_scores, 0.5, flows, "window", 0.5)
    add_modality_reports(metrics, cfg, splits.test, window_scores, 0.5)
    write_predictions(run_dir, splits.test, window_scores, 0.5)
    curves = {"val": (val_in.y, val_scores)}
    curves.update({f"test/{n}": (y, score) for n, (y, score, _) in test_scores.items()})
    log_pr_curves(run_dir, curves, summary["best_epoch"])
    alpha = cfg.learning_config.dqn.fixed_alpha
    all_tests = list(tests_in.values())
    y = np.concatenate([x.y for x in all_tests])
    types = [t for x in all_tests for t in x.attack_type]
    metrics["baselines"] = {
        "gat_alone": report(y, np.concatenate([x.p_gat for x in all_tests]), 0.5, types),
        "vgae_alone": report(y, np.concatenate([x.vgae_score for x in all_tests]), threshold, types),
        f"fixed_alpha_{alpha:g}": report(
            y, np.concatenate([fused_probability(x, alpha) for x in all_tests]), 0.5, types
        ),
    }
    chosen = np.concatenate([greedy_alpha(q_net, scaler(x.state), cfg) for x in all_tests])
    metrics["alpha_chosen"] = {"mean": float(chosen.mean()), "std": float(chosen.std())}
    if teacher_params is not None:
        metrics["teacher_params"] = teacher_params
    metrics.update(
        threshold=0.5,
        params=count_parameters(q_net),
        state_dim=int(train_in.state.shape[1]),
        upstream=upstream,
        **summary,
    )
    return metrics


def stage_for(cfg: ExperimentConfig) -> Callable[..., dict[str, Any]]:
    return train_dqn_stage if cfg.model_architecture == "DQN" else train_graph_stage
