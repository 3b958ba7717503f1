"""End to end: train.py on synthetic and real data, run directories, reruns, kill-and-resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.helpers import FAST, REPO, run_train, shared_data

RUN_PARENT = "automotive/synthetic/classifier/GAT/tiny/no/all_samples"


def run_dir_from(stdout: str) -> Path:
    for line in stdout.splitlines():
        if line.startswith("run directory: "):
            return Path(line.removeprefix("run directory: "))
    raise AssertionError(f"no run directory printed in:\n{stdout}")


@pytest.mark.slow
def test_default_run_leaves_a_complete_run_directory(tmp_path: Path) -> None:
    """`python train.py` with no arguments: synthetic data, student GAT, CPU."""
    result = run_train([], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no warning, and no progress bar where stderr is not a terminal
    run_dir = tmp_path / run_dir_from(result.stdout)
    assert run_dir.parent == tmp_path / "runs/automotive/synthetic/classifier/GAT/student/no/all_samples"
    assert run_dir.name == "run_000"
    assert "test windows: f1" in result.stdout
    for name in (
        "config.yaml",
        "status.json",
        "metrics.json",
        "normalisation.json",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
    ):
        assert (run_dir / name).is_file(), name
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "finished"
    assert {"host", "git", "started_at", "finished_at", "timings"} <= set(status)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for split in ("val", "test"):
        assert {
            "accuracy",
            "precision",
            "recall",
            "f1",
            "auroc",
            "confusion_matrix",
        } <= set(metrics[split])
    assert metrics["test"]["f1"] > 0.9
    matrix = metrics["test"]["confusion_matrix"]
    assert sum(matrix.values()) == metrics["test"]["n"] > 0
    assert metrics["params"] > 0
    assert set(metrics["test"]["attack_types"]) == {"dos", "fuzzing", "spoofing"}

    events = EventAccumulator(str(run_dir))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"losses/train", "losses/val", "charts/val_f1"} <= set(tags)
    assert len(events.Scalars("charts/val_f1")) == metrics["epochs_run"]
    assert [e.value for e in events.Scalars("losses/train")] == pytest.approx(
        [h["train_loss"] for h in metrics["history"]], rel=1e-5
    )


@pytest.mark.slow
@pytest.mark.real_data
def test_hcrl_sa_reaches_f1_095_on_test_01(tmp_path: Path) -> None:
    data = shared_data("hcrl_sa")
    result = run_train(
        [
            "--dataset",
            "hcrlsa",
            "--data-root",
            str(data),
            "--dataset-config.test-dirs",
            "test_01_known_vehicle_known_attack",
            "--training.epochs",
            "3",
            "--device",
            "cpu",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / run_dir_from(result.stdout) / "metrics.json").read_text())
    assert list(metrics["test_by_split"]) == ["test_01_known_vehicle_known_attack"]
    assert metrics["test"]["n"] > 3000
    print(f"hcrl_sa test_01 F1 = {metrics['test']['f1']:.4f}")
    assert metrics["test"]["f1"] >= 0.95


@pytest.mark.slow
def test_config_rerun_reproduces_metrics_exactly(tmp_path: Path) -> None:
    first = run_train([*FAST, "--training.epochs", "2"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    run_dir = tmp_path / run_dir_from(first.stdout)
    second = run_train(["--config", str(run_dir / "config.yaml")], cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    rerun_dir = tmp_path / run_dir_from(second.stdout)
    assert rerun_dir != run_dir and rerun_dir.parent == run_dir.parent
    assert (rerun_dir / "config.yaml").read_text() == (run_dir / "config.yaml").read_text()
    assert json.loads((rerun_dir / "metrics.json").read_text()) == json.loads(
        (run_dir / "metrics.json").read_text()
    )


def _final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints/last.pt", weights_only=True)["model"]


def _wait_for_checkpoint(process: subprocess.Popen, checkpoint: Path, min_epoch: int) -> None:
    deadline = time.time() + 300
    while time.time() < deadline:
        assert process.poll() is None, "training finished before it could be interrupted"
        if checkpoint.is_file():
            try:
                if torch.load(checkpoint, weights_only=True)["epoch"] >= min_epoch:
                    return
            except (EOFError, RuntimeError):
                pass
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


RESUME_ARGS = [*FAST, "--training.epochs", "6", "--training.patience", "50", "--training.batch-size", "16"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run both stop signals are compared with, trained once without a stop."""
    cwd = tmp_path_factory.mktemp("uninterrupted")
    baseline = run_train([*RESUME_ARGS, "--runs-root", "straight"], cwd=cwd)
    assert baseline.returncode == 0, baseline.stderr
    return cwd / "straight" / RUN_PARENT / "run_000"


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGKILL, signal.SIGTERM])
def test_killed_run_resumes_to_identical_weights(
    tmp_path: Path, stop_signal: int, uninterrupted: Path
) -> None:
    args = RESUME_ARGS

    process = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *args, "--runs-root", "killed"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    run_dir = tmp_path / "killed" / RUN_PARENT / "run_000"
    _wait_for_checkpoint(process, run_dir / "checkpoints/last.pt", min_epoch=1)
    process.send_signal(stop_signal)
    _, stderr = process.communicate(timeout=120)
    if stop_signal == signal.SIGKILL:
        assert process.returncode == -signal.SIGKILL
        assert json.loads((run_dir / "status.json").read_text())["state"] == "running"
    else:
        assert process.returncode == 75, stderr
        assert json.loads((run_dir / "status.json").read_text())["state"] == "preempted"
        assert "--resume" in stderr
    assert not (run_dir / "metrics.json").exists()

    resumed = run_train(["--resume", str(run_dir)], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert run_dir_from(resumed.stdout) == run_dir
    straight = _final_weights(uninterrupted)
    after_resume = _final_weights(run_dir)
    assert straight.keys() == after_resume.keys()
    for name in straight:
        assert torch.equal(straight[name], after_resume[name]), name
    straight_metrics = json.loads((uninterrupted / "metrics.json").read_text())
    assert json.loads((run_dir / "metrics.json").read_text()) == straight_metrics
    assert not (tmp_path / "killed" / RUN_PARENT / "run_001").exists()


def test_resume_without_path_picks_the_latest_unfinished_run(tmp_path: Path) -> None:
    result = run_train([*FAST, "--resume"], cwd=tmp_path)
    assert result.returncode == 2 and "no unfinished run" in result.stderr


def test_malformed_row_names_file_and_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for folder in ("train_01_attack_free", "test_01_known_vehicle_known_attack"):
        (data / folder).mkdir(parents=True)
    rows = ["timestamp,arbitration_id,data_field,attack"]
    rows += [f"{1000 + i * 0.001:.6f},1A0,00112233,0" for i in range(5)]
    rows.insert(4, "1000.003500,1A0,0011ZZ33,0")  # line 5: bad hex
    (data / "train_01_attack_free" / "capture.csv").write_text("\n".join(rows) + "\n")
    (data / "test_01_known_vehicle_known_attack" / "capture.csv").write_text("\n".join(rows) + "\n")
    result = run_train(
        ["--dataset", "hcrlsa", "--data-root", str(data), "--runs-root", "r"],
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "capture.csv:5" in result.stderr and "0011ZZ33" in result.stderr
    assert "expected" in result.stderr and "Traceback" not in result.stderr
    status = yaml.safe_load(next((tmp_path / "r").rglob("status.json")).read_text())
    assert status["state"] == "failed" and "capture.csv:5" in status["error"]


@pytest.mark.slow
def test_missing_data_root_names_path_and_flag(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_folder"
    result = run_train(["--dataset", "hcrlsa", "--data-root", str(missing)], cwd=tmp_path)
    assert result.returncode == 2
    assert str(missing) in result.stderr and "--data-root" in result.stderr
    result = run_train(["--dataset", "set01"], cwd=tmp_path)
    assert result.returncode == 2 and "--data-root" in result.stderr
