"""The one callable that runs an experiment: config -> data -> model -> loop -> run dir -> metrics.

`python train.py` and every launcher job call `run_experiment`, so a job behaves the same
everywhere.
"""

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import configs
from configs import ExperimentConfig
from kdgat.data.dataset import Splits, load_splits
from kdgat.errors import UserError
from kdgat.io import atomic_write_json, atomic_write_text
from kdgat.loop import Preempted, predict, train_classifier
from kdgat.metrics import binary_metrics, recall_by_attack_type
from kdgat.models.gat import GATClassifier
from kdgat.runs import claim_run_dir, experiment_dir, git_commit, now, update_status

# (learning_type, architecture, training_mode, distillation) combinations this version trains.
IMPLEMENTED: frozenset[tuple[str, str, str, str]] = frozenset({("classifier", "GAT", "all_samples", "no")})


def check_implemented(cfg: ExperimentConfig) -> None:
    key = (
        cfg.learning_type,
        cfg.model_architecture,
        cfg.training_mode,
        cfg.distillation,
    )
    if key not in IMPLEMENTED:
        built = "; ".join(
            f"--learning-type {a} --model-architecture {b} --training-mode {c} --distillation {d}"
            for a, b, c, d in sorted(IMPLEMENTED)
        )
        raise UserError(
            f"{configs.preset_name(cfg)} is a valid experiment, but training "
            f"learning_type={cfg.learning_type}, model_architecture={cfg.model_architecture}, "
            f"training_mode={cfg.training_mode}, distillation={cfg.distillation} is not built in "
            f"this version (--print-config works for it). Trainable now: {built}."
        )


def resolve_device(cfg: ExperimentConfig) -> torch.device:
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise UserError(
            "--device cuda was asked for, but torch sees no CUDA device here. Use --device cpu or auto."
        )
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def build_model(cfg: ExperimentConfig, num_ids: int, node_dim: int, edge_dim: int) -> torch.nn.Module:
    s, m = cfg.model_size_config, cfg.model_config
    return GATClassifier(
        num_ids=num_ids,
        node_dim=node_dim,
        edge_dim=edge_dim,
        hidden_dim=s.hidden_dim,
        num_layers=s.num_layers,
        heads=s.heads,
        embedding_dim=s.embedding_dim,
        dropout=s.dropout,
        jk_mode=m.jk_mode,
        pooling=m.pooling,
        head_layers=m.head_layers,
        use_edge_features=m.use_edge_features,
    )


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def evaluate(
    model: torch.nn.Module, splits: Splits, cfg: ExperimentConfig, device: torch.device
) -> dict[str, Any]:
    batch_size = cfg.training_config.batch_size
    val_prob, _ = predict(model, splits.val, batch_size, device, cfg)
    out: dict[str, Any] = {
        "val": binary_metrics(splits.val.y.numpy(), val_prob),
        "test_by_split": {},
    }
    all_y, all_prob, all_types = [], [], []
    for name, graphs in splits.test.items():
        prob, _ = predict(model, graphs, batch_size, device, cfg)
        y = graphs.y.numpy()
        out["test_by_split"][name] = binary_metrics(y, prob)
        out["test_by_split"][name]["attack_types"] = recall_by_attack_type(graphs.attack_type, y, prob >= 0.5)
        all_y.append(y)
        all_prob.append(prob)
        all_types += graphs.attack_type
    y, prob = np.concatenate(all_y), np.concatenate(all_prob)
    out["test"] = binary_metrics(y, prob)
    out["test"]["attack_types"] = recall_by_attack_type(all_types, y, prob >= 0.5)
    return out


def run_experiment(cfg: ExperimentConfig, run_dir: Path | None = None) -> Path:
    """Train and evaluate one experiment; returns its run directory.

    With run_dir=None a new run_NNN is claimed. With an existing run_dir the run continues there
    (resuming from checkpoints/last.pt when present); its config.yaml is the caller's cfg.
    """
    cfg = configs.resolve(cfg)
    check_implemented(cfg)
    device = resolve_device(cfg)
    if run_dir is None:
        run_dir = claim_run_dir(experiment_dir(cfg))
        atomic_write_text(run_dir / "config.yaml", configs.to_yaml(cfg))
        update_status(run_dir, state="queued", created_at=now(), preset=configs.preset_name(cfg))
    print(f"run directory: {run_dir}", flush=True)
    update_status(
        run_dir,
        state="running",
        started_at=now(),
        git=git_commit(),
        device=str(device),
        error=None,
    )
    try:
        metrics = _train_and_evaluate(cfg, run_dir, device)
    except Preempted as stop:
        update_status(run_dir, state="preempted", error=str(stop))
        stop.run_dir = run_dir
        raise
    except UserError as err:
        update_status(run_dir, state="failed", error=str(err), finished_at=now())
        raise
    except BaseException as err:
        update_status(
            run_dir,
            state="failed",
            error=f"{type(err).__name__}: {err}",
            finished_at=now(),
        )
        raise
    test = metrics["test"]
    print(
        f"finished {run_dir}\n  test: f1 {test['f1']:.4f}  precision {test['precision']:.4f}  "
        f"recall {test['recall']:.4f}  auroc {_fmt(test['auroc'])}"
        f"  accuracy {test['accuracy']:.4f}  ({test['n']} graphs)",
        flush=True,
    )
    return run_dir


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _train_and_evaluate(cfg: ExperimentConfig, run_dir: Path, device: torch.device) -> dict[str, Any]:
    if cfg.training_config.num_workers > 0:
        torch.set_num_threads(cfg.training_config.num_workers)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    splits = load_splits(cfg)
    timings["data_s"] = time.perf_counter() - started
    print(
        f"data: {len(splits.train)} train, {len(splits.val)} validation, "
        f"{sum(len(g) for g in splits.test.values())} test graphs from {splits.data_root}",
        flush=True,
    )
    atomic_write_json(run_dir / "normalisation.json", splits.normalisation)
    torch.manual_seed(cfg.training_config.seed)
    model = build_model(cfg, splits.num_ids, splits.train.x.shape[1], splits.train.edge_attr.shape[1])
    extra = {
        "config": configs.to_dict(cfg),
        "vocabulary": splits.vocabulary,
        "normalisation": splits.normalisation,
    }
    started = time.perf_counter()
    summary = train_classifier(cfg, model, splits.train, splits.val, run_dir, device, extra)
    timings["train_s"] = time.perf_counter() - started
    started = time.perf_counter()
    best = torch.load(run_dir / "checkpoints" / "best.pt", map_location=device, weights_only=False)
    model.load_state_dict(best["model"])
    metrics = evaluate(model, splits, cfg, device)
    timings["eval_s"] = time.perf_counter() - started
    metrics.update(
        preset=configs.preset_name(cfg),
        params=count_parameters(model),
        best_epoch=summary["best_epoch"],
        epochs_run=summary["epochs_run"],
        stopped_early=summary["stopped_early"],
        history=summary["history"],
        data={
            "root": str(splits.data_root),
            "train_graphs": len(splits.train),
            "val_graphs": len(splits.val),
            "test_graphs": {name: len(g) for name, g in splits.test.items()},
            "train_files": splits.files,
            "vocabulary_size": len(splits.vocabulary),
        },
    )
    atomic_write_json(run_dir / "metrics.json", metrics)
    update_status(run_dir, state="finished", finished_at=now(), timings=timings)
    return metrics
