"""The CPUs a run may use: its affinity mask, shared among the runs started beside it."""

import os

import pytest

from kdgat.common import cpus
from kdgat.data.pool import cores


@pytest.fixture
def three_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process may run on CPUs 0, 3 and 5 only (as a Slurm task with cpus-per-task 3)."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    monkeypatch.delenv(cpus.RUNS_SHARING_ENV, raising=False)
    monkeypatch.delenv(cpus.SLURM_CPUS_ENV, raising=False)


def test_the_affinity_mask_is_the_share_of_a_run_alone(three_cpus: None) -> None:
    assert cpus.usable_cpus() == 3 and cpus.cpu_share() == 3 and cores() == 3


@pytest.mark.parametrize(("sharing", "part"), [("1", 3), ("2", 1), ("3", 1), ("8", 1), ("x", 3), ("0", 3)])
def test_runs_sharing_the_mask_each_take_their_part(
    three_cpus: None, monkeypatch: pytest.MonkeyPatch, sharing: str, part: int
) -> None:
    monkeypatch.setenv(cpus.RUNS_SHARING_ENV, sharing)  # not a count (x, 0): one run
    assert cpus.cpu_share() == part and cores() == part


@pytest.mark.parametrize(("given", "usable"), [("2", 2), ("8", 3), ("", 3), ("x", 3)])
def test_a_slurm_task_without_cpu_binding_takes_its_cpus_per_task(
    three_cpus: None, monkeypatch: pytest.MonkeyPatch, given: str, usable: int
) -> None:
    """TaskPlugin=task/none leaves the mask at the whole node: SLURM_CPUS_PER_TASK caps it."""
    monkeypatch.setenv(cpus.SLURM_CPUS_ENV, given)
    assert cpus.usable_cpus() == usable and cpus.cpu_share() == usable


def test_the_local_executor_environment_sizes_each_jobs_thread_pools(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in cpus.THREAD_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")  # the user's own setting stays
    env = cpus.sharing_env(4, cpus=8)
    assert env == {cpus.RUNS_SHARING_ENV: "4", "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}
    assert cpus.sharing_env(8, cpus=2)["OMP_NUM_THREADS"] == "1"  # never 0
