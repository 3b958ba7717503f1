"""A finished run evaluated on a target: RUN_DIR/eval_<name>.json with the metrics over all files,
per file and per attack type (and per flow where the captures label flows), at the run's own
validation threshold, or with a calibration capture at the threshold its rule takes from the
calibration windows (both thresholds' figures recorded side by side)."""

import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np

from kdgat.common.errors import DataError
from kdgat.common.io import atomic_write_json
from kdgat.config.resolve import calibration_rule
from kdgat.data.calibration import waking_warning
from kdgat.data.graphs import Graphs, concat_graphs
from kdgat.data.registry import modality_of
from kdgat.evaluation.flow_metrics import flow_report, window_scores_on_edges
from kdgat.evaluation.metrics import floor_warnings
from kdgat.evaluation.report import report, scores_are_probabilities
from kdgat.evaluation.thresholds import at_both_thresholds, calibration_choice
from kdgat.scoring.finished import ScoreFn
from kdgat.scoring.target import Scored, score_target
from kdgat.scoring.unheard import Part, unheard_report


def flow_metrics(
    parts: list[tuple[Graphs, np.ndarray]],
    score_edges: ScoreFn | None,
    threshold: float,
    flow_threshold: float,
) -> dict[str, Any] | None:
    """Flow-level metrics over the files' graphs (edge read-out at its own threshold, else window
    decisions)."""
    if not parts or not all(g.has_edge_labels for g, _ in parts):
        return None
    graphs = concat_graphs([g for g, _ in parts])
    if score_edges is not None:
        edge_scores = np.concatenate([score_edges(g) for g, _ in parts])
        return flow_report(graphs, edge_scores, flow_threshold, "edge_readout")
    edge_scores = np.concatenate([window_scores_on_edges(g, s) for g, s in parts])
    return flow_report(graphs, edge_scores, threshold, "window")


def decision_threshold(
    scored: Scored, overrides: dict[str, Any] | None = None
) -> tuple[float, dict[str, Any] | None]:
    """The threshold that decides, and how it was chosen: the run's validation threshold, or with
    a calibration capture the one the calibration rule (the run's learning_config.threshold
    .calibration*, each overridden by `overrides`) takes from the calibration windows' scores."""
    if scored.calibration_scores is None:
        return scored.threshold, None
    cfg = scored.cfg
    overrides = overrides or {}
    knobs = dataclasses.replace(cfg.learning_config.threshold, **overrides)
    rule = overrides.get("calibration") or calibration_rule(cfg)
    probability = cfg.model_architecture != "VGAE"
    choice = calibration_choice(knobs, rule, scored.calibration_scores, scored.threshold, probability)
    return choice["threshold"], choice


def evaluate_run(
    run_dir: Path,
    data_root: Path,
    dataset: str | None = None,
    name: str | None = None,
    calibration: Path | None = None,
    calibration_seconds: float | None = None,
    fine_tune_epochs: int = 0,
    thresholds: dict[str, Any] | None = None,
) -> Path:
    """Score run_dir's best model on data_root; returns the eval_<name>.json written. thresholds:
    ThresholdConfig calibration fields over the run's (used with a calibration capture only)."""
    scored = score_target(run_dir, data_root, dataset, calibration, calibration_seconds, fine_tune_epochs)
    cfg = scored.cfg
    threshold, choice = decision_threshold(scored, thresholds)
    per_file: dict[str, Any] = {}
    probability = scores_are_probabilities(cfg)
    types: list[str] = []
    unheard: dict[str, Part] = {}
    for key, graphs, s, info in scored.files:
        if len(graphs) == 0:
            per_file[key] = {
                "n": 0,
                "note": f"no window: {modality_of(cfg).window_description(cfg.dataset_config)}",
            }
            continue
        per_file[key] = report(graphs.y.numpy(), s, threshold, graphs.attack_type, probability=probability)
        types += graphs.attack_type
        if "unheard" in info:
            unheard[key] = (*info["unheard"], graphs.y.numpy())
    if not scored.scored:
        raise DataError(
            f"{data_root}: no capture gives a full window "
            f"({modality_of(cfg).window_description(cfg.dataset_config)})."
        )
    label = name or re.sub(r"\.csv(\.gz)?$", "", Path(data_root).name)
    label = re.sub(r"[^A-Za-z0-9_.-]+", "_", label)
    overall = report(scored.y, scored.scores, threshold, types, probability=probability)
    out: dict[str, Any] = {
        "run": str(scored.run_dir),
        "trained_on": scored.trained_on,
        "evaluated_on": dataset or label,
        "data_root": str(data_root),
        "threshold": threshold,
        "calibration": scored.calibration,
        **({"threshold_choice": choice} if choice else {}),
        **(
            {"by_threshold": at_both_thresholds(scored.y, scored.scores, scored.threshold, threshold)}
            if choice
            else {}
        ),
        "all": overall,
        "per_file": per_file,
        "warnings": floor_warnings({"all": overall, **per_file}),
        "data": {
            "label_counts": {
                str(key): info["label_counts"] for key, _, _, info in scored.files if "label_counts" in info
            }
        },
    }
    if scored.calibration is not None and (warning := waking_warning(scored.calibration)) is not None:
        out["warnings"].append(warning)
    if unheard:
        found = unheard_report(unheard, cfg.modality)
        for key, summary in found.each.items():
            per_file[key]["unheard_in_calibration"] = summary
        overall["unheard_in_calibration"] = found.overall
        if (warning := found.warning) is not None:
            out["warnings"].append(warning)
    flows = flow_metrics(scored.scored, scored.score_edges, threshold, scored.flow_threshold)
    if flows is not None:
        out["all"]["flows"] = flows
    target = Path(run_dir) / f"eval_{label}.json"
    atomic_write_json(target, out)
    return target


def result_lines(evaluation: dict[str, Any]) -> str:
    """An eval_*.json's headline figures beside the flag-everything floor, then its warnings."""
    r = evaluation["all"]
    floor = r["flag_all"]
    lines = [
        f"  f1 {r['f1']:.4f}  precision {r['precision']:.4f}  recall {r['recall']:.4f}  auroc {r['auroc']}"
        f"  benign_fpr {r['benign_fpr']:.4f}  ({r['n']} graphs, {r['n_attack']} with attacks; flagging "
        f"every window: f1 {floor['f1']:.4f}, margin {r['f1'] - floor['f1']:+.4f})"
    ]
    both = evaluation.get("by_threshold")
    if both:  # calibrated: the run's own threshold beside the calibration's
        choice = evaluation["threshold_choice"]
        lines.append(
            f"  threshold {choice['threshold']:.6g} ({choice['rule']} of {choice['calibration_windows']} "
            f"calibration windows, flagging {choice['calibration_flagged']:.3f} of them); at the run's "
            f"{both['run']['threshold']:.6g}: f1 {both['run']['f1']:.4f}  recall {both['run']['recall']:.4f}"
            f"  benign_fpr {both['run']['benign_fpr']:.4f}"
        )
    lines += [f"warning: {w}" for w in evaluation.get("warnings", [])]
    return "\n".join(lines)
