"""The hand-written training loop, shared by every graph model (the task says what is learnt).

Reads top to bottom: seed, optimiser and schedule, then per epoch a seeded shuffle, AMP forward,
NaN guard, clipped step, validation, early stopping and an atomic checkpoint. The checkpoint holds
everything the next step depends on (weights, optimiser, scheduler, scaler, epoch, step within
the epoch, early-stopping state and every RNG), so a resumed run ends with the same weights as an
uninterrupted one. SIGTERM/SIGUSR2 (Slurm preemption) save a mid-epoch checkpoint and stop.
"""

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

from configs import ExperimentConfig, to_yaml
from kdgat.data.graphset import GraphSet, gather_graphs
from kdgat.errors import TrainingDiverged
from kdgat.io import atomic_torch_save
from kdgat.metrics import binary_metrics
from kdgat.tasks import Task


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


def rng_state() -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def autocast_context(cfg: ExperimentConfig, device: torch.device) -> contextlib.AbstractContextManager:
    amp = cfg.training_config.amp
    if amp == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if device.type == "cuda" and amp in ("auto", "fp16"):
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def uses_grad_scaler(cfg: ExperimentConfig, device: torch.device) -> bool:
    return device.type == "cuda" and cfg.training_config.amp in ("auto", "fp16")


def batches(order: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    return list(order.split(batch_size))


@torch.no_grad()
def predict(
    task: Task, model: torch.nn.Module, graphs: GraphSet, device: torch.device, cfg: ExperimentConfig
) -> np.ndarray:
    """The task's per-graph score for every graph, in order."""
    model.eval()
    scores = []
    for index in batches(torch.arange(len(graphs)), cfg.training_config.batch_size):
        batch = gather_graphs(graphs, index).to(device)
        with autocast_context(cfg, device):
            scores.append(task.scores(model, batch).float().cpu())
    if not scores:
        return np.zeros(0)
    return torch.cat(scores).numpy().astype(np.float64)


@torch.no_grad()
def predict_edges(
    task: Task, model: torch.nn.Module, graphs: GraphSet, device: torch.device, cfg: ExperimentConfig
) -> np.ndarray:
    """The task's per-edge score for every edge, in order (models with an edge read-out)."""
    model.eval()
    scores = []
    for index in batches(torch.arange(len(graphs)), cfg.training_config.batch_size):
        batch = gather_graphs(graphs, index).to(device)
        with autocast_context(cfg, device):
            scores.append(task.edge_scores(model, batch).float().cpu())
    if not scores:
        return np.zeros(0)
    return torch.cat(scores).numpy().astype(np.float64)


@torch.no_grad()
def mean_loss(
    task: Task, model: torch.nn.Module, graphs: GraphSet, device: torch.device, cfg: ExperimentConfig
) -> float:
    model.eval()
    index = torch.nonzero(task.val_loss_graphs(graphs)).flatten()
    total = 0.0
    for chunk in batches(index, cfg.training_config.batch_size):
        batch = gather_graphs(graphs, chunk).to(device)
        with autocast_context(cfg, device):
            loss, _ = task.loss(model, batch)
        total += float(loss) * len(chunk)
    return total / max(len(index), 1)


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
    """Turns SIGTERM/SIGUSR2 into a flag the loop checks between batches."""

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


def make_optimizer(cfg: ExperimentConfig, parameters: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    t = cfg.training_config
    if t.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=t.lr, weight_decay=t.weight_decay)
    if t.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=t.lr, weight_decay=t.weight_decay)
    return torch.optim.SGD(parameters, lr=t.lr, weight_decay=t.weight_decay, momentum=0.9)


def make_scheduler(
    cfg: ExperimentConfig, optimizer: torch.optim.Optimizer
) -> torch.optim.lr_scheduler.LRScheduler:
    if cfg.training_config.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.training_config.epochs)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


def new_partial() -> dict[str, Any]:
    """Sums over the batches of the epoch so far (checkpointed: a resumed epoch continues them)."""
    return {"loss_sum": 0.0, "graphs": 0, "terms": {}}


def save_epoch_end(
    ckpt_dir: Path,
    improved: bool,
    model: torch.nn.Module,
    epoch: int,
    extra_state: dict[str, Any],
    last_state: dict[str, Any],
) -> None:
    """best.pt (weights of the best validation epoch) when improved, then last.pt (resume state)."""
    if improved:
        atomic_torch_save(ckpt_dir / "best.pt", {"model": model.state_dict(), "epoch": epoch, **extra_state})
    atomic_torch_save(ckpt_dir / "last.pt", last_state)


