"""Detection on vehicles the model never saw: the agnostic feature set, calibration on the target
vehicle (which reads no label of its capture), floors at a glance and the transfer command."""

import dataclasses
import io
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from configs import AutomotiveConfig, DatasetConfig, ExperimentConfig, TrainingConfig
from kdgat.cli.transfer import main as transfer_main
from kdgat.config.codec import load_yaml
from kdgat.config.resolve import resolve
from kdgat.data.automotive.agnostic_features import AGNOSTIC_NODE_FEATURES, build_agnostic
from kdgat.data.automotive.graphs import build_raw
from kdgat.data.automotive.readers import read_frames
from kdgat.data.calibration import calibrate, rank_vocabulary
from kdgat.data.registry import modality_of
from kdgat.evaluation.metrics import binary_metrics, floor_warning
from kdgat.experiment import run_experiment, run_floor_warnings
from kdgat.scoring.evaluate import result_lines
from tests.e2e.captures import frames_of, head_copy, late_arrivals, unheard_counts, unheard_windows
from tests.helpers import shared_data

SPARK = "test_02_unknown_vehicle_known_attack"


def tiny_config(root: Path, features: str = "default", **dataset) -> ExperimentConfig:
    return ExperimentConfig(
        model_size="tiny",
        device="cpu",
        runs_root=root / "runs",
        dataset_config=DatasetConfig(
            cache_dir=root / "cache",
            automotive=AutomotiveConfig(
                synthetic_train_frames=30_000, synthetic_test_frames=9_000, features=features
            ),
            **dataset,
        ),
        training_config=TrainingConfig(epochs=1),
    )


@pytest.mark.real_data
def test_agnostic_features_describe_each_id_against_its_own_window() -> None:
    frames = read_frames(shared_data("hcrl_sa") / SPARK / "fuzzing-Spark.csv.gz", "can4")
    window = 100
    raw, agnostic = (
        build_raw(frames, 0, 60_000, window, window),
        build_agnostic(frames, 0, 60_000, window, window),
    )
    # Same nodes, edges and labels as the default set; only the node features differ.
    for key in ("node_entity", "edge_index", "edge_attr", "node_ptr", "y", "node_label"):
        assert np.array_equal(raw[key], agnostic[key]), key
    x = agnostic["x"]
    assert x.shape == (len(raw["node_entity"]), len(AGNOSTIC_NODE_FEATURES)) and np.isfinite(x).all()
    col = {name: x[:, i] for i, name in enumerate(AGNOSTIC_NODE_FEATURES)}
    # A per-window reference for a few windows, straight from the frames.
    for g in (0, 1, 7, 300, 599):
        lo, hi = agnostic["node_ptr"][g], agnostic["node_ptr"][g + 1]
        ids = frames.can_id[g * window : (g + 1) * window]
        previous = set(frames.can_id[(g - 1) * window : g * window].tolist()) if g else None
        distinct = np.unique(ids)
        assert np.array_equal(agnostic["node_entity"][lo:hi], distinct)
        counts = np.array([(ids == i).sum() for i in distinct])
        assert np.allclose(col["share"][lo:hi], counts / window)
        assert np.allclose(col["priority_rank"][lo:hi], np.arange(len(distinct)) / max(len(distinct) - 1, 1))
        new = [float(previous is not None and i not in previous) for i in distinct.tolist()]
        assert np.array_equal(col["new_since_previous_window"][lo:hi], new)
        assert np.allclose(col["window_distinct_ids"][lo:hi], len(distinct) / window)
        t = frames.time[g * window : (g + 1) * window]
        assert np.allclose(col["window_log_duration"][lo:hi], np.log1p((t[-1] - t[0]) * 1e3), atol=1e-5)
    # Fuzzing windows bring bursts of IDs the window before did not have.
    attack = np.repeat(agnostic["y"] == 1, np.diff(agnostic["node_ptr"]))
    assert col["window_new_id_share"][attack].mean() > 2 * col["window_new_id_share"][~attack].mean()


