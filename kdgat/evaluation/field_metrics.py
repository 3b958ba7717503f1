"""The detection metrics CAN-IDS and anomaly-detection papers report beside F1: MCC, balanced
accuracy, recall at a fixed low benign false-positive rate, precision at high recall, and the
expected calibration error of a probability.

Each follows scikit-learn's definition and conventions (tests/evaluation/test_field_metrics.py
checks every one against it to 1e-9, ties and one-class labels included), written here with
numpy so that training never imports scikit-learn:

- MCC at the run's threshold; 0 where a row or column of the confusion matrix is empty
  (``matthews_corrcoef``).
- Balanced accuracy: the mean recall of the classes present in the labels
  (``balanced_accuracy_score``: with benign windows only it is the benign share left unflagged).
- Recall at benign FPR p: the threshold is set on the scores themselves, the lowest that flags
  at most a share p of the benign windows; the best true-positive rate of ``roc_curve``'s points
  with FPR <= p. Tied scores are one threshold (their windows are flagged together), so a tie
  that would pass p is not flagged at all. None without benign or without attack windows.
- Precision at recall r: the best precision of ``precision_recall_curve``'s points with recall
  >= r. None without attack windows.
- ECE: scores in 10 equal-width bins on [0, 1] (an edge value goes to the lower bin, as in
  ``calibration_curve``), the bins' |attack share - mean score| weighted by their share of the
  windows. Only where the score is a probability (a classifier's or the DQN fusion's, not a
  VGAE's anomaly score); None otherwise.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

FPR_TARGETS = {"recall_at_fpr_1pct": 0.01, "recall_at_fpr_0_1pct": 0.001}
RECALL_TARGETS = {"precision_at_recall_95pct": 0.95}
ECE_BINS = 10
NAMES = ("mcc", "balanced_accuracy", *FPR_TARGETS, *RECALL_TARGETS, "ece")
"""The keys field_metrics adds to a result (and the kdgat.results columns ending in them)."""


def mcc(tp: int, fp: int, tn: int, fn: int) -> float:
    """Matthews correlation coefficient; 0.0 when it is undefined (an empty row or column)."""
    numerator = tp * tn - fp * fn  # Python ints: exact, however many windows
    denominator = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
    if denominator == 0:
        return 0.0
    return float(numerator / math.sqrt(denominator))


def balanced_accuracy(tp: int, fp: int, tn: int, fn: int) -> float | None:
    """Mean recall over the classes present in the labels; None without labels."""
    recalls = [tp / (tp + fn)] if tp + fn else []
    if tn + fp:
        recalls.append(tn / (tn + fp))
    return float(sum(recalls) / len(recalls)) if recalls else None


def curve_counts(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives (as floats) at each distinct score taken as the threshold, from
    the highest score down: the points of scikit-learn's ROC and precision-recall curves."""
    order = np.argsort(-score, kind="mergesort")
    sorted_score, sorted_y = score[order], y_true[order]
    last_of_group = np.r_[np.nonzero(np.diff(sorted_score))[0], len(sorted_score) - 1]
    tps = np.cumsum(sorted_y, dtype=np.float64)[last_of_group]
    return tps, (last_of_group + 1) - tps


def recall_at_fpr(y_true: np.ndarray, score: np.ndarray, max_fpr: float) -> float | None:
    """The recall of the lowest threshold that flags at most max_fpr of the benign windows."""
    y_true, score = _arrays(y_true, score)
    positives = int(y_true.sum())
    if positives == 0 or positives == len(y_true):
        return None
    tps, fps = curve_counts(y_true, score)
    fpr = fps / fps[-1]
    tpr = tps / tps[-1]
    allowed = fpr <= max_fpr
    return float(tpr[allowed].max()) if allowed.any() else 0.0  # the threshold above every score


def precision_at_recall(y_true: np.ndarray, score: np.ndarray, min_recall: float) -> float | None:
    """The best precision of a threshold that catches at least min_recall of the attack windows."""
    y_true, score = _arrays(y_true, score)
    if int(y_true.sum()) == 0:
        return None
    tps, fps = curve_counts(y_true, score)
    recall = tps / tps[-1]
    return float((tps / (tps + fps))[recall >= min_recall].max())  # recall 1 is always reached


def calibration_bins(
    y_true: np.ndarray, probability: np.ndarray, bins: int = ECE_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(windows, attack share, mean probability) of each equal-width bin on [0, 1]; empty bins
    have NaN shares."""
    y_true, probability = _arrays(y_true, probability)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.searchsorted(edges[1:-1], probability)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.bincount(which, weights=y_true, minlength=bins) / count
        mean = np.bincount(which, weights=probability, minlength=bins) / count
    return count, share, mean


def ece(y_true: np.ndarray, probability: np.ndarray, bins: int = ECE_BINS) -> float | None:
    """Expected calibration error of an attack probability; None without windows or outside [0, 1]."""
    y_true, probability = _arrays(y_true, probability)
    if len(probability) == 0 or not (probability.min() >= 0.0 and probability.max() <= 1.0):
        return None
    count, share, mean = calibration_bins(y_true, probability, bins)
    filled = count > 0
    return float((count[filled] * np.abs(share[filled] - mean[filled])).sum() / len(probability))


def _arrays(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(y_true).astype(np.int64), np.asarray(score, dtype=np.float64)


def field_metrics(
    y_true: np.ndarray, score: np.ndarray, threshold: float, probability: bool
) -> dict[str, Any]:
    """Every metric of NAMES for these windows: the threshold decides MCC and balanced accuracy;
    the others set their own on the scores (ECE only when probability, else None)."""
    y_true, score = _arrays(y_true, score)
    pred = score >= threshold
    attack = y_true == 1
    tp, fp = int((pred & attack).sum()), int((pred & ~attack).sum())
    fn, tn = int(attack.sum()) - tp, int((~attack).sum()) - fp
    out: dict[str, Any] = {"mcc": mcc(tp, fp, tn, fn), "balanced_accuracy": balanced_accuracy(tp, fp, tn, fn)}
    for name, target in FPR_TARGETS.items():
        out[name] = recall_at_fpr(y_true, score, target)
    for name, target in RECALL_TARGETS.items():
        out[name] = precision_at_recall(y_true, score, target)
    out["ece"] = ece(y_true, score) if probability else None
    return out


def field_metrics_by_attack_type(
    attack_types: list[str], y_true: np.ndarray, score: np.ndarray, threshold: float, probability: bool
) -> dict[str, dict[str, Any]]:
    """field_metrics of each attack family against every benign window (its windows and the benign
    ones, as one detector of that family would be judged)."""
    y_true, score = _arrays(y_true, score)
    types = np.asarray(attack_types, dtype=object)
    benign = y_true == 0
    out = {}
    for name in sorted(set(attack_types) - {"benign"}):
        mine = (types == name) & (y_true == 1)
        if mine.any():
            keep = benign | mine
            out[name] = field_metrics(y_true[keep], score[keep], threshold, probability)
    return out
