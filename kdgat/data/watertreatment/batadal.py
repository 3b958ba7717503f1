"""Strict, vectorised reader for the five BATADAL CSVs (hourly SCADA logs of C-Town).

One reader takes every file the competition and its copies ship (SOURCE.md in
../shared/data/watertreatment_batadal):

| file                              | DATETIME              | ATT_FLAG                         |
|-----------------------------------|-----------------------|----------------------------------|
| BATADAL_dataset03                 | `06/01/14 00`         | `0`                              |
| BATADAL_dataset04                 | `04/07/16 00`         | ` 1` attack, ` -999` unlabelled  |
| BATADAL_dataset04_fully_labelled  | `04/07/16 00`         | `0` / `1`                        |
| BATADAL_test_dataset_labelled     | `04/01/17 00`         | `0.00` / `1.00`                  |
| BATADAL_test_dataset_attack_ids   | `2017-01-04 00:00:00` | `benign` / `attack8`..`attack14` |

Quirks handled: white space around fields (the original dataset04 writes `, 2.44` and its header
may carry leading spaces: both are stripped, not refused); the unnamed first index column of the
attack_ids file (must count rows 0, 1, ...); `-999` = unlabelled (label -1); two-digit years are
20yy; sensor columns may come in any order (the files interleave F_PUk,S_PUk) and are returned in
the canonical order SENSOR_COLUMNS; a negative reading (dataset04 line 3771, F_PU7 = -0.88, inside
an attack) is data.

Attack ids (int16, 0 = benign or unlabelled):
- a file labelled `attack<k>` gives k (the attack_ids file read alone);
- `attack_ids=` another file: the labelled test file plus its attack_ids twin. Both are read; rows,
  datetimes, labels (and readings, to 0.005: both files write 2 decimals) must agree, else a
  DataError names both files and lines; ids come from the twin;
- otherwise contiguous runs of attack hours are numbered 1, 2, ... in file order. For
  dataset04_fully_labelled that gives the schedule's attacks 1-7; for the labelled test file alone
  1-7 (the schedule calls them 8-14: pass attack_ids for those); for the original dataset04 it
  gives 1-5 for its five partly labelled runs, which are NOT the schedule's numbers (its runs lie
  inside attacks 1, 3, 4, 5 and 6).
Every id must occupy one contiguous run of hours (the scorer measures time to detection from it).

Checks (policy `malformed`='error' raises a DataError naming file:line and the value; 'skip' drops
such rows and counts them in `skipped`): field count, index column, datetime format and calendar,
time order (strictly increasing: a duplicated or earlier hour is refused), each reading a finite
decimal, ATT_FLAG one of the tokens above. Header problems (a missing, unknown or duplicated
column) are always errors. Time steps are not required to be one hour; graphs.py works on rows.
"""

import dataclasses
from pathlib import Path

import numpy as np

from kdgat.common.errors import DataError
from kdgat.data.text.row_checks import RowChecks, resolve_bad_rows
from kdgat.data.text.scan import (
    Fields,
    parse_decimal,
    parse_tokens,
    parse_uint,
    read_bytes,
    split_delimited,
)

TANKS = tuple(f"T{k}" for k in range(1, 8))
PUMPS = tuple(f"PU{k}" for k in range(1, 12))
JUNCTIONS = ("J280", "J269", "J300", "J256", "J289", "J415", "J302", "J306", "J307", "J317", "J14", "J422")
SENSOR_COLUMNS: tuple[str, ...] = (
    *(f"L_{t}" for t in TANKS),
    *(f"F_{p}" for p in PUMPS),
    *(f"S_{p}" for p in PUMPS),
    "F_V2",
    "S_V2",
    *(f"P_{j}" for j in JUNCTIONS),
)
LABEL_COLUMN = "ATT_FLAG"
TIME_COLUMN = "DATETIME"
UNLABELLED = -999
VALUE_TOLERANCE = 0.005  # twin files may round readings differently in the last of 2 decimals

EXPECTED = (
    "expected a BATADAL log: header DATETIME, the 43 sensor columns (L_T1..L_T7, F_/S_PU1..PU11, "
    "F_V2, S_V2, P_J280..P_J422) and ATT_FLAG; rows `dd/mm/yy HH` or `YYYY-MM-DD HH:MM:SS`, "
    "decimal readings, ATT_FLAG 0/1 (or 0.00/1.00), -999 (unlabelled), benign or attack<k>"
)