def test_an_agnostic_run_learns_no_identity(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, features="agnostic")
    modality = modality_of(resolve(cfg))
    assert not modality.learns_identity and modality.node_features == AGNOSTIC_NODE_FEATURES
    assert modality_of(resolve(tiny_config(tmp_path))).learns_identity  # the default set still does
    run_dir = run_experiment(cfg)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["data"]["vocabulary_size"] == 0
    assert load_yaml(run_dir / "config.yaml").dataset_config.automotive.features == "agnostic"
    from kdgat.training.checkpoint import read_best

    best = read_best(run_dir, __import__("torch").device("cpu"))
    dims = best.info.input_dims
    assert (
        dims["node_dim"] == len(AGNOSTIC_NODE_FEATURES)
        and dims["num_ids"] == 1
        and best.info.vocabulary == {}
    )
    assert 0 < metrics["test"]["auroc"] <= 1


def test_rank_vocabulary_maps_the_new_cars_ids_by_priority_quantile() -> None:
    train = {0x100: 1, 0x200: 2, 0x300: 3}
    assert rank_vocabulary(np.array([0x50, 0x7FF, 0x60, 0x60]), train) == {0x50: 1, 0x60: 2, 0x7FF: 3}
    assert rank_vocabulary(np.array([5]), train) == {5: 1}
    assert rank_vocabulary(np.array([5]), {}) == {}


@pytest.mark.real_data
@pytest.mark.slow
def test_calibration_reads_no_label_of_its_capture(tmp_path: Path) -> None:
    spark = shared_data("hcrl_sa") / SPARK
    clean = head_copy(spark / "DoS-spark.csv.gz", tmp_path / "clean" / "calibration.csv.gz", 6000)
    corrupt = head_copy(spark / "DoS-spark.csv.gz", tmp_path / "corrupt" / "calibration.csv.gz", 6000, True)
    target = head_copy(spark / "fuzzing-Spark.csv.gz", tmp_path / "target.csv.gz", 40_000)
    for features in ("default", "agnostic"):
        cfg = resolve(dataclasses.replace(tiny_config(tmp_path, features), dataset="hcrlsa"))
        a = calibrate(clean, "can4", cfg, {0x100: 1, 0x200: 2}, seconds=2.0)
        b = calibrate(corrupt, "can4", cfg, {0x100: 1, 0x200: 2}, seconds=2.0)
        assert a.normalisation == b.normalisation and a.vocabulary == b.vocabulary and a.records == b.records
        assert int(a.graphs.y.sum()) == 0 and 0 < a.records < 6000
    # End to end: a run trained with --dataset-config.calibration, then kdgat.evaluate --calibration.
    outputs = []
    for calibration in (clean, corrupt):
        cfg = tiny_config(
            tmp_path / calibration.parent.name, calibration=calibration, calibration_seconds=2.0
        )
        run_dir = run_experiment(cfg)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["data"]["calibration"]["records"] > 0
        from kdgat.cli.evaluate import main as evaluate_main

        args = [str(run_dir), "--data-root", str(target), "--dataset", "hcrlsa", "--name", "t"]
        assert evaluate_main([*args, "--calibration", str(calibration), "--calibration-seconds", "2"]) == 0
        result = json.loads((run_dir / "eval_t.json").read_text())
        # The test windows were decided on the calibration windows' scores, the run's own
        # threshold recorded beside; so were the evaluated target's.
        choice = metrics["calibration_threshold"]
        assert choice["rule"] == "quantile" and choice["run_threshold"] == metrics["threshold"]
        assert metrics["test"]["threshold"] == choice["threshold"]
        assert metrics["test_by_threshold"]["calibration"]["threshold"] == choice["threshold"]
        both = result["by_threshold"]
        assert (
            result["threshold"] == result["threshold_choice"]["threshold"] == both["calibration"]["threshold"]
        )
        assert (
            both["run"]["threshold"] == metrics["threshold"]
            and both["calibration"]["f1"] == result["all"]["f1"]
        )
        outputs.append((metrics["test"], result["all"], choice, result["by_threshold"]))
        uncalibrated = run_dir / "eval_u.json"
        assert evaluate_main([*args[:-1], "u"]) == 0
        assert json.loads(uncalibrated.read_text())["all"]["n"] == result["all"]["n"]
    assert outputs[0] == outputs[1]  # flipped labels of the calibration capture change nothing


