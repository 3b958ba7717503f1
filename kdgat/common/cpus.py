"""The CPUs a run may use: its process's affinity mask, divided among the runs that share it.

A Slurm task's affinity mask holds its cpus-per-task (and where Slurm binds no CPUs, its
SLURM_CPUS_PER_TASK caps the whole-node mask), and a packed task gives each of its runs a
slice of its own (kdgat.launcher.packing), so the mask alone is the share there. The local
executor starts its jobs on the same CPUs at once; it says how many share them in RUNS_SHARING_ENV,
and each job takes its part. `--training.torch-threads auto` and the preprocessing workers both
follow `cpu_share()`: runs started together never ask for more threads than there are CPUs
(two runs at once with one thread each on 2 cores: 8.8 s each; with torch's default of one per
core each: 39.4 s).
"""

import os

# Set by the launcher's local executor in each job's environment: how many runs run at once on
# this process's CPUs (the job itself included).
RUNS_SHARING_ENV = "KDGAT_RUNS_SHARING_CPUS"
SLURM_CPUS_ENV = "SLURM_CPUS_PER_TASK"  # set by sbatch/srun for a task with --cpus-per-task
# Thread pools a job's libraries size from the environment when they load (numpy's OpenBLAS or
# MKL, OpenMP); set for the local executor's jobs, where every job sees every CPU.
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask where the OS has one, and inside a Slurm
    task at most its cpus-per-task (a Slurm without CPU binding, TaskPlugin=task/none, leaves the
    mask at the whole node, where each of many tasks taking every core would oversubscribe it)."""
    mask = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    slurm = os.environ.get(SLURM_CPUS_ENV, "").strip()
    return min(mask, int(slurm)) if slurm.isdigit() and int(slurm) >= 1 else mask


def runs_sharing() -> int:
    """How many runs share this process's CPUs (RUNS_SHARING_ENV; 1 when unset or not a count)."""
    text = os.environ.get(RUNS_SHARING_ENV, "").strip()
    return int(text) if text.isdigit() and int(text) >= 1 else 1


def share(cpus: int, runs: int) -> int:
    """Each of `runs` runs' part of `cpus` CPUs: at least one."""
    return max(1, cpus // max(1, runs))


def cpu_share() -> int:
    """The CPUs this run may use: its affinity mask divided among the runs sharing it."""
    return share(usable_cpus(), runs_sharing())


def sharing_env(runs: int, cpus: int | None = None) -> dict[str, str]:
    """Environment for a job started beside `runs - 1` others on this process's CPUs: the share
    count, and each library thread pool sized to the job's part (unless already set)."""
    part = str(share(usable_cpus() if cpus is None else cpus, runs))
    env = {RUNS_SHARING_ENV: str(max(1, runs))}
    env |= {name: part for name in THREAD_ENV if name not in os.environ}
    return env
