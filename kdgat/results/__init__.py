"""Results: every run under a runs root as one pandas table, plus paper-ready views of it.

In a notebook: ``df = kdgat.results.load_runs("runs")`` gives one row per run directory (all of
them, including unfinished and broken ones: their ``problem`` column says why they are not
usable); ``usable(df)`` keeps the finished, readable runs and ``problems(df)`` lists the rest.
On the command line: ``python -m kdgat.results --help`` (the command is kdgat.cli.results).

One job per module:

    read      run directory -> flat row (plain dicts, no pandas)
    columns   column names: aliases, order, which are config knobs; ResultsError
    table     all rows as one DataFrame: load_runs, usable, problems
    lineage   the runs a run built on: the ``stale`` column and the ``--lineage RUN`` tree
    query     ``--where`` expressions
    analyse   mean ± std and 95 % CI over seeds, best runs, teacher vs student deltas, transfer matrix
    stats     t confidence intervals, paired t and Wilcoxon tests (scipy.stats)
    compare   ``--compare FIELD=A,B``: runs paired by seed, their paired statistics
    render    table / csv / markdown / latex text
    hparams   TensorBoard HParams entries of finished runs
    heatmap   the transfer matrix as a PNG or PDF
    curves    ROC/PR points (predictions.csv), training curves (event files, history)
    figures   ``--figures DIR``: PNG and PDF figures (figure_style: their one look)
    report    ``--report DIR``: the offline HTML report (html: its pieces; run_page: a run's page)

The names below are loaded when first used (the render function is kdgat.results.render.render:
the package attribute `render` is that module), so ``kdgat.results.read`` (which kdgat.results.hparams uses
inside every training run) is imported without pandas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kdgat.results.analyse import (
        best_runs,
        group_runs,
        mixed_within,
        teacher_student_deltas,
        transfer_matrix,
    )
    from kdgat.results.columns import ALIASES, DEFAULT_METRICS, METRIC_NAMES, ResultsError, resolve_column
    from kdgat.results.query import apply_where
    from kdgat.results.read import find_run_dirs, read_run
    from kdgat.results.table import load_runs, problems, usable

_HOMES = {
    "load_runs": "table",
    "usable": "table",
    "problems": "table",
    "read_run": "read",
    "find_run_dirs": "read",
    "apply_where": "query",
    "group_runs": "analyse",
    "best_runs": "analyse",
    "mixed_within": "analyse",
    "teacher_student_deltas": "analyse",
    "transfer_matrix": "analyse",
    "ResultsError": "columns",
    "resolve_column": "columns",
    "ALIASES": "columns",
    "DEFAULT_METRICS": "columns",
    "METRIC_NAMES": "columns",
}
__all__ = [  # what kdgat.results offers, each loaded from its module when first used
    "ALIASES",
    "DEFAULT_METRICS",
    "METRIC_NAMES",
    "ResultsError",
    "apply_where",
    "best_runs",
    "find_run_dirs",
    "group_runs",
    "load_runs",
    "mixed_within",
    "problems",
    "read_run",
    "resolve_column",
    "teacher_student_deltas",
    "transfer_matrix",
    "usable",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
