"""The BATADAL reader: the five real files (counts and segments from SOURCE.md, values against an
independent pandas read) and bad input (DataError naming file:line and the value)."""

import gzip
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kdgat.common.errors import DataError
from kdgat.data.watertreatment.batadal import SENSOR_COLUMNS, number_segments, read_batadal
from tests.helpers import shared_data

# SOURCE.md: rows, attack rows, attack segments (first row, hours).
DATASET04_FULL = [(1727, 50), (2027, 24), (2337, 60), (2827, 94), (3497, 60), (3727, 94), (3927, 110)]
TEST = [(297, 70), (632, 65), (867, 31), (937, 31), (1229, 100), (1574, 80), (1940, 30)]
FILES = {
    "BATADAL_dataset03": (8761, 0, []),
    "BATADAL_dataset04": (4177, 219, None),  # partly labelled: segments checked separately
    "BATADAL_dataset04_fully_labelled": (4177, 492, DATASET04_FULL),
    "BATADAL_test_dataset_labelled": (2089, 407, TEST),
    "BATADAL_test_dataset_attack_ids": (2089, 407, TEST),
}


def segments(attack_id: np.ndarray) -> list[tuple[int, int, int]]:
    """(id, first row, hours) of each run of equal nonzero ids, written as a plain loop."""
    out: list[tuple[int, int, int]] = []
    for row, k in enumerate(attack_id.tolist()):
        if k and out and out[-1][0] == k and out[-1][1] + out[-1][2] == row:
            out[-1] = (k, out[-1][1], out[-1][2] + 1)
        elif k:
            out.append((k, row, 1))
    return out


def pandas_read(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, skipinitialspace=True)
    frame.columns = [c.strip() for c in frame.columns]
    return frame


@pytest.mark.real_data
@pytest.mark.parametrize("name", list(FILES))
def test_real_file_counts_segments_and_values(name: str) -> None:
    path = shared_data("watertreatment_batadal") / f"{name}.csv.gz"
    rows, attack_rows, expected_segments = FILES[name]
    log = read_batadal(path)
    assert len(log) == rows and log.values.shape == (rows, 43) and log.skipped == 0
    assert log.columns == SENSOR_COLUMNS and log.values.dtype == np.float64
    assert int((log.label == 1).sum()) == attack_rows
    assert (np.diff(log.time) == 3600).all()  # hourly, in order
    if expected_segments is not None:
        found = [(row, hours) for _, row, hours in segments(log.attack_id)]
        assert found == expected_segments
        assert ((log.attack_id > 0) == (log.label == 1)).all()
    frame = pandas_read(path)  # independent check of every reading, time and label
    np.testing.assert_array_equal(log.values, frame[list(SENSOR_COLUMNS)].to_numpy(dtype=np.float64))
    layout = "%Y-%m-%d %H:%M:%S" if "attack_ids" in name else "%d/%m/%y %H"
    seconds = (pd.to_datetime(frame["DATETIME"], format=layout) - pd.Timestamp(0)).dt.total_seconds()
    np.testing.assert_array_equal(log.time, seconds.to_numpy())
    flags = frame["ATT_FLAG"].astype(str)
    expected_label = np.where(flags.str.startswith("attack") | flags.isin(["1", "1.0"]), 1, 0)
    expected_label = np.where(flags == "-999", -1, expected_label)
    np.testing.assert_array_equal(log.label, expected_label)


@pytest.mark.real_data
def test_dataset_start_times() -> None:
    root = shared_data("watertreatment_batadal")
    first = {
        "BATADAL_dataset03": "2014-01-06T00",
        "BATADAL_dataset04": "2016-07-04T00",
        "BATADAL_test_dataset_attack_ids": "2017-01-04T00",
    }
    for name, when in first.items():
        log = read_batadal(root / f"{name}.csv.gz")
        assert log.time[0] == np.datetime64(when).astype("datetime64[s]").astype(np.int64)


@pytest.mark.real_data
def test_attack_ids_file_numbers_attacks_8_to_14() -> None:
    root = shared_data("watertreatment_batadal")
    alone = read_batadal(root / "BATADAL_test_dataset_attack_ids.csv.gz")
    assert segments(alone.attack_id) == [(8 + k, row, hours) for k, (row, hours) in enumerate(TEST)]
    labelled = read_batadal(root / "BATADAL_test_dataset_labelled.csv.gz")
    assert [k for k, _, _ in segments(labelled.attack_id)] == list(range(1, 8))  # numbered in order
    both = read_batadal(
        root / "BATADAL_test_dataset_labelled.csv.gz",
        attack_ids=root / "BATADAL_test_dataset_attack_ids.csv.gz",
    )
    np.testing.assert_array_equal(both.attack_id, alone.attack_id)
    np.testing.assert_array_equal(both.values, labelled.values)
    np.testing.assert_array_equal(both.time, alone.time)


