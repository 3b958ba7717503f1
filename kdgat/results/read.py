"""Run directories -> flat rows (plain dicts; no pandas, so training can use it too).

A row holds ``run`` (path below the root), the seven levels, ``state``, every knob of the config
(``training_config.lr``, ...), the flattened status.json (``timings.train_s``, ``git.commit``),
metrics.json (``test.f1``, ``test.attack_types.dos.recall``; not its per-epoch ``history``) and
eval_<dataset>.json (``eval.<dataset>.f1``), plus ``problem`` and ``warning``.

Only those files are opened, each with the C JSON parser. The knobs come from config.json, which
Run.claim writes beside config.yaml: the knobs flattened, with the digest of the config.yaml they
came from. A run directory without it (written before config.json existed), or whose config.yaml
no longer has that digest, is read from config.yaml with PyYAML (libyaml's C loader, about 2 ms a
run, several times slower than config.json).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from typing import Any

import yaml

from configs import LEVEL_CHOICES, LEVELS
from kdgat.results.flat import add_floor_margins, add_knob, add_metrics, flatten
from kdgat.runs.store import CONFIG_JSON, RUN_PATTERN, YAML_LOADER, config_digest, config_knobs

EVAL_PATTERN = re.compile(r"^eval_(.+)\.json$")
LEVEL_SET = frozenset(LEVELS)
STATE_HINTS = {
    "queued": "; it has not started yet (or never will: its job was cancelled, see python launch.py status)",
    "running": "; still training, or its job died without a word (check host and pid in status.json)",
    "preempted": "; continue it with python train.py --resume {run_dir}",
}


def _read_json(path: str) -> Any:
    with open(path, "rb") as handle:
        return json.loads(handle.read())


_HISTORY = b'\n  "history": ['


def read_metrics(path: str) -> Any:
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


def saved_knobs(run_dir: str, digest: str) -> dict[str, Any] | None:
    """config.json's knobs when it was written from the config.yaml with this digest, else None
    (missing, unreadable, or from a config.yaml edited since: config.yaml is the truth)."""
    try:
        saved = _read_json(run_dir + os.sep + CONFIG_JSON)
    except (OSError, ValueError):
        return None
    if type(saved) is dict and saved.get("config_digest") == digest and type(saved.get("config")) is dict:
        return saved["config"]
    return None


def read_knobs(run_dir: str, config_yaml: bytes, digest: str, has_json: bool) -> dict[str, Any]:
    """The run's config as flat knobs: from config.json when it is current, else from config.yaml
    parsed with PyYAML (which raises yaml.YAMLError or ValueError when it is broken)."""
    knobs = saved_knobs(run_dir, digest) if has_json else None
    if knobs is not None:
        return knobs
    config = yaml.load(config_yaml, Loader=YAML_LOADER)
    if not isinstance(config, dict):
        raise ValueError("top level is not a mapping")
    return config_knobs(config)


def _describe(err: Exception) -> str:
    if isinstance(err, json.JSONDecodeError):
        return f"not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})"
    if isinstance(err, yaml.YAMLError):
        return "not valid YAML (" + " ".join(str(err).split()) + ")"
    if isinstance(err, UnicodeDecodeError):
        return "not UTF-8 text"
    return f"unreadable ({type(err).__name__}: {err})"


def _json_object(path: str, read: Callable[[str], Any] = _read_json) -> tuple[dict | None, str | None]:
    """A JSON file's top-level object, or None and what is wrong with the file."""
    try:
        value = read(path)
        if not isinstance(value, dict):
            raise ValueError("top level is not a JSON object")
    except (OSError, ValueError) as err:
        return None, _describe(err)
    return value, None


def _relative(run_dir: str, root: str | os.PathLike[str] | None) -> str:
    """run_dir below root (the row's ``run``); run_dir itself without a root or when it is the root."""
    if root is None:
        return run_dir
    prefix = os.fspath(root).rstrip(os.sep) + os.sep
    relative = run_dir[len(prefix) :] if run_dir.startswith(prefix) else os.path.relpath(run_dir, root)
    return run_dir if relative == "." else relative


def _path_levels(parts: list[str]) -> tuple[list[str | None], bool]:
    """The seven levels the folder names (runs/<levels>/run_NNN), and whether it names them all
    validly; Nones where it does not."""
    values = parts[-1 - len(LEVELS) : -1] if len(parts) > len(LEVELS) else []
    ok = len(values) == len(LEVELS) and all(
        value in LEVEL_CHOICES[level] for level, value in zip(LEVELS, values, strict=True)
    )
    return (list(values) if ok else [None] * len(LEVELS)), ok


