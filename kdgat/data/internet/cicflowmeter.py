"""Strict, vectorised reader of CICFlowMeter CSV flows (CIC-IDS2017, the "improved" release).

A header row names the columns (91 in the improved CIC-IDS2017; the original release's column
names are accepted too, e.g. `Source IP` for `Src IP`, but its `7/7/2017 8:59` timestamps are not:
they are local times without seconds), then one flow per row with exactly as many fields.
Used columns: Src IP, Src Port, Dst IP, Dst Port, Protocol (IANA number), Timestamp
(`YYYY-MM-DD HH:MM:SS[.ffffff]`, capture local time as released), Flow Duration (microseconds),
the forward/backward packet counts and byte totals, and Label: BENIGN or one of the CIC-IDS2017
attack names (optionally with the improved release's ` - Attempted` suffix), which is the
attack type. Any other label is refused: a typo must not become a new attack class.
"""

import re
from pathlib import Path

import numpy as np

from kdgat.data.internet.flows import BENIGN, OTHER_PROTOCOL, Flows, host_flags, sort_by_time
from kdgat.data.text.row_checks import RowChecks, resolve_bad_rows
from kdgat.data.text.scan import (
    distinct_fields,
    gather,
    parse_uint,
    read_bytes,
    split_delimited,
    trim_blanks,
)
from kdgat.errors import DataError

# Column used -> the names it has in the improved and the original CIC-IDS2017 CSVs.
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
    "label": ("Label",),
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
EXPECTED = (
    "expected a CICFlowMeter CSV row: as many comma-separated fields as the header, IP addresses, "
    "ports 0-65535, a protocol number, a timestamp YYYY-MM-DD HH:MM:SS[.ffffff], non-negative "
    "integer durations and counts, and a CIC-IDS2017 label"
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


def _columns(path: Path, names: list[str]) -> dict[str, int]:
    found = {}
    for key, spellings in COLUMNS.items():
        at = [names.index(s) for s in spellings if s in names]
        if not at:
            raise DataError(
                f"{path}:1: the header has no {' / '.join(spellings)!r} column; a CICFlowMeter CSV "
                f"needs {', '.join(s[0] for s in COLUMNS.values())}."
            )
        found[key] = at[0]
    return found


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


def read_cicflowmeter(path: Path, malformed: str = "error") -> Flows:
    """One CICFlowMeter CSV; DataError names file:line, the row and what was expected."""
    path = Path(path)
    text = read_bytes(path)
    if not text or text.isspace():
        raise DataError(f"{path}: the file is empty; {EXPECTED}.")
    # Blanks are trimmed from the used columns only: every row has one inside its Timestamp, so
    # trimming while splitting would visit all 91 fields of every row (half the read time).
    fields = split_delimited(text, b",", strip=False)
    names = [fields.field_text(0, j).strip() for j in range(int(fields.nfields[0]))]
    column = _columns(path, names)
    rows = np.arange(1, len(fields), dtype=np.int64)
    if len(rows) == 0:
        raise DataError(f"{path}: header only, no flows; {EXPECTED}.")
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
    for number, code in IANA.items():
        proto[protocol == number] = code
    time, ok = _timestamps(buf, *col("timestamp"))
    checks.check(ok, column["timestamp"], "the timestamp is not YYYY-MM-DD HH:MM:SS[.ffffff]")
    numbers = {}
    for key in ("duration", "fwd_pkts", "bwd_pkts", "fwd_bytes", "bwd_bytes"):
        value, ok = parse_uint(buf, *col(key), 15)
        checks.check(ok, column[key], f"the {names[column[key]]} is not a non-negative integer")
        numbers[key] = value.astype(np.float64)
    label_texts, label_of, ok = distinct_fields(buf, *col("label"), 80)
    decoded = [t.decode("utf-8", "replace") for t in label_texts]
    known_names = [attack_name(t) for t in decoded]
    known = np.array([n is not None for n in known_names], dtype=bool)
    checks.check(
        ok & known[label_of],
        column["label"],
        "the label is not BENIGN or a CIC-IDS2017 attack (" + ", ".join(ATTACKS[:4]) + ", ...)",
    )

    skipped = resolve_bad_rows(path, checks, malformed, EXPECTED)
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
        label_counts={decoded[int(n)]: int(c) for n, c in zip(names_of, counts_of, strict=True)},
        skipped=skipped,
    )
    if skipped:
        flows = flows.select(good)
    return sort_by_time(flows)
