"""A detector that calibrates itself on a car it never saw (kdgat.detect --calibrate-seconds) and an
artefact calibrated for one (kdgat.export --calibration FILE@SECONDS) decide every window as
`kdgat.evaluate --calibration` does on the same frames, for the run directory, ONNX and the
native model, frame by frame and in blocks; neither reads a label of the calibration frames."""

import collections
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from configs import DatasetConfig, ExperimentConfig, TrainingConfig
from kdgat.cli.detect import main as detect_main
from kdgat.cli.export import main as export_main
from kdgat.deploy.artefact import load_scorer
from kdgat.deploy.native import native_path
from kdgat.experiment import run_experiment
from kdgat.scoring.evaluate import decision_threshold
from kdgat.scoring.target import score_target
from tests.e2e.captures import head_copy, late_arrivals
from tests.e2e.test_deploy import data_root  # noqa: F401 (the fixture: a small hcrl_sa tree)
from tests.helpers import shared_data

pytestmark = [pytest.mark.slow, pytest.mark.real_data]

SPARK = "test_02_unknown_vehicle_known_attack"
# The Spark (a car hcrl_sa's training never saw) from 9 s before its first injected frame (14.3 s):
# 2 s of calibration, then benign and DoS windows.
FIRST, COUNT, SECONDS = 12_000, 30_000, 2.0
# A threshold at the calibration windows' median: a one-epoch model then decides both ways, so
# the decisions compared are not all alike.
RULE = {"calibration": "quantile", "calibration_quantile": 0.5, "calibration_margin": 0.0}
RULE_ARGS = [
    "--calibration-threshold",
    "quantile",
    "--calibration-quantile",
    "0.5",
    "--calibration-margin",
    "0",
]


def _spark(target: Path, corrupt_first: int = 0) -> Path:
    """The Spark slice as a capture file; corrupt_first: its first frames' labels flipped at random."""
    with gzip.open(shared_data("hcrl_sa") / SPARK / "DoS-spark.csv.gz", "rt") as handle:
        lines = handle.read().splitlines()
    rows = lines[1 + FIRST : 1 + FIRST + COUNT]
    rng = np.random.default_rng(1)
    for k in range(corrupt_first):
        rows[k] = rows[k].rsplit(",", 1)[0] + f",{rng.integers(0, 2)}"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join([lines[0], *rows]) + "\n")
    return target


