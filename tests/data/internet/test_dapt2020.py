"""DAPT2020 (../shared/data/internet_dapt2020): every file parses with its SOURCE.md counts, the
header-less Thursday file reads with the right columns, BENIGN is benign, flows are time-sorted
before windowing, the reader refuses what is not a DAPT2020 CSV (file:line, what was expected),
and a one-epoch run on 10 s windows writes metrics beside a flag-everything floor <= 0.15."""

import csv
import datetime
import gzip
import io
import json
from pathlib import Path

import numpy as np
import pytest

import configs
from configs import DatasetConfig, InternetConfig
from kdgat.common.errors import DataError
from kdgat.data.dataset import load_splits
from kdgat.data.internet.dapt2020 import HEADER, _dmy_timestamps
from kdgat.data.internet.modality import INTERNET
from kdgat.data.text.scan import split_delimited
from tests.helpers import run_train, shared_data

DAPT = "internet_dapt2020"
THURSDAY = "enp0s3-pvt-thursday.pcap_Flow.csv.gz"
FRIDAY_PVT = "enp0s3-tcpdump-pvt-friday.pcap_Flow.csv.gz"


def source_counts(folder: Path) -> dict[str, tuple[int, int]]:
    """{file: (rows, attack rows)} from SOURCE.md's `| file | rows | attack rows (share) | ...` table."""
    files = {p.name.removesuffix(".pcap_Flow.csv.gz"): p.name for p in folder.glob("*.csv.gz")}
    counts = {}
    for line in (folder / "SOURCE.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        stem = cells[0].split(" (")[0]
        if line.startswith("|") and stem in files and cells[1].replace(",", "").isdigit():
            counts[files[stem]] = (int(cells[1].replace(",", "")), int(cells[2].split()[0].replace(",", "")))
    return counts


def csv_rows(path: Path) -> list[dict[str, str]]:
    """The file as plain csv reads it, named by HEADER (Thursday's first line is a flow)."""
    lines = list(csv.reader(io.StringIO(gzip.decompress(path.read_bytes()).decode())))
    if lines[0][0] == "Flow ID":
        lines = lines[1:]
    assert all(len(row) == len(HEADER) for row in lines)
    return [dict(zip(HEADER, row, strict=True)) for row in lines]


def seconds(text: str) -> float:
    stamp = datetime.datetime.strptime(text, "%d/%m/%Y %I:%M:%S %p")
    return stamp.replace(tzinfo=datetime.UTC).timestamp()


@pytest.mark.real_data
def test_every_file_parses_with_the_source_md_counts() -> None:
    folder = shared_data(DAPT)
    counts = source_counts(folder)
    assert len(counts) == 6 and sorted(counts) == sorted(p.name for p in folder.glob("*.csv.gz"))
    for name, (rows, attacks) in counts.items():
        flows = INTERNET.read(folder / name, "dapt2020", DatasetConfig())
        assert (len(flows), int((flows.label == 1).sum())) == (rows, attacks), name
        assert sum(flows.label_counts.values()) == rows and flows.skipped == 0
    assert sum(r for r, _ in counts.values()) == 21_549


@pytest.mark.real_data
def test_headerless_thursday_reads_every_row_with_the_right_columns() -> None:
    path = shared_data(DAPT) / THURSDAY
    assert gzip.decompress(path.read_bytes()).split(b",", 1)[0] != b"Flow ID"  # no header upstream
    flows = INTERNET.read(path, "dapt2020", DatasetConfig())
    plain = csv_rows(path)
    assert len(flows) == len(plain) == 4114  # the first line is a flow, not a lost header
    order = np.argsort([seconds(r["Timestamp"]) for r in plain], kind="stable")  # the reader's order
    plain = [plain[i] for i in order]
    assert flows.time.tolist() == [seconds(r["Timestamp"]) for r in plain]
    for key, column in (
        ("src_port", "Src Port"),
        ("dst_port", "Dst Port"),
        ("orig_pkts", "Total Fwd Packet"),
    ):
        assert getattr(flows, key).tolist() == [int(r[column]) for r in plain], column
    assert flows.orig_bytes.tolist() == [float(r["Total Length of Fwd Packet"]) for r in plain]
    assert flows.resp_bytes.tolist() == [float(r["Total Length of Bwd Packet"]) for r in plain]
    assert flows.duration.tolist() == pytest.approx([int(r["Flow Duration"]) / 1e6 for r in plain])
    assert flows.label.tolist() == [int(r["Stage"] != "Benign") for r in plain]
    # The attack type is the Activity (the step), Stage only says attack or not.
    types = [flows.attack_names[a] for a in flows.attack]
    assert types == [r["Activity"] if r["Stage"] != "Benign" else "benign" for r in plain]
    assert set(types) == {"benign", "Account Discovery", "SQL Injection", "Privilege Escalation"}


@pytest.mark.real_data
def test_upper_case_benign_is_benign() -> None:
    flows = INTERNET.read(shared_data(DAPT) / FRIDAY_PVT, "dapt2020", DatasetConfig())
    assert flows.label_counts == {"BENIGN / BENIGN": 2612, "Data Exfiltration / Data Exfiltration": 6}
    assert flows.attack_names == ("benign", "Data Exfiltration")
    assert (flows.label == 0).sum() == 2612 and set(flows.label.tolist()) == {0, 1}


@pytest.mark.real_data
def test_flows_are_time_sorted_before_windowing(tmp_path: Path) -> None:
    folder = shared_data(DAPT)
    path = folder / THURSDAY
    written = [seconds(r["Timestamp"]) for r in csv_rows(path)]
    assert not (np.diff(written) >= 0).all()  # upstream order is not time order
    assert (np.diff(INTERNET.read(path, "dapt2020", DatasetConfig()).time) >= 0).all()
    cfg = configs.ExperimentConfig(
        modality="internet",
        dataset="dapt2020",
        dataset_config=DatasetConfig(
            data_root=folder, cache_dir=tmp_path / "cache", internet=InternetConfig(window_seconds=10.0)
        ),
    )
    splits = load_splits(cfg)
    for graphs in (splits.train, splits.val, splits.test_all):
        for source in set(graphs.source):
            mine = np.flatnonzero(np.asarray(graphs.source) == source)
            start = graphs.time_start[mine].numpy()
            assert (np.diff(start) > 0).all() and (graphs.time_stop[mine].numpy() - start <= 10.0).all()
    attack_windows = int(splits.test_all.y.sum())
    assert 0 < attack_windows and 2 * attack_windows / (len(splits.test_all) + attack_windows) <= 0.15


# ---------------------------------------------------------------- what is refused

FLOW = (
    "192.168.3.29-192.168.3.30-53642-22-6,192.168.3.29,53642,192.168.3.30,22,6,{ts},10189710,17,18,"
    "2021.0,1633.0," + ",".join(["0"] * 71) + ",{activity},{stage}\n"
)


def dapt_row(
    ts: str = "18/07/2019 12:47:14 PM", activity: str = "Account Discovery", stage: str = "Lateral Movement"
) -> str:
    row = FLOW.format(ts=ts, activity=activity, stage=stage)
    assert len(row.split(",")) == len(HEADER)
    return row


def read_text(tmp_path: Path, text: str):
    path = tmp_path / "flows.csv"
    path.write_text(text)
    return INTERNET.read(path, "dapt2020", DatasetConfig()), path


def test_a_header_or_a_flow_first_else_refused_with_the_line(tmp_path: Path) -> None:
    rows = dapt_row() + dapt_row(activity="Normal", stage="Benign")
    with_header, _ = read_text(tmp_path, ",".join(HEADER) + "\n" + rows)
    without, _ = read_text(tmp_path, rows)
    assert len(with_header) == len(without) == 2 and without.label.tolist() == [1, 0]
    with pytest.raises(DataError, match=r"flows\.csv:1: .*neither a header .*85 fields, field 7"):
        read_text(tmp_path, "# DAPT2020 export\n" + rows)
    with pytest.raises(DataError, match=r"flows\.csv:1: .*neither a header"):
        read_text(tmp_path, dapt_row(ts="2019-07-18 12:47:14") + rows)
    with pytest.raises(DataError, match=r"flows\.csv:1: the header has no 'Activity' column"):
        read_text(tmp_path, ",".join(HEADER).replace("Activity", "Label") + "\n" + rows)


@pytest.mark.parametrize(
    ("row", "what"),
    [
        pytest.param(dapt_row(stage="Lateral Movment"), "the label is not Activity Normal", id="stage-typo"),
        pytest.param(dapt_row(activity="Normal"), "the label is not", id="benign-step-attack-stage"),
        pytest.param(dapt_row(stage="Benign"), "the label is not", id="attack-step-benign-stage"),
        pytest.param(dapt_row(ts="31/06/2019 12:47:14 PM"), "not dd/mm/yyyy hh:mm:ss AM|PM", id="31-june"),
        pytest.param(dapt_row(ts="18/07/2019 13:47:14 PM"), "not dd/mm/yyyy", id="hour-13"),
    ],
)
def test_bad_rows_are_refused_with_file_line_and_what_was_expected(
    tmp_path: Path, row: str, what: str
) -> None:
    with pytest.raises(DataError) as error:
        read_text(tmp_path, ",".join(HEADER) + "\n" + dapt_row() + row)
    message = str(error.value)
    assert (
        "flows.csv:3:" in message
        and what in message
        and "expected a DAPT2020 CICFlowMeter CSV row" in message
    )


def test_twelve_am_is_midnight_and_twelve_pm_noon() -> None:
    texts = [
        "18/07/2019 12:00:01 AM",
        "18/07/2019 12:47:14 PM",
        "18/07/2019 01:00:00 PM",
        "29/02/2020 11:59:59 PM",
    ]
    fields = split_delimited(",".join(texts).encode() + b"\n", b",")
    starts, ends = zip(*(fields.field(j) for j in range(len(texts))), strict=True)
    got, ok = _dmy_timestamps(fields.buf, np.concatenate(starts), np.concatenate(ends))
    assert ok.all() and got.tolist() == [seconds(t) for t in texts]


@pytest.mark.real_data
@pytest.mark.slow
def test_one_epoch_on_ten_second_windows_writes_metrics_beside_the_floor(tmp_path: Path) -> None:
    result = run_train(
        [
            *("--modality", "internet", "--dataset", "dapt2020", "--data-root", str(shared_data(DAPT))),
            *("--dataset-config.internet.window-seconds", "10", "--model-size", "tiny", "--device", "cpu"),
            *("--training.epochs", "1", "--training.torch-threads", "1"),
            *("--runs-root", str(tmp_path / "runs"), "--dataset-config.cache-dir", str(tmp_path / "cache")),
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("finished "))
    test = json.loads((tmp_path / line.removeprefix("finished ").strip() / "metrics.json").read_text())[
        "test"
    ]
    assert 0 < test["n_attack"] < test["n"] and test["flag_all"]["f1"] <= 0.15
    assert test["flag_all"]["precision"] == pytest.approx(test["n_attack"] / test["n"])
    flows = test["flows"]
    assert 0 < flows["n_attack_flows"] < flows["n_flows"] and flows["flag_all"]["f1"] < 0.5
    assert set(test["attack_types"]) <= {
        "Account Discovery",
        "SQL Injection",
        "Privilege Escalation",
        "Network Scan",
        "Directory Bruteforce",
        "Command Injection",
        "Data Exfiltration",
    }
