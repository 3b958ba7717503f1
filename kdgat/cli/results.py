"""``python -m kdgat.results``: read every run below RUNS_ROOT, filter, analyse, render.

    python -m kdgat.results runs/ --format markdown
    python -m kdgat.results runs/ --where dataset=hcrlsa --where model_size=student
    python -m kdgat.results runs/ --group-by model_size,distillation       # mean +- std, 95% CI over seeds
    python -m kdgat.results runs/ --compare distillation=no,standard       # paired by seed: CI, p-values
    python -m kdgat.results runs/ --best val.f1 --group-by dataset         # best run per group
    python -m kdgat.results runs/ --deltas                                 # teacher vs student
    python -m kdgat.results runs/ --transfer f1                            # trained-on x evaluated-on
    python -m kdgat.results runs/ --figures figs/ --runs 'automotive/set04/*'  # PNG + PDF figures
    python -m kdgat.results runs/ --report report/                         # offline HTML report

Runs left out of a table (unfinished, failed, unreadable) and stale runs are listed on stderr.
A mistake the user can fix exits 2 with one line saying what, why and how.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import yaml

from configs import LEVELS
from kdgat.cli import results_outputs
from kdgat.common.errors import UserError
from kdgat.results import lineage
from kdgat.results.analyse import (
    best_runs,
    group_runs,
    mixed_within,
    teacher_student_deltas,
    transfer_matrices,
    transfer_matrix,
)
from kdgat.results.columns import (
    DEFAULT_METRICS,
    FLOOR_COLUMNS,
    SEED,
    ResultsError,
    resolve_column,
    split_list,
)
from kdgat.results.flat import FLOOR_MARGIN
from kdgat.results.hparams import write_hparams
from kdgat.results.query import apply_where
from kdgat.results.read import read_run, saved_knobs
from kdgat.results.render import render, render_matrices
from kdgat.results.table import load_runs, problems, usable
from kdgat.runs.store import write_config_json

EPILOG = """\
columns: run, the levels (modality dataset learning_type model_architecture model_size
  distillation training_mode), state, test.f1/precision/recall/auroc/accuracy/benign_fpr,
  val.*, test.attack_types.<type>.recall, test_by_split.<split>.*, eval.<dataset>.* (transfer),
  params, best_epoch, timings.*, and every config knob (training_config.lr, ...).
  Aliases: arch, size, mode, seed, lr, epochs. --list-columns prints them all.

unfinished, failed or unreadable runs are never in the results table; they are listed with
the reason on stderr (--include-problems puts them in the table too).