@dataclasses.dataclass
class ProcessLog:
    """Hourly SCADA readings of one BATADAL file, in time order.

    time: float64 POSIX seconds of each row's hour (the file's clock, no time zone); columns:
    SENSOR_COLUMNS; values: float64 (n, 43) in that order; label: int8 1 attack, 0 benign,
    -1 unlabelled; attack_id: int16, 0 for benign/unlabelled hours, k for attack k."""

    source: Path
    time: np.ndarray
    columns: tuple[str, ...]
    values: np.ndarray
    label: np.ndarray
    attack_id: np.ndarray
    skipped: int = 0
    """Malformed rows dropped under policy malformed=skip."""

    def __len__(self) -> int:
        return int(self.time.shape[0])


def read_batadal(path: Path, malformed: str = "error", attack_ids: Path | None = None) -> ProcessLog:
    """Read one BATADAL CSV (gzip or plain); `attack_ids`: its attack_ids twin (see module doc)."""
    if malformed not in ("error", "skip"):
        raise DataError(f"malformed={malformed!r}: expected 'error' or 'skip'.")
    path = Path(path)
    log, lines, named = _read(path, malformed)
    if attack_ids is not None:
        twin, twin_lines, twin_named = _read(Path(attack_ids), malformed)
        if not twin_named:
            raise DataError(
                f"{attack_ids}: no ATT_FLAG reads attack<k> or benign, so it gives no attack ids; "
                f"pass the attack_ids file (e.g. BATADAL_test_dataset_attack_ids.csv.gz) as attack_ids."
            )
        _agree(log, lines, twin, twin_lines)
        ids = np.where(log.label == 1, twin.attack_id, 0).astype(np.int16)
        _check_runs(Path(attack_ids), ids, twin_lines)
        return dataclasses.replace(log, attack_id=ids)
    if named:
        _check_runs(path, log.attack_id, lines)
        return log
    return dataclasses.replace(log, attack_id=number_segments(log.label))


def number_segments(label: np.ndarray) -> np.ndarray:
    """int16 ids 1, 2, ... for the contiguous runs of label == 1, 0 elsewhere."""
    attack = np.asarray(label) == 1
    starts = attack & ~np.concatenate([[False], attack[:-1]])
    return np.where(attack, np.cumsum(starts), 0).astype(np.int16)


def _read(path: Path, malformed: str) -> tuple[ProcessLog, np.ndarray, bool]:
    """The log, the 1-based line of each kept row, and whether labels were benign/attack<k>."""
    text = read_bytes(path)
    if not text or text.isspace():
        raise DataError(f"{path}: the file is empty; {EXPECTED}.")
    fields = split_delimited(text)
    last = len(fields)
    while last > 1 and fields.line_end[last - 1] == fields.line_start[last - 1]:
        last -= 1  # trailing blank lines are not rows
    index_col, time_col, label_col, sensor_cols, width = _header(path, fields)
    rows = np.arange(1, last, dtype=np.int64)
    if len(rows) == 0:
        raise DataError(f"{path}: header only, no rows; {EXPECTED}.")
    buf = fields.buf
    checks = RowChecks(fields, rows)
    checks.check(fields.nfields[rows] == width, None, f"expected {width} fields")
    if index_col is not None:
        index, ok = parse_uint(buf, *_column(fields, rows, index_col), 9)
        counts = ok & (index == np.arange(len(rows)))
        checks.check(counts, index_col, "the index column does not count rows 0, 1, ...")
    time, ok, layout = _parse_datetime(buf, *_column(fields, rows, time_col))
    checks.check(ok, time_col, f"the DATETIME is not a valid {layout}")
    starts = np.stack([_column(fields, rows, j)[0] for j in sensor_cols], axis=1)
    ends = np.stack([_column(fields, rows, j)[1] for j in sensor_cols], axis=1)
    values, ok = parse_signed(buf, starts.ravel(), ends.ravel())
    values, ok = values.reshape(starts.shape), ok.reshape(starts.shape)
    for k, j in enumerate(sensor_cols):
        checks.check(ok[:, k], j, f"the {SENSOR_COLUMNS[k]} reading is not a finite decimal number")
    label, attack_id, ok, named = _parse_label(buf, *_column(fields, rows, label_col))
    checks.check(ok, label_col, "unknown ATT_FLAG (expected 0/1, 0.00/1.00, -999, benign or attack<k>)")
    masked = np.where(checks.good, time, -np.inf)
    before = np.concatenate([[-np.inf], np.maximum.accumulate(masked)[:-1]])
    checks.check(
        time > before, time_col, "the DATETIME is not after the previous row's (hours must strictly increase)"
    )
    skipped = resolve_bad_rows(path, checks, malformed, EXPECTED)
    keep = checks.good
    log = ProcessLog(
        source=path,
        time=time[keep],
        columns=SENSOR_COLUMNS,
        values=np.ascontiguousarray(values[keep]),
        label=label[keep].astype(np.int8),
        attack_id=attack_id[keep].astype(np.int16),
        skipped=skipped,
    )
    return log, rows[keep] + 1, bool(named[keep].any())


