"""Nested run files -> flat dotted cells, the one way both the results table (kdgat.results.read)
and a finishing run's HParams entry (kdgat.results.hparams) name their columns.

Plain dicts only: no pandas, nothing that reads files, so training can import it.
"""

import json
from collections.abc import Sequence
from itertools import compress, repeat
from typing import Any

from kdgat.config.codec import flatten_into

# metrics.json keys that are not one-number-per-run results.
SKIPPED_METRICS_KEYS = ("history",)
SKIPPED_DATA_KEYS = ("train_files",)
SCALARS = (str, int, float, bool)


def flatten(prefix: str, obj: dict[str, Any], out: dict[str, Any], skip: Sequence[str] = ()) -> None:
    """obj's nested mappings as dotted keys into out (its top-level keys in skip left out); lists of
    scalars -> "a,b,c" (hashable, groupable)."""
    flatten_into({k: v for k, v in obj.items() if k not in skip} if skip else obj, out, prefix, list_cell)


def list_cell(values: list[Any]) -> str:
    if all(v is None or type(v) in SCALARS for v in values):
        return ",".join(str(v) for v in values)
    return json.dumps(values)


def add_knob(row: dict[str, Any], key: str, value: Any) -> None:
    """One flat config knob (not a level) as its column: top-level knobs (runs_root, device,
    teacher_run, ...) under "config.", lists as one cell."""
    column = key if "." in key else "config." + key
    kind = type(value)
    if kind is list:
        row[column] = list_cell(value)
    elif kind is dict:  # a hand-edited config.json; config_knobs never writes one
        flatten(column + ".", value, row)
    else:
        row[column] = value


def add_metrics(row: dict[str, Any], metrics: dict[str, Any]) -> None:
    """metrics.json's cells: every result but the per-epoch history; data.* without the file list."""
    data = metrics.get("data")
    flatten("", metrics, row, skip=(*SKIPPED_METRICS_KEYS, "data"))
    if isinstance(data, dict):
        flatten("data.", data, row, skip=SKIPPED_DATA_KEYS)


FLOOR_MARGIN = 0.01  # kdgat.evaluation.metrics.FLOOR_MARGIN (that module is not imported here)
MARGIN_SUFFIX = ".f1_margin"
FLOOR_SUFFIX = ".flag_all.f1"


def add_floor_margins(row: dict[str, Any]) -> None:
    """Beside every result X.f1 that has its flag-everything floor X.flag_all.f1: X.f1_margin =
    X.f1 - floor, and X in the row's `at_floor` cell when the margin is at most FLOOR_MARGIN."""
    at_floor = []
    # compress/map: the scan over a row's hundreds of keys runs without a Python-level loop
    for key in list(compress(row, map(str.endswith, row, repeat(FLOOR_SUFFIX)))):
        prefix = key.removesuffix(FLOOR_SUFFIX)
        f1, floor = row.get(prefix + ".f1"), row[key]
        if not isinstance(f1, int | float) or not isinstance(floor, int | float):
            continue
        row[prefix + MARGIN_SUFFIX] = float(f1) - float(floor)
        if float(f1) - float(floor) <= FLOOR_MARGIN and row.get(prefix + ".n_attack"):
            at_floor.append(prefix)
    if at_floor:
        row["at_floor"] = ",".join(at_floor)
