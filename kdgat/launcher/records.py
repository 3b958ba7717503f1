"""Launch records: <runs_root>/launches/<launch id>/launch.json, one per `launch.py` that ran or
submitted something, so that `launch.py retry` can resubmit exactly what a launch left unfinished.

A record holds how the launch ran (executor, parallelism, runs per task, the Slurm parameters of
each job) and, per job (unit) in submission order: its name, the jobs it waits for, its run
dirs, their array tasks and the Slurm ids. It is rewritten atomically as each job is submitted,
so a launch cut short records what it did submit. <runs_root>/launches.jsonl (one line per Slurm
job) stays as it was: `launch.py status` reads it.
"""

import datetime
import json
import os
import sys
from pathlib import Path
from typing import Any

from kdgat.common.errors import UserError
from kdgat.common.io import atomic_write_json

LAUNCHES = "launches"
RECORD = "launch.json"


def new_record(runs_root: Path, name: str, how: dict[str, Any]) -> Path:
    """A fresh launch dir (named by time and job name, never reused) holding its launch.json."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    parent = Path(runs_root) / LAUNCHES
    parent.mkdir(parents=True, exist_ok=True)
    for n in range(1000):
        path = parent / f"{stamp}-{name}{f'-{n}' if n else ''}"
        try:
            path.mkdir()
            break
        except FileExistsError:
            continue
    record = {
        "launch": path.name,
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds"),  # orders them
        "command": sys.argv,
        "cwd": os.getcwd(),  # the launch's relative paths (run dirs, runs_root) are relative to it
        "runs_root": str(runs_root),
        **how,
        "units": [],
    }
    atomic_write_json(path / RECORD, record)
    return path


def read_record(launch_dir: Path) -> dict[str, Any]:
    path = Path(launch_dir)
    path = path if path.name == RECORD else path / RECORD
    if not path.is_file():
        raise UserError(
            f"{path.parent} is not a launch directory (no {RECORD}). Launch directories are "
            f"<runs_root>/{LAUNCHES}/<launch>; `launch.py retry --runs-root R` takes the latest under R."
        )
    return json.loads(path.read_text())


def add_unit(launch_dir: Path, unit: Any, job_id: str | None, params: dict[str, Any] | None) -> None:
    """Record a claimed (and, on Slurm, submitted) unit: its runs, tasks, dependencies and ids."""
    record = read_record(launch_dir)
    record["units"].append(
        {
            "name": unit.name,
            "after": list(unit.after),
            "run_dirs": [str(d) for d in unit.run_dirs],
            "runs_per_task": unit.runs_per_task,
            "tasks": unit.task_groups(),
            "job_id": job_id,
            "params": params,
        }
    )
    atomic_write_json(Path(launch_dir) / RECORD, record)


def latest(runs_root: Path) -> Path:
    """The most recent launch dir under runs_root (by its recorded creation time) that submitted
    something (sbatch may have refused a launch's first job)."""
    dirs = [p.parent for p in (Path(runs_root) / LAUNCHES).glob(f"*/{RECORD}")]
    found = sorted((r["created_at"], d.name, d) for d in dirs if (r := read_record(d))["units"])
    if not found:
        raise UserError(
            f"no launch is recorded under {runs_root}/{LAUNCHES}: retry needs a launch made by this "
            f"version of launch.py. Resume a single run with `python train.py --resume RUN_DIR`, or "
            f"give --runs-root where the launch wrote its runs."
        )
    return found[-1][2]
