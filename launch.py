"""Launch kdgat experiments: one config, a sweep grid, or the KD-GAT pipeline, via submitit.

    python launch.py --preset automotive_synthetic_classifier_gat_tiny_no_all_samples --executor local
    python launch.py --sweep --model-sizes teacher,student --distillations no,standard --dry-run
    python launch.py --sweep --set model_size_config.hidden_dim=32,64,128,256 --parallelism 2
    python launch.py --sweep --model-size-config.hidden-dim 32,64 --training.lr 1e-3,3e-4
    python launch.py --pipeline --dataset hcrlch --osc-config.cluster pitzer --osc-config.account PAS1234
    python launch.py --pipeline --set training_config.seed=0,1,2
    python launch.py --pipeline-file my_stages.yaml --executor local
    python launch.py status [--runs-root runs]
    python launch.py retry [LAUNCH_DIR | --runs-root runs] [--dry-run] [--wait]
    python launch.py --sweep --set training_config.seed=0,1,2,3 --runs-per-task 2
    python launch.py transfer RUN... --on NAME=PATH ... [--calibrate NAME=FILE@SECONDS] [--wait]

Every job runs `kdgat.experiment.run_experiment`, the function behind `python train.py`. A grid
is split into stages by what its runs build on (teachers before students, VGAE before curriculum
and fusion GAT, GAT before DQN), each stage one Slurm array job (at most --parallelism tasks at
once) that waits (afterok) for the stages it needs; a failed stage stops its dependants. Run dirs
are claimed at submission, and each dependant is bound to the exact upstream run of its own launch
(same data, seed and grid axes), recorded in its config.yaml. Invalid grid combinations are listed
and skipped (--strict refuses them). On USR2/TERM a job saves last.pt, requeues and resumes in the
same run dir. `launch.py transfer` submits the transfer matrix's evaluations (each run on each
target) as one array job; `launch.py transfer --help` says more. `--runs-per-task K` packs K runs
of a stage into each array task (one GPU allocation), at once where they fit. `launch.py status`
says what failed and shows the last lines of its log; `launch.py retry` resubmits exactly the
failed, cancelled or unfinished runs of a launch into their own run dirs (resuming from last.pt).

Options read before the config flags: --preset NAME, --config PATH (as in train.py).
A bad value exits with code 2 and says what, why and how to fix, before anything is submitted.
"""

import argparse
import dataclasses
import sys
from pathlib import Path

import tyro

from configs import ConfigError, ExperimentConfig
from kdgat.config.argv import parse_with_recipe, pre_parser
from kdgat.launcher.args import GRID_FLAGS, LaunchArgs

EXIT_USER_ERROR = 2


def parse(argv: list[str]) -> LaunchArgs:
    from kdgat.launcher.flags import check_each_field_once, gather_repeats
    from kdgat.launcher.grid import comma_flags_to_sets

    # argparse keeps only the last of a repeated flag: list flags add up, other repeats are refused.
    options, rest = pre_parser().parse_known_args(gather_repeats(argv))
    rest, comma_sets = comma_flags_to_sets(rest)
    parsed: list[LaunchArgs] = []

    def experiment(base: ExperimentConfig) -> ExperimentConfig:
        parsed.append(
            tyro.cli(
                LaunchArgs,
                args=rest,
                default=LaunchArgs(experiment=base),
                description=__doc__,
                prog="launch.py",
            )
        )
        return parsed[-1].experiment

    chosen = parse_with_recipe(experiment, options)  # the launcher's own options: from the first parse
    args = dataclasses.replace(parsed[0], experiment=chosen)
    if args.pipeline or args.pipeline_file or any(getattr(args, flag) for flag in GRID_FLAGS):
        # Stages and level grids set levels per run, and a recipe is for some levels only: each
        # run picks its own when it is resolved (kdgat/config/recipes.py), not the base for all.
        args = dataclasses.replace(args, experiment=parsed[0].experiment)
    args = dataclasses.replace(args, set=(*args.set, *comma_sets))
    for note in check_each_field_once(rest, args, _stage_fields(args)):
        print(note, file=sys.stderr)
    if args.parallelism < 1:
        raise ConfigError(f"--parallelism {args.parallelism}: expected an integer >= 1 (tasks at once).")
    if args.runs_per_task < 1:
        raise ConfigError(
            f"--runs-per-task {args.runs_per_task}: expected an integer >= 1 (runs packed into one "
            f"array task; 1 = one run per task)."
        )
    if args.gpu_gb_per_run < 0:
        raise ConfigError(f"--gpu-gb-per-run {args.gpu_gb_per_run}: expected GiB >= 0 (0 = estimate).")
    return args


def _stage_fields(args: LaunchArgs) -> dict[str, list[str]]:
    """Each pipeline stage's name -> the config fields it sets ({} for a plain launch)."""
    from kdgat.launcher import pipeline

    if not (args.pipeline or args.pipeline_file):
        return {}
    stages = pipeline.load_stages(args.pipeline_file) if args.pipeline_file else pipeline.KD_GAT
    return {stage.name: list(stage.changes) for stage in stages}


def status_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="launch.py status", description="Table of runs: status.json + Slurm."
    )
    parser.add_argument("--runs-root", type=Path, default=Path("runs"))
    options = parser.parse_args(argv)
    from kdgat.launcher.failures import report
    from kdgat.launcher.status import rows, table

    found = rows(options.runs_root)
    print(table(found))
    if found:
        print("\n" + report(found, options.runs_root))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["status"]:
        return status_main(argv[1:])
    from kdgat.common.errors import UserError
    from kdgat.launcher.command import launch

    try:
        if argv[:1] == ["retry"]:
            from kdgat.launcher.retry import retry

            return retry(argv[1:])
        if argv[:1] == ["transfer"]:
            from kdgat.launcher.transfer import main as transfer_main

            return transfer_main(argv[1:])
        return launch(parse(argv))
    except (ConfigError, UserError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
