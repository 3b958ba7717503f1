"""The TensorBoard HParams entry of a finished run: its config knobs beside its final metrics.

run_experiment writes it when a run finishes; ``python -m kdgat.results RUNS --write-hparams``
backfills older runs. The entry is one events file (``*.kdgat_hparams``) in the run directory
itself, so TensorBoard's HParams dashboard shows it as the same run as the training curves.

Written with torch's public TensorBoard API: ``torch.utils.tensorboard.FileWriter`` and the
``summary.hparams`` / ``summary.scalar`` protobuf builders. ``SummaryWriter.add_hparams`` is not
used: it writes into a sub-folder (a second TensorBoard run per training run, named by
timestamp unless given a name) and its own writer leaves an empty events file in the run
directory on every call.

Two ways in: `write_hparams_entry` takes the values in hand (run_experiment passes the config and
metrics it has just written, so a finishing run reads nothing back); `write_hparams` reads a run
directory with kdgat.results.read first (the backfill). Neither imports pandas, and the writer
path does not import kdgat.results.read either.
"""

import math
import os
from pathlib import Path
from typing import Any

from configs import LEVELS
from kdgat.common.errors import UserError
from kdgat.results.columns import METRIC_NAMES, is_knob
from kdgat.results.flat import add_floor_margins, add_knob, add_metrics

HPARAMS_SUFFIX = ".kdgat_hparams"
NOT_HPARAMS = ("osc_config.", "config.runs_root")  # where a run ran, not what it was


def hparams_of(row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
    """Split a run's results row into (hyper-parameters, final metrics) for the HParams dashboard.

    Hyper-parameters: the levels and every config knob (TensorBoard takes bool, number or text;
    a missing value becomes "none"). Metrics: the test/val/eval scores, params and best_epoch,
    as ``final/<column>``.
    """
    hparams: dict[str, Any] = {}
    for key, value in row.items():
        if (key in LEVELS or is_knob(key)) and not key.startswith(NOT_HPARAMS):
            if value is None or (isinstance(value, float) and math.isnan(value)):
                value = "none"
            hparams[key] = value if isinstance(value, (bool, int, float, str)) else str(value)
    metrics: dict[str, float] = {}
    for key, value in row.items():
        leaf = key.rsplit(".", 1)[-1]
        top = key.split(".", 1)[0]
        wanted = (top in ("test", "val", "eval") and leaf in METRIC_NAMES) or key in ("params", "best_epoch")
        if wanted and isinstance(value, (int, float)) and not isinstance(value, bool):
            metrics[f"final/{key}"] = float(value)
    return hparams, metrics


def entry_of(
    levels: dict[str, str], knobs: dict[str, Any], metrics: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, float], int]:
    """(hyper-parameters, final metrics, step) from a run's levels, flat config knobs (as in
    config.json) and metrics.json, named as kdgat.results.read names the same run's columns:
    equal to what `hparams_of(read_run(run_dir))` gives once the run is on disk."""
    row: dict[str, Any] = dict(levels)
    for key, value in knobs.items():
        if key not in LEVELS:
            add_knob(row, key, value)
    add_metrics(row, metrics)
    add_floor_margins(row)
    hparams, final = hparams_of(row)
    return hparams, final, int(row.get("epochs_run") or 0)


def write_hparams(run_dir: str | os.PathLike[str]) -> Path:
    """Write the HParams entry (config knobs + final metrics) into a finished run directory,
    read back from its files (the backfill of runs finished before entries existed).

    Calling it again replaces the entry. Returns the events file.
    """
    from kdgat.results.read import read_run  # the backfill only: a finishing run has the values

    run_dir = Path(run_dir)
    row = read_run(run_dir)
    if row["problem"] is not None:
        raise UserError(
            f"cannot write an HParams entry for {run_dir}: {row['problem']}. Only finished runs have one."
        )
    hparams, metrics = hparams_of(row)
    return write_hparams_entry(run_dir, hparams, metrics, int(row.get("epochs_run") or 0))


def write_hparams_entry(
    run_dir: str | os.PathLike[str], hparams: dict[str, Any], metrics: dict[str, float], step: int
) -> Path:
    """Write (or replace) the HParams entry of run_dir from values in hand. Metrics are also logged
    as scalars ``final/test.f1``, ``final/val.auroc``, ... at `step` (the run's last epoch).
    Returns the events file.
    """
    from torch.utils.tensorboard import FileWriter
    from torch.utils.tensorboard.summary import hparams as hparams_summaries
    from torch.utils.tensorboard.summary import scalar

    run_dir = Path(run_dir)
    pattern = f"events.out.tfevents.*{HPARAMS_SUFFIX}"
    for old in run_dir.glob(pattern):
        old.unlink()
    writer = FileWriter(str(run_dir), filename_suffix=HPARAMS_SUFFIX)
    try:
        for summary in hparams_summaries(hparams, metrics):
            writer.add_summary(summary)
        for tag, value in metrics.items():
            writer.add_summary(scalar(tag, value), global_step=step)
    finally:
        writer.close()
    (path,) = run_dir.glob(pattern)  # the old ones are gone: this is the file just written
    return path
