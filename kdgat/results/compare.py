"""``--compare FIELD=A,B``: runs that differ only in FIELD, paired, and the paired statistics of
each metric (kdgat.results.stats).

Two runs pair when FIELD is A in one and B in the other and everything else that defines an
experiment is equal: the seed, every other level, and every config knob, except where a run ran
and where its data lives (analyse.NOT_EXPERIMENT_KNOBS, the seed kept) and the knobs that go
with FIELD itself (one value on the A side and another on the B side: a model size's
dimensions, say). Runs of A or B without such a partner, or with more than one, are returned
with the reason, never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from configs import LEVELS
from kdgat.results.analyse import NOT_EXPERIMENT_KNOBS
from kdgat.results.columns import SEED, ResultsError, is_knob, resolve_column
from kdgat.results.query import apply_where
from kdgat.results.stats import paired, significant, smallest_wilcoxon_p

NONE = "<none>"


@dataclass
class Comparison:
    """The paired table (one row per group and metric), and what could not be paired."""

    field: str
    a: str
    b: str
    table: pd.DataFrame
    unpaired: pd.DataFrame  # run, FIELD's value, reason
    with_field: list[str]  # knobs left out of the pairing because they go with FIELD
    mixed: list[str]  # key columns whose values differ between the pairs of one group


def parse_compare(df: pd.DataFrame, text: str) -> tuple[str, str, str]:
    """FIELD=A,B -> (column, A, B)."""
    field, sep, values = text.partition("=")
    sides = [v.strip() for v in values.split(",")]
    if not sep or len(sides) != 2 or not all(sides) or sides[0] == sides[1]:
        raise ResultsError(
            f"--compare {text!r}: expected FIELD=A,B with two different values, e.g. "
            f"--compare distillation=no,standard (B - A is reported)."
        )
    return resolve_column(df, field, "--compare"), sides[0], sides[1]


def _key_columns(df: pd.DataFrame, field: str) -> list[str]:
    """Levels, the seed and the experiment's knobs: what a pair must share."""
    ignored = tuple(p for p in NOT_EXPERIMENT_KNOBS if p != SEED)
    columns = [c for c in LEVELS if c in df.columns and c != field]
    columns += [
        str(c)
        for c in df.columns
        if is_knob(str(c)) and c != field and (c == SEED or not str(c).startswith(ignored))
    ]
    return columns


