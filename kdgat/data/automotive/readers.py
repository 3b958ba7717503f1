"""Strict, vectorised readers, one per CAN capture format; gzip is read transparently.

| format     | layout (one frame per line)                                                      |
|------------|----------------------------------------------------------------------------------|
| can4       | header `timestamp,arbitration_id,data_field,attack`; hex ID, 2*DLC hex digits, 0/1 |
|            | (can-train-and-test set_01..04, HCRL Survival hcrl_sa, synthetic)                 |
| hcrl_csv   | headerless `Timestamp,ID,DLC,DATA0,...,DATA[DLC-1],Flag`, flag R normal / T attack |
|            | (HCRL Car-Hacking attack captures; the row width follows the DLC)                 |
| hcrl_log   | `Timestamp: 1479121434.850202  ID: 0350  000  DLC: 8  05 28 84 66 6d 00 00 a2`     |
|            | (HCRL Car-Hacking attack-free log; every frame normal)                            |
| daga       | header `timestamp,CAN_ID,DLC,PAYLOAD_HEX,ANOMALY`; DLC in bits (64 = 8 bytes);     |
|            | ANOMALY FALSE/False/True (any case)                                               |
| road       | headerless `ID,D0,...,D7,label`, all decimal, label 0.0/1.0; no timestamps         |

Policies:
- Malformed rows (`malformed`): 'error' raises a DataError naming file:line, the row, the problem
  and the expected layout; 'skip' drops such rows and counts them (`Frames.skipped`). A file
  where no row is readable is an error under both.
- Time order: row order is capture order. Small backward steps (real captures have them next to
  injected frames, up to ~0.1 ms) are data. A row more than MAX_BACKWARD_S seconds before the
  latest earlier timestamp is malformed (a spliced or corrupt capture).
- `na` in the 4-column layout (can-train-and-test set_02 has `na` IDs/payloads: frames the logger
  could not decode): policy `na_frames` 'drop' (default) removes them and counts them
  (`Frames.dropped_na`), since there is no ID to make a node of; 'error' treats them as malformed.
- No timestamps (road): time is the frame index and `has_time` is False; the graph builder
  then sets every timing feature to 0 and the node feature `has_timing` to 0.
- White space around a field is not data (set_03 fuzzing-3 line 19 has a tab after the payload):
  it is stripped, not refused.
"""

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from kdgat.common.errors import DataError
from kdgat.data.automotive.canlogs import is_python_can_csv, read_python_can
from kdgat.data.automotive.frames import Frames, attack_type_from_name
from kdgat.data.text.row_checks import RowChecks, backward_jumps, resolve_bad_rows
from kdgat.data.text.scan import (
    Fields,
    parse_decimal,
    parse_hex,
    parse_hex_bytes,
    parse_tokens,
    parse_uint,
    read_bytes,
    split_delimited,
    split_whitespace,
)

MAX_BACKWARD_S = 1.0
MAX_CAN_ID = 0x1FFFFFFF
CAN4_HEADER = ("timestamp", "arbitration_id", "data_field", "attack")
DAGA_HEADER = ("timestamp", "CAN_ID", "DLC", "PAYLOAD_HEX", "ANOMALY")

EXPECTED: dict[str, str] = {
    "can4": (
        "expected `timestamp,arbitration_id,data_field,attack`: a decimal timestamp, a hex ID of "
        "1-8 digits, a hex payload of 0-16 digits (an even count) and 0 or 1"
    ),
    "hcrl_csv": (
        "expected HCRL Car-Hacking `Timestamp,ID,DLC,DATA0,...,DATA[DLC-1],Flag`: a decimal "
        "timestamp, a hex ID, a DLC of 0-8, that many hex bytes and the flag R or T"
    ),
    "hcrl_log": (
        "expected HCRL Car-Hacking log lines `Timestamp: <seconds> ID: <hex> <hex> DLC: <0-8> "
        "<DLC hex bytes>`"
    ),
    "daga": (
        "expected DAGA `timestamp,CAN_ID,DLC,PAYLOAD_HEX,ANOMALY`: a decimal timestamp, a hex "
        "ID, the DLC in bits (0-64, a multiple of 8), DLC/4 hex digits and TRUE/FALSE"
    ),
    "road": (
        "expected ROAD (StatGraph) `ID,D0,D1,D2,D3,D4,D5,D6,D7,label`: a decimal ID, 8 decimal "
        "bytes 0-255 and the label 0.0 or 1.0"
    ),
}

