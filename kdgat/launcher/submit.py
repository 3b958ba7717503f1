"""Hand jobs to submitit: Slurm arrays with dependencies, or local / debug execution in order.

A Unit (kdgat.launcher.plan) is one Slurm job: an array job when it holds several configs, a
plain job for one. Its run directories are claimed just before it is submitted (`Plan.claim`),
after those of the units it waits for, and released again if sbatch refuses it. `--dry-run`
renders the sbatch script with submitit's own generator on an executor holding the same
parameters, so what is printed is what `sbatch` receives.
"""

import contextlib
import dataclasses
import datetime
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import submitit
from submitit.slurm.slurm import SlurmExecutor

from kdgat.common.cpus import sharing_env
from kdgat.config.codec import to_dict
from kdgat.config.presets import preset_name
from kdgat.launcher.job import TrainJob
from kdgat.launcher.local_gpus import GpuShare, executor_gpus, launching_gpus
from kdgat.launcher.packed_job import PackedJob
from kdgat.launcher.plan import Plan, Unit
from kdgat.launcher.records import add_unit
from kdgat.launcher.sacct import all_ended, slurm_states

REPO = Path(__file__).resolve().parents[2]
Params = dict[str, Any] | Callable[[Unit], dict[str, Any]]  # one set for all units, or each its own
LAUNCH_LOG = "launches.jsonl"  # under runs_root: one line per submitted Slurm job, read by `status`


@dataclasses.dataclass
class Outcome:
    unit: Unit
    job_id: str | None
    jobs: list[submitit.Job]
    state: str = "submitted"  # local/debug: finished | failed | skipped


def job_folder(runs_root: Path) -> Path:
    """Where submitit keeps pickles and logs: <runs_root>/slurm/<job id>."""
    return Path(runs_root) / "slurm" / "%j"


def setup_lines() -> list[str]:
    """Make the repository importable in the job whatever the submit directory is."""
    return [f'export PYTHONPATH={REPO}"${{PYTHONPATH:+:$PYTHONPATH}}"']


class _ScriptOnly(SlurmExecutor):
    """A SlurmExecutor that only renders scripts (works where srun is absent; never submits)."""

    @classmethod
    def affinity(cls) -> int:
        return 1


def _tasks(unit: Unit) -> list[TrainJob] | list[PackedJob]:
    """One callable per array task: a run, or with --runs-per-task K > 1 a PackedJob of K runs."""
    if unit.runs_per_task > 1:
        return [
            PackedJob([str(unit.run_dirs[i]) for i in group], unit.name, unit.gpu_bytes_per_run)
            for group in unit.task_groups()
        ]
    run_dirs: list[str | None] = [str(d) for d in unit.run_dirs] or [None] * len(unit.cfgs)
    return [
        TrainJob(to_dict(cfg), stage=unit.name, run_dir=run_dir)
        for cfg, run_dir in zip(unit.cfgs, run_dirs, strict=True)
    ]


def _params_for(params: "Params", unit: Unit) -> dict[str, Any]:
    return params(unit) if callable(params) else params


def _dependency(unit: Unit, ids: dict[str, str]) -> str | None:
    return f"afterok:{':'.join(ids[a] for a in unit.after)}" if unit.after else None


def script_text(params: dict[str, Any], folder: Path, tasks: int, dependency: str | None = None) -> str:
    """The exact script submitit writes for a job of `tasks` tasks (an array job when > 1)."""
    ex = _ScriptOnly(folder)
    ex.update_parameters(**params)
    if dependency:
        ex.update_parameters(dependency=dependency)
    if tasks > 1:  # as SlurmExecutor._internal_process_submissions does for arrays
        ex.parameters["map_count"] = tasks
    return ex._make_submission_file_text(ex._submitit_command_str, "dry-run")


def sbatch_script(params: "Params", folder: Path, unit: Unit, ids: dict[str, str]) -> str:
    """The exact script submitit writes for this unit (dependency ids as given)."""
    return script_text(_params_for(params, unit), folder, len(unit.task_groups()), _dependency(unit, ids))


def dry_run(params: "Params", folder: Path, units: list[Unit]) -> list[tuple[str, str]]:
    ids = {u.name: f"JOBID_{u.name}" for u in units}  # placeholders: ids exist once submitted
    return [(u.name, sbatch_script(params, folder, u, ids)) for u in units]


def submit_slurm(
    params: "Params", folder: Path, plan: Plan, runs_root: Path, record: Path | None = None
) -> list[Outcome]:
    """Submit every unit in order; a unit waits (afterok) for the units it names. `params`: the
    Slurm parameters, or a function of the unit giving each its own; `record`: the launch dir
    (kdgat.launcher.records) that each submitted unit is added to."""
    ids: dict[str, str] = {}
    outcomes = []
    for unit in plan.units:
        unit_params = _params_for(params, unit)
        ex = SlurmExecutor(folder)  # afresh: nothing of another unit's parameters carries over
        ex.update_parameters(**unit_params)
        dependency = _dependency(unit, ids)
        if dependency:
            ex.update_parameters(dependency=dependency)
        plan.claim(unit)
        try:
            jobs = ex.submit_array(_tasks(unit))
        except BaseException:
            plan.release(unit)  # no job will ever run in them
            raise
        plan.record_jobs(unit, [j.job_id for j in jobs])
        job_id = jobs[0].job_id.split("_")[0]
        ids[unit.name] = job_id
        outcomes.append(Outcome(unit, job_id, jobs))
        _log_launch(runs_root, unit, job_id, dependency, jobs)
        if record is not None:
            add_unit(record, unit, job_id, unit_params)
    return outcomes


