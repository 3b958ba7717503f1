"""What became of each run of a launch: finished, still active, failed or unfinished, and for the
last two why (the recorded error, what Slurm says, the last lines of the log).

`launch.py status` prints `report`; `launch.py retry` resubmits the runs `phase` calls failed or
unfinished. A new kind of diagnosis (e.g. out of GPU memory) is one more function in EXPLAINERS:
it gets the run's status row and returns lines to print, or none.
"""

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Slurm states of a job (task) that has not ended: its run may still finish on its own.
ACTIVE = {
    "PENDING",
    "RUNNING",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "SUSPENDED",
    "CONFIGURING",
    "COMPLETING",
    "RESIZING",
    "SIGNALING",
    "STAGE_OUT",
}
FAILED_STATES = {"FAILED", "OUT_OF_MEMORY", "TIMEOUT", "NODE_FAIL", "BOOT_FAIL", "DEADLINE"}
TAIL_LINES = 8
TAIL_BYTES = 64 * 1024


def _alive_here(status: dict[str, Any]) -> bool:
    """A run without Slurm (local executor) whose process still runs on this host."""
    if status.get("host") != socket.gethostname() or not status.get("pid"):
        return False
    try:
        os.kill(int(status["pid"]), 0)
    except (OSError, ValueError):
        return False
    return True


def phase(state: str, slurm_state: str, status: dict[str, Any]) -> str:
    """finished | active (queued or running, may still finish) | failed | unfinished (stopped,
    cancelled or never started: nothing went wrong in the run itself)."""
    if state == "finished":
        return "finished"
    if slurm_state.split(",")[0].split()[0] in ACTIVE:
        return "active"
    if slurm_state == "-" and state in ("running", "requeued") and _alive_here(status):
        return "active"
    if state == "failed" or slurm_state in FAILED_STATES:
        return "failed"
    return "unfinished"


def log_tail(path: Path, lines: int = TAIL_LINES) -> list[str]:
    """The last lines of a log; progress bars' carriage returns count as line ends."""
    try:
        with Path(path).open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - TAIL_BYTES))
            text = f.read().decode(errors="replace")
    except OSError:
        return []
    found = [line.rstrip() for line in text.replace("\r", "\n").split("\n") if line.strip()]
    return found[-lines:]


def log_of(row: dict[str, Any]) -> Path | None:
    """The most telling log of a run: its own (a packed run's train.log), else the Slurm task's
    stderr when it holds anything (tracebacks go there), else its stdout."""
    launcher = row.get("status", {}).get("launcher", {})
    for key in ("log", "stderr", "stdout"):
        path = launcher.get(key)
        if path and Path(path).is_file() and Path(path).stat().st_size > 0:
            return Path(path)
    return None


def explain_error(row: dict[str, Any]) -> list[str]:
    error = row.get("status", {}).get("error")
    return [f"error: {error}"] if error else []


def explain_slurm(row: dict[str, Any]) -> list[str]:
    """What a Slurm end state means for the run, where it says more than the run's own state."""
    state, slurm = row.get("state"), row.get("slurm_state", "-")
    meaning = {
        "TIMEOUT": "Slurm stopped it at its time limit (--osc-config.time-min)",
        "OUT_OF_MEMORY": "Slurm killed it for using more host memory than --osc-config.mem-gb",
        "NODE_FAIL": "its node failed",
        "PREEMPTED": "it was preempted and not requeued",
    }.get(slurm)
    if meaning:
        return [f"Slurm {slurm}: {meaning}"]
    if slurm == "CANCELLED" and state == "queued":
        return ["Slurm CANCELLED it before it started: a job it waits for failed, or it was scancelled"]
    return []


def explain_memory(row: dict[str, Any]) -> list[str]:
    """A run Slurm killed for memory: what it asked for, and how to see what it needs."""
    if row.get("slurm_state") != "OUT_OF_MEMORY" or "run_dir" not in row:
        return []
    config = Path(row["run_dir"]) / "config.yaml"
    try:
        from kdgat.config.codec import load_yaml

        asked = f"{load_yaml(config).osc_config.mem_gb} GiB"
    except Exception:  # an unreadable config must not hide the rest of the report
        asked = "(config.yaml unreadable)"
    return [
        f"it asked for {asked}; `python train.py --print-config --config {config}` prints its memory "
        f"estimate (launch.py refuses a job asking for less than that)"
    ]


def explain_log(row: dict[str, Any]) -> list[str]:
    log = log_of(row)
    if log is None:
        return []
    return [f"last lines of {log}:", *(f"  {line}" for line in log_tail(log))]


EXPLAINERS: list[Callable[[dict[str, Any]], list[str]]] = [
    explain_error,
    explain_slurm,
    explain_memory,
    explain_log,
]


def report(found: list[dict[str, Any]], runs_root: Path) -> str:
    """A count of runs by phase, then each failed or unfinished run with why; '' if none."""
    found = [r for r in found if "phase" in r]  # runs, not jobs that claimed none yet
    counts: dict[str, int] = {}
    for row in found:
        counts[row["phase"]] = counts.get(row["phase"], 0) + 1
    problems = [r for r in found if r["phase"] in ("failed", "unfinished")]
    order = ("finished", "active", "failed", "unfinished")
    lines = [", ".join(f"{counts[p]} {p}" for p in order if counts.get(p))]
    for row in problems:
        lines.append(f"\n{row['phase']}: {row['run']}  ({row['state']}, Slurm {row.get('slurm_state', '-')})")
        for explain in EXPLAINERS:
            lines += [f"  {line}" for line in explain(row)]
    if problems:
        lines.append(
            f"\nresubmit the failed and unfinished runs: python launch.py retry --runs-root {runs_root}"
        )
    return "\n".join(lines)
