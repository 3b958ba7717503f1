"""--runs-per-task K (several runs per Slurm task), `launch.py status` on failures and
`launch.py retry`, on a REAL Slurm (../shared/slurm/local-slurm-up.sh).

Tiny models on small synthetic CAN logs; the runs that are stopped mid-run train for many short
epochs (a fraction of a second each) so the signal lands while they train.
"""

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.slurm import (
    preempt,
    sacct_state,
    start_requeued_now,
    wait_for,
    wait_until_completed,
)
from tests.e2e.test_launch import RUN_GLOB, TINY_DIMS, launch, launches, ok, scripts, status, user_error
from tests.helpers import REPO

SMALL = [
    "--device", "cpu",
    "--osc-config.cpus-per-task", "2",  # two runs of a task at once, one CPU each
    "--osc-config.mem-gb", "3",
    "--dataset-config.automotive.synthetic-train-frames", "20000",
    "--dataset-config.automotive.synthetic-test-frames", "6000",
    *TINY_DIMS,
]  # fmt: skip
TASK_LINE = re.compile(r"^    task (\d+): ((?:\[\d+\] ?)+)$")


def task_lists(stdout: str) -> list[list[int]]:
    """The run positions of each task, as --dry-run lists them (one job)."""
    found = []
    for line in stdout.splitlines():
        if match := TASK_LINE.match(line):
            assert int(match.group(1)) == len(found)
            found.append([int(i) for i in re.findall(r"\[(\d+)\]", match.group(2))])
    return found


def seeds(n: int) -> list[str]:
    return ["--set", "training_config.seed=" + ",".join(map(str, range(n)))]


# ---------------------------------------------------------------- before any submission


@pytest.mark.slow
def test_dry_run_packs_96_runs_into_12_array_tasks_and_lists_each_tasks_runs(tmp_path: Path) -> None:
    dry = ok(
        launch([*SMALL, "--model-size", "tiny", *seeds(96), "--runs-per-task", "8", "--dry-run"], tmp_path)
    )
    assert "96 run(s) in 1 job(s)" in dry.stdout and "  job kdgat: 12 task(s)\n" in dry.stdout
    assert "#SBATCH --array=0-11%8\n" in scripts(dry.stdout)["kdgat"]  # 12 GPU allocations, not 96
    assert task_lists(dry.stdout) == [list(range(8 * t, 8 * t + 8)) for t in range(12)]
    uneven = ok(
        launch([*SMALL, "--model-size", "tiny", *seeds(10), "--runs-per-task", "4", "--dry-run"], tmp_path)
    )
    assert "#SBATCH --array=0-2%3\n" in scripts(uneven.stdout)["kdgat"]
    assert task_lists(uneven.stdout) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert not (tmp_path / "runs").exists()
    user_error(launch([*SMALL, "--runs-per-task", "0", "--dry-run"], tmp_path), "--runs-per-task 0")


@pytest.mark.slow
def test_packed_stages_keep_their_dependencies(tmp_path: Path) -> None:
    sweep = ["--sweep", "--model-sizes", "teacher,student", "--distillations", "no,standard", *seeds(2)]
    dry = ok(launch([*SMALL, *sweep, "--runs-per-task", "4", "--dry-run"], tmp_path))
    found = scripts(dry.stdout)
    assert "  job kdgat_1: 1 task(s)\n" in dry.stdout  # 2 teachers + 2 undistilled students
    assert "#SBATCH --array" not in found["kdgat_1"]  # one task: a plain job
    assert "#SBATCH --dependency=afterok:JOBID_kdgat_1\n" in found["kdgat_2"]


@pytest.mark.slow
def test_retry_on_the_local_executor_resumes_the_killed_run_of_a_packed_task(tmp_path: Path) -> None:
    args = [
        *SMALL,
        "--model-size",
        "tiny",
        *seeds(2),
        "--training.epochs",
        "60",
        "--training.patience",
        "100",
    ]
    command = [sys.executable, str(REPO / "launch.py"), *args, "--runs-per-task", "2", "--executor", "local"]
    launched = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    wait_for(lambda: len(list(tmp_path.glob(RUN_GLOB))) == 2, 120, "the run dirs")
    killed, sibling = sorted(tmp_path.glob(RUN_GLOB))
    wait_for(lambda: "epoch 3/60" in log_of(killed), 180, "the run to train a few epochs")
    os.kill(status(killed)["pid"], signal.SIGKILL)
    output = launched.communicate(timeout=300)[0]
    assert launched.returncode == 1, output  # the task failed: one of its runs did
    assert status(sibling)["state"] == "finished" and status(killed)["state"] == "failed"
    sibling_mtime = (sibling / "metrics.json").stat().st_mtime_ns

    retried = ok(launch(["retry"], tmp_path, timeout=300)).stdout
    assert "1 run(s) to resubmit in 1 job(s)" in retried and "1 of 1 job(s) finished" in retried
    assert status(killed)["state"] == "finished" and status(killed)["launcher"]["executor"] == "local"
    assert (sibling / "metrics.json").stat().st_mtime_ns == sibling_mtime
    assert log_of(killed).count("epoch 1/60 ") == 1 and "resuming" in log_of(killed)
    assert sorted(tmp_path.glob(RUN_GLOB)) == [killed, sibling]


# ---------------------------------------------------------------- real Slurm


