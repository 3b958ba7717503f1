"""Expand a base config into a grid: lists of level values and `--set field=v1,v2` over any field.

Every combination is resolved with configs.resolve; the ones that cannot run are returned with
the reason, for the caller to list and skip (or refuse with --strict).
"""

import dataclasses
import itertools
from typing import Any

import yaml

import configs
from configs import ConfigError, ExperimentConfig


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
    return key, [yaml.safe_load(v) for v in split_values([values])]


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
        with_field(configs.to_dict(base), key, values[0])
    valid, skipped = [], []
    names = [name for name, _ in axes]
    for combo in itertools.product(*(values for _, values in axes)):
        changes = dict(zip(names, combo, strict=True))
        data = configs.to_dict(base)
        try:
            for key, value in changes.items():
                data = with_field(data, key, value)
            cfg = configs.resolve(configs.from_dict(data, source="--set"))
        except ConfigError as err:
            skipped.append((describe(changes), str(err)))
            continue
        valid.append(cfg)
    return Grid(valid, skipped)
