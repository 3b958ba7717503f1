"""``--report DIR``: an offline HTML report of every run: DIR/index.html, DIR/runs/<id>.html (one
page per run) and DIR/figures/ (kdgat.results.figures, as PNG; --figures DIR writes PDFs too).

index.html holds a sortable, filterable table of every run (levels, seed, key knobs, metrics,
the flag-everything floor and the margin over it, at-floor and stale-lineage flags; runs left
out of the statistics with their reason), tables grouped over seeds with 95 % confidence
intervals, and the figures. Everything is inline (stylesheet, script, charts of the run pages):
no server, nothing fetched, it opens from the file system and can be copied off a cluster.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from configs import LEVELS
from kdgat.common.io import atomic_write_text
from kdgat.results.analyse import NOT_EXPERIMENT_KNOBS, group_runs
from kdgat.results.columns import SEED
from kdgat.results.figures import Figures, curve_choice, select_runs, varying_levels, write_figures
from kdgat.results.html import cell, esc, filter_box, float_cells, page, table
from kdgat.results.lineage import upstream_path
from kdgat.results.run_page import ALL_CURVES, PageLayout, knob_columns, numbers, page_name, run_page
from kdgat.results.table import usable

INDEX_METRICS = (
    ("test.f1", "F1"),
    ("test.precision", "precision"),
    ("test.recall", "recall"),
    ("test.auroc", "AUROC"),
    ("test.mcc", "MCC"),
    ("test.balanced_accuracy", "bal. acc."),
    ("test.recall_at_fpr_1pct", "recall@FPR 1%"),
    ("test.recall_at_fpr_0_1pct", "recall@FPR 0.1%"),
    ("test.precision_at_recall_95pct", "prec.@recall 95%"),
    ("test.ece", "ECE"),
    ("test.benign_fpr", "benign FPR"),
    ("test.flag_all.f1", "floor F1"),
    ("test.f1_margin", "margin"),
)
GROUP_METRICS = ("test.f1", "test.auroc", "test.mcc", "test.recall_at_fpr_1pct", "test.benign_fpr")
ALWAYS_KNOBS = ("training_config.epochs", "training_config.lr")
MAX_KNOBS = 8
REMOVERS = 16  # threads deleting the old pages of a report written again
PARALLEL_MIN_PAGES = 500  # below this, one process: forking costs more than it saves


@dataclass
class Report:
    index: Path
    pages: int
    figures: Figures


def varying_knobs(frame: pd.DataFrame) -> list[str]:
    """Experiment knobs (not the seed, where a run ran or its data paths) whose value differs."""
    ignored = (*NOT_EXPERIMENT_KNOBS, "upstream.")
    out = []
    for column in knob_columns(frame):
        if column.startswith(ignored):
            continue
        if frame[column].astype(object).nunique(dropna=False) > 1:
            out.append(column)
    return out


def _row_classes(row: Any) -> str:
    classes = []
    if isinstance(row.problem, str):
        classes.append("problem")
    if isinstance(row.at_floor, str):
        classes.append("atfloor")
    if isinstance(row.stale, str):
        classes.append("stale")
    return f' class="{" ".join(classes)}"' if classes else ""


def runs_table(frame: pd.DataFrame, pages: dict[str, str], levels: list[str], knobs: list[str]) -> str:
    """Every run, one row each: link, levels, seed, key knobs, metrics, floor, flags, state."""
    shown = frame.reindex(columns=["run", *levels, SEED, *knobs, "at_floor", "stale", "state", "problem"])
    metrics = numbers(frame, [m for m, _ in INDEX_METRICS]).tolist()
    headers = ["run", *levels, "seed", *knobs, *(label for _, label in INDEX_METRICS)]
    headers += ["at floor", "stale", "state"]
    rows = []
    for values, figures in zip(shown.itertuples(index=False, name=None), metrics, strict=True):
        run = str(values[0])
        floor, stale, state, problem = values[-4:]
        link = f'<td class="t"><a href="runs/{pages[run]}">{esc(run)}</a></td>'
        middle = "".join(cell(v) for v in values[1:-4]) + float_cells(figures, sortable=True)
        flags = _flag(floor) + _flag(stale)
        state = esc(str(state or "unreadable"))
        left_out = isinstance(problem, str)
        state_cell = (
            f'<td class="t" title="{esc(problem)}">{state}</td>'
            if left_out
            else f'<td class="t">{state}</td>'
        )
        row_cls = _row_classes(_Flags(problem, floor, stale))
        rows.append(f"<tr{row_cls}>{link}{middle}{flags}{state_cell}</tr>")
    text_columns = (0, *range(1, 1 + len(levels)), len(headers) - 3, len(headers) - 2, len(headers) - 1)
    return table(headers, rows, table_id="runs", text_columns=text_columns)


def _flag(reason: Any) -> str:
    """'yes' (the reason on hover) where a run is at the floor or stale."""
    if isinstance(reason, str):
        return f'<td class="t flag" title="{esc(reason)}">yes</td>'
    return '<td class="t"></td>'


@dataclass
class _Flags:
    problem: Any
    at_floor: Any
    stale: Any


def groups_section(frame: pd.DataFrame, levels: list[str]) -> str:
    """Mean ± std and the 95 % t interval over seeds, by every varying level and by each alone."""
    runs = usable(frame)
    metrics = [m for m in GROUP_METRICS if m in runs.columns]
    if runs.empty or not metrics:
        return ""
    by_sets = [levels] + ([[level] for level in levels] if len(levels) > 1 else [])
    out = ["<h2>Grouped over seeds (mean ± std, 95 % t confidence interval)</h2>"]
    for k, by in enumerate(by_sets or [["modality"]]):
        grouped = group_runs(runs, by, metrics)
        headers = [*by, "n", *(["seeds"] if "seeds" in grouped else [])]
        for metric in metrics:
            headers += [metric, f"{metric} 95% CI"]
        rows = []
        for _, g in grouped.iterrows():
            cells = "".join(cell(g[c]) for c in by) + cell(int(g["n"]))
            if "seeds" in grouped:
                cells += cell(g["seeds"])
            for metric in metrics:
                mean, std = g[f"{metric}.mean"], g[f"{metric}.std"]
                low, high = g[f"{metric}.ci_low"], g[f"{metric}.ci_high"]
                shown = "" if pd.isna(mean) else f"{mean:.4f}" + ("" if pd.isna(std) else f" ± {std:.4f}")
                interval = "" if pd.isna(low) else f"[{low:.4f}, {high:.4f}]"
                sort = "" if pd.isna(mean) else f' data-v="{float(mean)!r}"'
                cells += f"<td{sort}>{shown}</td><td>{interval}</td>"
            rows.append(f"<tr>{cells}</tr>")
        out.append(f"<h3>by {', '.join(by)}</h3>")
        out.append(table(headers, rows, table_id=f"groups{k}", text_columns=tuple(range(len(by)))))
    return "".join(out)


def figures_section(figures: Figures) -> str:
    parts = ["<h2>Figures</h2>"]
    for name, paths in figures.written.items():
        png = next((p for p in paths if p.suffix == ".png"), None)
        pdf = next((p for p in paths if p.suffix == ".pdf"), None)
        if png is None:
            continue
        link = f' (<a href="figures/{pdf.name}">PDF</a>)' if pdf else ""
        parts.append(
            f'<figure><img src="figures/{png.name}" alt="{esc(name)}"><figcaption>{esc(name)}{link}'
            f"</figcaption></figure>"
        )
    if figures.curve_runs:
        parts.append(f"<p class='note'>curves drawn for: {esc(', '.join(figures.curve_runs))}</p>")
    parts += [f"<p class='note'>{esc(n)}</p>" for n in figures.notes]
    return "".join(parts)


def index_body(frame: pd.DataFrame, root: str, pages: dict[str, str], varying: list[str]) -> str:
    """index.html's body up to its figures; varying: the knobs whose value differs between the
    usable runs."""
    levels = varying_levels(frame) or ["dataset", "model_architecture"]
    knobs = [k for k in ALWAYS_KNOBS if k in frame] + [k for k in varying if k not in ALWAYS_KNOBS]
    knobs = knobs[:MAX_KNOBS]
    n_usable = int(frame["problem"].isna().sum())
    notes = [f"{len(frame)} runs under {esc(root)}: {n_usable} usable"]
    if len(frame) > n_usable:
        notes.append(f"{len(frame) - n_usable} left out of the statistics (state grey; hover for why)")
    for column, what in (
        ("at_floor", "within 0.01 F1 of flagging every window"),
        ("stale", "with stale lineage"),
    ):
        count = int(frame[column].notna().sum()) if column in frame else 0
        if count:
            notes.append(f"{count} {what}")
    body = [
        "<h1>kdgat results</h1>",
        f"<p>{'; '.join(notes)}.</p>",
        '<nav><a href="#runs-section">runs</a><a href="#groups">grouped</a>'
        '<a href="#figures">figures</a></nav>',
        '<h2 id="runs-section">Runs</h2>',
        filter_box(
            "runs",
            len(frame),
            (("atfloor", "at floor only"), ("stale", "stale only"), ("problem", "left out only")),
        ),
        runs_table(frame, pages, levels, knobs),
        '<p class="note">floor F1: what flagging every window scores on the same test labels; '
        "margin: F1 - floor; at floor: within 0.01 F1 of it. Test figures at the run's validation "
        "threshold.</p>",
        f'<div id="groups">{groups_section(frame, levels)}</div>',
    ]
    return "".join(body)


# Worker state for writing pages in forked processes (set before the pool starts).
_JOB: dict[str, Any] = {}


def _write_pages(indices: Sequence[int]) -> int:
    """Pages of the rows at indices, written into the fresh folder (plain writes: the folder is
    swapped in whole once every page is there)."""
    job = _JOB
    for i in indices:
        row = job["rows"][i]
        run = str(row["run"])
        links = (job["pages"], job["run_of"], job["used_by"].get(run, []))
        text = run_page(row, i, job["layout"], links, job["curves"](run), job["dir"])
        with open(os.path.join(job["fresh"], job["pages"][run]), "wb") as handle:
            handle.write(text.encode())
    return len(indices)


def _draw_figures() -> Figures:
    """The report's figures (a task of the page-writing pool: drawn while pages are written)."""
    job = _JOB
    # PNG only: the page shows PNGs, and PDF's font embedding is most of the drawing time
    # (--figures DIR writes both).
    return write_figures(job["runs"], job["figures_dir"], job["patterns"], ("png",))


