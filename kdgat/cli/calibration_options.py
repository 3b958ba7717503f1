"""The threshold options of a calibrated evaluation, shared by kdgat.evaluate, kdgat.transfer and
`launch.py transfer` (torch-free: launch.py parses them for --help and --dry-run).

With a calibration capture of the target vehicle the decision threshold is chosen on the scores
of its windows (kdgat/evaluation/thresholds.py, calibration_threshold); each option left out takes
the run's own `--learning-config.threshold.calibration*` (by default the measured rule,
docs/unseen-vehicles.md#the-threshold-on-a-new-car).
"""

import argparse
import math
from typing import Any

from kdgat.common.errors import UserError

RULES = ("keep", "max", "quantile")


def add_threshold_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--calibration-threshold",
        choices=RULES,
        help="with a calibration capture: keep the run's validation threshold, or set it above the "
        "highest (max) or the --calibration-quantile (quantile) of the calibration windows' scores, "
        "raised by --calibration-margin (default: the run's learning_config.threshold.calibration)",
    )
    parser.add_argument(
        "--calibration-quantile",
        type=float,
        metavar="Q",
        help="rule quantile: the share of calibration windows the threshold lies above, in [0, 1]",
    )
    parser.add_argument(
        "--calibration-margin",
        type=float,
        metavar="M",
        help="rules max and quantile: how far above, in robust standard deviations of the "
        "calibration scores' log-odds (a VGAE's: log error), >= 0",
    )


def threshold_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The ThresholdConfig fields the options set (calibration, calibration_quantile,
    calibration_margin), checked; {} when none is given."""
    out: dict[str, Any] = {}
    if args.calibration_threshold is not None:
        out["calibration"] = args.calibration_threshold
    quantile, margin = args.calibration_quantile, args.calibration_margin
    if quantile is not None:
        if not (math.isfinite(quantile) and 0 <= quantile <= 1):
            raise UserError(
                f"--calibration-quantile {quantile!r}: a share of windows, in [0, 1] (e.g. 0.99)."
            )
        out["calibration_quantile"] = quantile
    if margin is not None:
        if not (math.isfinite(margin) and margin >= 0):
            raise UserError(
                f"--calibration-margin {margin!r}: a finite number >= 0 of robust standard "
                f"deviations of the calibration scores (on their log scale), e.g. 3."
            )
        out["calibration_margin"] = margin
    return out
