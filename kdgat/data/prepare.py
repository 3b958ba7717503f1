"""One capture file -> its blocks' raw graphs, through the content-keyed cache, in worker processes.

The same path serves training (load_splits) and scoring on other data (kdgat.scoring): read with the
modality's reader and the run's row policies, cut into leak-free blocks, build every block's
windows, and store the result under the file's cache key. Nothing is written for a capture that
fails to parse, so a failed step leaves no partial entry.

Each entry is prepared once however many processes need it at the same time: a missing entry is
built by whoever claims its lock (kdgat/data/cache.py); a process that finds it claimed builds
its other misses first, then says whom it waits for, waits, and reads the entry (or builds it,
where the holder died without writing it).
"""

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from configs import DatasetConfig
from kdgat.common.progress import progress_bar
from kdgat.data.cache import (
    entry_key,
    entry_lock,
    entry_path,
    file_digest,
    lock_holder,
    map_entry,
    remove_partial_writes,
    save_entry,
    try_lock,
)
from kdgat.data.modality import Modality
from kdgat.data.pool import cores, run_jobs
from kdgat.data.splits import block_bounds
from kdgat.data.store import Part, View


@dataclasses.dataclass
class Prepared:
    """One capture file, preprocessed: raw graphs of each block (memory-mapped from its cache
    entry when the cache is on) and what the vocabulary needs."""

    path: Path
    blocks: dict[str, dict[str, np.ndarray]]
    bounds: dict[str, tuple[int, int]]
    frames: int
    """Records read (CAN frames, flows, hours)."""
    skipped: int
    info: dict[str, Any]
    """The modality's own metadata of the capture (e.g. dropped_na, label_counts, attack_names)."""
    train_ids: np.ndarray
    attack_type: str
    cached: bool
    """Read from the cache rather than built by this process."""
    waited: bool = False
    """Read from the cache once another process had prepared it (this one found it being built)."""

    @property
    def dropped_na(self) -> int:
        return int(self.info.get("dropped_na", 0))

    def parts(self, role: str, view: View) -> list[Part]:
        """The file's graphs of a split (train: its train and train_tail blocks), seen through
        view, as GraphStore parts; blocks without a window are left out."""
        roles = [role, "train_tail"] if role == "train" else [role]
        names = self.info.get("attack_names")
        return [
            Part(self.blocks[r], view, self.attack_type, str(self.path), names)
            for r in roles
            if len(self.blocks.get(r, {}).get("y", ()))
        ]

    def num_graphs(self) -> int:
        return sum(len(raw.get("y", ())) for raw in self.blocks.values())

    def vocabulary_ids(self) -> np.ndarray:
        """Node identities of benign records inside the training blocks."""
        return self.train_ids


def cache_target(path: Path, fmt: str, kind: str, d: DatasetConfig, modality: Modality) -> Path | None:
    """The file's cache entry (keyed by its contents' SHA-256), or None when the cache is off.
    Hashing reads the whole file: compute it once per file and pass it on."""
    if not d.cache:
        return None
    return entry_path(d.cache_dir, entry_key(file_digest(path), modality.cache_params(fmt, kind, d, path)))


def prepare_file(path: Path, fmt: str, kind: str, d: DatasetConfig, modality: Modality) -> Prepared:
    """Read, cut and build one file's graphs, through the cache when it is on."""
    target = cache_target(path, fmt, kind, d, modality)
    prepared = cached_file(path, target, modality) or claim_and_build(path, fmt, kind, d, target, modality)
    if isinstance(prepared, Busy):
        assert target is not None  # only a cache entry has a lock to be busy on
        return wait_for_entry((path, fmt, kind), target, d, modality)
    return prepared


_META_KEYS = ("bounds", "frames", "skipped", "source")


def cached_file(path: Path, target: Path | None, modality: Modality) -> Prepared | None:
    """The file's graphs from its cache entry, or None (cache off, no entry, or a bad entry)."""
    if target is None:
        return None
    hit = map_entry(target)
    if hit is None:
        return None
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
        info={k: v for k, v in meta.items() if k not in _META_KEYS},
        train_ids=arrays["train_ids"],
        attack_type=modality.file_attack_type(path),
        cached=True,
    )


def build_file(
    path: Path, fmt: str, kind: str, d: DatasetConfig, target: Path | None, modality: Modality
) -> Prepared:
    """Read, cut and build one file's graphs; written to the cache entry target unless None."""
    records = modality.read(path, fmt, d)
    bounds = block_bounds(kind, records.label, d.val_fraction, d.test_fraction, d.val_placement)
    blocks = {role: modality.build(records, lo, hi, d) for role, (lo, hi) in bounds.items()}
    in_training = np.zeros(len(records), dtype=bool)
    for role in ("train", "train_tail"):
        if role in bounds:
            in_training[slice(*bounds[role])] = True
    train_ids = modality.identities(records, in_training & (records.label == 0))
    prepared = Prepared(
        path=path,
        blocks=blocks,
        bounds=bounds,
        frames=len(records),
        skipped=records.skipped,
        info=modality.info(records),
        train_ids=train_ids.astype(np.int64),
        attack_type=modality.file_attack_type(path),
        cached=False,
    )
    if target is not None:
        arrays = {f"{role}.{k}": v for role, raw in blocks.items() for k, v in raw.items()}
        arrays["train_ids"] = prepared.train_ids
        meta = {
            "bounds": bounds,
            "frames": prepared.frames,
            "skipped": prepared.skipped,
            **prepared.info,
            "source": path.name,
        }
        save_entry(target, arrays, meta)
    return prepared