def fit(
    cfg: ExperimentConfig,
    task: Task,
    model: torch.nn.Module,
    val: GraphSet,
    run_dir: Path,
    device: torch.device,
    extra_state: dict[str, Any],
) -> dict[str, Any]:
    """Train until the epoch budget or early stopping; returns the loop's summary.

    Resumes from run_dir/checkpoints/last.pt when it exists. best.pt holds the weights of the
    best validation epoch; the caller evaluates those.
    """
    t = cfg.training_config
    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(exist_ok=True)
    last_path = ckpt_dir / "last.pt"

    seed_everything(t.seed)
    model.to(device)
    parameters = list(model.parameters())
    if task.trainable is not None:
        task.trainable.to(device)
        parameters += list(task.trainable.parameters())
    optimizer = make_optimizer(cfg, parameters)
    scheduler = make_scheduler(cfg, optimizer)
    scaler = torch.amp.GradScaler("cuda", enabled=uses_grad_scaler(cfg, device))
    stopper = EarlyStopping(t.patience)
    start_epoch, start_step, global_step = 0, 0, 0
    partial = new_partial()
    history: list[dict[str, Any]] = []
    resumed = last_path.is_file()
    if resumed:
        state = torch.load(last_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        if task.trainable is not None:
            task.trainable.load_state_dict(state["task_trainable"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        stopper = EarlyStopping(**state["early_stopping"])
        start_epoch, start_step, global_step = state["epoch"], state["step"], state["global_step"]
        partial, history = state["partial"], state["history"]
        set_rng_state(state["rng"])
    writer = SummaryWriter(str(run_dir), purge_step=global_step if resumed else None)
    if not resumed:
        writer.add_text("config", "```\n" + to_yaml(cfg) + "```")

    def checkpoint(epoch: int, step: int) -> dict[str, Any]:
        return {
            "model": model.state_dict(),
            "task_trainable": task.trainable.state_dict() if task.trainable is not None else None,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "epoch": epoch,
            "step": step,
            "global_step": global_step,
            "partial": partial,
            "early_stopping": dataclasses.asdict(stopper),
            "history": history,
            "rng": rng_state(),
            **extra_state,
        }

    with StopSignal() as stop:
        for epoch in range(start_epoch, t.epochs):
            if stopper.should_stop:
                break
            epoch_started = time.perf_counter()
            model.train()
            if task.trainable is not None:
                task.trainable.train()
            # The epoch's order depends only on (seed, epoch): a resumed run sees the same batches.
            generator = torch.Generator().manual_seed(t.seed * 100_003 + epoch)
            for step, index in enumerate(batches(task.epoch_graphs(epoch, generator), t.batch_size)):
                if step < start_step:
                    continue
                batch = gather_graphs(task.train, index).to(device)
                with autocast_context(cfg, device):
                    loss, terms = task.loss(model, batch)
                if not torch.isfinite(loss):
                    named = ", ".join(f"{k}={v.item():.6g}" for k, v in terms.items())
                    raise TrainingDiverged(
                        f"the loss became {float(loss)} at epoch {epoch}, step {global_step} "
                        f"(batch {step} of the epoch, first graphs {index[:8].tolist()}); loss terms: "
                        f"{named}. Lower --training.lr, keep --training.grad-clip > 0, or try "
                        f"--training.amp off."
                    )
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if t.grad_clip > 0:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(parameters, t.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                partial["loss_sum"] += loss.item() * len(index)
                partial["graphs"] += len(index)
                for name, value in terms.items():
                    partial["terms"][name] = partial["terms"].get(name, 0.0) + float(value) * len(index)
                global_step += 1
                writer.add_scalar("losses/train_step", loss.item(), global_step)
                if stop.received is not None:
                    atomic_torch_save(last_path, checkpoint(epoch, step + 1))
                    writer.close()
                    raise Preempted(f"signal {stop.received} at epoch {epoch}, step {step + 1}", stop.signals)
            start_step = 0
            train_loss = partial["loss_sum"] / max(partial["graphs"], 1)
            for name, total in partial["terms"].items():  # e.g. each distillation term on its own
                writer.add_scalar(f"loss_terms/{name}", total / max(partial["graphs"], 1), epoch)
            partial = new_partial()
            scheduler.step()
            val_scores = predict(task, model, val, device, cfg)
            val_loss = mean_loss(task, model, val, device, cfg)
            val_y = val.y.numpy()
            val_metrics = binary_metrics(val_y, val_scores, task.threshold(val_y, val_scores))
            improved = stopper.update(epoch, task.monitor(val_metrics, val_loss))
            record = {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "val_f1": val_metrics["f1"],
                "val_auroc": val_metrics["auroc"],
                "lr": optimizer.param_groups[0]["lr"],
            }
            history.append(record)
            writer.add_scalar("losses/train", train_loss, epoch)
            writer.add_scalar("losses/val", val_loss, epoch)
            writer.add_scalar("charts/val_f1", val_metrics["f1"], epoch)
            if val_metrics["auroc"] is not None:
                writer.add_scalar("charts/val_auroc", val_metrics["auroc"], epoch)
            writer.add_scalar("charts/learning_rate", record["lr"], epoch)
            writer.add_scalar("charts/epoch_seconds", time.perf_counter() - epoch_started, epoch)
            save_epoch_end(ckpt_dir, improved, model, epoch, extra_state, checkpoint(epoch + 1, 0))
            print(
                f"epoch {epoch + 1}/{t.epochs}  train_loss {train_loss:.4f}  val_loss {val_loss:.4f}  "
                f"val_f1 {val_metrics['f1']:.4f}{'  *' if improved else ''}",
                flush=True,
            )
    writer.close()
    return {
        "best_epoch": stopper.best_epoch,
        "epochs_run": len(history),
        "stopped_early": stopper.should_stop,
        "history": history,
        "global_step": global_step,
    }
