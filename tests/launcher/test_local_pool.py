"""The local executor's pool: a job starts as soon as a slot frees, not when a whole wave ends;
each job is given one of the GPUs launch.py sees, in turn.

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

from kdgat.launcher.local_gpus import GpuShare, executor_gpus, launching_gpus
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


SEES = """
import os, pathlib, sys, time
pathlib.Path(sys.argv[1]).write_text(os.environ.get("CUDA_VISIBLE_DEVICES", "unset"))
if sys.argv[2] == "wait":
    deadline = time.monotonic() + 60
    while not pathlib.Path(sys.argv[3]).exists():
        if time.monotonic() > deadline:
            sys.exit("the third task never started while this one ran")
        time.sleep(0.05)
else:
    pathlib.Path(sys.argv[3]).touch()
"""


@pytest.mark.slow
def test_a_local_job_gets_the_gpu_the_fewest_running_jobs_hold(tmp_path: Path) -> None:
    # submitit's LocalExecutor alone sets CUDA_VISIBLE_DEVICES="" in every job: --device auto
    # would train on the CPU. No GPU is needed to see what each job is shown. The first job holds
    # GPU 5 until the third has started; the second, quick, frees GPU 7 for the third.
    seen, marker = [tmp_path / f"seen{k}" for k in range(3)], tmp_path / "third_started"
    tasks = [
        task(SEES, str(seen[0]), "wait", str(marker)),
        task(SEES, str(seen[1]), "quick", str(tmp_path / "unused")),
        task(SEES, str(seen[2]), "quick", str(marker)),
    ]
    _, ok = _rolling(submitit.LocalExecutor(tmp_path / "jobs"), tasks, 2, "pool", gpus=[5, 7])
    assert ok and [p.read_text() for p in seen] == ["5", "7", "7"]
    _, ok = _rolling(submitit.LocalExecutor(tmp_path / "none"), tasks[1:2], 2, "pool", gpus=[])
    assert ok and seen[1].read_text() == ""  # no GPU: hidden, as submitit does


def test_the_gpus_launch_py_sees(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for visible, gpus in [("2, 3", [2, 3]), ("", []), ("-1", []), ("NoDevFiles", []), ("0,1,-1,2", [0, 1])]:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
        assert launching_gpus() == gpus, visible  # as CUDA reads it: up to the first invalid entry
    assert capsys.readouterr().err == ""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setattr("torch.cuda.device_count", lambda: 2)
    assert launching_gpus() == [0, 1]  # unset: every GPU of the machine
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-8f3a,GPU-11c0")
    assert launching_gpus() == []
    assert "names GPUs by UUID" in capsys.readouterr().err  # said, not a silent CPU run


def test_gpu_share_gives_the_least_held_gpu_and_takes_it_back() -> None:
    share = GpuShare([5, 7])
    for job in ("a", "b", "c"):
        share.hold(job, share.next_gpu())
    assert share.held == {"a": 5, "b": 7, "c": 5} and share.next_gpu() == 7
    share.release("b")
    share.release("a")
    assert share.next_gpu() == 7  # 5 is still held by c
    assert GpuShare([]).next_gpu() is None and executor_gpus(None) == {"gpus_per_node": 0, "visible_gpus": ()}
    assert executor_gpus(7) == {"gpus_per_node": 1, "visible_gpus": (7,)}
