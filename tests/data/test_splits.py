"""Dataset registry, leak-free splits, the graph cache and the vectorised graph builder."""

import dataclasses
import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import configs
from kdgat.common.errors import DataError
from kdgat.data.automotive.graphs import EDGE_FEATURES, NODE_FEATURES, build_graphs
from kdgat.data.automotive.modality import AUTOMOTIVE
from kdgat.data.automotive.readers import read_frames
from kdgat.data.dataset import Splits, load_splits
from kdgat.data.graphset import GraphSet, gather_graphs
from kdgat.data.prepare import prepare_file
from tests.helpers import shared_data

AUTOMOTIVE_KNOBS = {f.name for f in dataclasses.fields(configs.AutomotiveConfig)}


def make_cfg(
    tmp_path: Path, dataset: str = "synthetic", **dataset_config: object
) -> configs.ExperimentConfig:
    """A CAN config; CAN knobs (window, stride, na_frames) go to dataset_config.automotive."""
    cfg = configs.ExperimentConfig(dataset=dataset)  # type: ignore[arg-type]
    can = {k: dataset_config.pop(k) for k in list(dataset_config) if k in AUTOMOTIVE_KNOBS}
    automotive = dataclasses.replace(
        cfg.dataset_config.automotive, synthetic_train_frames=20_000, synthetic_test_frames=6_000, **can
    )
    d = dataclasses.replace(
        cfg.dataset_config, cache_dir=tmp_path / "cache", automotive=automotive, **dataset_config
    )
    return dataclasses.replace(cfg, dataset_config=d)


def covered(graphs: GraphSet, source: str, length: int) -> np.ndarray:
    """Boolean mask of the frames of `source` that some window of `graphs` contains."""
    mine = np.array([s == source for s in graphs.source], dtype=bool)
    delta = np.zeros(length + 1, dtype=np.int64)
    np.add.at(delta, graphs.frame_start.numpy()[mine], 1)
    np.add.at(delta, graphs.frame_stop.numpy()[mine], -1)
    return np.cumsum(delta)[:length] > 0


def assert_no_shared_frames(splits: Splits) -> None:
    parts = {"train": splits.train, "val": splits.val, **{f"test:{k}": v for k, v in splits.test.items()}}
    sources = {s for g in parts.values() for s in g.source}
    for source in sources:
        length = max(int(g.frame_stop.max()) for g in parts.values() if len(g))
        owners = np.stack([covered(g, source, length) for g in parts.values()])
        shared = np.flatnonzero(owners.sum(axis=0) > 1)
        assert len(shared) == 0, f"frames {shared[:5].tolist()} of {source} are in two splits"


@pytest.mark.parametrize("stride", [50, 25])
def test_no_frame_in_two_splits_synthetic(tmp_path: Path, stride: int) -> None:
    splits = load_splits(make_cfg(tmp_path, window=50, stride=stride))
    assert len(splits.train) and len(splits.val) and len(splits.test_all)
    assert_no_shared_frames(splits)
    if stride < 50:  # overlapping windows inside a split do share frames: the check is not vacuous
        starts = splits.train.frame_start[:2].tolist()
        assert starts[1] - starts[0] == stride


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.parametrize("stride", [100, 50])
def test_no_frame_in_two_splits_flat_dataset(tmp_path: Path, stride: int) -> None:
    root = shared_data("road_masquerade_statgraph")
    splits = load_splits(make_cfg(tmp_path, "road", data_root=root, window=100, stride=stride))
    assert len(splits.test) == 9 and all(len(g) for g in splits.test.values())
    assert_no_shared_frames(splits)
    x = splits.train.materialise().x
    assert (x[:, NODE_FEATURES.index("has_timing")] != x[0, NODE_FEATURES.index("has_timing")]).sum() == 0


