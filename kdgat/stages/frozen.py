"""Upstream runs a stage builds on, loaded frozen: the run bound to a prerequisite field (kdgat.runs.upstream
binds them before the stage starts), checked to have seen identically prepared graphs.
"""

from pathlib import Path

import torch

from configs import ExperimentConfig
from kdgat.common.errors import PrerequisiteError
from kdgat.data.dataset import Splits
from kdgat.runs.store import Run
from kdgat.runs.upstream import check_same_data


def bound(cfg: ExperimentConfig, field: str, purpose: str) -> Path:
    """The run bound to a prerequisite field (kdgat.runs.prerequisites): run_experiment binds them all."""
    path = getattr(cfg, field)
    if path is None:
        raise PrerequisiteError(
            f"{purpose}: {field} is not bound. Train through kdgat.experiment.run_experiment "
            f"(train.py, launch.py), which binds every run an experiment builds on, or set {field}."
        )
    return Path(path)


def upstream_run(
    cfg: ExperimentConfig, field: str, splits: Splits, device: torch.device, purpose: str
) -> Run:
    """A bound upstream run, frozen on device, checked to have seen identically prepared graphs."""
    run = Run.open(bound(cfg, field, purpose), device)
    check_same_data(run, splits.vocabulary, splits.normalisation, purpose)
    return run


def vgae_threshold(vgae: Run) -> float:
    return float(vgae.metrics["threshold"])
