"""What --training.* says about one optimisation step: optimizer, LR schedule, AMP, clipping.

Both trainers (graph models and the DQN agent) step through `Optimisation`, so a flag means the
same thing for every model and is checkpointed the same way.

Mixed precision (--training.amp), decided once per run from the device:
- auto: on CUDA, bf16 where the GPU computes it natively (compute capability >= 8.0: A100, H100),
  else fp16 with a GradScaler (V100); full precision on the CPU.
- bf16: bf16 autocast (CPU or CUDA); refused up front on a GPU below capability 8.0, where torch
  would emulate it, slower than fp32 (check_amp).
- fp16: fp16 autocast with a GradScaler on CUDA; refused with --device cpu (configs), and with
  --device auto where no GPU is visible (check_amp), rather than trained in fp32 unsaid.
- off: full precision.
Only training steps run under autocast; scores, thresholds and validation are computed in fp32
(kdgat.training.graph_trainer), as `python -m kdgat.evaluate` computes them.
"""

import contextlib
import os
import warnings
from typing import Any

import torch

from configs import ExperimentConfig
from kdgat.common.errors import UserError

NATIVE_BF16 = (8, 0)
"""The first CUDA compute capability with bf16 arithmetic (Ampere)."""


def native_bf16(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= NATIVE_BF16


def amp_dtype(cfg: ExperimentConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of the training steps on device (None: full precision); see the module."""
    amp = cfg.training_config.amp
    if amp == "bf16":
        return torch.bfloat16
    if device.type != "cuda" or amp == "off":
        return None
    if amp == "auto" and native_bf16(device):
        return torch.bfloat16
    return torch.float16


def amp_name(cfg: ExperimentConfig, device: torch.device) -> str:
    """What --training.amp means on this device: bf16, fp16 (with a GradScaler) or off."""
    return {torch.bfloat16: "bf16", torch.float16: "fp16", None: "off"}[amp_dtype(cfg, device)]


def check_amp(cfg: ExperimentConfig, device: torch.device) -> None:
    """Refuse what --training.amp cannot do on the device the run resolved to (UserError: what,
    why, what to use instead): fp16 off CUDA (configs refuses it with --device cpu; --device auto
    finds out only here), and bf16 on a GPU that only emulates it."""
    if cfg.training_config.amp == "fp16" and device.type != "cuda":
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        hidden = f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else ""
        raise UserError(
            f"--training.amp fp16 with --device {cfg.device}: this run resolved to {device.type}, "
            f"where torch has no fp16 autocast with a GradScaler, so it would train in fp32 without "
            f"saying so. No CUDA device is visible here{hidden}. Run it where a GPU is, or use "
            f"--training.amp auto (fp16 or bf16 on a GPU, fp32 on the CPU) or off."
        )
    if cfg.training_config.amp != "bf16" or device.type != "cuda" or native_bf16(device):
        return
    major, minor = torch.cuda.get_device_capability(device)
    raise UserError(
        f"--training.amp bf16 on {torch.cuda.get_device_name(device)} (compute capability "
        f"{major}.{minor}): this GPU has no bf16 arithmetic, so torch would emulate it, slower than "
        f"fp32. bf16 needs compute capability {NATIVE_BF16[0]}.{NATIVE_BF16[1]} or newer (A100, H100). "
        f"Use --training.amp auto (fp16 with a GradScaler on this GPU) or off."
    )


def uses_grad_scaler(cfg: ExperimentConfig, device: torch.device) -> bool:
    """fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none."""
    return amp_dtype(cfg, device) == torch.float16


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
        self.scaler = torch.amp.GradScaler(device.type, enabled=uses_grad_scaler(cfg, device))
        self.dtype = amp_dtype(cfg, device)
        self.stepped = False
        self.skipped_steps = 0
        """Steps of this epoch the GradScaler skipped (inf/NaN gradients), checkpointed."""
        self._optimizer_steps = 0
        # Counts the optimizer's real steps on the host: a step the scaler skips never calls
        # optimizer.step(), so comparing counts finds skips without reading the device.
        self.optimizer.register_step_post_hook(self._count_step)

    def _count_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self._optimizer_steps += 1

    def autocast(self) -> contextlib.AbstractContextManager:
        """The forward passes of a training step run inside this."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def step(self, loss: torch.Tensor) -> None:
        """Backward, clip the global gradient norm, step (skipped by the scaler on fp16 overflow)."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
            torch.nn.utils.clip_grad_norm_(self.parameters, self.grad_clip)
        before = self._optimizer_steps
        self.scaler.step(self.optimizer)
        self.skipped_steps += self._optimizer_steps == before
        self.scaler.update()
        self.stepped = True

    def end_epoch(self) -> dict[str, float] | None:
        """Advance the LR schedule by one epoch; with a GradScaler, return its scale and the steps
        it skipped this epoch (and start counting afresh), else None."""
        with warnings.catch_warnings():
            if not self.stepped:
                # The schedule follows epochs, updates or not: a DQN agent whose replay buffer is
                # still filling makes none in its first epoch, which torch mistakes for a misordered
                # scheduler.step() (a heuristic that fires once, on the first call).
                warnings.filterwarnings(
                    "ignore", r"Detected call of `lr_scheduler\.step\(\)` before `optimizer\.step\(\)`"
                )
            self.scheduler.step()
        skipped, self.skipped_steps = self.skipped_steps, 0
        if not self.scaler.is_enabled():
            return None
        return {"grad_scale": self.scaler.get_scale(), "skipped_steps": skipped}

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "skipped_steps": self.skipped_steps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        # A checkpoint written without loss scaling (CPU, bf16, off: an empty scaler state) and
        # resumed where fp16 needs it starts from a fresh scale, which the first steps adjust as at
        # any start; a disabled scaler ignores whatever state it is given.
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.skipped_steps = state.get("skipped_steps", 0)
