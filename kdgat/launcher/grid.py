"""Expand a base config into a grid: lists of level values and `--set field=v1,v2` over any field.

Every combination is resolved with resolve; the ones that cannot run are returned with
the reason, for the caller to list and skip (or refuse with --strict).
"""

import dataclasses
import itertools
import types
import typing
from typing import Any

import yaml

from configs import ConfigError, ExperimentConfig
from kdgat.config.codec import from_dict, to_dict
from kdgat.config.resolve import resolve


@dataclasses.dataclass
class Grid:
    valid: list[ExperimentConfig]
    skipped: list[tuple[str, str]]  # (description of the combination, why it cannot run)


def split_values(items: tuple[str, ...] | list[str]) -> list[str]:
    """('teacher,student', 'tiny') -> ['teacher', 'student', 'tiny']."""
    return [v.strip() for item in items for v in item.split(",") if v.strip()]


def parse_set(item: str) -> tuple[str, list[Any]]:
    """'model_size_config.hidden_dim=32,64' -> ('model_size_config.hidden_dim', [32, 64])."""
    key, sep, values = item.partition("=")
    key = key.strip().replace("-", "_").removeprefix("__")
    if not sep or not key or not values.strip():
        raise ConfigError(
            f"--set {item!r} is not FIELD=VALUE[,VALUE...]: give a dotted config field and its "
            f"values, e.g. --set model_size_config.hidden_dim=32,64 or --set training_config.lr=1e-3."
        )
    return key, [_scalar(v) for v in split_values([values])]


def _scalar(text: str) -> Any:
    """A grid value: number first (YAML 1.1 reads '1e-3' as a string), else YAML (true, null, text)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return yaml.safe_load(text)


# CLI name of each sub-config section (tyro renames training_config to --training).
SECTION_FLAGS = {
    "model-size-config": "model_size_config",
    "model-config": "model_config",
    "dataset-config": "dataset_config",
    "learning-config": "learning_config",
    "training": "training_config",
    "osc-config": "osc_config",
}
GRIDDABLE_TYPES = (int, float, bool)


def _griddable_field(flag: str) -> str | None:
    """'--model-size-config.hidden-dim' -> 'model_size_config.hidden_dim' (also nested, e.g.
    '--learning-config.kd.alpha', '--dataset-config.automotive.window') for a number, bool or
    choice field; None for anything else (paths, free text and lists keep their commas)."""
    section, *names = flag.removeprefix("--").split(".")
    if not names or section not in SECTION_FLAGS:
        return None
    owner: object = getattr(ExperimentConfig(), SECTION_FLAGS[section])
    fields = [name.replace("-", "_") for name in names]
    for field in fields[:-1]:
        owner = getattr(owner, field, None)
        if not dataclasses.is_dataclass(owner):
            return None
    kind = typing.get_type_hints(type(owner)).get(fields[-1])
    if kind is None:
        return None
    union = typing.get_origin(kind) in (typing.Union, types.UnionType)
    options = [a for a in typing.get_args(kind) if a is not type(None)] if union else [kind]
    if all(o in GRIDDABLE_TYPES or typing.get_origin(o) is typing.Literal for o in options):
        return ".".join([SECTION_FLAGS[section], *fields])
    return None


def comma_flags_to_sets(argv: list[str]) -> tuple[list[str], list[str]]:
    """Pull `--section.field V1,V2` (the grid spelling of docs/launching.md#grids) out of argv as
    `--set section_config.field=V1,V2` items; returns (remaining argv, set items)."""
    remaining, sets = [], []
    i = 0
    while i < len(argv):
        flag, eq, inline = argv[i].partition("=")
        value = inline if eq else (argv[i + 1] if i + 1 < len(argv) else "")
        dotted = _griddable_field(flag) if flag.startswith("--") else None
        if dotted is not None and "," in value:
            sets.append(f"{dotted}={value}")
            i += 1 if eq else 2
            continue
        remaining.append(argv[i])
        i += 1
    return remaining, sets


def with_field(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of a to_dict() mapping with a dotted field replaced; unknown fields are refused."""
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    *parents, leaf = key.split(".")
    node = data
    for i, part in enumerate(parents):
        if not isinstance(node.get(part), dict):
            known = sorted(k for k, v in data.items() if isinstance(v, dict))
            raise ConfigError(
                f"--set {key}: {'.'.join(parents[: i + 1])!r} is not a config section. "
                f"Sections: {', '.join(known)}."
            )
        node[part] = dict(node[part])
        node = node[part]
    if leaf not in node:
        raise ConfigError(
            f"--set {key}: unknown field {leaf!r}. Known here: {', '.join(sorted(node))}. "
            f"`python train.py --print-config` shows every field."
        )
    node[leaf] = value
    return data


def describe(changes: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in changes.items()) or "(base config)"


def expand(base: ExperimentConfig, levels: dict[str, list[str]], sets: list[tuple[str, list[Any]]]) -> Grid:
    """Cartesian product of level values and field values over base, resolved and checked."""
    axes: list[tuple[str, list[Any]]] = [(level, values) for level, values in levels.items() if values]
    axes += sets
    for key, values in sets:  # a misspelt field is a mistake in the command, not a grid gap
        with_field(to_dict(base), key, values[0])
    valid, skipped = [], []
    names = [name for name, _ in axes]
    for combo in itertools.product(*(values for _, values in axes)):
        changes = dict(zip(names, combo, strict=True))
        data = to_dict(base)
        try:
            for key, value in changes.items():
                data = with_field(data, key, value)
            cfg = resolve(from_dict(data, source="--set"))
        except ConfigError as err:
            skipped.append((describe(changes), str(err)))
            continue
        valid.append(cfg)
    return Grid(valid, skipped)
