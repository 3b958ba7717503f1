"""Launch kdgat experiments: one config, a sweep grid, or the KD-GAT pipeline, via submitit.

    python launch.py --preset automotive_synthetic_classifier_gat_tiny_no_all_samples --executor local
    python launch.py --sweep --model-sizes teacher,student --distillations no,standard --dry-run
    python launch.py --sweep --set model_size_config.hidden_dim=32,64,128,256 --parallelism 2
    python launch.py --sweep --model-size-config.hidden-dim 32,64 --training.lr 1e-3,3e-4
    python launch.py --pipeline --dataset hcrlch --osc-config.cluster pitzer --osc-config.account PAS1234
    python launch.py --pipeline --set training_config.seed=0,1,2
    python launch.py --pipeline-file my_stages.yaml --executor local
    python launch.py status [--runs-root runs]

Every job runs `kdgat.experiment.run_experiment`, the function behind `python train.py`. A grid
is split into stages by what its runs build on (teachers before students, VGAE before curriculum
and fusion GAT, GAT before DQN), each stage one Slurm array job (at most --parallelism tasks at
once) that waits (afterok) for the stages it needs; a failed stage stops its dependants. Run dirs
are claimed at submission, and each dependant is bound to the exact upstream run of its own launch
(same data, seed and grid axes), recorded in its config.yaml. Invalid grid combinations are listed
and skipped (--strict refuses them). On USR2/TERM a job saves last.pt, requeues and resumes in the
same run dir.

Options read before the config flags: --preset NAME, --config PATH (as in train.py).
A bad value exits with code 2 and says what, why and how to fix, before anything is submitted.
"""

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Annotated, Literal

import tyro

import configs
from configs import ConfigError, ExperimentConfig

EXIT_USER_ERROR = 2
EXIT_JOBS_FAILED = 1
GRID_FLAGS = {
    "modalities": "modality",
    "datasets": "dataset",
    "learning_types": "learning_type",
    "model_architectures": "model_architecture",
    "model_sizes": "model_size",
    "distillations": "distillation",
    "training_modes": "training_mode",
}


@dataclasses.dataclass
class LaunchArgs:
    """Experiment flags as in train.py, plus the launcher's own options."""

    experiment: Annotated[ExperimentConfig, tyro.conf.arg(name="")] = dataclasses.field(
        default_factory=ExperimentConfig
    )
    executor: Literal["slurm", "local", "debug"] = "slurm"
    """slurm: sbatch (array jobs); local: subprocesses on this machine; debug: in this process."""
    sweep: bool = False
    """Say that this is a grid (grids apply whenever grid flags are given)."""
    modalities: tuple[str, ...] = ()
    """Grid over modality, comma separated."""
    datasets: tuple[str, ...] = ()
    """Grid over dataset, e.g. hcrlch,hcrlsa."""
    learning_types: tuple[str, ...] = ()
    """Grid over learning_type."""
    model_architectures: tuple[str, ...] = ()
    """Grid over model_architecture."""
    model_sizes: tuple[str, ...] = ()
    """Grid over model_size, e.g. teacher,student."""
    distillations: tuple[str, ...] = ()
    """Grid over distillation, e.g. no,standard."""
    training_modes: tuple[str, ...] = ()
    """Grid over training_mode."""
    set: tuple[str, ...] = ()
    """Grid over any field: FIELD=V1,V2 (dotted), e.g. model_size_config.hidden_dim=32,64."""
    strict: bool = False
    """Refuse the whole grid if any combination is invalid (default: list and skip those)."""
    dry_run: bool = False
    """Print the runs and the exact sbatch script(s); submit nothing."""
    pipeline: bool = False
    """Submit the KD-GAT study: VGAE -> GAT (curriculum) -> DQN teachers, then KD students (grid
    flags apply to every stage, e.g. --set training_config.seed=0,1,2)."""
    pipeline_file: Path | None = None
    """A YAML list of stages to submit as a pipeline instead of the default study."""
    parallelism: int = 8
    """Most array tasks (local: jobs) running at once."""
    sbatch: tuple[str, ...] = ()
    """Further sbatch options KEY=VALUE, e.g. gpu-bind=closest."""
    wait: bool = False
    """Slurm: block until every job has ended and report their states."""
    job_name: str = "kdgat"
    """Slurm job name."""


