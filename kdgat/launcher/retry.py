"""`python launch.py retry [LAUNCH_DIR | --runs-root R]`: resubmit exactly the failed, cancelled or
unfinished runs of a launch, into their own run dirs.

The launch is read from its record (kdgat.launcher.records; the latest under R without
LAUNCH_DIR). Each run's phase comes from its status.json and Slurm (kdgat.launcher.failures):
finished runs are left untouched; failed and unfinished ones are resubmitted, each in the run
dir it was claimed in, so it resumes from its checkpoints/last.pt where one exists. They keep their
jobs (units), runs per task and Slurm parameters, and a retried job waits (afterok) for the
retried jobs it waited for before, so a dependant of a retried run waits for it. While any run of
the launch is still queued or running, nothing is resubmitted (a run must never run twice at
once). The retry is itself a launch, recorded like any other: a retry of it retries what is left.
"""

import argparse
import os
from pathlib import Path
from typing import Any

from kdgat.common.errors import UserError
from kdgat.config.codec import load_yaml
from kdgat.launcher import records
from kdgat.launcher.plan import Plan, Unit
from kdgat.launcher.status import add_states, run_row

EXIT_JOBS_FAILED = 1
HOW = ("executor", "parallelism", "timeout_min", "runs_per_task", "gpu_bytes_per_run")  # as launched


class _Claimed(Plan):
    """A plan whose run dirs exist already: claiming keeps them, releasing never removes them."""

    def claim(self, unit: Unit) -> None:
        pass

    def release(self, unit: Unit) -> None:
        pass


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="launch.py retry", description=__doc__.split("\n\n")[0])
    p.add_argument("launch_dir", nargs="?", type=Path, help="<runs_root>/launches/<launch> (default: latest)")
    p.add_argument("--runs-root", type=Path, default=Path("runs"), help="where to look for the latest launch")
    p.add_argument("--dry-run", action="store_true", help="print what would be resubmitted; submit nothing")
    p.add_argument("--wait", action="store_true", help="Slurm: block until every resubmitted job has ended")
    return p


def rows_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Every run of the launch with its state, Slurm state and phase."""
    runs_root = Path(record["runs_root"])
    dirs = [Path(d) for unit in record["units"] for d in unit["run_dirs"]]
    return add_states([run_row(d, runs_root) for d in dirs])


def retry_units(record: dict[str, Any], retried: set[Path]) -> list[Unit]:
    """The launch's units cut down to the runs to retry, waiting for the retried units they waited for."""
    units: list[Unit] = []
    for u in record["units"]:
        dirs = [Path(d) for d in u["run_dirs"] if Path(d) in retried]
        if not dirs:
            continue
        names = {kept.name for kept in units}
        units.append(
            Unit(
                u["name"],
                [load_yaml(d / "config.yaml") for d in dirs],
                after=tuple(a for a in u["after"] if a in names),
                run_dirs=dirs,
                runs_per_task=u.get("runs_per_task", 1),
                gpu_bytes_per_run=record.get("gpu_bytes_per_run"),
            )
        )
    return units


def _mark_retried(unit: Unit) -> None:
    """Queued again; the error and the Slurm task it ran in kept as previous ones."""
    from kdgat.launcher.status import slurm_id
    from kdgat.runs.store import now, read_status, update_status

    for d in unit.run_dirs:
        status = read_status(d)
        job = slurm_id(status)
        update_status(
            d,
            state="queued",
            retries=int(status.get("retries", 0)) + 1,
            retried_at=now(),
            previous_error=status.get("error"),
            previous_jobs=[*status.get("previous_jobs", []), *([job] if job else [])],
            error=None,
        )


