"""Vectorised text scanning: raw bytes -> rows -> fields -> typed columns, with per-row validity.

Every reader is built from these pieces. A file is read as one numpy uint8 array; lines, delimiters
and field boundaries are found with `flatnonzero`/`searchsorted`, and each column is parsed for
all rows at once from a fixed-width byte matrix (no Python loop per row). Each parser returns the
values and a boolean `ok` per row; what a reader does with the rows that fail (kdgat/data/text/row_checks.py:
stop at file:line, or drop and count them) is not this module's job. Only rows that fail the fast decimal
parser (e.g. exponent notation like `9e-06`) are retried one by one with Python's float().
"""

import dataclasses
import zlib
from pathlib import Path

import numpy as np

# ISA-L's inflate is about 2x zlib's on these captures (isal is in requirements.txt).
from isal import igzip as _gunzip
from isal import isal_zlib

from kdgat.common.errors import DataError
from kdgat.data.text import words

# isal's stub declares `error: Exception` (an instance); at run time it is the exception class.
_GzipError: type[Exception] = isal_zlib.error  # type: ignore[assignment]

_HEX = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _HEX[_c] = 10 + _i
_SPACE = np.zeros(256, dtype=bool)
_SPACE[[ord(" "), ord("\t"), ord("\r")]] = True
_POW10 = np.array([10**k for k in range(19)], dtype=np.int64)
_POW10_F = _POW10.astype(np.float64)


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it is gzip (by magic number, not by name), less a UTF-8 BOM."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file.")
    if path.is_dir():
        raise DataError(f"{path} is a folder, expected a capture file.")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror}.") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = _gunzip.decompress(raw)
        except (OSError, EOFError, zlib.error, _GzipError) as err:
            raise DataError(f"{path}: gzip data is corrupt or truncated ({err}).") from None
    return raw.removeprefix(b"\xef\xbb\xbf")  # spreadsheets' "CSV UTF-8"; no line number moves


