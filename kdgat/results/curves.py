"""A run's curves read back from its files: ROC and precision-recall points from predictions.csv,
training curves from its TensorBoard event files, and its per-epoch history from metrics.json.

Each returns None (never raises) when the run has no such file or it cannot be read, so a figure
or a report page shows what exists and says what does not.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kdgat.evaluation.field_metrics import curve_counts

PREDICTIONS = "predictions.csv"
# Per-epoch scalars the trainers write (kdgat/training/graph_trainer.py), in plotting order.
TRAINING_TAGS = ("losses/train", "losses/val", "charts/val_f1", "charts/val_auroc")


@dataclass
class Curves:
    """ROC (fpr, tpr) and precision-recall (recall, precision) points of one run's test windows."""

    fpr: np.ndarray
    tpr: np.ndarray
    recall: np.ndarray
    precision: np.ndarray
    attack_share: float  # precision of flagging every window: the PR curve's floor
    windows: int


def read_predictions(run_dir: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """(label, score) of every test window of predictions.csv, or None."""
    import pandas as pd

    path = Path(run_dir) / PREDICTIONS
    try:
        frame = pd.read_csv(path, usecols=["label", "score"], dtype={"label": "int64", "score": "float64"})
    except (OSError, ValueError):
        return None
    return frame["label"].to_numpy(), frame["score"].to_numpy()


def run_curves(run_dir: str | os.PathLike[str]) -> Curves | None:
    """ROC and PR points of the run's test windows (both classes needed), or None."""
    read = read_predictions(run_dir)
    if read is None:
        return None
    label, score = read
    positives = int(label.sum())
    if positives == 0 or positives == len(label):
        return None
    tps, fps = curve_counts(label, score)
    tpr, fpr = np.r_[0.0, tps / tps[-1]], np.r_[0.0, fps / fps[-1]]
    precision = np.r_[1.0, tps / (tps + fps)]
    return Curves(fpr, tpr, tpr.copy(), precision, positives / len(label), len(label))


def training_scalars(run_dir: str | os.PathLike[str]) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """TRAINING_TAGS from the run's TensorBoard event files: tag -> (epochs, values), or None."""
    if not any(Path(run_dir).glob("events.out.tfevents.*")):
        return None
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(
        str(run_dir), size_guidance={"scalars": 0, "tensors": 1, "histograms": 1, "images": 1}
    )
    try:
        events.Reload()
    except Exception:  # a truncated or foreign file: the run shows no training curves
        return None
    present = set(events.Tags().get("scalars", []))
    out = {}
    for tag in TRAINING_TAGS:
        if tag in present:
            points = events.Scalars(tag)
            out[tag] = (np.array([p.step for p in points]), np.array([p.value for p in points]))
    return out or None


_HISTORY = b'"history": ['


def history(run_dir: str | os.PathLike[str]) -> list[dict] | None:
    """metrics.json's per-epoch history (the values the event files hold per epoch), or None.

    Only the history list is parsed when the file has the layout kdgat writes (the report reads it
    for every run); anything else is parsed in full."""
    try:
        data = (Path(run_dir) / "metrics.json").read_bytes()
    except OSError:
        return None
    start = data.find(_HISTORY)
    value = None
    if start >= 0:
        opened = start + len(_HISTORY) - 1
        end = data.find(b"]", opened)
        try:
            value = json.loads(data[opened : end + 1]) if end > 0 else None
        except ValueError:
            value = None
    if not isinstance(value, list):
        try:
            value = json.loads(data).get("history")
        except (ValueError, AttributeError):
            return None
    return [row for row in value if isinstance(row, dict)] if isinstance(value, list) else None
