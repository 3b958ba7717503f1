"""The modality-neutral data layer: configs' level table against the registry, config migration,
knobs of other modalities, and the watertreatment modality end to end."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import configs
from configs import ConfigError, DatasetConfig, ExperimentConfig, WaterTreatmentConfig
from kdgat.config.codec import from_dict, load_yaml, to_dict
from kdgat.config.resolve import resolve
from kdgat.data.dataset import load_splits
from kdgat.data.registry import MODALITIES
from tests.helpers import FIXTURES, REPO, run_train, shared_data


def test_level_table_matches_the_registry() -> None:
    assert set(configs.MODALITY_DATASETS) == set(MODALITIES) == set(configs.LEVEL_CHOICES["modality"])
    for name, modality in MODALITIES.items():
        assert sorted(configs.MODALITY_DATASETS[name]) == sorted(modality.datasets), name
        assert dataclasses.is_dataclass(modality.settings(DatasetConfig()))  # its knobs, by its name
        assert modality.widths == (len(modality.node_features), len(modality.edge_features))
    every = {d for names in configs.MODALITY_DATASETS.values() for d in names}
    assert every == set(configs.LEVEL_CHOICES["dataset"])


def test_a_config_yaml_from_before_the_modality_sub_configs_loads() -> None:
    """Written by the code of 2026-11 (flat dataset_config.window / stride / na_frames)."""
    cfg = load_yaml(FIXTURES / "config_2026-11_automotive.yaml")
    assert (cfg.dataset_config.automotive.window, cfg.dataset_config.automotive.stride) == (50, 25)
    assert cfg.dataset_config.automotive.na_frames == "drop"
    resolved = resolve(cfg)
    again = from_dict(to_dict(resolved))
    assert again == resolved  # and it round-trips in today's layout


def test_a_knob_of_another_modality_is_refused() -> None:
    water = dataclasses.replace(DatasetConfig(), watertreatment=WaterTreatmentConfig(window=12))
    with pytest.raises(ConfigError, match=r"watertreatment.window belong.*--modality is 'automotive'"):
        resolve(ExperimentConfig(dataset_config=water))
    resolve(ExperimentConfig(modality="watertreatment", dataset_config=water))


def test_watertreatment_split_follows_the_learning_type() -> None:
    vgae = resolve(
        ExperimentConfig(
            modality="watertreatment",
            learning_type="unsupervised",
            model_architecture="VGAE",
            training_mode="normals_only",
        )
    )
    assert vgae.dataset_config.watertreatment.split == "competition"
    gat = resolve(ExperimentConfig(modality="watertreatment"))
    assert gat.dataset_config.watertreatment.split == "dataset04_blocks"
    competition = dataclasses.replace(
        DatasetConfig(), watertreatment=WaterTreatmentConfig(split="competition")
    )
    with pytest.raises(ConfigError, match="no attacks"):
        resolve(ExperimentConfig(modality="watertreatment", dataset_config=competition))


def batadal_cfg(tmp_path: Path, **water: object) -> ExperimentConfig:
    root = shared_data("watertreatment_batadal")
    d = DatasetConfig(
        data_root=root, cache_dir=tmp_path / "cache", watertreatment=WaterTreatmentConfig(**water)
    )
    return resolve(
        ExperimentConfig(
            modality="watertreatment",
            dataset="batadal",
            learning_type="unsupervised",
            model_architecture="VGAE",
            training_mode="normals_only",
            dataset_config=d,
            recipe="none",  # the data layer's own defaults (stats, decoder) are what is tested
        )
    )


@pytest.mark.real_data
def test_batadal_competition_split_decides_every_labelled_hour(tmp_path: Path) -> None:
    splits = load_splits(batadal_cfg(tmp_path, window=24))
    # Each file's first 23 hours are not decided; dataset03 8761 h, dataset04 4177 h, test 2089 h.
    assert (len(splits.train), len(splits.val)) == (8761 - 23, 4177 - 23)
    test = splits.test["BATADAL_test_dataset_labelled"]
    assert len(test) == 2089 - 23 and int(test.y.sum()) == 407  # all test attacks start after hour 23
    assert int(splits.train.y.sum()) == 0 and int(splits.val.y.sum()) == 492
    assert set(test.attack_type) - {"benign"} == {f"attack{k}" for k in range(8, 15)}
    assert int(test.node_ptr[1]) == 31 and int(test.edge_ptr[1]) == 112  # the C-Town process graph
    assert splits.num_ids == 32  # 31 plant elements + UNK
    # Windows never cross a file: the first decided hour of the test file is its 24th.
    assert int(test.frame_start[0]) == 0 and int(test.frame_stop[0]) == 24
    assert len(set(splits.train.source)) == 1 and "dataset03" in splits.train.source[0]


@pytest.mark.real_data
def test_batadal_block_split_validates_on_a_dataset04_block_with_attacks(tmp_path: Path) -> None:
    splits = load_splits(batadal_cfg(tmp_path, split="dataset04_blocks", window=12))
    val_sources = set(splits.val.source)
    assert len(val_sources) == 1 and "dataset04_fully_labelled" in next(iter(val_sources))
    assert int(splits.val.y.sum()) > 0 and int(splits.train.y.sum()) > 0
    train04 = [i for i, s in enumerate(splits.train.source) if "dataset04" in s]
    train_hours = {
        h for i in train04 for h in range(int(splits.train.frame_start[i]), int(splits.train.frame_stop[i]))
    }
    val_hours = {
        h
        for i in range(len(splits.val))
        for h in range(int(splits.val.frame_start[i]), int(splits.val.frame_stop[i]))
    }
    assert not train_hours & val_hours  # no dataset04 hour is in both


@pytest.mark.slow
@pytest.mark.real_data
def test_correlation_edges_come_from_benign_training_hours(tmp_path: Path) -> None:
    splits = load_splits(batadal_cfg(tmp_path, edges="correlation", correlation_threshold=0.9))
    edges = int(splits.train.edge_ptr[1])
    assert edges > 0
    both = load_splits(batadal_cfg(tmp_path, edges="both", correlation_threshold=0.9))
    assert int(both.train.edge_ptr[1]) > max(edges, 112) - 1


@pytest.mark.slow
def test_watertreatment_default_trains_and_reports_batadal_scores(tmp_path: Path) -> None:
    args = [
        "--modality", "watertreatment", "--learning-type", "unsupervised", "--model-architecture", "VGAE",
        "--training-mode", "normals_only", "--model-size", "tiny", "--device", "cpu",
        "--training.epochs", "2",
        "--dataset-config.watertreatment.window", "12",
        "--dataset-config.watertreatment.synthetic-train-hours", "600",
        "--dataset-config.watertreatment.synthetic-val-hours", "400",
        "--dataset-config.watertreatment.synthetic-test-hours", "400",
    ]  # fmt: skip
    result = run_train(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "BATADAL:" in result.stdout and "flagging every hour: S 0.7500" in result.stdout
    run_dir = next((tmp_path / "runs").rglob("run_*"))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    batadal = metrics["test"]["batadal"]
    assert batadal["flag_all"]["S"] == pytest.approx(0.75)
    assert batadal["S"] > batadal["flag_all"]["S"] and batadal["attacks"] >= 1
    assert len(batadal["per_attack"]) == batadal["attacks"]
    assert metrics["data"]["split_policy"] == "competition"
    rows = (run_dir / "predictions.csv").read_text().splitlines()
    assert rows[0].startswith("split,source,window,frame_start,frame_stop,time_start,time_stop")
    assert len(rows) - 1 == metrics["test"]["n"]
    decided = np.array([float(r.split(",")[6]) for r in rows[1:]])
    assert (np.diff(decided) == 3600.0).all()  # one decision per hour, in order


@pytest.mark.slow
@pytest.mark.real_data
def test_an_inp_without_an_element_of_the_log_exits_2(tmp_path: Path) -> None:
    source = shared_data("watertreatment_batadal")
    data = tmp_path / "plant"
    data.mkdir()
    for path in source.glob("BATADAL_*.csv.gz"):
        (data / path.name).symlink_to(path)
    import gzip

    inp = gzip.decompress((source / "c-town.inp.gz").read_bytes()).decode()
    (data / "c-town.inp").write_text(inp.replace(" PU11 ", " PU99 "))
    result = run_train(
        ["--modality", "watertreatment", "--dataset", "batadal", "--data-root", str(data), "--device", "cpu"],
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert "PU11" in result.stderr and "c-town.inp" in result.stderr and "Traceback" not in result.stderr
    assert not list((tmp_path / ".cache").rglob("*.kdg"))


def test_no_fixture_holds_an_absolute_path() -> None:
    for path in (p for p in FIXTURES.rglob("*") if p.is_file()):
        data = path.read_bytes()
        assert str(REPO).encode() not in data and b"/work/" not in data, path
