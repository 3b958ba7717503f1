"""Dataset registry, leak-free splits, vocabulary and normalisation: config -> train/val/test graphs.

Splits: every training file is cut into two contiguous time blocks, the first (1 - val_fraction)
of its frames for training and the rest for validation. Windows are built inside each block, so
no window crosses the boundary and no frame is in two splits, whatever the stride. Test graphs
come from the test folders, each reported on its own as well.
"""

import dataclasses
from pathlib import Path

import numpy as np
import torch

from configs import ExperimentConfig
from kdgat.data.can_csv import read_can_csv
from kdgat.data.frames import Frames
from kdgat.data.graphs import GraphSet, build_graphs
from kdgat.data.synthetic import synthetic_root
from kdgat.errors import DataError

# Folder name of each dataset inside a collection root (e.g. can_train_and_test/set_01).
DATASET_FOLDERS: dict[str, tuple[str, ...]] = {
    "synthetic": (),
    "hcrlch": ("hcrl_ch",),
    "hcrlsa": ("hcrl_sa",),
    "set01": ("set_01",),
    "set02": ("set_02",),
    "set03": ("set_03",),
    "set04": ("set_04",),
}
LOG_PATTERNS = ("*.csv", "*.csv.gz")
STD_FLOOR = 0.05
CLIP = 20.0


@dataclasses.dataclass
class Splits:
    train: GraphSet
    val: GraphSet
    test: dict[str, GraphSet]
    vocabulary: dict[int, int]
    normalisation: dict[str, list[float]]
    data_root: Path
    files: dict[str, int]

    @property
    def num_ids(self) -> int:
        return len(self.vocabulary) + 1

    @property
    def test_all(self) -> GraphSet:
        return GraphSet.concat(list(self.test.values()))


def _logs(folder: Path) -> list[Path]:
    return sorted(p for pattern in LOG_PATTERNS for p in folder.glob(pattern))


def resolve_data_root(cfg: ExperimentConfig) -> Path:
    """The folder holding train_*/ and test_*/ for this dataset, or a DataError saying why not."""
    d = cfg.dataset_config
    if cfg.dataset == "synthetic":
        return synthetic_root(d.cache_dir, d.synthetic_train_frames, d.synthetic_test_frames, d.synthetic_seed)
    if d.data_root is None:
        raise DataError(
            f"dataset {cfg.dataset!r} needs its data folder: pass --data-root PATH (the folder "
            f"holding train_*/ and test_*/ folders, or its parent holding "
            f"{' or '.join(DATASET_FOLDERS[cfg.dataset])}/)."
        )
    root = Path(d.data_root)
    if not root.is_dir():
        raise DataError(
            f"data root {root} does not exist or is not a folder; set it with --data-root PATH "
            f"(alias of --dataset-config.data-root)."
        )
    for candidate in [root, *(root / name for name in DATASET_FOLDERS[cfg.dataset])]:
        if any(p.is_dir() for p in candidate.glob("train_*")):
            return candidate
    found = sorted(p.name for p in root.iterdir())[:20]
    raise DataError(
        f"data root {root} has no train_*/ folders for dataset {cfg.dataset!r}. Expected "
        f"{root}/train_*/*.csv[.gz] (or {root}/{DATASET_FOLDERS[cfg.dataset][0]}/train_*/...) with "
        f"test_*/ beside; found: {', '.join(found) or 'nothing'}."
    )


def _vocabulary(blocks: list[Frames]) -> dict[int, int]:
    """CAN IDs seen in benign training frames -> 1..V; anything else maps to UNK = 0."""
    ids = np.unique(np.concatenate([b.can_id[b.label == 0] for b in blocks]))
    return {int(can_id): index for index, can_id in enumerate(ids.tolist(), start=1)}


