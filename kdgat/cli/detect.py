"""Streaming detection on a recorded or live CAN bus.

    python -m kdgat.detect RUN_DIR|ARTEFACT --replay FILE [--speed realtime|max]
    python -m kdgat.detect RUN_DIR|ARTEFACT --bus INTERFACE:CHANNEL [--idle-timeout S]

The model is a finished run directory (scored in eager torch) or an artefact written by
`python -m kdgat.export` (.onnx through ONNX Runtime, .pt TorchScript, and for GAT classifiers
model_native.npz: the whole model in one compiled call per window, the fastest for one window
at a time). The window graph is kept up to date as frames arrive (--builder) and scored at the
run's stride (or --stride). Alerts go to --alerts
(default stdout) as JSON lines: time, window span (frames and times), score, threshold,
decision, the window's CAN IDs outside the model's vocabulary (unknown_ids: never heard in
calibration, or never seen in training without one), and for models with a VGAE the top
contributing CAN IDs. On the end of the source,
--max-frames, --idle-timeout or Ctrl-C (SIGINT) a summary is printed on stderr: frames,
malformed frames skipped, windows, alerts, frames/s sustained, latency p50/p99 per window
(from its last frame's arrival, or its block's, to its score: the graph update for its stride
of frames + inference, and in a batch or block the windows scored before it), and a warning
when alerts hold unknown IDs (with a calibration: the car's own IDs it never heard, such as
those of an engine that was off, are flagged as injected ones would be). When frames
wait at the source (--speed max, a burst on the bus), up to --max-batch complete windows are
built in one vectorised pass and scored in order; their records equal the one-at-a-time
path's (--max-batch 1). Frames go to the detector in blocks of up to --block frames (numpy
arrays: a replay's next frames, or the frames waiting on the bus, drained with at most
--max-wait seconds of waiting for more), every window a block completes scored in it; --block 0
hands frames over one at a time (the per-frame path).

With --calibrate-seconds N the detector first calibrates itself on the car: the stream's first
N seconds are taken as its attack-free traffic (no label read, no window scored), the car's
CAN IDs are mapped onto the run's vocabulary, the normalisation refitted and the threshold set
on those windows' scores (--calibration-threshold; kdgat/deploy/calibrate.py); what it fitted
is printed, then it detects (the same decisions as kdgat.evaluate --calibration on the frames).
"""

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import configs
from kdgat.cli.calibration_options import add_threshold_arguments, threshold_overrides
from kdgat.common.errors import UserError
from kdgat.common.io import atomic_write_json
from kdgat.common.seconds import seconds_argument
from kdgat.deploy.artefact import Scorer, load_scorer
from kdgat.deploy.blocks import Block, bus_blocks, replay_blocks
from kdgat.deploy.stream import BUILDERS, Detector, Frame, bus_frames, open_bus, replay_source


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kdgat.detect",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", type=Path, help="a finished run directory or an exported artefact")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--replay", type=Path, help="a capture file in any supported format")
    source.add_argument("--bus", help="a python-can bus INTERFACE:CHANNEL (socketcan:can0, virtual:test)")
    parser.add_argument("--speed", choices=("realtime", "max"), default="max", help="replay pace")
    parser.add_argument("--alerts", type=Path, help="JSON-lines file for alerts (default: stdout)")
    parser.add_argument(
        "--every-window", action="store_true", help="write every scored window, not only alerts"
    )
    parser.add_argument("--stride", type=int, help="frames between scored windows (default: the run's)")
    parser.add_argument("--threads", type=int, default=1, help="inference threads (default 1)")
    parser.add_argument(
        "--max-batch",
        type=int,
        default=64,
        help="when frames wait at the source (the detector is behind), build and score up to this "
        "many complete windows at once (default 64; 1: each window as its last frame arrives)",
    )
    parser.add_argument(
        "--block",
        type=int,
        help="frames handed to the detector at once as arrays (default: --max-batch x stride, "
        "about one batch of windows; 0: one frame at a time)",
    )
    parser.add_argument(
        "--max-wait",
        type=float,
        default=0.005,
        help="--bus with --block: seconds a block waits for more frames after its first (default 0.005)",
    )
    parser.add_argument(
        "--idle-timeout", type=float, help="--bus: stop after this many seconds without a frame"
    )
    parser.add_argument("--max-frames", type=int, help="--bus: stop after this many frames")
    parser.add_argument("--summary", type=Path, help="also write the summary as JSON here")
    parser.add_argument(
        "--builder",
        choices=BUILDERS,
        default="compiled",
        help="--block 0: how the window graph is kept as frames arrive: compiled (one numba call "
        "per window, the default) or incremental (numpy tables updated frame by frame); the "
        "graphs are equal",
    )
    parser.add_argument(
        "--calibrate-seconds",
        type=seconds_argument("--calibrate-seconds"),
        metavar="N",
        help="calibrate on the car first: its first N seconds are taken as attack-free (no label "
        "read, nothing scored), the vocabulary map, normalisation and threshold fitted on them",
    )
    add_threshold_arguments(parser)
    return parser


