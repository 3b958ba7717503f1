"""Strict, vectorised reader of CICFlowMeter CSV flows (CIC-IDS2017, the "improved" release).

The layout a file must have is a `Variant`: its columns, label vocabulary and timestamp form.
CIC-IDS2017 is the one here; DAPT2020 (kdgat/data/internet/dapt2020.py) is another.
A header row names the columns (91 in the improved CIC-IDS2017; the original release's column
names are accepted too, e.g. `Source IP` for `Src IP`, but its `7/7/2017 8:59` timestamps are not:
they are local times without seconds), then one flow per row with exactly as many fields.
Used columns: Src IP, Src Port, Dst IP, Dst Port, Protocol (IANA number), Timestamp
(`YYYY-MM-DD HH:MM:SS[.ffffff]`, capture local time as released), Flow Duration (microseconds),
the forward/backward packet counts and byte totals, and Label: BENIGN or one of the CIC-IDS2017
attack names (optionally with the improved release's ` - Attempted` suffix), which is the
attack type. Any other label is refused: a typo must not become a new attack class.
"""

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from kdgat.common.errors import DataError
from kdgat.data.internet.flows import BENIGN, OTHER_PROTOCOL, Flows, host_flags, sort_by_time
from kdgat.data.text.row_checks import RowChecks, resolve_bad_rows
from kdgat.data.text.scan import (
    Fields,
    distinct_fields,
    gather,
    parse_decimal,
    parse_uint,
    read_bytes,
    split_delimited,
    trim_blanks,
)

# Column used -> the names it has in the improved and the original CIC-IDS2017 CSVs (DAPT2020
# uses the improved names).
COLUMNS: dict[str, tuple[str, ...]] = {
    "src": ("Src IP", "Source IP"),
    "src_port": ("Src Port", "Source Port"),
    "dst": ("Dst IP", "Destination IP"),
    "dst_port": ("Dst Port", "Destination Port"),
    "protocol": ("Protocol",),
    "timestamp": ("Timestamp",),
    "duration": ("Flow Duration",),
    "fwd_pkts": ("Total Fwd Packet", "Total Fwd Packets"),
    "bwd_pkts": ("Total Bwd packets", "Total Backward Packets"),
    "fwd_bytes": ("Total Length of Fwd Packet", "Total Length of Fwd Packets"),
    "bwd_bytes": ("Total Length of Bwd Packet", "Total Length of Bwd Packets"),
}
ATTACKS = (
    "Botnet",
    "Bot",
    "DDoS",
    "DoS GoldenEye",
    "DoS Hulk",
    "DoS Slowhttptest",
    "DoS Slowloris",
    "FTP-Patator",
    "SSH-Patator",
    "Heartbleed",
    "Infiltration",
    "Infiltration - Portscan",
    "Portscan",
    "Web Attack - Brute Force",
    "Web Attack - SQL Injection",
    "Web Attack - XSS",
)
_KEY = {re.sub(r"[^a-z0-9]+", "", name.lower()): name for name in ATTACKS}
_ATTEMPTED = " - attempted"
IANA = {6: 0, 17: 1, 1: 2}  # tcp, udp, icmp


@dataclasses.dataclass(frozen=True)
class Variant:
    """What one CICFlowMeter release's CSV looks like."""

    name: str
    labels: tuple[str, ...]
    """Header names of the label columns, in the order `attack` takes their texts."""
    attack: Callable[[tuple[str, ...]], str | None]
    """The row's label texts -> BENIGN, an attack type, or None (refused)."""
    vocabulary: str
    """The accepted labels, in words, for errors."""
    timestamps: Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
    """(buf, start, end) of the Timestamp fields -> (POSIX seconds as written, ok)."""
    timestamp_form: str
    header: tuple[str, ...] | None = None
    """The release's full header, for files written without one (None: a header is required)."""

    @property
    def expected(self) -> str:
        return (
            f"expected a {self.name} CICFlowMeter CSV row: as many comma-separated fields as the "
            f"header, IP addresses, ports 0-65535, a protocol number, a timestamp "
            f"{self.timestamp_form}, non-negative whole durations, counts and byte totals, and a "
            f"label {self.vocabulary}"
        )


def attack_name(label: str) -> str | None:
    """BENIGN -> 'benign'; a known attack (any case, spacing or dash) -> its name; else None."""
    text = label.strip()
    attempted = text.lower().endswith(_ATTEMPTED)
    if attempted:
        text = text[: -len(_ATTEMPTED)]
    if text.lower() == "benign":
        return None if attempted else BENIGN
    name = _KEY.get(re.sub(r"[^a-z0-9]+", "", text.lower()))
    if name is None:
        return None
    name = "Botnet" if name == "Bot" else name
    return f"{name} - Attempted" if attempted else name


