"""Flow readers: both real folders in ../shared/data parse with their SOURCE.md's counts (through
the modality's read and through load_splits), attack types come from the labels, bad input gives
file:line, the row and what was expected (exit code 2 from the CLI, nothing left in the cache),
and the unlabelled policy does what it says to windows, edges and counts."""

import collections
import csv
import gzip
import io
import re
from pathlib import Path

import numpy as np
import pytest

import configs
from configs import DatasetConfig, InternetConfig
from kdgat.common.errors import DataError
from kdgat.data.dataset import load_splits
from kdgat.data.internet.flows import Flows, host_flags
from kdgat.data.internet.modality import INTERNET
from kdgat.data.prepare import cache_target, prepare_file
from tests.helpers import run_train, shared_data

STRATOSPHERE = "internet_stratosphere_zeek"
CICIDS = "internet_cicids2017_improved_sampled"
NJRAT = "001_CTU-Malware-Capture-Botnet-230-1_first1000_conn.log.labeled.gz"

# ---------------------------------------------------------------- SOURCE.md's tables


def markdown_rows(folder: Path) -> list[list[str]]:
    """Cells of every markdown table row of folder/SOURCE.md."""
    rows = []
    for line in (folder / "SOURCE.md").read_text().splitlines():
        if line.startswith("|") and not set(line) <= set("|- "):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def leading_int(text: str) -> int:
    return int(re.match(r"[\d,]+", text).group(0).replace(",", ""))


def stratosphere_table(folder: Path) -> dict[str, dict]:
    """{capture file: rows, label counts, distinct IPs, named attack} from SOURCE.md's table
    `| file | rows | Malicious | distinct IPs | ts span | other labels |`."""
    files = sorted(p.name for p in folder.glob("*conn.log.labeled.gz"))
    table = {}
    for cells in markdown_rows(folder):
        matches = [f for f in files if f.startswith(cells[0] + "_")]
        if len(cells) != 6 or len(matches) != 1 or not cells[1].isdigit():
            continue
        labels = {"Malicious": leading_int(cells[2])}
        for part in cells[5].split(","):
            count, name = part.split()
            labels[name] = int(count)
        named = re.search(r"\((\w+)\)", cells[2])
        table[matches[0]] = {
            "rows": int(cells[1]),
            "labels": labels,
            "ips": int(cells[3]),
            "attack": named.group(1) if named else None,
        }
    return table


def cicids_totals(folder: Path) -> dict[str, int]:
    """SOURCE.md's `Total 43,419 rows: 5,000 benign, 38,419 attack; 1,221 distinct IPs`."""
    text = (folder / "SOURCE.md").read_text()
    found = re.search(r"Total ([\d,]+) rows: ([\d,]+) benign, ([\d,]+) attack; ([\d,]+) distinct IPs", text)
    assert found, "SOURCE.md lost its totals line"
    rows, benign, attack, ips = (leading_int(g) for g in found.groups())
    return {"rows": rows, "benign": benign, "attack": attack, "ips": ips}


def cicids_file_class(name: str) -> tuple[str, int]:
    """`Web_Attack_-_Brute_Force_73.csv.gz` -> ('Web Attack - Brute Force', 73): the folder's files
    are named by their class and row count (SOURCE.md's table)."""
    stem = name.removesuffix(".csv.gz")
    label, rows = stem.rsplit("_", 1)
    return label.replace("_", " "), int(rows)


def zeek_rows(path: Path) -> list[dict[str, str]]:
    """The conn.log's rows as dicts, parsed the plain way (an independent check of the reader)."""
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    names = next(line for line in lines if line.startswith("#fields")).split("\t")[1:]
    return [dict(zip(names, line.split("\t"), strict=True)) for line in lines if not line.startswith("#")]


def cicids_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(gzip.decompress(path.read_bytes()).decode())))


def distinct_hosts(flows: Flows) -> int:
    return len(np.unique(np.concatenate([flows.src, flows.dst])))


