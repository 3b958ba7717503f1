"""Binary detection metrics, written out by hand so there is no scikit-learn dependency."""

import numpy as np


def auroc(y_true: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); None if one class."""
    positives = int(y_true.sum())
    negatives = len(y_true) - positives
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(score, kind="mergesort")
    sorted_score = score[order]
    ranks = np.empty(len(score), dtype=np.float64)
    _, first, counts = np.unique(sorted_score, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0  # 1-based average rank of each tie group
    ranks[order] = np.repeat(average, counts)
    u = ranks[y_true == 1].sum() - positives * (positives + 1) / 2.0
    return float(u / (positives * negatives))


def _ranked(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct thresholds (descending) with true/false positives at `score >= threshold`."""
    order = np.argsort(-score, kind="mergesort")
    sorted_score, sorted_y = score[order], y_true[order]
    last_of_group = np.r_[np.nonzero(np.diff(sorted_score))[0], len(sorted_score) - 1]
    tps = np.cumsum(sorted_y)[last_of_group]
    fps = (last_of_group + 1) - tps
    return sorted_score[last_of_group], tps, fps


def auprc(y_true: np.ndarray, score: np.ndarray) -> float | None:
    """Average precision (area under the precision-recall curve, step-wise); None without attacks."""
    y_true = np.asarray(y_true).astype(np.int64)
    positives = int(y_true.sum())
    if positives == 0:
        return None
    _, tps, fps = _ranked(y_true, np.asarray(score, dtype=np.float64))
    precision = tps / (tps + fps)
    recall_steps = np.diff(np.r_[0, tps]) / positives
    return float((precision * recall_steps).sum())


def best_f1_threshold(y_true: np.ndarray, score: np.ndarray) -> float:
    """The score threshold (`score >= t` is an attack) that maximises F1 on these labels.

    Without attacks in y_true it returns just above the largest score (no false positives).
    """
    y_true = np.asarray(y_true).astype(np.int64)
    score = np.asarray(score, dtype=np.float64)
    if len(score) == 0:
        return 0.5
    if y_true.sum() == 0:
        return float(np.nextafter(score.max(), np.inf))
    thresholds, tps, fps = _ranked(y_true, score)
    f1 = 2 * tps / (2 * tps + fps + (y_true.sum() - tps))
    best = int(np.argmax(f1))
    if best + 1 < len(thresholds):
        # Midway to the next lower score: same decisions on validation, more margin on new data.
        return float((thresholds[best] + thresholds[best + 1]) / 2)
    return float(thresholds[best])


def binary_metrics(y_true: np.ndarray, score: np.ndarray, threshold: float = 0.5) -> dict:
    """Accuracy, precision, recall, F1, AUROC, benign false-positive rate and confusion matrix,
    and (flag_all) what flagging every window would score on the same labels."""
    y_true = np.asarray(y_true).astype(np.int64)
    pred = (np.asarray(score) >= threshold).astype(np.int64)
    tp = int(((pred == 1) & (y_true == 1)).sum())
    fp = int(((pred == 1) & (y_true == 0)).sum())
    tn = int(((pred == 0) & (y_true == 0)).sum())
    fn = int(((pred == 0) & (y_true == 1)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "n": len(y_true),
        "n_attack": int(y_true.sum()),
        "accuracy": (tp + tn) / len(y_true) if len(y_true) else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "auroc": auroc(y_true, np.asarray(score, dtype=np.float64)),
        "auprc": auprc(y_true, score),
        "benign_fpr": fp / (fp + tn) if fp + tn else 0.0,
        "threshold": threshold,
        "confusion_matrix": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
        "flag_all": flag_all(len(y_true), int(y_true.sum())),
    }


def flag_all(n: int, n_attack: int) -> dict:
    """What a detector that flags every window would score: the floor a figure must beat."""
    share = n_attack / n if n else 0.0
    return {
        "precision": share,
        "recall": 1.0 if n_attack else 0.0,
        "f1": 2 * share / (1 + share) if share else 0.0,
        "accuracy": share,
        "benign_fpr": 1.0 if n > n_attack else 0.0,
    }


def recall_by_attack_type(attack_types: list[str], y_true: np.ndarray, pred: np.ndarray) -> dict:
    """Per attack family: how many attack graphs, and the share detected."""
    out = {}
    types = np.asarray(attack_types)
    for name in sorted(set(attack_types) - {"benign"}):
        mask = (types == name) & (y_true == 1)
        if mask.any():
            out[name] = {"n": int(mask.sum()), "recall": float(pred[mask].mean())}
    return out


FLOOR_MARGIN = 0.01
"""A result whose F1 is within this of flagging every window detects nothing worth the name."""


def floor_margin(result: dict) -> float | None:
    """F1 minus the flag-everything F1 of the same labels (None when the result has no floor)."""
    floor = result.get("flag_all") if isinstance(result, dict) else None
    if not isinstance(floor, dict) or not isinstance(result.get("f1"), int | float):
        return None
    return float(result["f1"]) - float(floor["f1"])


def floor_warning(name: str, result: dict) -> str | None:
    """A warning when `result` (metrics with a flag_all floor) is within FLOOR_MARGIN F1 of it, or below."""
    margin = floor_margin(result)
    if margin is None or margin > FLOOR_MARGIN or not result.get("n_attack"):
        return None
    where = "below" if margin < -FLOOR_MARGIN else f"within {FLOOR_MARGIN} of"
    return (
        f"{name}: F1 {result['f1']:.4f} is {where} flagging every window "
        f"(F1 {result['flag_all']['f1']:.4f}; benign FPR {result.get('benign_fpr', float('nan')):.4f}): "
        f"on these windows the detector is no better than raising an alarm for all of them."
    )


def floor_warnings(results: dict[str, dict]) -> list[str]:
    """floor_warning of every named result that has one."""
    return [w for name, r in results.items() if (w := floor_warning(name, r)) is not None]
