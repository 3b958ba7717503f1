"""The threshold on a new car, chosen on its calibration windows' scores: each rule, the margin on
the log scale of the score, the record of the choice, and old runs trained with a calibration."""

import numpy as np
import pytest

from configs import ExperimentConfig, ThresholdConfig
from kdgat.config.migrations import migrate
from kdgat.config.resolve import CALIBRATION_RULE_AUTO, calibration_rule, resolve
from kdgat.evaluation.thresholds import (
    at_both_thresholds,
    calibration_choice,
    calibration_threshold,
    from_log_scale,
    log_scale,
    robust_spread,
)


def logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def test_keep_is_the_runs_threshold_whatever_the_calibration_scores() -> None:
    assert calibration_threshold("keep", np.array([0.9, 0.99]), 0.42, True, 0.99, 1.0) == 0.42


@pytest.mark.parametrize("probability", [True, False])
def test_max_without_margin_lies_just_above_every_calibration_window(probability: bool) -> None:
    scores = np.array([1e-4, 3e-3, 2e-2]) if probability else np.array([0.5, 2.0, 7.0])
    t = calibration_threshold("max", scores, 0.5, probability, 0.99, 0.0)
    assert t > scores.max() and t == pytest.approx(scores.max(), rel=1e-9)


def test_the_margin_is_in_robust_deviations_of_the_log_odds_or_log_errors() -> None:
    p = np.array([0.001, 0.002, 0.004, 0.01])
    z = np.log(p / (1 - p))
    spread = robust_spread(z)
    assert spread == pytest.approx(1.4826 * np.median(np.abs(z - np.median(z))))
    t = calibration_threshold("max", p, 0.5, True, 0.99, 2.0)
    assert logit(t) == pytest.approx(logit(0.01) + 2.0 * spread)
    errors = np.array([18.0, 18.5, 19.0, 20.0])  # a VGAE's benign windows; attacks score 30-47
    e = np.log(errors)
    t = calibration_threshold("max", errors, 9.0, False, 0.99, 3.0)
    assert np.log(t) == pytest.approx(e.max() + 3.0 * robust_spread(e)) and 20.0 < t < 30.0
    # A probability threshold never leaves (0, 1): the log-odds saturate, not the threshold.
    assert 0.99 < calibration_threshold("max", np.array([0.98, 0.99]), 0.5, True, 0.99, 50.0) < 1.0
    for value in (-3.0, 0.0, 4.0):
        assert log_scale(np.array([from_log_scale(value, True)]), True)[0] == pytest.approx(value)
    # More than half the scores equal (MAD 0): the standard deviation instead.
    same = np.array([1.0, 1.0, 1.0, 4.0])
    assert robust_spread(same) == pytest.approx(np.std(same))


@pytest.mark.parametrize("quantile", [0.5, 0.9, 0.95])
def test_quantile_leaves_at_most_its_share_of_calibration_windows_flagged(quantile: float) -> None:
    rng = np.random.default_rng(0)
    scores = rng.random(200) * 0.01
    scores[:3] = 0.999  # three odd windows: 'max' would go above them, a quantile does not
    t = calibration_threshold("quantile", scores, 0.5, True, quantile, 0.0)
    assert (scores >= t).mean() <= 1 - quantile + 1e-12
    assert t < calibration_threshold("max", scores, 0.5, True, quantile, 0.0)


def test_an_unknown_rule_and_no_calibration_window_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown calibration threshold rule"):
        calibration_threshold("median", np.ones(3), 0.5, True, 0.9, 1.0)
    with pytest.raises(ValueError, match="at least one calibration window"):
        calibration_threshold("max", np.zeros(0), 0.5, True, 0.9, 1.0)


def test_the_choice_records_rule_parameters_and_the_runs_threshold_beside_it() -> None:
    knobs = ThresholdConfig(calibration="quantile", calibration_quantile=0.9, calibration_margin=0.5)
    scores = np.linspace(0.001, 0.1, 50)
    choice = calibration_choice(knobs, "quantile", scores, 0.5, True)
    assert choice["rule"] == "quantile" and choice["quantile"] == 0.9 and choice["margin"] == 0.5
    assert choice["run_threshold"] == 0.5 and choice["calibration_windows"] == 50
    assert choice["spread"] == pytest.approx(robust_spread(np.log(scores / (1 - scores))))
    flagged = (scores >= choice["threshold"]).mean()
    assert choice["scale"] == "log_odds" and choice["calibration_flagged"] == flagged
    kept = calibration_choice(knobs, "keep", scores, 0.5, True)
    assert kept["threshold"] == 0.5 and "margin" not in kept and kept["calibration_flagged"] == 0.0
    y = np.array([0, 0, 1, 1])
    both = at_both_thresholds(y, np.array([0.01, 0.2, 0.3, 0.9]), 0.5, 0.1)
    assert both["run"]["recall"] == 0.5 and both["calibration"]["recall"] == 1.0
    assert both["calibration"]["benign_fpr"] == 0.5 and both["run"]["threshold"] == 0.5


def test_auto_resolves_to_the_measured_rule_and_is_written_as_it() -> None:
    cfg = resolve(ExperimentConfig())
    assert cfg.learning_config.threshold.calibration == CALIBRATION_RULE_AUTO == calibration_rule(cfg)


def test_an_old_run_trained_with_a_calibration_keeps_its_validation_threshold() -> None:
    old = {
        "learning_config": {"class_weighting": "balanced", "threshold": {"method": "best_f1"}},
        "dataset_config": {"calibration": "capture.csv.gz"},
    }
    assert migrate(old)["learning_config"]["threshold"]["calibration"] == "keep"
    old["dataset_config"]["calibration"] = None  # without one: today's default
    assert "calibration" not in migrate(old)["learning_config"]["threshold"]