def _pre_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--preset")
    parser.add_argument("--config", type=Path)
    return parser


def parse(argv: list[str]) -> LaunchArgs:
    from kdgat.launcher.grid import comma_flags_to_sets

    options, rest = _pre_parser().parse_known_args(argv)
    rest, comma_sets = comma_flags_to_sets(rest)
    base = configs.load_yaml(options.config) if options.config else ExperimentConfig()
    if options.preset:
        base = configs.config_from_preset(options.preset, base)
    args = tyro.cli(
        LaunchArgs, args=rest, default=LaunchArgs(experiment=base), description=__doc__, prog="launch.py"
    )
    args = dataclasses.replace(args, set=(*args.set, *comma_sets))
    if args.parallelism < 1:
        raise ConfigError(f"--parallelism {args.parallelism}: expected an integer >= 1 (tasks at once).")
    return args


def grid_levels(args: LaunchArgs) -> dict[str, list[str]]:
    from kdgat.launcher.grid import split_values

    levels = {}
    for flag, level in GRID_FLAGS.items():
        values = split_values(getattr(args, flag))
        unknown = [v for v in values if v not in configs.LEVEL_CHOICES[level]]
        if unknown:
            raise ConfigError(
                f"--{flag.replace('_', '-')}: {', '.join(unknown)} is not a {level}. "
                f"Choose from: {', '.join(configs.LEVEL_CHOICES[level])}."
            )
        levels[level] = values
    return levels


def extra_sbatch(items: tuple[str, ...]) -> dict[str, str]:
    extra = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"--sbatch {item!r} is not KEY=VALUE (an sbatch long option without '--'), "
                f"e.g. --sbatch gpu-bind=closest."
            )
        extra[key.strip().removeprefix("--")] = value
    return extra


def _expand(base: ExperimentConfig, args: LaunchArgs, sets: list, what: str) -> list[ExperimentConfig]:
    """The grid (levels x --set values) over base; invalid combinations listed, or refused (--strict)."""
    from kdgat.launcher import grid

    result = grid.expand(base, grid_levels(args), sets)
    if result.skipped:
        print(f"{what}skipped {len(result.skipped)} invalid combination(s):", file=sys.stderr)
        for combination, why in result.skipped:
            print(f"  {combination}: {why}", file=sys.stderr)
        if args.strict:
            raise ConfigError(
                f"--strict: {len(result.skipped)} combination(s) of the grid cannot run "
                f"(listed above). Drop those values, or run without --strict to skip them."
            )
    if not result.valid:
        raise ConfigError(
            f"{what}no valid combination left in the grid (see the list above). Change the grid values."
        )
    return result.valid


def build_plan(args: LaunchArgs):
    """The launch's runs in dependent units, each run bound to the runs it builds on
    (kdgat.launcher.plan). A pipeline is one group per stage, each stage times the grid."""
    from kdgat.launcher import grid, pipeline, plan

    base = args.experiment
    sets = [grid.parse_set(item) for item in args.set]
    axes = [key for key, _ in sets]
    if not (args.pipeline or args.pipeline_file):
        return plan.plan([plan.Group(args.job_name, _expand(base, args, sets, ""))], axes)
    stages = pipeline.load_stages(args.pipeline_file) if args.pipeline_file else pipeline.KD_GAT
    gridded = {*axes, *(level for level, values in grid_levels(args).items() if values)}
    groups = []
    base = pipeline.shared_data(base, list(stages))
    for stage in pipeline.ordered(stages):
        clash = sorted(gridded & set(stage.changes))
        if clash:
            raise ConfigError(
                f"pipeline stage {stage.name!r} sets {', '.join(clash)} itself, and the command line "
                f"makes it a grid axis too. A stage fixes its own values: drop that grid flag."
            )
        cfgs = _expand(pipeline.stage_config(base, stage), args, sets, f"stage {stage.name}: ")
        groups.append(plan.Group(stage.name, cfgs, stage.after))
    return plan.plan(groups, axes)