examples:
  python -m kdgat.results runs/ --format markdown
  python -m kdgat.results runs/ --where dataset=hcrlsa --where model_size=student,teacher
  python -m kdgat.results runs/ --where 'test.f1>=0.9' --sort test.f1 --descending
  python -m kdgat.results runs/ --group-by model_size,distillation --format latex
  python -m kdgat.results runs/ --compare distillation=no,standard --where model_size=tiny
  python -m kdgat.results runs/ --compare mode=all_samples,curriculum_classifier --metrics test.f1,test.mcc
  python -m kdgat.results runs/ --best val.f1 --group-by dataset,model_size
  python -m kdgat.results runs/ --deltas --where dataset=hcrlch
  python -m kdgat.results runs/ --transfer f1 --where model_size=teacher
  python -m kdgat.results runs/ --write-hparams      # backfill TensorBoard HParams entries
  python -m kdgat.results runs/ --write-config-json  # runs from before config.json: read faster
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kdgat.results",
        description="Aggregate every run under RUNS_ROOT into one table (one row per run), filter "
        "it, group it over seeds, pick the best runs, compare teachers with students, or build a "
        "cross-dataset transfer matrix.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "root", nargs="?", default="runs", metavar="RUNS_ROOT", help="runs folder (default: runs)"
    )
    parser.add_argument(
        "--format",
        choices=("table", "csv", "markdown", "latex"),
        default="table",
        help="output format (default: table)",
    )
    parser.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="COL=VALUE",
        help="keep runs where COL=VALUE (also !=, >, >=, <, <=; VALUE may be a,b,c). Repeat to AND.",
    )
    parser.add_argument(
        "--columns",
        action="append",
        metavar="COLS",
        help="columns to show, comma-separated, shell-style patterns allowed (test.attack_types.*.recall). "
        "Default: run, the levels that vary, seed, test metrics, val.f1, params.",
    )
    parser.add_argument(
        "--all-columns", action="store_true", help="show every column (default for --format csv)"
    )
    parser.add_argument("--sort", metavar="COL", help="sort rows by COL")
    parser.add_argument("--descending", action="store_true", help="with --sort: largest first")
    parser.add_argument(
        "--group-by",
        action="append",
        metavar="COLS",
        help="group runs by these columns (comma-separated; 'levels' = all seven levels) and show "
        "n, distinct seeds, mean ± std and the 95%% t confidence interval of the mean of --metrics; "
        "with --compare: the rows of the paired table",
    )
    parser.add_argument(
        "--compare",
        metavar="FIELD=A,B",
        help="pair runs that differ only in FIELD (same seed, every other level and knob; e.g. "
        "distillation=no,standard) and show, per metric, the pairs, the mean paired difference B - A "
        "with its 95%% CI, the paired t-test and Wilcoxon signed-rank p-values, 'n.s.' where not "
        "significant at 5%%; runs without a partner are listed on stderr",
    )
    parser.add_argument(
        "--metrics",
        action="append",
        metavar="COLS",
        help=f"metrics for --group-by, --compare, --best and --deltas (default: {','.join(DEFAULT_METRICS)})",
    )
    parser.add_argument(
        "--best",
        metavar="METRIC",
        help="show the best run per --group-by group (default groups: the seven levels) by METRIC; "
        "select on val.* to avoid choosing on the test set",
    )
    parser.add_argument(
        "--lowest", action="store_true", help="with --best: lower is better (e.g. test.benign_fpr)"
    )
    parser.add_argument(
        "--deltas",
        action="store_true",
        help="teacher vs student: parameter ratio, metric deltas (student - teacher) and speed-ups "
        "(teacher time / student time, from status.json timings), means over seeds; keep the teacher runs "
        "(model_size=teacher, distillation=no) in the --where selection",
    )
    parser.add_argument(
        "--transfer",
        nargs="?",
        const="all",
        metavar="METRIC",
        help="cross-dataset matrix from the eval_*.json files: rows trained-on, columns evaluated-on; "
        "METRIC (f1, auroc, benign_fpr, flag_all.f1, ...) or 'all' (default): F1, AUROC, benign FPR "
        "and the flag-everything floor",
    )
    parser.add_argument(
        "--transfer-rows",
        choices=("dataset", "run"),
        default="dataset",
        help="with --transfer: one row per trained-on dataset (mean over its runs; default) or per run",
    )
    parser.add_argument(
        "--png", type=Path, metavar="PATH", help="with --transfer: also save a heatmap PNG here"
    )
    parser.add_argument(
        "--include-problems", action="store_true", help="keep unfinished/failed/unreadable runs in the table"
    )
    parser.add_argument("--digits", type=int, default=4, help="decimals in table/markdown/latex (default 4)")
    parser.add_argument("--list-columns", action="store_true", help="print every column name and exit")
    parser.add_argument(
        "--lineage",
        metavar="RUN",
        help="print the tree of runs RUN (a run below RUNS_ROOT, or its path) builds on, each with its "
        "state, test.f1 and config digest, flagging upstream runs deleted or retrained after it",
    )
    parser.add_argument(
        "--write-hparams",
        action="store_true",
        help="write a TensorBoard HParams entry into every selected finished run, then exit",
    )
    parser.add_argument(
        "--write-config-json",
        action="store_true",
        help="write config.json (the knobs of config.yaml, flat) into every selected run that lacks a "
        "current one, then exit. Run directories from before config.json are read with PyYAML, several "
        "times slower; after this they are read from config.json",
    )
    results_outputs.add_arguments(parser)
    return parser


