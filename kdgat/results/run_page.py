"""One report page per run: its levels, state and lineage (links to the runs it built on and to
those built on it), metrics per split and per attack type, training curves (metrics.json's
per-epoch history, the values its TensorBoard files hold), ROC and precision-recall curves
(predictions.csv, for the runs the report draws them for) and its config.

Pages are built from the results table's row plus two small reads per run (the history and
config.yaml), so a report of 10,000 runs stays a matter of seconds; the columns a page shows
are worked out once for the whole table (PageLayout), not per run.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from configs import LEVELS
from kdgat.results.columns import SEED, is_knob
from kdgat.results.curves import Curves, history, run_curves
from kdgat.results.html import cell, esc, float_cells, line_chart, number, page, table
from kdgat.results.lineage import upstream_path

SPLIT_METRICS = (
    ("n", "windows"),
    ("n_attack", "attacks"),
    ("f1", "F1"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("auroc", "AUROC"),
    ("auprc", "AUPRC"),
    ("mcc", "MCC"),
    ("balanced_accuracy", "balanced acc."),
    ("recall_at_fpr_1pct", "recall @ FPR 1%"),
    ("recall_at_fpr_0_1pct", "recall @ FPR 0.1%"),
    ("precision_at_recall_95pct", "precision @ recall 95%"),
    ("ece", "ECE"),
    ("benign_fpr", "benign FPR"),
    ("flag_all.f1", "floor F1"),
    ("f1_margin", "margin"),
)
ATTACK_METRICS = (
    ("n", "windows"),
    ("recall", "recall"),
    ("mcc", "MCC"),
    ("balanced_accuracy", "balanced acc."),
    ("recall_at_fpr_1pct", "recall @ FPR 1%"),
    ("recall_at_fpr_0_1pct", "recall @ FPR 0.1%"),
    ("precision_at_recall_95pct", "precision @ recall 95%"),
    ("ece", "ECE"),
)
RESULT_COUNTS, ATTACK_COUNTS = 2, 1  # leading counts of SPLIT_METRICS and ATTACK_METRICS
RESULT = re.compile(
    r"^(val|test|test_by_split\.[^.]+|eval\.[^.]+\.all|eval\.[^.]+|baselines\.[^.]+)(\.flows)?\.f1$"
)
ATTACK = re.compile(r"^(.+)\.attack_types\.([^.]+)\.recall$")
CURVE_POINTS = 300  # points of an inline ROC/PR line (the page stays small; the shape stays)
ALL_CURVES = 200  # a report of at most this many runs draws every run's ROC/PR on its page


def page_name(run: str) -> str:
    """A run's page file name: stable across reports, whatever the run's path."""
    return hashlib.sha1(run.encode()).hexdigest()[:12] + ".html"


def numbers(table: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """The columns (missing ones NaN, text NaN) as one float matrix; numeric columns are taken
    as they are, without pd.to_numeric's pass over every value."""
    values = np.full((len(table), len(columns)), np.nan)
    for j, column in enumerate(columns):
        if column in table.columns:
            series = table[column]
            if not pd.api.types.is_numeric_dtype(series.dtype):
                series = pd.to_numeric(series, errors="coerce")
            values[:, j] = series.to_numpy(dtype=np.float64, na_value=np.nan)
    return values


