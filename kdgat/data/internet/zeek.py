"""Strict, vectorised reader of labelled Zeek conn.log files (Stratosphere `conn.log.labeled`).

Tab-separated rows under `#` header lines; the `#fields` line names the columns (any order,
extra columns ignored). Unset values are `-` and empty sets `(empty)`. Used columns:
`ts id.orig_h id.orig_p id.resp_h id.resp_p proto duration orig_bytes resp_bytes orig_pkts
resp_pkts label detailedlabel`. An unset duration or byte/packet count is 0 (Zeek leaves them
unset when it saw no payload or the connection did not finish). `label` is Benign, Malicious,
Background or Unknown (any case); Background and Unknown are unlabelled (-1), see
InternetConfig.unlabelled. A malicious flow's attack type is its `detailedlabel`
(`malicious` when that is unset or empty).
"""

from pathlib import Path

import numpy as np

from kdgat.common.errors import DataError
from kdgat.data.internet.flows import BENIGN, OTHER_PROTOCOL, PROTOCOLS, Flows, host_flags, sort_by_time
from kdgat.data.text.row_checks import RowChecks, resolve_bad_rows
from kdgat.data.text.scan import (
    distinct_fields,
    parse_decimal,
    parse_tokens,
    parse_uint,
    read_bytes,
    split_delimited,
)

COLUMNS = (
    "ts",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "proto",
    "duration",
    "orig_bytes",
    "resp_bytes",
    "orig_pkts",
    "resp_pkts",
    "label",
    "detailedlabel",
)
LABELS = {"benign": 0, "malicious": 1, "background": -1, "unknown": -1}
EXPECTED = (
    "expected a labelled Zeek conn.log row: tab-separated fields as named by #fields, a decimal "
    "ts, IP addresses, ports 0-65535, proto tcp/udp/icmp/unknown_transport, durations and counts "
    "as decimals or '-', label Benign/Malicious/Background/Unknown"
)
UNSET = b"-"
MAX_TEXT = 120


def _header(path: Path, fields) -> tuple[dict[str, int], int]:
    """Column index of each #fields name, and the line of the #fields header."""
    for line in range(len(fields)):
        text = fields.line_text(line)
        if not text.startswith("#"):
            break
        if text.startswith("#fields\t"):
            names = text.split("\t")[1:]
            missing = [c for c in COLUMNS if c not in names]
            if missing:
                raise DataError(
                    f"{path}:{line + 1}: the #fields header lacks {', '.join(missing)}; a labelled "
                    f"Zeek conn.log needs {' '.join(COLUMNS)}."
                )
            return {name: j for j, name in enumerate(names)}, line
    raise DataError(
        f"{path}: no `#fields` header line before the first row; this reader takes Zeek conn.log "
        f"TSV files (`#separator \\x09`, `#fields ts uid id.orig_h ...`)."
    )


