"""Tables as text: plain table, csv (raw values), markdown, or latex (booktabs).

Floats are shown with ``digits`` decimals (whole numbers as integers where the column is a count),
a ``X.mean`` / ``X.std`` pair becomes one ``X`` column "mean ± std", and ``X.ci_low`` /
``X.ci_high`` one ``X 95% CI`` column "[low, high]".
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from kdgat.results.columns import METRIC_NAMES


def cell(value: Any, digits: int) -> str:
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
        if combine_std and name.endswith(".ci_high") and f"{name[:-8]}.ci_low" in frame.columns:
            continue
        if combine_std and name.endswith(".ci_low") and f"{name[:-7]}.ci_high" in frame.columns:
            lows, highs = frame[column].astype(object), frame[f"{name[:-7]}.ci_high"].astype(object)
            out[f"{name[:-7]} 95% CI"] = [
                f"[{cell(lo, digits)}, {cell(hi, digits)}]" if cell(lo, digits) else ""
                for lo, hi in zip(lows, highs, strict=True)
            ]
            continue
        if combine_std and name.endswith(".mean") and f"{name[:-5]}.std" in frame.columns:
            means, stds = frame[column], frame[f"{name[:-5]}.std"]
            out[name[:-5]] = [
                cell(m, digits) + (f" ± {cell(s, digits)}" if cell(s, digits) else "")
                for m, s in zip(means.astype(object), stds.astype(object), strict=True)
            ]
            continue
        series = frame[column].astype(object)
        whole = pd.api.types.is_float_dtype(frame[column].dtype) and name.rsplit(".", 1)[-1] not in (
            *METRIC_NAMES,
            "mean",
            "std",
            "ci_low",
            "ci_high",
            "delta",
        )
        if whole and all(float(v).is_integer() for v in frame[column].dropna()):
            out[name] = [cell(v, digits) if cell(v, digits) == "" else str(int(v)) for v in series]
        else:
            out[name] = [cell(v, digits) for v in series]
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


def render_matrices(matrices: dict[str, pd.DataFrame], fmt: str, digits: int) -> str:
    """Each matrix under its name (a csv of one matrix is the bare matrix, for scripts)."""
    if len(matrices) == 1:
        return render(next(iter(matrices.values())), fmt, digits, index=True)
    return "\n\n".join(f"{name}:\n{render(m, fmt, digits, index=True)}" for name, m in matrices.items())
