"""``--figures DIR``: the figures a paper shows, drawn from the runs' own files, PNG and PDF.

- roc_pr: ROC and precision-recall curves of chosen runs overlaid (predictions.csv), with the
  chance diagonal and the PR floor (precision of flagging every window).
- training: training and validation loss and validation F1 per epoch of the same runs (their
  TensorBoard event files).
- attack_recall: test recall per attack type, mean over seeds with std error bars, per group of
  the levels that vary.
- teacher_students: test F1 against parameters (log axis) per model size and distillation, mean
  ± std over seeds, beside the F1 of flagging every window; one panel per dataset and
  architecture.
- transfer: the trained-on x evaluated-on heatmap (eval_*.json).

Curves overlay at most MAX_CURVES runs: those --runs names, else one run (its lowest seed) of
each group of levels. A figure with nothing to draw is left out with a note saying why.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from configs import LEVELS
from kdgat.results.columns import SEED, ResultsError
from kdgat.results.curves import run_curves, training_scalars
from kdgat.results.figure_style import FLOOR_STYLE, FORMATS, HATCHES, new_figure, save, series_style, style

MAX_CURVES = 8
MAX_GROUPS = 12
MAX_PANELS = 6


@dataclass
class Figures:
    """The files written per figure, and what was left out and why."""

    written: dict[str, list[Path]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    curve_runs: list[str] = field(default_factory=list)  # the `run` of each run whose curves are drawn


def select_runs(table: pd.DataFrame, patterns: Sequence[str]) -> pd.DataFrame:
    """The runs whose `run` (path below the root) matches one of the shell-style patterns (a bare
    name matches as a substring)."""
    if not patterns:
        return table
    names = table["run"].astype(str)
    keep = pd.Series(False, index=table.index)
    for pattern in patterns:
        glob = pattern if any(ch in pattern for ch in "*?[") else f"*{pattern}*"
        keep |= names.map(lambda name, g=glob: fnmatch.fnmatchcase(name, g))
    if not keep.any():
        raise ResultsError(
            f"--runs {','.join(patterns)}: no selected run matches. Patterns match the run column "
            f"(e.g. 'automotive/set04/*/GAT/*' or run_003); list them with --columns run."
        )
    return table[keep]


def varying_levels(table: pd.DataFrame) -> list[str]:
    return [c for c in LEVELS if c in table and table[c].astype(object).nunique(dropna=False) > 1]


def curve_choice(table: pd.DataFrame, patterns: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """The runs whose curves are overlaid: --runs' matches, else the lowest seed of each group of
    levels; at most MAX_CURVES, with a note when more were eligible."""
    notes = []
    if patterns:
        chosen = table
    else:
        by = varying_levels(table) or ["modality"]
        order = table.sort_values([*by, SEED] if SEED in table else by, kind="mergesort")
        chosen = order.drop_duplicates(subset=by, keep="first")
    if len(chosen) > MAX_CURVES:
        notes.append(
            f"curves: {len(chosen)} runs eligible, the first {MAX_CURVES} drawn; choose them with "
            f"--runs PATTERN[,PATTERN] (or narrow with --where)."
        )
        chosen = chosen.iloc[:MAX_CURVES]
    return chosen, notes


def run_labels(chosen: pd.DataFrame) -> list[str]:
    """Short names: the levels that differ among the runs, and the seed."""
    varying = varying_levels(chosen)
    labels = []
    for _, row in chosen.iterrows():
        parts = [str(row[c]) for c in varying]
        if SEED in row and pd.notna(row[SEED]):
            parts.append(f"seed {int(row[SEED])}")
        labels.append(" ".join(parts) or str(row["run"]))
    if len(set(labels)) < len(labels):  # same levels and seed in two folders: the path tells them apart
        labels = [str(run) for run in chosen["run"]]
    return labels


def write_figures(
    table: pd.DataFrame, out_dir: Path, patterns: Sequence[str] = (), formats: Sequence[str] = FORMATS
) -> Figures:
    """Every figure of the module docstring that the runs allow, into out_dir (PNG and PDF, or
    formats: the report takes PNG alone, the PDFs being most of the drawing time)."""
    out = Figures()
    table = select_runs(table, patterns)
    chosen, notes = curve_choice(table, patterns)
    out.notes += notes
    out.curve_runs = [str(r) for r in chosen["run"]]
    runs = list(zip(run_labels(chosen), chosen["path"].astype(str), strict=True))
    with style():
        for name, draw in (
            ("roc_pr", lambda: roc_pr_figure(runs)),
            ("training", lambda: training_figure(runs)),
            ("attack_recall", lambda: attack_recall_figure(table, out.notes)),
            ("teacher_students", lambda: teacher_student_figure(table, out.notes)),
        ):
            figure, why = draw()
            if figure is None:
                out.notes.append(f"{name}: not drawn ({why})")
            else:
                out.written[name] = save(figure, out_dir, name, formats)
        transfer = transfer_figure(table, out_dir, formats)
        if isinstance(transfer, str):
            out.notes.append(f"transfer: not drawn ({transfer})")
        else:
            out.written["transfer"] = transfer
    return out


def roc_pr_figure(runs: list[tuple[str, str]]) -> tuple[object | None, str]:
    curves = [(label, run_curves(path)) for label, path in runs]
    drawn = [(label, c) for label, c in curves if c is not None]
    if not drawn:
        return None, "no chosen run has a predictions.csv with attack and benign windows"
    figure, (roc, pr) = new_figure(8.0, 3.6, 2)
    for i, (label, c) in enumerate(drawn):
        look = series_style(i)
        every = max(1, len(c.fpr) // 8)
        roc.plot(c.fpr, c.tpr, label=label, markevery=every, **look)
        pr.plot(c.recall, c.precision, label=label, markevery=every, drawstyle="steps-post", **look)
    roc.plot([0, 1], [0, 1], label="chance", **FLOOR_STYLE)
    shares = sorted({round(c.attack_share, 4) for _, c in drawn})
    for j, share in enumerate(shares):
        pr.axhline(share, label="flag every window" if j == 0 else None, **FLOOR_STYLE)
    roc.set(xlabel="benign false-positive rate", ylabel="recall (true-positive rate)", title="ROC, test")
    pr.set(xlabel="recall", ylabel="precision", title="precision-recall, test", ylim=(0, 1.02))
    _shared_legend(figure, [roc, pr], columns=2)
    missing = len(curves) - len(drawn)
    if missing:
        figure.suptitle(f"{missing} chosen run(s) without predictions.csv not shown", fontsize=8)
    return figure, ""


def training_figure(runs: list[tuple[str, str]]) -> tuple[object | None, str]:
    scalars = [(label, training_scalars(path)) for label, path in runs]
    drawn = [(label, s) for label, s in scalars if s]
    if not drawn:
        return None, "no chosen run has TensorBoard event files with per-epoch scalars"
    figure, (losses, f1) = new_figure(8.0, 3.4, 2)
    for i, (label, s) in enumerate(drawn):
        look = series_style(i)
        colour, marker = look["color"], look["marker"]
        if "losses/train" in s:
            losses.plot(
                *s["losses/train"], color=colour, marker=marker, linestyle="-", label=f"{label} train"
            )
        if "losses/val" in s:
            losses.plot(*s["losses/val"], color=colour, marker=marker, linestyle="--", label=f"{label} val")
        if "charts/val_f1" in s:
            f1.plot(*s["charts/val_f1"], label=label, **look)
    losses.set(xlabel="epoch", ylabel="loss", title="loss (solid train, dashed validation)")
    f1.set(xlabel="epoch", ylabel="validation F1", title="validation F1", ylim=(0, 1.02))
    from matplotlib.ticker import MaxNLocator

    for ax in (losses, f1):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    losses.legend(fontsize=6.5)
    f1.legend(loc="lower right")
    return figure, ""


def _shared_legend(figure: Any, axes: Sequence[Any], columns: int = 0, title: str | None = None) -> None:
    """One legend below the panels, each label once (the panels' curves keep the plot area clear)."""
    handles, labels = [], []
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    figure.legend(handles, labels, title=title, loc="outside lower center", ncol=columns or len(labels))


def _group_names(frame: pd.DataFrame, by: list[str]) -> pd.Series:
    if not by:
        return pd.Series("all runs", index=frame.index)
    return frame[by].astype(str).agg(" ".join, axis=1)


def attack_recall_figure(table: pd.DataFrame, notes: list[str]) -> tuple[object | None, str]:
    columns = sorted(
        c for c in map(str, table.columns) if c.startswith("test.attack_types.") and c.endswith(".recall")
    )
    if not columns:
        return None, "no run has per-attack-type test results"
    types = [c.split(".")[2] for c in columns]
    values = table[columns].apply(pd.to_numeric, errors="coerce")
    groups = _group_names(table, varying_levels(table))
    names = sorted(groups.unique())
    if len(names) > MAX_GROUPS:
        notes.append(
            f"attack_recall: {len(names)} groups, the first {MAX_GROUPS} drawn (narrow with --where)"
        )
        names = names[:MAX_GROUPS]
    figure, (ax,) = new_figure(max(5.0, 0.9 * len(types) * max(1, len(names)) / 3 + 3), 3.6)
    width = 0.8 / len(names)
    x = np.arange(len(types))
    for i, name in enumerate(names):
        mine = values[groups == name]
        mean, std = mine.mean().to_numpy(), mine.std(ddof=1).to_numpy()
        look = series_style(i)
        ax.bar(
            x + (i - (len(names) - 1) / 2) * width,
            mean,
            width,
            yerr=np.nan_to_num(std),
            capsize=2,
            label=f"{name} (n={len(mine)})",
            color=look["color"] if i else "#ffffff",
            edgecolor="#000000",
            hatch=HATCHES[i % len(HATCHES)],
            linewidth=0.6,
            error_kw={"elinewidth": 0.8},
        )
    ax.set_xticks(x, types)
    ax.set(ylabel="test recall", ylim=(0, 1.05), title="recall per attack type (mean ± std over seeds)")
    ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=min(3, len(names)))
    return figure, ""


