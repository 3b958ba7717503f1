"""Dataset registry, leak-free splits, vocabulary and normalisation: config -> train/val/test graphs.

Registry: each dataset name maps to the layouts it may have under the data root (folder names
tried, file patterns and the reader format of each) -- see DATASETS. A root that matches none
gives a DataError listing what was expected and what was found.

Splits are contiguous time blocks; windows are built inside each block, so no window crosses a
boundary and no frame is in two splits, whatever the stride (also for stride < window):
- datasets with train_*/ and test_*/ folders: every training file is cut into its first
  (1 - val_fraction) of frames for training and the rest for validation; test graphs come from
  the test folders, each folder also reported on its own;
- flat datasets (daga, road, the raw HCRL Car-Hacking files): every file is cut into train,
  validation (val_fraction) and test (test_fraction, at the end) blocks; each file's test block is
  a test set of its own.

Preprocessing (read, window, build graphs) runs per file, in parallel processes, and is cached
on disk (kdgat/data/cache.py); a progress line is shown on a terminal only.
"""

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from configs import DatasetConfig, ExperimentConfig
from kdgat.data.cache import entry_key, entry_path, file_digest, load_entry, save_entry
from kdgat.data.frames import Frames, attack_type_from_name
from kdgat.data.graphs import GraphSet, assemble, build_graphs, build_raw
from kdgat.data.pool import cores, run_jobs
from kdgat.data.readers import read_frames
from kdgat.data.synthetic import synthetic_root
from kdgat.errors import DataError

STD_FLOOR = 0.05
CLIP = 20.0
CAN4 = {"*.csv": "can4", "*.csv.gz": "can4"}


@dataclasses.dataclass(frozen=True)
class Layout:
    """One way a dataset can be laid out under its data root."""

    folders: tuple[str, ...]
    """Sub-folders of the data root tried after the root itself."""
    patterns: dict[str, str]
    """File glob -> reader format (kdgat/data/readers.py)."""
    split_folders: bool
    """True: train_*/ and test_*/ folders; False: capture files directly in the folder."""

    def describe(self, root: Path) -> str:
        files = " or ".join(self.patterns)
        where = [root, *(root / f for f in self.folders)]
        if self.split_folders:
            return " or ".join(f"{w}/train_*/{{{files}}} with test_*/ beside" for w in where)
        return " or ".join(f"{w}/{{{files}}}" for w in where)


DATASETS: dict[str, tuple[Layout, ...]] = {
    "synthetic": (Layout((), CAN4, True),),
    "hcrlsa": (Layout(("hcrl_sa",), CAN4, True),),
    "hcrlch": (
        Layout(("hcrl_ch",), CAN4, True),
        Layout(
            ("hcrl_ch", "car_hacking"),
            {"*.csv": "hcrl_csv", "*.csv.gz": "hcrl_csv", "*.txt": "hcrl_log", "*.txt.gz": "hcrl_log"},
            False,
        ),
    ),
    **{f"set0{k}": (Layout((f"set_0{k}", f"can_train_and_test/set_0{k}"), CAN4, True),) for k in range(1, 5)},
    "daga": (Layout(("daga_volvo_v40", "daga"), {"*.csv": "daga", "*.csv.gz": "daga"}, False),),
    "road": (Layout(("road_masquerade_statgraph", "road"), {"*.csv": "road", "*.csv.gz": "road"}, False),),
}
# Kept for callers of the slice: folder names of each dataset inside a collection root.
DATASET_FOLDERS: dict[str, tuple[str, ...]] = {
    name: tuple(dict.fromkeys(f for layout in layouts for f in layout.folders))
    for name, layouts in DATASETS.items()
}