def _unset(buf: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    return (end - start == 1) & (buf[start] == UNSET[0])


def _count(buf, start, end, checks: RowChecks, j: int, what: str) -> np.ndarray:
    unset = _unset(buf, start, end)
    value, ok = parse_uint(buf, start, end, 15)
    checks.check(ok | unset, j, f"the {what} is not a non-negative integer or '-'")
    return np.where(unset, 0, value).astype(np.float64)


def _port(buf, start, end, checks: RowChecks, j: int, what: str) -> np.ndarray:
    value, ok = parse_uint(buf, start, end, 5)
    checks.check(ok & (value <= 65535), j, f"the {what} is not a port 0-65535")
    return value.astype(np.int32)


def read_zeek(path: Path, malformed: str = "error") -> Flows:
    """One labelled conn.log; DataError names file:line, the row and what was expected."""
    path = Path(path)
    text = read_bytes(path)
    if not text or text.isspace():
        raise DataError(f"{path}: the file is empty; {EXPECTED}.")
    fields = split_delimited(text, b"\t", strip=False)
    column, header_line = _header(path, fields)
    buf = fields.buf
    is_row = buf[fields.line_start] != ord("#")
    rows = np.flatnonzero(is_row & (np.arange(len(fields)) > header_line))
    if len(rows) == 0:
        raise DataError(f"{path}: header only, no flows; {EXPECTED}.")
    checks = RowChecks(fields, rows)
    checks.check(fields.nfields[rows] == len(column), None, f"expected {len(column)} tab-separated fields")

    def col(name: str) -> tuple[np.ndarray, np.ndarray]:
        start, end = fields.field(column[name])
        return start[rows], end[rows]

    time, ok = parse_decimal(buf, *col("ts"))
    checks.check(ok, column["ts"], "the ts is not a decimal number of seconds")
    hosts: list[str] = []
    ends = []
    for name in ("id.orig_h", "id.resp_h"):
        values, inverse, ok = distinct_fields(buf, *col(name), 64)
        checks.check(ok, column[name], "the address is empty or too long")
        ends.append((values, inverse))
    # One host table for both ends: the union of both columns' distinct addresses.
    table = sorted(set(ends[0][0]) | set(ends[1][0]))
    position = {value: i for i, value in enumerate(table)}
    src, dst = (
        np.asarray([position[v] for v in values], dtype=np.int64)[inverse] for values, inverse in ends
    )
    hosts = [v.decode("utf-8", "replace") for v in table]
    flags, bad = host_flags(hosts)
    bad_host = np.zeros(len(hosts), dtype=bool)
    bad_host[bad] = True
    checks.check(~bad_host[src], column["id.orig_h"], "the address is not an IPv4 or IPv6 address")
    checks.check(~bad_host[dst], column["id.resp_h"], "the address is not an IPv4 or IPv6 address")
    src_port = _port(buf, *col("id.orig_p"), checks, column["id.orig_p"], "id.orig_p")
    dst_port = _port(buf, *col("id.resp_p"), checks, column["id.resp_p"], "id.resp_p")
    proto, ok = parse_tokens(buf, *col("proto"), {**{k.encode(): v for k, v in PROTOCOLS.items()}})
    other, is_other = parse_tokens(buf, *col("proto"), {b"unknown_transport": OTHER_PROTOCOL})
    checks.check(ok | is_other, column["proto"], "the proto is not tcp, udp, icmp or unknown_transport")
    proto = np.where(is_other, other, proto).astype(np.int8)
    d_start, d_end = col("duration")
    unset = _unset(buf, d_start, d_end)
    duration, ok = parse_decimal(buf, d_start, d_end)
    checks.check(ok | unset, column["duration"], "the duration is not a decimal number or '-'")
    duration = np.where(unset, 0.0, duration)
    counts = {
        name: _count(buf, *col(name), checks, column[name], name)
        for name in ("orig_bytes", "resp_bytes", "orig_pkts", "resp_pkts")
    }
    label_texts, label_of, ok = distinct_fields(buf, *col("label"), MAX_TEXT)
    known = np.array([t.decode("utf-8", "replace").lower() in LABELS for t in label_texts], dtype=bool)
    checks.check(
        ok & known[label_of], column["label"], "the label is not Benign, Malicious, Background or Unknown"
    )
    detail_texts, detail_of, _ = distinct_fields(buf, *col("detailedlabel"), MAX_TEXT)

    skipped = resolve_bad_rows(path, checks, malformed, EXPECTED)
    good = checks.good
    label_names = [t.decode("utf-8", "replace") for t in label_texts]
    label_value = np.array([LABELS.get(n.lower(), 0) for n in label_names], dtype=np.int8)
    label = label_value[label_of]
    # Attack names: index 0 is benign; a malicious flow's name is its detailedlabel.
    details = [t.decode("utf-8", "replace") for t in detail_texts]
    details = [d if d not in ("", "-", "(empty)") else "malicious" for d in details]
    attack_names = [BENIGN, *sorted(set(details[i] for i in np.unique(detail_of[good & (label == 1)])))]
    code = np.array([attack_names.index(d) if d in attack_names else 0 for d in details], dtype=np.int16)
    attack = np.where(label == 1, code[detail_of], 0).astype(np.int16)
    names, counts_of = np.unique(label_of[good], return_counts=True)
    flows = Flows(
        source=path,
        time=time,
        src=src,
        dst=dst,
        src_port=src_port,
        dst_port=dst_port,
        proto=proto,
        duration=duration,
        orig_bytes=counts["orig_bytes"],
        resp_bytes=counts["resp_bytes"],
        orig_pkts=counts["orig_pkts"],
        resp_pkts=counts["resp_pkts"],
        label=label,
        attack=attack,
        attack_names=tuple(attack_names),
        host_flags=flags,
        label_counts={label_names[int(n)]: int(c) for n, c in zip(names, counts_of, strict=True)},
        skipped=skipped,
    )
    if skipped:
        flows = flows.select(good)
    return sort_by_time(flows)
