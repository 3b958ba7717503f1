"""The one training skeleton: every trainer (graph models, the DQN agent) runs its epochs here.

A trainer supplies what its epoch is (the batches, one step on a batch, the validation at the end)
and the skeleton owns the rest, reading top to bottom in `train`: seed, optimiser, resume from
last.pt, the TensorBoard writer, then per epoch the steps (a terminal progress bar, a
SIGTERM/SIGUSR2 check after each), the LR schedule, early stopping, best.pt / last.pt and the
end-of-epoch line. The checkpoint holds everything the next step depends on (weights, optimiser,
scheduler, scaler, epoch, step within the epoch, early stopping, history, every RNG and the
trainer's own state), written atomically as plain data by kdgat.training.checkpoint, so a resumed
run ends with the same weights as an uninterrupted one.
"""

import abc
import contextlib
import dataclasses
import random
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from configs import ExperimentConfig
from kdgat.common.errors import UserError
from kdgat.common.progress import progress_bar
from kdgat.config.codec import to_yaml
from kdgat.training.checkpoint import (
    Checkpoint,
    Resume,
    RunInfo,
    capture_rng,
    read_checkpoint,
    restore_rng,
    write_checkpoint,
)
from kdgat.training.optim import Optimisation


class Preempted(Exception):
    """A stop signal arrived; last.pt holds the exact state to resume from.

    `signals` is the live set of every stop signal the loop received (it keeps growing while the
    handler stays installed), so a launcher can tell TERM + USR2 (requeue) from a bare TERM.
    """

    run_dir: Path | None = None

    def __init__(self, message: str, signals: set[int] | None = None) -> None:
        super().__init__(message)
        self.signals = signals if signals is not None else set()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The epoch's order depends only on (seed, epoch): a resumed run sees the same batches."""
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


@dataclasses.dataclass
class EarlyStopping:
    patience: int
    best: tuple[float, ...] | None = None
    best_epoch: int = -1
    bad_epochs: int = 0

    def update(self, epoch: int, value: tuple[float, ...]) -> bool:
        """Record one validation result; True if it is the best so far."""
        if self.best is None or tuple(value) > tuple(self.best):
            self.best, self.best_epoch, self.bad_epochs = tuple(value), epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs >= self.patience