def _text(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(object).where(frame.notna(), NONE).astype(str)


def _with_field(keys: pd.DataFrame, side: pd.Series) -> list[str]:
    """Key columns that take one value on each side, different between the sides."""
    per_side = keys.groupby(side.to_numpy(), sort=False).nunique()
    values = keys.groupby(side.to_numpy(), sort=False).first()
    if len(per_side) < 2:
        return []
    constant = (per_side == 1).all()
    differ = values.nunique() > 1
    return [c for c in keys.columns if constant[c] and differ[c] and c not in LEVELS and c != SEED]


def compare_runs(
    df: pd.DataFrame, spec: str, metrics: list[str], group_by: list[str] | None = None
) -> Comparison:
    """Pair the runs of df by spec (FIELD=A,B) and test B - A on each metric, per group of
    group_by (default: the levels other than FIELD that vary among the paired runs)."""
    field, a, b = parse_compare(df, spec)
    side_a = apply_where(df, [f"{field}={a}"])
    side_b = apply_where(df, [f"{field}={b}"])
    for name, side in ((a, side_a), (b, side_b)):
        if side.empty:
            present = sorted({str(v) for v in df[field].dropna().unique()})[:12]
            raise ResultsError(
                f"--compare: no usable run has {field}={name} among the selected runs "
                f"(values present: {', '.join(present) or 'none'})."
            )
    runs = pd.concat([side_a, side_b])
    side = pd.Series([a] * len(side_a) + [b] * len(side_b), index=runs.index)
    keys = _text(runs[_key_columns(runs, field)])
    with_field = _with_field(keys, side)
    keys = keys.drop(columns=with_field)
    key = pd.Series(list(map(tuple, keys.to_numpy())), index=runs.index)
    pairs, unpaired = _pair(runs, side, key, a, b)
    groups = _groups(runs, pairs, field, group_by)
    table = _statistics(runs, pairs, metrics, a, b, groups)
    return Comparison(field, a, b, table, unpaired, with_field, _mixed(keys, pairs, groups))


def _mixed(keys: pd.DataFrame, pairs: list[tuple[int, int]], groups: list[str]) -> list[str]:
    """Key columns (but the seed) that differ between pairs of one group: its mean difference
    pools several experiments."""
    if not pairs:
        return []
    firsts = keys.loc[[i for i, _ in pairs]].drop(columns=[SEED], errors="ignore")
    if groups:
        label = firsts[[g for g in groups if g in firsts.columns]].agg("|".join, axis=1)
        counts = firsts.groupby(label.to_numpy()).nunique().max()
    else:
        counts = firsts.nunique()
    return [str(c) for c in firsts.columns if counts[c] > 1 and c not in groups]


def _pair(
    runs: pd.DataFrame, side: pd.Series, key: pd.Series, a: str, b: str
) -> tuple[list[tuple[int, int]], pd.DataFrame]:
    """(index of A, index of B) per pair, and the runs left without exactly one partner."""
    pairs: list[tuple[int, int]] = []
    left: list[dict[str, str]] = []
    for _, members in key.groupby(key, sort=False):
        mine_a = [i for i in members.index if side[i] == a]
        mine_b = [i for i in members.index if side[i] == b]
        if len(mine_a) == 1 and len(mine_b) == 1:
            pairs.append((mine_a[0], mine_b[0]))
            continue
        for mine, other, other_value in ((mine_a, mine_b, b), (mine_b, mine_a, a)):
            if not mine:
                continue
            if not other:
                reason = f"no run with {other_value} and the same seed, levels and knobs"
            elif len(mine) > 1:
                reason = f"{len(mine)} runs with {side[mine[0]]} share seed, levels and knobs"
            else:
                reason = f"{len(other)} runs with {other_value} share its seed, levels and knobs"
            reason += " (which pairs? pick one with --where, or move the others away)" if other else ""
            left += [{"run": str(runs.at[i, "run"]), "side": side[i], "reason": reason} for i in mine]
    unpaired = pd.DataFrame(left, columns=["run", "side", "reason"]).sort_values("run", kind="mergesort")
    return pairs, unpaired.reset_index(drop=True)


def _groups(
    runs: pd.DataFrame, pairs: list[tuple[int, int]], field: str, group_by: list[str] | None
) -> list[str]:
    if group_by is not None:
        return [c for c in group_by if c != field]
    paired_runs = runs.loc[[i for pair in pairs for i in pair]]
    return [
        c
        for c in LEVELS
        if c != field and c in paired_runs and paired_runs[c].astype(object).nunique(dropna=False) > 1
    ]


def _statistics(
    runs: pd.DataFrame,
    pairs: list[tuple[int, int]],
    metrics: list[str],
    a: str,
    b: str,
    groups: list[str],
) -> pd.DataFrame:
    """One row per group and metric: pairs, means of A and B, B - A with its CI, p-values."""
    if not pairs:
        return pd.DataFrame()
    index_a = [i for i, _ in pairs]
    index_b = [j for _, j in pairs]
    labels = _text(runs.loc[index_a, groups]).reset_index(drop=True) if groups else None
    values_a = runs.loc[index_a, metrics].apply(pd.to_numeric, errors="coerce").reset_index(drop=True)
    values_b = runs.loc[index_b, metrics].apply(pd.to_numeric, errors="coerce").reset_index(drop=True)
    group_of = [()] * len(pairs) if labels is None else list(map(tuple, labels.to_numpy()))
    rows = []
    for group in sorted(set(group_of)):
        mine = [k for k, g in enumerate(group_of) if g == group]
        for metric in metrics:
            result = paired(values_a.loc[mine, metric].to_numpy(), values_b.loc[mine, metric].to_numpy())
            row = dict(zip(groups, group, strict=True))
            row.update(
                metric=metric,
                pairs=result["pairs"],
                **{f"mean.{a}": result["mean_a"], f"mean.{b}": result["mean_b"]},
                diff=result["diff"],
                ci_low=result["ci_low"],
                ci_high=result["ci_high"],
                t_p=result["t_p"],
                wilcoxon_p=result["wilcoxon_p"],
                significant="yes" if significant(result["t_p"]) else "no",
            )
            rows.append(row)
    return pd.DataFrame(rows)


def display(comparison: Comparison, digits: int) -> pd.DataFrame:
    """The paired table as text cells: B - A signed, its CI as [low, high], p-values, and 'n.s.'
    where the paired t-test does not reject 'no difference' at 5 %."""
    table = comparison.table
    out = table.drop(columns=["ci_low", "ci_high", "t_p", "wilcoxon_p", "significant"]).copy()

    def num(value: float, signed: bool = False) -> str:
        if pd.isna(value):
            return ""
        return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"

    out["diff"] = [num(v, True) for v in table["diff"]]
    out.insert(
        list(out.columns).index("diff") + 1,
        "95% CI",
        [
            f"[{num(lo, True)}, {num(hi, True)}]" if not pd.isna(lo) else ""
            for lo, hi in zip(table["ci_low"], table["ci_high"], strict=True)
        ],
    )
    out["t-test p"] = [p_value(p) for p in table["t_p"]]
    out["Wilcoxon p"] = [p_value(p) for p in table["wilcoxon_p"]]
    out["significant"] = ["yes" if s == "yes" else "n.s." for s in table["significant"]]
    out = out.rename(columns={"diff": f"{comparison.b} - {comparison.a}"})
    return out


def p_value(p: float) -> str:
    """A p-value as text: 3 decimals, or 2 significant digits below 0.001."""
    if pd.isna(p):
        return ""
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def notes(comparison: Comparison) -> list[str]:
    """What a reader of the table needs beside it: the knobs that went with FIELD, the Wilcoxon
    floor with few pairs, and how many runs were left unpaired."""
    lines = []
    if comparison.with_field:
        lines.append(
            f"note: {', '.join(comparison.with_field[:8])} differ with {comparison.field} "
            f"(one value per side), so pairs may differ in them too."
        )
    if comparison.mixed:
        lines.append(
            f"note: pairs within a row differ in {', '.join(comparison.mixed[:8])}: its mean pools "
            f"several experiments. Add them to --group-by, or pick one value with --where."
        )
    table = comparison.table
    if not table.empty:
        fewest = int(table["pairs"].min())
        if fewest and smallest_wilcoxon_p(fewest) >= 0.05:
            lines.append(
                f"note: with {fewest} pairs the Wilcoxon signed-rank test cannot reach p < 0.05 (its "
                f"smallest two-sided p is {smallest_wilcoxon_p(fewest):.3g}); n.s. marks the paired "
                f"t-test's verdict (p >= 0.05, its 95 % CI contains 0)."
            )
    return lines
