"""A launch's flags -> its plan: the grid (or each pipeline stage times the grid), invalid
combinations listed on stderr or refused (--strict), every run bound (kdgat.launcher.plan)."""

import sys

from configs import ConfigError, ExperimentConfig
from kdgat.launcher import grid, pipeline, plan
from kdgat.launcher.args import LaunchArgs, grid_levels


def expand(base: ExperimentConfig, args: LaunchArgs, sets: list, what: str) -> list[ExperimentConfig]:
    """The grid (levels x --set values) over base; invalid combinations listed, or refused (--strict)."""
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


def build_plan(args: LaunchArgs) -> plan.Plan:
    """The launch's runs in dependent units, each run bound to the runs it builds on
    (kdgat.launcher.plan). A pipeline is one group per stage, each stage times the grid."""
    base = args.experiment
    sets = [grid.parse_set(item) for item in args.set]
    axes = [key for key, _ in sets]
    if not (args.pipeline or args.pipeline_file):
        return plan.plan([plan.Group(args.job_name, expand(base, args, sets, ""))], axes)
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
        cfgs = expand(pipeline.stage_config(base, stage), args, sets, f"stage {stage.name}: ")
        groups.append(plan.Group(stage.name, cfgs, stage.after))
    return plan.plan(groups, axes)
