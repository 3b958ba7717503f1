"""`python launch.py status`: one row per run (status.json) and per job still waiting for a run dir."""

import json
from collections import Counter
from pathlib import Path
from typing import Any

import configs
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


def _slurm_id(status: dict[str, Any]) -> str | None:
    slurm = status.get("slurm", {})
    if "slurm_array_job_id" in slurm:
        return f"{slurm['slurm_array_job_id']}_{slurm.get('slurm_array_task_id', '0')}"
    return slurm.get("slurm_job_id")


def rows(runs_root: Path) -> list[dict[str, Any]]:
    pattern = "/".join(["*"] * len(configs.LEVELS) + ["run_*", "status.json"])
    found = []
    for path in sorted(Path(runs_root).glob(pattern)):
        run = Run(path.parent)
        status = run.status
        f1 = None
        if (run.path / "metrics.json").is_file():
            try:
                f1 = run.metrics.get("test", {}).get("f1")
            except json.JSONDecodeError:  # being written
                f1 = None
        found.append(
            {
                "run": str(path.parent.relative_to(runs_root)),
                "state": status.get("state", "?"),
                "slurm_job": _slurm_id(status),
                "requeues": status.get("requeues", 0),
                "test_f1": None if f1 is None else round(f1, 4),
                "log": status.get("launcher", {}).get("stdout"),
            }
        )
    seen = {r["slurm_job"] for r in found if r["slurm_job"]}
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
    states = slurm_states([r["slurm_job"] for r in found if r["slurm_job"]])
    for r in found:
        r["slurm_state"] = _state_of(r["slurm_job"], states) if r["slurm_job"] else "-"
    return found


def table(found: list[dict[str, Any]]) -> str:
    if not found:
        return "no runs yet"
    columns = ["run", "state", "slurm_job", "slurm_state", "requeues", "test_f1", "log"]
    cells = [[str(r.get(c) if r.get(c) is not None else "-") for c in columns] for r in found]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)
