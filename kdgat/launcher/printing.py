"""What `python launch.py` prints: the runs of a plan, the dry-run sbatch scripts, and what became
of the jobs. Every line here is part of the CLI's promised output (tests and users read it)."""

from pathlib import Path
from typing import TYPE_CHECKING

from kdgat.config.presets import preset_name
from kdgat.launcher.plan import Plan
from kdgat.runs.prerequisites import needed

if TYPE_CHECKING:  # submitit is imported only on the way to submitting
    from kdgat.launcher.submit import Outcome


def print_runs(the_plan: Plan) -> None:
    """Every run of the plan by job, with what each is bound to (claimed, on disk, or given)."""
    units = the_plan.units
    n = sum(len(u.cfgs) for u in units)
    print(f"{n} run(s) in {len(units)} job(s):")
    for unit in units:
        after = f" (after {', '.join(unit.after)})" if unit.after else ""
        groups = unit.task_groups()
        print(f"  job {unit.name}{after}: {len(groups)} task(s)")
        if unit.runs_per_task > 1:
            print(
                f"    {unit.runs_per_task} runs per task ({len(unit.cfgs)} in all): each task runs its "
                f"runs at once where they fit its CPUs and GPU memory, else in turn"
            )
            for t, group in enumerate(groups):
                print(f"    task {t}: {' '.join(f'[{i}]' for i in group)}")
        for i, index in enumerate(unit.indices):
            run = the_plan.runs[index]
            cfg, size = run.cfg, run.cfg.model_size_config
            print(
                f"    [{i}] {preset_name(cfg)}  hidden_dim={size.hidden_dim} "
                f"layers={size.num_layers} heads={size.heads} lr={cfg.training_config.lr} "
                f"epochs={cfg.training_config.epochs} seed={cfg.training_config.seed}"
            )
            for field, j in run.binds.items():
                name, task = the_plan.position(j)
                print(f"        {field} <- job {name} [{task}] (claimed at submission)")
            for field, path in run.on_disk.items():
                print(f"        {field} = {path} (on disk)")
            for field in [p.field for p in needed(cfg) if p.field not in {**run.binds, **run.on_disk}]:
                print(f"        {field} = {getattr(cfg, field)} (given)")


def print_dry_run(scripts: list[tuple[str, str]]) -> None:
    """The exact sbatch script of each job, then the reminder that nothing was submitted."""
    for name, script in scripts:
        print(f"\n# ---- sbatch script for job {name} ----")
        print(script, end="")
        print(f"# ---- end of sbatch script for job {name} ----")
    print("\ndry run: nothing submitted.")


def print_ran_here(outcomes: "list[Outcome]") -> list[str]:
    """How many local/debug jobs finished; returns the names of those that did not."""
    bad = [o.unit.name for o in outcomes if o.state != "finished"]
    print(
        f"{len(outcomes) - len(bad)} of {len(outcomes)} job(s) finished"
        + (f"; not: {', '.join(bad)}" if bad else "")
    )
    return bad


def print_submitted(outcomes: "list[Outcome]", runs_root: Path) -> None:
    """Each Slurm job's id, logs and claimed run dirs, and how to follow them."""
    for o in outcomes:
        print(
            f"submitted {o.unit.name}: Slurm job {o.job_id} ({len(o.jobs)} task(s)), "
            f"logs {o.jobs[0].paths.stdout.parent}"
        )
        task = {i: t for t, group in enumerate(o.unit.task_groups()) for i in group}
        for i, run_dir in enumerate(o.unit.run_dirs):
            packed = f" (task {task[i]})" if o.unit.runs_per_task > 1 else ""
            print(f"    [{i}] {run_dir}{packed}")
    print(f"follow with: python launch.py status --runs-root {runs_root}")


def print_states(states: dict[str, str]) -> None:
    """Each waited-for Slurm job's final state (--wait)."""
    for job_id, state in states.items():
        print(f"job {job_id}: {state}")
