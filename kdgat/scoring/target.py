"""A finished run's scores on a target: every capture at a path (one file or a folder), its graphs
built exactly as in training (window, stride, the run's CAN-ID vocabulary and normalisation), or
fitted to an attack-free calibration capture of the target when one is given."""

import dataclasses
import fnmatch
from pathlib import Path
from typing import Any

import numpy as np
import torch

import configs
from kdgat.common.errors import DataError, UserError
from kdgat.config.levels import check_levels, levels_of
from kdgat.data.dataset import evaluation_graphs, target_calibration
from kdgat.data.graphs import Graphs
from kdgat.data.registry import layouts_of
from kdgat.evaluation.report import decision_scores
from kdgat.scoring.finished import ScoreFn, finished_run, scorers
from kdgat.training.checkpoint import read_best
from kdgat.training.fine_tune import fine_tune_vgae


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


@dataclasses.dataclass
class Scored:
    """A finished run's decision scores on the captures of a target, file by file."""

    run_dir: Path
    trained_on: str
    """The run's own dataset."""
    cfg: configs.ExperimentConfig
    """The run's config with the evaluated dataset and calibration in."""
    threshold: float
    files: list[tuple[str, Graphs, np.ndarray, dict[str, Any]]]
    """(file key, graphs, decision scores, the file's metadata); files without a window too."""
    score_edges: ScoreFn | None
    calibration: dict[str, Any] | None
    calibration_scores: np.ndarray | None = None
    """Decision scores of the calibration windows (all benign by assumption), for thresholds."""
    flow_threshold: float = 0.5
    """The edge read-out's flow threshold (runs from before it had one decided flows at 0.5)."""

    @property
    def scored(self) -> list[tuple[Graphs, np.ndarray]]:
        return [(g, s) for _, g, s, _ in self.files if len(g)]

    @property
    def y(self) -> np.ndarray:
        return np.concatenate([g.y.numpy() for g, _ in self.scored])

    @property
    def scores(self) -> np.ndarray:
        return np.concatenate([s for _, s in self.scored])


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
    score, score_edges = scorers(run_dir, cfg, metrics, device, adapt)
    data_root = Path(data_root)
    files = capture_files(data_root, data_cfg)
    prepared = evaluation_graphs(files, data_cfg, vocabulary, best.info.normalisation)
    out: list[tuple[str, Graphs, np.ndarray, dict[str, Any]]] = []
    for path, graphs, info in prepared:
        key = path.name if data_root.is_file() else str(path.relative_to(data_root))
        s = decision_scores(cfg, graphs, score(graphs)) if len(graphs) else np.zeros(0)
        out.append((key, graphs, s, info))
    described, calibration_scores = None, None
    if fitted is not None:
        described = {
            **fitted.describe(),  # its "file" is the calibration capture
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
    score, _ = scorers(run_dir, cfg, metrics, torch.device("cpu"))
    val = load_splits(cfg).val
    return val.y.numpy(), decision_scores(cfg, val, score(val))