class StopSignal:
    """Turns SIGTERM/SIGUSR2 into a flag the skeleton checks between steps."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR2)

    def __init__(self) -> None:
        self.received: int | None = None
        self.signals: set[int] = set()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopSignal":
        for sig in self.SIGNALS:
            with contextlib.suppress(ValueError):  # not the main thread: no handlers there
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.received = signum
        self.signals.add(signum)

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


@dataclasses.dataclass
class EpochEnd:
    """What a trainer reports after validating an epoch."""

    monitor: tuple[float, ...]
    """Early stopping keeps the epoch with the largest value (compared as a tuple)."""
    record: dict[str, Any]
    """The epoch's row of metrics.json's history (the skeleton adds epoch and lr)."""
    scalars: dict[str, float]
    """TensorBoard scalars at x = epoch."""
    line: str
    """The figures of the end-of-epoch line."""


class Trainer(abc.ABC):
    """What one kind of model supplies to the skeleton: its epoch."""

    model: torch.nn.Module
    """Saved as best.pt's and last.pt's model; the skeleton restores it on resume."""
    device: torch.device
    """Where the optimised parameters live (AMP and the grad scaler follow it)."""
    unit: str = "graph"
    """What a batch holds, for the progress bar."""
    global_step: int = 0
    """TensorBoard x-axis of per-step scalars; a resumed writer purges events past it."""

    @abc.abstractmethod
    def parameters(self) -> list[torch.nn.Parameter]:
        """What the optimiser trains."""

    @abc.abstractmethod
    def batches(self, epoch: int) -> list[torch.Tensor]:
        """The epoch's batches (indices) in order; a pure function of (seed, epoch)."""

    def start_epoch(self, epoch: int) -> None:  # noqa: B027 (optional hook)
        """Before the epoch's first step (e.g. model.train())."""

    @abc.abstractmethod
    def step(
        self, epoch: int, step: int, index: torch.Tensor, opt: Optimisation, writer: SummaryWriter
    ) -> None:
        """One training step on the batch `index` (step counts within the epoch)."""

    def sync(self, writer: SummaryWriter) -> None:  # noqa: B027 (optional hook)
        """Read back and check whatever the steps left on the device; called before every
        checkpoint and at the epoch end. Raises TrainingDiverged rather than let bad state be saved."""

    @abc.abstractmethod
    def end_epoch(self, epoch: int, writer: SummaryWriter) -> EpochEnd:
        """Validate the epoch's model."""

    @abc.abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """The trainer's own resume state beyond the model and the optimiser (last.pt's
        resume.trainer): tensors and plain data only."""

    @abc.abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what state_dict returned (the skeleton has restored the model)."""


def load_last(path: Path, device: torch.device) -> Checkpoint:
    last = read_checkpoint(path, device)
    if last.resume is None:
        raise UserError(
            f"{path} holds weights but no training state, so this run cannot continue exactly. Start "
            f"it afresh from its config: python train.py --config {path.parent.parent / 'config.yaml'}"
        )
    return last


def train(cfg: ExperimentConfig, trainer: Trainer, run_dir: Path, info: RunInfo) -> dict[str, Any]:
    """Train until the epoch budget or early stopping; returns the summary metrics.json keeps.

    Resumes from run_dir/checkpoints/last.pt when it exists. best.pt holds the weights of the
    best validation epoch (with info); the caller evaluates those.
    """
    t = cfg.training_config
    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(exist_ok=True)
    last_path = ckpt_dir / "last.pt"

    seed_everything(t.seed)
    opt = Optimisation(cfg, trainer.parameters(), trainer.device)
    stopper = EarlyStopping(t.patience)
    start_epoch, start_step = 0, 0
    history: list[dict[str, Any]] = []
    resumed = last_path.is_file()
    if resumed:
        last = load_last(last_path, trainer.device)
        state = last.resume
        if state is None:  # write_checkpoint gives every last.pt one
            raise UserError(
                f"{last_path} holds no resume state (a best.pt copied over it?); delete it to start over."
            )
        trainer.model.load_state_dict(last.model)
        trainer.load_state_dict(state.trainer)
        opt.load_state_dict(vars(state))  # its optimizer, scheduler and scaler fields
        stopper = EarlyStopping(**state.early_stopping)
        start_epoch, start_step, history = last.epoch, state.step, state.history
        restore_rng(state.rng)
    writer = SummaryWriter(str(run_dir), purge_step=trainer.global_step if resumed else None)
    if not resumed:
        writer.add_text("config", "```\n" + to_yaml(cfg) + "```")

    def checkpoint(epoch: int, step: int) -> Checkpoint:
        resume = Resume(
            step=step,
            **opt.state_dict(),
            early_stopping=dataclasses.asdict(stopper),
            history=history,
            rng=capture_rng(),
            trainer=trainer.state_dict(),
        )
        return Checkpoint(model=trainer.model.state_dict(), epoch=epoch, info=info, resume=resume)

    with StopSignal() as stop:
        for epoch in range(start_epoch, t.epochs):
            if stopper.should_stop:
                break
            epoch_started = time.perf_counter()
            trainer.start_epoch(epoch)
            batches = trainer.batches(epoch)
            bar = progress_bar(
                sum(map(len, batches)), unit=trainer.unit, desc=f"epoch {epoch + 1}/{t.epochs}"
            )
            bar.update(sum(map(len, batches[:start_step])))
            for step in range(start_step, len(batches)):
                trainer.step(epoch, step, batches[step], opt, writer)
                bar.set_postfix_str(f"batch {step + 1}/{len(batches)}", refresh=False)  # drawn by update
                bar.update(len(batches[step]))
                if stop.received is not None:
                    bar.close()
                    trainer.sync(writer)
                    write_checkpoint(last_path, checkpoint(epoch, step + 1))
                    writer.close()
                    raise Preempted(f"signal {stop.received} at epoch {epoch}, step {step + 1}", stop.signals)
            bar.close()
            start_step = 0
            trainer.sync(writer)
            scaling = opt.end_epoch()  # fp16: the GradScaler's scale and the steps it skipped
            end = trainer.end_epoch(epoch, writer)
            improved = stopper.update(epoch, end.monitor)
            history.append({"epoch": epoch, **end.record, "lr": opt.lr, **(scaling or {})})
            for tag, value in end.scalars.items():
                writer.add_scalar(tag, value, epoch)
            for tag, value in (scaling or {}).items():
                writer.add_scalar(f"amp/{tag}", value, epoch)
            line = end.line
            if scaling:
                line += f"  grad_scale {scaling['grad_scale']:g}  skipped_steps {scaling['skipped_steps']}"
            writer.add_scalar("charts/learning_rate", opt.lr, epoch)
            seconds = time.perf_counter() - epoch_started
            writer.add_scalar("charts/epoch_seconds", seconds, epoch)
            if improved:
                best = Checkpoint(trainer.model.state_dict(), epoch, info, monitor=list(end.monitor))
                write_checkpoint(ckpt_dir / "best.pt", best)
            write_checkpoint(last_path, checkpoint(epoch + 1, 0))
            print(
                f"epoch {epoch + 1}/{t.epochs}  {line}  {seconds:.1f}s{'  *' if improved else ''}",
                flush=True,
            )
    writer.close()
    return {
        "best_epoch": stopper.best_epoch,
        "epochs_run": len(history),
        "stopped_early": stopper.should_stop,
        "history": history,
        "global_step": trainer.global_step,
    }
