"""The graph models' epoch (VGAE, GAT, fusion GAT, distilled students), run by the skeleton.

A task says what is learnt (kdgat.training.tasks); this trainer feeds it the epoch's batches: a
seeded shuffle of the task's graphs, an AMP forward, one clipped step per batch, the losses kept
on the device (kdgat.training.loss_log), then validation loss, scores and metrics at the epoch end.

Only the training steps run under autocast. Scores (thresholds, metrics.json, predictions.csv) and
the validation loss are computed in fp32 on any device, as `python -m kdgat.evaluate` rescores a
run, so an evaluation of the run's own test data gives the figures metrics.json holds.
"""

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from configs import ExperimentConfig
from kdgat.data.graphs import Graphs
from kdgat.data.graphset import gather_graphs
from kdgat.evaluation.metrics import binary_metrics
from kdgat.training import skeleton
from kdgat.training.checkpoint import RunInfo
from kdgat.training.loss_log import LossLog, new_sums
from kdgat.training.optim import Optimisation
from kdgat.training.tasks import Task


def batches(order: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    return list(order.split(batch_size))


@torch.no_grad()
def predict(
    task: Task,
    model: torch.nn.Module,
    graphs: Graphs,
    device: torch.device,
    cfg: ExperimentConfig,
    per: Literal["graph", "edge"] = "graph",
) -> np.ndarray:
    """The task's score of every graph (per="graph") or every edge (per="edge", models with an
    edge read-out), in order, computed in fp32 (see the module docstring)."""
    model.eval()
    read = task.scores if per == "graph" else task.edge_scores
    scores = []
    for index in batches(torch.arange(len(graphs)), cfg.training_config.batch_size):
        batch = gather_graphs(graphs, index).to(device)
        scores.append(read(model, batch).float())
    if not scores:
        return np.zeros(0)
    return torch.cat(scores).cpu().numpy().astype(np.float64)  # one copy back, not one per batch


@torch.no_grad()
def mean_loss(
    task: Task, model: torch.nn.Module, graphs: Graphs, device: torch.device, cfg: ExperimentConfig
) -> float:
    """The task's loss averaged over its validation graphs. Summed on the device in float64 (exact
    for these products, so the same number a per-batch float() sum gives) and read once."""
    model.eval()
    index = torch.nonzero(task.val_loss_graphs(graphs)).flatten()
    total = torch.zeros((), dtype=torch.float64, device=device)
    for chunk in batches(index, cfg.training_config.batch_size):
        batch = gather_graphs(graphs, chunk).to(device)
        loss, _ = task.loss(model, batch)
        total += loss.double() * len(chunk)
    return total.item() / max(len(index), 1)


class GraphTrainer(skeleton.Trainer):
    """One step per batch of the task's graphs; validation by the task's scores and monitor."""

    def __init__(
        self, cfg: ExperimentConfig, task: Task, model: torch.nn.Module, val: Graphs, device: torch.device
    ) -> None:
        self.cfg, self.task, self.val, self.device = cfg, task, val, device
        self.model = model.to(device)
        if task.trainable is not None:
            task.trainable.to(device)
        self.global_step = 0
        self.sums = new_sums()
        self.losses = LossLog("losses/train_step")

    def parameters(self) -> list[torch.nn.Parameter]:
        parameters = list(self.model.parameters())
        if self.task.trainable is not None:
            parameters += list(self.task.trainable.parameters())
        return parameters

    def batches(self, epoch: int) -> list[torch.Tensor]:
        t = self.cfg.training_config
        return batches(self.task.epoch_graphs(epoch, skeleton.epoch_generator(t.seed, epoch)), t.batch_size)

    def start_epoch(self, epoch: int) -> None:
        self.model.train()
        if self.task.trainable is not None:
            self.task.trainable.train()

    def step(
        self, epoch: int, step: int, index: torch.Tensor, opt: Optimisation, writer: SummaryWriter
    ) -> None:
        batch = gather_graphs(self.task.train, index).to(self.device)
        with opt.autocast():
            loss, terms = self.task.loss(self.model, batch)
        opt.step(loss)
        where = (
            f"epoch {epoch}, step {self.global_step} (batch {step} of the epoch, first graphs "
            f"{index[:8].tolist()})"
        )
        self.global_step += 1
        self.losses.record(loss, terms, len(index), self.global_step, where)
        if self.losses.due:
            self.losses.flush(writer, self.sums)

    def sync(self, writer: SummaryWriter) -> None:
        self.losses.flush(writer, self.sums)

    def end_epoch(self, epoch: int, writer: SummaryWriter) -> skeleton.EpochEnd:
        graphs = max(self.sums["graphs"], 1)
        train_loss = self.sums["loss_sum"] / graphs
        for name, total in self.sums["terms"].items():  # e.g. each distillation term on its own
            writer.add_scalar(f"loss_terms/{name}", total / graphs, epoch)
        self.sums = new_sums()
        task, model, val, cfg = self.task, self.model, self.val, self.cfg
        val_scores = predict(task, model, val, self.device, cfg)
        val_loss = mean_loss(task, model, val, self.device, cfg)
        val_y = val.y.numpy()
        val_metrics = binary_metrics(val_y, val_scores, task.threshold(val_y, val_scores))
        scalars = {"losses/train": train_loss, "losses/val": val_loss, "charts/val_f1": val_metrics["f1"]}
        if val_metrics["auroc"] is not None:
            scalars["charts/val_auroc"] = val_metrics["auroc"]
        return skeleton.EpochEnd(
            monitor=task.monitor(val_metrics, val_loss),
            record={
                "train_loss": train_loss,
                "val_loss": val_loss,
                "val_f1": val_metrics["f1"],
                "val_auroc": val_metrics["auroc"],
            },
            scalars=scalars,
            line=f"train_loss {train_loss:.4f}  val_loss {val_loss:.4f}  val_f1 {val_metrics['f1']:.4f}",
        )

    def state_dict(self) -> dict[str, Any]:
        trainable = self.task.trainable
        return {
            "task_trainable": trainable.state_dict() if trainable is not None else None,
            "global_step": self.global_step,
            "partial": self.sums,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.task.trainable is not None:
            self.task.trainable.load_state_dict(state["task_trainable"])
        self.global_step, self.sums = state["global_step"], state["partial"]


def fit(
    cfg: ExperimentConfig,
    task: Task,
    model: torch.nn.Module,
    val: Graphs,
    run_dir: Path,
    device: torch.device,
    info: RunInfo,
) -> dict[str, Any]:
    """Train a graph model with the skeleton; returns its summary (best.pt holds the best epoch)."""
    return skeleton.train(cfg, GraphTrainer(cfg, task, model, val, device), run_dir, info)
