"""The DQN stage: decision-level fusion of a frozen VGAE and a frozen GAT; the agent picks a fusion
weight per window, and metrics.json carries its baselines (each model alone, a fixed alpha).
"""

from pathlib import Path
from typing import Any

import numpy as np
import torch

from configs import ExperimentConfig
from kdgat.config.presets import preset_name
from kdgat.data.dataset import Splits
from kdgat.data.graphs import Graphs
from kdgat.evaluation.metrics import binary_metrics
from kdgat.evaluation.predictions import write_predictions
from kdgat.evaluation.report import (
    add_modality_reports,
    decision_scores,
    evaluate_scores,
    log_pr_curves,
    report,
    window_flows,
)
from kdgat.evaluation.thresholds import threshold_choice, validation_threshold
from kdgat.models import build_q_network, count_parameters
from kdgat.runs.prerequisites import needs
from kdgat.runs.store import Run, portable
from kdgat.stages.distillation import dqn_teacher_q_values
from kdgat.stages.dqn_agent import train_dqn
from kdgat.stages.frozen import bound, upstream_run, vgae_threshold
from kdgat.stages.fusion import StateScaler, fused_probability, fusion_inputs, greedy_alpha
from kdgat.training.checkpoint import RunInfo, read_best

DQN_BLOCK = 16  # consecutive validation windows kept together when validation is halved


def dqn_graphs(cfg: ExperimentConfig, splits: Splits) -> tuple[Graphs, Graphs]:
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


def fusion_baselines(cfg: ExperimentConfig, val: Any, tests: list[Any], vgae_cut: float) -> dict[str, Any]:
    """What the agent must beat, each thresholded by the run's method on the same validation
    windows as the agent: the GAT alone, the VGAE alone (at its own run's threshold), a fixed
    alpha, and the fixed alpha (of the agent's action grid) that scores best on validation."""
    y = np.concatenate([x.y for x in tests])
    types = [t for x in tests for t in x.attack_type]

    def at_validation_threshold(val_score: np.ndarray, test_score: np.ndarray) -> dict[str, Any]:
        cut = validation_threshold(cfg, val.y, val_score)
        return report(y, test_score, cut, types, probability=True)  # fused probabilities

    def fused_all(alpha: float) -> np.ndarray:
        return np.concatenate([fused_probability(x, alpha) for x in tests])

    alpha = cfg.learning_config.dqn.fixed_alpha
    best_alpha = best_fixed_alpha(cfg, val)
    out = {
        "gat_alone": at_validation_threshold(val.p_gat, np.concatenate([x.p_gat for x in tests])),
        "vgae_alone": report(
            y, np.concatenate([x.vgae_score for x in tests]), vgae_cut, types, probability=False
        ),
        f"fixed_alpha_{alpha:g}": at_validation_threshold(fused_probability(val, alpha), fused_all(alpha)),
        "best_fixed_alpha": at_validation_threshold(
            fused_probability(val, best_alpha), fused_all(best_alpha)
        ),
    }
    out["best_fixed_alpha"]["alpha"] = best_alpha
    return out


def fusion_headroom(y: np.ndarray, p_gat: np.ndarray, p_vgae: np.ndarray, threshold: float) -> dict[str, Any]:
    """How much any per-window alpha could add at this threshold, on the fused probabilities
    (before a modality's filtering over time).

    A fused probability alpha * p_gat + (1 - alpha) * p_vgae spans [min, max] of the two, so some
    alpha decides a window right unless both models are wrong on it: the oracle below picks that
    alpha for every window, an upper bound no learnt agent can pass. Where the two models agree
    (disagree = 0), every alpha gives the same decision."""
    gat, vgae = p_gat >= threshold, p_vgae >= threshold
    attack = np.asarray(y) == 1
    oracle = np.where(attack, gat | vgae, gat & vgae)
    disagree = gat != vgae
    return {
        "windows": len(y),
        "disagree": int(disagree.sum()),
        "gat_right_where_they_disagree": int((disagree & (gat == attack)).sum()),
        "oracle_per_window_alpha_f1": binary_metrics(y, oracle.astype(np.float64), 0.5)["f1"],
    }


def best_fixed_alpha(cfg: ExperimentConfig, val: Any) -> float:
    """The alpha of the agent's action grid with the best validation F1 at its own validation
    threshold; ties go to the larger AUPRC, then to the alpha nearest 0.5 (the plain average)."""
    best: tuple[float, float, float] | None = None
    chosen = 0.5
    for alpha in np.linspace(0.0, 1.0, cfg.learning_config.dqn.actions):
        score = fused_probability(val, float(alpha))
        at = binary_metrics(val.y, score, validation_threshold(cfg, val.y, score))
        key = (round(at["f1"], 6), round(at["auprc"] or 0.0, 6), -abs(float(alpha) - 0.5))
        if best is None or key > best:
            best, chosen = key, float(alpha)
    return chosen


def train_dqn_stage(
    cfg: ExperimentConfig, splits: Splits, run_dir: Path, device: torch.device, extra: dict[str, Any]
) -> dict[str, Any]:
    purpose = f"{preset_name(cfg)} (DQN fusion)"
    vgae = upstream_run(cfg, "vgae_run", splits, device, purpose)
    gat = upstream_run(cfg, "gat_run", splits, device, purpose)
    threshold = vgae_threshold(vgae)

    def inputs(graphs: Graphs):
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

    def fused(x, graphs: Graphs):
        return decision_scores(cfg, graphs, fused_probability(x, greedy_alpha(q_net, scaler(x.state), cfg)))

    test_scores = {n: (x.y, fused(x, splits.test[n]), x.attack_type) for n, x in tests_in.items()}
    window_scores = {n: s for n, (_, s, _) in test_scores.items()}
    flows = window_flows(splits.test, window_scores)
    val_scores = fused(val_in, select_graphs)
    cut = validation_threshold(cfg, val_in.y, val_scores)
    metrics = evaluate_scores(
        (val_in.y, val_scores), test_scores, cut, flows, "window", cut, probability=True
    )  # the fused probability (a modality's filtering over time keeps it in [0, 1])
    add_modality_reports(metrics, cfg, splits.test, window_scores, cut)
    write_predictions(run_dir, splits.test, window_scores, cut)
    curves = {"val": (val_in.y, val_scores)}
    curves.update({f"test/{n}": (y, score) for n, (y, score, _) in test_scores.items()})
    log_pr_curves(run_dir, curves, summary["best_epoch"])
    metrics["threshold_choice"] = threshold_choice(cfg, cut, (val_in.y, val_scores))
    metrics["baselines"] = fusion_baselines(cfg, val_in, list(tests_in.values()), threshold)
    every = list(tests_in.values())
    metrics["fusion_headroom"] = {
        "val": fusion_headroom(val_in.y, val_in.p_gat, val_in.p_vgae, cut),
        "test": fusion_headroom(
            np.concatenate([x.y for x in every]),
            np.concatenate([x.p_gat for x in every]),
            np.concatenate([x.p_vgae for x in every]),
            cut,
        ),
    }
    chosen = np.concatenate([greedy_alpha(q_net, scaler(x.state), cfg) for x in tests_in.values()])
    metrics["alpha_chosen"] = {"mean": float(chosen.mean()), "std": float(chosen.std())}
    if teacher_params is not None:
        metrics["teacher_params"] = teacher_params
    metrics.update(
        threshold=cut,
        params=count_parameters(q_net),
        state_dim=int(train_in.state.shape[1]),
        upstream=upstream,
        **summary,
    )
    return metrics
