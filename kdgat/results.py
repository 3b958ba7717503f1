"""Results: every run under a runs root as one pandas table, plus paper-ready views of it.

    python -m kdgat.results runs/ --format markdown
    python -m kdgat.results runs/ --where dataset=hcrlsa --where model_size=student
    python -m kdgat.results runs/ --group-by model_size,distillation       # mean +- std over seeds
    python -m kdgat.results runs/ --best val.f1 --group-by dataset         # best run per group
    python -m kdgat.results runs/ --deltas                                 # teacher vs student
    python -m kdgat.results runs/ --transfer f1                            # trained-on x evaluated-on

In a notebook: ``df = kdgat.results.load_runs("runs")`` gives one row per run directory (all of
them, including unfinished and broken ones: their ``problem`` column says why they are not
usable); ``usable(df)`` keeps the finished, readable runs and ``problems(df)`` lists the rest.

Columns: ``run`` (path below the root), the seven hierarchy levels, ``state``, flattened
metrics (``test.f1``, ``val.auroc``, ``test.attack_types.dos.recall``,
``test_by_split.<name>.f1``, ``eval.<dataset>.f1`` from eval_<dataset>.json), ``params``,
``timings.train_s`` and the other status.json fields, and every config knob
(``training_config.lr``, ``model_size_config.hidden_dim``, ...).

Reading is fast: only status.json, config.yaml, metrics.json and eval_*.json are opened, JSON with
the C parser, config.yaml with a small parser for the flat layout that ``configs.to_yaml`` writes
(anything else falls back to PyYAML's C loader), and rows are collected as plain dicts before one
DataFrame is built.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import difflib
import fnmatch
import json
import math
import multiprocessing
import os
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from configs import LEVEL_CHOICES, LEVELS
from kdgat import lineage
from kdgat.errors import UserError
from kdgat.runs import config_digest

RUN_PATTERN = re.compile(r"^run_(\d{3,})$")
EVAL_PATTERN = re.compile(r"^eval_(.+)\.json$")
METRIC_NAMES = ("f1", "precision", "recall", "auroc", "accuracy", "benign_fpr")
DEFAULT_METRICS = ("test.f1", "test.precision", "test.recall", "test.auroc")
# Short names accepted wherever a column is named (--where, --group-by, --columns, ...).
ALIASES = {
    "arch": "model_architecture",
    "architecture": "model_architecture",
    "size": "model_size",
    "mode": "training_mode",
    "seed": "training_config.seed",
    "lr": "training_config.lr",
    "epochs": "training_config.epochs",
    "stage": "launcher.stage",
}
HPARAMS_SUFFIX = ".kdgat_hparams"
STATE_HINTS = {
    "queued": "; it has not started yet (or never will: its job was cancelled, see python launch.py status)",
    "running": "; still training, or its job died without a word (check host and pid in status.json)",
    "preempted": "; continue it with python train.py --resume {run_dir}",
}
PARALLEL_MIN_RUNS = 2000  # below this, starting worker processes costs more than it saves
# metrics.json keys that are not one-number-per-run results.
SKIPPED_METRICS_KEYS = ("history",)
SKIPPED_DATA_KEYS = ("train_files",)

try:
    _YAML_LOADER: Any = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    _YAML_LOADER = yaml.SafeLoader


class ResultsError(UserError):
    """A results query the user can fix; the message says what, why and how."""


# ---------------------------------------------------------------------------------------------
# Reading one run directory
# ---------------------------------------------------------------------------------------------


class _NotSimple(Exception):
    """config.yaml uses YAML beyond the flat layout; parse it with PyYAML instead."""


_KEY_LINE = re.compile(r"^( *)([A-Za-z_][A-Za-z0-9_]*):(?: (.*))?$")
_EMPTY = object()  # a "key:" line: the value is on the following lines (or null)
_LINES: dict[str, tuple[int, str | None, Any]] = {}  # line -> (indent, key or None for "- item", value)
_LINES_LIMIT = 200_000


def _scalar(text: str) -> Any:
    """One YAML scalar, resolved by PyYAML itself (lines are memoised, so this runs rarely)."""
    try:
        value = yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as err:
        raise _NotSimple from err
    if isinstance(value, (dict, list)) and value:
        raise _NotSimple
    return value


def _line(line: str) -> tuple[int, str | None, Any]:
    stripped = line.lstrip(" ")
    indent = len(line) - len(stripped)
    if stripped.startswith("- ") or stripped == "-":
        return indent, None, _scalar(stripped[2:])
    match = _KEY_LINE.match(line)
    if match is None:
        raise _NotSimple
    value = match.group(3)
    return indent, match.group(2), _EMPTY if value is None or not value.strip() else _scalar(value)


def _parse_flat_yaml(text: str) -> dict[str, Any]:
    """Block mappings (any depth, 2-space indent) of scalars and scalar lists, else _NotSimple."""
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(0, root)]
    pending: tuple[dict[str, Any], str, int] | None = None  # "key:" whose value comes next
    lines = _LINES
    if len(lines) > _LINES_LIMIT:
        lines.clear()
    for line in text.split("\n"):
        info = lines.get(line)
        if info is None:
            if not line.strip():
                continue
            info = lines[line] = _line(line)
        indent, key, value = info
        if type(value) in (list, dict):
            value = type(value)()
        if key is None:  # "- item"
            if pending is None or indent != pending[2]:
                raise _NotSimple
            mapping, open_key, _ = pending
            if mapping[open_key] is None:
                mapping[open_key] = []
            elif not isinstance(mapping[open_key], list):
                raise _NotSimple
            mapping[open_key].append(value)
            continue
        if pending is not None and indent > pending[2]:
            mapping, open_key, parent_indent = pending
            if indent != parent_indent + 2 or mapping[open_key] is not None:
                raise _NotSimple
            mapping[open_key] = {}
            stack.append((indent, mapping[open_key]))
        pending = None
        while stack[-1][0] > indent:
            stack.pop()
            if not stack:
                raise _NotSimple
        if stack[-1][0] != indent:
            raise _NotSimple
        current = stack[-1][1]
        if key in current:
            raise _NotSimple
        if value is _EMPTY:
            current[key] = None
            pending = (current, key, indent)
        else:
            current[key] = value
    return root


def parse_config_yaml(text: str) -> Any:
    """Parse a run's config.yaml; same result as ``yaml.safe_load`` but much faster on our layout."""
    try:
        return _parse_flat_yaml(text)
    except _NotSimple:
        return yaml.load(text, Loader=_YAML_LOADER)


