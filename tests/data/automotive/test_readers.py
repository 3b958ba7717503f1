"""Readers: every real capture in ../shared/data parses with SOURCE.md's counts; fixtures built from
the HCRL Car-Hacking specification parse to the right values; malformed inputs give a clear
DataError naming file:line (or, under policy skip, a counted skip) and leave no cache entry."""

import gzip
import re
from pathlib import Path

import numpy as np
import pytest

from configs import AutomotiveConfig, DatasetConfig
from kdgat.common.errors import DataError
from kdgat.data.automotive.modality import AUTOMOTIVE
from kdgat.data.automotive.readers import MAX_BACKWARD_S, read_frames
from kdgat.data.prepare import prepare_file
from tests.helpers import shared_data

# ---------------------------------------------------------------- real data, counts from SOURCE.md


def source_table(folder: Path) -> dict[str, tuple[int, int]]:
    """{relative file: (rows, attack rows)} from the markdown table(s) of folder/SOURCE.md."""
    counts = {}
    for line in (folder / "SOURCE.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and re.search(r"\.(csv|txt|log)(\.gz)?\b", cells[0]) and cells[2].isdigit():
            counts[cells[0].split()[0]] = (int(cells[2]), int(cells[3]))
    return counts


REAL = [
    ("can_train_and_test", "can4"),
    ("hcrl_sa", "can4"),
    ("daga_volvo_v40", "daga"),
    ("road_masquerade_statgraph", "road"),
]


@pytest.mark.real_data
@pytest.mark.parametrize(("name", "fmt"), REAL)
def test_every_real_file_parses_with_source_md_counts(name: str, fmt: str) -> None:
    folder = shared_data(name)
    table = source_table(folder)
    on_disk = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.gz"))
    assert sorted(table) == on_disk, "SOURCE.md's table and the files on disk differ"
    for relative, (rows, attacks) in table.items():
        frames = read_frames(folder / relative, fmt)
        assert (len(frames), int(frames.label.sum())) == (rows, attacks), relative
        assert frames.skipped == 0 and frames.dropped_na == 0
        assert frames.has_time == (fmt != "road")
        if frames.has_time:
            steps = np.diff(frames.time)
            assert steps.min() > -MAX_BACKWARD_S


@pytest.mark.real_data
def test_backward_steps_of_real_captures_are_data() -> None:
    folder = shared_data("can_train_and_test")
    frames = read_frames(folder / "set_01/train_02_with_attacks/targeted_payload_fuzzing-2.csv.gz", "can4")
    steps = np.diff(frames.time)
    assert (steps < 0).sum() == 56 and -steps.min() == pytest.approx(0.107e-3, abs=2e-6)


@pytest.mark.real_data
def test_fast_parser_agrees_with_python_on_real_rows() -> None:
    folder = shared_data("can_train_and_test")
    path = folder / "set_03/train_02_with_attacks/fuzzing-3.csv.gz"  # has a tab after a payload
    frames = read_frames(path, "can4")
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()[1:3001]
    for i, line in enumerate(lines):
        stamp, can_id, data, attack = (f.strip() for f in line.split(","))
        assert frames.time[i] == pytest.approx(float(stamp), rel=0, abs=2e-6)
        assert frames.can_id[i] == int(can_id, 16)
        assert bytes(frames.payload[i, : frames.dlc[i]]) == bytes.fromhex(data)
        assert frames.label[i] == int(attack)


@pytest.mark.real_data
def test_daga_values_and_float_written_ids() -> None:
    folder = shared_data("daga_volvo_v40")
    frames = read_frames(folder / "OrderedSequenceReplay__n_5_V40_03.csv.gz", "daga")
    assert frames.time[1] == pytest.approx(9e-06)  # exponent notation in the file
    assert (frames.dlc == 8).all()
    # `1.0` / `290.0` IDs are the hex IDs 1 and 290 of the trace.
    assert {0x1, 0x290} <= set(np.unique(frames.can_id[frames.label == 1]).tolist())


# ---------------------------------------------------------------- fixtures from the HCRL spec

HCRL_CSV = (
    b"1478198376.389427,0316,8,05,21,68,09,21,21,00,6f,R\n"
    b"1478198376.389636,018f,8,fe,5b,00,00,00,3c,00,00,R\n"
    b"1478198376.389864,0260,8,19,21,22,30,08,8e,6d,3a,T\n"
    b"1478198376.390096,02a0,2,64,00,R\n"
)
HCRL_LOG = (
    b"Timestamp: 1479121434.850202        ID: 0350    000    DLC: 8    05 28 84 66 6d 00 00 a2\n"
    b"Timestamp: 1479121434.850423        ID: 02c0    000    DLC: 8    14 00 00 00 00 00 00 00\n"
    b"Timestamp: 1479121434.850977        ID: 0430    000    DLC: 5    00 00 00 00 00\n"
)
CAN4 = b"timestamp,arbitration_id,data_field,attack\n1.0,1E5,460196E001FE6701,0\n1.5,000,00,1\n2.0,7FF,,0\n"
DAGA = (
    b"timestamp,CAN_ID,DLC,PAYLOAD_HEX,ANOMALY\n0.0,10,64,000000002FB031F8,FALSE\n"
    b"9e-06,1D0,64,0000000000000061,False\n0.5,1,64,3933D9C3729E4D33,True\n"
)
ROAD = b"852,32,10,0,0,0,2,116,128,0.0\n1505,137,63,192,11,10,1,56,128,1.0\n"


def write(tmp_path: Path, name: str, data: bytes, gz: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_hcrl_csv_fixture(tmp_path: Path, gz: bool) -> None:
    frames = read_frames(write(tmp_path, "DoS_dataset.csv", HCRL_CSV, gz), "hcrl_csv")
    assert frames.can_id.tolist() == [0x316, 0x18F, 0x260, 0x2A0]
    assert frames.dlc.tolist() == [8, 8, 8, 2]
    assert frames.label.tolist() == [0, 0, 1, 0]
    assert bytes(frames.payload[1]) == bytes.fromhex("fe5b0000003c0000")
    assert bytes(frames.payload[3]) == bytes.fromhex("6400000000000000")
    assert frames.time[0] == pytest.approx(1478198376.389427, abs=1e-6)
    assert frames.attack_type == "dos"


def test_hcrl_log_fixture(tmp_path: Path) -> None:
    frames = read_frames(write(tmp_path, "normal_run_data.txt", HCRL_LOG), "hcrl_log")
    assert frames.can_id.tolist() == [0x350, 0x2C0, 0x430]
    assert frames.dlc.tolist() == [8, 8, 5]
    assert bytes(frames.payload[0]) == bytes.fromhex("0528846 66d0000a2".replace(" ", ""))
    assert frames.label.tolist() == [0, 0, 0]


def test_small_fixtures_of_every_format(tmp_path: Path) -> None:
    f = read_frames(write(tmp_path, "a.csv", CAN4), "can4")
    assert f.dlc.tolist() == [8, 1, 0] and f.can_id.tolist() == [0x1E5, 0, 0x7FF]
    f = read_frames(write(tmp_path, "b.csv", DAGA), "daga")
    assert f.label.tolist() == [0, 0, 1] and f.time[1] == pytest.approx(9e-06)
    f = read_frames(write(tmp_path, "c.csv", ROAD), "road")
    assert f.can_id.tolist() == [852, 1505] and f.payload[1].tolist() == [137, 63, 192, 11, 10, 1, 56, 128]
    assert not f.has_time and f.time.tolist() == [0.0, 1.0]


BOM = b"\xef\xbb\xbf"  # what spreadsheet programs put before a CSV saved as "CSV UTF-8"
CIC = (
    b"Flow ID,Src IP,Src Port,Dst IP,Dst Port,Protocol,Timestamp,Flow Duration,Total Fwd Packet,"
    b"Total Bwd packets,Total Length of Fwd Packet,Total Length of Bwd Packet,Label\n"
    b"f1,192.168.10.5,51000,192.168.10.3,53,17,2017-07-03 08:55:58.123456,1200,2,2,74,180,BENIGN\n"
    b"f2,172.16.0.1,40000,192.168.10.50,80,6,2017-07-05 09:10:00,3000000,6,4,320,0,DoS Hulk\n"
)


@pytest.mark.parametrize("gz", [False, True])
def test_a_capture_starting_with_a_utf8_byte_order_mark_reads_as_without(tmp_path: Path, gz: bool) -> None:
    from kdgat.data.internet.cicflowmeter import read_cicflowmeter

    plain = read_frames(write(tmp_path, "plain.csv", CAN4, gz), "can4")
    marked = read_frames(write(tmp_path, "bom.csv", BOM + CAN4, gz), "can4")
    for field in ("time", "can_id", "dlc", "payload", "label"):
        assert np.array_equal(getattr(marked, field), getattr(plain, field)), field
    assert len(marked) == 3 and marked.can_id.tolist() == [0x1E5, 0, 0x7FF]
    plain = read_cicflowmeter(write(tmp_path, "plain_flows.csv", CIC, gz))
    marked = read_cicflowmeter(write(tmp_path, "bom_flows.csv", BOM + CIC, gz))
    assert marked.label.tolist() == plain.label.tolist() == [0, 1]
    assert marked.attack_names == plain.attack_names == ("benign", "DoS Hulk")
    for field in ("time", "src_port", "dst_port", "duration", "orig_bytes"):
        assert np.array_equal(getattr(marked, field), getattr(plain, field)), field
    # A bad row is still named by its line: the mark moves no line number.
    with pytest.raises(DataError, match=r"bom_bad.csv:4:"):
        read_frames(write(tmp_path, "bom_bad.csv", BOM + H4 + b"1.2,XYZ,00,0\n", gz), "can4")


# ---------------------------------------------------------------- malformed inputs

H4 = b"timestamp,arbitration_id,data_field,attack\n1.0,123,0011,0\n1.1,124,0011,0\n"
HD = b"timestamp,CAN_ID,DLC,PAYLOAD_HEX,ANOMALY\n0.1,10,64,000000002FB031F8,False\n"
HC = b"1478198376.389427,0316,8,05,21,68,09,21,21,00,6f,R\n"
HL = HCRL_LOG.split(b"\n")[0] + b"\n"
HR = b"852,32,10,0,0,0,2,116,128,0.0\n"

# (id, format, file bytes, message pattern, line of the bad row or None for file-level errors)
MALFORMED: list[tuple[str, str, bytes, str, int | None]] = [
    ("truncated_row", "can4", H4 + b"1.2,125\n", "wrong number of fields", 4),
    ("truncated_mid_field", "can4", H4 + b"1.2,125,00", "wrong number of fields", 4),
    ("extra_field", "can4", H4 + b"1.2,125,00,0,7\n", "wrong number of fields", 4),
    ("bad_hex_id", "can4", H4 + b"1.2,XYZ,00,0\n", "arbitration_id is not 1-8 hex", 4),
    ("empty_id", "can4", H4 + b"1.2,,00,0\n", "arbitration_id is not 1-8 hex", 4),
    ("id_too_long", "can4", H4 + b"1.2,123456789,00,0\n", "arbitration_id is not 1-8 hex", 4),
    ("bad_hex_payload", "can4", H4 + b"1.2,125,0G,0\n", "data_field is not", 4),
    ("odd_payload", "can4", H4 + b"1.2,125,001,0\n", "data_field is not", 4),
    ("payload_too_long", "can4", H4 + b"1.2,125," + b"00" * 9 + b",0\n", "data_field is not", 4),
    ("bad_label", "can4", H4 + b"1.2,125,00,2\n", "attack flag is not 0 or 1", 4),
    ("empty_label", "can4", H4 + b"1.2,125,00,\n", "attack flag is not 0 or 1", 4),
    ("nan_timestamp", "can4", H4 + b"nan,125,00,0\n", "timestamp is not a finite", 4),
    ("inf_timestamp", "can4", H4 + b"inf,125,00,0\n", "timestamp is not a finite", 4),
    ("empty_timestamp", "can4", H4 + b",125,00,0\n", "timestamp is not a finite", 4),
    ("text_timestamp", "can4", H4 + b"12:00:01,125,00,0\n", "timestamp is not a finite", 4),
    ("large_jump_back", "can4", H4 + b"0.05,125,00,0\n", "jumps back more than", 4),
    ("blank_line", "can4", H4 + b"\n1.3,125,00,0\n", "wrong number of fields", 4),
    ("na_with_error_policy", "can4", H4 + b"1.2,na,na,0\n", "`na` ID or payload", 4),
    ("binary_row", "can4", H4 + b"\x00\xff\xfe\x01,\x02\x03\n", "", 4),
    ("empty_file", "can4", b"", "the file is empty", None),
    ("whitespace_only", "can4", b"  \n\n", "the file is empty", None),
    ("header_only", "can4", H4.split(b"\n")[0] + b"\n", "header only", None),
    ("wrong_header", "can4", b"time,id,data,label\n1.0,123,00,0\n", "is not `timestamp,", None),
    ("wrong_delimiter", "can4", H4.replace(b",", b";"), "is not `timestamp,", None),
    ("binary_garbage", "can4", bytes(range(256)) * 8, "header", None),
    ("truncated_gzip", "can4", gzip.compress(H4 * 50)[:-30], "gzip data is corrupt or truncated", None),
    ("other_format", "can4", HD, "looks like the DAGA CSV", None),
    (
        "hcrl_dlc_mismatch",
        "hcrl_csv",
        HC + b"1478198376.5,0316,8,05,21,68,09,21,21,R\n",
        "DLC does not match",
        2,
    ),
    (
        "hcrl_dlc_too_big",
        "hcrl_csv",
        HC + b"1478198376.5,0316,9,05,21,68,09,21,21,00,6f,00,R\n",
        "DLC is not 0-8",
        2,
    ),
    ("hcrl_bad_flag", "hcrl_csv", HC + b"1478198376.5,0316,2,05,21,X\n", "flag) is not R or T", 2),
    ("hcrl_bad_byte", "hcrl_csv", HC + b"1478198376.5,0316,2,GG,21,R\n", "data byte is not", 2),
    ("hcrl_truncated", "hcrl_csv", HC + b"1478198376.5,0316\n", "too few fields", 2),
    ("hcrl_jump_back", "hcrl_csv", HC + b"1478198300.5,0316,2,05,21,R\n", "jumps back", 2),
    (
        "hcrl_log_keyword",
        "hcrl_log",
        HL + b"Timestamp: 1479121434.9 ID: 0350 000 DLX: 1 05\n",
        "expected 'DLC:'",
        2,
    ),
    (
        "hcrl_log_dlc_mismatch",
        "hcrl_log",
        HL + b"Timestamp: 1479121434.9 ID: 0350 000 DLC: 3 05\n",
        "DLC does not match",
        2,
    ),
    ("daga_dlc_bits", "daga", HD + b"0.2,10,63,000000002FB031F8,False\n", "bit count", 3),
    ("daga_dlc_vs_payload", "daga", HD + b"0.2,10,64,000000002FB0,False\n", "does not match DLC/8", 3),
    ("daga_bad_flag", "daga", HD + b"0.2,10,64,000000002FB031F8,maybe\n", "ANOMALY flag", 3),
    ("road_byte_range", "road", HR + b"852,32,300,0,0,0,2,116,128,0.0\n", "decimal 0-255", 2),
    ("road_label", "road", HR + b"852,32,10,0,0,0,2,116,128,2.0\n", "label is not 0.0 or 1.0", 2),
    ("road_fields", "road", HR + b"852,32,10,0,0,0,2,116,0.0\n", "wrong number of fields", 2),
    ("road_float_id", "road", HR + b"85.2,32,10,0,0,0,2,116,128,0.0\n", "not a decimal CAN ID", 2),
]


def config(tmp_path: Path, malformed: str = "error", na_frames: str = "drop") -> DatasetConfig:
    return DatasetConfig(
        automotive=AutomotiveConfig(window=2, stride=2, na_frames=na_frames),
        cache_dir=tmp_path / "cache",
        malformed=malformed,
    )


def cache_files(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


@pytest.mark.parametrize(("case", "fmt", "data", "pattern", "line"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_input_gives_clear_error_and_no_cache_entry(
    tmp_path: Path, case: str, fmt: str, data: bytes, pattern: str, line: int | None
) -> None:
    path = write(tmp_path, f"{case}.csv", data)
    policy_na = "error" if case == "na_with_error_policy" else "drop"
    with pytest.raises(DataError) as info:
        prepare_file(path, fmt, "whole", config(tmp_path, "error", policy_na), AUTOMOTIVE)
    message = str(info.value)
    assert str(path) in message and "Traceback" not in message
    assert re.search(re.escape(pattern), message), message
    if line is not None:
        assert f"{path}:{line}:" in message and "expected" in message
    assert cache_files(tmp_path) == []


@pytest.mark.parametrize(
    ("case", "fmt", "data", "pattern", "line"),
    [m for m in MALFORMED if m[4] is not None],
    ids=[m[0] for m in MALFORMED if m[4] is not None],
)
def test_malformed_row_is_counted_under_skip(
    tmp_path: Path, case: str, fmt: str, data: bytes, pattern: str, line: int | None
) -> None:
    path = write(tmp_path, f"{case}.csv", data)
    policy_na = "error" if case == "na_with_error_policy" else "drop"
    prepared = prepare_file(path, fmt, "whole", config(tmp_path, "skip", policy_na), AUTOMOTIVE)
    assert prepared.skipped == 1
    non_blank = len([x for x in data.split(b"\n") if x.strip()])
    good = non_blank - (fmt in ("can4", "daga")) - (case != "blank_line")
    assert prepared.frames == good
    assert len(cache_files(tmp_path)) == 1  # a clean, complete entry


def test_all_rows_bad_is_an_error_even_under_skip(tmp_path: Path) -> None:
    path = write(tmp_path, "x.csv", b"852;32;10\n853;32;10\n")
    with pytest.raises(DataError, match="none of its 2 row"):
        prepare_file(path, "road", "whole", config(tmp_path, "skip"), AUTOMOTIVE)
    assert cache_files(tmp_path) == []


def test_na_rows_are_dropped_and_counted(tmp_path: Path) -> None:
    path = write(tmp_path, "set02.csv", H4 + b"1.2,na,na,0\n1.3,na,0011,1\n1.4,126,00,0\n")
    frames = read_frames(path, "can4")
    assert len(frames) == 3 and frames.dropped_na == 2 and frames.skipped == 0


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        read_frames(tmp_path / "absent.csv", "can4")
    with pytest.raises(DataError, match="is a folder"):
        read_frames(tmp_path, "can4")


# ---------------------------------------------------------------- eight-bytes-at-a-time parsers


def test_word_parsers_agree_with_python_on_edge_cases() -> None:
    from kdgat.data.text.scan import parse_decimal, split_delimited

    stamps = [
        "0", "7", "0.0", "9e-06", "1.", ".5", ".", "", "1.2.3", "-1.5", "12a", "00012.50",
        "1513920254.785127", "1479121434.850202", "123456789012345678", "1234567890123456789",
        "12345678901234567.5", "0.1234567890123456", "99999999.99999999", "1.0000000000000000001",
        "123456789012345678901234567890", "3.14159265358979",
    ]  # fmt: skip
    text = ("\n".join(f"{s},x" for s in stamps) + "\n").encode()
    fields = split_delimited(text)
    values, ok = parse_decimal(fields.buf, *fields.field(0))
    for i, stamp in enumerate(stamps):
        try:
            good = bool(np.isfinite(float(stamp)))  # other spellings fall back to float()
        except ValueError:
            good = False
        assert bool(ok[i]) == good, stamp
        if good:
            assert values[i] == pytest.approx(float(stamp), rel=1e-15), stamp


def test_blank_trimming_only_touches_lines_with_blanks() -> None:
    from kdgat.data.text.scan import split_delimited

    fields = split_delimited(b"a,b,c\n d ,e\t,f\r\n g,h ,i \n")
    cells = [[fields.field_text(i, j) for j in range(3)] for i in range(3)]
    assert cells == [["a", "b", "c"], ["d", "e", "f"], ["g", "h", "i"]]
    assert fields.width == 3


def test_word_entropy_equals_the_straightforward_one() -> None:
    from kdgat.data.automotive.graphs import payload_entropy
    from kdgat.data.text.words import byte_entropy

    rng = np.random.default_rng(0)
    for values in (2, 4, 256):  # few values: many equal bytes; 256: mostly distinct
        payload = rng.integers(0, values, (5000, 8)).astype(np.uint8)
        length = rng.integers(0, 9, 5000).astype(np.int8)
        payload[np.arange(8)[None, :] >= length[:, None]] = 0  # zero-padded past the DLC, as readers give
        assert np.array_equal(byte_entropy(payload, length), payload_entropy(payload, length))


def test_word_parsers_agree_with_per_character_parsers_on_random_fields() -> None:
    from kdgat.data.text import scan

    rng = np.random.default_rng(1)
    alphabet = np.frombuffer(b"0123456789abcdefABCDEFgG.-e+\x00\xff\x80\xb0\xc6\x1a\x10/:@`", dtype=np.uint8)
    hexdigits = np.frombuffer(b"0123456789abcdefABCDEF", dtype=np.uint8)
    cells = [bytes(rng.choice(hexdigits if i % 2 else alphabet, rng.integers(0, 24))) for i in range(6000)]
    fields = scan.split_delimited(b"".join(b"x," + c + b"\n" for c in cells))
    start, end = fields.field(1)
    for digits in (3, 8):
        fast, slow = (
            scan.parse_hex(fields.buf, start, end, digits),
            scan._parse_hex_chars(fields.buf, start, end, digits),
        )
        assert all(np.array_equal(a, b) for a, b in zip(fast, slow, strict=True))
    fast, slow = (
        scan.parse_hex_bytes(fields.buf, start, end),
        scan._parse_hex_bytes_chars(fields.buf, start, end),
    )
    assert all(np.array_equal(a, b) for a, b in zip(fast, slow, strict=True))
    (fast_value, fast_ok), (slow_value, slow_ok) = (
        scan.parse_decimal(fields.buf, start, end),
        scan._parse_decimal_chars(fields.buf, start, end),
    )
    assert np.array_equal(fast_ok, slow_ok) and np.array_equal(fast_value[fast_ok], slow_value[slow_ok])
    value, ok = scan.parse_tokens(fields.buf, start, end, {b"0": 0, b"1": 1, b"FALSE": 0, b"abc": 7})
    expected = {b"0": 0, b"1": 1, b"FALSE": 0, b"abc": 7}
    assert ok.tolist() == [c in expected for c in cells]
    assert value[ok].tolist() == [expected[c] for c in cells if c in expected]
