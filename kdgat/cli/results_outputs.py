"""``python -m kdgat.results`` options that write files beside printing a table: --figures DIR and
--report DIR (with --runs PATTERNS), kept out of kdgat/cli/results.py's parsing and flow."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from kdgat.results.columns import split_list


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--figures",
        type=Path,
        metavar="DIR",
        help="write the figures (PNG and PDF) of the selected runs into DIR: ROC and precision-recall "
        "curves and training curves of chosen runs, recall per attack type with error bars over seeds, "
        "teacher vs students (parameters against F1, with the floor), the transfer heatmap",
    )
    parser.add_argument(
        "--report",
        type=Path,
        metavar="DIR",
        help="write an offline HTML report into DIR (index.html: a sortable, filterable table of every "
        "run, grouped tables with 95%% CIs, the figures; one page per run). Opens from the file system",
    )
    parser.add_argument(
        "--runs",
        action="append",
        metavar="PATTERNS",
        help="with --figures or --report: only the runs whose run path matches one of these "
        "comma-separated shell-style patterns (a bare name matches anywhere in it); their curves are "
        "the ones drawn (at most 8 overlaid)",
    )


def wanted(args: argparse.Namespace) -> bool:
    return bool(args.figures or args.report)


def write_outputs(selected: pd.DataFrame, table: pd.DataFrame, args: argparse.Namespace) -> int:
    """--figures from the usable runs (table), --report of every selected run (problems too)."""
    patterns = split_list(args.runs)
    if args.figures:
        from kdgat.results.figures import write_figures

        figures = write_figures(table, args.figures, patterns)
        for name, paths in figures.written.items():
            print(f"{name}: {', '.join(str(p) for p in paths)}")
        for note in figures.notes:
            print(f"note: {note}", file=sys.stderr)
    if args.report:
        from kdgat.results.report import write_report

        report = write_report(selected, args.report, str(args.root), patterns)
        print(f"report: {report.index} ({report.pages} run pages, {len(report.figures.written)} figures)")
        if not args.figures:
            for note in report.figures.notes:
                print(f"note: {note}", file=sys.stderr)
    return 0
