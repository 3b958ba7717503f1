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
from pathlib import Path
from typing import Any

import numpy as np
import torch

import configs
from kdgat.data.dataset import evaluation_graphs
from kdgat.data.graphset import GraphSet
from kdgat.data.registry import layouts_of, modality_of
from kdgat.errors import DataError, UserError
from kdgat.evaluation.flow_metrics import flow_report, window_scores_on_edges
from kdgat.evaluation.report import decision_scores, report
from kdgat.io import atomic_write_json
from kdgat.models import build_from_dims, build_q_network
from kdgat.runs.store import read_status
from kdgat.runs.upstream import load_upstream, resolve_recorded
from kdgat.stages.fusion import StateScaler, augment_with_vgae, fused_probability, fusion_inputs, greedy_alpha
from kdgat.training.checkpoint import read_best
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


def _scorer(run_dir: Path, cfg: configs.ExperimentConfig, metrics: dict, device: torch.device):
    """Functions graphs -> per-graph scores and graphs -> per-edge scores (None without an edge
    read-out), for any kind of finished run."""
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
    parts: list[tuple[GraphSet, np.ndarray]], score_edges, threshold: float
) -> dict[str, Any] | None:
    """Flow-level metrics over the files' graphs (edge read-out, else window decisions)."""
    if not parts or not all(g.has_edge_labels for g, _ in parts):
        return None
    graphs = GraphSet.concat([g for g, _ in parts])
    if score_edges is not None:
        return flow_report(graphs, np.concatenate([score_edges(g) for g, _ in parts]), 0.5, "edge_readout")
    edge_scores = np.concatenate([window_scores_on_edges(g, s) for g, s in parts])
    return flow_report(graphs, edge_scores, threshold, "window")


def evaluate_run(run_dir: Path, data_root: Path, dataset: str | None = None, name: str | None = None) -> Path:
    """Score run_dir's best model on data_root; returns the eval_<name>.json written."""
    run_dir = Path(run_dir)
    status = read_status(run_dir)
    if status.get("state") != "finished" or not (run_dir / "metrics.json").is_file():
        raise UserError(
            f"{run_dir} is not a finished run (state={status.get('state', 'no status.json')}); "
            f"evaluate the directory of a run whose training finished."
        )
    cfg = configs.resolve(configs.load_yaml(run_dir / "config.yaml"))
    if dataset is not None:
        configs.check_levels({**configs.levels_of(cfg), "dataset": dataset})
    metrics = json.loads((run_dir / "metrics.json").read_text())
    device = torch.device("cpu")
    best = read_best(run_dir, device)
    score, score_edges = _scorer(run_dir, cfg, metrics, device)
    threshold = float(metrics["threshold"])
    data_cfg = dataclasses.replace(cfg, dataset=dataset) if dataset is not None else cfg
    per_file: dict[str, Any] = {}
    ys, scores, types, scored = [], [], [], []
    data_root = Path(data_root)
    files = capture_files(data_root, data_cfg)
    prepared = evaluation_graphs(files, data_cfg, best.info.vocabulary, best.info.normalisation)
    for path, graphs, _ in prepared:
        key = path.name if data_root.is_file() else str(path.relative_to(data_root))
        if len(graphs) == 0:
            per_file[key] = {
                "n": 0,
                "note": f"no window: {modality_of(cfg).window_description(cfg.dataset_config)}",
            }
            continue
        s = decision_scores(cfg, graphs, score(graphs))
        per_file[key] = report(graphs.y.numpy(), s, threshold, graphs.attack_type)
        ys.append(graphs.y.numpy())
        scores.append(s)
        types += graphs.attack_type
        scored.append((graphs, s))
    if not ys:
        raise DataError(
            f"{data_root}: no capture gives a full window "
            f"({modality_of(cfg).window_description(cfg.dataset_config)})."
        )
    label = name or re.sub(r"\.csv(\.gz)?$", "", Path(data_root).name)
    label = re.sub(r"[^A-Za-z0-9_.-]+", "_", label)
    out = {
        "run": str(run_dir),
        "trained_on": cfg.dataset,
        "evaluated_on": dataset or label,
        "data_root": str(data_root),
        "threshold": threshold,
        "all": report(np.concatenate(ys), np.concatenate(scores), threshold, types),
        "per_file": per_file,
        "data": {
            "label_counts": {
                str(p): info["label_counts"] for p, _, info in prepared if "label_counts" in info
            }
        },
    }
    flows = _flow_metrics(scored, score_edges, threshold)
    if flows is not None:
        out["all"]["flows"] = flows
    target = run_dir / f"eval_{label}.json"
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
    args = parser.parse_args(argv)
    try:
        target = evaluate_run(args.run_dir, args.data_root, args.dataset, args.name)
    except (UserError, configs.ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    result = json.loads(target.read_text())["all"]
    print(
        f"{target}\n  f1 {result['f1']:.4f}  precision {result['precision']:.4f}  "
        f"recall {result['recall']:.4f}  auroc {result['auroc']}"
        f"  ({result['n']} graphs, {result['n_attack']} with attacks)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