def _header(path: Path, fields: Fields) -> tuple[int | None, int, int, list[int], int]:
    """(index column or None, DATETIME column, ATT_FLAG column, sensor columns in canonical order,
    field count), or a DataError naming what is missing, unknown or repeated."""
    names = [fields.field_text(0, j).strip() for j in range(int(fields.nfields[0]))]
    where = f"{path}:1: header {fields.line_text(0)[:120]!r}"
    index_col = 0 if names and names[0] == "" else None
    seen: dict[str, int] = {}
    for j, name in enumerate(names):
        if j == index_col:
            continue
        if name in seen:
            twice = f"fields {seen[name] + 1} and {j + 1}"
            raise DataError(f"{where} names column {name!r} twice ({twice}); {EXPECTED}.")
        seen[name] = j
    for required in (TIME_COLUMN, LABEL_COLUMN):
        if required not in seen:
            raise DataError(f"{where} has no {required} column; {EXPECTED}.")
    missing = [c for c in SENSOR_COLUMNS if c not in seen]
    if missing:
        raise DataError(
            f"{where} lacks sensor column(s) {', '.join(missing)}; every BATADAL log has all 43 "
            f"sensor columns (SOURCE.md). Restore the column(s) or use an unmodified copy of the file."
        )
    unknown = [n for n in seen if n not in SENSOR_COLUMNS and n not in (TIME_COLUMN, LABEL_COLUMN)]
    if unknown:
        raise DataError(f"{where} has unknown column(s) {', '.join(map(repr, unknown))}; {EXPECTED}.")
    sensors = [seen[c] for c in SENSOR_COLUMNS]
    return index_col, seen[TIME_COLUMN], seen[LABEL_COLUMN], sensors, len(names)


def _column(fields: Fields, rows: np.ndarray, j: int) -> tuple[np.ndarray, np.ndarray]:
    start, end = fields.field(j)
    return start[rows[0] : rows[-1] + 1], end[rows[0] : rows[-1] + 1]  # rows are consecutive