def attack_counts(flows: Flows) -> dict[str, int]:
    """Malicious flows per attack type, as the reader named them."""
    codes, counts = np.unique(flows.attack[flows.label == 1], return_counts=True)
    return {flows.attack_names[c]: int(n) for c, n in zip(codes, counts, strict=True)}


# ---------------------------------------------------------------- real data through read


@pytest.mark.real_data
def test_stratosphere_files_parse_with_source_md_counts() -> None:
    folder = shared_data(STRATOSPHERE)
    table = stratosphere_table(folder)
    assert sorted(table) == sorted(p.name for p in folder.glob("*conn.log.labeled.gz"))
    for name, want in table.items():
        flows = INTERNET.read(folder / name, "zeek", DatasetConfig())
        assert len(flows) == want["rows"], name
        assert flows.label_counts == want["labels"], name
        assert distinct_hosts(flows) == want["ips"], name
        assert int((flows.label == 1).sum()) == want["labels"]["Malicious"]
        assert int((flows.label == -1).sum()) == want["labels"].get("Background", 0) + want["labels"].get(
            "Unknown", 0
        )
        assert flows.skipped == 0 and (np.diff(flows.time) >= 0).all()  # sorted by start time
        if want["attack"]:
            assert flows.attack_names == ("benign", want["attack"]), name


@pytest.mark.real_data
def test_stratosphere_attack_types_come_from_detailedlabel() -> None:
    folder = shared_data(STRATOSPHERE)
    seen = set()
    for path in sorted(folder.glob("*conn.log.labeled.gz")):
        flows = INTERNET.read(path, "zeek", DatasetConfig())
        rows = zeek_rows(path)
        expected = collections.Counter(r["detailedlabel"] for r in rows if r["label"] == "Malicious")
        assert attack_counts(flows) == dict(expected), path.name
        assert (flows.attack[flows.label != 1] == 0).all()  # benign and unlabelled flows: no type
        seen |= set(expected)
    assert {"CC", "External-Attack-to-Device"} <= seen


@pytest.mark.real_data
def test_cicids_files_parse_with_source_md_counts() -> None:
    folder = shared_data(CICIDS)
    totals = cicids_totals(folder)
    files = sorted(folder.glob("*.csv.gz"))
    assert len(files) == 16
    rows = benign = attack = 0
    addresses: set[str] = set()
    for path in files:
        label, count = cicids_file_class(path.name)
        flows = INTERNET.read(path, "cicflowmeter", DatasetConfig())
        assert len(flows) == count and flows.label_counts == {label: count}, path.name
        plain = cicids_rows(path)
        hosts = {r["Src IP"] for r in plain} | {r["Dst IP"] for r in plain}
        assert distinct_hosts(flows) == len(hosts), path.name
        addresses |= hosts
        if label == "BENIGN":
            assert (flows.label == 0).all() and flows.attack_names == ("benign",)
        else:  # the attack type is the Label
            assert (flows.label == 1).all() and attack_counts(flows) == {label: count}
        rows += len(flows)
        benign += int((flows.label == 0).sum())
        attack += int((flows.label == 1).sum())
        assert flows.time.min() >= np.datetime64("2017-07-03").astype("datetime64[s]").astype(float)
        assert flows.time.max() < np.datetime64("2017-07-08").astype("datetime64[s]").astype(float)
    assert {"rows": rows, "benign": benign, "attack": attack, "ips": len(addresses)} == totals