def _default_columns(df: pd.DataFrame) -> list[str]:
    varying = [level for level in LEVELS if df[level].astype(object).nunique(dropna=False) > 1]
    wanted = ["run", *varying, SEED, *DEFAULT_METRICS, *FLOOR_COLUMNS, "val.f1", "params", "state"]
    if "stale" in df.columns and df["stale"].notna().any():
        wanted.append("stale")
    return [c for c in wanted if c in df.columns]


def _select_columns(df: pd.DataFrame, patterns: list[str]) -> list[str]:
    chosen: list[str] = []
    for pattern in patterns:
        if any(ch in pattern for ch in "*?["):
            hits = [str(c) for c in df.columns if fnmatch.fnmatchcase(str(c), pattern)]
            if not hits:
                raise ResultsError(f"--columns: pattern {pattern!r} matches no column; see --list-columns.")
            chosen += hits
        else:
            chosen.append(resolve_column(df, pattern, "--columns"))
    return list(dict.fromkeys(chosen))


def _note_mixed(df: pd.DataFrame, by: Sequence[str], what: str) -> None:
    mixed = mixed_within(df, by)
    if mixed:
        listing = "; ".join(f"{c} ({', '.join(v)})" for c, v in list(mixed.items())[:6])
        print(
            f"note: {what} mix runs that differ in {listing}. Add those columns to --group-by, or "
            f"pick one value with --where, to compare like with like.",
            file=sys.stderr,
        )


def _write_config_json(df: pd.DataFrame) -> int:
    """Backfill config.json where it is missing or older than config.yaml; 1 if any could not be."""
    digests = df["config_digest"] if "config_digest" in df.columns else pd.Series(None, index=df.index)
    written, current, failed = 0, 0, []
    for run, path, digest in zip(df["run"], df["path"], digests, strict=True):
        if not isinstance(digest, str):
            continue  # no config.yaml to write it from (listed as a problem by a plain query)
        if saved_knobs(path, digest) is not None:
            current += 1
            continue
        try:
            write_config_json(Path(path))
            written += 1
        except (OSError, ValueError, yaml.YAMLError) as err:
            failed.append(f"  {run}: {' '.join(str(err).split())}")
    print(f"wrote config.json into {written} run(s); {current} already had a current one")
    if failed:
        print(
            f"{len(failed)} run(s) have a config.yaml that could not be read (they stay listed as "
            f"problems until it is fixed):",
            *failed,
            sep="\n",
            file=sys.stderr,
        )
    return 1 if failed else 0


def _report_stale(df: pd.DataFrame) -> None:
    """Runs whose upstream runs were deleted or retrained after them (kdgat.results.lineage)."""
    stale = df[df["stale"].notna()] if "stale" in df.columns else df.iloc[:0]
    if stale.empty:
        return
    print(
        f"{len(stale)} run(s) build on runs that are no longer the ones they used (column 'stale'; "
        f"--lineage RUN shows the tree):",
        file=sys.stderr,
    )
    for row in stale.itertuples(index=False):
        print(f"  {row.run}: {row.stale}", file=sys.stderr)


def _report_floors(df: pd.DataFrame) -> None:
    """Rows with a result within FLOOR_MARGIN F1 of flagging every window (column at_floor)."""
    if "at_floor" not in df.columns:
        return
    rows = df[df["at_floor"].notna()]
    if rows.empty:
        return
    print(
        f"warning: {len(rows)} run(s) with a result within {FLOOR_MARGIN} F1 of flagging every window "
        f"(no better than an alarm on every window; column at_floor, margins in *.f1_margin):",
        file=sys.stderr,
    )
    for row in rows.itertuples(index=False):
        print(f"  {row.run}: {row.at_floor}", file=sys.stderr)


