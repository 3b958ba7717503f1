"""The table of all runs: every run directory below a root as one DataFrame row.

Rows are read as plain dicts (kdgat.results.read), by worker processes for large trees, and one
DataFrame is built from them at the end; lineage adds the ``stale`` column.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from pathlib import Path

import pandas as pd

from configs import LEVELS
from kdgat.results import lineage
from kdgat.results.columns import ResultsError, column_order
from kdgat.results.read import find_run_dirs, read_run

PARALLEL_MIN_RUNS = 2000  # below this, starting worker processes costs more than it saves


def load_runs(root: str | os.PathLike[str] = "runs", workers: int | None = None) -> pd.DataFrame:
    """Every run directory below ``root`` as one DataFrame row (see kdgat.results.read).

    Broken or unfinished runs are rows too, with the reason in ``problem``; use ``usable(df)``
    for the finished ones and ``problems(df)`` for the rest. ``stale`` says why the runs a run
    built on are no longer what it used (deleted, retrained after it), see kdgat.results.lineage.
    Large trees are read by ``workers`` processes (default: one per CPU from PARALLEL_MIN_RUNS
    runs on); 1 reads in this process.
    """
    frame = _load_table(root, workers)
    at = list(frame.columns).index("warning") + 1 if "warning" in frame.columns else len(frame.columns)
    frame.insert(at, "stale", lineage.stale_reasons(frame, read_run))  # in place: no copy of the table
    return frame


def usable(df: pd.DataFrame) -> pd.DataFrame:
    """Finished runs whose files could all be read."""
    return df[df["problem"].isna()]


def problems(df: pd.DataFrame) -> pd.DataFrame:
    """Runs left out of the results (``problem``) or with a partial result (``warning``)."""
    mask = df["problem"].notna() | df["warning"].notna()
    return df.loc[mask, ["run", "state", "problem", "warning"]]


def _read_chunk(args: tuple[list[str], str]) -> pd.DataFrame:
    """Worker: the rows of some run dirs as a DataFrame (built here, in parallel: its numeric
    columns travel back as arrays, cheaper to pickle than a value per cell)."""
    dirs, root = args
    rows = [read_run(d, root) for d in dirs]
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    names = list(columns)
    return pd.DataFrame.from_records([tuple(row.get(name) for name in names) for row in rows], columns=names)


def _default_workers(count: int) -> int:
    if count < PARALLEL_MIN_RUNS or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cpus, 8))


def _load_table(root: str | os.PathLike[str], workers: int | None) -> pd.DataFrame:
    root_path = Path(root)
    if not root_path.exists():
        raise ResultsError(
            f"runs root {root_path} does not exist. Pass the folder that train.py wrote runs to "
            f"(its --runs-root, 'runs' by default), e.g. python -m kdgat.results runs/"
        )
    if not root_path.is_dir():
        raise ResultsError(f"runs root {root_path} is a file, not a folder. Pass the runs folder, e.g. runs/")
    dirs = find_run_dirs(root)
    if not dirs:
        return pd.DataFrame(columns=column_order(["run", "path", *LEVELS, "state", "problem", "warning"]))
    workers = _default_workers(len(dirs)) if workers is None else max(1, workers)
    root_text = os.fspath(root)
    if workers == 1:
        rows = [read_run(d, root_text) for d in dirs]
        columns: dict[str, None] = {}
        for row in rows:
            columns.update(dict.fromkeys(row))
        return pd.DataFrame(rows, columns=column_order(columns))
    size = -(-len(dirs) // (workers * 4))
    chunks = [(dirs[i : i + size], root_text) for i in range(0, len(dirs), size)]
    try:
        context = multiprocessing.get_context("fork")
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            parts = list(pool.map(_read_chunk, chunks))
    except Exception:  # no worker processes here (daemonic parent, sandbox): read serially
        return _load_table(root, workers=1)
    frame = pd.concat(parts, ignore_index=True, sort=False) if len(parts) > 1 else parts[0]
    return frame[column_order(frame.columns)]