@dataclasses.dataclass
class Splits:
    train: GraphSet
    val: GraphSet
    test: dict[str, GraphSet]
    vocabulary: dict[int, int]
    normalisation: dict[str, list[float]]
    data_root: Path
    files: dict[str, int]
    skipped_rows: dict[str, int] = dataclasses.field(default_factory=dict)
    """Malformed rows skipped (policy malformed=skip) per file, only files with skips."""
    dropped_na: dict[str, int] = dataclasses.field(default_factory=dict)
    """`na` ID/payload rows dropped (policy na_frames=drop) per file, only files with drops."""
    preprocess: dict[str, float] = dataclasses.field(default_factory=dict)
    """frames, seconds, cache hits and misses of this load."""

    @property
    def num_ids(self) -> int:
        return len(self.vocabulary) + 1

    @property
    def test_all(self) -> GraphSet:
        return GraphSet.concat(list(self.test.values()))


def _files(folder: Path, layout: Layout) -> list[tuple[Path, str]]:
    found: dict[Path, str] = {}
    for pattern, fmt in layout.patterns.items():
        for path in folder.glob(pattern):
            if path.is_file():
                found.setdefault(path, fmt)
    return sorted(found.items())


def _matches(candidate: Path, layout: Layout) -> bool:
    if not candidate.is_dir():
        return False
    if layout.split_folders:
        return any(p.is_dir() for p in candidate.glob("train_*"))
    return bool(_files(candidate, layout))


def resolve_layout(cfg: ExperimentConfig) -> tuple[Path, Layout]:
    """The folder holding this dataset and the layout it matched, or a DataError saying why not."""
    d = cfg.dataset_config
    if cfg.dataset not in DATASETS:
        raise DataError(f"dataset {cfg.dataset!r} has no reader; known: {', '.join(DATASETS)}.")
    layouts = DATASETS[cfg.dataset]
    if cfg.dataset == "synthetic":
        root = synthetic_root(
            d.cache_dir, d.synthetic_train_frames, d.synthetic_test_frames, d.synthetic_seed
        )
        return root, layouts[0]
    if d.data_root is None:
        raise DataError(
            f"dataset {cfg.dataset!r} needs its data folder: pass --data-root PATH; expected "
            f"{' or '.join(layout.describe(Path('PATH')) for layout in layouts)}."
        )
    root = Path(d.data_root)
    if not root.is_dir():
        raise DataError(
            f"data root {root} does not exist or is not a folder; set it with --data-root PATH "
            f"(alias of --dataset-config.data-root)."
        )
    for layout in layouts:
        for candidate in [root, *(root / name for name in layout.folders)]:
            if _matches(candidate, layout):
                return candidate, layout
    found = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())[:20]
    raise DataError(
        f"data root {root} does not hold dataset {cfg.dataset!r}. Expected "
        f"{' or '.join(layout.describe(root) for layout in layouts)}; found: "
        f"{', '.join(found) or 'nothing'}."
    )


def resolve_data_root(cfg: ExperimentConfig) -> Path:
    """The folder holding the dataset (see resolve_layout)."""
    return resolve_layout(cfg)[0]


