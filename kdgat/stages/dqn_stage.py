"""The DQN stage: decision-level fusion of a frozen VGAE and a frozen GAT; the agent picks a fusion
weight per window, and metrics.json carries its baselines (each model alone, a fixed alpha).
"""

from pathlib import Path
from typing import Any

import numpy as np
import torch

import configs
from configs import ExperimentConfig
from kdgat.data.dataset import Splits
from kdgat.data.graphset import GraphSet
from kdgat.evaluation.predictions import write_predictions
from kdgat.evaluation.report import (
    add_modality_reports,
    decision_scores,
    evaluate_scores,
    log_pr_curves,
    report,
    window_flows,
)
from kdgat.models import build_q_network, count_parameters
from kdgat.runs.prerequisites import needs
from kdgat.runs.store import Run, portable
from kdgat.stages.distillation import dqn_teacher_q_values
from kdgat.stages.dqn_agent import train_dqn
from kdgat.stages.frozen import bound, upstream_run, vgae_threshold
from kdgat.stages.fusion import StateScaler, fused_probability, fusion_inputs, greedy_alpha
from kdgat.training.checkpoint import RunInfo, read_best

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
    vgae = upstream_run(cfg, "vgae_run", splits, device, purpose)
    gat = upstream_run(cfg, "gat_run", splits, device, purpose)
    threshold = vgae_threshold(vgae)

    def inputs(graphs: GraphSet):
        return fusion_inputs(cfg, graphs, vgae.model, threshold, gat.model, device)

    fit_graphs, select_graphs = dqn_graphs(cfg, splits)
    train_in, val_in = inputs(fit_graphs), inputs(select_graphs)
    tests_in = {name: inputs(g) for name, g in splits.test.items()}
    scaler = StateScaler(train_in.state)
    upstream = {"vgae_run": portable(vgae.path, run_dir), "gat_run": portable(gat.path, run_dir)}
    teacher_q, teacher_params = None, None
    if needs(cfg, "teacher_run"):
        teacher_dir = bound(cfg, "teacher_run", purpose)
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
        RunInfo(**extra, upstream=upstream, state_scaler=scaler.state_dict()),
        teacher_q,
    )
    q_net.load_state_dict(read_best(run_dir).model)

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
