"""``--where``: keep the runs whose columns match ``COLUMN=VALUE`` expressions.

Operators: = (or ==), !=, >, >=, <, <=. ``=`` and ``!=`` take comma-separated alternatives
(``model_size=student,teacher``); ``none`` matches a missing value. Values are compared as the
column's type: numbers as numbers, true/false for flags, text otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pandas as pd

from kdgat.results.columns import ResultsError, resolve_column

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
