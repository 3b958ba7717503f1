"""Leak-free splits: every capture is cut into contiguous blocks of records, and windows are cut
inside each block, so no window crosses a boundary and no record is in two splits, whatever the
stride (also for stride < window).

- A training file (train_*/ folders) is cut into training and validation blocks; a test file
  (test_*/ folders) is one test block.
- A file of a flat dataset (no train/test folders) is cut into training, validation
  (val_fraction) and test (test_fraction, at its end) blocks.
The validation block lies at the file's end, or (stratified) where the file's attack share is
best represented.
"""

import numpy as np


def _val_start(labels: np.ndarray, stop: int, length: int, placement: str) -> int:
    """Start of the validation block inside records [0, stop).

    'end': the last `length` records. 'stratified': among blocks starting on a grid of length/10
    records (the last flush with `stop`), the one holding the number of attack records closest
    to its proportional share of the file's attacks, the latest on ties (so attack-free files
    keep 'end'); a capture whose attacks all lie early still validates on some of them.
    """
    if placement == "end" or length == 0 or stop <= length:
        return stop - length
    step = max(1, length // 10)
    starts = np.unique(np.r_[np.arange(0, stop - length + 1, step), stop - length])
    cumulative = np.concatenate([[0], np.cumsum(labels[:stop] > 0, dtype=np.int64)])
    counts = cumulative[starts + length] - cumulative[starts]
    gaps = np.abs(counts - cumulative[stop] * length / stop)
    return int(starts[np.flatnonzero(gaps <= gaps.min() + 1e-9)[-1]])


def block_bounds(
    kind: str, labels: np.ndarray, val_fraction: float, test_fraction: float, placement: str = "end"
) -> dict[str, tuple[int, int]]:
    """Contiguous record blocks of one file: 'train_val' (training file), 'whole' (test file),
    'train_val_test' (flat datasets; test is the file's end), or 'train' / 'val' (all of it).
    Training records after the validation block form 'train_tail'. labels: 1 attack, 0 benign,
    -1 unlabelled."""
    n = len(labels)
    if kind == "whole":
        return {"test": (0, n)}
    if kind in ("train", "val"):  # a file with a fixed role (BATADAL's competition split)
        return {kind: (0, n)}
    stop = n if kind == "train_val" else n - int(n * test_fraction)
    length = int(n * val_fraction)
    a = _val_start(labels, stop, length, placement)
    bounds = {"train": (0, a), "val": (a, a + length)}
    if a + length < stop:
        bounds["train_tail"] = (a + length, stop)
    if kind == "train_val_test":
        bounds["test"] = (stop, n)
    return bounds
