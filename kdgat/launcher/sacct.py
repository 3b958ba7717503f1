"""Slurm job states from sacct (the accounting database sees finished jobs; squeue forgets them)."""

import shutil
import subprocess

TERMINAL = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "OUT_OF_MEMORY",
    "NODE_FAIL",
    "PREEMPTED",
    "DEADLINE",
    "BOOT_FAIL",
    "REVOKED",
}


def slurm_states(job_ids: list[str]) -> dict[str, str]:
    """Job ids (12, or array tasks 12_3) -> state; rows of a whole array job appear per task.

    Pending array tasks show as one row like '12_[2-3%2]'. Empty where sacct is absent.
    """
    if not job_ids or shutil.which("sacct") is None:
        return {}
    base = sorted({j.split("_")[0] for j in job_ids})
    out = subprocess.run(
        ["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(base)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    states = {}
    for line in out.stdout.splitlines():
        job, _, state = line.partition("|")
        states[job.strip()] = state.split()[0] if state.strip() else "?"
    return states


def all_ended(states: dict[str, str]) -> bool:
    return bool(states) and all(s in TERMINAL for s in states.values())
