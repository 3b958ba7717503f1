"""A detector that calibrates itself on the car it is installed in, and artefacts calibrated for one.

`python -m kdgat.detect MODEL --bus IFACE:CH --calibrate-seconds 60` (or `--replay FILE`) takes the
first seconds of the stream as the car's attack-free traffic and fits what calibration fits
(kdgat/data/calibration.py): the car's CAN IDs mapped onto the run's vocabulary by priority rank,
the normalisation refitted on its windows, and the threshold chosen on their scores by the run's
calibration rule (kdgat/evaluation/thresholds.py). Nothing is scored during calibration; the
detector then scores the windows after it, on the same grid `kdgat.evaluate --calibration FILE
--calibration-seconds N` scores (windows at multiples of the stride from the stream's first frame,
each starting at or after the first frame past the calibration). No label is read: the
calibration frames' labels are blanked before anything is built.

`python -m kdgat.export RUN --calibration FILE[@SECONDS]` fits the same on a capture, scoring its
windows as kdgat.evaluate does, and writes the artefact with the car's normalisation inside and
its vocabulary map and threshold in the metadata (kdgat.deploy.artefact.calibrated_meta).
"""

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

import configs
from kdgat.common.errors import UserError
from kdgat.common.seconds import positive_seconds
from kdgat.data.automotive.frames import Frames
from kdgat.data.automotive.graphs import build_raw
from kdgat.data.automotive.modality import AUTOMOTIVE
from kdgat.data.calibration import fit_calibration
from kdgat.deploy.artefact import Scorer, load_scorer
from kdgat.deploy.blocks import Block
from kdgat.deploy.stream import IDLE, Detector
from kdgat.evaluation.thresholds import calibration_choice


@dataclasses.dataclass
class CarFit:
    """What was fitted on a car: the export and the detector use it alike."""

    vocabulary: dict[int, int]
    normalisation: dict[str, list[float]]
    threshold: float
    info: dict[str, Any]
    """What it was fitted on and how (recorded in an artefact's metadata, printed by detect)."""


@dataclasses.dataclass
class StreamStart:
    """The calibration part of a stream, and where detection starts."""

    frames: Frames
    """The calibration frames (labels blanked)."""
    first_start: int
    """Stream index of the first frame handed to the detector: the first window start (a
    multiple of the stride) at or after the calibration's end."""
    malformed: int


