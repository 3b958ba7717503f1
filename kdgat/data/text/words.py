"""Eight text bytes at a time: field parsing on unaligned uint64 loads ("SWAR").

numpy can view a byte buffer as overlapping little-endian uint64 words at every byte offset
(stride 1), so one gather fetches 8 characters of every field, where a per-character loop would
do 8 gathers and 8 passes of arithmetic. Digits are then combined inside each word with three
multiply-shift steps (the classic 8-digit SWAR parse). All functions expect the buffer padded with
at least 16 zero bytes (scan.PAD), so a load past a field's end stays in bounds.
"""

import numpy as np

_ZEROS = np.uint64(0x3030303030303030)  # eight ASCII '0'
_LOW_F = np.uint64(0x0F0F0F0F0F0F0F0F)
_HIGH_F = np.uint64(0xF0F0F0F0F0F0F0F0)
_SIXES = np.uint64(0x0606060606060606)
_THREES = np.uint64(0x3333333333333333)
_LOW_7F = np.uint64(0x7F7F7F7F7F7F7F7F)
_HIGH_80 = np.uint64(0x8080808080808080)
_POW10 = np.array([10**k for k in range(19)], dtype=np.int64)


def word_view(buf: np.ndarray) -> np.ndarray:
    """word_view(buf)[i] = the 8 bytes buf[i:i+8] as a little-endian uint64 (a view, no copy)."""
    return np.ndarray((len(buf) - 7,), dtype="<u8", buffer=buf, offset=0, strides=(1,))


def _keep(count: np.ndarray) -> np.ndarray:
    """Masks of the low `count` bytes of a word (count clipped to 0..8; numpy shifts by >= 64
    give 0, so 8 bytes give all ones)."""
    bits = np.minimum(np.maximum(count, 0), 8).astype(np.uint64) << np.uint64(3)
    return (np.uint64(1) << bits) - np.uint64(1)