def test_unheard_ids_are_the_calibrations_absent_identities_over_the_scored_windows(tmp_path: Path) -> None:
    from kdgat.data.calibration import Calibration

    calibration = Calibration(tmp_path / "cal.csv", 200, {0x100: 1, 0x200: 2}, {}, None)  # type: ignore[arg-type]
    block = {  # three windows of frames 0-99, 100-199, 200-299: IDs {100, 200}, {100, 300}, {300, 400}
        "y": np.zeros(3, dtype=np.int64),
        "node_ptr": np.array([0, 2, 4, 6]),
        "node_entity": np.array([0x100, 0x200, 0x100, 0x300, 0x300, 0x400]),
        "frame_start": np.array([0, 100, 200]),
    }
    flags, by_id = calibration.unheard(tmp_path / "other.csv", block)
    assert flags.tolist() == [False, True, True] and by_id == {0x300: 2, 0x400: 1}
    # The calibration capture itself: its windows holding calibration records are not scored.
    flags, by_id = calibration.unheard(tmp_path / "cal.csv", block)
    assert flags.tolist() == [True] and by_id == {0x300: 1, 0x400: 1}


@pytest.mark.real_data
@pytest.mark.slow
def test_evaluate_names_the_ids_an_engine_off_calibration_never_heard(tmp_path: Path) -> None:
    # set_04's accessory-4 is ignition on, engine off: 0x280 and 0x281 (engine) are absent from
    # it and present in its engine-running captures. The engine-off capture is also one of the
    # scored ones, calibrated on its first 5 s: its later windows are scored, the first not.
    # The oracle is pandas over the same frames.
    set04 = shared_data("can_train_and_test") / "set_04"
    target = tmp_path / "target"
    engine_off = head_copy(set04 / "train_01_attack_free" / "accessory-4.csv.gz", target / "off.csv.gz", 8000)
    head_copy(set04 / "train_02_with_attacks" / "rpm-accessory-4.csv.gz", target / "rpm.csv.gz", 20_000)
    engine_on = head_copy(
        set04 / "test_01_known_vehicle_known_attack" / "standstill-1.csv.gz", tmp_path / "on.csv.gz", 8000
    )
    run_dir = run_experiment(tiny_config(tmp_path))
    from kdgat.cli.evaluate import main as evaluate_main

    off_ids, _, off_time = frames_of(engine_off)
    off_records = int((off_time < off_time[0] + 5.0).sum())
    cases = {
        "off": (["--calibration", str(engine_off), "--calibration-seconds", "5"], set(off_ids[:off_records])),
        "on": (["--calibration", str(engine_on)], set(frames_of(engine_on)[0])),
    }
    for name, (calibration, heard) in cases.items():
        args = [str(run_dir), "--data-root", str(target), "--dataset", "set04", "--name", name]
        assert evaluate_main([*args, *calibration]) == 0
        result = json.loads((run_dir / f"eval_{name}.json").read_text())
        every: list[set[int]] = []
        benign: list[bool] = []
        for capture, records in (("off.csv.gz", off_records if name == "off" else 0), ("rpm.csv.gz", 0)):
            unheard, labels = unheard_windows(target / capture, heard, records)
            found = result["per_file"][capture]["unheard_in_calibration"]
            assert result["per_file"][capture]["n"] == len(unheard)
            assert found["ids"] == unheard_counts(unheard)
            assert found["windows"] == pytest.approx(np.mean([bool(u) for u in unheard]))
            every += unheard
            benign += [bool(u) for u, y in zip(unheard, labels, strict=True) if y == 0]
        summary = result["all"]["unheard_in_calibration"]
        assert summary["ids"] == unheard_counts(every)
        assert summary["windows"] == pytest.approx(np.mean([bool(u) for u in every]))
        assert summary["benign_windows"] == pytest.approx(np.mean(benign))
        warned = [w for w in result["warnings"] if "never heard" in w]
        if name == "off":
            assert 0 < result["per_file"]["off.csv.gz"]["n"] < 80  # of its 80 windows, the first not scored
            assert result["per_file"]["rpm.csv.gz"]["unheard_in_calibration"]["benign_windows"] == 1.0
            assert {"0x280", "0x281"} <= set(summary["ids"])
            assert (
                len(warned) == 1
                and "100.0% of the benign windows" in warned[0]
                and "engine running" in warned[0]
            )
        else:
            assert "0x280" not in summary["ids"] and summary["benign_windows"] < 0.05
    assert evaluate_main([str(run_dir), "--data-root", str(target), "--dataset", "set04", "--name", "u"]) == 0
    uncalibrated = json.loads((run_dir / "eval_u.json").read_text())
    assert "unheard_in_calibration" not in uncalibrated["all"]  # nothing to have heard without one