@pytest.mark.real_data
def test_cicids_values_match_the_csv() -> None:
    path = shared_data(CICIDS) / "Botnet_736.csv.gz"
    flows = INTERNET.read(path, "cicflowmeter", DatasetConfig())
    plain = sorted(cicids_rows(path), key=lambda r: r["Timestamp"])  # the reader sorts by start time
    first = plain[0]
    assert flows.src_port[0] == int(first["Src Port"]) and flows.dst_port[0] == int(first["Dst Port"])
    assert flows.duration[0] == pytest.approx(int(first["Flow Duration"]) / 1e6)
    assert flows.orig_bytes[0] == int(first["Total Length of Fwd Packet"])
    assert flows.resp_pkts[0] == int(first["Total Bwd packets"])
    stamp = np.datetime64(first["Timestamp"]).astype("datetime64[us]").astype(np.int64) / 1e6
    assert flows.time[0] == pytest.approx(stamp, abs=1e-6)


# ---------------------------------------------------------------- real data through load_splits


def real_cfg(tmp_path: Path, dataset: str, folder: str, **internet: object) -> configs.ExperimentConfig:
    return configs.ExperimentConfig(
        modality="internet",
        dataset=dataset,  # type: ignore[arg-type]
        dataset_config=DatasetConfig(
            data_root=shared_data(folder),
            cache_dir=tmp_path / "cache",
            internet=InternetConfig(**internet),  # type: ignore[arg-type]
        ),
    )


def graph_attack_types(splits) -> set[str]:
    return {t for g in (splits.train, splits.val, splits.test_all) for t in g.attack_type} - {"benign"}


@pytest.mark.real_data
def test_stratosphere_through_load_splits(tmp_path: Path) -> None:
    splits = load_splits(real_cfg(tmp_path, "stratosphere", STRATOSPHERE))
    table = stratosphere_table(shared_data(STRATOSPHERE))
    assert {Path(p).name: c for p, c in splits.label_counts.items()} == {
        n: t["labels"] for n, t in table.items()
    }
    assert {Path(p).name: n for p, n in splits.files.items()} == {n: t["rows"] for n, t in table.items()}
    assert len(splits.test) == len(table) and splits.no_window == [] and splits.skipped_rows == {}
    detailed = {
        "CC",
        "External-Attack-to-Device",
        "From_malicious-To_malicious-Malware_data_exfiltration-RemcosRAT",
    }
    assert graph_attack_types(splits) == detailed


@pytest.mark.real_data
def test_cicids_through_load_splits(tmp_path: Path) -> None:
    folder = shared_data(CICIDS)
    splits = load_splits(real_cfg(tmp_path, "cicids2017", CICIDS))
    totals = cicids_totals(folder)
    counts = collections.Counter()
    for per_file in splits.label_counts.values():
        counts.update(per_file)
    assert sum(counts.values()) == sum(splits.files.values()) == totals["rows"]
    assert counts["BENIGN"] == totals["benign"]
    classes = {cicids_file_class(p.name)[0] for p in folder.glob("*.csv.gz")} - {"BENIGN"}
    # 11 Heartbleed and 13 SQL-injection flows cut into 60/20/20 blocks hold no 10-flow window.
    short = {"Heartbleed_11.csv.gz", "Web_Attack_-_SQL_Injection_13.csv.gz"}
    assert {Path(p).name for p in splits.no_window} == short
    assert graph_attack_types(splits) == classes - {"Heartbleed", "Web Attack - SQL Injection"}


# ---------------------------------------------------------------- bad input

ZEEK_HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n"
    "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\t"
    "resp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\t"
    "resp_pkts\tresp_ip_bytes\ttunnel_parents\tlabel\tdetailedlabel\n"
    "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\t"
    "count\tstring\tcount\tcount\tcount\tcount\tset[string]\tstring\tstring\n"
)
ZEEK_ROW = (  # SOURCE.md's example row, with the fields to vary named
    "{ts}\tCEL3aLvvNGvO6Ecoa\t{orig}\t46563\t147.32.81.167\t{port}\ttcp\t-\t0.000010\t{orig_bytes}\t0\tS0\tF\tT\t"
    "0\tS\t2\t80\t0\t0\t(empty)\t{label}\tExternal-Attack-to-Device\n"
)


