"""config -> train / validation / test graphs, for every modality.

The dataset's registry entry says where its captures lie (kdgat/data/registry.py); every capture
is preprocessed through the cache (kdgat/data/prepare.py) and cut into leak-free blocks
(kdgat/data/splits.py):
- datasets with train_*/ and test_*/ folders: training files give training and validation
  blocks; test graphs come from the test folders, each folder also reported on its own;
- flat datasets (daga, road, the raw HCRL Car-Hacking files, internet captures): every file is
  cut into train, validation and test blocks; each file's test block is a test set of its own.
The vocabulary (where node identities are learned) and the normalisation are fitted on benign
training data only (kdgat/data/normalisation.py). The splits are GraphStores (kdgat/data/store.py):
their graphs stay in the memory-mapped cache and are read batch by batch, vocabulary and
normalisation applied per batch.
"""

import collections
import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from configs import ExperimentConfig
from kdgat.common.errors import DataError
from kdgat.data.calibration import Calibration, calibrate
from kdgat.data.graphset import vocabulary_table
from kdgat.data.modality import Modality
from kdgat.data.normalisation import build_vocabulary, fit_normalisation
from kdgat.data.prepare import Prepared, prepare_files
from kdgat.data.registry import capture_files, format_of, modality_of, resolve_layout
from kdgat.data.store import GraphStore, View


@dataclasses.dataclass
class Splits:
    train: GraphStore
    val: GraphStore
    test: dict[str, GraphStore]
    vocabulary: dict[int, int]
    normalisation: dict[str, list[float]]
    data_root: Path
    files: dict[str, int]
    """Records of every training file."""
    skipped_rows: dict[str, int] = dataclasses.field(default_factory=dict)
    """Malformed rows skipped (policy malformed=skip) per file, only files with skips."""
    dropped_na: dict[str, int] = dataclasses.field(default_factory=dict)
    """`na` ID/payload rows dropped (CAN policy na_frames=drop) per file, only files with drops."""
    label_counts: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    """Records per label value as written in each file (e.g. Benign / Malicious / Background),
    for modalities whose labels are more than attack / benign."""
    dropped_unlabelled: dict[str, int] = dataclasses.field(default_factory=dict)
    """Unlabelled records removed before windowing (internet policy unlabelled=drop) per file."""
    no_window: list[str] = dataclasses.field(default_factory=list)
    """Files that gave no graph at all (shorter than one window)."""
    preprocess: dict[str, float] = dataclasses.field(default_factory=dict)
    """records, seconds, and the cache's entries: hits (found), waited (prepared by another process
    while this one waited) and misses (built here)."""
    calibration: dict[str, Any] | None = None
    """The calibration capture the test graphs were fitted to (--dataset-config.calibration)."""
    calibration_fit: Calibration | None = None
    """Its fits and windows (labels all 0), on whose scores the test threshold is chosen."""
    unheard: dict[str, tuple[np.ndarray, dict[int, int]]] = dataclasses.field(default_factory=dict)
    """Per test group, with a calibration of a modality that learns node identities: which of its
    windows (in test's order) hold an identity the calibration never heard, and each such identity
    with the number of windows it is in (Calibration.unheard over the group's captures)."""

    @property
    def num_ids(self) -> int:
        return len(self.vocabulary) + 1

    @property
    def test_all(self) -> GraphStore:
        return GraphStore.concat(list(self.test.values()))


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".csv", ".txt", ".log", ".labeled", ".log"):
        name = name.removesuffix(suffix)
    return name


