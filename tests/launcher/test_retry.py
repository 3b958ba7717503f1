"""What `launch.py status` says went wrong and what `launch.py retry` resubmits, read from run
directories and a launch record on disk (written here as a launch leaves them; nothing trains).
The real kill-and-retry on Slurm is tests/e2e/test_launch_packing.py."""

import dataclasses
import json
import os
from pathlib import Path

import pytest

from configs import ExperimentConfig
from kdgat.common.errors import UserError
from kdgat.config.resolve import resolve
from kdgat.launcher import records
from kdgat.launcher.failures import log_tail, phase, report
from kdgat.launcher.plan import Unit
from kdgat.launcher.retry import _select, retry_units, rows_of
from kdgat.runs.store import Run, update_status


def run_dir(tmp_path: Path, seed: int, state: str, **status) -> Path:
    training = dataclasses.replace(ExperimentConfig().training_config, seed=seed)
    cfg = dataclasses.replace(ExperimentConfig(runs_root=tmp_path / "runs"), training_config=training)
    path = Run.claim(resolve(cfg)).path
    if state == "finished":
        (path / "metrics.json").write_text(json.dumps({"test": {"f1": 0.5}}))
    update_status(path, state=state, **status)
    return path


def test_phase_tells_finished_active_failed_and_unfinished_apart() -> None:
    assert phase("finished", "FAILED", {}) == "finished"  # a run finished in a task that failed later
    assert phase("running", "RUNNING", {}) == "active"
    assert phase("queued", "PENDING", {}) == "active"
    assert phase("failed", "FAILED", {}) == "failed"
    assert phase("running", "TIMEOUT", {}) == "failed"
    assert phase("queued", "CANCELLED", {}) == "unfinished"  # never started: its upstream failed
    assert phase("preempted", "CANCELLED", {}) == "unfinished"
    assert phase("running", "-", {"host": "elsewhere", "pid": 1}) == "unfinished"  # local run, gone
    assert phase("running", "-", {"host": os.uname().nodename, "pid": os.getpid()}) == "active"


def test_log_tail_keeps_the_last_lines_and_ends_progress_bars(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text("".join(f"line {i}\n" for i in range(20)) + "epoch 3/9:  10%\repoch 3/9:  50%\r\n\nboom\n")
    assert log_tail(log, 3) == ["epoch 3/9:  10%", "epoch 3/9:  50%", "boom"]
    assert log_tail(tmp_path / "missing.log") == []


def test_status_report_says_what_failed_why_and_shows_its_log(tmp_path: Path) -> None:
    done = run_dir(tmp_path, 0, "finished")
    failed = run_dir(tmp_path, 1, "failed", error="killed by SIGKILL while running")
    (failed / "train.log").write_text("epoch 1/5  train_loss 0.7\nepoch 2/5  train_loss 0.6\n")
    update_status(failed, launcher={"log": str(failed / "train.log")})
    never = run_dir(tmp_path, 2, "queued")
    rows = []
    for path, slurm in ((done, "FAILED"), (failed, "FAILED"), (never, "CANCELLED")):
        status = json.loads((path / "status.json").read_text())
        rows.append(
            {
                "run": path.name,
                "run_dir": path,
                "state": status["state"],
                "slurm_state": slurm,
                "status": status,
                "phase": phase(status["state"], slurm, status),
            }
        )
    text = report(rows, Path("runs"))
    assert text.splitlines()[0] == "1 finished, 1 failed, 1 unfinished"
    assert "error: killed by SIGKILL while running" in text
    assert f"last lines of {failed / 'train.log'}:" in text and "epoch 2/5  train_loss 0.6" in text
    assert "Slurm CANCELLED it before it started" in text
    assert "python launch.py retry --runs-root runs" in text
    assert done.name not in text  # a finished run is counted, not listed


def record_of(tmp_path: Path, units: list[dict]) -> Path:
    launch = records.new_record(tmp_path / "runs", "kdgat", {"executor": "local"})
    data = records.read_record(launch)
    data["units"] = units
    (launch / records.RECORD).write_text(json.dumps(data))
    return launch


def test_retry_takes_exactly_the_failed_and_unfinished_runs_and_keeps_their_dependencies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    teacher_ok = run_dir(tmp_path, 0, "finished")
    teacher_failed = run_dir(tmp_path, 1, "failed", error="boom")
    student_ok = run_dir(tmp_path, 2, "finished")
    student_cancelled = run_dir(tmp_path, 3, "queued")
    report_never = run_dir(tmp_path, 4, "queued")
    launch = record_of(  # the first job packed its two runs into one task
        tmp_path,
        [
            {"name": "first", "after": [], "run_dirs": [str(teacher_ok), str(teacher_failed)]},
            {"name": "second", "after": ["first"], "run_dirs": [str(student_ok), str(student_cancelled)]},
            {"name": "third", "after": ["second"], "run_dirs": [str(report_never)], "runs_per_task": 1},
        ],
    )
    record = records.read_record(launch)
    rows = rows_of(record)  # no Slurm ids: the states in status.json decide
    retried = _select(rows, launch)
    assert retried == {teacher_failed, student_cancelled, report_never}
    record["units"][0]["runs_per_task"] = 2
    units = retry_units(record, retried)
    assert [(u.name, u.run_dirs, u.after, u.runs_per_task) for u in units] == [
        ("first", [teacher_failed], (), 2),
        ("second", [student_cancelled], ("first",), 1),
        ("third", [report_never], ("second",), 1),
    ]
    assert units[0].cfgs[0].training_config.seed == 1  # each run as configured in its config.yaml


def test_a_retried_job_does_not_wait_for_a_job_whose_runs_all_finished(tmp_path: Path) -> None:
    done = run_dir(tmp_path, 0, "finished")
    cancelled = run_dir(tmp_path, 1, "queued")
    record = {
        "runs_root": str(tmp_path / "runs"),
        "units": [
            {"name": "first", "after": [], "run_dirs": [str(done)]},
            {"name": "second", "after": ["first"], "run_dirs": [str(cancelled)]},
        ],
    }
    [unit] = retry_units(record, {cancelled})
    assert isinstance(unit, Unit) and unit.name == "second" and unit.after == ()


def test_retry_refuses_while_a_run_of_the_launch_still_runs(tmp_path: Path) -> None:
    alive = run_dir(tmp_path, 0, "running")  # this process: alive on this host
    failed = run_dir(tmp_path, 1, "failed")
    unit = {"name": "a", "after": [], "run_dirs": [str(alive), str(failed)]}
    record = {"runs_root": str(tmp_path / "runs"), "units": [unit]}
    with pytest.raises(UserError, match="still queued or running"):
        _select(rows_of(record), tmp_path)


def test_the_latest_launch_is_found_and_a_missing_one_is_explained(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no launch is recorded"):
        records.latest(tmp_path / "runs")
    first = records.new_record(tmp_path / "runs", "kdgat", {})
    with pytest.raises(UserError, match="no launch is recorded"):
        records.latest(tmp_path / "runs")  # it submitted nothing
    records.add_unit(first, Unit("kdgat", [ExperimentConfig()], run_dirs=[tmp_path]), "12", {})
    second = records.new_record(tmp_path / "runs", "retry", {})
    assert first != second and records.latest(tmp_path / "runs") == first
    records.add_unit(second, Unit("kdgat", [ExperimentConfig()], run_dirs=[tmp_path]), "13", {})
    assert records.latest(tmp_path / "runs") == second
    assert records.read_record(second)["units"][0]["tasks"] == [[0]]
    with pytest.raises(UserError, match="not a launch directory"):
        records.read_record(tmp_path)