def zeek_row(ts: str = "1655071231.749548", **fields: str) -> str:
    values = {"orig": "193.201.9.232", "port": "3933", "orig_bytes": "0", "label": "Malicious", **fields}
    return ZEEK_ROW.format(ts=ts, **values)


GOOD_ZEEK = ZEEK_HEADER + "".join(zeek_row(f"1655071231.{i:06d}") for i in range(3))
BAD_LINE = ZEEK_HEADER.count("\n") + 4  # the row after the three good ones
CIC_HEADER = (
    "id,Flow ID,Src IP,Src Port,Dst IP,Dst Port,Protocol,Timestamp,Flow Duration,Total Fwd Packet,"
    "Total Bwd packets,Total Length of Fwd Packet,Total Length of Bwd Packet,Fwd Packet Length Max,Label,"
    "Attempted Category\n"
)


def cic_row(src: str = "192.168.10.5", fwd_bytes: str = "196", label: str = "Botnet", extra: str = "") -> str:
    return (
        f"62557,{src}-205.174.165.73-53709-8080-6,{src},53709,205.174.165.73,8080,6,"
        f"2017-07-07 13:39:36.267908,81379,5,4,{fwd_bytes},128,196,{label},-1{extra}\n"
    )


GOOD_CIC = CIC_HEADER + cic_row() * 3
MANY_ZEEK = ZEEK_HEADER + "".join(zeek_row(f"1655071231.{i:06d}") for i in range(300))
MANY_CIC = CIC_HEADER + cic_row() * 300


def test_cicflowmeter_original_column_names_and_padded_fields(tmp_path: Path) -> None:
    """The original CIC-IDS2017 CSVs spell the columns differently and pad them with blanks."""
    header = (
        "Flow ID, Source IP, Source Port, Destination IP, Destination Port, Protocol, Timestamp, "
        "Flow Duration, Total Fwd Packets, Total Backward Packets,Total Length of Fwd Packets, "
        "Total Length of Bwd Packets, Label\n"
    )
    row = "x, 192.168.10.5 , 53709,8.8.8.8, 53 , 17 , 2017-07-07 13:39:36 , 2500000 , 2, 1, 80 , 120 , {} \n"
    path = tmp_path / "original.csv"
    path.write_text(header + row.format("BENIGN") + row.format("Web Attack \u2013 Brute Force"))
    flows = INTERNET.read(path, "cicflowmeter", DatasetConfig())
    assert flows.label.tolist() == [0, 1] and flows.attack_names == ("benign", "Web Attack - Brute Force")
    assert flows.src_port.tolist() == [53709] * 2 and flows.dst_port.tolist() == [53] * 2
    assert flows.proto.tolist() == [1, 1] and flows.duration.tolist() == [2.5, 2.5]
    assert flows.orig_bytes.tolist() == [80, 80] and flows.resp_pkts.tolist() == [1, 1]
    assert flows.host_flags[flows.src, 0].tolist() == [1, 1]  # 192.168.10.5: private
    assert flows.host_flags[flows.dst, 0].tolist() == [0, 0]  # 8.8.8.8: public
    assert flows.label_counts == {"BENIGN": 1, "Web Attack \u2013 Brute Force": 1}


HOSTS = {  # address -> (private, IPv6, multicast or broadcast), from the IANA special-purpose registries
    "192.168.1.7": (1, 0, 0),
    "10.0.0.1": (1, 0, 0),
    "172.31.255.255": (1, 0, 0),
    "172.32.0.1": (0, 0, 0),
    "147.32.81.167": (0, 0, 0),
    "100.64.0.1": (0, 0, 0),  # shared (carrier NAT) space: neither private nor global, not private
    "192.0.0.9": (0, 0, 0),  # globally reachable inside 192.0.0.0/24
    "192.0.0.100": (1, 0, 0),
    "127.0.0.1": (1, 0, 0),
    "224.0.0.251": (0, 0, 1),
    "255.255.255.255": (1, 0, 1),
    "fe80::1%eth0": (1, 1, 0),  # the zone is not part of the address
    "::ffff:10.0.0.1": (1, 1, 0),
    "fd12::1": (1, 1, 0),
    "2001:db8::1": (1, 1, 0),
    "2a00:1450::200e": (0, 1, 0),
    "ff02::fb": (0, 1, 1),
}