def write_report(
    frame: pd.DataFrame, out_dir: Path, root: str, patterns: Sequence[str] = (), workers: int | None = None
) -> Report:
    """The report of every run of frame (kdgat.results.load_runs' table, problems included)."""
    out_dir = Path(out_dir)
    frame = select_runs(frame, patterns).reset_index(drop=True)
    pages_dir = out_dir / "runs"
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = usable(frame)
    pages = {str(run): page_name(str(run)) for run in frame["run"]}
    # The runs whose pages show ROC and PR: all in a small report, else those the figures draw.
    if len(runs) <= ALL_CURVES or patterns:
        chosen = set(map(str, runs["run"]))
    else:
        chosen = set(map(str, curve_choice(runs, patterns)[0]["run"]))
    paths = zip(frame["run"], frame["path"], strict=True)
    run_of = {os.path.normpath(str(path)): str(run) for run, path in paths}
    used_by: dict[str, list[str]] = {}
    for column in (c for c in frame.columns if str(c).startswith("upstream.")):
        for run, path, recorded in zip(frame["run"], frame["path"], frame[column], strict=True):
            upstream = run_of.get(upstream_path(str(path), recorded)) if isinstance(recorded, str) else None
            if upstream is not None:
                used_by.setdefault(upstream, []).append(str(run))
    varying = varying_knobs(runs) if not runs.empty else []
    layout = PageLayout.of(frame, varying)
    small = ["run", "path", *LEVELS, "state", SEED, "params", "problem", "warning", "at_floor", "stale"]
    small += [f"upstream.{f}" for f in layout.upstream_fields] + layout.varying_knobs
    rows = frame.reindex(columns=list(dict.fromkeys(small))).astype(object).where(lambda f: f.notna(), None)
    fresh = _fresh_folder(pages_dir)
    _JOB.update(
        rows=rows.to_dict("records"),
        run_of=run_of,
        layout=layout,
        pages=pages,
        used_by=used_by,
        curves=chosen.__contains__,
        dir=pages_dir,
        fresh=fresh,
        runs=runs,
        figures_dir=out_dir / "figures",
        patterns=patterns,
    )
    try:
        figures, body = _pages_figures_and_index(frame, root, pages, varying, workers)
    except BaseException:
        _remove(fresh)  # the old pages stay as they were
        raise
    finally:
        _JOB.clear()
    _swap_in(fresh, pages_dir)
    index = out_dir / "index.html"
    atomic_write_text(
        index, page("kdgat results", body + f'<div id="figures">{figures_section(figures)}</div>')
    )
    return Report(index, len(pages), figures)


