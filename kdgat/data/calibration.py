"""Calibration on a target vehicle: vocabulary and normalisation fitted on its attack-free capture.

This is how a detector is deployed on a new car: it listens to a short capture of that car, given
as attack-free, and adapts to it before it decides anything. From the calibration capture (a
whole file, or its first N seconds):
- the normalisation (per-feature mean and std) is refitted on all of its windows, so features
  whose scale differs between vehicles (bus load, periods, payload spread) are measured against
  this car's normal traffic instead of the training car's;
- where the run learns node identities (the default CAN feature set), the car's IDs are mapped
  onto the training vocabulary by priority rank: the k-th lowest of the m calibration IDs takes
  the training ID at the same quantile of the V training IDs. A CAN ID's priority says roughly
  what kind of message it is (low IDs: powertrain, high rate), so this is a guess at each ID's
  counterpart, not an identity; what it does surely is mark the car's own IDs as known
  (is_unknown_id = 0), so only IDs never heard in calibration are unknown.
No label of the calibration capture is read: the reader's labels are replaced with zeros before
any graph is built, and the fits use every window (tests/e2e/test_transfer.py corrupts the labels of
a calibration capture and checks that the output is identical).
"""

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from configs import DatasetConfig, ExperimentConfig
from kdgat.common.errors import DataError
from kdgat.common.names import some_of
from kdgat.common.seconds import positive_seconds
from kdgat.data.cache import MAPPED_PAGES
from kdgat.data.graphset import GraphSet, assemble
from kdgat.data.modality import Modality
from kdgat.data.normalisation import fit_normalisation, normalise
from kdgat.data.registry import modality_of

UNHEARD_CHUNK = 4096
"""Windows whose node identities Calibration.unheard reads at once."""
LATE_SECONDS = 2.0
"""An identity first heard more than this long after a calibration's first record came late."""
LATE_SHARE = 0.2
"""Share of a calibration's identities that came late from which its traffic is reported as still
starting (and at least two of them). On the shared captures' attack-free stretches, calibrations
of 5 to 60 s from any start 2 s apart hear at most one ID late (2 % of those heard: a slow one,
such as a 0x120 sent every 5 s); set_04's accessory-4 opens with the bus waking at ignition, and
35 of the 48 IDs of its first 10 s come late (13 of 26 in its first 5 s). A calibration of 2 s or
less cannot tell."""


@dataclasses.dataclass
class Calibration:
    """What a run adapts to the target vehicle: its vocabulary and normalisation, and where the
    calibration part of its capture ends (windows before it are not scored)."""

    source: Path
    records: int
    """Records of the capture used for calibration (its first `records`)."""
    vocabulary: dict[int, int]
    normalisation: dict[str, list[float]]
    graphs: GraphSet
    """The calibration windows, normalised with the calibration statistics (labels all 0)."""
    identities_heard: int = 0
    """Node identities heard in the calibration (0 where their arrival times are unknown)."""
    first_heard_late: list[str] = dataclasses.field(default_factory=list)
    """Those first heard more than LATE_SECONDS after its first record, named."""

    def describe(self) -> dict:
        return {
            "file": str(self.source),
            "records": self.records,
            "windows": len(self.graphs),
            "vocabulary_size": len(self.vocabulary),
            **self.arrivals(),
        }

    def arrivals(self) -> dict[str, Any]:
        """How many identities the calibration heard and which came late (waking_warning's input)."""
        return {
            "identities_heard": self.identities_heard,
            "first_heard_late": self.first_heard_late,
            "late_after_seconds": LATE_SECONDS,
        }

    def scored(self, path: Path, frame_start: np.ndarray) -> np.ndarray:
        """Which windows of the capture at path are scored: all but those that hold calibration
        records, when path is the calibration capture itself."""
        if Path(path).resolve() != self.source.resolve():
            return np.ones(len(frame_start), dtype=bool)
        return np.asarray(frame_start) >= self.records

    def drop_calibration_windows(self, path: Path, graphs: GraphSet) -> GraphSet:
        """graphs without the windows that hold calibration records (when path is the capture)."""
        keep = self.scored(path, graphs.frame_start.numpy())
        return graphs if keep.all() else graphs.subset(torch.from_numpy(keep))

    def unheard(self, path: Path, block: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[int, int]]:
        """What of a capture's raw graphs (a block, before any vocabulary) the calibration never
        heard, over its scored windows: whether each window holds a node identity absent from the
        calibration capture (the model sees UNKNOWN_ID there, as it would an injected ID), and
        each such identity with the number of windows it is in. The identities are read from the
        cache's map UNHEARD_CHUNK windows at a time, each chunk's pages released as the store's
        reads are (cache.MappedPages), so a large capture is never resident at once."""
        ptr = np.asarray(block.get("node_ptr", np.zeros(1, dtype=np.int64)))
        keep = self.scored(path, block.get("frame_start", np.zeros(0, dtype=np.int64)))
        heard = np.fromiter(self.vocabulary, dtype=np.int64, count=len(self.vocabulary))
        flags = np.zeros(len(ptr) - 1, dtype=bool)
        found: list[np.ndarray] = []
        for lo in range(0, len(flags), UNHEARD_CHUNK):
            hi = min(lo + UNHEARD_CHUNK, len(flags))
            entity = np.asarray(block["node_entity"][ptr[lo] : ptr[hi]])
            MAPPED_PAGES.note_read(entity.nbytes)
            window_of = np.repeat(np.arange(lo, hi), np.diff(ptr[lo : hi + 1]))
            unheard = ~np.isin(entity, heard) & keep[window_of]
            flags[window_of[unheard]] = True
            found.append(entity[unheard])
        ids, windows = np.unique(np.concatenate(found or [heard[:0]]), return_counts=True)  # once a window
        return flags[keep], {int(i): int(n) for i, n in zip(ids, windows, strict=True)}