def load(words: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Words at byte offsets `at`. Offsets are a field's start + up to 16, inside the padding, or a
    field's end - 8 or - 16, which for the first bytes of a buffer are negative: those wrap to the
    end (valid memory) and the callers reject such rows, so no clamping pass is needed."""
    return words[at]


def _eight_digits(word: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eight ASCII digits (first character in the lowest byte) -> (value 0..99999999, all digits?)."""
    ok = ((word & _HIGH_F) | (((word + _SIXES) & _HIGH_F) >> np.uint64(4))) == _THREES
    v = word - _ZEROS
    v = ((v * np.uint64(10)) + (v >> np.uint64(8))) & np.uint64(0x00FF00FF00FF00FF)
    v = ((v * np.uint64(100)) + (v >> np.uint64(16))) & np.uint64(0x0000FFFF0000FFFF)
    v = ((v * np.uint64(10000)) + (v >> np.uint64(32))) & np.uint64(0x00000000FFFFFFFF)
    return v.astype(np.int64), ok


def _right_aligned(words: np.ndarray, begin: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """The word ending at `stop` (bytes stop-8..stop-1), with bytes before `begin` made '0'."""
    word = load(words, stop - 8)
    mask = _keep(8 - (stop - begin))  # the low bytes that precede the field
    return (word & ~mask) | (_ZEROS & mask)


def digits(words: np.ndarray, begin: np.ndarray, stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decimal digit strings buf[begin:stop] of 0..16 digits -> (int64 value, all digits?).

    An empty string reads as 0 with ok True; callers check lengths. A non-empty string needs
    stop >= 16 (words are loaded from stop - 8 and stop - 16); callers route other rows elsewhere."""
    low, ok = _eight_digits(_right_aligned(words, begin, stop))
    wide = stop - begin > 8
    if not wide.any():
        return low, ok
    high, ok_high = _eight_digits(_right_aligned(words, begin, stop - 8))
    value = np.where(wide, high * 100_000_000 + low, low)
    return value, ok & (ok_high | ~wide)


def _zero_bytes(word: np.ndarray) -> np.ndarray:
    """The high bit of every zero byte of each word, nothing else (exact: no carries between bytes)."""
    t = ((word & _LOW_7F) + _LOW_7F) | word
    return ~t & _HIGH_80


def first_byte(buf: np.ndarray, start: np.ndarray, end: np.ndarray, byte: int) -> np.ndarray:
    """Offset of the first `byte` in each buf[start:end], or `end` where none: one scan of the
    buffer for all its occurrences, then a binary search per field (fields ascend, as in a file,
    so the searches walk the occurrences in order)."""
    where = np.flatnonzero(buf == byte)
    if len(where) == 0:
        return end
    found = where[np.minimum(np.searchsorted(where, start), len(where) - 1)]
    return np.where((found >= start) & (found < end), found, end)


def decimal(
    buf: np.ndarray, words: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`123` / `123.456` with at most 16 digits on each side of the dot and 18 in all, fields
    of 1..24 bytes -> (float64, ok). Rows that are not ok may still be valid in another spelling
    (too long, `9e-06`): the caller retries them with a general parser."""
    length = end - start
    dot = first_byte(buf, start, end, ord("."))
    has_dot = dot < end
    whole, ok_whole = digits(words, start, dot)
    frac_len = np.maximum(end - dot - 1, 0)
    frac, ok_frac = digits(words, dot + 1, np.where(has_dot, end, dot + 1))
    n_digits = (dot - start) + frac_len
    ok = (
        ok_whole
        & ok_frac
        & (length >= 1)
        & (length <= 24)
        & (n_digits >= 1)
        & (n_digits <= 18)
        & (dot - start <= 16)
        & (frac_len <= 16)
        & ((dot == start) | (dot >= 16))  # words are loaded back from a part's end, up to 16 bytes
        & ((frac_len == 0) | (end >= 16))
    )
    value = whole * _POW10[np.minimum(frac_len, 18)] + frac
    return np.where(ok, value / _POW10[np.minimum(frac_len, 18)].astype(np.float64), np.nan), ok


def _rotl(word: np.ndarray, nbytes: int) -> np.ndarray:
    return (word << np.uint64(8 * nbytes)) | (word >> np.uint64(64 - 8 * nbytes))


_ONES = np.uint64(0x0101010101010101)
_LOG2 = np.log2(np.maximum(np.arange(9), 1)).astype(np.float32)
# _PAIR_LOG2[a + 256 b] = log2(a) + log2(b) (log2 0 := 0), summed in float32 as numpy's row sum does.
_PAIR_LOG2 = (
    _LOG2[np.minimum(np.arange(65536) & 255, 8)] + _LOG2[np.minimum(np.arange(65536) >> 8, 8)]
).astype(np.float32)


def byte_entropy(payload: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Shannon entropy (bits) of each row's first `length` bytes, as graphs.payload_entropy, on
    whole rows as uint64 words: for each byte, how many used bytes share its value is counted by
    comparing the word with its byte rotations (4 rotations cover all 7 other bytes, by symmetry)."""
    word = np.ascontiguousarray(payload, dtype=np.uint8).view(np.uint64).reshape(-1)
    used = _keep(length.astype(np.int64))
    count = used & _ONES  # each used byte counts itself
    for k in range(1, 5):
        equal = _zero_bytes(word ^ _rotl(word, k)) & used & _rotl(used, k)  # byte i == byte i-k
        count += equal >> np.uint64(7)
        if k < 4:  # byte i == byte i+k, the same comparison seen from the other byte
            count += _rotl(equal, 8 - k) >> np.uint64(7)
    pairs = count.view(np.uint16).reshape(-1, 4)
    logs = (_PAIR_LOG2[pairs[:, 0]] + _PAIR_LOG2[pairs[:, 1]]) + (
        _PAIR_LOG2[pairs[:, 2]] + _PAIR_LOG2[pairs[:, 3]]
    )
    n = np.maximum(length, 1)
    return _LOG2[n] - logs / n


def byte_entropy_one(payload: bytes, length: int) -> np.float32:
    """byte_entropy of one payload, in plain Python on numpy float32 scalars (the same tables
    and the same float32 operations in the same order, so the same float): for one row the
    vectorised version's ~20 numpy calls cost ~20x more."""
    used = payload[: min(max(length, 0), 8)]
    count = [used.count(b) for b in used] + [0] * (8 - len(used))
    p = _PAIR_LOG2
    logs = (p[count[0] + 256 * count[1]] + p[count[2] + 256 * count[3]]) + (
        p[count[4] + 256 * count[5]] + p[count[6] + 256 * count[7]]
    )
    n = max(length, 1)
    return _LOG2[n] - logs / np.float32(n)


def _spread(value: int) -> np.uint64:
    return np.uint64(value * 0x0101010101010101)


def _hex_lanes(word: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hex digits in every byte -> (nibble values 0-15 per byte, high bit set per byte that is not
    a hex digit). Range tests on 7-bit bytes carry into no neighbour; case folded by | 0x20."""
    low7 = word & _LOW_7F
    folded = low7 | _spread(0x20)
    digit = (low7 + _spread(0x80 - 0x30)) & ~(low7 + _spread(0x7F - 0x39))
    letter = (folded + _spread(0x80 - 0x61)) & ~(folded + _spread(0x7F - 0x66))
    bad = ~((digit | letter) & ~word) & _HIGH_80  # ~word: a byte >= 0x80 is never a digit
    nibbles = (word & _LOW_F) + np.uint64(9) * ((word >> np.uint64(6)) & _ONES)
    return nibbles, bad


def _fill(word: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Keep the low `count` bytes of each word, the others become '0'."""
    keep = _keep(count)
    return (word & keep) | (_ZEROS & ~keep)


def hex_bytes(words: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hex payloads of 0..16 digits, two per byte -> (uint8 (n, 8) zero-padded, digits all hex?).
    Length rules (even, at most 16) are the caller's."""
    length = end - start
    halves = []
    ok = np.ones(len(start), dtype=bool)
    for k in (0, 8):
        nibbles, bad = _hex_lanes(_fill(load(words, start + k), length - k))
        ok &= bad == 0
        pairs = ((nibbles << np.uint64(4)) | (nibbles >> np.uint64(8))) & np.uint64(0x00FF00FF00FF00FF)
        pairs = (pairs | (pairs >> np.uint64(8))) & np.uint64(0x0000FFFF0000FFFF)
        halves.append((pairs | (pairs >> np.uint64(16))) & np.uint64(0xFFFFFFFF))
    payload = halves[0] | (halves[1] << np.uint64(32))
    return payload.view(np.uint8).reshape(-1, 8), ok


def hex_number(words: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hex numbers of 1..8 digits ending at byte 8 or later -> (int64, ok); rows outside those
    bounds are not ok and left to the caller."""
    length = end - start
    nibbles, bad = _hex_lanes(_right_aligned(words, start, end))
    v = ((nibbles << np.uint64(4)) | (nibbles >> np.uint64(8))) & np.uint64(0x00FF00FF00FF00FF)
    v = ((v << np.uint64(8)) | (v >> np.uint64(16))) & np.uint64(0x0000FFFF0000FFFF)
    v = ((v << np.uint64(16)) | (v >> np.uint64(32))) & np.uint64(0xFFFFFFFF)
    ok = (bad == 0) & (length >= 1) & (length <= 8) & (end >= 8)
    return np.where(ok, v.astype(np.int64), 0), ok


def tokens(
    words: np.ndarray, start: np.ndarray, end: np.ndarray, table: dict[bytes, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Fields equal to one of `table`'s tokens (each at most 8 bytes) -> (mapped int64, ok)."""
    length = end - start
    key = load(words, start) & _keep(length)
    value = np.zeros(len(start), dtype=np.int64)
    ok = np.zeros(len(start), dtype=bool)
    for token, mapped in table.items():
        hit = (key == np.uint64(int.from_bytes(token, "little"))) & (length == len(token))
        value[hit] = mapped
        ok |= hit
    return value, ok
