"""predictions.csv beside metrics.json: one row per test window, for plots, re-thresholding and
significance tests without retraining.

Columns: split (the test set), source (capture file), window (its index within that file's test
graphs), frame_start / frame_stop (the window's record span, stop exclusive, as positions in the
capture's records in the order the reader gives them: CAN frames in file order; flows sorted by
start time, which is not Zeek's file order (it writes a connection when it ends), and after any
dropped rows (malformed=skip, unlabelled=drop); process hours), time_start / time_stop (first
and last record time where the modality keeps them; empty for CAN), label (1 attack),
attack_type, score (higher = more likely an attack) and decision (score >= the run's
validation threshold).
"""

import csv
import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from kdgat.common.io import atomic_write_text
from kdgat.data.graphs import Graphs

COLUMNS = (
    "split",
    "source",
    "window",
    "frame_start",
    "frame_stop",
    "time_start",
    "time_stop",
    "label",
    "attack_type",
    "score",
    "decision",
)


def write_predictions(
    run_dir: Path, tests: Mapping[str, Graphs], scores: dict[str, np.ndarray], threshold: float
) -> Path:
    """Write run_dir/predictions.csv (atomically) and return its path."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for name, graphs in tests.items():
        score = np.asarray(scores[name], dtype=np.float64)
        seen: dict[str, int] = {}
        start, stop = graphs.frame_start.tolist(), graphs.frame_stop.tolist()
        t0 = graphs.time_start.tolist() if graphs.time_start is not None else [None] * len(graphs)
        t1 = graphs.time_stop.tolist() if graphs.time_stop is not None else [None] * len(graphs)
        for i, (source, label, attack) in enumerate(
            zip(graphs.source, graphs.y.tolist(), graphs.attack_type, strict=True)
        ):
            window = seen.get(source, 0)
            seen[source] = window + 1
            writer.writerow(
                [
                    name,
                    source,
                    window,
                    start[i],
                    stop[i],
                    "" if t0[i] is None else f"{t0[i]:.6f}",
                    "" if t1[i] is None else f"{t1[i]:.6f}",
                    label,
                    attack,
                    repr(float(score[i])),
                    int(score[i] >= threshold),
                ]
            )
    path = Path(run_dir) / "predictions.csv"
    atomic_write_text(path, out.getvalue())
    return path