@pytest.mark.real_data
def test_dataset04_partial_labels_lie_inside_the_full_ones() -> None:
    root = shared_data("watertreatment_batadal")
    partial = read_batadal(root / "BATADAL_dataset04.csv.gz")
    full = read_batadal(root / "BATADAL_dataset04_fully_labelled.csv.gz")
    assert int((partial.label == -1).sum()) == 4177 - 219 and not (partial.label == 0).any()
    assert (full.label[partial.label == 1] == 1).all()
    np.testing.assert_array_equal(partial.values, full.values)
    runs = segments(partial.attack_id)
    assert [k for k, _, _ in runs] == [1, 2, 3, 4, 5]
    # each partly labelled run lies inside one schedule attack: 1, 3, 4, 5, 6
    assert [int(full.attack_id[row]) for _, row, _ in runs] == [1, 3, 4, 5, 6]


def test_number_segments() -> None:
    label = np.array([0, 1, 1, -1, 1, 0, 0, 1])
    np.testing.assert_array_equal(number_segments(label), [0, 1, 1, 0, 2, 0, 0, 3])


# ---- small hand-written files -------------------------------------------------------------------

FILE_ORDER = [c for c in SENSOR_COLUMNS if c[0] == "L"]
FILE_ORDER += [c for k in range(1, 12) for c in (f"F_PU{k}", f"S_PU{k}")]
FILE_ORDER += ["F_V2", "S_V2"] + [c for c in SENSOR_COLUMNS if c[0] == "P"]


def write(
    tmp_path: Path, rows: list[tuple[str, str]], name: str = "log.csv", columns=None, spaces=False
) -> Path:
    """A BATADAL-like CSV: rows of (DATETIME, ATT_FLAG); reading k of row r = r + k / 100."""
    columns = FILE_ORDER if columns is None else columns
    sep = ", " if spaces else ","
    lines = [sep.join(["DATETIME", *columns, "ATT_FLAG"])]  # dataset04 as SOURCE.md describes it
    for r, (when, flag) in enumerate(rows):
        lines.append(sep.join([when, *(f"{r + k / 100:.2f}" for k in range(len(columns))), flag]))
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def hours(n: int, flags: list[str] | None = None) -> list[tuple[str, str]]:
    flags = flags or ["0"] * n
    return [(f"{1 + h // 24:02d}/02/17 {h % 24:02d}", flags[h]) for h in range(n)]


def test_small_file_reorders_columns_and_reads_spaces_and_gzip(tmp_path: Path) -> None:
    path = write(tmp_path, hours(30, ["0"] * 10 + [" 1.00"] * 5 + ["-999"] * 15), spaces=True)
    gz = tmp_path / "log.csv.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    log = read_batadal(gz)
    assert len(log) == 30
    column = {c: k for k, c in enumerate(FILE_ORDER)}
    for j, name in enumerate(SENSOR_COLUMNS):  # file order is interleaved F_PUk,S_PUk
        np.testing.assert_allclose(log.values[:, j], np.arange(30) + column[name] / 100)
    np.testing.assert_array_equal(log.label, [0] * 10 + [1] * 5 + [-1] * 15)
    np.testing.assert_array_equal(log.attack_id, [0] * 10 + [1] * 5 + [0] * 15)
    assert log.time[25] - log.time[0] == 25 * 3600
    assert log.time[0] == np.datetime64("2017-02-01T00", "s").astype(np.int64)


def test_negative_readings_are_data(tmp_path: Path) -> None:
    path = write(tmp_path, hours(3))
    path.write_text(path.read_text().replace(",1.05,", ",-1.05,"))
    log = read_batadal(path)
    assert log.values[1, SENSOR_COLUMNS.index(FILE_ORDER[5])] == -1.05


def expect_error(path: Path, line: int, *needles: str, **kwargs) -> str:
    with pytest.raises(DataError) as err:
        read_batadal(path, **kwargs)
    message = str(err.value)
    assert f"{path}:{line}" in message, message
    for needle in needles:
        assert needle in message, message
    return message


def test_missing_sensor_column(tmp_path: Path) -> None:
    path = write(tmp_path, hours(3), columns=[c for c in FILE_ORDER if c != "P_J14"])
    expect_error(path, 1, "P_J14", "lacks sensor column")


def test_non_numeric_reading(tmp_path: Path) -> None:
    path = write(tmp_path, hours(5))
    text = path.read_text().splitlines()
    text[3] = text[3].replace(",2.03,", ",abc,", 1)  # data row 2 (line 4), column L_T4
    path.write_text("\n".join(text) + "\n")
    expect_error(path, 4, "'abc'", "L_T4")