def stream_start(frames: Frames, seconds: float, stride: int) -> StreamStart:
    """A recorded capture's calibration part, as split_frames would split its replay."""
    from kdgat.data.calibration import calibration_stop

    stop = calibration_stop(frames, seconds, frames.source)
    calibration = frames.slice(0, stop)
    calibration = dataclasses.replace(calibration, label=np.zeros(stop, np.int8))  # never read
    return StreamStart(calibration, -(-stop // stride) * stride, 0)


def _frames_of(
    time: list[Any] | np.ndarray,
    can_id: list[Any] | np.ndarray,
    payload: list[Any] | np.ndarray,
    dlc: list[Any] | np.ndarray,
) -> Frames:
    return Frames(
        source=Path("<stream>"),
        time=np.asarray(time, np.float64),
        can_id=np.asarray(can_id, np.int64),
        payload=np.asarray(payload, np.uint8).reshape(-1, 8),
        dlc=np.asarray(dlc, np.int8),
        label=np.zeros(len(time), np.int8),  # never read
    )


def _ended(seconds: float, frames: int) -> UserError:
    return UserError(
        f"--calibrate-seconds {seconds:g}: the stream ended during its calibration ({frames} frames); "
        f"give a longer capture or fewer seconds."
    )


def split_frames(source: Iterator[Any], seconds: float, stride: int) -> tuple[StreamStart, Iterator[Any]]:
    """The frame-by-frame source (tuples, None for a malformed frame, IDLE) split into its first
    `seconds` (the calibration) and the frames from the first window start after it."""
    rows: list[tuple[float, int, bytes]] = []
    malformed, end, first = 0, None, None
    for item in source:
        if item is IDLE:
            continue
        if item is None:
            malformed += 1
            continue
        end = item[0] + seconds if end is None else end
        if item[0] >= end:
            first = item
            break
        rows.append(item[:3])
    if first is None:
        raise _ended(seconds, len(rows))
    frames = _frames_of(
        [r[0] for r in rows],
        [r[1] for r in rows],
        [list(r[2].ljust(8, b"\0")) for r in rows],
        [len(r[2]) for r in rows],
    )
    start = StreamStart(frames, -(-len(rows) // stride) * stride, malformed)

    def rest() -> Iterator[Any]:
        skip = start.first_start - len(rows)  # frames between the calibration and the first window
        for item in _chain(first, source):
            if skip and item is not None and item is not IDLE:
                skip -= 1
                continue
            yield item

    return start, rest()


def _chain(first: Any, source: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from source


def split_blocks(source: Iterator[Block], seconds: float, stride: int) -> tuple[StreamStart, Iterator[Block]]:
    """The block source split as split_frames splits frames (a block straddling the end of the
    calibration is cut there)."""
    parts: list[Block] = []
    malformed, end, held = 0, None, 0
    rest_block = None
    for block in source:
        malformed += block.malformed
        if len(block) == 0:
            continue
        end = float(block.time[0]) + seconds if end is None else end
        late = np.flatnonzero(block.time >= end)
        if len(late):
            k = int(late[0])
            parts.append(_cut(block, 0, k))
            rest_block = _cut(block, k, len(block))
            held += k
            break
        parts.append(block)
        held += len(block)
    if rest_block is None:
        raise _ended(seconds, held)
    frames = _frames_of(
        np.concatenate([b.time for b in parts]),
        np.concatenate([b.can_id for b in parts]),
        np.concatenate([b.payload for b in parts]),
        np.concatenate([b.dlc for b in parts]),
    )
    start = StreamStart(frames, -(-held // stride) * stride, malformed)

    def rest() -> Iterator[Block]:
        skip = start.first_start - held
        for block in _chain(rest_block, source):
            drop = min(skip, len(block))
            skip -= drop
            if drop < len(block) or block.malformed:
                yield _cut(block, drop, len(block), block.malformed)

    return start, rest()


def _cut(block: Block, lo: int, hi: int, malformed: int = 0) -> Block:
    return Block(
        block.time[lo:hi],
        block.can_id[lo:hi],
        block.payload[lo:hi],
        block.dlc[lo:hi],
        block.label[lo:hi],
        malformed,
    )


def _base(meta: dict[str, Any]) -> dict[str, Any]:
    """The run's own vocabulary, normalisation and threshold (an artefact calibrated for another
    car keeps them under 'trained')."""
    return meta.get("trained") or meta


def _knobs(meta: dict[str, Any], overrides: dict[str, Any]) -> tuple[str, configs.ThresholdConfig]:
    """The calibration rule and its parameters: the run's (recorded at export), then overrides."""
    recorded = meta.get("calibration_rule") or {}
    knobs = configs.ThresholdConfig()
    if recorded:
        knobs = dataclasses.replace(
            knobs, calibration_quantile=recorded["quantile"], calibration_margin=recorded["margin"]
        )
    knobs = dataclasses.replace(knobs, **{k: v for k, v in overrides.items() if k != "calibration"})
    from kdgat.config.resolve import CALIBRATION_RULE_AUTO

    rule = overrides.get("calibration") or recorded.get("rule") or CALIBRATION_RULE_AUTO
    return rule, knobs


def calibrate_scorer(
    scorer: Scorer, start: StreamStart, seconds: float, overrides: dict[str, Any], threads: int = 1
) -> tuple[Scorer, CarFit]:
    """The scorer fitted on the calibration frames: the car's vocabulary map and normalisation (its
    model reloaded with them), its threshold chosen on the calibration windows' scores."""
    meta = scorer.meta
    base = _base(meta)
    train_vocabulary = {int(k): int(v) for k, v in base["vocabulary"].items()}
    automotive = configs.AutomotiveConfig(window=int(meta["window"]), stride=int(meta["stride"]))
    d = configs.DatasetConfig(automotive=automotive, normalisation=meta.get("normalisation_kind", "standard"))
    frames = start.frames
    fitted = fit_calibration(frames, len(frames), AUTOMOTIVE, d, train_vocabulary, Path("<stream>"))
    if scorer.source is None:
        raise UserError(
            "this scorer was not loaded from a file or run directory, so it cannot be calibrated."
        )
    calibrated = load_scorer(scorer.source, threads, scorer.batched, fitted.normalisation)
    calibrated.vocabulary = fitted.vocabulary
    # The calibration windows' scores, as the detector would score them (windows of the run's stride).
    raw = build_raw(frames, 0, len(frames), automotive.window, automotive.stride)
    scoring = Detector(calibrated, None, builder="incremental", max_batch=64)
    scores = np.asarray([s for s, _ in scoring._score_raw(raw)], np.float64)
    rule, knobs = _knobs(meta, overrides)
    probability = meta.get("score") == "attack_probability"
    choice = calibration_choice(knobs, rule, scores, float(base["threshold"]), probability)
    info = {
        "source": "stream",
        "seconds": seconds,
        "frames": len(frames),
        "windows": len(scores),
        "vocabulary_size": len(fitted.vocabulary),
        "run_vocabulary_size": len(train_vocabulary),
        **fitted.arrivals(),
        "threshold": choice,
    }
    fit = CarFit(fitted.vocabulary, fitted.normalisation, choice["threshold"], info)
    from kdgat.deploy.artefact import calibrated_meta

    calibrated.meta = calibrated_meta(meta, fit)
    calibrated.threshold = fit.threshold
    return calibrated, fit


def fit_for_export(run_dir: Path, capture: Path, seconds: float | None, overrides: dict[str, Any]) -> CarFit:
    """A car's fit on a capture as kdgat.evaluate --calibration makes it: vocabulary map and
    normalisation fitted on its first seconds, the threshold on the run's scores of those windows."""
    import torch

    from kdgat.data.dataset import target_calibration
    from kdgat.evaluation.report import decision_scores
    from kdgat.scoring.evaluate import decision_threshold
    from kdgat.scoring.finished import finished_run, scorers
    from kdgat.scoring.target import Scored, with_calibration
    from kdgat.training.checkpoint import read_best

    if seconds is not None:
        seconds = positive_seconds(seconds, f"--calibration {capture}@SECONDS")
    if not Path(capture).is_file():
        raise UserError(
            f"--calibration {capture}: no such capture file; give an attack-free capture of the car."
        )
    cfg, metrics = finished_run(Path(run_dir))
    best = read_best(Path(run_dir), torch.device("cpu"))
    vocabulary = {int(k): int(v) for k, v in best.info.vocabulary.items()}
    fitted = target_calibration(with_calibration(cfg, Path(capture), seconds), vocabulary)
    assert fitted is not None
    score, _ = scorers(Path(run_dir), cfg, metrics, torch.device("cpu"))
    scores = decision_scores(cfg, fitted.graphs, score(fitted.graphs))
    scored = Scored(Path(run_dir), cfg.dataset, cfg, float(metrics["threshold"]), [], None, {}, scores)
    threshold, choice = decision_threshold(scored, overrides)
    info = {"source": str(capture), "seconds": seconds, **fitted.describe(), "threshold": choice}
    return CarFit(fitted.vocabulary, fitted.normalisation, threshold, info)


def describe(fit: CarFit, first_start: int) -> str:
    """What the detector fitted, in a few lines for stderr."""
    i, choice = fit.info, fit.info["threshold"]
    return (
        f"calibration: the first {i['seconds']:g} s of the stream, {i['frames']} frames, {i['windows']} "
        f"windows (none scored); {i['vocabulary_size']} CAN IDs of the car mapped onto the run's "
        f"{i['run_vocabulary_size']} by priority rank; normalisation refitted on its windows; threshold "
        f"{choice['threshold']:.6g} ({rule_text(choice)}, flagging {choice['calibration_flagged']:.3f} "
        f"of the calibration windows; the run's {choice['run_threshold']:.6g}); "
        f"detecting from frame {first_start}"
    )


def rule_text(choice: dict) -> str:
    """How a calibration threshold was chosen, in words (its rule and the rule's parameters)."""
    if choice["rule"] == "keep":
        return "the run's own, kept"
    base = f"quantile {choice['quantile']:g}" if choice["rule"] == "quantile" else "the highest"
    return (
        f"{base} of the calibration windows' scores + {choice['margin']:g} robust SDs of them "
        f"on the {choice['scale'].replace('_', '-')} scale"
    )