def _flatten(prefix: str, obj: dict[str, Any], out: dict[str, Any], skip: Sequence[str] = ()) -> None:
    """Nested mappings -> dotted keys; lists of scalars -> "a,b,c" (hashable, groupable)."""
    for key, value in obj.items():
        kind = type(value)
        if kind is dict:
            if key not in skip:
                _flatten(prefix + key + ".", value, out)
        elif kind is list:
            if key in skip:
                continue
            if all(v is None or type(v) in (str, int, float, bool) for v in value):
                out[prefix + key] = ",".join(str(v) for v in value)
            else:
                out[prefix + key] = json.dumps(value)
        elif key not in skip:
            out[prefix + key] = value


def _read_json(path: str) -> Any:
    with open(path, "rb") as handle:
        return json.loads(handle.read())


_HISTORY = b'\n  "history": ['


def _read_metrics(path: str) -> Any:
    """metrics.json without parsing its per-epoch history (often most of the file).

    The history list is cut out before parsing when the file has the layout atomic_write_json
    writes (indent 2, history a list of flat dicts); the result is checked, and anything
    unexpected is parsed in full instead.
    """
    with open(path, "rb") as handle:
        data = handle.read()
    start = data.find(_HISTORY)
    if start >= 0:
        opened = start + len(_HISTORY)
        end = data.find(b"]", opened)
        if end > 0 and b"[" not in data[opened:end]:
            try:
                parsed = json.loads(data[:start] + b'\n  "history": []' + data[end + 1 :])
            except ValueError:
                parsed = None
            if type(parsed) is dict and parsed.get("history") == []:
                return parsed
    return json.loads(data)


def _describe(err: Exception) -> str:
    if isinstance(err, json.JSONDecodeError):
        return f"not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})"
    if isinstance(err, yaml.YAMLError):
        return "not valid YAML (" + " ".join(str(err).split()) + ")"
    if isinstance(err, UnicodeDecodeError):
        return "not UTF-8 text"
    return f"unreadable ({type(err).__name__}: {err})"