def test_datetime_out_of_order_and_duplicated(tmp_path: Path) -> None:
    rows = hours(6)
    rows[4] = rows[1]
    expect_error(write(tmp_path, rows), 6, f"'{rows[1][0]}'", "not after the previous")
    rows = hours(6)
    rows[3] = rows[2]
    expect_error(write(tmp_path, rows, name="dup.csv"), 5, f"'{rows[2][0]}'", "not after the previous")


def test_bad_datetime_values(tmp_path: Path) -> None:
    for k, bad in enumerate(["31/02/17 00", "01/13/17 00", "01/02/17 24", "2017-02-01 00", "1/2/17 00"]):
        rows = hours(3)
        rows[1] = (bad, "0")
        expect_error(write(tmp_path, rows, name=f"d{k}.csv"), 3, f"'{bad}'", "DATETIME")


def test_unknown_label(tmp_path: Path) -> None:
    for k, flag in enumerate(["2", "yes", "attack", "attack0", "-1"]):
        rows = hours(4)
        rows[2] = (rows[2][0], flag)
        expect_error(write(tmp_path, rows, name=f"l{k}.csv"), 4, f"'{flag}'", "ATT_FLAG")


def test_skip_policy_counts_bad_rows(tmp_path: Path) -> None:
    rows = hours(6)
    rows[2] = (rows[2][0], "maybe")
    log = read_batadal(write(tmp_path, rows), malformed="skip")
    assert len(log) == 5 and log.skipped == 1
    assert log.time[2] - log.time[1] == 2 * 3600


def test_wrong_field_count_and_header_only(tmp_path: Path) -> None:
    path = write(tmp_path, hours(3))
    lines = path.read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 2)[0] + ",0"
    path.write_text("\n".join(lines) + "\n")
    expect_error(path, 3, "expected 45 fields")
    head = tmp_path / "head.csv"
    head.write_text(lines[0] + "\n")
    with pytest.raises(DataError, match="header only"):
        read_batadal(head)


def iso_twin(tmp_path: Path, rows: list[tuple[str, str]], flags: list[str], name: str = "ids.csv") -> Path:
    """The attack_ids layout of `rows`: index column, ISO datetimes, benign/attack<k>."""
    source = write(tmp_path, rows, name="tmp.csv").read_text().splitlines()
    lines = ["," + source[0]]
    for r, line in enumerate(source[1:]):
        when, rest = line.split(",", 1)
        day, month, year, hour = re.match(r"(\d\d)/(\d\d)/(\d\d) (\d\d)", when).groups()
        rest = rest.rsplit(",", 1)[0]
        lines.append(f"{r},20{year}-{month}-{day} {hour}:00:00,{rest},{flags[r]}")
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_attack_ids_twin_agrees_or_is_refused(tmp_path: Path) -> None:
    flags = ["0", "1", "1", "0", "1", "0"]
    names = ["benign", "attack8", "attack8", "benign", "attack9", "benign"]
    labelled = write(tmp_path, hours(6, flags))
    log = read_batadal(labelled, attack_ids=iso_twin(tmp_path, hours(6), names))
    np.testing.assert_array_equal(log.attack_id, [0, 8, 8, 0, 9, 0])
    wrong = names.copy()
    wrong[3] = "attack8"
    message = expect_error(
        labelled, 5, "ATT_FLAG differ", attack_ids=iso_twin(tmp_path, hours(6), wrong, "w.csv")
    )
    assert "w.csv:5" in message
    shifted = hours(7)[1:]
    expect_error(labelled, 2, "DATETIME differ", attack_ids=iso_twin(tmp_path, shifted, names, "s.csv"))
    with pytest.raises(DataError, match="has 6 rows but its attack_ids file"):
        read_batadal(labelled, attack_ids=iso_twin(tmp_path, hours(5), names, "short.csv"))
    with pytest.raises(DataError, match="gives no attack ids"):
        read_batadal(labelled, attack_ids=labelled)


def test_attack_id_twice_is_refused(tmp_path: Path) -> None:
    names = ["benign", "attack8", "benign", "attack8", "benign"]
    path = iso_twin(tmp_path, hours(5), names)
    expect_error(path, 5, "attack8 starts again after line 3")


def test_index_column_must_count_rows(tmp_path: Path) -> None:
    path = iso_twin(tmp_path, hours(4), ["benign"] * 4)
    lines = path.read_text().splitlines()
    lines[3] = "7" + lines[3][1:]
    path.write_text("\n".join(lines) + "\n")
    expect_error(path, 4, "'7'", "index column")
