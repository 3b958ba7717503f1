"""launch.py's command line before tyro reads it: repeats gathered or refused (kdgat.config.repeats),
and every config field given one way only.

A field can be given as a flag (`--training.epochs 8`), a grid (`--set training_config.epochs=2,4`,
`--training.epochs 2,4`, `--model-sizes ...`) or by a pipeline stage. Two of them for one field
would mean one replaces the other for every run, so that is refused with both spellings named.
"""

import functools

from configs import ConfigError
from kdgat.config.argv import pre_parser
from kdgat.config.repeats import Flag, flag_table, given_dests, merge_repeats, tyro_parser
from kdgat.launcher.args import GRID_FLAGS, LaunchArgs
from kdgat.launcher.grid import parse_set

EXPERIMENT = "experiment."  # tyro's dest prefix for the experiment's own flags


@functools.cache
def launch_flags() -> dict[str, Flag]:
    """Every option of launch.py (tyro's LaunchArgs and the --preset/--config pre-parser)."""
    return flag_table(tyro_parser(LaunchArgs), pre_parser())


def gather_repeats(argv: list[str]) -> list[str]:
    return merge_repeats(argv, launch_flags())


def field_of(dest: str) -> str | None:
    """'experiment.training-config.epochs' -> 'training_config.epochs'; None for launcher options."""
    if not dest.startswith(EXPERIMENT):
        return None
    return dest.removeprefix(EXPERIMENT).replace("-", "_")


def _grid_sources(args: LaunchArgs) -> dict[str, list[str]]:
    """config field -> the grid options that give it values."""
    sources: dict[str, list[str]] = {}
    for flag, level in GRID_FLAGS.items():
        if values := getattr(args, flag):
            sources.setdefault(level, []).append(f"--{flag.replace('_', '-')} {','.join(values)}")
    for item in args.set:
        sources.setdefault(parse_set(item)[0], []).append(f"--set {item}")
    return sources


def check_each_field_once(rest: list[str], args: LaunchArgs, stages: dict[str, list[str]]) -> list[str]:
    """Refuse a field given by two of: a plain flag in `rest` (after the grid spellings were taken
    out), grid options, every pipeline stage. `stages`: stage name -> the fields it sets. Returns
    notes for a flag that some stages replace (it stays the value of the others)."""
    grids = _grid_sources(args)
    for field, given in grids.items():
        if len(given) > 1:
            raise ConfigError(
                f"{field} is gridded twice ({' and '.join(given)}): one grid axis per field, or one "
                f"replaces the other. Give all its values once, e.g. --set {field}=V1,V2,V3."
            )
    notes = []
    for dest, occurrence in given_dests(rest, launch_flags()):
        flag_field = field_of(dest)
        if flag_field is None:  # a launcher option, not a config field
            continue
        if flag_field in grids:
            raise ConfigError(
                f"{flag_field} is given as {occurrence.shown()!r} and as a grid ({grids[flag_field][0]}): "
                f"the grid would replace {occurrence.option} for every run. Give it once: put every value in "
                f"the grid."
            )
        setting = [name for name, fields in stages.items() if flag_field in fields]
        if setting and len(setting) == len(stages):
            raise ConfigError(
                f"{flag_field} is given as {occurrence.shown()!r}, but every pipeline stage sets it itself "
                f"({', '.join(setting)}), so the flag would be dropped. A stage fixes its own values: "
                f"drop {occurrence.option} (or leave the field out of a stage in a --pipeline-file)."
            )
        if setting:
            others = [name for name in stages if name not in setting]
            notes.append(
                f"note: {occurrence.shown()} applies to stage(s) {', '.join(others)}; "
                f"{', '.join(setting)} set {flag_field} themselves."
            )
    return notes
