"""The local executor's pool: a job starts as soon as a slot frees, not when a whole wave ends;
each job is given one of the GPUs launch.py sees, in turn.

The tasks are real subprocesses through submitit's LocalExecutor. The first task waits (up to a
minute) for a file that only the third task writes; with two slots, the third can start only when
the quick second task has ended and freed its slot. Pools that wait for the slowest job of a wave of
two before starting the next would leave the first task waiting for the whole minute and fail it."""

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest
import submitit

from kdgat.launcher.local_gpus import gpu_turns, launching_gpus
from kdgat.launcher.submit import _rolling

WAIT_FOR = """
import pathlib, sys, time
marker = pathlib.Path(sys.argv[1])
deadline = time.monotonic() + 60
while not marker.exists():
    if time.monotonic() > deadline:
        sys.exit("the third task never started while this one ran")
    time.sleep(0.05)
"""


def task(code: str, *args: str) -> functools.partial:
    return functools.partial(subprocess.run, [sys.executable, "-c", code, *args], check=True)


@pytest.mark.slow
def test_a_freed_slot_starts_the_next_task_while_a_slow_one_still_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "third_started"
    tasks = [
        task(WAIT_FOR, str(marker)),
        task("pass"),
        task("import pathlib, sys; pathlib.Path(sys.argv[1]).touch()", str(marker)),
    ]
    executor = submitit.LocalExecutor(tmp_path / "jobs")
    jobs, ok = _rolling(executor, tasks, 2, "pool")
    assert ok and len(jobs) == 3 and marker.exists()
    assert capsys.readouterr().out.count("[pool] finished") == 3


@pytest.mark.slow
def test_a_failed_task_is_reported_and_the_others_still_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    done = tmp_path / "done"
    tasks = [
        task("raise SystemExit(3)"),
        task("import pathlib, sys; pathlib.Path(sys.argv[1]).touch()", str(done)),
    ]
    jobs, ok = _rolling(submitit.LocalExecutor(tmp_path / "jobs"), tasks, 1, "pool")
    assert not ok and done.exists()
    captured = capsys.readouterr()
    assert f"[pool] job {jobs[0].job_id} failed" in captured.err and "[pool] finished" in captured.out


@pytest.mark.slow
@pytest.mark.parametrize(
    ("visible", "seen"),
    [("5,7", ["5", "7", "5"]), ("", ["", "", ""])],
    ids=["two GPUs, three jobs", "GPUs hidden from launch.py"],
)
def test_each_local_job_sees_one_of_the_gpus_launch_py_sees_in_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, visible: str, seen: list[str]
) -> None:
    # submitit's LocalExecutor alone sets CUDA_VISIBLE_DEVICES="" in every job: --device auto
    # would train on the CPU. No GPU is needed to see what each job is given.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    tasks = [functools.partial(os.getenv, "CUDA_VISIBLE_DEVICES") for _ in seen]
    jobs, ok = _rolling(submitit.LocalExecutor(tmp_path / "jobs"), tasks, 2, "pool")
    assert ok and [job.result() for job in jobs] == seen


def test_the_gpus_launch_py_sees(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 3")
    assert launching_gpus() == [2, 3]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert launching_gpus() == []
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setattr("torch.cuda.device_count", lambda: 2)
    assert launching_gpus() == [0, 1]  # unset: every GPU of the machine
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-8f3a,GPU-11c0")
    assert launching_gpus() == []
    assert "names GPUs by UUID" in capsys.readouterr().err  # said, not a silent CPU run
    turns = gpu_turns([2, 3])
    assert [next(turns)["visible_gpus"] for _ in range(3)] == [(2,), (3,), (2,)]
    assert next(gpu_turns([])) == {"gpus_per_node": 0, "visible_gpus": ()}
