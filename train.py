"""Train one kdgat experiment.

    python train.py                                  # synthetic CAN traffic, small GAT, CPU, minutes
    python train.py --dataset hcrlsa --data-root ../shared/data/hcrl_sa --training.epochs 5
    python train.py --preset automotive_hcrlsa_classifier_gat_student_no_all_samples --data-root ...
    python train.py --config runs/.../run_003/config.yaml     # exact rerun (later flags override)
    python train.py --resume runs/.../run_003                 # continue an interrupted run in place
    python train.py --print-config ...                        # resolved config, nothing trained
    python train.py --list-presets                            # every valid preset name

Options read before the config flags:
  --preset NAME       start from the levels named by NAME
  --config PATH       start from a saved config.yaml
  --resume [RUN_DIR]  continue RUN_DIR (or the latest unfinished run of this experiment) from last.pt
  --print-config      print the resolved config as YAML and exit
  --list-presets      print every valid preset name and exit

A bad value or an incompatible combination exits with code 2 and says what, why and how to fix.
"""

import argparse
import sys
from pathlib import Path

import tyro

from configs import ConfigError, ExperimentConfig
from kdgat.config.argv import parse_with_recipe, pre_parser
from kdgat.config.codec import load_yaml, to_yaml
from kdgat.config.presets import preset_name, valid_presets
from kdgat.config.resolve import resolve

EXIT_USER_ERROR = 2
EXIT_PREEMPTED = 75  # EX_TEMPFAIL: state saved, run again with --resume


def _pre_parser() -> argparse.ArgumentParser:
    parser = pre_parser()  # --preset, --config: as in launch.py
    parser.add_argument("--resume", nargs="?", const=True, default=None)
    parser.add_argument("--print-config", action="store_true")
    parser.add_argument("--list-presets", action="store_true")
    return parser


def read_config(options: argparse.Namespace, rest: list[str]) -> ExperimentConfig:
    """The pre-parsed options and the remaining flags -> the config as given, not yet resolved
    (run_experiment resolves it, once). Raises ConfigError for user mistakes."""
    asks_help = any(flag in ("-h", "--help") for flag in rest)  # help wins: tyro prints it below
    if isinstance(options.resume, str) and not asks_help:
        if rest or options.preset or options.config:
            raise ConfigError(
                "--resume RUN_DIR continues a run exactly as it was configured; drop the other "
                f"flags ({' '.join(rest + (['--preset'] if options.preset else []))})."
            )
        return load_yaml(Path(options.resume) / "config.yaml")

    def parse(base: ExperimentConfig) -> ExperimentConfig:
        return tyro.cli(ExperimentConfig, args=rest, default=base, description=__doc__, prog="train.py")

    return parse_with_recipe(parse, options)


def parse_config(argv: list[str]) -> tuple[ExperimentConfig, argparse.Namespace]:
    """argv -> resolved config and the pre-parsed options. Raises ConfigError for user mistakes."""
    options, rest = _pre_parser().parse_known_args(argv)
    return resolve(read_config(options, rest)), options


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from kdgat.common.errors import UserError

    try:
        options, rest = _pre_parser().parse_known_args(argv)
        if options.list_presets:
            print("\n".join(valid_presets()))
            return 0
        cfg = read_config(options, rest)
        if options.print_config:
            cfg = resolve(cfg)
            from kdgat.launcher.memory import estimate
            from kdgat.models import nominal_parameter_count

            params, note = nominal_parameter_count(cfg)
            memory = estimate(cfg)
            print(f"# preset: {preset_name(cfg)}")
            print(f"# parameters: {params:,} ({note})")
            known = memory.describe() if memory else "unknown (its data cannot be read here)"
            print(f"# memory estimate: {known}")
            print(to_yaml(cfg), end="")
            return 0
        from kdgat.experiment import run_experiment
        from kdgat.runs.store import experiment_dir, latest_unfinished
        from kdgat.training.skeleton import Preempted

        run_dir = None
        if isinstance(options.resume, str):
            run_dir = Path(options.resume)
        elif options.resume:
            exp_dir = experiment_dir(resolve(cfg))  # resolved: bad levels are refused as such
            run_dir = latest_unfinished(exp_dir)
            if run_dir is None:
                raise ConfigError(
                    f"--resume: no unfinished run under {exp_dir}; start a new one without --resume."
                )
            cfg = load_yaml(run_dir / "config.yaml")
        try:
            run_experiment(cfg, run_dir)  # resolves cfg: the one resolve on the way to metrics.json
        except Preempted as stop:
            print(
                f"stopped by {stop}; state saved. Continue with: python train.py --resume {stop.run_dir}",
                file=sys.stderr,
            )
            return EXIT_PREEMPTED
    except (ConfigError, UserError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
