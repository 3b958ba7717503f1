"""Export finished CAN runs as self-contained detector artefacts, or report what they cost.

    python -m kdgat.export RUN_DIR [--format onnx|torchscript] [--out FILE] [--calibration FILE[@SECONDS]]
    python -m kdgat.export RUN_DIR [RUN_DIR ...] --report [--frames N] [--max-batch B]

Export writes RUN_DIR/export/model.onnx (or model.pt): the model with its normalisation inside,
and as metadata the CAN-ID vocabulary, normalisation, threshold, feature names, window and
stride, the source run and its config digest. VGAE, GAT and fusion GAT runs export; DQN fusion
does not (the error says what it would take). With --calibration FILE[@SECONDS] (an attack-free
capture of a car, its first SECONDS) the artefact is calibrated for that car as kdgat.evaluate
--calibration calibrates a run: the car's normalisation inside the model, its CAN IDs mapped onto
the run's vocabulary and the threshold chosen on its windows' scores in the metadata (with the
run's own beside them, under "trained", and what it was fitted on, under "calibration").

--report replays a test capture of each run through the streaming detector on one thread, one
window at a time and micro-batched (up to --max-batch windows built and scored at once), and
writes the side-by-side figures to the first RUN_DIR as deployment_report.json and .md.
"""

import argparse
import sys
from pathlib import Path

import configs
from kdgat.cli.calibration_options import add_threshold_arguments, threshold_overrides
from kdgat.common.errors import UserError
from kdgat.common.seconds import positive_seconds
from kdgat.deploy.artefact import FORMATS, export_run


def parse_capture(value: str) -> tuple[Path, float | None]:
    """--calibration FILE or FILE@SECONDS -> (file, seconds or None); bad seconds exit 2."""
    file, sep, seconds = value.rpartition("@")
    if not sep:
        return Path(value), None
    return Path(file), positive_seconds(seconds, f"--calibration {value}", f"{file}@10")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kdgat.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dirs", type=Path, nargs="+", help="finished run directories")
    parser.add_argument("--format", choices=tuple(FORMATS), default="onnx")
    parser.add_argument(
        "--out", type=Path, help="artefact path (one run only; default RUN_DIR/export/model.*)"
    )
    parser.add_argument("--report", action="store_true", help="measure and write the deployment report")
    parser.add_argument(
        "--frames", type=int, default=20000, help="--report: frames of the test capture replayed"
    )
    parser.add_argument(
        "--max-batch",
        type=int,
        default=64,
        help="--report: windows built and scored at once in the micro-batched replay (default 64)",
    )
    parser.add_argument(
        "--calibration",
        metavar="FILE[@SECONDS]",
        help="calibrate the artefact for a car: an attack-free capture of it (its first SECONDS); "
        "no label of it is read",
    )
    add_threshold_arguments(parser)
    args = parser.parse_args(argv)
    try:
        if args.report:
            from kdgat.deploy.report import write_report

            if args.max_batch < 2:
                raise UserError(
                    f"--max-batch {args.max_batch}: the report compares 1 with a batch of 2 or more."
                )
            target, text = write_report(args.run_dirs, args.frames, args.max_batch)
            print(text + f"\n{target}\n{target.with_suffix('.md')}")
            return 0
        if args.out is not None and len(args.run_dirs) > 1:
            raise UserError("--out names one artefact; pass one run directory with it.")
        thresholds = threshold_overrides(args)
        if thresholds and args.calibration is None:
            raise UserError("--calibration-threshold and its knobs need --calibration FILE[@SECONDS].")
        for run_dir in args.run_dirs:
            fit = None
            if args.calibration is not None:
                from kdgat.data.calibration import waking_warning
                from kdgat.deploy.calibrate import fit_for_export

                fit = fit_for_export(run_dir, *parse_capture(args.calibration), thresholds)
                if (warning := waking_warning(fit.info)) is not None:
                    print(f"warning: {warning}", file=sys.stderr)
            print(export_run(run_dir, args.format, args.out, fit))
    except (UserError, configs.ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