@dataclass
class PageLayout:
    """What every page shows, worked out once for the table: result rows (val, test, splits,
    eval_*, DQN baselines) and attack types, each as a float matrix over the runs."""

    results: list[MetricRows]
    attacks: list[MetricRows]
    varying_knobs: list[str]
    upstream_fields: list[str]

    @classmethod
    def of(cls, table: pd.DataFrame, varying_knobs: list[str]) -> PageLayout:
        names = [str(c) for c in table.columns]
        prefixes = list(dict.fromkeys(m.group(0)[:-3] for c in names if (m := RESULT.match(c))))
        prefixes.sort(key=_result_order)
        results = [
            MetricRows.of(p, numbers(table, [f"{p}.{m}" for m, _ in SPLIT_METRICS]), RESULT_COUNTS)
            for p in prefixes
        ]
        attack_keys = sorted({(m.group(1), m.group(2)) for c in names if (m := ATTACK.match(c))})
        attacks = [
            MetricRows.of(
                f"{p}: {t}",
                numbers(table, [f"{p}.attack_types.{t}.{m}" for m, _ in ATTACK_METRICS]),
                ATTACK_COUNTS,
            )
            for p, t in sorted(attack_keys, key=lambda k: (_result_order(k[0]), k[1]))
        ]
        upstream = sorted(c[len("upstream.") :] for c in names if c.startswith("upstream."))
        return cls(results, attacks, varying_knobs, upstream)


@dataclass
class MetricRows:
    """One row of a page's metric tables (a result, or a result's attack type) for every run: its
    label cell, its values (a row of `matrix` per run; `present` where not all NaN) and which of
    them are NaN as bits (-1 where a value is infinite or from 1000 up: float_cells writes those);
    the cells of a NaN pattern come from one %-format. Worked out with numpy for the whole table;
    a run's values become Python floats in the process that writes its page."""

    label: str
    matrix: np.ndarray
    present: list[bool]
    nan_bits: list[int]
    counts: int
    _formats: dict[int, str] = dataclass_field(default_factory=dict)

    @classmethod
    def of(cls, label: str, matrix: np.ndarray, counts: int) -> MetricRows:
        """counts: the leading columns that are counts (windows, attacks), shown as whole numbers."""
        nan = np.isnan(matrix)
        width = matrix.shape[1]
        with np.errstate(invalid="ignore"):
            odd = np.isinf(matrix).any(axis=1) | (np.abs(matrix[:, counts:]) >= 1000).any(axis=1)
        if width > 62:  # more bits than an int64 holds: every row through float_cells
            odd[:] = True
        bits = (nan.astype(np.int64) << np.arange(width, dtype=np.int64)).sum(axis=1)
        present = (~nan.all(axis=1)).tolist()
        label_cell = f'<tr><td class="t">{esc(label)}</td>'
        return cls(label_cell, matrix, present, np.where(odd, -1, bits).tolist(), counts)

    def cells(self, i: int) -> str:
        """Run i's cells, as float_cells writes them."""
        values, bits = self.matrix[i].tolist(), self.nan_bits[i]
        if bits < 0:
            return float_cells(values, counts=self.counts)
        form = self._formats.get(bits)
        if form is None:
            form = self._formats[bits] = "".join(
                "<td></td>" if bits >> j & 1 else ("<td>%d</td>" if j < self.counts else "<td>%.4f</td>")
                for j in range(len(values))
            )
        return form % tuple([v for v in values if v == v] if bits else values)


def _result_order(prefix: str) -> tuple[int, str]:
    for i, start in enumerate(("val", "test", "test_by_split.", "eval.", "baselines.")):
        if prefix == start or prefix.startswith(start + ".") or prefix.startswith(start):
            return i, prefix
    return 9, prefix


def _matrix_rows(rows: list[MetricRows], i: int) -> list[str]:
    """Run i's rows of a metric table."""
    return [f"{row.label}{row.cells(i)}</tr>" for row in rows if row.present[i]]


def metrics_section(layout: PageLayout, i: int) -> str:
    rows = _matrix_rows(layout.results, i)
    out = ["<h2>Metrics per split</h2>"]
    if rows:
        headers = ["result", *(label for _, label in SPLIT_METRICS)]
        out.append(table(headers, rows, sortable=False, text_columns=(0,)))
        out.append(
            '<p class="note">floor F1: what flagging every window scores on the same labels; margin: '
            "F1 - floor. Recall at a benign FPR sets its threshold on the scores; ECE only where the "
            "score is a probability.</p>"
        )
    else:
        out.append('<p class="note">no metrics (see the state above).</p>')
    attack_rows = _matrix_rows(layout.attacks, i)
    if attack_rows:
        out.append("<h2>Per attack type</h2>")
        headers = ["result: attack type", *(label for _, label in ATTACK_METRICS)]
        out.append(table(headers, attack_rows, sortable=False, text_columns=(0,)))
        out.append('<p class="note">each attack type against every benign window of its result.</p>')
    return "".join(out)