@pytest.fixture(scope="module")
def gat(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    work = tmp_path_factory.mktemp("gat")
    cfg = ExperimentConfig(
        dataset="hcrlsa",
        model_size="tiny",
        device="cpu",
        runs_root=work / "runs",
        dataset_config=DatasetConfig(data_root=data_root, cache_dir=work / "cache"),
        training_config=TrainingConfig(epochs=1),
    )
    return run_experiment(cfg)


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _spark(tmp_path_factory.mktemp("spark") / "DoS-spark.csv")


@pytest.fixture(scope="module")
def evaluated(gat: Path, spark: Path) -> dict:
    """kdgat.evaluate --calibration spark --calibration-seconds 2 on the spark: each window's
    frame start, score and decision, and the threshold."""
    scored = score_target(gat, spark, calibration=spark, calibration_seconds=SECONDS)
    threshold, choice = decision_threshold(scored, RULE)
    [(_, graphs, scores, info)] = scored.files
    flags, windows_by_id = info["unheard"]
    return {
        "unheard": flags.tolist(),
        "unheard_windows": {f"0x{i:03X}": n for i, n in windows_by_id.items()},
        "frame_start": graphs.frame_start.numpy().tolist(),
        "score": scores,
        "attack": (scores >= threshold).tolist(),
        "threshold": threshold,
        "choice": choice,
    }


def _detect(model: Path, capture: Path, tmp: Path, *extra: str) -> tuple[list[dict], dict, str]:
    alerts, summary = tmp / "windows.jsonl", tmp / "summary.json"
    argv = [str(model), "--replay", str(capture), "--every-window", "--alerts", str(alerts)]
    assert detect_main([*argv, "--summary", str(summary), *extra]) == 0
    records = [json.loads(line) for line in alerts.read_text().splitlines()]
    return records, json.loads(summary.read_text()), alerts.read_text()


def _same_decisions(records: list[dict], evaluated: dict, tolerance: float = 1e-5) -> None:
    # Exactly the windows evaluate scores (none holds a calibration frame), in order.
    assert [r["window"]["frame_start"] for r in records] == evaluated["frame_start"]
    assert [r["decision"] == "attack" for r in records] == evaluated["attack"]
    np.testing.assert_allclose([r["score"] for r in records], evaluated["score"], atol=tolerance)
    assert 0 < sum(r["decision"] == "attack" for r in records) < len(records)  # both decisions occur
    # Each window's IDs the calibration never heard, as evaluate's unheard_in_calibration counts them.
    assert [bool(r.get("unknown_ids")) for r in records] == evaluated["unheard"]
    named = collections.Counter(name for r in records for name in r.get("unknown_ids", []))
    assert named == evaluated["unheard_windows"]
    assert 0 < sum(evaluated["unheard"]) < len(records)  # the DoS's 0x000: never heard in calibration


@pytest.mark.parametrize(
    ("model", "block"),
    [("run_dir", None), ("onnx", None), ("onnx", "0"), ("native", "0"), ("native", None)],
)
def test_a_detector_calibrating_itself_decides_as_evaluate_with_calibration(
    model: str, block: str | None, gat: Path, spark: Path, evaluated: dict, tmp_path: Path
) -> None:
    source = gat
    if model != "run_dir":
        export_main([str(gat), "--out", str(tmp_path / "export" / "model.onnx")])
        source = tmp_path / "export" / "model.onnx"
        source = native_path(source) if model == "native" else source
    extra = ["--calibrate-seconds", str(SECONDS), *RULE_ARGS] + ([] if block is None else ["--block", block])
    records, summary, _ = _detect(source, spark, tmp_path, *extra)
    _same_decisions(records, evaluated)
    fitted = summary["calibration"]
    assert fitted["threshold"]["threshold"] == pytest.approx(evaluated["threshold"], rel=1e-4)
    assert fitted["threshold"]["rule"] == evaluated["choice"]["rule"]
    assert fitted["windows"] == evaluated["choice"]["calibration_windows"]
    assert summary["frames"] == COUNT and summary["windows"] == len(records)
    assert all(r["threshold"] == fitted["threshold"]["threshold"] for r in records)
    alerts = [r for r in records if r["decision"] == "attack"]
    assert summary["alerts_with_unknown_ids"] == sum(bool(r.get("unknown_ids")) for r in alerts) > 0
    assert summary["unknown_ids"] == collections.Counter(n for r in alerts for n in r.get("unknown_ids", []))


def test_an_artefact_exported_calibrated_decides_as_evaluate(
    gat: Path, spark: Path, evaluated: dict, tmp_path: Path
) -> None:
    out = tmp_path / "car" / "model.onnx"
    assert (
        export_main([str(gat), "--out", str(out), "--calibration", f"{spark}@{SECONDS:g}", *RULE_ARGS]) == 0
    )
    for artefact in (out, native_path(out)):
        scorer = load_scorer(artefact)
        meta = scorer.meta
        assert meta["threshold"] == pytest.approx(evaluated["threshold"], rel=1e-9)  # the same fit
        assert meta["calibration"]["seconds"] == SECONDS and meta["calibration"]["source"] == str(spark)
        assert meta["trained"]["threshold"] == evaluated["choice"]["run_threshold"]
        assert len(meta["trained"]["vocabulary"]) != len(meta["vocabulary"])  # the car's own IDs
        records, _, _ = _detect(artefact, spark, tmp_path)  # no calibration phase: every window
        stop = min(evaluated["frame_start"])
        _same_decisions([r for r in records if r["window"]["frame_start"] >= stop], evaluated)
        # The artefact calibrated for this car calibrates again for another (its run's own kept).
        again, summary, _ = _detect(
            artefact, spark, tmp_path, "--calibrate-seconds", str(SECONDS), *RULE_ARGS
        )
        _same_decisions(again, evaluated)
        assert summary["calibration"]["vocabulary_size"] == len(meta["vocabulary"])


def test_no_label_of_the_calibration_frames_is_read(gat: Path, tmp_path: Path) -> None:
    from kdgat.data.automotive.readers import read_frames
    from kdgat.data.calibration import calibration_stop

    clean = _spark(tmp_path / "clean" / "DoS-spark.csv")
    calibration = calibration_stop(read_frames(clean, "can4"), SECONDS, clean)  # its 2 s of frames
    corrupt = _spark(tmp_path / "corrupt" / "DoS-spark.csv", corrupt_first=calibration)
    assert (read_frames(corrupt, "can4").label[:calibration] == 1).any()  # corrupted indeed
    outputs, metas = [], []
    for capture in (clean, corrupt):
        _, summary, text = _detect(gat, capture, tmp_path, "--calibrate-seconds", str(SECONDS), *RULE_ARGS)
        outputs.append((text, summary["calibration"], summary["windows"], summary["alerts"]))
        out = capture.parent / "model.onnx"
        calibration_arg = f"{capture}@{SECONDS:g}"
        assert export_main([str(gat), "--out", str(out), "--calibration", calibration_arg, *RULE_ARGS]) == 0
        meta = dict(load_scorer(out).meta)
        meta["calibration"] = {k: v for k, v in meta["calibration"].items() if k not in ("source", "file")}
        metas.append(meta)
    assert outputs[0] == outputs[1] and metas[0] == metas[1]
    assert outputs[0][1]["frames"] == calibration


def test_a_stream_that_ends_during_calibration_exits_2(gat: Path, spark: Path, capsys) -> None:
    assert detect_main([str(gat), "--replay", str(spark), "--calibrate-seconds", "3600"]) == 2
    assert "ended during its calibration" in capsys.readouterr().err


def test_blocks_and_frames_split_a_stream_alike(spark: Path) -> None:
    from kdgat.deploy.blocks import replay_blocks
    from kdgat.deploy.calibrate import split_blocks, split_frames, stream_start
    from kdgat.deploy.stream import replay_source

    frames, capture = replay_source(spark, False)
    a, rest_frames = split_frames(frames, SECONDS, 37)
    b, rest_blocks = split_blocks(replay_blocks(capture, 333), SECONDS, 37)
    c = stream_start(capture, SECONDS, 37)
    for other in (b, c):
        assert other.first_start == a.first_start and len(other.frames) == len(a.frames)
        for field in ("time", "can_id", "payload", "dlc"):
            assert np.array_equal(getattr(other.frames, field), getattr(a.frames, field)), field
    assert a.first_start % 37 == 0 and a.first_start - 37 < len(a.frames) <= a.first_start
    first_frame = next(rest_frames)
    first_block = next(rest_blocks)
    assert first_frame[0] == first_block.time[0] == capture.time[a.first_start]
    assert sum(1 for _ in rest_frames) + 1 == len(capture) - a.first_start


def test_a_calibration_on_a_waking_bus_is_named_and_warned_of(
    gat: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """set_04's accessory-4 opens at ignition, most of its IDs arriving about 5 s in: a detector
    calibrating on its first 10 s, and an artefact exported calibrated on them, say which IDs came
    late and warn (the figures from the capture's frames, read by pandas)."""
    source = shared_data("can_train_and_test") / "set_04" / "train_01_attack_free" / "accessory-4.csv.gz"
    capture = head_copy(source, tmp_path / "accessory-4.csv.gz", 12_000)  # 10 s is 8,636 frames
    heard, late = late_arrivals(capture, 10.0)
    assert len(late) >= 0.2 * heard  # a waking bus by LATE_SHARE's measure
    _, summary, _ = _detect(gat, capture, tmp_path, "--calibrate-seconds", "10")
    assert (summary["calibration"]["identities_heard"], summary["calibration"]["first_heard_late"]) == (
        heard,
        late,
    )
    warned = f"warning: {len(late)} of the {heard} identities heard in the stream's calibration were"
    assert warned in capsys.readouterr().err
    out = tmp_path / "car" / "model.onnx"
    assert export_main([str(gat), "--out", str(out), "--calibration", f"{capture}@10"]) == 0
    assert load_scorer(out).meta["calibration"]["first_heard_late"] == late
    assert f"identities heard in the calibration capture {capture} were" in capsys.readouterr().err