def teacher_student_figure(table: pd.DataFrame, notes: list[str]) -> tuple[object | None, str]:
    from matplotlib.ticker import NullFormatter

    needed = {"params", "test.f1", "model_size", "distillation"}
    if not needed <= set(table.columns):
        return None, "the runs have no params or test.f1"
    frame = table.assign(
        params=pd.to_numeric(table["params"], errors="coerce"),
        f1=pd.to_numeric(table["test.f1"], errors="coerce"),
        floor=pd.to_numeric(table.get("test.flag_all.f1"), errors="coerce"),
    ).dropna(subset=["params", "f1"])
    panels = [
        key
        for key, part in frame.groupby(["dataset", "model_architecture"], sort=True)
        if part["model_size"].nunique() > 1
    ]
    if not panels:
        return None, "no dataset and architecture has runs of more than one model size"
    if len(panels) > MAX_PANELS:
        notes.append(f"teacher_students: {len(panels)} panels, the first {MAX_PANELS} drawn")
        panels = panels[:MAX_PANELS]
    columns = min(3, len(panels))
    figure, axes = new_figure(3.4 * columns, 3.2, len(panels), columns)
    distillations = sorted(frame["distillation"].astype(str).unique())
    for ax, (dataset, arch) in zip(axes, panels, strict=True):
        part = frame[(frame["dataset"] == dataset) & (frame["model_architecture"] == arch)]
        stats = part.groupby(["model_size", "distillation"])[["params", "f1"]].agg(["mean", "std"])
        for (size, distillation), row in stats.iterrows():
            look = series_style(distillations.index(str(distillation)))
            ax.errorbar(
                row[("params", "mean")],
                row[("f1", "mean")],
                yerr=np.nan_to_num(row[("f1", "std")]),
                fmt=look["marker"],
                color=look["color"],
                capsize=3,
                markersize=6,
                label=str(distillation),
            )
            ax.annotate(
                str(size),
                (row[("params", "mean")], row[("f1", "mean")]),
                fontsize=6.5,
                xytext=(4, 4),
                textcoords="offset points",
            )
        floor = part["floor"].mean()
        if pd.notna(floor):
            ax.axhline(floor, label="flag every window", **FLOOR_STYLE)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # decades only: minor labels collide
        ax.set(xlabel="parameters (log)", ylabel="test F1", title=f"{dataset} {arch}")
    _shared_legend(figure, axes, title="distillation")
    return figure, ""


def transfer_figure(table: pd.DataFrame, out_dir: Path, formats: Sequence[str] = FORMATS) -> list[Path] | str:
    """The transfer heatmap of each figure the eval_*.json files hold (F1, AUROC, benign FPR, floor)."""
    from kdgat.results.analyse import TRANSFER_METRICS, transfer_matrix
    from kdgat.results.heatmap import write_heatmap

    matrices = {}
    for metric, name in TRANSFER_METRICS.items():
        try:
            matrices[name] = transfer_matrix(table, metric, "dataset")
        except ResultsError:
            continue  # this figure is in no eval file
    if not matrices:
        return "no eval_*.json results among the runs"
    return [write_heatmap(matrices, out_dir / f"transfer.{fmt}") for fmt in formats]