def _print_plan(units: list[Unit], rows: list[dict[str, Any]]) -> None:
    why = {r["run_dir"]: f"{r['phase']}: {r['state']}, Slurm {r['slurm_state']}" for r in rows}
    print(f"{sum(len(u.run_dirs) for u in units)} run(s) to resubmit in {len(units)} job(s):")
    for unit in units:
        after = f" (after {', '.join(unit.after)})" if unit.after else ""
        print(f"  job {unit.name}{after}: {len(unit.task_groups())} task(s)")
        for t, group in enumerate(unit.task_groups()):
            for i in group:
                d = unit.run_dirs[i]
                resume = (
                    "resumes from last.pt" if (d / "checkpoints" / "last.pt").is_file() else "starts afresh"
                )
                print(f"    task {t}: {d}  ({why[d]}; {resume})")


def _select(rows: list[dict[str, Any]], launch_dir: Path) -> set[Path]:
    active = [r for r in rows if r["phase"] == "active"]
    if active:
        listed = "\n".join(f"  {r['run_dir']} ({r['state']}, Slurm {r['slurm_state']})" for r in active[:8])
        raise UserError(
            f"{len(active)} run(s) of launch {launch_dir} are still queued or running:\n{listed}\n"
            f"Retry once they have ended (`python launch.py status` shows them), or scancel them "
            f"first: a run must not run twice at once."
        )
    return {r["run_dir"] for r in rows if r["phase"] in ("failed", "unfinished")}


def retry(argv: list[str]) -> int:
    options = parser().parse_args(argv)
    launch_dir = (options.launch_dir or records.latest(options.runs_root)).resolve()
    record = records.read_record(launch_dir)
    if Path(record["cwd"]) != Path.cwd():
        # the launch's paths (run dirs, runs bound in config.yaml) are relative to where it ran
        print(f"working in {record['cwd']}, where launch {record['launch']} ran")
        os.chdir(record["cwd"])
    rows = rows_of(record)
    retried = _select(rows, launch_dir)
    counts = {p: sum(r["phase"] == p for r in rows) for p in ("finished", "failed", "unfinished")}
    print(
        f"launch {launch_dir}: {counts['finished']} finished (left untouched), {counts['failed']} "
        f"failed, {counts['unfinished']} unfinished"
    )
    if not retried:
        hint = (
            ""
            if options.launch_dir
            else f" (the latest launch; an earlier one: its dir under {options.runs_root}/launches)"
        )
        print(f"nothing to retry{hint}.")
        return 0
    units = retry_units(record, retried)
    _print_plan(units, rows)
    return _submit(record, launch_dir, units, options)


def _submit(record: dict[str, Any], launch_dir: Path, units: list[Unit], options: argparse.Namespace) -> int:
    from kdgat.launcher import submit
    from kdgat.launcher.printing import print_dry_run, print_ran_here, print_states, print_submitted

    runs_root = Path(record["runs_root"])
    folder = submit.job_folder(runs_root)
    params = {u["name"]: u["params"] for u in record["units"]}
    if options.dry_run:
        if record["executor"] == "slurm":
            print_dry_run(submit.dry_run(lambda unit: params[unit.name], folder, units))
        else:
            print(f"\ndry run ({record['executor']} executor): nothing run.")
        return 0
    how = {
        k: record[k] for k in ("executor", "parallelism", "timeout_min", "runs_per_task", "gpu_bytes_per_run")
    }
    new = records.new_record(runs_root, "retry", {**how, "retry_of": str(launch_dir)})
    print(f"retry recorded in {new}")
    for unit in units:
        _mark_retried(unit)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(submit.REPO), os.environ.get("PYTHONPATH")) if p
    )
    plan = _Claimed([], units)
    if record["executor"] != "slurm":
        outcomes = submit.run_here(
            record["executor"], folder, plan, record["parallelism"], record["timeout_min"], new
        )
        return EXIT_JOBS_FAILED if print_ran_here(outcomes) else 0
    outcomes = submit.submit_slurm(lambda unit: params[unit.name], folder, plan, runs_root, new)
    print_submitted(outcomes, runs_root)
    if not options.wait:
        return 0
    states = submit.wait_slurm(outcomes)
    print_states(states)
    return 0 if all(s == "COMPLETED" for s in states.values()) else EXIT_JOBS_FAILED
