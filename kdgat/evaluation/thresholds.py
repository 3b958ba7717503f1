"""The decision threshold: which score, chosen on validation, makes a window an attack.

Three methods (--learning-config.threshold.method):
- fixed: a set value (0.5 on a class probability); what a classifier's argmax decides.
- best_f1: the threshold that maximises validation F1, midway to the next lower score.
- target_fpr: the lowest threshold that flags at most target_fpr of the benign validation
  windows. It needs no attack in validation, so it is the one to use for attacks that validation
  never shows (an unknown attack, another vehicle).

metrics.json records the chosen threshold with how it was chosen (threshold_choice), and what each
method would have scored on the test set (test_by_threshold), so a run shows what its choice cost.
"""

from typing import Any

import numpy as np

from configs import ExperimentConfig, ThresholdConfig
from kdgat.config.resolve import threshold_method
from kdgat.evaluation.metrics import best_f1_threshold, binary_metrics

METHODS: tuple[str, ...] = ("fixed", "best_f1", "target_fpr")
SUMMARY: tuple[str, ...] = ("f1", "precision", "recall", "benign_fpr")  # what each method's entry holds


def target_fpr_threshold(y_true: np.ndarray, score: np.ndarray, target_fpr: float) -> float:
    """The lowest threshold (`score >= t` is an attack) at which at most target_fpr of the benign
    windows are flagged; midway to the next higher benign score, for margin on new data.

    Without benign windows it returns the lowest score (every window flagged: no benign to spare).
    """
    benign = np.sort(np.asarray(score, dtype=np.float64)[np.asarray(y_true) == 0])[::-1]
    if len(benign) == 0:
        return float(np.min(score)) if len(score) else 0.5
    allowed = int(np.floor(target_fpr * len(benign) + 1e-9))  # benign windows that may be flagged
    if allowed >= len(benign):
        return float(benign[-1])
    edge = benign[allowed]  # the highest benign score that must stay below the threshold
    above = benign[:allowed][benign[:allowed] > edge]
    if len(above):
        return float((edge + above[-1]) / 2)
    return float(np.nextafter(edge, np.inf))


def validation_threshold(cfg: ExperimentConfig, y_true: np.ndarray, score: np.ndarray) -> float:
    """The run's threshold: its configured method on validation labels and scores."""
    return choose_threshold(threshold_method(cfg), y_true, score, cfg.learning_config.threshold)


def choose_threshold(method: str, y_true: np.ndarray, score: np.ndarray, cfg: ThresholdConfig) -> float:
    """The threshold of one method on validation labels and scores."""
    if method == "fixed":
        return float(cfg.fixed)
    if method == "best_f1":
        return best_f1_threshold(y_true, score)
    if method == "target_fpr":
        return target_fpr_threshold(y_true, score, cfg.target_fpr)
    raise ValueError(f"unknown threshold method {method!r}; expected one of {METHODS}")


def methods_for(probability: bool) -> tuple[str, ...]:
    """The methods that make sense for a score: 'fixed' only on a probability."""
    return METHODS if probability else tuple(m for m in METHODS if m != "fixed")


def threshold_choice(
    cfg: ExperimentConfig, threshold: float, val: tuple[np.ndarray, np.ndarray]
) -> dict[str, Any]:
    """What metrics.json says of the chosen threshold: method, parameters, its validation result."""
    at = binary_metrics(val[0], val[1], threshold)
    method, tc = threshold_method(cfg), cfg.learning_config.threshold
    out: dict[str, Any] = {"method": method, "threshold": threshold}
    if method == "fixed":
        out["fixed"] = tc.fixed
    if method == "target_fpr":
        out["target_fpr"] = tc.target_fpr
    out["val"] = {k: at[k] for k in SUMMARY}
    return out


def at_each_method(
    cfg: ThresholdConfig,
    val: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    probability: bool,
) -> dict[str, dict[str, float]]:
    """Test F1, precision, recall and benign FPR at each method's validation threshold."""
    out = {}
    for method in methods_for(probability):
        threshold = choose_threshold(method, val[0], val[1], cfg)
        at = binary_metrics(test[0], test[1], threshold)
        out[method] = {
            "threshold": threshold,
            **{k: at[k] for k in ("f1", "precision", "recall", "benign_fpr")},
        }
    return out


def flow_threshold(cfg: ExperimentConfig, flows: np.ndarray, edge_scores: np.ndarray) -> float:
    """The edge read-out's threshold: the run's flow method on validation flows, each flow one sample.

    flows: (edges, 2) benign and attack flow counts of each edge; an edge's score is its flows'."""
    tc = cfg.learning_config.threshold
    method = "fixed" if tc.flow_method == "auto" else tc.flow_method
    benign, attack = flows[:, 0].astype(np.int64), flows[:, 1].astype(np.int64)
    scores = np.asarray(edge_scores, dtype=np.float64)
    y = np.concatenate([np.zeros(int(benign.sum())), np.ones(int(attack.sum()))])
    per_flow = np.concatenate([np.repeat(scores, benign), np.repeat(scores, attack)])
    return choose_threshold(method, y, per_flow, tc)