_SNIFF: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("can4", re.compile(r"^timestamp,arbitration_id,data_field,attack\s*$")),
    ("daga", re.compile(r"^timestamp,CAN_ID,DLC,PAYLOAD_HEX,ANOMALY")),
    ("hcrl_log", re.compile(r"^Timestamp:\s")),
    ("road", re.compile(r"^\d+(,\d+){8},[01](\.0)?\s*$")),
    ("hcrl_csv", re.compile(r"^[\d.]+,[0-9A-Fa-f]+,\d,.*,[RT]\s*$")),
)
DESCRIPTION: dict[str, str] = {
    "can4": "the 4-column can-train-and-test / HCRL Survival layout",
    "hcrl_csv": "the HCRL Car-Hacking attack CSV",
    "hcrl_log": "the HCRL Car-Hacking text log",
    "daga": "the DAGA CSV",
    "road": "the ROAD (StatGraph) CSV",
}


def sniff(first_line: str) -> str | None:
    """Which known format a first line looks like, if any."""
    for name, pattern in _SNIFF:
        if pattern.match(first_line):
            return name
    return None


def _looks_like(first_line: str, wanted: str) -> str:
    guess = sniff(first_line)
    if guess and guess != wanted:
        return f" It looks like {DESCRIPTION[guess]} instead (format {guess!r})."
    return ""


def _load(path: Path, fmt: str) -> bytes:
    text = read_bytes(path)
    if not text or text.isspace():  # isspace stops at the first other byte; strip() copies the file
        raise DataError(f"{path}: the file is empty; {EXPECTED[fmt]}.")
    return text


def _rows(path: Path, fields: Fields, fmt: str, header: tuple[str, ...] | None) -> np.ndarray:
    first = fields.line_text(0).strip()
    if header is not None:
        found = tuple(fields.field_text(0, j) for j in range(int(fields.nfields[0])))
        if found != header:
            raise DataError(
                f"{path}:1: header {first[:120]!r} is not `{','.join(header)}`; this reader "
                f"takes {DESCRIPTION[fmt]}.{_looks_like(first, fmt)}"
            )
    rows = np.arange(1 if header else 0, len(fields), dtype=np.int64)
    if len(rows) == 0:
        raise DataError(f"{path}: header only, no frames; {EXPECTED[fmt]}.")
    if header is None and sniff(first) not in (fmt, None):
        raise DataError(f"{path}:1: {first[:120]!r} is not {DESCRIPTION[fmt]};{_looks_like(first, fmt)}")
    return rows


