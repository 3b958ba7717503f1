"""The local executor's pool: a job starts as soon as a slot frees, not when a whole wave ends.

The tasks are real subprocesses through submitit's LocalExecutor. The first task waits (up to a
minute) for a file that only the third task writes; with two slots, the third can start only when
the quick second task has ended and freed its slot. Pools that wait for the slowest job of a wave of
two before starting the next would leave the first task waiting for the whole minute and fail it."""

import functools
import subprocess
import sys
from pathlib import Path

import pytest
import submitit

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
