"""Score a finished run on other data: another dataset, a folder or a single capture file.

    python -m kdgat.evaluate RUN_DIR --data-root PATH [--dataset NAME] [--name NAME]

Graphs are built exactly as in training (window, stride, the run's CAN-ID vocabulary and
normalisation), the run's best weights score them, and the validation threshold of the run
decides. With --calibration (an attack-free capture of the target) vocabulary and
normalisation are fitted on it, and the threshold is chosen on its windows' scores by
--calibration-threshold (the run's threshold's figures are recorded beside it). Writes
RUN_DIR/eval_<name>.json (metrics over all files, per file and per attack type) and prints the
metrics. Cross-vehicle and cross-dataset transfer in one command.
"""

import argparse
import json
import sys
from pathlib import Path

import configs
from kdgat.cli.calibration_options import add_threshold_arguments, threshold_overrides
from kdgat.common.errors import UserError
from kdgat.common.seconds import seconds_argument
from kdgat.scoring.evaluate import evaluate_run, result_lines


def add_calibration_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--calibration",
        type=Path,
        help="an attack-free capture of the target vehicle: vocabulary and normalisation are fitted "
        "on it (no label of it is read) instead of the run's; its windows are not scored",
    )
    parser.add_argument(
        "--calibration-seconds",
        type=seconds_argument("--calibration-seconds"),
        help="with --calibration: only its first this-many seconds (a finite number > 0)",
    )
    parser.add_argument(
        "--fine-tune-epochs",
        type=int,
        default=0,
        help="VGAE runs with --calibration: fine-tune the model on the calibration windows this many "
        "epochs (at a tenth of its learning rate) before scoring (default 0: no fine-tuning)",
    )
    add_threshold_arguments(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kdgat.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", type=Path, help="a finished run directory (runs/.../run_NNN)")
    parser.add_argument(
        "--data-root", type=Path, required=True, help="a capture file or a folder of captures"
    )
    parser.add_argument(
        "--dataset",
        help="the evaluated dataset (its file formats; the transfer matrix's column). Default: the run's",
    )
    parser.add_argument("--name", help="suffix of the output file eval_<name>.json (default: from the path)")
    add_calibration_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        thresholds = threshold_overrides(args)
        if thresholds and args.calibration is None:
            raise UserError(
                "--calibration-threshold, --calibration-quantile and --calibration-margin choose the "
                "threshold on a calibration capture's windows: add --calibration FILE, or drop them."
            )
        target = evaluate_run(
            args.run_dir,
            args.data_root,
            args.dataset,
            args.name,
            args.calibration,
            args.calibration_seconds,
            args.fine_tune_epochs,
            thresholds,
        )
    except (UserError, configs.ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{target}\n{result_lines(json.loads(target.read_text()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
