"""Column names of the results table: which exist, their short names, their order, and errors.

Config columns are named by flattening config.yaml generically (``training_config.lr``,
``learning_config.kd.alpha``), so nothing here lists individual knobs beyond the seed and the
aliases: a renamed or regrouped knob keeps working. pandas is not imported here (kdgat.results.hparams
uses this module inside training runs).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from configs import LEVELS
from kdgat.common.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

SEED = "training_config.seed"
METRIC_NAMES = (
    "f1",
    "precision",
    "recall",
    "auroc",
    "accuracy",
    "benign_fpr",
    "f1_margin",
    # kdgat.evaluation.field_metrics.NAMES (not imported: that module brings numpy into training's path)
    "mcc",
    "balanced_accuracy",
    "recall_at_fpr_1pct",
    "recall_at_fpr_0_1pct",
    "precision_at_recall_95pct",
    "ece",
)
DEFAULT_METRICS = ("test.f1", "test.precision", "test.recall", "test.auroc")
# Shown beside the default metrics: F1 over flagging every window, and which results sit at it.
FLOOR_COLUMNS = ("test.f1_margin", "test.benign_fpr", "at_floor")
# Short names accepted wherever a column is named (--where, --group-by, --columns, ...).
ALIASES = {
    "arch": "model_architecture",
    "architecture": "model_architecture",
    "size": "model_size",
    "mode": "training_mode",
    "seed": SEED,
    "lr": "training_config.lr",
    "epochs": "training_config.epochs",
    "stage": "launcher.stage",
}


class ResultsError(UserError):
    """A results query the user can fix; the message says what, why and how."""


def is_knob(column: str) -> bool:
    """A config knob: a key of a ``*_config`` section (any depth), or a top-level config key."""
    return "_config." in column or column.startswith("config.")


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


def split_list(values: Sequence[str] | None) -> list[str]:
    """Repeated, comma-separated option values as one list: ['a,b', 'c'] -> ['a', 'b', 'c']."""
    return [part.strip() for value in values or () for part in value.split(",") if part.strip()]


def column_order(columns: Iterable[str]) -> list[str]:
    """Identity and state first, then the headline metrics, then the rest grouped by kind."""
    first = ["run", *LEVELS, "run_number", SEED, "state", "problem", "warning", "stale"]
    first += [*DEFAULT_METRICS, *FLOOR_COLUMNS, "val.f1", "params"]
    present = list(dict.fromkeys(columns))
    head = [c for c in first if c in present]
    rest = [c for c in present if c not in head]

    def rank(name: str) -> int:
        for i, prefix in enumerate(("test.", "val.", "test_by_split.", "eval.", "timings.", "data.")):
            if name.startswith(prefix):
                return i
        return 7 if is_knob(name) else 6

    rest.sort(key=rank)  # stable: within a group keeps first-seen order
    return head + rest