def _check(args: argparse.Namespace) -> None:
    if args.max_batch < 1:
        raise UserError(f"--max-batch {args.max_batch}: at least 1 window (1: no batching).")
    if args.stride is not None and args.stride < 1:
        raise UserError(f"--stride {args.stride}: the stride is at least 1 frame.")
    if (args.block or 0) < 0 or args.max_wait < 0:
        raise UserError(f"--block {args.block} --max-wait {args.max_wait}: neither can be negative.")
    if args.replay is not None and not args.replay.is_file():  # before the model loads (seconds)
        raise UserError(f"--replay {args.replay}: no such capture file; give a recorded capture's path.")
    if threshold_overrides(args) and args.calibrate_seconds is None:
        raise UserError(
            "--calibration-threshold, --calibration-quantile and --calibration-margin set the threshold "
            "on the car's calibration: add --calibrate-seconds N, or drop them."
        )


Sources = tuple[Iterator[Frame | None], Iterator[Block] | None, bool, int]


def _sources(args: argparse.Namespace) -> Sources:
    """(frames, blocks or None, has_time, malformed so far): the replay or the bus, frame by
    frame (None: a malformed frame) or, with --block, in blocks."""
    realtime = args.speed == "realtime"
    frames: Iterator[Frame | None] = iter(())
    blocks: Iterator[Block] | None = None
    if args.replay is not None:
        frames, capture = replay_source(args.replay, realtime)
        if args.block:
            blocks = replay_blocks(capture, args.block, realtime)
        return frames, blocks, capture.has_time, capture.skipped + capture.dropped_na
    bus = open_bus(args.bus)
    if args.block:
        blocks = bus_blocks(bus, args.idle_timeout, args.max_frames, args.block, args.max_wait)
    else:
        frames = bus_frames(bus, args.idle_timeout, args.max_frames)
    return frames, blocks, True, 0


def _calibrated(args: argparse.Namespace, scorer: Scorer, sources: Sources) -> tuple[Scorer, Sources, Any]:
    """The scorer calibrated on the stream's first --calibrate-seconds, the sources from the first
    window after them, and the StreamStart and fit (None, None without the option)."""
    frames, blocks, has_time, malformed = sources
    if args.calibrate_seconds is None:
        return scorer, sources, None
    from kdgat.data.calibration import waking_warning
    from kdgat.deploy.calibrate import calibrate_scorer, describe, split_blocks, split_frames

    if not has_time:
        raise UserError(
            f"--calibrate-seconds {args.calibrate_seconds:g}: {args.replay} has no timestamps, so its "
            f"first seconds are unknown; replay a capture with timestamps."
        )
    stride, seconds = args.stride or int(scorer.meta["stride"]), args.calibrate_seconds
    if blocks is not None:
        start, blocks = split_blocks(blocks, seconds, stride)
    else:
        start, frames = split_frames(frames, seconds, stride)
    calibrated, fit = calibrate_scorer(scorer, start, seconds, threshold_overrides(args), args.threads)
    print(describe(fit, start.first_start), file=sys.stderr, flush=True)
    if (warning := waking_warning(fit.info)) is not None:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    return calibrated, (frames, blocks, has_time, malformed + start.malformed), (start, fit)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        _check(args)
        scorer = load_scorer(args.model, threads=args.threads)
        if args.block is None:  # a block completes about one batch: a window waits for at most that
            args.block = args.max_batch * (args.stride or int(scorer.meta["stride"]))
        scorer, (frames, blocks, has_time, malformed), calibration = _calibrated(args, scorer, _sources(args))
        with contextlib.ExitStack() as stack:
            out = sys.stdout if args.alerts is None else stack.enter_context(args.alerts.open("w"))
            detector = Detector(
                scorer,
                out,
                every_window=args.every_window,
                stride=args.stride,
                has_time=has_time,
                max_batch=args.max_batch,
                builder=args.builder,
                frame_offset=calibration[0].first_start if calibration else 0,
            )
            detector.summary.malformed = malformed
            if calibration:  # the calibration's frames were seen too
                detector.summary.frames = calibration[0].first_start
                detector.summary.calibration = calibration[1].info
            summary = detector.run_blocks(blocks) if blocks is not None else detector.run(frames)
    except (UserError, configs.ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summary.text(), file=sys.stderr)
    if (warning := summary.unknown_warning()) is not None:
        print(f"warning: {warning}", file=sys.stderr)
    if args.summary is not None:
        atomic_write_json(args.summary, summary.as_dict())
    else:
        print(json.dumps(summary.as_dict()), file=sys.stderr)
    return 0
