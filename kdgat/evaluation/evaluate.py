"""Score a finished run on other data: another dataset, a folder or a single capture file.

    python -m kdgat.evaluate RUN_DIR --data-root PATH [--dataset NAME] [--name NAME]

Graphs are built exactly as in training (window, stride, the run's CAN-ID vocabulary and
normalisation), the run's best weights score them, and the validation threshold of the run
decides. Writes RUN_DIR/eval_<name>.json (metrics over all files, per file and per attack type)
and prints the metrics. Cross-vehicle and cross-dataset transfer in one command.
"""

import argparse
import dataclasses
import fnmatch
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import configs
from kdgat.common.errors import DataError, UserError
from kdgat.common.io import atomic_write_json
from kdgat.config.codec import load_yaml
from kdgat.config.levels import check_levels, levels_of
from kdgat.config.resolve import resolve
from kdgat.data.dataset import evaluation_graphs, target_calibration
from kdgat.data.graphset import GraphSet
from kdgat.data.registry import layouts_of, modality_of
from kdgat.evaluation.flow_metrics import flow_report, window_scores_on_edges
from kdgat.evaluation.metrics import floor_warnings
from kdgat.evaluation.report import decision_scores, report
from kdgat.models import build_from_dims, build_q_network
from kdgat.runs.store import read_status
from kdgat.runs.upstream import load_upstream, resolve_recorded
from kdgat.stages.fusion import StateScaler, augment_with_vgae, fused_probability, fusion_inputs, greedy_alpha
from kdgat.training.checkpoint import read_best
from kdgat.training.fine_tune import fine_tune_vgae
from kdgat.training.graph_trainer import predict
from kdgat.training.tasks import ClassifierTask, VGAETask


def capture_files(path: Path, cfg: configs.ExperimentConfig) -> list[tuple[Path, str]]:
    """(file, reader format) for a single capture or every capture below a folder, by the
    file patterns of the dataset's layouts (e.g. DAGA files use the DAGA reader)."""
    patterns: dict[str, str] = {}
    for layout in layouts_of(cfg):
        for pattern, fmt in layout.patterns.items():
            patterns.setdefault(pattern, fmt)
    if path.is_file():
        for pattern, fmt in patterns.items():
            if fnmatch.fnmatch(path.name, pattern):
                return [(path, fmt)]
        raise DataError(f"{path} does not look like a {cfg.dataset} capture ({' or '.join(patterns)}).")
    if not path.is_dir():
        raise DataError(f"--data-root {path} does not exist; pass a capture file or a folder of captures.")
    found = {p: fmt for pattern, fmt in reversed(patterns.items()) for p in path.rglob(pattern)}
    if not found:
        raise DataError(f"{path} holds no {' or '.join(patterns)} capture files (searched recursively).")
    return sorted(found.items())


def _scorer(
    run_dir: Path,
    cfg: configs.ExperimentConfig,
    metrics: dict,
    device: torch.device,
    adapt: Callable[[torch.nn.Module], torch.nn.Module] | None = None,
):
    """Functions graphs -> per-graph scores and graphs -> per-edge scores (None without an edge
    read-out), for any kind of finished run; adapt (graph models) replaces the loaded model."""
    best = read_best(run_dir, device)
    if cfg.model_architecture == "DQN":
        vgae = load_upstream(resolve_recorded(metrics["upstream"]["vgae_run"], run_dir), device)
        gat = load_upstream(resolve_recorded(metrics["upstream"]["gat_run"], run_dir), device)
        q_net = build_q_network(cfg, len(best.info.state_scaler["mean"]))
        q_net.load_state_dict(best.model)
        scaler = StateScaler.from_state(best.info.state_scaler)
        threshold = float(vgae.metrics["threshold"])

        def score_dqn(graphs: GraphSet) -> np.ndarray:
            inputs = fusion_inputs(cfg, graphs, vgae.model, threshold, gat.model, device)
            return fused_probability(inputs, greedy_alpha(q_net, scaler(inputs.state), cfg))

        return score_dqn, None
    vgae = (
        load_upstream(resolve_recorded(metrics["upstream"]["vgae_run"], run_dir), device)
        if cfg.learning_type == "fusion"
        else None
    )
    model = build_from_dims(cfg, best.info.input_dims)
    model.load_state_dict(best.model)
    model.to(device)
    if adapt is not None:
        model = adapt(model)

    def score_graphs(graphs: GraphSet) -> np.ndarray:
        if vgae is not None:
            graphs = augment_with_vgae(graphs, vgae.model, device)
        task = VGAETask(cfg, graphs) if cfg.model_architecture == "VGAE" else ClassifierTask(cfg, graphs)
        return predict(task, model, graphs, device, cfg)

    if getattr(model, "edge_head", None) is None:
        return score_graphs, None

    def score_edges(graphs: GraphSet) -> np.ndarray:
        if vgae is not None:
            graphs = augment_with_vgae(graphs, vgae.model, device)
        return predict(ClassifierTask(cfg, graphs), model, graphs, device, cfg, per="edge")

    return score_graphs, score_edges


