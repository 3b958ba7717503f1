"""config.yaml <-> ExperimentConfig: the dict, flat (dotted keys) and YAML forms, and strict loading
(unknown fields and wrong types are refused, naming the file and the field; older layouts are migrated
first)."""

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

from configs import ConfigError, ExperimentConfig
from kdgat.config.migrations import migrate


def to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    """The config as plain YAML-able values (paths as strings, tuples as lists)."""

    def plain(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return {k: plain(v) for k, v in dataclasses.asdict(cfg).items()}


def flatten(
    data: dict[str, Any], prefix: str = "", lists: Callable[[list[Any]], Any] | None = None
) -> dict[str, Any]:
    """Nested mappings as one level of dotted keys (``training_config.lr``); other values as they are,
    but lists through `lists` when given (tuple: hashable for comparing configs; results make a
    table cell of them).

    Generic on purpose: whatever sections configs.py grows (``learning_config.kd.alpha``) flow
    through unchanged. Empty mappings leave no key, as they hold no knob.
    """
    flat: dict[str, Any] = {}
    flatten_into(data, flat, prefix, lists)
    return flat


def flatten_into(
    data: dict[str, Any],
    out: dict[str, Any],
    prefix: str = "",
    lists: Callable[[list[Any]], Any] | None = None,
) -> None:
    """flatten(data, prefix, lists) written into out (no dict per level: the results table
    flattens every run's files this way)."""
    for key, value in data.items():
        if isinstance(value, dict):
            flatten_into(value, out, f"{prefix}{key}.", lists)
        elif lists is not None and isinstance(value, list):
            out[f"{prefix}{key}"] = lists(value)
        else:
            out[f"{prefix}{key}"] = value


def with_fields(cfg: ExperimentConfig, fields: Mapping[str, Any]) -> ExperimentConfig:
    """cfg with top-level fields replaced by name, the names and values known only at run time (a
    preset's levels, the run directories a plan binds); dataclasses.replace refuses unknown names."""
    return dataclasses.replace(cfg, **fields)


def to_yaml(cfg: ExperimentConfig) -> str:
    """config.yaml text: the fields in declaration order."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def _as_is(value: Any) -> Any:
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)  # YAML's true is an int in Python


# Scalar field types: (does the YAML value fit, what was expected, the value stored).
_SCALARS: dict[Any, tuple[Callable[[Any], bool], str, Callable[[Any], Any]]] = {
    bool: (lambda value: isinstance(value, bool), "true or false", _as_is),
    int: (lambda value: isinstance(value, int) and not isinstance(value, bool), "an integer", _as_is),
    float: (_is_number, "a number", float),
    str: (lambda value: isinstance(value, str), "a string", _as_is),
    Path: (lambda value: isinstance(value, str), "a path string", Path),
}


def _scalar(tp: Any, value: Any, where: str) -> Any:
    fits, expected, store = _SCALARS[tp]
    if not fits(value):
        raise ConfigError(f"{where}: expected {expected}, got {value!r}.")
    stored = store(value)
    if tp is float and not math.isfinite(stored):  # YAML spells them .nan and .inf
        raise ConfigError(
            f"{where}: expected a finite number, got {value!r}: NaN or infinity would make every loss "
            f"and score computed from it meaningless."
        )
    return stored


def _literal(tp: Any, value: Any, where: str) -> Any:
    if value not in get_args(tp):
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(str, get_args(tp)))}.")
    return value


def _union(tp: Any, value: Any, where: str) -> Any:
    """The first option the value converts to; otherwise the first option's complaint."""
    if value is None and type(None) in get_args(tp):
        return None
    options = [option for option in get_args(tp) if option is not type(None)]
    errors = []
    for option in options:
        try:
            return _convert(option, value, where)
        except ConfigError as err:
            errors.append(str(err))
    raise ConfigError(errors[0] if errors else f"{where}: {value!r} has the wrong type.")


def _sequence(tp: Any, value: Any, where: str) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{where}: expected a list, got {value!r}.")
    return tuple(_convert(get_args(tp)[0], v, f"{where}[{i}]") for i, v in enumerate(value))


def _mapping(tp: Any, value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping of {tp.__name__} fields, got {value!r}.")
    return _from_dict(tp, value, where)


_BY_ORIGIN: dict[Any, Callable[[Any, Any, str], Any]] = {
    Literal: _literal,
    Union: _union,
    types.UnionType: _union,
    tuple: _sequence,
}


def _convert(tp: Any, value: Any, where: str) -> Any:
    """A YAML value -> a value of the field type `tp`, or a ConfigError saying where and what was expected."""
    if get_origin(tp) is Annotated:
        return _convert(get_args(tp)[0], value, where)
    if get_origin(tp) in _BY_ORIGIN:
        return _BY_ORIGIN[get_origin(tp)](tp, value, where)
    if dataclasses.is_dataclass(tp):
        return _mapping(tp, value, where)
    if tp in _SCALARS:
        return _scalar(tp, value, where)
    raise ConfigError(f"{where}: unsupported field type {tp!r}.")


if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_Config = TypeVar("_Config", bound="DataclassInstance")


def _from_dict(cls: type[_Config], data: dict[str, Any], where: str) -> _Config:
    hints = typing.get_type_hints(cls, include_extras=True)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{where}: unknown field(s) {', '.join(unknown)}. Known fields: {', '.join(sorted(names))}."
        )
    return cls(**{k: _convert(hints[k], v, f"{where}.{k}") for k, v in data.items()})


def from_dict(data: dict[str, Any], source: str = "config") -> ExperimentConfig:
    """Build a config from a mapping, rejecting unknown fields and wrong types (older layouts of
    config.yaml are migrated first, so old run directories keep loading)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of config fields, got {type(data).__name__}.")
    return _from_dict(ExperimentConfig, migrate(data), source)


def load_yaml(path: Path) -> ExperimentConfig:
    """Read a saved config.yaml; every problem names the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"config file {path} does not exist. Pass the config.yaml of a run directory, e.g. "
            f"--config runs/automotive/synthetic/.../run_000/config.yaml."
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    return from_dict(data, source=str(path))