def test_host_flags_follow_a_fixed_table_not_the_python_release() -> None:
    """ipaddress.is_private changed in Python 3.11.10 / 3.12.4 (192.0.0.0/24, 2002::/16, ...): a
    node feature must not, so the table is frozen in kdgat/data/internet/flows.py."""
    flags, bad = host_flags([*HOSTS, "01.2.3.4", "256.1.1.1", "gateway", "", "1.2.3.4 "])
    assert [tuple(int(v) for v in row) for row in flags[: len(HOSTS)]] == list(HOSTS.values())
    assert bad == list(range(len(HOSTS), len(HOSTS) + 5))


# (id, format, file text or bytes, message pattern, line of the bad row or None)
BAD_INPUT: list[tuple[str, str, str | bytes, str, int | None]] = [
    (
        "zeek_missing_field",
        "zeek",
        GOOD_ZEEK + zeek_row().replace("\t(empty)", ""),
        "expected 23 tab-",
        BAD_LINE,
    ),
    ("zeek_extra_field", "zeek", GOOD_ZEEK + zeek_row().replace("\n", "\tx\n"), "expected 23 tab-", BAD_LINE),
    (
        "zeek_bytes_text",
        "zeek",
        GOOD_ZEEK + zeek_row(orig_bytes="12k"),
        "orig_bytes is not a non-neg",
        BAD_LINE,
    ),
    ("zeek_bytes_negative", "zeek", GOOD_ZEEK + zeek_row(orig_bytes="-4"), "orig_bytes is not", BAD_LINE),
    ("zeek_bad_address", "zeek", GOOD_ZEEK + zeek_row(orig="193.201.9.300"), "not an IPv4 or IPv6", BAD_LINE),
    ("zeek_hostname", "zeek", GOOD_ZEEK + zeek_row(orig="gateway.local"), "not an IPv4 or IPv6", BAD_LINE),
    ("zeek_unknown_label", "zeek", GOOD_ZEEK + zeek_row(label="Malware"), "label is not Benign,", BAD_LINE),
    ("zeek_unset_label", "zeek", GOOD_ZEEK + zeek_row(label="-"), "label is not Benign,", BAD_LINE),
    ("zeek_bad_port", "zeek", GOOD_ZEEK + zeek_row(port="65536"), "id.resp_p is not a port", BAD_LINE),
    ("zeek_bad_ts", "zeek", GOOD_ZEEK + zeek_row(ts="2022-06-12T22:00"), "ts is not a decimal", BAD_LINE),
    (
        "zeek_missing_column",
        "zeek",
        GOOD_ZEEK.replace("\tlabel\tdetailedlabel\n", "\tdetailedlabel\n", 1),
        "the #fields header lacks label",
        ZEEK_HEADER.count("\n") - 1,  # the #fields line
    ),
    ("zeek_no_fields_header", "zeek", GOOD_ZEEK.replace("#fields", "#felds"), "no `#fields` header", None),
    ("zeek_header_only", "zeek", ZEEK_HEADER, "header only, no flows", None),
    ("zeek_empty", "zeek", "", "the file is empty", None),
    (
        "zeek_truncated_gzip",
        "zeek",
        gzip.compress(MANY_ZEEK.encode())[:-40],
        "gzip data is corrupt",
        None,
    ),
    ("cic_missing_field", "cicflowmeter", GOOD_CIC + cic_row()[:-4] + "\n", "expected 16 fields", 5),
    ("cic_extra_field", "cicflowmeter", GOOD_CIC + cic_row(extra=",7"), "expected 16 fields", 5),
    ("cic_bytes_text", "cicflowmeter", GOOD_CIC + cic_row(fwd_bytes="1.5e3"), "Length of Fwd Packet is", 5),
    ("cic_bad_address", "cicflowmeter", GOOD_CIC + cic_row(src="192.168.10.256"), "not an IPv4 or IPv6", 5),
    ("cic_unknown_label", "cicflowmeter", GOOD_CIC + cic_row(label="DoS Hulkk"), "label is not BENIGN", 5),
    ("cic_missing_column", "cicflowmeter", GOOD_CIC.replace(",Label,", ",Lable,"), "no 'Label' column", 1),
    (
        "cic_truncated_gzip",
        "cicflowmeter",
        gzip.compress(MANY_CIC.encode())[:-40],
        "gzip data is",
        None,
    ),
]
ROW_LEVEL = [case for case in BAD_INPUT if case[4] is not None and "column" not in case[0]]


