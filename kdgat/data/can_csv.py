"""Strict, vectorised reader of the 4-column CAN layout.

`timestamp,arbitration_id,data_field,attack` (header row present), hex arbitration ID, hex
payload of 2*DLC characters (DLC 0..8), attack 0/1; gzip or plain. Used by can-train-and-test
(set_01..04), HCRL Survival (hcrl_sa) and the synthetic generator.

The fast path parses the whole file with pandas' C parser and numpy lookup tables. Any row that
does not fit sends the file through a line-by-line diagnosis that names file:line, the row and
what was expected; the diagnosis only runs on the error path.
"""

import csv
import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd

from kdgat.data.frames import Frames, attack_type_from_name
from kdgat.errors import DataError

HEADER = ("timestamp", "arbitration_id", "data_field", "attack")
EXPECTED_ROW = (
    "expected `timestamp,arbitration_id,data_field,attack`: a decimal timestamp, a hex ID of "
    "1-8 digits, a hex payload of 0-16 digits (an even count) and 0 or 1"
)

_HEX = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _HEX[_c] = 10 + _i


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it is gzip (by magic number, not by name)."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror}.") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise DataError(f"{path}: gzip data is corrupt or truncated ({err}).") from None
    return raw


def _hex_columns(text: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-width bytes array -> (nibbles (n, width) with 255 for bad/padding, lengths)."""
    as_bytes = text.astype(f"S{width}")
    codes = as_bytes.view(np.uint8).reshape(len(text), width)
    lengths = (codes != 0).sum(axis=1)
    return _HEX[codes], lengths


def _parse_hex_ids(values: np.ndarray) -> np.ndarray | None:
    nib, lengths = _hex_columns(values, 8)
    valid = np.arange(8)[None, :] < lengths[:, None]
    if not (lengths >= 1).all() or (nib[valid] == 255).any():
        return None
    nib = np.where(valid, nib, 0).astype(np.int64)
    # Right-align each number: shift by the unused digits.
    weights = 16 ** np.arange(7, -1, -1, dtype=np.int64)
    return (nib * weights).sum(axis=1) // (16 ** (8 - lengths))


def _parse_payloads(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    nib, lengths = _hex_columns(values, 16)
    valid = np.arange(16)[None, :] < lengths[:, None]
    if (lengths % 2).any() or (nib[valid] == 255).any():
        return None
    nib = np.where(valid, nib, 0)
    payload = (nib[:, 0::2] << 4) | nib[:, 1::2]
    return payload.astype(np.uint8), (lengths // 2).astype(np.int8)


def read_can_csv(path: Path) -> Frames:
    """Read one 4-column capture. Raises DataError naming file:line on the first bad row."""
    path = Path(path)
    text = read_bytes(path)
    if not text.strip():
        raise DataError(f"{path}: the file is empty; {EXPECTED_ROW}, after a header line.")
    first_line = text.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")
    if tuple(first_line.split(",")) != HEADER:
        raise DataError(
            f"{path}:1: header {first_line[:120]!r} is not `{','.join(HEADER)}`; this reader "
            f"takes the can-train-and-test / HCRL Survival 4-column layout."
        )
    try:
        table = pd.read_csv(
            io.BytesIO(text),
            dtype=str,
            na_filter=False,
            skip_blank_lines=False,
            quoting=csv.QUOTE_NONE,
            engine="c",
        )
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError):
        raise _diagnose(path, text) from None
    if table.shape[0] == 0:
        raise DataError(f"{path}: header only, no frames; {EXPECTED_ROW}.")
    # Policy: white space around a field is not data. Real captures carry it (set_03
    # fuzzing-3.csv line 19 has a tab after the payload), so it is stripped, not refused.
    for column in HEADER[1:]:
        table[column] = table[column].str.strip()
    try:
        time = pd.to_numeric(table["timestamp"], errors="raise").to_numpy(np.float64)
    except (ValueError, TypeError):
        raise _diagnose(path, text) from None
    attack_text = table["attack"].to_numpy(dtype=str)
    ids = _parse_hex_ids(table["arbitration_id"].to_numpy(dtype=str))
    payload = _parse_payloads(table["data_field"].to_numpy(dtype=str))
    if (
        ids is None
        or payload is None
        or not np.isfinite(time).all()
        or not np.isin(attack_text, ("0", "1")).all()
        or (table["data_field"].str.len() > 16).any()
        or (table["arbitration_id"].str.len() > 8).any()
    ):
        raise _diagnose(path, text)
    return Frames(
        source=path,
        time=time,
        can_id=ids,
        payload=payload[0],
        dlc=payload[1],
        label=(attack_text == "1").astype(np.int8),
        attack_type=attack_type_from_name(path),
    )


def _row_problem(fields: list[str]) -> str | None:
    if len(fields) != 4:
        return f"{len(fields)} field(s) instead of 4"
    stamp, can_id, data, attack = (field.strip() for field in fields)
    try:
        if not np.isfinite(float(stamp)):
            return f"timestamp {stamp!r} is not finite"
    except ValueError:
        return f"timestamp {stamp!r} is not a number"
    if not (1 <= len(can_id) <= 8) or any(c not in "0123456789abcdefABCDEF" for c in can_id):
        return f"arbitration_id {can_id!r} is not 1-8 hex digits"
    if len(data) > 16 or len(data) % 2 or any(c not in "0123456789abcdefABCDEF" for c in data):
        return f"data_field {data!r} is not an even number (0-16) of hex digits"
    if attack not in ("0", "1"):
        return f"attack {attack!r} is not 0 or 1"
    return None


def _diagnose(path: Path, text: bytes) -> DataError:
    """Slow path: find the first bad line and say what is wrong with it."""
    lines = text.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the file's final newline ends the last row; it is not an empty row
    for number, raw_line in enumerate(lines[1:], start=2):
        line = raw_line.rstrip(b"\r")
        try:
            decoded = line.decode("utf-8")
        except UnicodeDecodeError:
            return DataError(f"{path}:{number}: {line[:80]!r} is not text; {EXPECTED_ROW}.")
        problem = _row_problem(decoded.split(","))
        if problem:
            return DataError(f"{path}:{number}: {decoded[:120]!r}: {problem}; {EXPECTED_ROW}.")
    return DataError(f"{path}: could not be parsed as the 4-column layout; {EXPECTED_ROW}.")