def parse_signed(buf: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decimal numbers with an optional leading '-' -> (float64, ok), all rows at once."""
    negative = (end - start > 1) & (buf[np.minimum(start, len(buf) - 1)] == ord("-"))
    value, ok = parse_decimal(buf, start + negative, end)
    return np.where(negative, -value, value), ok


def _digits(buf: np.ndarray, start: np.ndarray, offset: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    return parse_uint(buf, start + offset, start + offset + width, width)


def _parse_datetime(
    buf: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray, str]:
    """`dd/mm/yy HH` or `YYYY-MM-DD HH:MM:SS` (the layout of the first row, for every row) ->
    (POSIX seconds, ok, layout in words)."""
    length = end - start
    at = np.minimum(start[:, None] + np.arange(19)[None, :], len(buf) - 1)
    chars = buf[at]
    if len(start) and length[0] == 19:
        layout = "`YYYY-MM-DD HH:MM:SS`"
        ok = (length == 19) & _punctuation(chars, {4: "-", 7: "-", 10: " ", 13: ":", 16: ":"})
        parts = [_digits(buf, start, o, w) for o, w in ((0, 4), (5, 2), (8, 2), (11, 2), (14, 2), (17, 2))]
        year, month, day, hour, minute, second = (p[0] for p in parts)
    else:
        layout = "`dd/mm/yy HH`"
        ok = (length == 11) & _punctuation(chars, {2: "/", 5: "/", 8: " "})
        parts = [_digits(buf, start, o, 2) for o in (0, 3, 6, 9)]
        day, month, year, hour = (p[0] for p in parts)
        year = year + 2000
        minute = second = np.zeros_like(year)
    for _, good in parts:
        ok &= good
    ok &= (month >= 1) & (month <= 12) & (day >= 1) & (hour <= 23) & (minute <= 59) & (second <= 59)
    months = np.where(ok, (year - 1970) * 12 + month - 1, 0).astype("datetime64[M]")
    first = months.astype("datetime64[D]").astype(np.int64)
    next_first = (months + 1).astype("datetime64[D]").astype(np.int64)
    ok &= day <= next_first - first
    seconds = ((first + day - 1) * 24 + hour) * 3600 + minute * 60 + second
    return np.where(ok, seconds, 0).astype(np.float64), ok, layout


def _punctuation(chars: np.ndarray, expected: dict[int, str]) -> np.ndarray:
    """Rows whose character at each given position is the given one."""
    ok = np.ones(len(chars), dtype=bool)
    for at, char in expected.items():
        ok &= chars[:, at] == ord(char)
    return ok


def _parse_label(
    buf: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ATT_FLAG -> (label 1/0/-1, attack id, ok, whether written as benign/attack<k>)."""
    n = len(start)
    label = np.zeros(n, dtype=np.int64)
    attack_id = np.zeros(n, dtype=np.int64)
    benign = parse_tokens(buf, start, end, {b"benign": 1})[1]
    prefixed = (end - start > 6) & parse_tokens(buf, start, np.minimum(start + 6, end), {b"attack": 1})[1]
    number, good_number = parse_uint(buf, start + 6, end, 3)
    attack = prefixed & good_number & (number >= 1)
    label[attack], attack_id[attack] = 1, number[attack]
    named = benign | attack
    rest = np.flatnonzero(~named & ~prefixed)  # numeric flags, parsed only where needed
    value, good = parse_signed(buf, start[rest], end[rest])
    known = good & ((value == 0) | (value == 1) | (value == UNLABELLED))
    label[rest] = np.where(value == UNLABELLED, -1, np.where(known, value, 0).astype(np.int64))
    ok = named.copy()
    ok[rest] = known
    return label, attack_id, ok, named


def _agree(log: ProcessLog, lines: np.ndarray, twin: ProcessLog, twin_lines: np.ndarray) -> None:
    """The attack_ids twin must describe the same hours as the labelled file."""
    a, b = log.source, twin.source
    if len(log) != len(twin):
        raise DataError(
            f"{a} has {len(log)} rows but its attack_ids file {b} has {len(twin)}; pass the attack_ids "
            f"file of the same split (BATADAL_test_dataset_attack_ids for BATADAL_test_dataset_labelled)."
        )
    far = np.abs(log.values - twin.values) > VALUE_TOLERANCE
    for differs, what in (
        (log.time != twin.time, "DATETIME"),
        ((log.label >= 0) & (log.label != twin.label), "ATT_FLAG"),
        (far.any(axis=1), "readings"),
    ):
        bad = np.flatnonzero(differs)
        if not len(bad):
            continue
        i = int(bad[0])
        if what == "DATETIME":
            detail = f"{_iso(log.time[i])} vs {_iso(twin.time[i])}"
        elif what == "ATT_FLAG":
            detail = f"label {int(log.label[i])} vs {int(twin.label[i])}"
        else:
            k = int(np.argmax(far[i]))
            detail = f"{SENSOR_COLUMNS[k]} {log.values[i, k]} vs {twin.values[i, k]}"
        raise DataError(
            f"{a}:{lines[i]} and {b}:{twin_lines[i]}: the {what} differ ({detail}; {len(bad)} row(s) in "
            f"all); the attack_ids file must be the same split as the labelled file."
        )


def _iso(seconds: float) -> str:
    return str(np.datetime64(int(seconds), "s")).replace("T", " ")


def _check_runs(path: Path, attack_id: np.ndarray, lines: np.ndarray) -> None:
    """Each attack id must cover one contiguous run of rows."""
    ids = np.asarray(attack_id)
    for k in np.unique(ids[ids > 0]).tolist():
        rows = np.flatnonzero(ids == k)
        gaps = np.flatnonzero(np.diff(rows) > 1)
        if len(gaps):
            line = int(lines[rows[gaps[0] + 1]])
            raise DataError(
                f"{path}:{line}: attack{k} starts again after line {int(lines[rows[gaps[0]]])}; each "
                f"attack must be one contiguous run of hours (time to detection is measured from its "
                f"start). Give the second run its own id."
            )