def _add_status(run_dir: str, files: set[str], row: dict[str, Any], problems: list[str]) -> None:
    """status.json: the run's state, and the rest of the file flattened."""
    if "status.json" not in files:
        problems.append("status.json missing (the run never started, or was copied incompletely)")
        return
    status, wrong = _json_object(run_dir + os.sep + "status.json")
    if status is None:
        problems.append(f"status.json {wrong}")
        return
    row["state"] = status.get("state")
    flatten("", {k: v for k, v in status.items() if k != "state"}, row)
    if row["state"] != "finished":
        reason = f"state is {row['state']!r}, not 'finished'"
        if status.get("error"):
            reason += f" (error: {status['error']})"
        reason += STATE_HINTS.get(str(row["state"]), "").format(run_dir=run_dir)
        problems.append(reason)


def _add_config(
    run_dir: str,
    files: set[str],
    row: dict[str, Any],
    path_levels_ok: bool,
    problems: list[str],
    warnings: list[str],
) -> None:
    """config.yaml (its knobs read from config.json when that is current): every knob. The levels
    come from the folder when it names them (a config that disagrees is a warning), else from it."""
    if "config.yaml" not in files:
        problems.append("config.yaml missing")
        return
    try:
        with open(run_dir + os.sep + "config.yaml", "rb") as handle:
            raw = handle.read()
        row["config_digest"] = digest = config_digest(raw)  # what a dependant's lineage recorded
        knobs = read_knobs(run_dir, raw, digest, CONFIG_JSON in files)
    except (OSError, ValueError, yaml.YAMLError) as err:
        problems.append(f"config.yaml {_describe(err)}")
        return
    for key, value in knobs.items():
        if key not in LEVEL_SET:
            kind = type(value)
            if "." in key and kind is not list and kind is not dict:
                row[key] = value  # add_knob's usual case, without a call per knob of every run
            else:
                add_knob(row, key, value)
        elif not path_levels_ok:
            row[key] = value
        elif row[key] != value:
            warnings.append(f"config.yaml says {key}={value} but the folder says {row[key]}")


def _add_metrics(run_dir: str, files: set[str], row: dict[str, Any], problems: list[str]) -> None:
    """metrics.json: the final results (a finished run without them is a problem)."""
    if "metrics.json" not in files:
        if row["state"] == "finished":
            problems.append("metrics.json missing although status.json says finished")
        elif not problems:
            problems.append("metrics.json missing")
        return
    metrics, wrong = _json_object(run_dir + os.sep + "metrics.json", read_metrics)
    if metrics is None:
        problems.append(f"metrics.json {wrong}")
        return
    add_metrics(row, metrics)
    if not isinstance(metrics.get("test"), dict):
        problems.append("metrics.json has no 'test' section")


def _add_evals(run_dir: str, files: set[str], row: dict[str, Any], warnings: list[str]) -> None:
    """eval_<dataset>.json: cross-dataset transfer results (a broken one is left out with a warning)."""
    for name in sorted(files):
        if (eval_match := EVAL_PATTERN.match(name)) is None:
            continue
        result, wrong = _json_object(run_dir + os.sep + name)
        if result is None:
            warnings.append(f"{name} {wrong}; that transfer result is left out")
        else:
            flatten(f"eval.{eval_match.group(1)}.", result, row)


def read_run(run_dir: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """One run directory as a flat row. Never raises for a broken run: ``problem`` says why.

    ``problem`` is None for a finished run with readable status.json, config and metrics.json;
    otherwise it explains what is missing or broken. Problems that leave the run usable (a
    corrupt eval_*.json) go to ``warning``.
    """
    run_dir = os.fspath(run_dir).rstrip(os.sep) or os.sep
    parts = run_dir.split(os.sep)
    row: dict[str, Any] = {"run": _relative(run_dir, root), "path": run_dir}
    level_values, path_levels_ok = _path_levels(parts)
    row.update(zip(LEVELS, level_values, strict=True))
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

    _add_status(run_dir, files, row, problems)
    _add_config(run_dir, files, row, path_levels_ok, problems, warnings)
    _add_metrics(run_dir, files, row, problems)
    _add_evals(run_dir, files, row, warnings)
    add_floor_margins(row)
    if not path_levels_ok and not problems and any(row.get(level) is None for level in LEVELS):
        warnings.append("folder is not runs/<7 levels>/run_NNN and config.yaml does not name the levels")
    row["problem"] = "; ".join(problems) if problems else None
    row["warning"] = "; ".join(warnings) if warnings else None
    return row


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