# --- The threshold on a new car: chosen on the scores of its calibration windows ---------------
#
# A calibration capture of the target vehicle is given as attack-free, so the scores of its
# windows are benign scores of that car, no label read. The run's validation threshold was set
# on the training vehicle's scores and can sit far from them on another car (every calibration
# window below 0.001 while the threshold is 0.5: docs/unseen-vehicles.md). Both rules below work
# on a log scale of the score (the log-odds of a probability, the log of a VGAE error: positive,
# unbounded), and the margin is in robust standard deviations of the calibration scores on that
# scale (1.4826 x their median absolute deviation): a fixed distance would be a thousandfold on
# a GAT's probabilities near 0 and more than an attack's whole excess on a VGAE's errors (18 on
# benign windows, 30-47 on attacks on the Spark), while the spread of the car's own benign
# scores says how far above them a benign window of another moment may still lie.

CALIBRATION_RULES: tuple[str, ...] = ("keep", "max", "quantile")
_EDGE = 1e-7  # probabilities are clipped to [EDGE, 1 - EDGE] before the log-odds (0 and 1 are infinite)


def log_scale(score: np.ndarray, probability: bool) -> np.ndarray:
    """The score on the scale the calibration margin is added on: log-odds, or log of an error."""
    s = np.asarray(score, dtype=np.float64)
    if probability:
        p = np.clip(s, _EDGE, 1 - _EDGE)
        return np.log(p / (1 - p))
    return np.log(np.maximum(s, 1e-12))


def from_log_scale(z: float, probability: bool) -> float:
    """The inverse of log_scale for one value."""
    return float(1 / (1 + np.exp(-z))) if probability else float(np.exp(z))


def robust_spread(z: np.ndarray) -> float:
    """1.4826 x the median absolute deviation (a standard deviation that a few outliers do not
    move); the standard deviation where more than half the values are equal (MAD 0)."""
    mad = 1.4826 * float(np.median(np.abs(z - np.median(z))))
    return mad if mad > 0 else float(np.std(z))


def calibration_threshold(
    rule: str,
    calibration_scores: np.ndarray,
    run_threshold: float,
    probability: bool,
    quantile: float,
    margin: float,
) -> float:
    """The threshold a rule takes from the calibration windows' scores.

    keep: the run's validation threshold. max: the highest calibration score raised by margin
    robust standard deviations of the scores (on log_scale); quantile: their `quantile` (the next
    higher score, no interpolation) raised likewise, so a few odd calibration windows do not carry
    the threshold above every attack."""
    if rule == "keep":
        return float(run_threshold)
    if rule not in CALIBRATION_RULES:
        raise ValueError(f"unknown calibration threshold rule {rule!r}; expected one of {CALIBRATION_RULES}")
    scores = np.asarray(calibration_scores, dtype=np.float64)
    if len(scores) == 0:
        raise ValueError("a calibration threshold needs the scores of at least one calibration window")
    z = log_scale(scores, probability)
    base = z.max() if rule == "max" else np.quantile(z, quantile, method="higher")
    threshold = from_log_scale(float(base) + margin * robust_spread(z), probability)
    # At least just above the chosen calibration score (a probability's log-odds saturate at 1 - EDGE).
    anchor = scores.max() if rule == "max" else np.quantile(scores, quantile, method="higher")
    return float(max(threshold, np.nextafter(anchor, np.inf)))


def calibration_choice(
    cfg: ThresholdConfig,
    rule: str,
    calibration_scores: np.ndarray,
    run_threshold: float,
    probability: bool,
) -> dict[str, Any]:
    """The calibration threshold with how it was chosen: rule, its parameters, the calibration
    windows, the share of them it flags, and the run's own threshold beside it."""
    threshold = calibration_threshold(
        rule, calibration_scores, run_threshold, probability, cfg.calibration_quantile, cfg.calibration_margin
    )
    scores = np.asarray(calibration_scores, dtype=np.float64)
    out: dict[str, Any] = {"rule": rule, "threshold": threshold, "run_threshold": float(run_threshold)}
    if rule == "quantile":
        out["quantile"] = cfg.calibration_quantile
    if rule != "keep":
        out["margin"] = cfg.calibration_margin
        out["scale"] = "log_odds" if probability else "log"
        out["spread"] = robust_spread(log_scale(scores, probability))
    out["calibration_windows"] = len(scores)
    out["calibration_flagged"] = float((scores >= threshold).mean()) if len(scores) else 0.0
    return out


def at_both_thresholds(
    y_true: np.ndarray, score: np.ndarray, run_threshold: float, calibrated: float
) -> dict[str, dict[str, float]]:
    """F1, precision, recall and benign FPR at the run's threshold and at the calibration's."""
    out = {}
    for name, threshold in (("run", run_threshold), ("calibration", calibrated)):
        at = binary_metrics(y_true, score, threshold)
        out[name] = {"threshold": float(threshold), **{k: at[k] for k in SUMMARY}}
    return out