def test_cache_second_run_hits_and_matches(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    first = load_splits(cfg)
    assert first.preprocess["cache_misses"] > 0 and first.preprocess["cache_hits"] == 0
    second = load_splits(cfg)
    assert second.preprocess["cache_misses"] == 0
    assert torch.equal(first.train.materialise().x, second.train.materialise().x)
    assert torch.equal(first.test_all.y, second.test_all.y)
    assert first.vocabulary == second.vocabulary
    other = load_splits(make_cfg(tmp_path, window=40, stride=40))  # new graph params: new entries
    assert other.preprocess["cache_hits"] == 0


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage"])
def test_corrupt_cache_entry_is_rebuilt(tmp_path: Path, damage: str) -> None:
    cfg = make_cfg(tmp_path)
    reference = load_splits(cfg)
    # Read before the damage: the splits map their entries, and truncating a mapped file in place
    # (which kdgat never does: entries are replaced by rename) would fault their next read.
    reference_x, reference_y = reference.train.materialise().x, reference.val.y
    del reference
    entries = sorted((tmp_path / "cache" / "graphs").rglob("*.kdg"))
    assert entries
    victim = entries[0]
    data = victim.read_bytes()
    victim.write_bytes(
        {
            "truncate": data[: len(data) // 2],
            "flip": data[:-100] + bytes([data[-100] ^ 0xFF]) + data[-99:],
            "empty": b"",
            "garbage": b"not a cache entry" * 10,
        }[damage]
    )
    again = load_splits(cfg)
    assert again.preprocess["cache_misses"] == 1
    assert torch.equal(reference_x, again.train.materialise().x) and torch.equal(reference_y, again.val.y)
    assert victim.read_bytes() == data  # rebuilt to the same bytes
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def test_cache_follows_file_contents(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    rows = [f"{i * 0.001:.6f},{0x100 + i % 7:03X},00112233,0" for i in range(400)]
    path.write_text("timestamp,arbitration_id,data_field,attack\n" + "\n".join(rows) + "\n")
    d = make_cfg(tmp_path, window=10, stride=10).dataset_config
    assert not prepare_file(path, "can4", "whole", d, AUTOMOTIVE).cached
    assert prepare_file(path, "can4", "whole", d, AUTOMOTIVE).cached
    path.write_text(path.read_text().replace("00112233,0\n", "00112244,0\n", 1))
    assert not prepare_file(path, "can4", "whole", d, AUTOMOTIVE).cached


def test_registry_mismatch_lists_expected_and_found(tmp_path: Path) -> None:
    (tmp_path / "stuff").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError) as info:
        load_splits(make_cfg(tmp_path, "daga", data_root=tmp_path))
    message = str(info.value)
    assert "daga_volvo_v40" in message and "Expected" in message and "found: notes.txt, stuff/" in message
    with pytest.raises(DataError, match="does not exist"):
        load_splits(make_cfg(tmp_path, "hcrlsa", data_root=tmp_path / "missing"))
    with pytest.raises(DataError, match="needs its data folder"):
        load_splits(make_cfg(tmp_path, "set01"))


def test_wrong_format_under_dataset_name_says_what_it_looks_like(tmp_path: Path) -> None:
    folder = tmp_path / "daga_volvo_v40"
    folder.mkdir()
    (folder / "x.csv").write_text("timestamp,arbitration_id,data_field,attack\n1.0,123,00,0\n")
    with pytest.raises(DataError, match="looks like the 4-column"):
        load_splits(make_cfg(tmp_path, "daga", data_root=tmp_path))


@pytest.mark.slow
@pytest.mark.real_data
def test_real_datasets_through_the_registry(tmp_path: Path) -> None:
    data = shared_data("hcrl_sa").parent
    splits = load_splits(make_cfg(tmp_path, "set04", data_root=data, window=100, stride=100))
    assert set(splits.test) == {"test_01_known_vehicle_known_attack", "test_06_masquerade"}
    assert sum(splits.files.values()) == 52783 + 175015
    assert_no_shared_frames(splits)
    splits = load_splits(make_cfg(tmp_path, "daga", data_root=data, window=100, stride=100))
    assert len(splits.test) == 7 and splits.num_ids > 40


def test_flat_hcrl_car_hacking_layout(tmp_path: Path) -> None:
    folder = tmp_path / "hcrl_ch"
    folder.mkdir()
    rng = np.random.default_rng(0)
    csv_rows, log_rows = [], []
    for i in range(3000):
        t, can_id = 1478198376.0 + i * 0.0005, [0x316, 0x18F, 0x260, 0x2A0][i % 4]
        data = rng.integers(0, 256, 8)
        flag = "T" if 1000 <= i < 1100 else "R"
        csv_rows.append(f"{t:.6f},{can_id:04x}," + "8," + ",".join(f"{b:02x}" for b in data) + f",{flag}")
        log_rows.append(
            f"Timestamp: {t:.6f}        ID: {can_id:04x}    000    DLC: 8    "
            + " ".join(f"{b:02x}" for b in data)
        )
    (folder / "DoS_dataset.csv.gz").write_bytes(gzip.compress(("\n".join(csv_rows) + "\n").encode()))
    (folder / "normal_run_data.txt").write_text("\n".join(log_rows) + "\n")
    splits = load_splits(make_cfg(tmp_path, "hcrlch", data_root=tmp_path, window=50, stride=25))
    assert set(splits.test) == {"DoS_dataset", "normal_run_data"}
    assert splits.train.y.sum() > 0
    assert_no_shared_frames(splits)


def test_skipped_rows_are_reported_on_splits(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, malformed="skip")
    root = load_splits(cfg).data_root
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    victim = sorted(copy.glob("train_*/*.csv.gz"))[0]
    text = gzip.decompress(victim.read_bytes()).replace(b"\n", b"\nbroken,row\n", 3)
    victim.write_bytes(gzip.compress(text))
    cfg = make_cfg(tmp_path, malformed="skip", data_root=copy)
    cfg = dataclasses.replace(cfg, dataset="set01")  # any split-folder dataset reads copy/train_*
    splits = load_splits(cfg)
    assert splits.skipped_rows == {str(victim): 3}
    with pytest.raises(DataError, match=r"attack-free.csv.gz:2: 'broken,row'"):
        load_splits(
            dataclasses.replace(
                cfg, dataset_config=dataclasses.replace(cfg.dataset_config, malformed="error")
            )
        )


def test_graph_builder_features_by_hand(tmp_path: Path) -> None:
    path = tmp_path / "tiny.csv"
    path.write_text(
        "timestamp,arbitration_id,data_field,attack\n"
        "0.000,100,0000,0\n0.010,200,FF,0\n0.020,100,0A00,1\n0.030,100,0000,0\n"
        "0.040,300,01020304,0\n0.050,300,01020304,0\n0.060,300,01020304,0\n0.070,300,01020304,0\n"
    )
    frames = read_frames(path, "can4")
    graphs = build_graphs(frames, 0, len(frames), 4, 4, {0x100: 1})
    assert graphs.x.shape[1] == len(NODE_FEATURES) and graphs.edge_attr.shape[1] == len(EDGE_FEATURES)
    assert graphs.y.tolist() == [1, 0] and graphs.node_ptr.tolist() == [0, 2, 3]
    x = {name: graphs.x[:, i] for i, name in enumerate(NODE_FEATURES)}
    assert graphs.node_id.tolist() == [1, 0, 0]
    assert x["count"].tolist() == pytest.approx([0.75, 0.25, 1.0])
    assert x["byte0_range"][0] == pytest.approx(10 / 255)
    assert x["payload_entropy"][2] == pytest.approx(2 / 3)  # 4 distinct bytes: 2 bits, scaled by 1/3
    assert x["payload_change_rate"][0] == pytest.approx(1.0)
    assert x["first_position"][0] == 0 and x["last_position"][0] == pytest.approx(0.75)
    assert x["is_unknown_id"].tolist() == [0.0, 1.0, 1.0] and x["has_timing"].tolist() == [1.0, 1.0, 1.0]
    assert graphs.node_label.tolist() == [1, 0, 0]
    # edges of graph 0: 100->200, 200->100, 100->100
    edges = graphs.edge_index[:, : int(graphs.edge_ptr[1])].T.tolist()
    assert sorted(map(tuple, edges)) == [(0, 0), (0, 1), (1, 0)]
    batch = gather_graphs(graphs, torch.tensor([1, 0]))
    assert batch.num_graphs == 2 and batch.batch.tolist() == [0, 1, 1]


@pytest.mark.parametrize("id_range", [0x800, 1 << 29])  # 11-bit IDs (counting path) and 29-bit (sort path)
@pytest.mark.parametrize("stride", [20, 10])
def test_vectorised_builder_equals_per_window_reference(tmp_path: Path, id_range: int, stride: int) -> None:
    from benchmarks.preprocess import reference_graphs

    rng = np.random.default_rng(3)
    n = 1000
    ids = rng.choice(rng.integers(0, id_range, 30), n)
    lengths = rng.integers(0, 9, n)
    stamps = 1e9 + np.arange(n) * 0.0007 + rng.uniform(0, 1e-4, n)
    payloads = [rng.bytes(int(k)).hex().upper() for k in lengths]
    rows = [f"{stamps[i]:.6f},{ids[i]:X},{payloads[i]},{int(i % 97 == 0)}" for i in range(n)]
    path = tmp_path / "fuzz.csv"
    path.write_text("timestamp,arbitration_id,data_field,attack\n" + "\n".join(rows) + "\n")
    frames = read_frames(path, "can4")
    graphs = build_graphs(frames, 0, len(frames), 20, stride, {})
    ref_x, ref_e, _ = reference_graphs(path, 20, stride)
    xs = np.split(graphs.x[:, :-1].numpy(), graphs.node_ptr[1:-1].numpy())
    es = np.split(graphs.edge_attr.numpy(), graphs.edge_ptr[1:-1].numpy())
    assert len(xs) == len(ref_x)
    for a, b in zip(xs, ref_x, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)
    for a, b in zip(es, ref_e, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_progress_is_quiet_when_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    from kdgat.data.prepare import Progress

    progress = Progress(3)
    for _ in range(3):
        progress.update(1000)
    assert not progress.enabled and capsys.readouterr().err == ""


@pytest.mark.real_data
def test_stratified_validation_sees_attacks_that_lie_early(tmp_path: Path) -> None:
    """can-train-and-test set_01 puts its training attacks early in each capture: the last
    val_fraction of every file is attack-free, so 'end' validates on benign windows only."""
    root = shared_data("can_train_and_test")
    end = load_splits(make_cfg(tmp_path, "set01", data_root=root, val_placement="end"))
    stratified = load_splits(make_cfg(tmp_path, "set01", data_root=root))
    assert int(end.val.y.sum()) == 0
    assert int(stratified.val.y.sum()) > 0
    assert len(stratified.val) == len(end.val)
    assert int(stratified.train.y.sum()) > 0


@pytest.mark.real_data
@pytest.mark.parametrize("stride", [100, 50])
def test_stratified_blocks_share_no_frame(tmp_path: Path, stride: int) -> None:
    from kdgat.data.splits import block_bounds

    labels = np.zeros(10_000, dtype=np.int8)
    labels[1_000:1_500] = 1  # attacks early in the capture
    bounds = block_bounds("train_val", labels, 0.2, 0.0, "stratified")
    # 100 attack frames in validation: its proportional share of the file's 500
    assert bounds == {"train": (0, 1_400), "val": (1_400, 3_400), "train_tail": (3_400, 10_000)}
    assert block_bounds("train_val", labels, 0.2, 0.0, "end") == {"train": (0, 8_000), "val": (8_000, 10_000)}
    labels[:] = 0  # no attacks: the end, as before
    assert block_bounds("train_val", labels, 0.2, 0.0, "stratified") == {
        "train": (0, 8_000),
        "val": (8_000, 10_000),
    }
    root = shared_data("can_train_and_test")
    assert_no_shared_frames(load_splits(make_cfg(tmp_path, "set01", data_root=root, stride=stride)))
