"""The callable every launcher job runs: claim a run dir, record Slurm ids, `run_experiment`.

Preemption and time limits (docs/launching.md): the training loop's own SIGTERM/SIGUSR2 handler wins
while it trains; it saves a mid-epoch last.pt and raises `Preempted`. The job then hands the signal
to submitit's handler, which calls `checkpoint()` (a DelayedSubmission of this same object, holding
the claimed run dir) and `scontrol requeue`s the job. A signal outside the loop reaches submitit's
handler directly and ends the same way. The run dir is also recorded in the job's submitit folder,
so a job that Slurm itself requeues (preemption in REQUEUE mode) resumes in the same directory too.
"""

import os
import signal
import time
from pathlib import Path
from typing import Any

import submitit

import configs
from kdgat.config.codec import from_dict

RUN_DIR_RECORD = "run_dir.txt"  # in the job's submitit folder; read by a requeued job


def job_environment() -> submitit.JobEnvironment | None:
    try:
        return submitit.JobEnvironment()
    except RuntimeError:  # not inside a submitit job (e.g. called directly)
        return None


def _record_path(env: submitit.JobEnvironment | None) -> Path | None:
    if env is None or env.cluster != "slurm":
        return None
    return Path(env.paths.folder) / RUN_DIR_RECORD


def launcher_info(env: submitit.JobEnvironment | None, stage: str | None) -> dict[str, Any]:
    """What status.json's "launcher" records of the job a run runs in (its logs, its restarts)."""
    job: dict[str, Any] = {"executor": env.cluster if env else "direct", "stage": stage}
    if env is not None and env.cluster != "debug":  # debug runs in-process: no job folder
        job |= {
            "job_id": env.job_id,
            "stdout": str(env.paths.stdout),
            "stderr": str(env.paths.stderr),
            "submitit_folder": str(env.paths.folder),
            "restart_count": int(os.environ.get("SLURM_RESTART_COUNT", "0")),
        }
    return job


def hand_to_submitit(seen: set[int], env: submitit.JobEnvironment | None) -> None:
    """After the loop saved last.pt: let submitit checkpoint + requeue (Slurm only).

    USR2 (Slurm's --signal before the time limit, or a preemption notice) requeues now. A bare
    SIGTERM (scancel, or preemption that Slurm requeues itself) waits a moment for a following
    USR2 (submitit's preemption sends TERM then USR2) and otherwise ends, state saved.
    """
    if env is None or env.cluster != "slurm":
        return
    if signal.SIGUSR2 in seen:
        signal.raise_signal(signal.SIGUSR2)  # submitit's handler is back: checkpoint, requeue, exit
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        time.sleep(0.1)  # a USR2 arriving now runs submitit's handler, which exits


class TrainJob(submitit.helpers.Checkpointable):
    """One experiment. Picklable: holds the config as a plain dict and, once claimed, its run dir."""

    def __init__(self, config: dict[str, Any], stage: str | None = None, run_dir: str | None = None) -> None:
        self.config = config
        self.stage = stage
        self.run_dir = run_dir
        self._requeued = False

    def claim(self, cfg: configs.ExperimentConfig, env: submitit.JobEnvironment | None) -> Path:
        """The run dir of this job: the one claimed at submission (or before a requeue), the
        recorded one, or a new one (bound to its upstream runs first, as run_experiment would)."""
        from kdgat.runs.store import Run
        from kdgat.runs.upstream import bind

        record = _record_path(env)
        if self.run_dir is None and record is not None and record.is_file():
            self.run_dir = record.read_text().strip()
        if self.run_dir is None:
            self.run_dir = str(Run.claim(bind(cfg)).path)
        if record is not None:
            record.write_text(self.run_dir + "\n")
        return Path(self.run_dir)

    def __call__(self) -> str:
        # kdgat.runs.store and the loop pull in torch: imported in the job, not when launch.py submits.
        from kdgat.runs.store import now, read_status, update_status

        # Resolved when planned; run_experiment resolves it (idempotent) on the way to metrics.json.
        cfg = from_dict(self.config, source="launcher job")
        env = job_environment()
        run_dir = self.claim(cfg, env)
        update_status(run_dir, launcher=launcher_info(env, self.stage))
        from kdgat.training.skeleton import Preempted

        try:
            from kdgat.experiment import run_experiment

            run_experiment(cfg, run_dir)
        except Preempted as stop:
            self._hand_to_submitit(stop.signals, env)
            raise
        except SystemExit:
            if self._requeued:  # submitit's handler requeued us outside the loop; run_experiment saw an exit
                update_status(run_dir, state="requeued", error=None)
            raise
        except BaseException as err:
            if read_status(run_dir).get("state") not in ("failed", "preempted"):
                update_status(
                    run_dir, state="failed", error=f"{type(err).__name__}: {err}", finished_at=now()
                )
            raise
        return str(run_dir)

    def _hand_to_submitit(self, seen: set[int], env: submitit.JobEnvironment | None) -> None:
        hand_to_submitit(seen, env)

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        """Called by submitit on USR2: re-run this same job (same run dir) after the requeue."""
        from kdgat.runs.store import now, read_status, update_status

        self._requeued = True
        if self.run_dir is not None:
            status = read_status(Path(self.run_dir))
            update_status(
                Path(self.run_dir),
                state="requeued",
                requeues=int(status.get("requeues", 0)) + 1,
                requeued_at=now(),
            )
        return submitit.helpers.DelayedSubmission(TrainJob(self.config, self.stage, self.run_dir))