class Progress:
    """A tqdm bar over the files being preprocessed, with the records/s; drawn only on a terminal."""

    def __init__(self, total: int, record: str = "frame", label: str = "preprocessing") -> None:
        self.total, self.record, self.done, self.frames = total, record, 0, 0
        self.bar = progress_bar(total, unit="file", desc=label, show=total > 1)
        self.enabled = not self.bar.disable

    def update(self, frames: int) -> None:
        self.done += 1
        self.frames += frames
        if self.enabled:
            rate = self.frames / max(self.bar.format_dict["elapsed"], 1e-9)
            self.bar.set_postfix_str(f"{rate:,.0f} {self.record}s/s", refresh=False)
        self.bar.update(1)
        if self.done == self.total:
            self.bar.close()


# Below this much capture data a fork costs more than it saves (tests, synthetic data).
PROCESS_MIN_BYTES = 4 << 20


class Busy:
    """A missing entry that another process was preparing (it held the entry's lock)."""


def claim_and_build(
    path: Path, fmt: str, kind: str, d: DatasetConfig, target: Path | None, modality: Modality
) -> Prepared | Busy:
    """Build the file's entry under its lock; Busy when another process holds the lock. An
    entry written while this process looked elsewhere is read, not built again."""
    if target is None:
        return build_file(path, fmt, kind, d, target, modality)
    lock = try_lock(target)
    if lock is None:
        return Busy()
    try:
        remove_partial_writes(target)
        return cached_file(path, target, modality) or build_file(path, fmt, kind, d, target, modality)
    finally:
        lock.release()


def wait_for_entry(
    job: tuple[Path, str, str], target: Path, d: DatasetConfig, modality: Modality
) -> Prepared:
    """The entry another process was preparing, read once its lock is released (or taken over
    from a holder that died); built here when the holder left no entry."""
    lock = try_lock(target)
    if lock is None:
        print(
            f"waiting for {lock_holder(target)}, which is preparing {job[0].name} (cache entry {target})",
            flush=True,
        )
        lock = entry_lock(target)
        lock.acquire()
    try:
        remove_partial_writes(target)
        hit = cached_file(job[0], target, modality)
        if hit is not None:
            return dataclasses.replace(hit, waited=True)
        return build_file(*job, d, target, modality)
    finally:
        lock.release()


def prepare_files(
    jobs: list[tuple[Path, str, str]], d: DatasetConfig, modality: Modality, workers: int | None = None
) -> list[Prepared]:
    """prepare_file for every (path, format, kind), in order: cache hits are loaded here (a
    worker would have to send the arrays back), misses are built in parallel worker processes,
    and entries other processes are preparing are waited for last."""
    progress = Progress(len(jobs), modality.record)
    targets = [cache_target(*job, d, modality) for job in jobs]
    results: list[Prepared | None] = []
    for job, target in zip(jobs, targets, strict=True):
        results.append(cached_file(job[0], target, modality))
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
        _build_and_drop,
        [(*jobs[i], d, targets[i], modality) for i in misses],
        workers=workers or cores(),
        processes=processes,
        done=lambda prepared: None if isinstance(prepared, Busy) else progress.update(prepared.frames),
    )
    waiting = []
    for i, prepared in zip(misses, built, strict=True):
        if isinstance(prepared, Busy):
            waiting.append(i)
            continue
        if not prepared.blocks and d.cache:  # written to the cache: map it
            reread = cached_file(jobs[i][0], targets[i], modality)
            prepared = (
                dataclasses.replace(reread, cached=prepared.cached)
                if reread
                else build_file(*jobs[i], d, targets[i], modality)
            )
        results[i] = prepared
    for i in waiting:
        target = targets[i]
        assert target is not None  # only a cache entry has a lock to be busy on
        waited = results[i] = wait_for_entry(jobs[i], target, d, modality)
        progress.update(waited.frames)
    return [result for result in results if result is not None]


def _build_and_drop(
    path: Path, fmt: str, kind: str, d: DatasetConfig, target: Path | None, modality: Modality
) -> Prepared | Busy:
    """claim_and_build, in a worker process or inline (the builder holds the entry's lock while
    it builds, so a killed worker frees it). With the cache on, the graphs are dropped once
    written and the parent maps the entry: a worker's are not pickled through a pipe (several
    copies and context switches), and no file's arrays stay in memory while the others build."""
    prepared = claim_and_build(path, fmt, kind, d, target, modality)
    if target is not None and isinstance(prepared, Prepared):
        prepared = dataclasses.replace(prepared, blocks={}, train_ids=prepared.train_ids[:0])
    return prepared