@dataclasses.dataclass
class Fields:
    """Tokenised text. Line i spans buf[line_start[i]:line_end[i]] (no newline, no trailing CR);
    its fields are fstart/fend[foff[i] : foff[i] + nfields[i]]. `width` > 0 when every line has
    exactly that many fields: `delims` then holds the (lines, width - 1) delimiter offsets, and
    fstart/fend (a flattened (lines, width) matrix) are only built if something asks for them."""

    buf: np.ndarray
    line_start: np.ndarray
    line_end: np.ndarray
    foff: np.ndarray
    nfields: np.ndarray
    width: int = 0
    delims: np.ndarray | None = None
    starts: np.ndarray | None = None
    ends: np.ndarray | None = None

    @property
    def fstart(self) -> np.ndarray:
        if self.starts is None:
            self.starts, self.ends = self._from_delims()
        return self.starts

    @property
    def fend(self) -> np.ndarray:
        if self.ends is None:
            self.starts, self.ends = self._from_delims()
        return self.ends

    def _from_delims(self) -> tuple[np.ndarray, np.ndarray]:
        """(fstart, fend) from the delimiter offsets (fixed-width lines)."""
        if self.delims is None:
            raise ValueError("Fields has neither field offsets nor delimiter offsets")
        lines, width = len(self.line_start), self.width
        starts = np.empty((lines, width), dtype=np.int64)
        ends = np.empty((lines, width), dtype=np.int64)
        starts[:, 0] = self.line_start
        starts[:, 1:] = self.delims + 1
        ends[:, :-1] = self.delims
        ends[:, -1] = self.line_end
        return starts.reshape(-1), ends.reshape(-1)

    def __len__(self) -> int:
        return len(self.line_start)

    def line_text(self, i: int) -> str:
        return bytes(self.buf[self.line_start[i] : self.line_end[i]]).decode("utf-8", "replace")

    def field(self, j: int | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(start, end) of field j of every line; lines with fewer fields get an empty field."""
        if self.width and isinstance(j, int) and 0 <= j < self.width:  # no gather
            if self.starts is not None or self.delims is None:  # strided views
                return self.fstart[j :: self.width], self.fend[j :: self.width]
            start = self.line_start if j == 0 else self.delims[:, j - 1] + 1
            end = self.line_end if j == self.width - 1 else self.delims[:, j]
            return start, end
        has = self.nfields > j
        index = np.where(has, self.foff + np.minimum(j, self.nfields - 1), 0)
        if len(self.fstart) == 0:
            zero = np.zeros(len(self), dtype=np.int64)
            return zero, zero
        start = np.where(has, self.fstart[index], 0)
        end = np.where(has, self.fend[index], 0)
        return start, end

    def field_text(self, i: int, j: int) -> str:
        if self.nfields[i] <= j:
            return ""
        k = self.foff[i] + j
        return bytes(self.buf[self.fstart[k] : self.fend[k]]).decode("utf-8", "replace")


PAD = 64  # zero bytes after the text, so that fixed-width reads past a field stay in bounds


def _lines(text: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not text.endswith(b"\n"):
        text = text + b"\n"
    buf = np.zeros(len(text) + PAD, dtype=np.uint8)
    buf[: len(text)] = np.frombuffer(text, dtype=np.uint8)
    newline = np.flatnonzero(buf[: len(text)] == 10)
    line_start = np.concatenate([[0], newline[:-1] + 1]).astype(np.int64)
    line_end = newline.astype(np.int64)
    has_cr = (line_end > line_start) & (buf[np.maximum(line_end - 1, 0)] == 13)
    return buf, line_start, line_end - has_cr


def split_delimited(text: bytes, delimiter: bytes = b",", strip: bool = True) -> Fields:
    """Lines split at every delimiter (empty fields kept); white space around fields trimmed."""
    buf, line_start, line_end = _lines(text)
    delim = np.flatnonzero(buf[: len(buf) - PAD] == delimiter[0])
    fields = _uniform_fields(buf, line_start, line_end, delim)
    if fields is None:
        fields = _ragged_fields(buf, line_start, line_end, delim)
    if strip:
        _trim_blank_lines(text, fields)
    return fields


def _uniform_fields(
    buf: np.ndarray, line_start: np.ndarray, line_end: np.ndarray, delim: np.ndarray
) -> Fields | None:
    """Fast path for the usual file where every line has the same number of delimiters: the
    delimiters then reshape to a (lines, fields - 1) matrix, no search per delimiter. None when
    the count or the placement says otherwise (checked: the first and last delimiter of every
    line lie inside it, and delimiters are sorted, so each line holds exactly its row)."""
    lines = len(line_start)
    if lines == 0 or len(delim) % lines:
        return None
    per_line = len(delim) // lines
    if per_line == 0:
        return None
    matrix = delim.reshape(lines, per_line)
    if not ((matrix[:, 0] >= line_start).all() and (matrix[:, -1] < line_end).all()):
        return None
    nfields = np.full(lines, per_line + 1, dtype=np.int64)
    foff = np.arange(0, lines * (per_line + 1), per_line + 1, dtype=np.int64)
    return Fields(buf, line_start, line_end, foff, nfields, width=per_line + 1, delims=matrix)


def _ragged_fields(
    buf: np.ndarray, line_start: np.ndarray, line_end: np.ndarray, delim: np.ndarray
) -> Fields:
    line_of = np.searchsorted(line_end, delim)  # line_end sorted; a delimiter sits before its line's end
    inside = delim < line_end[np.minimum(line_of, len(line_end) - 1)]  # not in a stripped CR slot
    delim, line_of = delim[inside], line_of[inside]
    count = np.bincount(line_of, minlength=len(line_start)).astype(np.int64)
    nfields = count + 1
    foff = np.cumsum(nfields) - nfields
    total = int(nfields.sum())
    fstart = np.empty(total, dtype=np.int64)
    fend = np.empty(total, dtype=np.int64)
    k = np.arange(len(delim), dtype=np.int64)
    fstart[foff] = line_start
    fstart[k + line_of + 1] = delim + 1
    fend[k + line_of] = delim
    fend[foff + count] = line_end
    return Fields(buf, line_start, line_end, foff, nfields, starts=fstart, ends=fend)


def split_whitespace(text: bytes) -> Fields:
    """Lines split into runs of non-blank characters (spaces and tabs separate fields)."""
    buf, line_start, line_end = _lines(text)
    text_part = buf[: len(buf) - PAD]
    blank = _SPACE[text_part] | (text_part == 10)
    prev_blank = np.concatenate([[True], blank[:-1]])
    next_blank = np.concatenate([blank[1:], [True]])
    fstart = np.flatnonzero(~blank & prev_blank).astype(np.int64)
    fend = np.flatnonzero(~blank & next_blank).astype(np.int64) + 1
    line_of = np.searchsorted(line_end, fstart)
    nfields = np.bincount(line_of, minlength=len(line_start)).astype(np.int64)
    foff = np.cumsum(nfields) - nfields
    return Fields(buf, line_start, line_end, foff, nfields, starts=fstart, ends=fend)


def _trim_blank_lines(text: bytes, fields: Fields) -> None:
    """Strip blanks around the fields of the lines that contain any (usually none: one byte
    search of the text, instead of inspecting both ends of every field)."""
    if b" " not in text and b"\t" not in text and b"\r" not in text:
        return
    buf = fields.buf
    blank = np.flatnonzero(_SPACE[buf[: len(buf) - PAD]])
    line_of = np.searchsorted(fields.line_start, blank, side="right") - 1
    inside = (line_of >= 0) & (blank < fields.line_end[np.maximum(line_of, 0)])  # not a line's CR
    lines = np.unique(line_of[inside])
    if len(lines) == 0:
        return
    counts = fields.nfields[lines]
    index = np.repeat(fields.foff[lines] - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
    start, end = fields.fstart[index], fields.fend[index]
    trim_blanks(buf, start, end)
    fields.fstart[index], fields.fend[index] = start, end


def trim_blanks(buf: np.ndarray, start: np.ndarray, end: np.ndarray) -> None:
    """Strip blanks at both ends of every field, in place (loops over blank count, not rows)."""
    if len(start) == 0:
        return
    while True:
        move = (start < end) & _SPACE[buf[np.minimum(start, len(buf) - 1)]]
        if not move.any():
            break
        start += move
    while True:
        move = (start < end) & _SPACE[buf[np.maximum(end - 1, 0)]]
        if not move.any():
            break
        end -= move


def gather(buf: np.ndarray, start: np.ndarray, end: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, width) matrix of each field's bytes (0 past its end) and the field lengths."""
    length = end - start
    cols = np.arange(width, dtype=np.int64)
    index = np.minimum(start[:, None] + cols[None, :], len(buf) - 1)
    mat = buf[index]
    mat[cols[None, :] >= length[:, None]] = 0
    return mat, length


def distinct_fields(
    buf: np.ndarray, start: np.ndarray, end: np.ndarray, max_len: int
) -> tuple[list[bytes], np.ndarray, np.ndarray]:
    """The distinct texts of a column (sorted), each row's index into them, and ok = the field
    is 1..max_len bytes long. One (rows, width) byte matrix and np.unique, no loop per row."""
    length = end - start
    ok = (length >= 1) & (length <= max_len)
    width = max(1, min(max_len, int(length.max(initial=1))))
    mat, _ = gather(buf, start, np.minimum(end, start + width), width)
    mat[~ok] = 0
    text = np.ascontiguousarray(mat).view(f"S{width}").reshape(-1)
    values, inverse = np.unique(text, return_inverse=True)
    return [bytes(v) for v in values.tolist()], inverse.reshape(-1).astype(np.int64), ok


def _char(buf: np.ndarray, start: np.ndarray, c: int) -> np.ndarray:
    """Byte c of every field (garbage past a field's end: callers mask with the length)."""
    if _padded(buf):  # padded by _lines: no bounds check needed
        return buf[start + c]
    return buf[np.minimum(start + c, len(buf) - 1)]


def parse_hex(
    buf: np.ndarray, start: np.ndarray, end: np.ndarray, max_digits: int
) -> tuple[np.ndarray, np.ndarray]:
    """Hex numbers of 1..max_digits digits -> (int64 values, ok); eight digits at a time
    (kdgat/data/text/words.py), rows it cannot take (bad, or near the buffer's start) per digit."""
    if max_digits > 8 or not _padded(buf) or len(start) == 0:
        return _parse_hex_chars(buf, start, end, max_digits)
    value, ok = words.hex_number(words.word_view(buf), start, end)
    ok &= end - start <= max_digits
    rest = np.flatnonzero(~ok)
    if len(rest):
        value[rest], ok[rest] = _parse_hex_chars(buf, start[rest], end[rest], max_digits)
    return value, ok


def _parse_hex_chars(
    buf: np.ndarray, start: np.ndarray, end: np.ndarray, max_digits: int
) -> tuple[np.ndarray, np.ndarray]:
    """Hex numbers of 1..max_digits digits -> (int64 values, ok). Loops over digit columns."""
    length = end - start
    width = max(1, min(max_digits, int(length.max(initial=1))))
    value = np.zeros(len(start), dtype=np.int64)
    ok = (length >= 1) & (length <= max_digits)
    for c in range(width):
        inside = c < length
        nib = _HEX[_char(buf, start, c)]
        ok &= (nib != 255) | ~inside
        value = np.where(inside, (value << 4) | (nib & 15), value)
    return np.where(ok, value, 0), ok


def parse_hex_bytes(
    buf: np.ndarray, start: np.ndarray, end: np.ndarray, max_bytes: int = 8
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hex payload strings of 2*k digits (k = 0..max_bytes) -> (uint8 (n, 8), k, ok); sixteen
    digits in two word loads (kdgat/data/text/words.py), rows that fail again per digit pair."""
    if max_bytes != 8 or not _padded(buf) or len(start) == 0:
        return _parse_hex_bytes_chars(buf, start, end, max_bytes)
    length = end - start
    payload, ok = words.hex_bytes(words.word_view(buf), start, end)
    ok &= (length <= 16) & (length % 2 == 0)
    rest = np.flatnonzero(~ok)
    if len(rest):
        payload[rest], _, ok[rest] = _parse_hex_bytes_chars(buf, start[rest], end[rest], max_bytes)
    return payload, (length // 2).astype(np.int8), ok


def _parse_hex_bytes_chars(
    buf: np.ndarray, start: np.ndarray, end: np.ndarray, max_bytes: int = 8
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hex payload strings of 2*k digits (k = 0..max_bytes) -> (uint8 (n, 8), k, ok)."""
    length = end - start
    ok = (length <= 2 * max_bytes) & (length % 2 == 0)
    payload = np.zeros((len(start), 8), dtype=np.uint8)
    for k in range(min(max_bytes, (int(length.max(initial=0)) + 1) // 2)):
        inside = 2 * k < length
        high = _HEX[_char(buf, start, 2 * k)]
        low = _HEX[_char(buf, start, 2 * k + 1)]
        ok &= ((high != 255) & (low != 255)) | ~inside
        payload[:, k] = np.where(inside, (high << 4) | (low & 15), 0)
    return payload, (length // 2).astype(np.int8), ok


def parse_uint(
    buf: np.ndarray, start: np.ndarray, end: np.ndarray, max_digits: int
) -> tuple[np.ndarray, np.ndarray]:
    """Decimal integers of 1..max_digits digits -> (int64, ok); eight digits per word
    (kdgat/data/text/words.py), rows it rejects (or near the buffer's start) one digit at a time."""
    if max_digits > 16 or not _padded(buf) or len(start) == 0:
        return _parse_uint_chars(buf, start, end, max_digits)
    length = end - start
    value, ok = words.digits(words.word_view(buf), start, end)
    ok &= (length >= 1) & (length <= max_digits) & (end >= 16)
    rest = np.flatnonzero(~ok)
    if len(rest):
        value[rest], ok[rest] = _parse_uint_chars(buf, start[rest], end[rest], max_digits)
    return np.where(ok, value, 0), ok


def _parse_uint_chars(
    buf: np.ndarray, start: np.ndarray, end: np.ndarray, max_digits: int
) -> tuple[np.ndarray, np.ndarray]:
    """Decimal integers of 1..max_digits digits -> (int64, ok)."""
    length = end - start
    width = max(1, min(max_digits, int(length.max(initial=1))))
    value = np.zeros(len(start), dtype=np.int64)
    ok = (length >= 1) & (length <= max_digits)
    for c in range(width):
        inside = c < length
        digit = _char(buf, start, c) - np.uint8(48)  # wraps past 9 for non-digits
        ok &= (digit < 10) | ~inside
        value = np.where(inside, value * 10 + digit, value)
    return np.where(ok, value, 0), ok


def parse_decimal(
    buf: np.ndarray, start: np.ndarray, end: np.ndarray, max_chars: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative decimal numbers `123`, `123.456` (up to 18 digits) -> (float64, ok); other
    spellings (`9e-06`) go through Python float() row by row. Agrees with float() to ~1 ulp.

    Eight characters at a time (kdgat/data/text/words.py) where the field allows it; the rest (long,
    near the buffer's start, or another spelling) through the per-character parser."""
    if not _padded(buf) or len(start) == 0:
        return _parse_decimal_chars(buf, start, end, max_chars)
    result, ok = words.decimal(buf, words.word_view(buf), start, end)
    ok &= end - start <= max_chars
    rest = np.flatnonzero(~ok)
    if len(rest):
        result[rest], ok[rest] = _parse_decimal_chars(buf, start[rest], end[rest], max_chars)
    return result, ok


def _padded(buf: np.ndarray) -> bool:
    return len(buf) > PAD and not buf[-PAD:].any()


def _parse_decimal_chars(
    buf: np.ndarray, start: np.ndarray, end: np.ndarray, max_chars: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """parse_decimal one character column at a time (any field length and position)."""
    length = end - start
    width = max(1, min(max_chars, int(length.max(initial=1))))
    value = np.zeros(len(start), dtype=np.int64)
    n_frac = np.zeros(len(start), dtype=np.int64)
    n_digits = np.zeros(len(start), dtype=np.int64)
    dots = np.zeros(len(start), dtype=np.int64)
    ok = (length >= 1) & (length <= max_chars)
    for c in range(width):
        inside = c < length
        char = _char(buf, start, c)
        digit = char - np.uint8(48)
        is_digit = (digit < 10) & inside
        is_dot = (char == 46) & inside
        ok &= is_digit | is_dot | ~inside
        n_frac += is_digit & (dots > 0)
        n_digits += is_digit
        dots += is_dot
        value = np.where(is_digit, value * 10 + digit, value)
    ok &= (dots <= 1) & (n_digits >= 1) & (n_digits <= 18)
    result = value / _POW10_F[np.minimum(n_frac, 18)]
    result = np.where(ok, result, np.nan)
    retry = np.flatnonzero(~ok & (length >= 1) & (length <= max_chars))
    for i in retry.tolist():
        text = bytes(buf[start[i] : end[i]])
        try:
            number = float(text)
        except ValueError:
            continue
        if np.isfinite(number):
            result[i] = number
            ok[i] = True
    return result, ok


def parse_tokens(
    buf: np.ndarray, start: np.ndarray, end: np.ndarray, tokens: dict[bytes, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Fields equal to one of `tokens` -> (mapped int64, ok)."""
    if max(len(t) for t in tokens) <= 8 and _padded(buf):  # one word load per field
        return words.tokens(words.word_view(buf), start, end, tokens)
    width = max(len(t) for t in tokens)
    length = end - start
    mat, _ = gather(buf, start, np.minimum(end, start + width), width)
    text = np.ascontiguousarray(mat).view(f"S{width}").reshape(-1)
    value = np.zeros(len(start), dtype=np.int64)
    ok = np.zeros(len(start), dtype=bool)
    for token, mapped in tokens.items():
        hit = (text == token) & (length == len(token))
        value[hit] = mapped
        ok |= hit
    return value, ok