TRAINING_KEYS = ("train_loss", "val_loss", "val_f1", "val_auroc")


def epoch_series(epochs: list[dict], keys: Sequence[str]) -> dict[str, tuple[list[float], list[float]]]:
    """Per key, (epochs, values) of the records whose epoch is a number and whose value is a
    finite number (not a flag)."""
    steps: list[Any] = [record.get("epoch") for record in epochs]
    numeric_steps = set(map(type, steps)) <= {int, float}
    out: dict[str, tuple[list[float], list[float]]] = {}
    for key in keys:
        values: list[Any] = [record.get(key) for record in epochs]
        # The usual history: every epoch a number, every value a float, their sum (so each) finite.
        if numeric_steps and set(map(type, values)) == {float} and math.isfinite(sum(values)):
            out[key] = ([float(step) for step in steps], values)
        else:
            out[key] = _finite_points(steps, values)
    return out


def _finite_points(steps: list[Any], values: list[Any]) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for epoch, value in zip(steps, values, strict=True):
        if not isinstance(epoch, int | float):
            continue
        if type(value) is float:
            if value - value != 0.0:  # NaN or infinite
                continue
        elif type(value) is bool or not isinstance(value, int | float) or number(value) is None:
            continue
        xs.append(float(epoch))
        ys.append(float(value))
    return xs, ys


def training_section(run_dir: str) -> str:
    epochs = history(run_dir)
    if not epochs:
        return "<h2>Training</h2><p class='note'>no per-epoch history in metrics.json.</p>"
    series = epoch_series(epochs, TRAINING_KEYS)
    losses = line_chart(
        [("train loss", *series["train_loss"], ""), ("val loss", *series["val_loss"], "5,3")],
        "loss per epoch",
        "epoch",
    )
    scores = line_chart(
        [("val F1", *series["val_f1"], ""), ("val AUROC", *series["val_auroc"], "5,3")],
        "validation F1 and AUROC",
        "epoch",
        (0.0, 1.0),
    )
    return f"<h2>Training</h2>{losses} {scores}"


