"""Statistics over seeds, with scipy.stats: the t confidence interval of a mean, and the paired
tests of ``--compare`` (paired t-test, Wilcoxon signed-rank test).

Imported only by the views that need it, so reading the results table never loads scipy.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE


def t_half_width(std: Any, count: Any, confidence: float = CONFIDENCE) -> Any:
    """Half the width of the t confidence interval of a mean (std with ddof 1 over count values);
    NaN below two values. Works on scalars and on arrays / pandas Series alike.

    The quantile is scipy.special.stdtrit, the function scipy.stats.t.ppf evaluates: the same
    figures without importing scipy.stats (about a second, for the report's grouped tables)."""
    from scipy.special import stdtrit

    count = np.asarray(count, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        quantile = stdtrit(np.where(count >= 2, count - 1, np.nan), 0.5 + confidence / 2)
        half = quantile * np.asarray(std, dtype=np.float64) / np.sqrt(count)
    return np.where(count >= 2, half, np.nan)


def paired(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """b - a over pairs (NaN pairs left out): pairs, means, mean difference with its 95 % t
    interval, and the two-sided p-values of the paired t-test and the Wilcoxon signed-rank test.

    A p-value is NaN where its test is undefined (fewer than two pairs; every difference equal
    for t; every difference zero for Wilcoxon). Wilcoxon is exact for small samples without ties
    or zeros, so with n pairs its smallest p is 2 / 2**n (0.25 for 3 seeds, 0.0625 for 5).
    """
    from scipy import stats

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    diff = b - a
    n = len(diff)
    out: dict[str, Any] = {
        "pairs": n,
        "mean_a": float(a.mean()) if n else math.nan,
        "mean_b": float(b.mean()) if n else math.nan,
        "diff": float(diff.mean()) if n else math.nan,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "t_p": math.nan,
        "wilcoxon_p": math.nan,
    }
    if n < 2:
        return out
    std = float(diff.std(ddof=1))
    half = float(t_half_width(std, n))
    out["ci_low"], out["ci_high"] = out["diff"] - half, out["diff"] + half
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant difference: scipy warns and answers NaN or 0
        if std > 0:
            out["t_p"] = float(stats.ttest_rel(b, a).pvalue)
        elif out["diff"] != 0:
            out["t_p"] = 0.0  # the same non-zero difference on every pair
        if np.any(diff != 0):
            try:
                out["wilcoxon_p"] = float(stats.wilcoxon(b, a).pvalue)
            except ValueError:
                pass
    return out


def significant(t_p: float, alpha: float = ALPHA) -> bool:
    """The paired t-test rejects 'no difference' at alpha (its 95 % interval excludes 0)."""
    return not math.isnan(t_p) and t_p < alpha


def smallest_wilcoxon_p(pairs: int) -> float:
    """The smallest two-sided p the exact signed-rank test can give with this many pairs."""
    return min(1.0, 2.0 / 2**pairs) if pairs else math.nan
