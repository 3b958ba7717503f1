"""Small real CAN captures for the end-to-end tests, and a pandas oracle over their frames: heads of
4-column captures (can_train_and_test's timestamp, arbitration_id, data_field, attack) and, per
scored window, the IDs a calibration never heard."""

import collections
import gzip
from pathlib import Path

import numpy as np
import pandas as pd

WINDOW = 100
"""Frames per window, and the stride: the automotive defaults."""


def head_copy(source: Path, target: Path, lines: int, corrupt_labels: bool = False) -> Path:
    """The first `lines` frames of a 4-column capture; corrupt_labels: every label flipped at random."""
    rows = gzip.decompress(source.read_bytes()).decode().splitlines()[: lines + 1]
    if corrupt_labels:
        rng = np.random.default_rng(0)
        rows = rows[:1] + [r.rsplit(",", 1)[0] + f",{rng.integers(0, 2)}" for r in rows[1:]]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(gzip.compress(("\n".join(rows) + "\n").encode(), mtime=0))
    return target


def frames_of(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A capture's CAN IDs, frame labels and timestamps, read by pandas (not by kdgat's reader)."""
    table = pd.read_csv(path)
    ids = table.arbitration_id.map(lambda h: int(h, 16)).to_numpy()
    return ids, table.attack.to_numpy(), table.timestamp.to_numpy()


def unheard_windows(
    path: Path, heard: set[int], calibration_records: int
) -> tuple[list[set[int]], list[int]]:
    """Each scored window's IDs absent from `heard`, and its label (windows of WINDOW frames at
    stride WINDOW; those holding any of the first calibration_records frames are not scored)."""
    ids, labels, _ = frames_of(path)
    starts = range(0, len(ids) - WINDOW + 1, WINDOW)
    kept = [i for i in starts if i >= calibration_records]
    return [set(ids[i : i + WINDOW]) - heard for i in kept], [int(labels[i : i + WINDOW].max()) for i in kept]


def unheard_counts(windows: list[set[int]]) -> dict[str, int]:
    """Each unheard ID, named as unheard_in_calibration names it, with the windows it is in."""
    return dict(collections.Counter(f"0x{i:03X}" for window in windows for i in window))


def late_arrivals(path: Path, seconds: float, late_after: float = 2.0) -> tuple[int, list[str]]:
    """How many IDs a capture's first `seconds` hold, and those whose first frame comes more than
    late_after seconds after the capture's first frame, named as a calibration names them."""
    ids, _, time = frames_of(path)
    part = time < time[0] + seconds
    first = pd.Series(time[part]).groupby(ids[part]).min()
    return len(first), [f"0x{i:03X}" for i in sorted(first.index[first > time[0] + late_after])]