def _report_problems(df: pd.DataFrame) -> None:
    listed = problems(df)
    if listed.empty:
        return
    left_out = int(listed["problem"].notna().sum())
    print(
        f"{left_out} run(s) left out of the results, {len(listed) - left_out} with a partial result:",
        file=sys.stderr,
    )
    for row in listed.itertuples(index=False):
        reason = row.problem if isinstance(row.problem, str) else f"warning: {row.warning}"
        if isinstance(row.problem, str) and isinstance(row.warning, str):
            reason += f"; warning: {row.warning}"
        print(f"  {row.run}: {reason}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (2 for a usage mistake)."""
    args = build_parser().parse_args(argv)
    try:
        return _main(args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _main(args: argparse.Namespace) -> int:
    """The command's steps: read, answer the whole-tree questions, select, then one view."""
    df = load_runs(args.root)
    if df.empty:
        print(
            f"no run directories (run_NNN) under {args.root}. Train one with python train.py "
            f"--runs-root {args.root}, or point RUNS_ROOT at the folder holding runs.",
            file=sys.stderr,
        )
        return 1
    if args.list_columns:
        print("\n".join(str(c) for c in df.columns))
        return 0
    if args.lineage:
        _print_lineage(df, args)
        return 0
    metrics = [resolve_column(df, m, "--metrics") for m in split_list(args.metrics)] or [
        m for m in DEFAULT_METRICS if m in df.columns
    ]
    selected = apply_where(df, args.where)
    if args.write_config_json:
        return _write_config_json(selected)
    table = _reported_selection(selected, args.include_problems)
    if table.empty:
        _explain_no_usable_runs(df, args)
        return 1
    if args.write_hparams:
        written = [write_hparams(path) for path in usable(table)["path"]]
        print(f"wrote HParams entries into {len(written)} run(s)")
        return 0
    if results_outputs.wanted(args):
        return results_outputs.write_outputs(selected, usable(table), args)
    group_by = _group_columns(table, args.group_by)
    if sum(bool(x) for x in (args.best, args.deltas, args.transfer, args.compare)) > 1:
        raise ResultsError(
            "--best, --deltas, --transfer and --compare each make a different table; use one at a time."
        )
    _show_view(table, args, metrics, group_by)
    return 0


def _print_lineage(df: pd.DataFrame, args: argparse.Namespace) -> None:
    """--lineage RUN: the tree of runs RUN builds on."""
    try:
        print(lineage.tree(df, args.lineage, read_run))
    except LookupError:
        raise ResultsError(
            f"--lineage {args.lineage}: no run directory of that name under {args.root} or at "
            f"that path. Give a `run` value of the table (e.g. automotive/.../run_000) or a path."
        ) from None


def _reported_selection(selected: pd.DataFrame, include_problems: bool) -> pd.DataFrame:
    """The runs a table shows, after listing on stderr those left out, stale or at the floor."""
    _report_problems(selected)
    _report_stale(selected)
    table = selected if include_problems else usable(selected)
    _report_floors(table)
    return table


def _explain_no_usable_runs(df: pd.DataFrame, args: argparse.Namespace) -> None:
    """Nothing usable is selected: say so, with the values the --where columns do have."""
    present = {
        column: sorted(str(v) for v in df[column].dropna().unique())[:12]
        for column in {
            resolve_column(df, w.split("=")[0].rstrip("!<>"), "--where") for w in args.where if "=" in w
        }
    }
    hint = "; ".join(f"{c} has: {', '.join(v)}" for c, v in present.items())
    print(
        f"no usable runs match {' '.join('--where ' + w for w in args.where) or 'under ' + args.root}."
        + (f" Values present: {hint}." if hint else ""),
        file=sys.stderr,
    )


def _group_columns(table: pd.DataFrame, group_by: list[str] | None) -> list[str]:
    """--group-by as column names ('levels' stands for the seven levels)."""
    columns = split_list(group_by)
    if columns == ["levels"] or "levels" in columns:
        columns = [c for c in columns if c != "levels"] + list(LEVELS)
    return [resolve_column(table, c, "--group-by") for c in columns]


def _show_view(
    table: pd.DataFrame, args: argparse.Namespace, metrics: list[str], group_by: list[str]
) -> None:
    """Print the one table asked for: transfer matrix, deltas, best runs, groups or the runs."""
    if args.transfer:
        _show_transfer(table, args)
    elif args.compare:
        _show_compare(table, args, metrics, group_by)
    elif args.deltas:
        print(render(teacher_student_deltas(table, metrics), args.format, args.digits))
    elif args.best:
        print(render(_best_runs(table, args, metrics, group_by), args.format, args.digits))
    elif group_by:
        print(render(_grouped(table, args, metrics, group_by), args.format, args.digits))
    else:
        print(render(_runs(table, args), args.format, args.digits))


def _show_transfer(table: pd.DataFrame, args: argparse.Namespace) -> None:
    """--transfer: the trained-on x evaluated-on matrices, and their heatmap with --png."""
    if args.transfer == "all":
        matrices = transfer_matrices(table, args.transfer_rows)
    else:
        matrices = {args.transfer: transfer_matrix(table, args.transfer, args.transfer_rows)}
    if args.transfer_rows == "dataset":
        _note_mixed(table, ["dataset"], "cells")
    print(render_matrices(matrices, args.format, args.digits))
    if args.png:
        from kdgat.results.heatmap import write_heatmap

        print(f"heatmap: {write_heatmap(matrices, args.png)}", file=sys.stderr)


def _show_compare(
    table: pd.DataFrame, args: argparse.Namespace, metrics: list[str], group_by: list[str]
) -> None:
    """--compare FIELD=A,B: the paired table on stdout; unpaired runs and notes on stderr."""
    from kdgat.results.compare import compare_runs, display, notes

    comparison = compare_runs(table, args.compare, metrics, group_by or None)
    if comparison.table.empty:
        print(f"no pairs: no run with {comparison.a} has a partner with {comparison.b}.", file=sys.stderr)
    elif args.format == "csv":
        print(render(comparison.table, "csv"))
    else:
        print(render(display(comparison, args.digits), args.format, args.digits))
    for line in notes(comparison):
        print(line, file=sys.stderr)
    unpaired = comparison.unpaired
    if not unpaired.empty:
        print(f"{len(unpaired)} run(s) left unpaired (not in the table):", file=sys.stderr)
        for row in unpaired.itertuples(index=False):
            print(f"  {row.run} ({comparison.field}={row.side}): {row.reason}", file=sys.stderr)


def _best_runs(
    table: pd.DataFrame, args: argparse.Namespace, metrics: list[str], group_by: list[str]
) -> pd.DataFrame:
    """--best METRIC: the best run of each group, with the group, run, metric and --metrics columns."""
    metric = resolve_column(table, args.best, "--best")
    frame = best_runs(table, group_by or list(LEVELS), metric, lowest=args.lowest)
    columns = list(dict.fromkeys([*(group_by or _default_columns(frame)), "run", metric, *metrics]))
    if args.columns:
        columns = _select_columns(frame, split_list(args.columns))
    return frame[[c for c in columns if c in frame.columns]]


def _grouped(
    table: pd.DataFrame, args: argparse.Namespace, metrics: list[str], group_by: list[str]
) -> pd.DataFrame:
    """--group-by: n, distinct seeds and mean ± std of the metrics per group, sorted and narrowed."""
    grouped = group_runs(table, group_by, metrics)
    _note_mixed(table, group_by, "groups")
    if args.sort:
        sort = resolve_column(grouped, args.sort if args.sort in grouped else f"{args.sort}.mean", "--sort")
        grouped = grouped.sort_values(sort, ascending=not args.descending, kind="mergesort")
    if args.columns:  # names of the grouped table, e.g. n,test.f1.mean or 'test.*'
        grouped = grouped[_select_columns(grouped, split_list(args.columns))]
    return grouped


def _runs(table: pd.DataFrame, args: argparse.Namespace) -> pd.DataFrame:
    """One row per run: sorted, with the columns asked for (all of them for csv)."""
    if args.sort:
        table = table.sort_values(
            resolve_column(table, args.sort, "--sort"), ascending=not args.descending, kind="mergesort"
        )
    if args.columns:
        columns = _select_columns(table, split_list(args.columns))
    elif args.all_columns or args.format == "csv":
        columns = [c for c in table.columns if table[c].notna().any()]
    else:
        columns = _default_columns(table)
    return table[columns]