def _flow_metrics(
    parts: list[tuple[GraphSet, np.ndarray]], score_edges, threshold: float, flow_threshold: float
) -> dict[str, Any] | None:
    """Flow-level metrics over the files' graphs (edge read-out at its own threshold, else window
    decisions)."""
    if not parts or not all(g.has_edge_labels for g, _ in parts):
        return None
    graphs = GraphSet.concat([g for g, _ in parts])
    if score_edges is not None:
        edge_scores = np.concatenate([score_edges(g) for g, _ in parts])
        return flow_report(graphs, edge_scores, flow_threshold, "edge_readout")
    edge_scores = np.concatenate([window_scores_on_edges(g, s) for g, s in parts])
    return flow_report(graphs, edge_scores, threshold, "window")


@dataclasses.dataclass
class Scored:
    """A finished run's decision scores on the captures of a target, file by file."""

    run_dir: Path
    trained_on: str
    """The run's own dataset."""
    cfg: configs.ExperimentConfig
    """The run's config with the evaluated dataset and calibration in."""
    threshold: float
    files: list[tuple[str, GraphSet, np.ndarray, dict[str, Any]]]
    """(file key, graphs, decision scores, the file's metadata); files without a window too."""
    score_edges: Any
    calibration: dict[str, Any] | None
    calibration_scores: np.ndarray | None = None
    """Decision scores of the calibration windows (all benign by assumption), for thresholds."""
    flow_threshold: float = 0.5
    """The edge read-out's flow threshold (runs from before it had one decided flows at 0.5)."""

    @property
    def scored(self) -> list[tuple[GraphSet, np.ndarray]]:
        return [(g, s) for _, g, s, _ in self.files if len(g)]

    @property
    def y(self) -> np.ndarray:
        return np.concatenate([g.y.numpy() for g, _ in self.scored])

    @property
    def scores(self) -> np.ndarray:
        return np.concatenate([s for _, s in self.scored])


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


def with_calibration(
    cfg: configs.ExperimentConfig, calibration: Path | None, seconds: float | None
) -> configs.ExperimentConfig:
    """cfg whose dataset config names this calibration capture (None: keeps the run's own)."""
    if calibration is None and seconds is None:
        return cfg
    d = dataclasses.replace(cfg.dataset_config, calibration=calibration, calibration_seconds=seconds)
    return dataclasses.replace(cfg, dataset_config=d)


def score_target(
    run_dir: Path,
    data_root: Path,
    dataset: str | None = None,
    calibration: Path | None = None,
    calibration_seconds: float | None = None,
    fine_tune_epochs: int = 0,
) -> Scored:
    """Score run_dir's best model on every capture at data_root (a file or a folder), the graphs
    built as in training, or fitted to the calibration capture when one is given (and a VGAE
    fine-tuned on its windows for fine_tune_epochs)."""
    run_dir = Path(run_dir)
    cfg, metrics = finished_run(run_dir)
    if dataset is not None:
        check_levels({**levels_of(cfg), "dataset": dataset})
    device = torch.device("cpu")
    best = read_best(run_dir, device)
    data_cfg = dataclasses.replace(cfg, dataset=dataset) if dataset is not None else cfg
    data_cfg = with_calibration(data_cfg, calibration, calibration_seconds)
    vocabulary = {int(k): int(v) for k, v in best.info.vocabulary.items()}
    fitted = target_calibration(data_cfg, vocabulary)
    adapt = None
    if fine_tune_epochs > 0:
        if cfg.model_architecture != "VGAE" or fitted is None:
            raise UserError(
                f"--fine-tune-epochs {fine_tune_epochs}: fine-tuning adapts a VGAE to a calibration "
                f"capture; this run is a {cfg.model_architecture} and "
                f"{'has' if fitted else 'was given no'} --calibration. Drop the option or give both."
            )
        adapt = lambda model: fine_tune_vgae(cfg, model, fitted.graphs, fine_tune_epochs, device)  # noqa: E731
    score, score_edges = _scorer(run_dir, cfg, metrics, device, adapt)
    data_root = Path(data_root)
    files = capture_files(data_root, data_cfg)
    prepared = evaluation_graphs(files, data_cfg, vocabulary, best.info.normalisation)
    out = []
    for path, graphs, info in prepared:
        key = path.name if data_root.is_file() else str(path.relative_to(data_root))
        s = decision_scores(cfg, graphs, score(graphs)) if len(graphs) else np.zeros(0)
        out.append((key, graphs, s, info))
    described, calibration_scores = None, None
    if fitted is not None:
        described = {
            "file": str(data_cfg.dataset_config.calibration),
            "seconds": data_cfg.dataset_config.calibration_seconds,
            "fine_tune_epochs": fine_tune_epochs,
        }
        calibration_scores = decision_scores(cfg, fitted.graphs, score(fitted.graphs))
    threshold = float(metrics["threshold"])
    flow_threshold = float(metrics.get("flow_threshold", 0.5))
    return Scored(
        run_dir,
        cfg.dataset,
        data_cfg,
        threshold,
        out,
        score_edges,
        described,
        calibration_scores,
        flow_threshold,
    )