@pytest.mark.real_data
@pytest.mark.slow
def test_a_run_trained_with_a_calibration_names_the_ids_it_never_heard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A set_04 run whose test folders are decided with an engine-off calibration: accessory-4's
    # first 7 s (the bus waking in them), the capture itself one of test_01's. The engine-running
    # captures hold 0x280 and 0x281 in every window, the rest of the engine-off one none: shares
    # between 0 and 1, the benign one apart from the overall one where the masquerade's attack
    # windows are. metrics.json names the IDs per test folder and over them all, as eval_*.json
    # does per file; the oracle is pandas over the frames.
    set04 = shared_data("can_train_and_test") / "set_04"
    masquerade = set04 / "test_06_masquerade" / "masquerade-timed-4.csv.gz"
    root = tmp_path / "set_04"
    # Its first 6000 frames: attack windows in both the training and the validation block.
    head_copy(masquerade, root / "train_01" / "m.csv.gz", 6000)
    mixed, rpm_folder = root / "test_01_mixed", root / "test_02_rpm"
    engine_off = head_copy(set04 / "train_01_attack_free" / "accessory-4.csv.gz", mixed / "off.csv.gz", 8000)
    engine_on = head_copy(
        set04 / "test_01_known_vehicle_known_attack" / "standstill-1.csv.gz", mixed / "on.csv.gz", 6000
    )
    # 10 benign windows, then attacks: the training file's own first frames (only their IDs matter here).
    attacked = head_copy(masquerade, mixed / "z.csv.gz", 3000)
    rpm = head_copy(
        set04 / "train_02_with_attacks" / "rpm-accessory-4.csv.gz", rpm_folder / "rpm.csv.gz", 4000
    )
    off_ids, _, off_time = frames_of(engine_off)
    records = int((off_time < off_time[0] + 7.0).sum())
    groups = {
        "test_01_mixed": [(engine_off, records), (engine_on, 0), (attacked, 0)],
        "test_02_rpm": [(rpm, 0)],
    }
    heard = set(off_ids[:records])

    def trained(**calibration: object) -> dict:
        cfg = tiny_config(tmp_path, data_root=root, **calibration)
        run_dir = run_experiment(dataclasses.replace(cfg, dataset="set04"))
        return json.loads((run_dir / "metrics.json").read_text())

    metrics = trained(calibration=engine_off, calibration_seconds=7.0)
    printed = capsys.readouterr().out
    every: list[tuple[set[int], int]] = []
    for group, captures in groups.items():
        windows = [
            w for path, skip in captures for w in zip(*unheard_windows(path, heard, skip), strict=True)
        ]
        entry = metrics["test_by_split"][group]
        found = entry["unheard_in_calibration"]
        assert entry["n"] == len(windows) == metrics["data"]["test_graphs"][group]
        assert found["ids"] == unheard_counts([u for u, _ in windows])
        assert found["windows"] == pytest.approx(np.mean([bool(u) for u, _ in windows]))
        assert found["benign_windows"] == pytest.approx(np.mean([bool(u) for u, y in windows if y == 0]))
        every += windows
    summary = metrics["test"]["unheard_in_calibration"]
    assert summary["ids"] == unheard_counts([u for u, _ in every])
    assert summary["windows"] == pytest.approx(np.mean([bool(u) for u, _ in every]))
    assert summary["benign_windows"] == pytest.approx(np.mean([bool(u) for u, y in every if y == 0]))
    assert set(summary["ids"]) == {"0x280", "0x281"} and 0 < summary["benign_windows"] < 1
    assert summary["windows"] != summary["benign_windows"]
    warned = [w for w in metrics["warnings"] if "never heard" in w]
    assert len(warned) == 1 and f"{summary['benign_windows']:.1%} of the benign windows" in warned[0]
    # Printed before training starts, as the other data warnings are.
    assert printed.index(f"warning: {warned[0]}") < printed.index("finished ")
    # The bus wakes in those 7 s: the IDs first heard after 2 s are named, and warned of.
    heard_count, late = late_arrivals(engine_off, 7.0)
    fitted = metrics["data"]["calibration"]
    assert (fitted["identities_heard"], fitted["first_heard_late"]) == (heard_count, late)
    waking = [w for w in metrics["warnings"] if "first heard more than 2 s after its start" in w]
    assert len(waking) == 1 and waking[0].startswith(f"{len(late)} of the {heard_count} identities")
    assert printed.index(f"warning: {waking[0]}") < printed.index("finished ")
    # Without a calibration no capture was to hear the IDs: nothing is recorded.
    plain = trained()
    tests = [plain["test"], *plain["test_by_split"].values()]
    assert all("unheard_in_calibration" not in t for t in tests)
    assert not any("never heard" in w for w in plain["warnings"])


