"""A finished run as score functions: its config and metrics, and its best weights as
graphs -> per-graph scores (and per-edge scores where the model has an edge read-out)."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

import configs
from kdgat.common.errors import UserError
from kdgat.config.codec import load_yaml
from kdgat.config.resolve import resolve
from kdgat.data.graphs import Graphs
from kdgat.models import build_from_dims, build_q_network
from kdgat.runs.store import read_status
from kdgat.runs.upstream import load_upstream, resolve_recorded
from kdgat.stages.fusion import StateScaler, augment_with_vgae, fused_probability, fusion_inputs, greedy_alpha
from kdgat.training.checkpoint import read_best
from kdgat.training.graph_trainer import predict
from kdgat.training.tasks import ClassifierTask, VGAETask

ScoreFn = Callable[[Graphs], np.ndarray]
T = TypeVar("T")


def _recorded(value: T | None, run_dir: Path, what: str) -> T:
    """A part of best.pt's run info this kind of run writes; a UserError where it is missing."""
    if value is None:
        raise UserError(
            f"{run_dir}/checkpoints/best.pt records no {what}, which every finished run of this kind "
            f"writes (a checkpoint of another run copied in?); train the run again."
        )
    return value


def finished_run(run_dir: Path) -> tuple[configs.ExperimentConfig, dict[str, Any]]:
    """A finished run's resolved config and metrics.json, or a UserError saying why not."""
    status = read_status(run_dir)
    if status.get("state") != "finished" or not (run_dir / "metrics.json").is_file():
        raise UserError(
            f"{run_dir} is not a finished run (state={status.get('state', 'no status.json')}); "
            f"evaluate the directory of a run whose training finished."
        )
    cfg = resolve(load_yaml(run_dir / "config.yaml"))
    return cfg, json.loads((run_dir / "metrics.json").read_text())


def _dqn_scorer(run_dir: Path, cfg: configs.ExperimentConfig, metrics: dict, device: torch.device) -> ScoreFn:
    """A DQN fusion run: its VGAE and GAT upstream runs give the state, its Q-network the weight."""
    best = read_best(run_dir, device)
    vgae = load_upstream(resolve_recorded(metrics["upstream"]["vgae_run"], run_dir), device)
    gat = load_upstream(resolve_recorded(metrics["upstream"]["gat_run"], run_dir), device)
    state_scaler = _recorded(best.info.state_scaler, run_dir, "state scaler")
    q_net = build_q_network(cfg, len(state_scaler["mean"]))
    q_net.load_state_dict(best.model)
    scaler = StateScaler.from_state(state_scaler)
    threshold = float(vgae.metrics["threshold"])

    def score_dqn(graphs: Graphs) -> np.ndarray:
        inputs = fusion_inputs(cfg, graphs, vgae.model, threshold, gat.model, device)
        return fused_probability(inputs, greedy_alpha(q_net, scaler(inputs.state), cfg))

    return score_dqn


def scorers(
    run_dir: Path,
    cfg: configs.ExperimentConfig,
    metrics: dict,
    device: torch.device,
    adapt: Callable[[torch.nn.Module], torch.nn.Module] | None = None,
) -> tuple[ScoreFn, ScoreFn | None]:
    """Functions graphs -> per-graph scores and graphs -> per-edge scores (None without an edge
    read-out), for any kind of finished run; adapt (graph models) replaces the loaded model."""
    if cfg.model_architecture == "DQN":
        return _dqn_scorer(run_dir, cfg, metrics, device), None
    best = read_best(run_dir, device)
    vgae = (
        load_upstream(resolve_recorded(metrics["upstream"]["vgae_run"], run_dir), device)
        if cfg.learning_type == "fusion"
        else None
    )
    model = build_from_dims(cfg, _recorded(best.info.input_dims, run_dir, "input dims"))
    model.load_state_dict(best.model)
    model.to(device)
    if adapt is not None:
        model = adapt(model)

    def score_graphs(graphs: Graphs) -> np.ndarray:
        if vgae is not None:
            graphs = augment_with_vgae(graphs, vgae.model, device)
        task = VGAETask(cfg, graphs) if cfg.model_architecture == "VGAE" else ClassifierTask(cfg, graphs)
        return predict(task, model, graphs, device, cfg)

    if getattr(model, "edge_head", None) is None:
        return score_graphs, None

    def score_edges(graphs: Graphs) -> np.ndarray:
        if vgae is not None:
            graphs = augment_with_vgae(graphs, vgae.model, device)
        return predict(ClassifierTask(cfg, graphs), model, graphs, device, cfg, per="edge")

    return score_graphs, score_edges
