"""`python launch.py status`: one row per run (status.json) and per job still waiting for a run dir,
then what failed or is unfinished, and why (kdgat.launcher.failures)."""

import json
from collections import Counter
from pathlib import Path
from typing import Any

import configs
from kdgat.launcher.failures import phase
from kdgat.launcher.sacct import slurm_states
from kdgat.launcher.submit import LAUNCH_LOG
from kdgat.runs.store import Run


def _state_of(job: str, states: dict[str, str]) -> str:
    """The Slurm state of one array task; a task still pending (or cancelled while pending) is
    only listed inside a range row such as '12_[0-3%2]'."""
    if job in states:
        return states[job]
    base, _, task = job.partition("_")
    for key, state in states.items():
        head, _, rest = key.partition("_[")
        if head != base or not task.isdigit():
            continue
        for part in rest.split("]")[0].split("%")[0].split(","):
            low, _, high = part.partition("-")
            if low.isdigit() and int(low) <= int(task) <= int(high or low):
                return state
    if not task:  # a whole array job (a launch no run dir has claimed): its tasks' states together
        counts = Counter(v for k, v in states.items() if k.partition("_")[0] == base and k != base)
        if counts:
            return ", ".join(f"{state} x{n}" for state, n in sorted(counts.items()))
    return states.get(base, "-")


def slurm_id(status: dict[str, Any]) -> str | None:
    slurm = status.get("slurm", {})
    if "slurm_array_job_id" in slurm:
        return f"{slurm['slurm_array_job_id']}_{slurm.get('slurm_array_task_id', '0')}"
    return slurm.get("slurm_job_id")


def run_row(run_dir: Path, runs_root: Path) -> dict[str, Any]:
    """One run's row: its status.json and test F1 (Slurm state and phase come from `add_states`)."""
    run = Run(run_dir)
    status = run.status
    f1 = None
    if (run.path / "metrics.json").is_file():
        try:
            f1 = run.metrics.get("test", {}).get("f1")
        except json.JSONDecodeError:  # being written
            f1 = None
    launcher = status.get("launcher", {})
    return {
        "run": str(Path(run_dir).relative_to(runs_root)),
        "state": status.get("state", "?"),
        "slurm_job": slurm_id(status),
        "requeues": status.get("requeues", 0),
        "test_f1": None if f1 is None else round(f1, 4),
        "log": launcher.get("log") or launcher.get("stdout"),
        "run_dir": Path(run_dir),
        "status": status,
    }


def add_states(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row's Slurm state (one sacct call) and, for runs, its phase (kdgat.launcher.failures)."""
    states = slurm_states([r["slurm_job"] for r in found if r["slurm_job"]])
    for r in found:
        r["slurm_state"] = _state_of(r["slurm_job"], states) if r["slurm_job"] else "-"
        if "run_dir" in r:
            r["phase"] = phase(r["state"], r["slurm_state"], r["status"])
    return found


def rows(runs_root: Path) -> list[dict[str, Any]]:
    pattern = "/".join(["*"] * len(configs.LEVELS) + ["run_*", "status.json"])
    found = [run_row(path.parent, Path(runs_root)) for path in sorted(Path(runs_root).glob(pattern))]
    seen = {r["slurm_job"] for r in found if r["slurm_job"]}
    seen |= {job for r in found for job in r["status"].get("previous_jobs", [])}  # retried runs
    seen |= {j.split("_")[0] for j in seen}
    log = Path(runs_root) / LAUNCH_LOG
    for line in log.read_text().splitlines() if log.is_file() else []:
        record = json.loads(line)
        if record["job_id"] not in seen:  # submitted, no task has claimed a run dir yet
            found.append(
                {
                    "run": f"({record['tasks']} x {record['presets'][0]})",
                    "state": "submitted",
                    "slurm_job": record["job_id"],
                    "requeues": 0,
                    "test_f1": None,
                    "log": record["stdout"][0] if record["stdout"] else None,
                }
            )
    return add_states(found)


def table(found: list[dict[str, Any]]) -> str:
    if not found:
        return "no runs yet"
    columns = ["run", "state", "slurm_job", "slurm_state", "requeues", "test_f1", "log"]
    cells = [[str(r.get(c) if r.get(c) is not None else "-") for c in columns] for r in found]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)
