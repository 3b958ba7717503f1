"""The real Slurm of the end-to-end tests (../shared/slurm/local-slurm-up.sh; .ci/run starts it):
job states from squeue and sacct, waiting on them, and preempting a job the way submitit does.
The `slurm` fixture that checks the Slurm is up is in tests/e2e/conftest.py."""

import subprocess
import time
from pathlib import Path

import pytest


def sacct_state(job_id: str) -> str:
    out = subprocess.run(
        ["sacct", "-n", "-P", "-X", "-o", "State", "-j", job_id], capture_output=True, text=True
    )
    return out.stdout.split("\n")[0].split(" ")[0].strip()


def squeue_state(job_id: str) -> str:
    return subprocess.run(
        ["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True
    ).stdout.strip()


def wait_for(predicate, timeout: float, what: str, poll: float = 0.3, report=lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{report()}")
        time.sleep(poll)


REQUEUED_STATES = ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED")


def job_report(job_id: str, *logs: Path) -> str:
    """What Slurm and the job's logs say, for a failure message."""
    show = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
    tails = "".join(f"\n---- {p.name}:\n{p.read_text()[-2000:]}" for p in logs if p.is_file())
    return f"sacct: {sacct_state(job_id)}\n{show}{tails}"


def preempt(job_id: str) -> None:
    """Preempt a running job as submitit does (TERM, then USR2: checkpoint and requeue)."""
    subprocess.check_call(["scancel", job_id, "--signal", "SIGTERM"])  # as submitit's Job._interrupt()
    subprocess.check_call(["scancel", job_id, "--signal", "USR2"])
    # 180 s: generous, for a loaded machine
    wait_for(lambda: squeue_state(job_id) in REQUEUED_STATES, 180, "the requeue")


def start_requeued_now(job_id: str) -> None:
    """Start a requeued job at once instead of after Slurm's 120 s hold."""
    # Slurm revokes the old instance's credential with one-second resolution: a start within the
    # same second is refused ("Job credential revoked") and the job FAILS.
    time.sleep(2)
    subprocess.check_call(["scontrol", "update", f"jobid={job_id}", "StartTime=now"])


def wait_until_completed(job_id: str, *logs: Path) -> None:
    """Wait for the job to end, and fail with Slurm's and the logs' account unless it COMPLETED."""
    ongoing = ("", *REQUEUED_STATES, "CONFIGURING", "RUNNING", "COMPLETING")
    wait_for(lambda: sacct_state(job_id) not in ongoing, 300, f"job {job_id} to end", poll=1.0,
             report=lambda: job_report(job_id, *logs))  # fmt: skip
    assert sacct_state(job_id) == "COMPLETED", job_report(job_id, *logs)