def write(tmp_path: Path, case: str, fmt: str, data: str | bytes) -> Path:
    name = f"{case}_conn.log.labeled" if fmt == "zeek" else f"{case}.csv"
    path = tmp_path / (name + (".gz" if isinstance(data, bytes) else ""))
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def cache_files(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []


@pytest.mark.parametrize(("case", "fmt", "data", "pattern", "line"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_names_file_line_row_and_what_was_expected(
    tmp_path: Path, case: str, fmt: str, data: str | bytes, pattern: str, line: int | None
) -> None:
    path = write(tmp_path, case, fmt, data)
    d = DatasetConfig(cache_dir=tmp_path / "cache", internet=InternetConfig(window=2, stride=2))
    with pytest.raises(DataError) as info:
        prepare_file(path, fmt, "whole", d, INTERNET)
    message = str(info.value)
    assert str(path) in message and pattern in message, message
    if line is not None:
        assert f"{path}:{line}:" in message, message
    if (case, fmt, data, pattern, line) in ROW_LEVEL:
        bad_row = data.splitlines()[line - 1]
        assert repr(bad_row[:40])[1:-1] in message  # the row itself, as written
        assert "expected" in message and "--dataset-config.malformed skip" in message
    assert cache_files(tmp_path / "cache") == []


@pytest.mark.parametrize(("case", "fmt", "data", "pattern", "line"), ROW_LEVEL, ids=[c[0] for c in ROW_LEVEL])
def test_bad_row_is_dropped_and_counted_under_skip(
    tmp_path: Path, case: str, fmt: str, data: str, pattern: str, line: int
) -> None:
    path = write(tmp_path, case, fmt, data)
    d = DatasetConfig(
        cache_dir=tmp_path / "cache", malformed="skip", internet=InternetConfig(window=2, stride=2)
    )
    prepared = prepare_file(path, fmt, "whole", d, INTERNET)
    assert (prepared.skipped, prepared.frames) == (1, 3)
    assert sum(prepared.info["label_counts"].values()) == 3  # the dropped row's label is not counted
    assert len(cache_files(tmp_path / "cache")) == 1  # one clean, complete entry


@pytest.mark.slow
def test_cli_exits_2_without_traceback_and_leaves_no_cache_entry(tmp_path: Path) -> None:
    root = tmp_path / "captures"
    root.mkdir()
    # A bad address after 300 good rows: the error names its line, and no entry is half-written.
    path = write(root, "bad_address", "zeek", MANY_ZEEK + zeek_row(orig="193.201.9.300"))
    cache = tmp_path / "cache"
    result = run_train(
        [
            *("--modality", "internet", "--dataset", "stratosphere", "--data-root", str(root)),
            *("--dataset-config.cache-dir", str(cache), "--runs-root", str(tmp_path / "runs")),
            *("--model-size", "tiny", "--device", "cpu", "--training.epochs", "1"),
            *("--dataset-config.internet.unlabelled", "drop"),  # the policy knob parses on the CLI
        ],
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output and "not an IPv4 or IPv6 address" in output, output
    assert f"{path}:{ZEEK_HEADER.count(chr(10)) + 301}:" in output and "193.201.9.300" in output
    assert list(cache.rglob("*.kdg")) == [] and list(cache.rglob("*.tmp")) == []


# ---------------------------------------------------------------- the unlabelled policy


def policy_flows(policy: str) -> tuple[Flows, dict[str, np.ndarray]]:
    d = DatasetConfig(cache=False, internet=InternetConfig(window=10, stride=10, unlabelled=policy))
    flows = INTERNET.read(shared_data(STRATOSPHERE) / NJRAT, "zeek", d)
    return flows, INTERNET.build(flows, 0, len(flows), d)


@pytest.mark.real_data
def test_unlabelled_context_keeps_background_flows_in_graphs_but_scores_none() -> None:
    flows, raw = policy_flows("context")
    assert len(flows) == 992 and int((flows.label == -1).sum()) == 739
    windows = [(a, a + 10) for a in range(0, 992 - 9, 10)]
    labelled = [(a, b) for a, b in windows if (flows.label[a:b] >= 0).any()]
    assert 0 < len(labelled) < len(windows)  # windows of only Background give no graph
    assert raw["frame_start"].tolist() == [a for a, _ in labelled]
    in_graphs = np.concatenate([flows.label[a:b] for a, b in labelled])
    assert raw["edge_flows"].sum(axis=0).tolist() == [(in_graphs == 0).sum(), (in_graphs == 1).sum()]
    assert (raw["edge_label"] == -1).any()  # Background-only host pairs are edges nobody scores
    assert (raw["edge_flows"][raw["edge_label"] == -1] == 0).all()
    assert raw["y"].tolist() == [int((flows.label[a:b] == 1).any()) for a, b in labelled]


@pytest.mark.real_data
def test_unlabelled_benign_counts_background_as_benign() -> None:
    flows, raw = policy_flows("benign")
    context, _ = policy_flows("context")
    assert len(flows) == 992 and (flows.label >= 0).all()
    assert int((flows.label == 0).sum()) == 739 + 9
    assert len(raw["y"]) == 99  # every 10-flow window has a graph
    assert raw["edge_flows"].sum(axis=0).tolist() == [
        (flows.label[:990] == 0).sum(),
        (flows.label[:990] == 1).sum(),
    ]
    assert (raw["edge_label"] >= 0).all()
    assert raw["y"].tolist() == [int((context.label[a : a + 10] == 1).any()) for a in range(0, 990, 10)]


@pytest.mark.real_data
def test_unlabelled_drop_removes_background_before_windowing() -> None:
    flows, raw = policy_flows("drop")
    assert len(flows) == 992 - 739 and flows.dropped_unlabelled == 739 and (flows.label >= 0).all()
    assert len(raw["y"]) == 25 and raw["edge_flows"].sum() == 250 and (raw["edge_label"] >= 0).all()
    assert INTERNET.info(flows)["dropped_unlabelled"] == 739


@pytest.mark.real_data
@pytest.mark.parametrize("policy", ["context", "benign", "drop"])
def test_label_counts_are_as_written_whatever_the_policy(policy: str) -> None:
    flows, _ = policy_flows(policy)
    assert flows.label_counts == {"Background": 739, "Benign": 9, "Malicious": 244}


@pytest.mark.real_data
def test_each_policy_has_its_own_cache_entry(tmp_path: Path) -> None:
    path = shared_data(STRATOSPHERE) / NJRAT
    targets = set()
    for policy in ("context", "benign", "drop"):
        d = DatasetConfig(cache_dir=tmp_path / "cache", internet=InternetConfig(unlabelled=policy))
        targets.add(cache_target(path, "zeek", "whole", d, INTERNET))
    assert len(targets) == 3