def read_run(run_dir: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """One run directory as a flat row. Never raises for a broken run: ``problem`` says why.

    ``problem`` is None for a finished run with readable status.json, config.yaml and
    metrics.json; otherwise it explains what is missing or broken. Problems that leave the run
    usable (a corrupt eval_*.json) go to ``warning``.
    """
    run_dir = os.fspath(run_dir).rstrip(os.sep) or os.sep
    parts = run_dir.split(os.sep)
    if root is None:
        relative = run_dir
    else:
        prefix = os.fspath(root).rstrip(os.sep) + os.sep
        relative = run_dir[len(prefix) :] if run_dir.startswith(prefix) else os.path.relpath(run_dir, root)
        if relative == ".":  # root is the run directory itself
            relative = run_dir
    row: dict[str, Any] = {"run": relative, "path": run_dir}
    level_values = parts[-1 - len(LEVELS) : -1] if len(parts) > len(LEVELS) else ()
    path_levels_ok = len(level_values) == len(LEVELS) and all(
        value in LEVEL_CHOICES[level] for level, value in zip(LEVELS, level_values, strict=True)
    )
    for level, value in zip(LEVELS, level_values if path_levels_ok else [None] * len(LEVELS), strict=True):
        row[level] = value
    match = RUN_PATTERN.match(parts[-1])
    row["run_number"] = int(match.group(1)) if match else None
    row["state"] = None
    problems: list[str] = []
    warnings: list[str] = []
    try:
        files = set(os.listdir(run_dir))
    except OSError as err:
        row["problem"] = f"run directory unreadable ({err.strerror})"
        row["warning"] = None
        return row

    # status.json: the run's state.
    if "status.json" in files:
        try:
            status = _read_json(run_dir + os.sep + "status.json")
            if not isinstance(status, dict):
                raise ValueError("top level is not a JSON object")
        except (OSError, ValueError) as err:
            problems.append(f"status.json {_describe(err)}")
        else:
            row["state"] = status.get("state")
            _flatten("", {k: v for k, v in status.items() if k != "state"}, row)
            if row["state"] != "finished":
                reason = f"state is {row['state']!r}, not 'finished'"
                if status.get("error"):
                    reason += f" (error: {status['error']})"
                reason += STATE_HINTS.get(str(row["state"]), "").format(run_dir=run_dir)
                problems.append(reason)
    else:
        problems.append("status.json missing (the run never started, or was copied incompletely)")

    # config.yaml: every knob.
    if "config.yaml" in files:
        try:
            with open(run_dir + os.sep + "config.yaml", "rb") as handle:
                raw = handle.read()
            row["config_digest"] = config_digest(raw)  # what a dependant's lineage recorded
            config = parse_config_yaml(raw.decode("utf-8"))
            if not isinstance(config, dict):
                raise ValueError("top level is not a mapping")
        except (OSError, ValueError, yaml.YAMLError) as err:
            problems.append(f"config.yaml {_describe(err)}")
        else:
            for key, value in config.items():
                if key in LEVELS:
                    if not path_levels_ok:
                        row[key] = value
                    elif row[key] != value:
                        warnings.append(f"config.yaml says {key}={value} but the folder says {row[key]}")
                elif isinstance(value, dict):
                    _flatten(key + ".", value, row)
                else:
                    _flatten("config.", {key: value}, row)
    else:
        problems.append("config.yaml missing")

    # metrics.json: final results.
    if "metrics.json" in files:
        try:
            metrics = _read_metrics(run_dir + os.sep + "metrics.json")
            if not isinstance(metrics, dict):
                raise ValueError("top level is not a JSON object")
        except (OSError, ValueError) as err:
            problems.append(f"metrics.json {_describe(err)}")
        else:
            data = metrics.get("data")
            _flatten("", metrics, row, skip=(*SKIPPED_METRICS_KEYS, "data"))
            if isinstance(data, dict):
                _flatten("data.", data, row, skip=SKIPPED_DATA_KEYS)
            if not isinstance(metrics.get("test"), dict):
                problems.append("metrics.json has no 'test' section")
    elif row["state"] == "finished":
        problems.append("metrics.json missing although status.json says finished")
    elif not problems:
        problems.append("metrics.json missing")

    # eval_<dataset>.json: cross-dataset transfer results.
    for name in sorted(files):
        if (eval_match := EVAL_PATTERN.match(name)) is None:
            continue
        try:
            result = _read_json(run_dir + os.sep + name)
            if not isinstance(result, dict):
                raise ValueError("top level is not a JSON object")
        except (OSError, ValueError) as err:
            warnings.append(f"{name} {_describe(err)}; that transfer result is left out")
        else:
            _flatten(f"eval.{eval_match.group(1)}.", result, row)

    if not path_levels_ok and "problem" not in row and not problems:
        if any(row.get(level) is None for level in LEVELS):
            warnings.append("folder is not runs/<7 levels>/run_NNN and config.yaml does not name the levels")
    row["problem"] = "; ".join(problems) if problems else None
    row["warning"] = "; ".join(warnings) if warnings else None
    return row


# ---------------------------------------------------------------------------------------------
# The table of all runs
# ---------------------------------------------------------------------------------------------


def find_run_dirs(root: str | os.PathLike[str]) -> list[str]:
    """Every run_NNN folder below root (or root itself if it is one), sorted by path."""
    root = os.fspath(root)
    if RUN_PATTERN.match(os.path.basename(os.path.normpath(root))):
        return [root]
    found: list[str] = []
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if not entry.is_dir(follow_symlinks=True) or entry.name.startswith("."):
                continue
            if RUN_PATTERN.match(entry.name):
                found.append(entry.path)
            else:
                pending.append(entry.path)
    found.sort()
    return found


def _column_order(columns: Iterable[str]) -> list[str]:
    first = ["run", *LEVELS, "run_number", "training_config.seed", "state", "problem", "warning", "stale"]
    first += [*DEFAULT_METRICS, "val.f1", "params"]
    present = list(dict.fromkeys(columns))
    head = [c for c in first if c in present]
    rest = [c for c in present if c not in head]

    def rank(name: str) -> int:
        for i, prefix in enumerate(("test.", "val.", "test_by_split.", "eval.", "timings.", "data.")):
            if name.startswith(prefix):
                return i
        return 7 if "_config." in name or name.startswith("config.") else 6

    rest.sort(key=rank)  # stable: within a group keeps first-seen order
    return head + rest


def _read_chunk(args: tuple[list[str], str]) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Worker: rows of some run dirs as (columns, value tuples): cheaper to pickle than dicts."""
    dirs, root = args
    rows = [read_run(d, root) for d in dirs]
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    names = list(columns)
    return names, [tuple(row.get(name) for name in names) for row in rows]


def _default_workers(count: int) -> int:
    if count < PARALLEL_MIN_RUNS or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cpus, 8))


def load_runs(root: str | os.PathLike[str] = "runs", workers: int | None = None) -> pd.DataFrame:
    """Every run directory below ``root`` as one DataFrame row (see the module docstring).

    Broken or unfinished runs are rows too, with the reason in ``problem``; use ``usable(df)``
    for the finished ones and ``problems(df)`` for the rest. ``stale`` says why the runs a run
    built on are no longer what it used (deleted, retrained after it), see kdgat.lineage. Large
    trees are read by ``workers`` processes (default: one per CPU from PARALLEL_MIN_RUNS runs on);
    1 reads in this process.
    """
    frame = _load_table(root, workers)
    at = list(frame.columns).index("warning") + 1 if "warning" in frame.columns else len(frame.columns)
    frame.insert(at, "stale", lineage.stale_reasons(frame, read_run))  # in place: no copy of the table
    return frame


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
        return pd.DataFrame(columns=_column_order(["run", "path", *LEVELS, "state", "problem", "warning"]))
    workers = _default_workers(len(dirs)) if workers is None else max(1, workers)
    root_text = os.fspath(root)
    if workers == 1:
        rows = [read_run(d, root_text) for d in dirs]
        columns: dict[str, None] = {}
        for row in rows:
            columns.update(dict.fromkeys(row))
        return pd.DataFrame(rows, columns=_column_order(columns))
    size = -(-len(dirs) // (workers * 4))
    chunks = [(dirs[i : i + size], root_text) for i in range(0, len(dirs), size)]
    try:
        context = multiprocessing.get_context("fork")
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            outputs = list(pool.map(_read_chunk, chunks))
    except Exception:  # no worker processes here (daemonic parent, sandbox): read serially
        return _load_table(root, workers=1)
    parts = [pd.DataFrame.from_records(values, columns=names) for names, values in outputs]
    frame = pd.concat(parts, ignore_index=True, sort=False) if len(parts) > 1 else parts[0]
    return frame[_column_order(frame.columns)]


def usable(df: pd.DataFrame) -> pd.DataFrame:
    """Finished runs whose files could all be read."""
    return df[df["problem"].isna()]


def problems(df: pd.DataFrame) -> pd.DataFrame:
    """Runs left out of the results (``problem``) or with a partial result (``warning``)."""
    mask = df["problem"].notna() | df["warning"].notna()
    return df.loc[mask, ["run", "state", "problem", "warning"]]


def resolve_column(df: pd.DataFrame, name: str, option: str) -> str:
    """Map a user-given column name (or alias) to a column, or say which names exist."""
    name = name.strip()
    if name in df.columns:
        return name
    if ALIASES.get(name) in df.columns:
        return ALIASES[name]
    near = difflib.get_close_matches(name, [str(c) for c in df.columns], n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(near)}?" if near else ""
    raise ResultsError(
        f"{option}: unknown column {name!r}.{hint} Columns are hierarchy levels "
        f"({', '.join(LEVELS)}), state, metrics like test.f1 or val.auroc, and config knobs like "
        f"training_config.lr; list them all with --list-columns."
    )


def _split_list(values: Sequence[str] | None) -> list[str]:
    return [part.strip() for value in values or () for part in value.split(",") if part.strip()]


# ---------------------------------------------------------------------------------------------
# Filters, grouping, best runs, teacher-vs-student deltas, transfer matrix
# ---------------------------------------------------------------------------------------------

_WHERE = re.compile(r"^\s*([^=!<>\s]+)\s*(==|=|!=|>=|<=|>|<)\s*(.*?)\s*$")


def _coerce(series: pd.Series, text: str, expression: str) -> Any:
    if text.lower() in ("none", "null", "nan", ""):
        return None
    present = series.dropna()
    if pd.api.types.is_bool_dtype(series.dtype) or (
        len(present) and all(isinstance(v, bool) for v in present.astype(object))
    ):
        if text.lower() in ("true", "yes", "1"):
            return True
        if text.lower() in ("false", "no", "0"):
            return False
        raise ResultsError(
            f"--where {expression}: {series.name} is true/false; compare it with true or false."
        )
    if pd.api.types.is_numeric_dtype(series.dtype):
        try:
            return float(text)
        except ValueError:
            raise ResultsError(
                f"--where {expression}: {series.name} holds numbers, and {text!r} is not a number."
            ) from None
    return text


def apply_where(df: pd.DataFrame, expressions: Sequence[str]) -> pd.DataFrame:
    """Keep rows matching every ``column=value`` expression.

    Operators: = (or ==), !=, >, >=, <, <=. ``=`` and ``!=`` take comma-separated alternatives
    (``model_size=student,teacher``); ``none`` matches a missing value.
    """
    for expression in expressions:
        match = _WHERE.match(expression)
        if match is None:
            raise ResultsError(
                f"--where {expression!r}: expected COLUMN=VALUE (or !=, >, >=, <, <=), "
                f"e.g. --where dataset=hcrlsa --where test.f1>=0.9"
            )
        column = resolve_column(df, match.group(1), "--where")
        op, text = match.group(2), match.group(3)
        series = df[column]
        if op in ("=", "==", "!="):
            values = [_coerce(series, part.strip(), expression) for part in text.split(",")]
            wanted = [v for v in values if v is not None]
            mask = series.isin(wanted) if wanted else pd.Series(False, index=df.index)
            if any(v is None for v in values):
                mask = mask | series.isna()
            mask = mask.fillna(False).astype(bool)
            df = df[~mask] if op == "!=" else df[mask]
        else:
            value = _coerce(series, text, expression)
            if value is None or isinstance(value, (bool, str)):
                raise ResultsError(f"--where {expression}: {op} needs a number, and {column} holds text.")
            compare = {">": series.gt, ">=": series.ge, "<": series.lt, "<=": series.le}[op]
            df = df[compare(value).fillna(False).astype(bool)]
    return df


def _numeric(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    return df[list(columns)].apply(pd.to_numeric, errors="coerce").astype("float64")


def group_runs(df: pd.DataFrame, by: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """One row per group: ``n`` runs, distinct ``seeds``, and ``<metric>.mean``/``<metric>.std``."""
    values = _numeric(df, metrics)
    keys = df[list(by)].astype(object).where(df[list(by)].notna(), None)
    table = pd.concat([keys, values], axis=1)
    grouped = table.groupby(list(by), dropna=False, sort=True)
    out = grouped.size().rename("n").to_frame()
    if "training_config.seed" in df.columns and "training_config.seed" not in by:
        seeds = df["training_config.seed"].astype(object)
        out["seeds"] = (
            pd.concat([keys, seeds], axis=1)
            .groupby(list(by), dropna=False, sort=True)["training_config.seed"]
            .nunique()
        )
    for metric in metrics:
        out[f"{metric}.mean"] = grouped[metric].mean()
        out[f"{metric}.std"] = grouped[metric].std(ddof=1)
    return out.reset_index()


NOT_EXPERIMENT_KNOBS = (
    "training_config.seed",
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
        if (c in LEVELS or "_config." in str(c))
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
    return {c: sorted({_cell(v, 6) for v in df[c].astype(object)})[:6] for c in mixed}


def _note_mixed(df: pd.DataFrame, by: Sequence[str], what: str) -> None:
    mixed = mixed_within(df, by)
    if mixed:
        listing = "; ".join(f"{c} ({', '.join(v)})" for c, v in list(mixed.items())[:6])
        print(
            f"note: {what} mix runs that differ in {listing}. Add those columns to --group-by, or "
            f"pick one value with --where, to compare like with like.",
            file=sys.stderr,
        )


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


def transfer_matrix(df: pd.DataFrame, metric: str = "f1") -> pd.DataFrame:
    """Mean ``metric`` with rows = trained-on dataset, columns = evaluated-on dataset.

    Off-diagonal cells come from eval_<dataset>.json (columns ``eval.<dataset>.<metric>``); the
    diagonal is the run's own test split (``test.<metric>``) unless an eval file covers it.
    """
    pattern = re.compile(rf"^eval\.(.+)\.{re.escape(metric)}$")
    evaluated = {m.group(1): c for c in df.columns if (m := pattern.match(str(c)))}
    if not evaluated:
        raise ResultsError(
            f"--transfer: no eval_<dataset>.json results with a {metric!r} value among the selected "
            f"runs. Cross-dataset results are written next to a run as eval_<dataset>.json "
            f"(kdgat.evaluate); until then there is nothing to put in the matrix."
        )
    trained_on = sorted(df["dataset"].dropna().unique())
    columns = sorted(set(evaluated) | set(trained_on))
    matrix = pd.DataFrame(index=pd.Index(trained_on, name="trained_on"), columns=columns, dtype="float64")
    for dataset in trained_on:
        rows = df[df["dataset"] == dataset]
        for target in columns:
            value = math.nan
            if target in evaluated:
                value = pd.to_numeric(rows[evaluated[target]], errors="coerce").mean()
            if math.isnan(value) and target == dataset and f"test.{metric}" in df.columns:
                value = pd.to_numeric(rows[f"test.{metric}"], errors="coerce").mean()
            matrix.loc[dataset, target] = value
    matrix.columns.name = "evaluated_on"
    return matrix


# ---------------------------------------------------------------------------------------------
# TensorBoard HParams
# ---------------------------------------------------------------------------------------------


def hparams_of(row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
    """Split a run row into (hyper-parameters, final metrics) for the HParams dashboard."""
    hparams: dict[str, Any] = {}
    for key, value in row.items():
        if key in LEVELS or "_config." in key or key.startswith("config."):
            if key.startswith("osc_config.") or key.startswith("config.runs_root"):
                continue
            if value is None or (isinstance(value, float) and math.isnan(value)):
                value = "none"
            hparams[key] = value if isinstance(value, (bool, int, float, str)) else str(value)
    metrics: dict[str, float] = {}
    for key, value in row.items():
        leaf = key.rsplit(".", 1)[-1]
        top = key.split(".", 1)[0]
        wanted = (top in ("test", "val", "eval") and leaf in METRIC_NAMES) or key in ("params", "best_epoch")
        if wanted and isinstance(value, (int, float)) and not isinstance(value, bool):
            metrics[f"final/{key}"] = float(value)
    return hparams, metrics


def write_hparams(run_dir: str | os.PathLike[str]) -> Path:
    """Write a TensorBoard HParams entry (config knobs + final metrics) into a finished run dir.

    The entry goes to its own events file (``*.kdgat_hparams``) in the run directory, so
    TensorBoard shows it as part of the run; calling this again replaces it. Metrics are logged as
    scalars ``final/test.f1``, ``final/val.auroc``, ... Returns the events file.
    """
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams as hparams_summary

    run_dir = Path(run_dir)
    row = read_run(run_dir)
    if row["problem"] is not None:
        raise ResultsError(f"cannot write hparams for {run_dir}: {row['problem']}")
    hparams, metrics = hparams_of(row)
    for old in run_dir.glob(f"events.out.tfevents.*{HPARAMS_SUFFIX}"):
        old.unlink()
    writer = SummaryWriter(log_dir=str(run_dir), filename_suffix=HPARAMS_SUFFIX)
    try:
        file_writer = writer._get_file_writer()
        for summary in hparams_summary(hparams, metrics):
            file_writer.add_summary(summary)
        step = int(row.get("epochs_run") or 0)
        for tag, value in metrics.items():
            writer.add_scalar(tag, value, global_step=step)
        path = Path(file_writer.get_logdir()) / Path(file_writer.event_writer._file_name).name
    finally:
        writer.close()
    return path


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def _cell(value: Any, digits: int) -> str:
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer() and abs(value) >= 1000:
            return str(int(value))
        return f"{value:.{digits}f}"
    return str(value)


def _display(frame: pd.DataFrame, digits: int, combine_std: bool) -> pd.DataFrame:
    """Strings for every cell; ``X.mean`` + ``X.std`` become one ``X`` column "mean ± std"."""
    out: dict[str, list[str]] = {}
    columns = list(frame.columns)
    for column in columns:
        name = str(column)
        if combine_std and name.endswith(".std") and f"{name[:-4]}.mean" in frame.columns:
            continue
        if combine_std and name.endswith(".mean") and f"{name[:-5]}.std" in frame.columns:
            means, stds = frame[column], frame[f"{name[:-5]}.std"]
            out[name[:-5]] = [
                _cell(m, digits) + (f" ± {_cell(s, digits)}" if _cell(s, digits) else "")
                for m, s in zip(means.astype(object), stds.astype(object), strict=True)
            ]
            continue
        series = frame[column].astype(object)
        whole = pd.api.types.is_float_dtype(frame[column].dtype) and name.rsplit(".", 1)[-1] not in (
            *METRIC_NAMES,
            "mean",
            "std",
            "delta",
        )
        if whole and all(float(v).is_integer() for v in frame[column].dropna()):
            out[name] = [_cell(v, digits) if _cell(v, digits) == "" else str(int(v)) for v in series]
        else:
            out[name] = [_cell(v, digits) for v in series]
    return pd.DataFrame(out, index=frame.index)


def _markdown(frame: pd.DataFrame) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(esc(str(c)) for c in frame.columns) + " |"]
    lines.append("|" + "|".join("---" for _ in frame.columns) + "|")
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


_LATEX_SPECIAL = {c: "\\" + c for c in "&%$#_{}"}
_LATEX_SPECIAL.update({"~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"})


def _latex(frame: pd.DataFrame, caption: str | None = None) -> str:
    def esc(text: str) -> str:
        text = "".join(_LATEX_SPECIAL.get(c, c) for c in text)
        return text.replace("±", r"$\pm$")

    lines = [r"\begin{tabular}{" + "l" * len(frame.columns) + "}", r"\toprule"]
    lines.append(" & ".join(esc(str(c)) for c in frame.columns) + r" \\")
    lines.append(r"\midrule")
    lines += [" & ".join(esc(v) for v in row) + r" \\" for row in frame.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        lines.insert(0, f"% {caption}")
    return "\n".join(lines)


def render(frame: pd.DataFrame, fmt: str, digits: int = 4, index: bool = False) -> str:
    """A DataFrame as table (plain text), csv (raw values), markdown or latex (booktabs)."""
    if index:
        frame = frame.reset_index()
    if fmt == "csv":
        return frame.to_csv(index=False).rstrip("\n")
    shown = _display(frame, digits, combine_std=True)
    if fmt == "markdown":
        return _markdown(shown)
    if fmt == "latex":
        return _latex(shown)
    if shown.empty:
        return "(no rows)"
    return shown.to_string(index=False)


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

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
  python -m kdgat.results runs/ --best val.f1 --group-by dataset,model_size
  python -m kdgat.results runs/ --deltas --where dataset=hcrlch
  python -m kdgat.results runs/ --transfer f1 --where model_size=teacher
  python -m kdgat.results runs/ --write-hparams      # backfill TensorBoard HParams entries
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
        "n, distinct seeds and mean ± std of --metrics",
    )
    parser.add_argument(
        "--metrics",
        action="append",
        metavar="COLS",
        help=f"metrics for --group-by, --best and --deltas (default: {','.join(DEFAULT_METRICS)})",
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
        const="f1",
        metavar="METRIC",
        help="cross-dataset matrix of METRIC (default f1): rows trained-on, columns evaluated-on",
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
    return parser


def _default_columns(df: pd.DataFrame) -> list[str]:
    varying = [level for level in LEVELS if df[level].astype(object).nunique(dropna=False) > 1]
    wanted = ["run", *varying, "training_config.seed", *DEFAULT_METRICS, "val.f1", "params", "state"]
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


def _report_stale(df: pd.DataFrame) -> None:
    """Runs whose upstream runs were deleted or retrained after them (kdgat.lineage)."""
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
        try:
            print(lineage.tree(df, args.lineage, read_run))
        except LookupError:
            raise ResultsError(
                f"--lineage {args.lineage}: no run directory of that name under {args.root} or at "
                f"that path. Give a `run` value of the table (e.g. automotive/.../run_000) or a path."
            ) from None
        return 0
    metrics = [resolve_column(df, m, "--metrics") for m in _split_list(args.metrics)] or [
        m for m in DEFAULT_METRICS if m in df.columns
    ]
    selected = apply_where(df, args.where)
    _report_problems(selected)
    _report_stale(selected)
    table = selected if args.include_problems else usable(selected)
    if table.empty:
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
        return 1

    if args.write_hparams:
        written = [write_hparams(path) for path in usable(table)["path"]]
        print(f"wrote HParams entries into {len(written)} run(s)")
        return 0

    group_by = _split_list(args.group_by)
    if group_by == ["levels"] or "levels" in group_by:
        group_by = [c for c in group_by if c != "levels"] + list(LEVELS)
    group_by = [resolve_column(table, c, "--group-by") for c in group_by]
    modes = sum(bool(x) for x in (args.best, args.deltas, args.transfer))
    if modes > 1:
        raise ResultsError("--best, --deltas and --transfer each make a different table; use one at a time.")

    if args.transfer:
        matrix = transfer_matrix(table, args.transfer)
        _note_mixed(table, ["dataset"], "cells")
        print(render(matrix, args.format, args.digits, index=True))
        return 0
    if args.deltas:
        print(render(teacher_student_deltas(table, metrics), args.format, args.digits))
        return 0
    if args.best:
        metric = resolve_column(table, args.best, "--best")
        frame = best_runs(table, group_by or list(LEVELS), metric, lowest=args.lowest)
        columns = list(dict.fromkeys([*(group_by or _default_columns(frame)), "run", metric, *metrics]))
        if args.columns:
            columns = _select_columns(frame, _split_list(args.columns))
        print(render(frame[[c for c in columns if c in frame.columns]], args.format, args.digits))
        return 0
    if group_by:
        grouped = group_runs(table, group_by, metrics)
        _note_mixed(table, group_by, "groups")
        if args.sort:
            sort = resolve_column(
                grouped, args.sort if args.sort in grouped else f"{args.sort}.mean", "--sort"
            )
            grouped = grouped.sort_values(sort, ascending=not args.descending, kind="mergesort")
        if args.columns:  # names of the grouped table, e.g. n,test.f1.mean or 'test.*'
            grouped = grouped[_select_columns(grouped, _split_list(args.columns))]
        print(render(grouped, args.format, args.digits))
        return 0

    if args.sort:
        table = table.sort_values(
            resolve_column(table, args.sort, "--sort"), ascending=not args.descending, kind="mergesort"
        )
    if args.columns:
        columns = _select_columns(table, _split_list(args.columns))
    elif args.all_columns or args.format == "csv":
        columns = [c for c in table.columns if table[c].notna().any()]
    else:
        columns = _default_columns(table)
    print(render(table[columns], args.format, args.digits))
    return 0


if __name__ == "__main__":
    sys.exit(main())
