"""Analyses over the results table: mean ± std and 95 % CI over seeds, best runs, teacher vs
student, transfer.

Each takes the (filtered) table and returns a new DataFrame; the CLI renders it. Groups are
matched on the levels only (and on ``training_config.seed`` for counting seeds), so knobs that
configs.py renames or regroups never break an analysis.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from configs import LEVELS
from kdgat.results.columns import SEED, ResultsError, is_knob
from kdgat.results.read import read_run
from kdgat.results.render import cell
from kdgat.results.stats import t_half_width


def _numeric(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    return df[list(columns)].apply(pd.to_numeric, errors="coerce").astype("float64")


def group_runs(df: pd.DataFrame, by: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """One row per group: ``n`` runs, distinct ``seeds``, and per metric ``.mean``, ``.std`` and
    the 95 % t confidence interval of the mean, ``.ci_low`` / ``.ci_high`` (over the runs that
    have the metric; NaN below two)."""
    values = _numeric(df, metrics)
    keys = df[list(by)].astype(object).where(df[list(by)].notna(), None)
    table = pd.concat([keys, values], axis=1)
    grouped = table.groupby(list(by), dropna=False, sort=True)
    out = grouped.size().rename("n").to_frame()
    if SEED in df.columns and SEED not in by:
        seeds = df[SEED].astype(object)
        out["seeds"] = (
            pd.concat([keys, seeds], axis=1).groupby(list(by), dropna=False, sort=True)[SEED].nunique()
        )
    for metric in metrics:
        mean, std = grouped[metric].mean(), grouped[metric].std(ddof=1)
        half = t_half_width(std, grouped[metric].count())
        out[f"{metric}.mean"] = mean
        out[f"{metric}.std"] = std
        out[f"{metric}.ci_low"] = mean - half
        out[f"{metric}.ci_high"] = mean + half
    return out.reset_index()


# Knobs that differ between runs of one experiment without making it another: the seed, where it
# ran, and where its data and cache live. (A name here that configs.py renames only adds a note.)
NOT_EXPERIMENT_KNOBS = (
    SEED,
    "osc_config.",
    "config.",
    "dataset_config.data_root",
    "dataset_config.cache_dir",
)


def mixed_within(df: pd.DataFrame, by: Sequence[str]) -> dict[str, list[str]]:
    """Levels and config knobs (other than seed) whose values differ inside some group of ``by``.

    A mean over such a group averages different experiments, not just seeds.
    """
    candidates = [
        str(c)
        for c in df.columns
        if (c in LEVELS or is_knob(str(c)))
        and c not in by
        and not any(str(c).startswith(p) for p in NOT_EXPERIMENT_KNOBS)
    ]
    if not candidates or df.empty:
        return {}
    values = df[candidates].astype(object).where(df[candidates].notna(), "none").astype(str)
    if by:
        keys = df[list(by)].astype(object).where(df[list(by)].notna(), "none").astype(str)
        counts = pd.concat([keys, values], axis=1).groupby(list(by), sort=False)[candidates].nunique().max()
    else:
        counts = values.nunique()
    mixed = [c for c in candidates if counts[c] > 1]
    if any(c in LEVELS for c in mixed):  # knobs that follow from a mixed level add nothing
        mixed = [c for c in mixed if c in LEVELS]
    return {c: sorted({cell(v, 6) for v in df[c].astype(object)})[:6] for c in mixed}


def best_runs(df: pd.DataFrame, by: Sequence[str], metric: str, lowest: bool = False) -> pd.DataFrame:
    """The best run of each group by ``metric`` (highest unless lowest=True); NaN scores last."""
    score = pd.to_numeric(df[metric], errors="coerce").astype("float64")
    order = score.sort_values(ascending=lowest, na_position="last", kind="mergesort").index
    ranked = df.loc[order]
    keys = ranked[list(by)].astype(object).where(ranked[list(by)].notna(), "<none>")
    best = ranked[~keys.duplicated(keep="first")]
    return best.sort_values(list(by), kind="mergesort", na_position="last")


DELTA_KEYS = ("modality", "dataset", "learning_type", "model_architecture", "training_mode")


def teacher_student_deltas(df: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Each student-side group against the teacher (model_size=teacher, distillation=no).

    Matched on modality, dataset, learning_type, model_architecture and training_mode; values are
    means over runs (seeds). ``param_ratio`` = student params / teacher params,
    ``speedup.<timing>`` = teacher time / student time for each status.json timing except data_s
    (``speedup.train_s``, ``speedup.eval_s``, ...), ``<metric>.delta`` = student - teacher.
    """
    timings = [c for c in df.columns if str(c).startswith("timings.") and c != "timings.data_s"]
    extra = [c for c in ("params", *timings) if c in df.columns]
    keys = [*DELTA_KEYS, "model_size", "distillation"]
    values = _numeric(df, list(metrics) + extra)
    table = pd.concat([df[keys].astype(object), values], axis=1)
    grouped = table.groupby(keys, dropna=True, sort=True)
    means = grouped.mean()
    means.insert(0, "n", grouped.size())
    means = means.reset_index()
    is_teacher = (means["model_size"] == "teacher") & (means["distillation"] == "no")
    teachers = means[is_teacher].drop(columns=["model_size", "distillation"])
    students = means[means["model_size"] != "teacher"]
    if teachers.empty:
        raise ResultsError(
            "--deltas: no finished teacher runs (model_size=teacher, distillation=no) among the "
            "selected runs, so there is nothing to compare students with. Train one (python "
            "train.py --model-size teacher --distillation no ...) or drop a --where that removes them."
        )
    merged = students.merge(teachers, on=list(DELTA_KEYS), suffixes=("", ".teacher"), how="inner")
    if merged.empty:
        raise ResultsError(
            "--deltas: no student runs share modality, dataset, learning_type, model_architecture "
            "and training_mode with a teacher run among the selected runs."
        )
    out = merged[[*keys, "n", "n.teacher"]].copy()
    if "params" in merged:
        out["params"] = merged["params"]
        out["params.teacher"] = merged["params.teacher"]
        out["param_ratio"] = merged["params"] / merged["params.teacher"]
    for metric in metrics:
        out[metric] = merged[metric]
        out[f"{metric}.teacher"] = merged[f"{metric}.teacher"]
        out[f"{metric}.delta"] = merged[metric] - merged[f"{metric}.teacher"]
    for column in timings:
        out["speedup." + column.split(".", 1)[1]] = merged[f"{column}.teacher"] / merged[column]
    return out.reset_index(drop=True)


