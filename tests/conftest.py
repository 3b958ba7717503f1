"""pytest hooks: the suite runs on pytest-xdist workers (pyproject.toml's addopts), and this file
keeps them from getting in each other's way.

Why workers at all: most of the suite's wall time is one process waiting (on Slurm's scheduler,
on a subprocess's start, on a kill-and-resume), so one CPU sat idle; two workers on CI's 2 cores
run it in a little over half the time. What each hook guards against:
- threads: every worker (and every train.py it starts) takes its part of the CPUs, as the local
  executor's jobs do (kdgat.common.cpus); two workers with torch's default of one thread per core
  each oversubscribe the cores and run several times slower;
- grouping: a module's tests stay on one worker, so a module-scoped fixture (a trained run) is
  built once; every module with a Slurm test goes to one worker, so the tests never compete for
  the single-node Slurm's CPUs and their jobs start when they expect to.
`-n 0` runs everything in one process, as before.
"""

import os

import pytest

from kdgat.common.cpus import sharing_env, usable_cpus

SLURM_GROUP = "slurm"
MOST_WORKERS = 4  # beyond this, more workers mostly rebuild the same module fixtures


def _share_cpus_among_workers() -> None:
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "").strip()
    if workers.isdigit() and int(workers) > 1:
        # Before torch is imported (no test module has been imported yet), so torch's own pool
        # follows OMP_NUM_THREADS too, not only the runs started in subprocesses.
        os.environ.update(sharing_env(int(workers)))


_share_cpus_among_workers()


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker per usable CPU, at most MOST_WORKERS."""
    return max(1, min(MOST_WORKERS, usable_cpus()))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    slurm_modules = {item.module.__name__ for item in items if item.get_closest_marker("slurm")}
    for item in items:
        module = item.module.__name__
        group = SLURM_GROUP if module in slurm_modules else module
        item.add_marker(pytest.mark.xdist_group(group))
