"""Lineage of results: the runs a result builds on, and whether they still are what it used.

A run records every run it built on in metrics.json (and status.json): `upstream.<field>` (path
relative to the runs root, field = vgae_run, gat_run or teacher_run) and `lineage.<field>.*` (that
run's config digest and finish time when it was used). Over the results table (kdgat.results.table):

- `stale_reasons`: per run, why an upstream is no longer what it used (deleted, replaced by a run
  with another config, retrained after it, not finished now), or that an upstream's own upstream is;
- `tree`: the tree of runs a result depends on, as text (`python -m kdgat.results --lineage RUN`).
"""

import os
from collections.abc import Callable
from typing import Any

import pandas as pd

from configs import LEVELS
from kdgat.runs.prerequisites import FIELDS

Row = dict[str, Any]
ROW_COLUMNS = ("run", "path", "state", "config_digest", "started_at", "finished_at", "test.f1")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def upstream_path(run_path: str, recorded: str) -> str:
    """A recorded upstream (relative to the runs root: runs/<7 levels>/run_NNN) as a path."""
    return os.path.normpath(os.path.join(run_path, *[os.pardir] * (len(LEVELS) + 1), recorded))


class Lineage:
    """Rows of the results table by run path; runs outside it are read on demand with `read`."""

    def __init__(self, df: pd.DataFrame, read: Callable[[str], Row]) -> None:
        wanted = [c for c in df.columns if c in ROW_COLUMNS or str(c).startswith(("upstream.", "lineage."))]
        self.rows = {os.path.normpath(r["path"]): r for r in df[wanted].to_dict("records")}
        self.read = read
        self._stale: dict[str, str | None] = {}

    def row(self, path: str) -> Row | None:
        path = os.path.normpath(path)
        if path not in self.rows:
            self.rows[path] = self.read(path) if os.path.isdir(path) else None
        return self.rows[path]

    def links(self, row: Row) -> list[tuple[str, str, str]]:
        """(field, recorded path, path) of every upstream a run recorded."""
        found = []
        for field in FIELDS:
            recorded = _text(row.get(f"upstream.{field}"))
            if recorded is not None:
                found.append((field, recorded, upstream_path(row["path"], recorded)))
        return found

    def own_problem(self, row: Row, field: str, recorded: str, path: str) -> str | None:
        """Why one upstream no longer is what `row` used, or None."""
        up = self.row(path)
        if up is None:
            return f"{field} {recorded} was deleted"
        used_digest = _text(row.get(f"lineage.{field}.config_digest"))
        used_finish = _text(row.get(f"lineage.{field}.finished_at"))
        finished, started = _text(up.get("finished_at")), _text(row.get("started_at"))
        if up.get("state") != "finished":
            return f"{field} {recorded} is {up.get('state') or 'unreadable'} now"
        if used_digest and up.get("config_digest") != used_digest:
            return f"{field} {recorded} was replaced by a run with another config.yaml"
        if used_finish and finished != used_finish:
            return f"{field} {recorded} was retrained after it (finished {finished}, it used {used_finish})"
        if not used_finish and finished and started and finished > started:  # runs without lineage
            return f"{field} {recorded} was retrained after it (finished {finished}, after it started)"
        return None

    def stale(self, row: Row, seen: frozenset[str] = frozenset()) -> str | None:
        """Why a run's lineage is broken (its own upstreams, then theirs), or None."""
        key = os.path.normpath(row["path"])
        if key in self._stale:
            return self._stale[key]
        reasons = []
        for field, recorded, path in self.links(row):
            problem = self.own_problem(row, field, recorded, path)
            up = self.row(path)
            if problem is None and up is not None and path not in seen:
                inherited = self.stale(up, seen | {key})
                if inherited:
                    problem = f"{field} {recorded} builds on stale runs ({inherited})"
            if problem:
                reasons.append(problem)
        self._stale[key] = "; ".join(reasons) or None
        return self._stale[key]


def stale_reasons(df: pd.DataFrame, read: Callable[[str], Row]) -> pd.Series:
    """Per row: why the runs it builds on are not what it used (None where they are, or none)."""
    columns = [f"upstream.{f}" for f in FIELDS if f"upstream.{f}" in df.columns]
    out = pd.Series([None] * len(df), index=df.index, dtype=object)
    if not columns or df.empty:
        return out
    lineage = Lineage(df, read)
    for index in df.index[df[columns].notna().any(axis=1)]:
        out[index] = lineage.stale(lineage.rows[os.path.normpath(df.at[index, "path"])])
    return out


def _label(row: Row | None, path: str) -> str:
    if row is None:
        return f"{path}  MISSING"
    f1 = row.get("test.f1")
    score = f"  test.f1={f1:.4f}" if isinstance(f1, float) and f1 == f1 else ""
    digest = row.get("config_digest") or ""
    return f"{row.get('run') or path}  {row.get('state') or '?'}{score}  {digest}".rstrip()


def tree(df: pd.DataFrame, run: str, read: Callable[[str], Row]) -> str:
    """The runs `run` (its `run` column value or its path) depends on, one line each, as a tree."""
    lineage = Lineage(df, read)
    wanted = os.path.normpath(run)
    matches = [
        r for r in lineage.rows.values() if r and wanted in (r.get("run"), os.path.normpath(r["path"]))
    ]
    root = matches[0] if matches else lineage.row(run)
    if root is None:
        raise LookupError(run)
    lines = [_label(root, run)]

    def walk(row: Row, indent: str, seen: frozenset[str]) -> None:
        links = lineage.links(row)
        for n, (field, recorded, path) in enumerate(links):
            last = n == len(links) - 1
            up = lineage.row(path)
            problem = lineage.own_problem(row, field, recorded, path)
            flag = f"  !! {problem}" if problem else ""
            label = _label(up, recorded) if up is not None else f"{recorded}  MISSING"
            lines.append(f"{indent}{'└── ' if last else '├── '}{field}: {label}{flag}")
            if up is not None and path not in seen:
                walk(up, indent + ("    " if last else "│   "), seen | {path})

    walk(root, "", frozenset({os.path.normpath(root["path"])}))
    return "\n".join(lines)