def rank_vocabulary(target_ids: np.ndarray, train_vocabulary: dict[int, int]) -> dict[int, int]:
    """Each target ID -> the training vocabulary index of the training ID at its priority quantile."""
    target = np.unique(target_ids)
    if not train_vocabulary or len(target) == 0:
        return {}
    train_ids = np.array(sorted(train_vocabulary), dtype=np.int64)
    at = np.rint(np.arange(len(target)) * (len(train_ids) - 1) / max(len(target) - 1, 1)).astype(np.int64)
    return {int(t): int(train_vocabulary[int(train_ids[i])]) for t, i in zip(target, at, strict=True)}


def calibration_stop(records: Any, seconds: float | None, source: Path) -> int:
    """How many of a capture's first records are calibration: those before its first record at or
    after its first record's time + seconds (all of them without seconds). A stream's detector
    ends its calibration at the same record (kdgat/deploy/calibrate.py)."""
    if seconds is None:
        return len(records)
    seconds = positive_seconds(seconds, "--calibration-seconds")  # a NaN would cut at no record
    if not getattr(records, "has_time", False):
        raise DataError(
            f"--calibration-seconds {seconds:g}: {source} has no timestamps, so its first seconds "
            f"are unknown; give an attack-free capture with --calibration and no seconds."
        )
    late = np.asarray(records.time) >= records.time[0] + seconds
    return int(np.argmax(late)) if late.any() else len(records)


def fit_calibration(
    records: Any,
    stop: int,
    modality: Modality,
    d: DatasetConfig,
    train_vocabulary: dict[int, int],
    source: Path,
) -> Calibration:
    """Fit vocabulary and normalisation on the first `stop` records (labels never read: they are
    blanked before anything is built)."""
    records.label = np.zeros_like(records.label)
    raw = modality.build(records, 0, stop, d)
    if not raw or len(raw["y"]) == 0:
        raise DataError(
            f"calibration capture {source} gives no window in its {stop} {modality.record}s "
            f"({modality.window_description(d)}); give a longer capture or more --calibration-seconds."
        )
    vocabulary: dict[int, int] = {}
    if modality.learns_identity:
        vocabulary = rank_vocabulary(
            modality.identities(records, np.arange(len(records)) < stop), train_vocabulary
        )
    graphs = assemble(
        raw,
        vocabulary if modality.learns_identity else None,
        "benign",
        str(source),
        modality.widths,
        None,
    )
    stats = fit_normalisation(graphs, d.normalisation, benign_only=False)
    heard, late = late_arrivals(records, stop, modality)
    return Calibration(Path(source), stop, vocabulary, stats, normalise(graphs, stats), heard, late)


def waking_warning(described: dict[str, Any]) -> str | None:
    """A warning where many identities came late in a calibration (described: a dict holding its
    Calibration.arrivals(), and its "file" unless it is a stream's): the traffic was still
    starting (a bus waking at ignition), so its windows are not the car's steady ones and what
    came late was heard only briefly."""
    late, heard = described["first_heard_late"], described["identities_heard"]
    if len(late) < 2 or len(late) < LATE_SHARE * heard:
        return None
    where = (
        f"the calibration capture {described['file']}" if "file" in described else "the stream's calibration"
    )
    return (
        f"{len(late)} of the {heard} identities heard in {where} were first heard more than "
        f"{described['late_after_seconds']:g} s after its start ({some_of(late)}): the traffic was still "
        f"starting up (a bus waking at ignition), not the steady traffic to be scored. Calibrate on "
        f"later or longer traffic of the car."
    )


def late_arrivals(records: Any, stop: int, modality: Modality) -> tuple[int, list[str]]:
    """How many identities the first `stop` records hold, and those first heard more than
    LATE_SECONDS after the first record, named (0 and none where arrival times are unknown)."""
    first = modality.first_heard(records, stop)
    if first is None:
        return 0, []
    ids, seconds = first
    return len(ids), [modality.identity_name(int(i)) for i in ids[seconds > LATE_SECONDS]]


def calibrate(
    path: Path,
    fmt: str,
    cfg: ExperimentConfig,
    train_vocabulary: dict[int, int],
    seconds: float | None = None,
) -> Calibration:
    """Fit vocabulary and normalisation on the capture at path (its first `seconds` when set)."""
    if seconds is not None:  # refused before the capture is read
        positive_seconds(seconds, "--calibration-seconds")
    modality = modality_of(cfg)
    records = modality.read(Path(path), fmt, cfg.dataset_config)
    # Blank the labels first: nothing below (builder, vocabulary, fits) can see them.
    records.label = np.zeros_like(records.label)
    stop = calibration_stop(records, seconds, Path(path))
    return fit_calibration(records, stop, modality, cfg.dataset_config, train_vocabulary, Path(path))
