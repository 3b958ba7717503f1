"""The callable a transfer evaluation task runs: `kdgat.evaluate` of one run on one target.

Checkpointable so that a preempted or timed-out task is requeued by submitit and simply runs
again: an evaluation keeps no state between attempts, and its eval_NAME.json is written
atomically at the end, so a killed attempt leaves either the old file or none.
"""

from pathlib import Path
from typing import Any

import submitit


class EvalJob(submitit.helpers.Checkpointable):
    """Evaluate `run` on `target` and write run/eval_<name>.json. Picklable: paths and strings only."""

    def __init__(
        self,
        run: str,
        name: str,
        target: str,
        dataset: str | None = None,
        calibration: str | None = None,
        calibration_seconds: float | None = None,
        thresholds: dict[str, Any] | None = None,
    ) -> None:
        self.run = run
        self.name = name
        self.target = target
        self.dataset = dataset
        self.calibration = calibration
        self.calibration_seconds = calibration_seconds
        self.thresholds = thresholds or {}  # calibration threshold knobs (ThresholdConfig fields)

    def __call__(self) -> str:
        # torch arrives with the evaluation, in the job: launch.py submits without it.
        from kdgat.scoring.evaluate import evaluate_run

        written = evaluate_run(
            Path(self.run),
            Path(self.target),
            self.dataset,
            self.name,
            Path(self.calibration) if self.calibration else None,
            self.calibration_seconds,
            thresholds=self.thresholds,
        )
        return str(written)