def _thin(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(xs) <= CURVE_POINTS:
        return xs, ys
    keep = np.unique(np.r_[np.linspace(0, len(xs) - 1, CURVE_POINTS).astype(int), len(xs) - 1])
    return xs[keep], ys[keep]


def curves_section(run_dir: str, drawn: bool, curves: Curves | None = None) -> str:
    if not drawn:
        return (
            "<h2>ROC and precision-recall</h2><p class='note'>not drawn: a report of more than "
            f"{ALL_CURVES} runs draws them for the runs its figures show, or those --runs names "
            "(python -m kdgat.results RUNS_ROOT --report DIR --runs THIS_RUN).</p>"
        )
    curves = curves if curves is not None else run_curves(run_dir)
    if curves is None:
        return "<h2>ROC and precision-recall</h2><p class='note'>no predictions.csv with both classes.</p>"
    roc = line_chart(
        [("ROC", *_thin(curves.fpr, curves.tpr), ""), ("chance", [0, 1], [0, 1], "2,3")],
        "ROC (test windows)",
        "benign false-positive rate",
        (0.0, 1.0),
    )
    share = curves.attack_share
    pr = line_chart(
        [("PR", *_thin(curves.recall, curves.precision), ""), ("flag all", [0, 1], [share, share], "2,3")],
        "precision-recall",
        "recall",
        (0.0, 1.0),
    )
    return f"<h2>ROC and precision-recall</h2>{roc} {pr}"


def lineage_section(
    row: dict[str, Any], layout: PageLayout, pages: dict[str, str], run_of: dict[str, str], used_by: list[str]
) -> str:
    """Links to the runs this one built on (run_of: normalised path -> run) and to its dependants."""
    items = []
    for field in layout.upstream_fields:
        recorded = row.get(f"upstream.{field}")
        if not isinstance(recorded, str):
            continue
        upstream = run_of.get(upstream_path(str(row["path"]), recorded))
        if upstream is not None:
            link = f'<a href="{pages[upstream]}">{esc(upstream)}</a>'
        else:
            link = f"{esc(recorded)} (not in this report)"
        items.append(f"<li>{esc(field)}: {link}</li>")
    items += [f'<li>used by: <a href="{pages[r]}">{esc(r)}</a></li>' for r in used_by if r in pages]
    stale = row.get("stale")
    warn = f'<p class="warn">stale: {esc(str(stale))}</p>' if isinstance(stale, str) else ""
    body = f"<ul>{''.join(items)}</ul>" if items else "<p class='note'>builds on no other run.</p>"
    return f"<h2>Lineage</h2>{warn}{body}"


def config_section(row: dict[str, Any], layout: PageLayout, run_dir: str) -> str:
    knobs = [
        f'<tr><td class="t">{esc(k)}</td>{cell(row.get(k))}</tr>'
        for k in layout.varying_knobs
        if row.get(k) is not None
    ]
    varying = table(["knob", "value"], knobs, sortable=False, text_columns=(0, 1)) if knobs else ""
    try:
        with open(os.path.join(run_dir, "config.yaml"), errors="replace") as handle:
            text = handle.read()
    except OSError:
        text = "(config.yaml unreadable)"
    return (
        "<h2>Config</h2><p class='note'>the knobs that differ between the runs of this report:</p>"
        f"{varying}<details><summary>config.yaml</summary><pre>{esc(text)}</pre></details>"
    )


def header_section(row: dict[str, Any], index_href: str) -> str:
    levels = "".join(f"<tr><td class='t'>{esc(level)}</td>{cell(row.get(level))}</tr>" for level in LEVELS)
    facts = [("state", row.get("state")), ("seed", row.get(SEED)), ("parameters", row.get("params"))]
    facts += [
        ("problem", row.get("problem")),
        ("warning", row.get("warning")),
        ("at floor", row.get("at_floor")),
    ]
    rows = levels + "".join(f"<tr><td class='t'>{k}</td>{cell(v)}</tr>" for k, v in facts if v is not None)
    return (
        f'<nav><a href="{index_href}">all runs</a></nav><h1>{esc(str(row["run"]))}</h1>'
        f"{table(['', ''], [rows], sortable=False, text_columns=(0, 1))}"
    )


def run_page(
    row: dict[str, Any],
    i: int,
    layout: PageLayout,
    links: tuple[dict[str, str], dict[str, str], list[str]],
    draw_curves: bool,
    out_dir: Path,
) -> str:
    """The HTML of row's page (row i of the table the layout was made from); links: every run's
    page, the run of each normalised run path, and the runs built on this one."""
    run_dir = str(row["path"])
    relative = os.path.relpath(run_dir, out_dir)
    files = " ".join(
        f'<a href="{esc(os.path.join(relative, name))}">{name}</a>'
        for name in ("metrics.json", "config.yaml", "status.json", "predictions.csv")
    )
    body = [
        header_section(row, "../index.html"),
        f"<p class='note'>files: {files}</p>",
        lineage_section(row, layout, *links),
        metrics_section(layout, i),
        training_section(run_dir),
        curves_section(run_dir, draw_curves),
        config_section(row, layout, run_dir),
    ]
    return page(str(row["run"]), "".join(body), script=False)  # no sortable table on a run page


def knob_columns(table_frame: pd.DataFrame) -> list[str]:
    return [str(c) for c in table_frame.columns if is_knob(str(c))]