def test_floor_warnings_say_when_a_result_flags_everything() -> None:
    y = np.array([1, 1, 0, 0, 0, 0])
    everything = binary_metrics(y, np.ones(6), 0.5)
    good = binary_metrics(y, y.astype(float), 0.5)
    assert "within 0.01 of flagging every window" in floor_warning("test_02", everything)
    assert floor_warning("test_01", good) is None
    nothing = binary_metrics(y, np.zeros(6), 0.5)  # flags no window: F1 0, far below the floor
    assert "F1 0.0000 is below flagging every window (F1 0.5000" in floor_warning("test_03", nothing)
    metrics = {"test": good, "test_by_split": {"test_01": good, "test_02": everything}}
    (warning,) = run_floor_warnings(metrics)
    assert warning.startswith("test_by_split.test_02: F1 0.5000")
    evaluation = {"all": everything, "warnings": [floor_warning("all", everything)]}
    assert "margin +0.0000" in result_lines(evaluation) and "warning: all" in result_lines(evaluation)


@pytest.mark.real_data
@pytest.mark.slow
def test_transfer_command_writes_the_matrix_and_heatmap_for_two_runs_and_three_targets(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    spark = shared_data("hcrl_sa") / SPARK
    dos = head_copy(spark / "DoS-spark.csv.gz", tmp_path / "spark" / "DoS-spark.csv.gz", 30_000)
    fuzzing = head_copy(spark / "fuzzing-Spark.csv.gz", tmp_path / "fuzzing-Spark.csv.gz", 30_000)
    sonata = head_copy(
        spark.parent / "test_03_known_vehicle_unknown_attack" / "malfunction-sonata.csv.gz",
        tmp_path / "malfunction-sonata.csv.gz",
        30_000,
    )
    runs = [run_experiment(tiny_config(tmp_path, f)) for f in ("default", "agnostic")]
    png = tmp_path / "matrix.png"
    argv = [
        *map(str, runs),
        "--on",
        f"spark={dos.parent}",
        "--on",
        f"fuzzing={fuzzing}",
        "--on",
        f"sonata={sonata}",
    ]
    argv += ["--calibrate", f"spark={dos}@5", "--dataset", "hcrlsa", "--png", str(png), "--format", "csv"]
    assert transfer_main(argv) == 0
    out = capsys.readouterr().out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for run in runs:
        for name in ("spark", "fuzzing", "sonata"):
            assert (run / f"eval_{name}.json").is_file()
        spark_eval = json.loads((run / "eval_spark.json").read_text())
        fitted = spark_eval["calibration"]
        assert {k: fitted[k] for k in ("file", "seconds", "fine_tune_epochs")} == {
            "file": str(dos),
            "seconds": 5.0,
            "fine_tune_epochs": 0,
        }
        # Steady traffic: at most a slow ID (the Spark's 0x120 comes every 5 s) is late, no warning.
        assert (fitted["identities_heard"], fitted["first_heard_late"]) == late_arrivals(dos, 5.0)
        assert len(fitted["first_heard_late"]) < 2 and not any(
            "after its start" in w for w in spark_eval["warnings"]
        )
    for figure in ("F1", "AUROC", "benign FPR", "floor (flag-all F1)"):
        assert f"{figure}:" in out
    f1 = pd.read_csv(io.StringIO(out.split("F1:\n", 1)[1].split("\n\n", 1)[0]), index_col=0)
    assert f1.shape == (2, 3) and list(f1.columns) == ["spark", "fuzzing", "sonata"]
    assert f1.index[0].startswith("synthetic GAT default") and f1.index[1].startswith(
        "synthetic GAT agnostic"
    )
    fuzzing_f1 = json.loads((runs[1] / "eval_fuzzing.json").read_text())["all"]["f1"]
    assert f1.loc[f1.index[1], "fuzzing"] == pytest.approx(fuzzing_f1)
    # The same matrix later, from the eval files, with kdgat.results.
    from kdgat.cli.results import main as results_main

    saved = sys.stdout
    sys.stdout = buffer = io.StringIO()
    try:
        code = results_main(
            [str(tmp_path / "runs"), "--transfer", "f1", "--transfer-rows", "run", "--format", "csv"]
        )
    finally:
        sys.stdout = saved
    assert code == 0
    again = pd.read_csv(io.StringIO(buffer.getvalue()), index_col=0)
    assert again.loc[f1.index[1], "fuzzing"] == pytest.approx(fuzzing_f1)
    assert transfer_main([str(runs[0]), "--on", "x"]) == 2  # not NAME=PATH
    assert transfer_main([str(runs[0]), "--on", f"x={sonata}", "--calibrate", f"y={dos}"]) == 2


@pytest.mark.slow
def test_fine_tuning_a_vgae_on_calibration_windows_lowers_their_error(tmp_path: Path) -> None:
    import torch

    from kdgat.cli.evaluate import main as evaluate_main
    from kdgat.data.dataset import load_splits
    from kdgat.training.checkpoint import read_best
    from kdgat.training.fine_tune import fine_tune_vgae
    from kdgat.training.graph_trainer import mean_loss
    from kdgat.training.tasks import VGAETask

    cfg = dataclasses.replace(
        tiny_config(tmp_path),
        learning_type="unsupervised",
        model_architecture="VGAE",
        training_mode="normals_only",
    )
    run_dir = run_experiment(cfg)
    cfg = load_yaml(run_dir / "config.yaml")
    root = load_splits(cfg).data_root
    capture = sorted((root / "test_01_known_vehicle_known_attack").glob("*.csv.gz"))[0]
    fitted = calibrate(
        capture, "can4", cfg, read_best(run_dir, torch.device("cpu")).info.vocabulary, seconds=2.0
    )
    from kdgat.models import build_from_dims

    best = read_best(run_dir, torch.device("cpu"))
    model = build_from_dims(cfg, best.info.input_dims)
    model.load_state_dict(best.model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tuned = fine_tune_vgae(cfg, model, fitted.graphs, 3, torch.device("cpu"))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the original is kept
    task = VGAETask(cfg, fitted.graphs)
    cpu = torch.device("cpu")
    assert mean_loss(task, tuned, fitted.graphs, cpu, cfg) < mean_loss(task, model, fitted.graphs, cpu, cfg)
    args = [
        str(run_dir),
        "--data-root",
        str(capture),
        "--calibration",
        str(capture),
        "--calibration-seconds",
        "2",
    ]
    assert evaluate_main([*args, "--name", "tuned", "--fine-tune-epochs", "3"]) == 0
    assert json.loads((run_dir / "eval_tuned.json").read_text())["calibration"]["fine_tune_epochs"] == 3
    assert evaluate_main([*args[:3], "--fine-tune-epochs", "3"]) == 2  # no calibration to tune on