def packed_pipeline(tmp_path: Path) -> list[str]:
    """Two stages of two runs each (seeds 0, 1), one task per stage: `first` trains long enough to
    be killed mid-run; `second` waits for it (afterok) and trains one epoch."""
    (tmp_path / "stages.yaml").write_text(
        "stages:\n"
        "  - {name: first, set: {model_size: tiny, training_config.epochs: 60,\n"
        "                        training_config.patience: 100}}\n"
        "  - {name: second, after: [first], set: {model_size: student, training_config.epochs: 1}}\n"
    )
    return [*SMALL, "--pipeline-file", "stages.yaml", *seeds(2), "--runs-per-task", "2"]


def log_of(run_dir: Path) -> str:
    path = run_dir / "train.log"
    return path.read_text() if path.is_file() else ""


@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.usefixtures("slurm")
def test_a_killed_run_of_a_packed_task_is_retried_alone_and_resumes(tmp_path: Path) -> None:
    args = packed_pipeline(tmp_path)
    ok(launch(args, tmp_path))
    first = sorted(tmp_path.glob("runs/*/*/*/*/tiny/*/*/run_*"))
    second = sorted(tmp_path.glob("runs/*/*/*/*/student/*/*/run_*"))
    assert len(first) == 2 and len(second) == 2
    killed, sibling = first
    wait_for(lambda: "epoch 3/60" in log_of(killed), 180, "the first run to train a few epochs")
    os.kill(status(killed)["pid"], signal.SIGKILL)  # the run's own process, while it trains
    ids = {r["unit"]: r["job_id"] for r in launches(tmp_path)}
    wait_for(lambda: sacct_state(ids["second"]) == "CANCELLED", 240, "the first task to fail", poll=1.0)
    assert sacct_state(ids["first"]) == "FAILED"
    assert status(sibling)["state"] == "finished"  # its packed sibling ran on to the end
    assert status(killed)["state"] == "failed" and "SIGKILL" in status(killed)["error"]

    table = ok(launch(["status"], tmp_path)).stdout
    assert "1 finished, 1 failed, 2 unfinished" in table
    assert "error: killed by SIGKILL while running" in table
    assert f"last lines of {(killed / 'train.log').relative_to(tmp_path)}:" in table
    assert re.search(r"\n    epoch \d+/60  train_loss", table)  # its log's last lines
    assert "python launch.py retry --runs-root runs" in table

    dirs_before = sorted(tmp_path.glob(RUN_GLOB))
    sibling_mtime = (sibling / "metrics.json").stat().st_mtime_ns
    dry = ok(launch(["retry", "--dry-run"], tmp_path)).stdout
    assert "3 run(s) to resubmit in 2 job(s)" in dry
    assert f"{killed.relative_to(tmp_path)}  (failed: failed, Slurm FAILED; resumes from last.pt)" in dry
    assert str(sibling.relative_to(tmp_path)) not in dry
    assert "#SBATCH --dependency=afterok:JOBID_first\n" in scripts(dry)["second"]

    ok(launch(["retry", "--wait"], tmp_path, timeout=400))
    assert sorted(tmp_path.glob(RUN_GLOB)) == dirs_before  # the same run dirs, no new ones
    assert (sibling / "metrics.json").stat().st_mtime_ns == sibling_mtime  # untouched
    for run_dir in [*first, *second]:
        assert status(run_dir)["state"] == "finished", run_dir
    assert status(killed)["retries"] == 1 and status(killed)["previous_error"].startswith("killed by SIGKILL")
    log = log_of(killed)
    assert log.count("epoch 1/60 ") == 1 and "resuming" in log  # continued from last.pt, not restarted
    history = json.loads((killed / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == list(range(60))
    retried = {r["unit"]: r for r in launches(tmp_path)[2:]}
    assert retried["second"]["dependency"] == f"afterok:{retried['first']['job_id']}"
    for run_dir in second:
        assert status(run_dir)["started_at"] >= status(killed)["finished_at"]
    assert "nothing to retry (the latest launch" in ok(launch(["retry"], tmp_path)).stdout


@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.usefixtures("slurm")
def test_a_requeued_packed_task_skips_its_finished_run_and_resumes_the_other(tmp_path: Path) -> None:
    args = [
        *SMALL,
        "--model-size",
        "tiny",
        "--set",
        "training_config.epochs=1,60",
        "--training.patience",
        "100",
    ]
    args += ["--runs-per-task", "2"]
    ok(launch(args, tmp_path))
    [record] = launches(tmp_path)
    job_id = record["job_id"]
    short, long = sorted(
        tmp_path.glob(RUN_GLOB),
        key=lambda d: json.loads((d / "config.json").read_text())["config"]["training_config.epochs"],
    )
    wait_for(lambda: status(short)["state"] == "finished" and "epoch 3/60" in log_of(long), 180, "training")
    short_mtime = (short / "metrics.json").stat().st_mtime_ns
    preempt(job_id)
    assert status(long)["state"] == "requeued" and status(long)["requeues"] == 1
    assert status(short)["state"] == "finished"  # the signal reached it on its way out: still finished
    start_requeued_now(job_id)
    task_log = Path(record["stdout"][0])
    wait_until_completed(job_id, task_log, task_log.with_suffix(".err"))
    assert status(long)["state"] == "finished" and status(long)["launcher"]["restart_count"] >= 1
    assert (short / "metrics.json").stat().st_mtime_ns == short_mtime
    assert f"{short.relative_to(tmp_path)}: finished already, skipped" in task_log.read_text()
    assert log_of(long).count("epoch 1/60 ") == 1 and "resuming" in log_of(long)
    history = json.loads((long / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == list(range(60))