def _val_start(labels: np.ndarray, stop: int, length: int, placement: str) -> int:
    """Start of the validation block inside frames [0, stop).

    'end': the last `length` frames. 'stratified': among blocks starting on a grid of length/10
    frames (the last flush with `stop`), the one holding the number of attack frames closest to
    its proportional share of the file's attacks, the latest on ties (so attack-free files keep
    'end'); a capture whose attacks all lie early still validates on some of them.
    """
    if placement == "end" or length == 0 or stop <= length:
        return stop - length
    step = max(1, length // 10)
    starts = np.unique(np.r_[np.arange(0, stop - length + 1, step), stop - length])
    cumulative = np.concatenate([[0], np.cumsum(labels[:stop], dtype=np.int64)])
    counts = cumulative[starts + length] - cumulative[starts]
    gaps = np.abs(counts - cumulative[stop] * length / stop)
    return int(starts[np.flatnonzero(gaps <= gaps.min() + 1e-9)[-1]])


def block_bounds(
    kind: str, labels: np.ndarray, val_fraction: float, test_fraction: float, placement: str = "end"
) -> dict[str, tuple[int, int]]:
    """Contiguous frame blocks of one file: 'train_val' (training file), 'whole' (test file) or
    'train_val_test' (flat datasets; test is the file's end). Training frames after the validation
    block form 'train_tail'; windows are cut inside each block, so none crosses a boundary."""
    n = len(labels)
    if kind == "whole":
        return {"test": (0, n)}
    stop = n if kind == "train_val" else n - int(n * test_fraction)
    length = int(n * val_fraction)
    a = _val_start(labels, stop, length, placement)
    bounds = {"train": (0, a), "val": (a, a + length)}
    if a + length < stop:
        bounds["train_tail"] = (a + length, stop)
    if kind == "train_val_test":
        bounds["test"] = (stop, n)
    return bounds


@dataclasses.dataclass
class Prepared:
    """One capture file, preprocessed: raw graphs of each block and what the vocabulary needs."""

    path: Path
    blocks: dict[str, dict[str, np.ndarray]]
    bounds: dict[str, tuple[int, int]]
    frames: int
    skipped: int
    dropped_na: int
    train_ids: np.ndarray
    attack_type: str
    cached: bool

    def graphs(self, role: str, vocabulary: dict[int, int]) -> GraphSet:
        parts = [role, "train_tail"] if role == "train" else [role]
        return GraphSet.concat(
            [assemble(self.blocks.get(r, {}), vocabulary, self.attack_type, str(self.path)) for r in parts]
        )

    def vocabulary_ids(self) -> np.ndarray:
        """Entities of benign frames inside the training blocks."""
        return self.train_ids


def _params(fmt: str, kind: str, d: DatasetConfig) -> dict[str, Any]:
    return {
        "format": fmt,
        "kind": kind,
        "window": d.window,
        "stride": d.stride,
        "val_fraction": d.val_fraction if kind != "whole" else None,
        "val_placement": d.val_placement if kind != "whole" else None,
        "test_fraction": d.test_fraction if kind == "train_val_test" else None,
        "malformed": d.malformed,
        "na_frames": d.na_frames,
    }


def cache_target(path: Path, fmt: str, kind: str, d: DatasetConfig) -> Path | None:
    """The file's cache entry (keyed by its contents' SHA-256), or None when the cache is off.
    Hashing reads the whole file: compute it once per file and pass it on."""
    if not d.cache:
        return None
    return entry_path(d.cache_dir, entry_key(file_digest(path), _params(fmt, kind, d)))


def prepare_file(path: Path, fmt: str, kind: str, d: DatasetConfig) -> Prepared:
    """Read, window and build one file's graphs, through the cache when it is on."""
    target = cache_target(path, fmt, kind, d)
    return cached_file(path, target) or build_file(path, fmt, kind, d, target)


def cached_file(path: Path, target: Path | None) -> Prepared | None:
    """The file's graphs from its cache entry, or None (cache off, no entry, or a bad entry)."""
    if target is not None:
        hit = load_entry(target)
        if hit is not None:
            arrays, meta = hit
            blocks: dict[str, dict[str, np.ndarray]] = {}
            for name, array in arrays.items():
                if "." in name:
                    role, field = name.split(".", 1)
                    blocks.setdefault(role, {})[field] = array
            return Prepared(
                path=path,
                blocks=blocks,
                bounds={k: tuple(v) for k, v in meta["bounds"].items()},
                frames=meta["frames"],
                skipped=meta["skipped"],
                dropped_na=meta["dropped_na"],
                train_ids=arrays["train_ids"],
                attack_type=attack_type_from_name(path),
                cached=True,
            )
    return None


def build_file(path: Path, fmt: str, kind: str, d: DatasetConfig, target: Path | None) -> Prepared:
    """Read, window and build one file's graphs; written to the cache entry target unless None."""
    frames = read_frames(path, fmt, malformed=d.malformed, na_frames=d.na_frames)
    bounds = block_bounds(kind, frames.label, d.val_fraction, d.test_fraction, d.val_placement)
    blocks = {role: build_raw(frames, lo, hi, d.window, d.stride) for role, (lo, hi) in bounds.items()}
    in_training = np.zeros(len(frames), dtype=bool)
    for role in ("train", "train_tail"):
        if role in bounds:
            in_training[slice(*bounds[role])] = True
    train_ids = np.unique(frames.can_id[in_training & (frames.label == 0)])
    prepared = Prepared(
        path=path,
        blocks=blocks,
        bounds=bounds,
        frames=len(frames),
        skipped=frames.skipped,
        dropped_na=frames.dropped_na,
        train_ids=train_ids.astype(np.int64),
        attack_type=frames.attack_type,
        cached=False,
    )
    if target is not None:
        arrays = {f"{role}.{k}": v for role, raw in blocks.items() for k, v in raw.items()}
        arrays["train_ids"] = prepared.train_ids
        meta = {
            "bounds": bounds,
            "frames": prepared.frames,
            "skipped": prepared.skipped,
            "dropped_na": prepared.dropped_na,
            "source": path.name,
        }
        save_entry(target, arrays, meta)
    return prepared


class Progress:
    """One self-overwriting line on stderr while files are preprocessed; silent when not a TTY."""

    def __init__(self, total: int, label: str = "preprocessing") -> None:
        self.total, self.label, self.done, self.frames = total, label, 0, 0
        self.start = time.perf_counter()
        self.enabled = sys.stderr.isatty() and total > 1

    def update(self, frames: int) -> None:
        self.done += 1
        self.frames += frames
        if self.enabled:
            rate = self.frames / max(time.perf_counter() - self.start, 1e-9)
            sys.stderr.write(f"\r{self.label}: {self.done}/{self.total} files, {rate:,.0f} frames/s")
            if self.done == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


# Below this much capture data a fork costs more than it saves (tests, synthetic data).
PROCESS_MIN_BYTES = 4 << 20


def prepare_files(
    jobs: list[tuple[Path, str, str]], d: DatasetConfig, workers: int | None = None
) -> list[Prepared]:
    """prepare_file for every (path, format, kind), in order: cache hits are loaded here (a
    worker would have to send the arrays back), misses are built in parallel worker processes."""
    progress = Progress(len(jobs))
    targets = [cache_target(*job, d) for job in jobs]
    results: list[Prepared | None] = []
    for job, target in zip(jobs, targets, strict=True):
        results.append(cached_file(job[0], target))
        if results[-1] is not None:
            progress.update(results[-1].frames)
    sizes = {
        i: jobs[i][0].stat().st_size if jobs[i][0].is_file() else 0
        for i, r in enumerate(results)
        if r is None
    }
    misses = sorted(sizes, key=lambda i: -sizes[i])  # largest first: no big file left for the end
    processes = sum(sizes.values()) >= PROCESS_MIN_BYTES
    built = run_jobs(
        _build_in_worker if processes else build_file,
        [(*jobs[i], d, targets[i]) for i in misses],
        workers=workers or cores(),
        processes=processes,
        done=lambda prepared: progress.update(prepared.frames),
    )
    for i, prepared in zip(misses, built, strict=True):
        if not prepared.blocks and d.cache:  # written to the cache by a worker: read it back
            reread = cached_file(jobs[i][0], targets[i])
            prepared = (
                dataclasses.replace(reread, cached=False) if reread else build_file(*jobs[i], d, targets[i])
            )
        results[i] = prepared
    return [result for result in results if result is not None]


def _build_in_worker(path: Path, fmt: str, kind: str, d: DatasetConfig, target: Path | None) -> Prepared:
    """build_file in a worker process. With the cache on, the graphs go back through the cache
    entry it has just written (the parent reads the file once, from the page cache) instead of
    being pickled through a pipe, which costs the parent several copies and context switches."""
    prepared = build_file(path, fmt, kind, d, target)
    if target is not None:
        prepared = dataclasses.replace(prepared, blocks={}, train_ids=prepared.train_ids[:0])
    return prepared


def _fit_normalisation(train: GraphSet, kind: str) -> dict[str, list[float]]:
    if kind == "none":
        return {
            "x_mean": [0.0] * train.x.shape[1],
            "x_std": [1.0] * train.x.shape[1],
            "edge_mean": [0.0] * train.edge_attr.shape[1],
            "edge_std": [1.0] * train.edge_attr.shape[1],
        }
    benign_nodes = torch.repeat_interleave(train.y == 0, train.node_ptr[1:] - train.node_ptr[:-1])
    benign_edges = torch.repeat_interleave(train.y == 0, train.edge_ptr[1:] - train.edge_ptr[:-1])
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


def graphs_of_files(
    paths: list[Path], window: int, stride: int, vocabulary: dict[int, int], fmt: str = "can4"
) -> GraphSet:
    """Whole-file graphs of each log (evaluation sets), uncached."""
    parts = []
    for path in paths:
        frames: Frames = read_frames(Path(path), fmt)
        parts.append(build_graphs(frames, 0, len(frames), window, stride, vocabulary))
    return GraphSet.concat(parts)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".csv", ".txt", ".log"):
        name = name.removesuffix(suffix)
    return name