def _log_launch(
    runs_root: Path, unit: Unit, job_id: str, dependency: str | None, jobs: list[submitit.Job]
) -> None:
    log_launch(runs_root, unit.name, job_id, [preset_name(c) for c in unit.cfgs], jobs, dependency)


def log_launch(
    runs_root: Path,
    name: str,
    job_id: str,
    presets: list[str],
    jobs: list[submitit.Job],
    dependency: str | None = None,
) -> None:
    """One line in <runs_root>/launches.jsonl for a submitted job (what `launch.py status` reads)."""
    record = {
        "job_id": job_id,
        "unit": name,
        "tasks": len(jobs),
        "dependency": dependency,
        "presets": presets,
        "submitted_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "stdout": [str(j.paths.stdout) for j in jobs],
    }
    Path(runs_root).mkdir(parents=True, exist_ok=True)
    with (Path(runs_root) / LAUNCH_LOG).open("a") as f:
        f.write(json.dumps(record) + "\n")


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """os.environ with `values` while the block runs (the local executor copies it into each job)."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


POLL_S = 0.2
"""How often the local pool looks for a finished job (submitit's own wait polls every second)."""


def _rolling(
    ex: submitit.Executor, tasks: list, width: int, unit_name: str, gpus: Sequence[int] = ()
) -> tuple[list[submitit.Job], bool]:
    """Every task through the local executor, `width` at a time: a job starts as soon as one
    ends, not when the slowest of a wave of `width` ends, and each is reported as it ends. The
    jobs share this machine's CPUs: each takes its part of them (kdgat.common.cpus), and each is
    shown one of `gpus`, the one the fewest running jobs hold (kdgat.launcher.local_gpus).
    Returns the jobs and whether all of them finished."""
    env = sharing_env(min(width, len(tasks)))
    share = GpuShare(list(gpus))
    jobs: list[submitit.Job] = []
    running: list[submitit.Job] = []
    ok = True
    queue = list(tasks)
    while queue or running:
        for job in [job for job in running if job.done()]:
            running.remove(job)
            share.release(job.job_id)
            ok = _report(unit_name, job) and ok
        while queue and len(running) < width:
            gpu = share.next_gpu()
            ex.update_parameters(**executor_gpus(gpu))
            with _environment(env):  # LocalExecutor ignores array caps: one task per submission
                (job,) = ex.submit_array([queue.pop(0)])
            share.hold(job.job_id, gpu)
            jobs.append(job)
            running.append(job)
        if running:
            time.sleep(POLL_S)
    return jobs, ok


def _report(unit_name: str, job: submitit.Job) -> bool:
    """Waits for the job, prints how it ended; False where it failed (the rest goes on)."""
    try:
        print(f"[{unit_name}] finished {job.result()}", flush=True)
        return True
    except Exception as err:
        print(f"[{unit_name}] job {job.job_id} failed: {str(err).strip().splitlines()[-1]}", file=sys.stderr)
        return False


def run_here(
    kind: str, folder: Path, plan: Plan, parallelism: int, timeout_min: int, record: Path | None = None
) -> list[Outcome]:
    """local: subprocesses, at most `parallelism` at once; debug: in this process. Units run in the
    plan's order; a unit whose dependencies failed is skipped (never claimed), as afterok does on
    Slurm."""
    ex: submitit.Executor
    gpus: list[int] = []
    if kind == "local":
        ex = submitit.LocalExecutor(folder)
        ex.update_parameters(timeout_min=timeout_min)
        gpus = launching_gpus()
    else:
        ex = submitit.DebugExecutor(folder)
    states: dict[str, str] = {}
    outcomes = []
    for unit in plan.units:
        failed = [a for a in unit.after if states.get(a) != "finished"]
        if failed:
            states[unit.name] = "skipped"
            print(
                f"[{unit.name}] skipped: it waits for {', '.join(failed)}, which did not finish", flush=True
            )
            outcomes.append(Outcome(unit, None, [], "skipped"))
            continue
        plan.claim(unit)
        if record is not None:
            add_unit(record, unit, None, None)
        tasks = _tasks(unit)
        if kind == "local":
            jobs, ok = _rolling(ex, tasks, max(1, parallelism), unit.name, gpus)
        else:  # the debug executor runs each job in this process when its result is asked for
            jobs = ex.submit_array(tasks)
            ok = all([_report(unit.name, job) for job in jobs])
        states[unit.name] = "finished" if ok else "failed"
        outcomes.append(Outcome(unit, None, jobs, states[unit.name]))
    return outcomes


def wait_slurm(outcomes: list[Outcome], poll_s: float = 2.0) -> dict[str, str]:
    """Block until sacct shows every job of these outcomes ended; returns job (task) id -> state."""
    return wait_for_jobs([o.job_id for o in outcomes if o.job_id], poll_s)


def wait_for_jobs(ids: list[str], poll_s: float = 2.0) -> dict[str, str]:
    """Block until sacct shows every one of these Slurm jobs ended; returns job (task) id -> state."""
    while True:
        states = slurm_states(ids)
        if all_ended(states) and all(any(k.split("_")[0] == i for k in states) for i in ids):
            return states
        time.sleep(poll_s)
