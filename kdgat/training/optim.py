"""What --training.* says about one optimisation step: optimizer, LR schedule, AMP, clipping.

Both trainers (graph models and the DQN agent) step through `Optimisation`, so a flag means the
same thing for every model and is checkpointed the same way.
"""

import contextlib
import warnings
from typing import Any

import torch

from configs import ExperimentConfig


def autocast_context(cfg: ExperimentConfig, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast when asked for; fp16 on CUDA for auto/fp16; otherwise full precision."""
    amp = cfg.training_config.amp
    if amp == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if device.type == "cuda" and amp in ("auto", "fp16"):
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def uses_grad_scaler(cfg: ExperimentConfig, device: torch.device) -> bool:
    """fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none."""
    return device.type == "cuda" and cfg.training_config.amp in ("auto", "fp16")


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
    """Stepped once per epoch by the skeleton."""
    if cfg.training_config.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.training_config.epochs)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


class Optimisation:
    """The optimizer, its schedule, the AMP grad scaler and clipping for one set of parameters."""

    def __init__(self, cfg: ExperimentConfig, parameters: list[torch.nn.Parameter], device: torch.device):
        self.cfg, self.device = cfg, device
        self.parameters = list(parameters)
        self.grad_clip = cfg.training_config.grad_clip
        self.optimizer = make_optimizer(cfg, self.parameters)
        self.scheduler = make_scheduler(cfg, self.optimizer)
        self.scaler = torch.amp.GradScaler("cuda", enabled=uses_grad_scaler(cfg, device))
        self.stepped = False

    def autocast(self) -> contextlib.AbstractContextManager:
        """The forward passes of a training step run inside this."""
        return autocast_context(self.cfg, self.device)

    def step(self, loss: torch.Tensor) -> None:
        """Backward, clip the global gradient norm, step (skipped by the scaler on fp16 overflow)."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
            torch.nn.utils.clip_grad_norm_(self.parameters, self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.stepped = True

    def end_epoch(self) -> None:
        """Advance the LR schedule by one epoch."""
        with warnings.catch_warnings():
            if not self.stepped:
                # The schedule follows epochs, updates or not: a DQN agent whose replay buffer is
                # still filling makes none in its first epoch, which torch mistakes for a misordered
                # scheduler.step() (a heuristic that fires once, on the first call).
                warnings.filterwarnings(
                    "ignore", r"Detected call of `lr_scheduler\.step\(\)` before `optimizer\.step\(\)`"
                )
            self.scheduler.step()

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