def _fit_normalisation(train: GraphSet, kind: str) -> dict[str, list[float]]:
    benign_nodes = torch.repeat_interleave(train.y == 0, train.node_ptr[1:] - train.node_ptr[:-1])
    benign_edges = torch.repeat_interleave(train.y == 0, train.edge_ptr[1:] - train.edge_ptr[:-1])
    if kind == "none":
        return {
            "x_mean": [0.0] * train.x.shape[1],
            "x_std": [1.0] * train.x.shape[1],
            "edge_mean": [0.0] * train.edge_attr.shape[1],
            "edge_std": [1.0] * train.edge_attr.shape[1],
        }
    if not benign_nodes.any():
        raise DataError(
            "the training split has no benign windows, so normalisation statistics (fitted on "
            "benign training windows only) cannot be computed. Add attack-free captures under "
            "train_*/ or use --dataset-config.normalisation none."
        )
    x, e = train.x[benign_nodes].double(), train.edge_attr[benign_edges].double()
    # Features that barely vary in benign traffic (is_unknown_id, a constant byte) would be
    # divided by ~0 and explode on attacks; a floor on std keeps them on a trainable scale.
    return {
        "x_mean": x.mean(0).tolist(),
        "x_std": x.std(0).clamp_min(STD_FLOOR).tolist(),
        "edge_mean": e.mean(0).tolist(),
        "edge_std": e.std(0).clamp_min(STD_FLOOR).tolist(),
    }


def normalise(graphs: GraphSet, stats: dict[str, list[float]]) -> GraphSet:
    x = (graphs.x - torch.tensor(stats["x_mean"])) / torch.tensor(stats["x_std"])
    edge_attr = (graphs.edge_attr - torch.tensor(stats["edge_mean"])) / torch.tensor(stats["edge_std"])
    return dataclasses.replace(graphs, x=x.clamp(-CLIP, CLIP), edge_attr=edge_attr.clamp(-CLIP, CLIP))


def graphs_of_files(paths: list[Path], window: int, stride: int, vocabulary: dict[int, int]) -> GraphSet:
    """Whole-file graphs of each log (evaluation sets)."""
    parts = []
    for path in paths:
        frames = read_can_csv(path)
        parts.append(build_graphs(frames, 0, len(frames), window, stride, vocabulary))
    return GraphSet.concat(parts)


def load_splits(cfg: ExperimentConfig) -> Splits:
    d = cfg.dataset_config
    root = resolve_data_root(cfg)
    train_files = [p for folder in sorted(root.glob("train_*")) if folder.is_dir() for p in _logs(folder)]
    if not train_files:
        raise DataError(f"{root}/train_*/ holds no *.csv or *.csv.gz capture files.")
    frames = [read_can_csv(p) for p in train_files]
    cut = [len(f) - int(len(f) * d.val_fraction) for f in frames]
    vocabulary = _vocabulary([f.slice(0, c) for f, c in zip(frames, cut, strict=True)])
    train = GraphSet.concat(
        [build_graphs(f, 0, c, d.window, d.stride, vocabulary) for f, c in zip(frames, cut, strict=True)]
    )
    val = GraphSet.concat(
        [build_graphs(f, c, len(f), d.window, d.stride, vocabulary) for f, c in zip(frames, cut, strict=True)]
    )
    if len(train) == 0 or len(val) == 0:
        raise DataError(
            f"{root}: the training files give {len(train)} training and {len(val)} validation "
            f"windows of {d.window} frames; need at least one of each. Lower "
            f"--dataset-config.window or change --dataset-config.val-fraction."
        )
    test: dict[str, GraphSet] = {}
    for pattern in d.test_dirs:
        folders = sorted(p for p in root.glob(pattern) if p.is_dir())
        if not folders:
            existing = sorted(p.name for p in root.glob("test_*") if p.is_dir())
            raise DataError(
                f"--dataset-config.test-dirs {pattern!r} matches no folder under {root}; test "
                f"folders there: {', '.join(existing) or 'none'}."
            )
        for folder in folders:
            logs = _logs(folder)
            if not logs:
                raise DataError(f"{folder} holds no *.csv or *.csv.gz capture files.")
            test[folder.name] = graphs_of_files(logs, d.window, d.stride, vocabulary)
    stats = _fit_normalisation(train, d.normalisation)
    return Splits(
        train=normalise(train, stats),
        val=normalise(val, stats),
        test={name: normalise(g, stats) for name, g in test.items()},
        vocabulary=vocabulary,
        normalisation=stats,
        data_root=root,
        files={str(p): len(f) for p, f in zip(train_files, frames, strict=True)},
    )