def capture_jobs(cfg: ExperimentConfig) -> tuple[Path, list[tuple[Path, str, str]], dict[str, list[int]]]:
    """The dataset's root, its files with their format and block kind, and the test groups."""
    root, layout = resolve_layout(cfg)
    planned = modality_of(cfg).plan(root, layout, cfg.dataset_config)
    if planned is not None:
        return root, *planned
    jobs: list[tuple[Path, str, str]] = []
    test_groups: dict[str, list[int]] = {}
    if not layout.split_folders:
        jobs = [(p, fmt, "train_val_test") for p, fmt in capture_files(root, layout)]
        return root, jobs, {_stem(p): [i] for i, (p, _, _) in enumerate(jobs)}
    for folder in sorted(p for p in root.glob("train_*") if p.is_dir()):
        jobs += [(p, fmt, "train_val") for p, fmt in capture_files(folder, layout)]
    if not jobs:
        raise DataError(f"{root}/train_*/ holds no {' or '.join(layout.patterns)} capture files.")
    for pattern in cfg.dataset_config.test_dirs:
        folders = sorted(p for p in root.glob(pattern) if p.is_dir())
        if not folders:
            existing = sorted(p.name for p in root.glob("test_*") if p.is_dir())
            raise DataError(
                f"--dataset-config.test-dirs {pattern!r} matches no folder under {root}; test "
                f"folders there: {', '.join(existing) or 'none'}."
            )
        for folder in folders:
            logs = capture_files(folder, layout)
            if not logs:
                raise DataError(f"{folder} holds no {' or '.join(layout.patterns)} capture files.")
            test_groups[folder.name] = list(range(len(jobs), len(jobs) + len(logs)))
            jobs += [(p, fmt, "whole") for p, fmt in logs]
    return root, jobs, test_groups


def _label_counts(prepared: list[Prepared]) -> dict[str, dict[str, int]]:
    return {str(p.path): p.info["label_counts"] for p in prepared if "label_counts" in p.info}


def _dropped_unlabelled(prepared: list[Prepared]) -> dict[str, int]:
    return {str(p.path): p.info["dropped_unlabelled"] for p in prepared if p.info.get("dropped_unlabelled")}


def load_splits(cfg: ExperimentConfig) -> Splits:
    d = cfg.dataset_config
    modality = modality_of(cfg)
    started = time.perf_counter()
    root, jobs, test_groups = capture_jobs(cfg)
    prepared = prepare_files(jobs, d, modality)

    training = [p for p in prepared if "train" in p.bounds]
    vocabulary = build_vocabulary([p.vocabulary_ids() for p in training]) if modality.learns_identity else {}
    view = View.of(vocabulary if modality.learns_identity else None)
    train = split_graphs(training, "train", view, modality)
    val = split_graphs([p for p in prepared if "val" in p.bounds], "val", view, modality)
    if len(train) == 0 or len(val) == 0:
        raise DataError(
            f"{root}: the training files give {len(train)} training and {len(val)} validation "
            f"{modality.window_description(d)}; need at least one of each. Use smaller windows "
            f"or change --dataset-config.val-fraction."
        )
    stats = fit_normalisation(train, d.normalisation)
    view = dataclasses.replace(view, stats=stats)
    calibration = target_calibration(cfg, vocabulary)
    test = {
        name: GraphStore.concat([target_graphs(prepared[i], view, modality, calibration) for i in members])
        for name, members in test_groups.items()
    }
    unheard: dict[str, tuple[np.ndarray, dict[int, int]]] = {}
    if calibration is not None and modality.learns_identity:  # agnostic features know no identity
        for name, members in test_groups.items():
            unheard[name] = group_unheard(calibration, [prepared[i] for i in members])
    hits = sum(p.cached and not p.waited for p in prepared)
    waited = sum(p.waited for p in prepared)
    return Splits(
        train=train.normalised(stats),
        val=val.normalised(stats),
        test=test,
        vocabulary=vocabulary,
        normalisation=stats,
        data_root=root,
        files={str(p.path): p.frames for p in training},
        skipped_rows={str(p.path): p.skipped for p in prepared if p.skipped},
        dropped_na={str(p.path): p.dropped_na for p in prepared if p.dropped_na},
        label_counts=_label_counts(prepared),
        dropped_unlabelled=_dropped_unlabelled(prepared),
        no_window=[str(p.path) for p in prepared if p.num_graphs() == 0],
        calibration=None if calibration is None else calibration.describe(),
        calibration_fit=calibration,
        unheard=unheard,
        preprocess={
            "frames": float(sum(p.frames for p in prepared)),
            "seconds": time.perf_counter() - started,
            "cache_hits": float(hits),
            "cache_waited": float(waited),
            "cache_misses": float(len(prepared) - hits - waited),
        },
    )


