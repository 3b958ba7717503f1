"""``python -m kdgat.transfer``: the trained-on x evaluated-on matrix in one command.

    python -m kdgat.transfer RUN... --on NAME=PATH [--on NAME=PATH ...] [--calibrate NAME=FILE[@SECONDS]]
        [--png transfer.png]

Each finished RUN is evaluated on each target (a dataset folder, a folder of captures or one
capture file) through kdgat.evaluate, which writes RUN/eval_NAME.json. A target given a
calibration capture (--calibrate NAME=FILE, or FILE@SECONDS for its first seconds) is evaluated
with the vocabulary and normalisation fitted on it (kdgat/data/calibration.py) and the threshold
chosen on its windows (--calibration-threshold). Then the matrix
(one row per run, one column per target) of F1, AUROC, benign FPR and the flag-everything floor is
printed, and saved as a heatmap PNG; `python -m kdgat.results RUNS --transfer --transfer-rows run`
shows the same matrix later from the eval files.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import configs
from kdgat.cli.calibration_options import add_threshold_arguments, threshold_overrides
from kdgat.common.errors import UserError
from kdgat.common.seconds import positive_seconds

if TYPE_CHECKING:
    import pandas as pd

# Evaluation, pandas and the results readers are imported where they are used: launch.py's
# transfer mode parses targets with this module and must stay torch-free for --help and --dry-run.


class TransferError(UserError):
    """A transfer command the user can fix."""


def _pairs(values: list[str], option: str, example: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise TransferError(f"{option} {value!r}: expected NAME=VALUE, e.g. {option} {example}.")
        if name in out:
            raise TransferError(
                f"{option}: the name {name!r} is given twice; each target needs its own name."
            )
        out[name] = rest
    return out


def parse_calibration(value: str) -> tuple[Path, float | None]:
    """FILE or FILE@SECONDS -> (file, seconds or None)."""
    file, sep, seconds = value.rpartition("@")
    if not sep:
        return Path(value), None
    try:
        return Path(file), positive_seconds(seconds, f"--calibrate ...={value}", f"{file}@10")
    except UserError as err:
        raise TransferError(str(err)) from None


def parse_targets(
    on: list[str], calibrate: list[str]
) -> tuple[dict[str, Path], dict[str, tuple[Path, float | None]]]:
    """--on NAME=PATH and --calibrate NAME=FILE[@SECONDS] values -> targets, calibrations."""
    targets = {k: Path(v) for k, v in _pairs(on, "--on", "test_02=../shared/data/hcrl_sa/test_02_x").items()}
    calibrations = {
        k: parse_calibration(v)
        for k, v in _pairs(calibrate, "--calibrate", "spark=DoS-spark.csv.gz@10").items()
    }
    unknown = sorted(set(calibrations) - set(targets))
    if unknown:
        raise TransferError(
            f"--calibrate names {', '.join(unknown)}, which no --on target has; use a NAME given to --on."
        )
    return targets, calibrations


def run_transfer(
    runs: list[Path],
    targets: dict[str, Path],
    calibrations: dict[str, tuple[Path, float | None]],
    png: Path | None,
    dataset: str | None = None,
    thresholds: dict[str, Any] | None = None,
) -> "tuple[dict[str, pd.DataFrame], list[Path]]":
    """Evaluate every run on every target; the matrices and the eval files written. thresholds:
    the calibration threshold knobs over each run's (calibrated targets only)."""
    from kdgat.results.analyse import matrices_of
    from kdgat.scoring.evaluate import evaluate_run, result_lines

    written = []
    for run in runs:
        for name, path in targets.items():
            calibration, seconds = calibrations.get(name, (None, None))
            target = evaluate_run(run, path, dataset, name, calibration, seconds, thresholds=thresholds)
            print(f"{target}", flush=True)
            print(result_lines(json.loads(target.read_text())), flush=True)
            written.append(target)
    return matrices_of(runs, list(targets), png), written


def add_transfer_arguments(parser: argparse.ArgumentParser) -> None:
    """The runs, targets, calibrations and output options both transfer commands take."""
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="finished run directories")
    parser.add_argument(
        "--on", action="append", default=[], metavar="NAME=PATH", required=True, help="a target (repeat)"
    )
    parser.add_argument(
        "--calibrate",
        action="append",
        default=[],
        metavar="NAME=FILE[@SECONDS]",
        help="fit target NAME's vocabulary and normalisation on this attack-free capture (its labels unread)",
    )
    add_threshold_arguments(parser)
    parser.add_argument("--dataset", help="the targets' dataset (file formats), default: each run's")
    parser.add_argument(
        "--png", type=Path, default=Path("transfer.png"), help="heatmap file (default transfer.png)"
    )
    parser.add_argument("--format", choices=("table", "csv", "markdown", "latex"), default="table")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kdgat.transfer",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_transfer_arguments(parser)
    args = parser.parse_args(argv)
    try:
        targets, calibrations = parse_targets(args.on, args.calibrate)
        thresholds = threshold_overrides(args)
        matrices, _ = run_transfer(args.runs, targets, calibrations, args.png, args.dataset, thresholds)
    except (UserError, configs.ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from kdgat.results.render import render_matrices

    print(render_matrices(matrices, args.format, 4))
    print(f"heatmap: {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
