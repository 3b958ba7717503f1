"""Threads that share cores, end to end: a run's torch threads follow its affinity mask, and the
local executor's jobs each take their part of the CPUs; printed at the start, in status.json and
in config.yaml (so a rerun uses the same count)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kdgat.common.cpus import RUNS_SHARING_ENV, THREAD_ENV
from tests.helpers import FAST, REPO

RUN_GLOB = "runs/*/*/*/*/*/*/*/run_*"
CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def run(script: str, args: list[str], cwd: Path, cpus: set[int] | None = None) -> subprocess.CompletedProcess:
    # Started as from a user's shell: without the CPU share this test's pytest worker was given
    # (tests/conftest.py), which every run it starts would otherwise inherit.
    shell = {k: v for k, v in os.environ.items() if k not in (RUNS_SHARING_ENV, *THREAD_ENV)}
    result = subprocess.run(
        [sys.executable, str(REPO / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**shell, "PYTHONUNBUFFERED": "1"},
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return result


def recorded(run_dir: Path) -> tuple[dict, int]:
    status = json.loads((run_dir / "status.json").read_text())
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    return status["threads"], config["training_config"]["torch_threads"]


@pytest.mark.slow
@pytest.mark.skipif(len(CPUS) < 2, reason="needs 2 CPUs to tell a one-CPU mask from the whole machine")
def test_a_run_takes_the_cpus_of_its_affinity_mask(tmp_path: Path) -> None:
    args = [*FAST, "--training.epochs", "1"]
    whole = run("train.py", [*args, "--runs-root", "whole"], tmp_path)
    one = run("train.py", [*args, "--runs-root", "one"], tmp_path, cpus={CPUS[0]})
    for out, root, n in ((whole, "whole", len(CPUS)), (one, "one", 1)):
        [run_dir] = (tmp_path / root).glob("*/*/*/*/*/*/*/run_*")
        threads, in_config = recorded(run_dir)
        assert threads == {"torch": n, "interop": n, "cpus": n, "runs_sharing": 1, "from": "auto"}
        assert in_config == n
        assert f"threads: {n} torch thread(s) (auto: {n} CPU(s) this process may use)" in out.stdout


@pytest.mark.slow
@pytest.mark.skipif(len(CPUS) < 2, reason="needs 2 CPUs for two jobs to share")
def test_the_local_executor_gives_each_job_its_share(tmp_path: Path) -> None:
    grid = ["--sweep", "--set", "training_config.seed=0,1", "--executor", "local", "--parallelism", "2"]
    run("launch.py", [*FAST, "--training.epochs", "1", *grid], tmp_path)
    run_dirs = sorted(tmp_path.glob(RUN_GLOB))
    assert len(run_dirs) == 2
    part = len(CPUS) // 2
    for run_dir in run_dirs:
        threads, in_config = recorded(run_dir)
        shared = {"torch": part, "interop": part, "cpus": len(CPUS), "runs_sharing": 2, "from": "auto"}
        assert threads == shared
        assert in_config == part  # `train.py --config` reruns it with the same count