def _fresh_folder(pages_dir: Path) -> Path:
    """An empty folder beside pages_dir to write the pages into. Replacing 10,000 existing pages
    one rename at a time costs ext4 about a millisecond each (it flushes a file renamed over
    another); one folder swapped in costs nothing, and drops the pages of runs no longer here."""
    fresh = pages_dir.with_name(f".{pages_dir.name}-{os.getpid()}.new")
    shutil.rmtree(fresh, ignore_errors=True)  # left by a report of this process id that was killed
    fresh.mkdir()
    return fresh


def _swap_in(fresh: Path, pages_dir: Path) -> None:
    """fresh becomes pages_dir; the old pages are removed."""
    old = fresh.with_suffix(".old")
    _remove(old)
    if pages_dir.exists():
        os.rename(pages_dir, old)
    os.rename(fresh, pages_dir)
    _remove(old)


def _remove(folder: Path) -> None:
    """Delete folder, its files many at a time: freeing a file's blocks can wait on the disk
    (about 2.5 ms a page on a virtual disk mounted with discard), and the waits overlap."""
    try:
        files = [entry.path for entry in os.scandir(folder) if entry.is_file(follow_symlinks=False)]
    except FileNotFoundError:
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=REMOVERS) as pool:
        list(pool.map(_unlink, files))
    shutil.rmtree(folder, ignore_errors=True)  # what is left: a folder someone put there


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _pages_figures_and_index(
    frame: pd.DataFrame, root: str, pages: dict[str, str], varying: list[str], workers: int | None
) -> tuple[Figures, str]:
    """Every run page and the figures (by worker processes for a large report: the figures by one
    while the others write pages, then it writes pages too), and index.html's body but its figures
    (in this process meanwhile)."""
    count = len(frame)
    draw = not _JOB["runs"].empty
    if workers is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        workers = min(cpus, 8) if count >= PARALLEL_MIN_PAGES else 1
    if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        size = max(1, -(-count // (workers * 8)))
        chunks = [range(i, min(i + size, count)) for i in range(0, count, size)]
        try:
            context = multiprocessing.get_context("fork")
            with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                drawn = pool.submit(_draw_figures) if draw else None
                written = [pool.submit(_write_pages, chunk) for chunk in chunks]
                body = index_body(frame, root, pages, varying)
                figures = drawn.result() if drawn is not None else Figures()
                for future in written:
                    future.result()
            return figures, body
        except (OSError, concurrent.futures.process.BrokenProcessPool):  # no worker processes here
            pass
    figures = _draw_figures() if draw else Figures()
    _write_pages(range(count))
    return figures, index_body(frame, root, pages, varying)