TRANSFER_METRICS = {
    "f1": "F1",
    "auroc": "AUROC",
    "benign_fpr": "benign FPR",
    "flag_all.f1": "floor (flag-all F1)",
}


def evaluated_columns(df: pd.DataFrame, metric: str) -> dict[str, str]:
    """Evaluated-on name -> the column holding ``metric`` of its eval_<name>.json: the ``all``
    section that kdgat.evaluate writes (``eval.<name>.all.<metric>``), or a flat file's top level."""
    nested = re.compile(rf"^eval\.(.+)\.all\.{re.escape(metric)}$")
    flat = re.compile(rf"^eval\.([^.]+)\.{re.escape(metric)}$")
    found: dict[str, str] = {}
    for column in map(str, df.columns):
        if m := nested.match(column):
            found[m.group(1)] = column
    for column in map(str, df.columns):
        m = flat.match(column)
        # A flat file's name holds no dot: eval.X.flag_all.f1 is X's floor, not a target "X.flag_all".
        if m and m.group(1) not in found:
            found[m.group(1)] = column
    return found


def run_label(row: pd.Series) -> str:
    """A transfer-matrix row name for one run: dataset, architecture, feature set, run number."""
    features = row.get("dataset_config.automotive.features")
    parts = [str(row.get("dataset")), str(row.get("model_architecture"))]
    if isinstance(features, str):
        parts.append(features)
    if isinstance(row.get("dataset_config.calibration"), str):
        parts.append("calibrated")
    number = row.get("run_number")
    parts.append(
        f"run_{int(number):03d}"
        if isinstance(number, int | float) and not pd.isna(number)
        else str(row["run"])
    )
    return " ".join(parts)


def transfer_matrix(df: pd.DataFrame, metric: str = "f1", rows: str = "dataset") -> pd.DataFrame:
    """``metric`` with rows = trained-on (the dataset, mean over its runs; or rows="run": each run)
    and columns = evaluated-on.

    Off-diagonal cells come from eval_<name>.json; with rows="dataset" the diagonal is the run's
    own test split (``test.<metric>``) unless an eval file covers it.
    """
    evaluated = evaluated_columns(df, metric)
    if not evaluated:
        raise ResultsError(
            f"--transfer: no eval_<dataset>.json results with a {metric!r} value among the selected "
            f"runs. Cross-dataset results are written next to a run as eval_<dataset>.json "
            f"(python -m kdgat.evaluate, python -m kdgat.transfer); until then there is nothing to put in "
            f"the matrix."
        )
    if rows == "run":
        labels = [run_label(row) for _, row in df.iterrows()]
        matrix = pd.DataFrame(
            {t: pd.to_numeric(df[c], errors="coerce").to_numpy() for t, c in sorted(evaluated.items())},
            index=pd.Index(labels, name="trained_on"),
        )
        matrix.columns.name = "evaluated_on"
        return matrix
    trained_on = sorted(df["dataset"].dropna().unique())
    columns = sorted(set(evaluated) | set(trained_on))
    matrix = pd.DataFrame(index=pd.Index(trained_on, name="trained_on"), columns=columns, dtype="float64")
    for dataset in trained_on:
        selected = df[df["dataset"] == dataset]
        for target in columns:
            value = math.nan
            if target in evaluated:
                value = pd.to_numeric(selected[evaluated[target]], errors="coerce").mean()
            if math.isnan(value) and target == dataset and f"test.{metric}" in df.columns:
                value = pd.to_numeric(selected[f"test.{metric}"], errors="coerce").mean()
            matrix.loc[dataset, target] = value
    matrix.columns.name = "evaluated_on"
    return matrix


def transfer_matrices(df: pd.DataFrame, rows: str = "run") -> dict[str, pd.DataFrame]:
    """The transfer matrix of each of TRANSFER_METRICS (F1, AUROC, benign FPR, floor)."""
    return {name: transfer_matrix(df, metric, rows) for metric, name in TRANSFER_METRICS.items()}


def matrices_of(runs: list[Path], targets: list[str], png: Path | None) -> dict[str, pd.DataFrame]:
    """The transfer matrices (one row per run, one column per target) from the runs' eval files,
    and their heatmap written to png when given (the transfer commands' result)."""
    table = pd.DataFrame([read_run(run) for run in runs])
    matrices = {k: m[targets] for k, m in transfer_matrices(table, rows="run").items()}
    if png is not None:
        from kdgat.results.heatmap import write_heatmap

        write_heatmap(matrices, png)
    return matrices