def validation_scores(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(labels, decision scores) of the run's own validation windows, rebuilt from its config."""
    from kdgat.data.dataset import load_splits

    run_dir = Path(run_dir)
    cfg, metrics = finished_run(run_dir)
    score, _ = _scorer(run_dir, cfg, metrics, torch.device("cpu"))
    val = load_splits(cfg).val
    return val.y.numpy(), decision_scores(cfg, val, score(val))


def evaluate_run(
    run_dir: Path,
    data_root: Path,
    dataset: str | None = None,
    name: str | None = None,
    calibration: Path | None = None,
    calibration_seconds: float | None = None,
    fine_tune_epochs: int = 0,
) -> Path:
    """Score run_dir's best model on data_root; returns the eval_<name>.json written."""
    scored = score_target(run_dir, data_root, dataset, calibration, calibration_seconds, fine_tune_epochs)
    cfg, threshold = scored.cfg, scored.threshold
    per_file: dict[str, Any] = {}
    types: list[str] = []
    for key, graphs, s, _ in scored.files:
        if len(graphs) == 0:
            per_file[key] = {
                "n": 0,
                "note": f"no window: {modality_of(cfg).window_description(cfg.dataset_config)}",
            }
            continue
        per_file[key] = report(graphs.y.numpy(), s, threshold, graphs.attack_type)
        types += graphs.attack_type
    if not scored.scored:
        raise DataError(
            f"{data_root}: no capture gives a full window "
            f"({modality_of(cfg).window_description(cfg.dataset_config)})."
        )
    label = name or re.sub(r"\.csv(\.gz)?$", "", Path(data_root).name)
    label = re.sub(r"[^A-Za-z0-9_.-]+", "_", label)
    overall = report(scored.y, scored.scores, threshold, types)
    out = {
        "run": str(scored.run_dir),
        "trained_on": scored.trained_on,
        "evaluated_on": dataset or label,
        "data_root": str(data_root),
        "threshold": threshold,
        "calibration": scored.calibration,
        "all": overall,
        "per_file": per_file,
        "warnings": floor_warnings({"all": overall, **per_file}),
        "data": {
            "label_counts": {
                str(key): info["label_counts"] for key, _, _, info in scored.files if "label_counts" in info
            }
        },
    }
    flows = _flow_metrics(scored.scored, scored.score_edges, threshold, scored.flow_threshold)
    if flows is not None:
        out["all"]["flows"] = flows
    target = Path(run_dir) / f"eval_{label}.json"
    atomic_write_json(target, out)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kdgat.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", type=Path, help="a finished run directory (runs/.../run_NNN)")
    parser.add_argument(
        "--data-root", type=Path, required=True, help="a capture file or a folder of captures"
    )
    parser.add_argument(
        "--dataset",
        help="the evaluated dataset (its file formats; the transfer matrix's column). Default: the run's",
    )
    parser.add_argument("--name", help="suffix of the output file eval_<name>.json (default: from the path)")
    add_calibration_arguments(parser)
    args = parser.parse_args(argv)
    try:
        target = evaluate_run(
            args.run_dir,
            args.data_root,
            args.dataset,
            args.name,
            args.calibration,
            args.calibration_seconds,
            args.fine_tune_epochs,
        )
    except (UserError, configs.ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{target}\n{result_lines(json.loads(target.read_text()))}")
    return 0


def add_calibration_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--calibration",
        type=Path,
        help="an attack-free capture of the target vehicle: vocabulary and normalisation are fitted "
        "on it (no label of it is read) instead of the run's; its windows are not scored",
    )
    parser.add_argument(
        "--calibration-seconds", type=float, help="with --calibration: only its first this-many seconds"
    )
    parser.add_argument(
        "--fine-tune-epochs",
        type=int,
        default=0,
        help="VGAE runs with --calibration: fine-tune the model on the calibration windows this many "
        "epochs (at a tenth of its learning rate) before scoring (default 0: no fine-tuning)",
    )


def result_lines(evaluation: dict[str, Any]) -> str:
    """An eval_*.json's headline figures beside the flag-everything floor, then its warnings."""
    r = evaluation["all"]
    floor = r["flag_all"]
    lines = [
        f"  f1 {r['f1']:.4f}  precision {r['precision']:.4f}  recall {r['recall']:.4f}  auroc {r['auroc']}"
        f"  benign_fpr {r['benign_fpr']:.4f}  ({r['n']} graphs, {r['n_attack']} with attacks; flagging "
        f"every window: f1 {floor['f1']:.4f}, margin {r['f1'] - floor['f1']:+.4f})"
    ]
    lines += [f"warning: {w}" for w in evaluation.get("warnings", [])]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
