"""Run directories: deterministic paths, atomic claiming, status.json."""

import datetime
import json
import os
import re
import socket
import subprocess
from pathlib import Path
from typing import Any

from configs import LEVELS, ExperimentConfig
from kdgat.io import atomic_write_json

RUN_PATTERN = re.compile(r"^run_(\d{3,})$")
SLURM_VARIABLES = (
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_JOB_NAME",
)


def experiment_dir(cfg: ExperimentConfig) -> Path:
    """runs/<modality>/<dataset>/<learning_type>/<arch>/<size>/<distillation>/<training_mode>."""
    return Path(cfg.runs_root).joinpath(*(str(getattr(cfg, level)) for level in LEVELS))


def run_dirs(exp_dir: Path) -> list[Path]:
    """Existing run_NNN folders, oldest first."""
    if not exp_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in exp_dir.iterdir() if (m := RUN_PATTERN.match(p.name))]
    return [p for _, p in sorted(found)]


def claim_run_dir(exp_dir: Path) -> Path:
    """Create the next free run_NNN. mkdir is atomic, so concurrent claimers never share one."""
    exp_dir.mkdir(parents=True, exist_ok=True)
    existing = run_dirs(exp_dir)
    number = int(RUN_PATTERN.match(existing[-1].name).group(1)) + 1 if existing else 1
    while True:
        candidate = exp_dir / f"run_{number:03d}"
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            number += 1


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def git_commit() -> dict[str, Any]:
    """The code's commit and whether the tree had uncommitted changes (unknown outside git)."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}
    return {"commit": commit or "unknown", "dirty": bool(dirty) if commit else None}


def read_status(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "status.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}


def update_status(run_dir: Path, **fields: Any) -> dict[str, Any]:
    """Merge fields into status.json (atomically), stamping host, pid and Slurm ids."""
    status = read_status(run_dir)
    status.update(fields)
    status["host"] = socket.gethostname()
    status["pid"] = os.getpid()
    slurm = {k.lower(): os.environ[k] for k in SLURM_VARIABLES if k in os.environ}
    if slurm:
        status.setdefault("slurm", {}).update(slurm)
    status["updated_at"] = now()
    atomic_write_json(run_dir / "status.json", status)
    return status


def latest_unfinished(exp_dir: Path) -> Path | None:
    for run_dir in reversed(run_dirs(exp_dir)):
        if read_status(run_dir).get("state") != "finished":
            return run_dir
    return None


def latest_finished(exp_dir: Path) -> Path | None:
    for run_dir in reversed(run_dirs(exp_dir)):
        if read_status(run_dir).get("state") == "finished" and (run_dir / "metrics.json").is_file():
            return run_dir
    return None