def target_calibration(cfg: ExperimentConfig, vocabulary: dict[int, int]) -> Calibration | None:
    """The fits on the calibration capture of --dataset-config.calibration, or None without one."""
    d = cfg.dataset_config
    if d.calibration is None:
        if d.calibration_seconds is not None:
            raise DataError(
                "--dataset-config.calibration-seconds needs the capture to take them from: "
                "add --dataset-config.calibration FILE (an attack-free capture of the target vehicle)."
            )
        return None
    return calibrate(d.calibration, format_of(d.calibration, cfg), cfg, vocabulary, d.calibration_seconds)


def group_unheard(calibration: Calibration, members: list[Prepared]) -> tuple[np.ndarray, dict[int, int]]:
    """Calibration.unheard over a test group's captures: the flags in the order target_graphs
    concatenates their windows (both keep the windows Calibration.scored keeps), the per-identity
    window counts summed."""
    flags: list[np.ndarray] = [np.zeros(0, dtype=bool)]  # a group may hold no window at all
    totals: collections.Counter[int] = collections.Counter()
    for p in members:
        found, by_id = calibration.unheard(p.path, p.blocks.get("test", {}))
        flags.append(found)
        totals.update(by_id)
    return np.concatenate(flags), dict(totals)


def split_graphs(prepared: list[Prepared], role: str, view: View, modality: Modality) -> GraphStore:
    """The graphs of a split (role) of every file, file by file, through view."""
    return GraphStore.of_parts([part for p in prepared for part in p.parts(role, view)], modality.widths)


def target_graphs(
    prepared: Prepared, view: View, modality: Modality, calibration: Calibration | None
) -> GraphStore:
    """A capture's test graphs, normalised: through the run's view (vocabulary and normalisation),
    or with the calibration's fits (and without the windows of the calibration part, where this
    is the calibration capture)."""
    if calibration is None:
        return split_graphs([prepared], "test", view, modality)
    fitted = View(
        vocabulary_table(calibration.vocabulary) if modality.learns_identity else None,
        calibration.normalisation,
    )
    graphs = split_graphs([prepared], "test", fitted, modality)
    # subset is all drop_calibration_windows asks of its graphs, and a GraphStore has it.
    return calibration.drop_calibration_windows(prepared.path, graphs)  # type: ignore[arg-type,return-value]


def evaluation_graphs(
    files: list[tuple[Path, str]],
    cfg: ExperimentConfig,
    vocabulary: dict[int, int],
    stats: dict[str, list[float]],
) -> list[tuple[Path, GraphStore, dict[str, Any]]]:
    """Whole-file graphs of each capture, prepared exactly as in training (the cache, the run's
    row policies, its vocabulary and normalisation, or the fits on cfg's calibration capture):
    (file, graphs, the file's metadata). With a calibration of a modality that learns node
    identities, the metadata's "unheard" holds Calibration.unheard of the file's graphs."""
    modality: Modality = modality_of(cfg)
    calibration = target_calibration(cfg, vocabulary)
    view = View(vocabulary_table(vocabulary) if modality.learns_identity else None, stats)
    jobs = [(path, fmt, "whole") for path, fmt in files]
    out = []
    for p in prepare_files(jobs, cfg.dataset_config, modality):
        info = p.info
        if calibration is not None and modality.learns_identity:
            info = {**info, "unheard": calibration.unheard(p.path, p.blocks.get("test", {}))}
        out.append((p.path, target_graphs(p, view, modality, calibration), info))
    return out
