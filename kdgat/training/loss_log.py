"""Training losses kept on the device and read back once per logging interval; the NaN guard.

Reading a loss (`.item()`, `float()`, `if not torch.isfinite(loss)`) makes the host wait for the
device to finish the step. Per step and per term that is several waits a GPU pays for, so each
step only appends its detached loss and terms to `pending` (device tensors, no wait). Every
LOG_INTERVAL steps, before any checkpoint and at the epoch end, `flush` copies all of them to the
host in one transfer and then, step by step in order:
- checks the loss is finite; the first one that is not raises TrainingDiverged naming where it
  was taken (epoch, step, batch, first graphs) and its terms, exactly as a per-step check would;
- writes the step's TensorBoard scalar at the step it was taken;
- adds loss and terms, weighted by the step's graphs, to the epoch's sums.

The values are read as float64 and summed on the host in step order, so the sums are the same
numbers a per-step `.item()` gave. Between a non-finite step and the flush that reports it the
weights may be NaN; the flush before every checkpoint means such weights are never saved.
"""

import dataclasses
import math
from typing import Any

import torch
from torch.utils.tensorboard import SummaryWriter

from kdgat.common.errors import TrainingDiverged

LOG_INTERVAL = 32
"""Steps between reads of the losses (one host-device sync each)."""

ADVICE = "Lower --training.lr, keep --training.grad-clip > 0, or try --training.amp off."


def new_sums() -> dict[str, Any]:
    """Sums over the steps of the epoch so far (checkpointed: a resumed epoch continues them)."""
    return {"loss_sum": 0.0, "graphs": 0, "terms": {}}


@dataclasses.dataclass
class _Step:
    values: torch.Tensor  # float64 [loss, *terms], still on the device
    names: tuple[str, ...]
    weight: int
    tb_step: int
    where: str


class LossLog:
    """Per-step losses of one trainer, buffered on the device (see the module docstring)."""

    def __init__(self, tag: str, interval: int = LOG_INTERVAL) -> None:
        self.tag, self.interval = tag, interval
        self.pending: list[_Step] = []

    def record(
        self, loss: torch.Tensor, terms: dict[str, torch.Tensor], weight: int, tb_step: int, where: str
    ) -> None:
        """Keep one step's loss and terms (no host sync). where: e.g. 'epoch 0, step 12 (batch 12
        of the epoch, first graphs [...])', named by the NaN guard if this loss is not finite."""
        values = torch.stack([loss.detach().double(), *(v.detach().double() for v in terms.values())])
        self.pending.append(_Step(values, tuple(terms), weight, tb_step, where))

    @property
    def due(self) -> bool:
        return len(self.pending) >= self.interval

    def flush(self, writer: SummaryWriter, sums: dict[str, Any] | None = None) -> float | None:
        """Read every pending step (one transfer), guard, log, and add to sums; returns the last
        step's loss (None when nothing was pending)."""
        if not self.pending:
            return None
        rows = torch.cat([step.values for step in self.pending]).cpu().tolist()
        steps, self.pending = self.pending, []
        at = 0
        for step in steps:
            loss, term_values = rows[at], rows[at + 1 : at + 1 + len(step.names)]
            at += 1 + len(step.names)
            if not math.isfinite(loss):
                named = ", ".join(f"{k}={v:.6g}" for k, v in zip(step.names, term_values, strict=True))
                raise TrainingDiverged(
                    f"the loss became {loss} at {step.where}; loss terms: {named}. {ADVICE}"
                )
            writer.add_scalar(self.tag, loss, step.tb_step)
            if sums is not None:
                sums["loss_sum"] += loss * step.weight
                sums["graphs"] += step.weight
                for name, value in zip(step.names, term_values, strict=True):
                    sums["terms"][name] = sums["terms"].get(name, 0.0) + value * step.weight
        return loss