def print_runs(the_plan) -> None:
    from kdgat.runs.prerequisites import needed

    units = the_plan.units
    n = sum(len(u.cfgs) for u in units)
    print(f"{n} run(s) in {len(units)} job(s):")
    for unit in units:
        after = f" (after {', '.join(unit.after)})" if unit.after else ""
        print(f"  job {unit.name}{after}: {len(unit.cfgs)} task(s)")
        for i, index in enumerate(unit.indices):
            run = the_plan.runs[index]
            cfg, size = run.cfg, run.cfg.model_size_config
            print(
                f"    [{i}] {configs.preset_name(cfg)}  hidden_dim={size.hidden_dim} "
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


def launch(args: LaunchArgs) -> int:
    import submitit

    from kdgat.launcher import slurm_params, submit

    the_plan = build_plan(args)
    units = the_plan.units
    osc_all = {repr(c.osc_config) for u in units for c in u.cfgs}
    if len(osc_all) > 1:
        raise ConfigError(
            "--set over osc_config fields gives tasks different Slurm resources, but one array "
            "job has one set of resources. Launch those separately."
        )
    osc = units[0].cfgs[0].osc_config
    runs_root = args.experiment.runs_root
    folder = submit.job_folder(runs_root)
    params = slurm_params.slurm_parameters(
        osc, args.job_name, extra_sbatch(args.sbatch), args.parallelism, submit.setup_lines()
    )
    print_runs(the_plan)
    if args.dry_run:
        for name, script in submit.dry_run(params, folder, units):
            print(f"\n# ---- sbatch script for job {name} ----")
            print(script, end="")
            print(f"# ---- end of sbatch script for job {name} ----")
        print("\ndry run: nothing submitted.")
        return 0
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(submit.REPO), os.environ.get("PYTHONPATH")) if p
    )
    if args.executor != "slurm":
        outcomes = submit.run_here(args.executor, folder, the_plan, args.parallelism, osc.time_min)
        bad = [o.unit.name for o in outcomes if o.state != "finished"]
        print(
            f"{len(outcomes) - len(bad)} of {len(outcomes)} job(s) finished"
            + (f"; not: {', '.join(bad)}" if bad else "")
        )
        return EXIT_JOBS_FAILED if bad else 0
    slurm_params.check_partition_exists(osc)
    try:
        outcomes = submit.submit_slurm(params, folder, the_plan, runs_root)
    except submitit.core.utils.FailedJobError as err:
        raise ConfigError(
            f"sbatch refused the job: {str(err).strip()}. Jobs submitted before it (see "
            f"{runs_root}/launches.jsonl) stay queued; fix the parameter and launch again."
        ) from None
    for o in outcomes:
        print(
            f"submitted {o.unit.name}: Slurm job {o.job_id} ({len(o.jobs)} task(s)), "
            f"logs {o.jobs[0].paths.stdout.parent}"
        )
        for i, run_dir in enumerate(o.unit.run_dirs):
            print(f"    [{i}] {run_dir}")
    print(f"follow with: python launch.py status --runs-root {runs_root}")
    if not args.wait:
        return 0
    states = submit.wait_slurm(outcomes)
    for job_id, state in states.items():
        print(f"job {job_id}: {state}")
    return 0 if all(s == "COMPLETED" for s in states.values()) else EXIT_JOBS_FAILED


def status_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="launch.py status", description="Table of runs: status.json + Slurm."
    )
    parser.add_argument("--runs-root", type=Path, default=Path("runs"))
    options = parser.parse_args(argv)
    from kdgat.launcher.status import rows, table

    print(table(rows(options.runs_root)))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["status"]:
        return status_main(argv[1:])
    from kdgat.errors import UserError

    try:
        return launch(parse(argv))
    except (ConfigError, UserError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