def load_splits(cfg: ExperimentConfig) -> Splits:
    d = cfg.dataset_config
    started = time.perf_counter()
    root, layout = resolve_layout(cfg)
    jobs: list[tuple[Path, str, str]] = []
    test_groups: dict[str, list[int]] = {}
    if layout.split_folders:
        for folder in sorted(p for p in root.glob("train_*") if p.is_dir()):
            jobs += [(p, fmt, "train_val") for p, fmt in _files(folder, layout)]
        if not jobs:
            raise DataError(f"{root}/train_*/ holds no {' or '.join(layout.patterns)} capture files.")
        for pattern in d.test_dirs:
            folders = sorted(p for p in root.glob(pattern) if p.is_dir())
            if not folders:
                existing = sorted(p.name for p in root.glob("test_*") if p.is_dir())
                raise DataError(
                    f"--dataset-config.test-dirs {pattern!r} matches no folder under {root}; test "
                    f"folders there: {', '.join(existing) or 'none'}."
                )
            for folder in folders:
                logs = _files(folder, layout)
                if not logs:
                    raise DataError(f"{folder} holds no {' or '.join(layout.patterns)} capture files.")
                test_groups[folder.name] = list(range(len(jobs), len(jobs) + len(logs)))
                jobs += [(p, fmt, "whole") for p, fmt in logs]
    else:
        jobs = [(p, fmt, "train_val_test") for p, fmt in _files(root, layout)]
        test_groups = {_stem(p): [i] for i, (p, _, _) in enumerate(jobs)}
    prepared = prepare_files(jobs, d)

    training = [p for p in prepared if "train" in p.bounds]
    ids = np.unique(np.concatenate([p.vocabulary_ids() for p in training] or [np.zeros(0, np.int64)]))
    vocabulary = {int(can_id): index for index, can_id in enumerate(ids.tolist(), start=1)}
    train = GraphSet.concat([p.graphs("train", vocabulary) for p in training])
    val = GraphSet.concat([p.graphs("val", vocabulary) for p in training])
    if len(train) == 0 or len(val) == 0:
        raise DataError(
            f"{root}: the training files give {len(train)} training and {len(val)} validation "
            f"windows of {d.window} frames; need at least one of each. Lower "
            f"--dataset-config.window or change --dataset-config.val-fraction."
        )
    test = {
        name: GraphSet.concat([prepared[i].graphs("test", vocabulary) for i in members])
        for name, members in test_groups.items()
    }
    stats = _fit_normalisation(train, d.normalisation)
    hits = sum(p.cached for p in prepared)
    return Splits(
        train=normalise(train, stats),
        val=normalise(val, stats),
        test={name: normalise(g, stats) for name, g in test.items()},
        vocabulary=vocabulary,
        normalisation=stats,
        data_root=root,
        files={str(p.path): p.frames for p in training},
        skipped_rows={str(p.path): p.skipped for p in prepared if p.skipped},
        dropped_na={str(p.path): p.dropped_na for p in prepared if p.dropped_na},
        preprocess={
            "frames": float(sum(p.frames for p in prepared)),
            "seconds": time.perf_counter() - started,
            "cache_hits": float(hits),
            "cache_misses": float(len(prepared) - hits),
        },
    )
