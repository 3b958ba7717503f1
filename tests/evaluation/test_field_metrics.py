"""Every detection metric of metrics.json and eval_*.json against scikit-learn's reference
implementation, to 1e-9: on tied scores, on scores at the calibration bins' edges, with one class
only, per attack type, and through report() (what the stages and kdgat.evaluate write).

scikit-learn is a test-only requirement (requirements.txt): the package computes these with numpy.
"""

import warnings

import numpy as np
import pytest

sklearn_metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn (requirements.txt) is missing")
from sklearn.calibration import calibration_curve  # noqa: E402

from kdgat.evaluation.field_metrics import (  # noqa: E402
    calibration_bins,
    ece,
    field_metrics,
    precision_at_recall,
    recall_at_fpr,
)
from kdgat.evaluation.metrics import binary_metrics  # noqa: E402
from kdgat.evaluation.report import report  # noqa: E402

TOL = 1e-9


def _quiet(fn, *args, **kwargs):
    """scikit-learn warns on one-class labels (and returns its convention); the value is compared."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(29)
    cases = []
    for n, share in ((50, 0.3), (400, 0.1), (2000, 0.02), (3000, 0.5)):
        y = (rng.random(n) < share).astype(np.int64)
        continuous = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0.0, 1.0)
        cases.append((f"continuous-{n}", y, continuous))
        cases.append((f"ties-{n}", y, np.round(continuous, 1)))  # few distinct scores, at bin edges
        cases.append((f"coarse-{n}", y, np.round(continuous * 4) / 4))
    y = (rng.random(500) < 0.2).astype(np.int64)
    cases.append(("constant", y, np.full(500, 0.7)))
    cases.append(("perfect", y, y.astype(np.float64)))
    cases.append(("inverted", y, 1.0 - y))
    cases.append(("edges", np.array([0, 1] * 11), np.repeat(np.linspace(0.0, 1.0, 11), 2)))
    cases.append(("benign-only", np.zeros(300, np.int64), rng.random(300)))
    cases.append(("attack-only", np.ones(300, np.int64), np.round(rng.random(300), 2)))
    return cases


CASES = _cases()


@pytest.mark.parametrize("name,y,score", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.95])
def test_threshold_metrics_equal_sklearn(
    name: str, y: np.ndarray, score: np.ndarray, threshold: float
) -> None:
    pred = (score >= threshold).astype(np.int64)
    ours = {**binary_metrics(y, score, threshold), **field_metrics(y, score, threshold, probability=True)}
    sk = sklearn_metrics
    expected = {
        "accuracy": sk.accuracy_score(y, pred),
        "precision": _quiet(sk.precision_score, y, pred, zero_division=0),
        "recall": _quiet(sk.recall_score, y, pred, zero_division=0),
        "f1": _quiet(sk.f1_score, y, pred, zero_division=0),
        "mcc": _quiet(sk.matthews_corrcoef, y, pred),
        "balanced_accuracy": _quiet(sk.balanced_accuracy_score, y, pred),
    }
    if 0 < y.sum() < len(y):
        tn, fp, _, _ = sk.confusion_matrix(y, pred, labels=[0, 1]).ravel()
        expected["benign_fpr"] = fp / (fp + tn)
    for key, value in expected.items():
        assert ours[key] == pytest.approx(value, abs=TOL), key


@pytest.mark.parametrize("name,y,score", CASES, ids=[c[0] for c in CASES])
def test_ranking_metrics_equal_sklearn(name: str, y: np.ndarray, score: np.ndarray) -> None:
    ours = {**binary_metrics(y, score), **field_metrics(y, score, 0.5, probability=True)}
    positives = int(y.sum())
    if positives == 0 or positives == len(y):
        assert ours["auroc"] is None
        assert ours["recall_at_fpr_1pct"] is None and ours["recall_at_fpr_0_1pct"] is None
    else:
        assert ours["auroc"] == pytest.approx(sklearn_metrics.roc_auc_score(y, score), abs=TOL)
        fpr, tpr, _ = sklearn_metrics.roc_curve(y, score, drop_intermediate=False)
        for key, target in (("recall_at_fpr_1pct", 0.01), ("recall_at_fpr_0_1pct", 0.001)):
            assert ours[key] == pytest.approx(tpr[fpr <= target].max(), abs=TOL), key
    if positives == 0:
        assert ours["auprc"] is None and ours["precision_at_recall_95pct"] is None
    else:
        assert ours["auprc"] == pytest.approx(sklearn_metrics.average_precision_score(y, score), abs=TOL)
        precision, recall, _ = sklearn_metrics.precision_recall_curve(y, score)
        expected = precision[recall >= 0.95].max()
        assert ours["precision_at_recall_95pct"] == pytest.approx(expected, abs=TOL)


def _bin_counts(score: np.ndarray) -> np.ndarray:
    """Windows per bin by the definition: (lo, hi], the first bin [0, hi]."""
    edges = np.linspace(0.0, 1.0, 11)
    counts = []
    for i in range(10):
        lo, hi = edges[i], edges[i + 1]
        inside = (score <= hi) & ((score > lo) if i else (score >= lo))
        counts.append(int(inside.sum()))
    return np.array(counts)


@pytest.mark.parametrize("name,y,score", CASES, ids=[c[0] for c in CASES])
def test_ece_uses_sklearns_calibration_bins(name: str, y: np.ndarray, score: np.ndarray) -> None:
    count, share, mean = calibration_bins(y, score)
    prob_true, prob_pred = calibration_curve(y, score, n_bins=10, strategy="uniform")
    filled = count > 0
    np.testing.assert_allclose(share[filled], prob_true, atol=TOL, rtol=0)
    np.testing.assert_allclose(mean[filled], prob_pred, atol=TOL, rtol=0)
    np.testing.assert_array_equal(count, _bin_counts(score))
    expected = float((count[filled] * np.abs(prob_true - prob_pred)).sum() / len(y))
    assert ece(y, score) == pytest.approx(expected, abs=TOL)
    assert field_metrics(y, score, 0.5, probability=True)["ece"] == pytest.approx(expected, abs=TOL)


def test_ece_known_values_and_when_it_is_left_out() -> None:
    # Perfectly calibrated bins: 0.25 with a quarter attacks, 0.75 with three quarters.
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    score = np.array([0.25] * 4 + [0.75] * 4)
    assert ece(y, score) == pytest.approx(0.0, abs=TOL)
    assert ece(np.array([1, 0]), np.array([0.0, 1.0])) == pytest.approx(1.0, abs=TOL)
    assert field_metrics(y, score, 0.5, probability=False)["ece"] is None  # a VGAE's anomaly score
    assert ece(y, score * 3) is None  # not a probability: outside [0, 1]
    assert ece(np.array([], np.int64), np.array([])) is None


def test_recall_at_fpr_sets_the_threshold_on_the_scores() -> None:
    # 1,000 benign windows: 10 may be flagged at 1 %. The 10 highest benign scores sit at 0.9, 0.89,
    # ...; attacks at 0.95 (5) and 0.5 (5): the lowest threshold flagging <= 10 benign catches 5.
    benign = np.r_[np.linspace(0.9, 0.81, 10), np.linspace(0.8, 0.0, 990)]
    y = np.r_[np.zeros(1000, np.int64), np.ones(10, np.int64)]
    score = np.r_[benign, np.full(5, 0.95), np.full(5, 0.5)]
    assert recall_at_fpr(y, score, 0.01) == 0.5
    assert recall_at_fpr(y, score, 0.001) == 0.5  # only the 0.95 attacks are above every benign
    # A tie across the limit is flagged together or not at all: 11 benign at the top score.
    tied = np.r_[np.full(11, 0.99), np.zeros(989)]
    assert recall_at_fpr(y, np.r_[tied, np.full(10, 0.99)], 0.01) == 0.0


def test_precision_at_recall_known_values() -> None:
    # 20 attacks: 19 at 0.9, one at 0.1; 20 benign: 10 at 0.5, 10 at 0.05.
    y = np.r_[np.ones(20, np.int64), np.zeros(20, np.int64)]
    score = np.r_[np.full(19, 0.9), 0.1, np.full(10, 0.5), np.full(10, 0.05)]
    assert precision_at_recall(y, score, 0.95) == 1.0  # 19 of 20 caught above every benign window
    assert precision_at_recall(y, score, 1.0) == pytest.approx(20 / 30, abs=TOL)
    assert precision_at_recall(np.ones(3, np.int64), np.array([0.1, 0.2, 0.3]), 0.95) == 1.0


def test_report_adds_the_field_metrics_per_attack_type_and_keeps_the_rest() -> None:
    rng = np.random.default_rng(3)
    types = np.array(["benign"] * 600 + ["dos"] * 100 + ["fuzzy"] * 50 + ["gear"] * 30, dtype=object)
    y = (types != "benign").astype(np.int64)
    score = np.round(np.clip(rng.normal(0.3 + 0.25 * y + 0.2 * (types == "dos"), 0.2), 0, 1), 2)
    out = report(y, score, 0.5, list(types), probability=True)
    plain = binary_metrics(y, score, 0.5)
    assert {k: out[k] for k in plain} == plain  # the existing figures are untouched
    assert set(out["attack_types"]) == {"dos", "fuzzy", "gear"}
    for name, figures in out["attack_types"].items():
        keep = (types == "benign") | (types == name)
        yk, sk, pred = y[keep], score[keep], (score[keep] >= 0.5).astype(np.int64)
        assert figures["n"] == int((types == name).sum())
        assert figures["recall"] == pytest.approx(sklearn_metrics.recall_score(yk, pred), abs=TOL)
        assert figures["mcc"] == pytest.approx(sklearn_metrics.matthews_corrcoef(yk, pred), abs=TOL)
        assert figures["balanced_accuracy"] == pytest.approx(
            sklearn_metrics.balanced_accuracy_score(yk, pred), abs=TOL
        )
        fpr, tpr, _ = sklearn_metrics.roc_curve(yk, sk, drop_intermediate=False)
        assert figures["recall_at_fpr_1pct"] == pytest.approx(tpr[fpr <= 0.01].max(), abs=TOL)
        precision, recall, _ = sklearn_metrics.precision_recall_curve(yk, sk)
        assert figures["precision_at_recall_95pct"] == pytest.approx(precision[recall >= 0.95].max(), abs=TOL)
        assert figures["ece"] is not None
    vgae = report(y, score * 40, 20.0, list(types), probability=False)
    assert vgae["ece"] is None and vgae["attack_types"]["dos"]["ece"] is None
    assert vgae["mcc"] == pytest.approx(out["mcc"], abs=TOL)  # scaling scores and threshold alike