def _columns(path: Path, names: list[str], variant: Variant) -> dict[str, int]:
    wanted = {**COLUMNS, **{label: (label,) for label in variant.labels}}
    found = {}
    for key, spellings in wanted.items():
        at = [names.index(s) for s in spellings if s in names]
        if not at:
            raise DataError(
                f"{path}:1: the header has no {' / '.join(spellings)!r} column; a {variant.name} "
                f"CICFlowMeter CSV needs {', '.join(s[0] for s in wanted.values())}."
            )
        found[key] = at[0]
    return found


def _whole_numbers(buf: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative whole numbers written `123` or `123.0` (DAPT2020 writes byte totals as floats)."""
    value, ok = parse_uint(buf, start, end, 15)
    value = value.astype(np.float64)
    rest = np.flatnonzero(~ok)
    if len(rest):
        begin, stop = start[rest], end[rest]
        number, fine = parse_decimal(buf, begin, stop)
        chars, _ = gather(buf, begin, np.minimum(stop, begin + 24), 24)
        plain = np.isin(chars, np.frombuffer(b"0123456789.\0", dtype=np.uint8)).all(axis=1)
        fine &= plain & (stop - begin <= 24) & (number == np.floor(number)) & (number < 1e15)
        value[rest], ok[rest] = np.where(fine, number, 0.0), fine
    return value, ok


def _timestamps(buf: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`YYYY-MM-DD HH:MM:SS[.ffffff]` -> (POSIX seconds as written, ok)."""
    width = 26
    mat, length = gather(buf, start, np.minimum(end, start + width), width)
    digits = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
    ok = (length == 19) | ((length >= 21) & (length <= 26) & (mat[:, 19] == ord(".")))
    ok &= (end - start) <= width
    for j, c in ((4, "-"), (7, "-"), (13, ":"), (16, ":")):
        ok &= mat[:, j] == ord(c)
    ok &= (mat[:, 10] == ord(" ")) | (mat[:, 10] == ord("T"))
    ok &= ((mat[:, digits] >= ord("0")) & (mat[:, digits] <= ord("9"))).all(axis=1)
    seconds = np.zeros(len(start))
    if ok.any():
        text = np.ascontiguousarray(mat[ok]).view(f"S{width}").reshape(-1)
        try:
            stamp = text.astype("datetime64[us]")
        except ValueError:  # a month 13 or a 30 February: find the rows one at a time
            stamp = np.array([_one(t) for t in text.tolist()], dtype="datetime64[us]")
        good = ~np.isnat(stamp)
        seconds[ok] = np.where(good, stamp.astype(np.int64) / 1e6, 0.0)
        ok[np.flatnonzero(ok)[~good]] = False
    return seconds, ok


def _one(text: bytes) -> np.datetime64:
    try:
        return np.datetime64(text.decode(), "us")
    except ValueError:
        return np.datetime64("NaT")


CICIDS2017 = Variant(
    name="CIC-IDS2017",
    labels=("Label",),
    attack=lambda texts: attack_name(texts[0]),
    vocabulary="BENIGN or a CIC-IDS2017 attack (" + ", ".join(ATTACKS[:4]) + ", ...)",
    timestamps=_timestamps,
    timestamp_form="YYYY-MM-DD HH:MM:SS[.ffffff]",
)


def _data_rows(path: Path, fields: Fields, variant: Variant) -> tuple[list[str], np.ndarray]:
    """(column names, line indices of the flows): the header's, or the variant's for a file
    written without one, recognised by a first row that is a flow of this release."""
    names = [fields.field_text(0, j).strip() for j in range(int(fields.nfields[0]))]
    if "Timestamp" in names or variant.header is None:  # a header names its Timestamp column
        return names, np.arange(1, len(fields), dtype=np.int64)
    at = variant.header.index("Timestamp")
    if len(names) == len(variant.header):
        start, end = fields.field(at)
        _, ok = variant.timestamps(fields.buf, start[:1].copy(), end[:1].copy())
        if ok[0]:
            return list(variant.header), np.arange(0, len(fields), dtype=np.int64)
    raise DataError(
        f"{path}:1: {fields.line_text(0)[:120]!r}: neither a header naming the columns (with a "
        f"Timestamp column) nor a {variant.name} flow written without a header ({len(variant.header)} "
        f"fields, field {at + 1} a timestamp {variant.timestamp_form}); {variant.expected}."
    )


def _label_codes(
    buf: np.ndarray,
    col: Callable[[str], tuple[np.ndarray, np.ndarray]],
    column: dict[str, int],
    checks: RowChecks,
    variant: Variant,
) -> tuple[np.ndarray, list[tuple[str, ...]], list[str | None]]:
    """Per row: index into the distinct label tuples, the tuples as written, their attack names."""
    combined = np.zeros(len(checks.rows), dtype=np.int64)
    tables = []
    for key in variant.labels:
        texts, inverse, ok = distinct_fields(buf, *col(key), 80)
        checks.check(ok, column[key], "the label is empty or longer than 80 characters")
        combined = combined * len(texts) + inverse
        tables.append([t.decode("utf-8", "replace") for t in texts])
    codes, of = np.unique(combined, return_inverse=True)
    written = []
    for code in codes.tolist():
        parts = []
        for table in reversed(tables):
            code, index = divmod(code, len(table))
            parts.append(table[index])
        written.append(tuple(reversed(parts)))
    return of.reshape(-1), written, [variant.attack(t) for t in written]


def read_cicflowmeter(path: Path, malformed: str = "error", variant: Variant = CICIDS2017) -> Flows:
    """One CICFlowMeter CSV; DataError names file:line, the row and what was expected."""
    path = Path(path)
    expected = variant.expected
    text = read_bytes(path)
    if not text or text.isspace():
        raise DataError(f"{path}: the file is empty; {expected}.")
    # Blanks are trimmed from the used columns only: every row has one inside its Timestamp, so
    # trimming while splitting would visit all 91 fields of every row (half the read time).
    fields = split_delimited(text, b",", strip=False)
    names, rows = _data_rows(path, fields, variant)
    column = _columns(path, names, variant)
    if len(rows) == 0:
        raise DataError(f"{path}: header only, no flows; {expected}.")
    buf = fields.buf
    checks = RowChecks(fields, rows)
    checks.check(fields.nfields[rows] == len(names), None, f"expected {len(names)} fields, as in the header")

    def col(key: str) -> tuple[np.ndarray, np.ndarray]:
        start, end = fields.field(column[key])
        start, end = start[rows], end[rows]  # copies: trimming them leaves the table as read
        trim_blanks(buf, start, end)  # the original CIC-IDS2017 CSVs pad their fields
        return start, end

    ends = []
    for key in ("src", "dst"):
        values, inverse, ok = distinct_fields(buf, *col(key), 64)
        checks.check(ok, column[key], "the address is empty or too long")
        ends.append((values, inverse))
    table = sorted(set(ends[0][0]) | set(ends[1][0]))
    position = {value: i for i, value in enumerate(table)}
    src, dst = (
        np.asarray([position[v] for v in values], dtype=np.int64)[inverse] for values, inverse in ends
    )
    flags, bad = host_flags([v.decode("utf-8", "replace") for v in table])
    bad_host = np.zeros(len(table), dtype=bool)
    bad_host[bad] = True
    checks.check(~bad_host[src], column["src"], "the address is not an IPv4 or IPv6 address")
    checks.check(~bad_host[dst], column["dst"], "the address is not an IPv4 or IPv6 address")
    ports = {}
    for key in ("src_port", "dst_port"):
        value, ok = parse_uint(buf, *col(key), 5)
        checks.check(ok & (value <= 65535), column[key], "the port is not 0-65535")
        ports[key] = value.astype(np.int32)
    protocol, ok = parse_uint(buf, *col("protocol"), 3)
    checks.check(ok & (protocol <= 255), column["protocol"], "the protocol is not an IANA number 0-255")
    proto = np.full(len(rows), OTHER_PROTOCOL, dtype=np.int8)
    for number, proto_code in IANA.items():
        proto[protocol == number] = proto_code
    time, ok = variant.timestamps(buf, *col("timestamp"))
    checks.check(ok, column["timestamp"], f"the timestamp is not {variant.timestamp_form}")
    numbers = {}
    for key in ("duration", "fwd_pkts", "bwd_pkts", "fwd_bytes", "bwd_bytes"):
        numbers[key], ok = _whole_numbers(buf, *col(key))
        checks.check(ok, column[key], f"the {names[column[key]]} is not a non-negative whole number")
    label_of, written, known_names = _label_codes(buf, col, column, checks, variant)
    known = np.array([n is not None for n in known_names], dtype=bool)
    checks.check(known[label_of], column[variant.labels[-1]], f"the label is not {variant.vocabulary}")

    skipped = resolve_bad_rows(path, checks, malformed, expected)
    good = checks.good
    attack_names = [BENIGN, *sorted({n for n in known_names if n and n != BENIGN})]
    code = np.array([attack_names.index(n) if n else 0 for n in known_names], dtype=np.int16)
    attack = code[label_of]
    names_of, counts_of = np.unique(label_of[good], return_counts=True)
    flows = Flows(
        source=path,
        time=time,
        src=src,
        dst=dst,
        src_port=ports["src_port"],
        dst_port=ports["dst_port"],
        proto=proto,
        duration=numbers["duration"] / 1e6,
        orig_bytes=numbers["fwd_bytes"],
        resp_bytes=numbers["bwd_bytes"],
        orig_pkts=numbers["fwd_pkts"],
        resp_pkts=numbers["bwd_pkts"],
        label=(attack > 0).astype(np.int8),
        attack=attack,
        attack_names=tuple(attack_names),
        host_flags=flags,
        label_counts={" / ".join(written[int(n)]): int(c) for n, c in zip(names_of, counts_of, strict=True)},
        skipped=skipped,
    )
    if skipped:
        flows = flows.select(good)
    return sort_by_time(flows)