def _column(fields: Fields, rows: np.ndarray, j: int | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    start, end = fields.field(j)
    if len(rows) and int(rows[-1]) - int(rows[0]) + 1 == len(rows):  # consecutive: a view, no gather
        return start[rows[0] : rows[-1] + 1], end[rows[0] : rows[-1] + 1]
    return start[rows], end[rows]


def _check_count(checks: RowChecks, nfields: np.ndarray, expected: np.ndarray | int) -> None:
    checks.check(nfields == expected, None, "wrong number of fields")


def _finish(
    path: Path,
    checks: RowChecks,
    policy: str,
    fmt: str,
    time: np.ndarray,
    can_id: np.ndarray,
    payload: np.ndarray,
    dlc: np.ndarray,
    label: np.ndarray,
    has_time: bool = True,
    dropped_na: int = 0,
) -> Frames:
    if has_time:
        jumps = backward_jumps(time, checks.good, MAX_BACKWARD_S)
        checks.check(
            ~jumps, 0, f"the timestamp jumps back more than {MAX_BACKWARD_S} s before an earlier row's"
        )
    skipped = resolve_bad_rows(path, checks, policy, EXPECTED[fmt])
    keep: np.ndarray | slice = checks.good
    n = int(np.count_nonzero(checks.good))
    if n == len(checks.rows):  # every row kept (the usual case): no copies
        keep = slice(None)
    return Frames(
        source=path,
        time=time[keep] if has_time else np.arange(n, dtype=np.float64),
        can_id=can_id[keep].astype(np.int64, copy=False),
        payload=payload[keep],
        dlc=dlc[keep].astype(np.int8, copy=False),
        label=label[keep].astype(np.int8, copy=False),
        attack_type=attack_type_from_name(path),
        has_time=has_time,
        skipped=skipped,
        dropped_na=dropped_na,
    )


def read_can4(path: Path, malformed: str = "error", na_frames: str = "drop") -> Frames:
    """`timestamp,arbitration_id,data_field,attack` (header row present)."""
    path = Path(path)
    fields = split_delimited(_load(path, "can4"))
    rows = _rows(path, fields, "can4", CAN4_HEADER)
    buf = fields.buf
    id_s, id_e = _column(fields, rows, 1)
    pay_s, pay_e = _column(fields, rows, 2)
    na_id = parse_tokens(buf, id_s, id_e, {b"na": 1, b"NA": 1, b"nan": 1})[1]
    na_pay = parse_tokens(buf, pay_s, pay_e, {b"na": 1, b"NA": 1, b"nan": 1})[1]
    na = (na_id | na_pay) & (fields.nfields[rows] == 4)
    dropped_na = 0
    if na_frames == "drop" and na.any():
        dropped_na = int(na.sum())
        rows = rows[~na]
        id_s, id_e, pay_s, pay_e = id_s[~na], id_e[~na], pay_s[~na], pay_e[~na]
        if len(rows) == 0:
            raise DataError(f"{path}: every frame has an `na` ID or payload; no frames left.")
    checks = RowChecks(fields, rows)
    _check_count(checks, fields.nfields[rows], 4)
    time, ok = parse_decimal(buf, *_column(fields, rows, 0))
    checks.check(ok, 0, "the timestamp is not a finite decimal number")
    if na_frames == "error":
        checks.check(~na, 1, "`na` ID or payload (policy --dataset-config.automotive.na-frames error)")
    can_id, ok = parse_hex(buf, id_s, id_e, 8)
    checks.check(ok, 1, "the arbitration_id is not 1-8 hex digits")
    payload, dlc, ok = parse_hex_bytes(buf, pay_s, pay_e)
    checks.check(ok, 2, "the data_field is not an even number (0-16) of hex digits")
    label, ok = parse_tokens(buf, *_column(fields, rows, 3), {b"0": 0, b"1": 1})
    checks.check(ok, 3, "the attack flag is not 0 or 1")
    return _finish(path, checks, malformed, "can4", time, can_id, payload, dlc, label, dropped_na=dropped_na)


def _hex_bytes_at(
    fields: Fields, rows: np.ndarray, first: int, count: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Bytes written as separate 1-2 digit hex fields first..first+count-1 -> (uint8 (n,8), ok)."""
    payload = np.zeros((len(rows), 8), dtype=np.uint8)
    ok = np.ones(len(rows), dtype=bool)
    for j in range(8):
        used = count > j
        value, good = parse_hex(fields.buf, *_column(fields, rows, first + j), 2)
        payload[:, j] = np.where(used, value, 0)
        ok &= good | ~used
    return payload, ok


def read_hcrl_csv(path: Path, malformed: str = "error", na_frames: str = "drop") -> Frames:
    """HCRL Car-Hacking attack CSV: `Timestamp,ID,DLC,DATA0..DATA[DLC-1],Flag`, no header."""
    path = Path(path)
    fields = split_delimited(_load(path, "hcrl_csv"))
    rows = _rows(path, fields, "hcrl_csv", None)
    buf, nf = fields.buf, fields.nfields[rows]
    checks = RowChecks(fields, rows)
    checks.check(nf >= 4, None, "too few fields (a row needs at least Timestamp,ID,DLC,Flag)")
    time, ok = parse_decimal(buf, *_column(fields, rows, 0))
    checks.check(ok, 0, "the timestamp is not a finite decimal number")
    can_id, ok = parse_hex(buf, *_column(fields, rows, 1), 8)
    checks.check(ok, 1, "the ID is not 1-8 hex digits")
    dlc, ok = parse_uint(buf, *_column(fields, rows, 2), 1)
    ok &= dlc <= 8
    checks.check(ok, 2, "the DLC is not 0-8")
    checks.check(nf == dlc + 4, 2, "the DLC does not match the number of data bytes in the row")
    payload, ok = _hex_bytes_at(fields, rows, 3, dlc)
    checks.check(ok, None, "a data byte is not 1-2 hex digits")
    label, ok = parse_tokens(buf, *_column(fields, rows, nf - 1), {b"R": 0, b"T": 1})
    checks.check(ok, None, "the last field (flag) is not R or T")
    return _finish(path, checks, malformed, "hcrl_csv", time, can_id, payload, dlc, label)


def read_hcrl_log(path: Path, malformed: str = "error", na_frames: str = "drop") -> Frames:
    """HCRL Car-Hacking attack-free text log (every frame normal)."""
    path = Path(path)
    fields = split_whitespace(_load(path, "hcrl_log"))
    rows = _rows(path, fields, "hcrl_log", None)
    buf, nf = fields.buf, fields.nfields[rows]
    checks = RowChecks(fields, rows)
    for j, word in ((0, b"Timestamp:"), (2, b"ID:"), (5, b"DLC:")):
        checks.check(
            parse_tokens(buf, *_column(fields, rows, j), {word: 1})[1], j, f"expected {word.decode()!r}"
        )
    time, ok = parse_decimal(buf, *_column(fields, rows, 1))
    checks.check(ok, 1, "the timestamp is not a finite decimal number")
    can_id, ok = parse_hex(buf, *_column(fields, rows, 3), 8)
    checks.check(ok, 3, "the ID is not 1-8 hex digits")
    checks.check(parse_hex(buf, *_column(fields, rows, 4), 8)[1], 4, "not hex digits")
    dlc, ok = parse_uint(buf, *_column(fields, rows, 6), 1)
    checks.check(ok & (dlc <= 8), 6, "the DLC is not 0-8")
    checks.check(nf == dlc + 7, 6, "the DLC does not match the number of data bytes in the row")
    payload, ok = _hex_bytes_at(fields, rows, 7, dlc)
    checks.check(ok, None, "a data byte is not 1-2 hex digits")
    label = np.zeros(len(rows), dtype=np.int8)
    return _finish(path, checks, malformed, "hcrl_log", time, can_id, payload, dlc, label)


_BOOL = {b"FALSE": 0, b"False": 0, b"false": 0, b"TRUE": 1, b"True": 1, b"true": 1}


def read_daga(path: Path, malformed: str = "error", na_frames: str = "drop") -> Frames:
    """DAGA `timestamp,CAN_ID,DLC,PAYLOAD_HEX,ANOMALY` (DLC counts bits)."""
    path = Path(path)
    fields = split_delimited(_load(path, "daga"))
    rows = _rows(path, fields, "daga", DAGA_HEADER)
    buf = fields.buf
    checks = RowChecks(fields, rows)
    _check_count(checks, fields.nfields[rows], 5)
    time, ok = parse_decimal(buf, *_column(fields, rows, 0))
    checks.check(ok, 0, "the timestamp is not a finite decimal number")
    id_s, id_e = _column(fields, rows, 1)
    # Quirk: the replay files write some replayed IDs as `1.0` / `290.0` (the hex IDs 1 and 290
    # seen elsewhere in the trace, passed through a float); a trailing `.0` is dropped.
    float_suffix = (
        (id_e - id_s > 2)
        & (buf[np.maximum(id_e - 2, 0)] == ord("."))
        & (buf[np.maximum(id_e - 1, 0)] == ord("0"))
    )
    can_id, ok = parse_hex(buf, id_s, id_e - 2 * float_suffix, 8)
    checks.check(ok, 1, "the CAN_ID is not 1-8 hex digits")
    bits, ok = parse_uint(buf, *_column(fields, rows, 2), 2)
    checks.check(ok & (bits <= 64) & (bits % 8 == 0), 2, "the DLC is not a bit count 0-64 (a multiple of 8)")
    payload, dlc, ok = parse_hex_bytes(buf, *_column(fields, rows, 3))
    checks.check(ok, 3, "the PAYLOAD_HEX is not an even number (0-16) of hex digits")
    checks.check(dlc.astype(np.int64) * 8 == bits, 3, "the payload length does not match DLC/8 bytes")
    label, ok = parse_tokens(buf, *_column(fields, rows, 4), _BOOL)
    checks.check(ok, 4, "the ANOMALY flag is not TRUE or FALSE")
    return _finish(path, checks, malformed, "daga", time, can_id, payload, dlc, label)


def read_road(path: Path, malformed: str = "error", na_frames: str = "drop") -> Frames:
    """ROAD re-processed by StatGraph: decimal `ID,D0..D7,label`, no timestamps."""
    path = Path(path)
    fields = split_delimited(_load(path, "road"))
    rows = _rows(path, fields, "road", None)
    buf = fields.buf
    checks = RowChecks(fields, rows)
    _check_count(checks, fields.nfields[rows], 10)
    can_id, ok = parse_uint(buf, *_column(fields, rows, 0), 9)
    checks.check(ok & (can_id <= MAX_CAN_ID), 0, "the ID is not a decimal CAN ID")
    payload = np.zeros((len(rows), 8), dtype=np.uint8)
    for j in range(8):
        value, ok = parse_uint(buf, *_column(fields, rows, 1 + j), 3)
        checks.check(ok & (value <= 255), 1 + j, "a data byte is not a decimal 0-255")
        payload[:, j] = np.minimum(value, 255)
    label, ok = parse_tokens(buf, *_column(fields, rows, 9), {b"0.0": 0, b"1.0": 1, b"0": 0, b"1": 1})
    checks.check(ok, 9, "the label is not 0.0 or 1.0")
    dlc = np.full(len(rows), 8, dtype=np.int8)
    time = np.zeros(len(rows))
    return _finish(path, checks, malformed, "road", time, can_id, payload, dlc, label, has_time=False)


READERS: dict[str, Callable[..., Frames]] = {
    "can4": read_can4,
    "hcrl_csv": read_hcrl_csv,
    "hcrl_log": read_hcrl_log,
    "daga": read_daga,
    "road": read_road,
    "python_can": read_python_can,  # candump .log, Vector .asc/.blf, .trc (kdgat/data/automotive/canlogs.py)
}


def read_frames(path: Path, fmt: str, malformed: str = "error", na_frames: str = "drop") -> Frames:
    """Read one capture with the named format's reader."""
    if fmt not in READERS:
        raise DataError(f"unknown capture format {fmt!r}; known: {', '.join(READERS)}.")
    if fmt == "can4" and is_python_can_csv(Path(path)):  # python-can's CSV shares the .csv suffix
        fmt = "python_can"
    return READERS[fmt](Path(path), malformed=malformed, na_frames=na_frames)
