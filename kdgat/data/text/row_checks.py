"""What a reader does with rows that fail its checks: the malformed-row policy.

`RowChecks` remembers the first failed check of every row, so a reader can either raise a DataError
naming file:line, the row and what was expected (policy 'error') or drop and count the bad rows
(policy 'skip'). The checks themselves are the per-row `ok` arrays of kdgat/data/text/scan.py.
"""

import dataclasses
from pathlib import Path

import numpy as np

from kdgat.common.errors import DataError
from kdgat.data.text.scan import Fields


@dataclasses.dataclass
class RowChecks:
    """First failed check of every row, for error messages or counted skips."""

    fields: Fields
    rows: np.ndarray  # line indices of the data rows
    failed: np.ndarray = dataclasses.field(init=False)
    messages: list[tuple[int | None, str]] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self.failed = np.full(len(self.rows), -1, dtype=np.int64)

    def check(self, ok: np.ndarray, field: int | None, what: str) -> None:
        """Rows where `ok` is False fail with `what` (about field `field`, if given)."""
        bad = ~ok & (self.failed < 0)
        if bad.any():
            self.failed[bad] = len(self.messages)
        self.messages.append((field, what))

    @property
    def good(self) -> np.ndarray:
        return self.failed < 0

    def describe(self, row: int) -> str:
        """Problem of data row `row` in words."""
        field, what = self.messages[int(self.failed[row])]
        line = int(self.rows[row])
        if field is None:
            return what
        return f"field {field + 1} {self.fields.field_text(line, field)!r}: {what}"


def resolve_bad_rows(path: Path, checks: RowChecks, policy: str, expected: str) -> int:
    """Raise DataError on the first bad row (policy 'error') or return how many rows are skipped."""
    bad = np.flatnonzero(~checks.good)
    if len(bad) and policy == "error":
        row = int(bad[0])
        line = int(checks.rows[row])
        text = checks.fields.line_text(line)
        more = f" ({len(bad) - 1} more bad row(s) after it)" if len(bad) > 1 else ""
        raise DataError(
            f"{path}:{line + 1}: {text[:120]!r}: {checks.describe(row)}{more}; {expected}. "
            f"To drop such rows and count them, use --dataset-config.malformed skip."
        )
    if len(bad) and len(bad) == len(checks.rows):
        row = 0
        line = int(checks.rows[row])
        raise DataError(
            f"{path}: none of its {len(bad)} row(s) is readable (policy skip); first, line "
            f"{line + 1}: {checks.fields.line_text(line)[:120]!r}: {checks.describe(row)}; {expected}."
        )
    return len(bad)


def backward_jumps(time: np.ndarray, ok: np.ndarray, max_back: float) -> np.ndarray:
    """True where a row's time is more than max_back seconds before the latest earlier valid time."""
    masked = np.where(ok, time, -np.inf)
    latest = np.maximum.accumulate(masked)
    before = np.concatenate([[-np.inf], latest[:-1]])
    return ok & (time < before - max_back)
