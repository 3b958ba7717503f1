"""The CUDA paths of the training loop, run on the CPU (issue 30, defects 1, 2 and 7): resuming across
loss scaling and GPU counts, bf16 only where the GPU has it, and the GradScaler's scale and skipped
steps in the epoch line, metrics.json's history and TensorBoard.

A GPU is stood in for by what torch reports about it (patched device count and capability) and by
torch's CPU GradScaler, which scales, unscales and skips exactly as the CUDA one does."""

import math
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import train
from configs import ExperimentConfig, TrainingConfig
from kdgat.common.errors import UserError
from kdgat.training import optim, skeleton
from kdgat.training.checkpoint import (
    Checkpoint,
    Resume,
    RunInfo,
    capture_rng,
    read_checkpoint,
    restore_rng,
    write_checkpoint,
)
from tests.helpers import FAST
from tests.training.test_training import CFG, Toy


def _train(run_dir: Path, trainer: Toy) -> dict[str, Any]:
    run_dir.mkdir(parents=True, exist_ok=True)
    return skeleton.train(CFG, trainer, run_dir, RunInfo())


def _scaled_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Training as on fp16 CUDA: loss scaling on (torch's CPU GradScaler), autocast off."""
    monkeypatch.setattr(optim, "uses_grad_scaler", lambda cfg, device: True)


def _signal_at(monkeypatch: pytest.MonkeyPatch, cls: type[Toy], at: tuple[int, int]) -> None:
    original = cls.step

    def step_then_signal(self: Toy, epoch: int, step: int, *args: Any) -> None:
        original(self, epoch, step, *args)
        if (epoch, step) == at:
            signal.raise_signal(signal.SIGUSR2)

    monkeypatch.setattr(cls, "step", step_then_signal)


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(run_dir / "checkpoints/last.pt").model


# -- defect 1: resuming where the GPU setup differs


def test_a_run_saved_without_loss_scaling_resumes_with_it(tmp_path: Path, monkeypatch) -> None:
    """A last.pt written on the CPU (or with bf16 / amp off) holds an empty scaler state; a requeue
    that lands on fp16 CUDA starts the scaler afresh instead of failing on it."""
    _train(tmp_path / "straight", Toy())
    _signal_at(monkeypatch, Toy, (1, 2))
    with pytest.raises(skeleton.Preempted):
        _train(tmp_path / "run", Toy())
    assert read_checkpoint(tmp_path / "run/checkpoints/last.pt").resume.scaler == {}
    monkeypatch.undo()

    _scaled_on_cpu(monkeypatch)
    _train(tmp_path / "run", Toy())
    scaler = read_checkpoint(tmp_path / "run/checkpoints/last.pt").resume.scaler
    assert scaler["scale"] == 65536.0  # a fresh scaler, no overflow since
    # Scaling by a power of two and unscaling again is exact in fp32: the same weights.
    straight, resumed = _weights(tmp_path / "straight"), _weights(tmp_path / "run")
    assert all(torch.equal(straight[name], resumed[name]) for name in straight)


def test_cuda_rng_states_of_more_gpus_than_are_visible_restore_those_that_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job that saw 2 GPUs saved 2 CUDA generator states; requeued where 1 is visible, the first
    is restored (the run trains on it) and nothing asks for a second device."""
    restored: dict[int, torch.Tensor] = {}

    def set_rng_state(state: torch.Tensor, device: int | str | torch.device = "cuda") -> None:
        index = device if isinstance(device, int) else (torch.device(device).index or 0)
        if index >= 1:  # torch.cuda.default_generators[index], with one device visible
            raise IndexError("list index out of range")
        restored[index] = state

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state", set_rng_state)
    monkeypatch.setattr(torch.cuda.random, "set_rng_state", set_rng_state)
    gpu_states = [torch.full((16,), 1, dtype=torch.uint8), torch.full((16,), 2, dtype=torch.uint8)]
    rng = {**capture_rng(), "cuda": gpu_states}
    resume = Resume(
        step=0, optimizer={}, scheduler={}, scaler={}, early_stopping={}, history=[], rng=rng, trainer={}
    )
    write_checkpoint(tmp_path / "last.pt", Checkpoint({}, 1, RunInfo(), resume=resume))

    restore_rng(read_checkpoint(tmp_path / "last.pt").resume.rng)
    assert list(restored) == [0] and torch.equal(restored[0], gpu_states[0])


# -- defect 2: bf16 only where the GPU computes it


def _on_gpu(monkeypatch: pytest.MonkeyPatch, capability: tuple[int, int], name: str) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)


def refused_before_a_run(flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """train.py's stderr for FAST + flags, which must exit 2 before a run directory is claimed."""
    assert train.main([*FAST, *flags, "--runs-root", str(tmp_path / "runs")]) == train.EXIT_USER_ERROR
    assert not (tmp_path / "runs").exists()
    return capsys.readouterr().err


def test_bf16_on_a_gpu_without_bf16_is_refused_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _on_gpu(monkeypatch, (7, 0), "Tesla V100-SXM2-32GB")
    err = refused_before_a_run(["--device", "cuda", "--training.amp", "bf16"], tmp_path, capsys)
    assert "--training.amp bf16 on Tesla V100-SXM2-32GB (compute capability 7.0)" in err
    assert "emulate" in err and "--training.amp auto" in err


@pytest.mark.parametrize(
    ("capability", "dtype", "scaler"),
    [((7, 0), torch.float16, True), ((8, 0), torch.bfloat16, False), ((9, 0), torch.bfloat16, False)],
    ids=["V100", "A100", "H100"],
)
def test_auto_picks_bf16_where_the_gpu_has_it_and_fp16_with_a_scaler_below(
    monkeypatch: pytest.MonkeyPatch, capability: tuple[int, int], dtype: torch.dtype, scaler: bool
) -> None:
    _on_gpu(monkeypatch, capability, "GPU")
    cfg, cuda = ExperimentConfig(), torch.device("cuda")
    assert optim.amp_dtype(cfg, cuda) == dtype
    assert optim.uses_grad_scaler(cfg, cuda) is scaler
    bf16 = ExperimentConfig(training_config=TrainingConfig(amp="bf16"))
    if capability >= (8, 0):
        optim.check_amp(bf16, cuda)  # accepted
    else:
        with pytest.raises(UserError, match=r"compute capability 7\.0"):
            optim.check_amp(bf16, cuda)
    cpu = torch.device("cpu")
    assert optim.amp_dtype(cfg, cpu) is None and not optim.uses_grad_scaler(cfg, cpu)  # auto: off on CPU


def test_fp16_with_device_auto_is_refused_where_no_gpu_is_visible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # configs refuses fp16 with --device cpu; with auto the device is known only when the run
    # starts (a job on a node whose GPUs are hidden, e.g. by CUDA_VISIBLE_DEVICES="").
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    err = refused_before_a_run(["--device", "auto", "--training.amp", "fp16"], tmp_path, capsys)
    assert "--training.amp fp16 with --device auto: this run resolved to cpu" in err
    assert "fp32 without saying so" in err and "CUDA_VISIBLE_DEVICES=''" in err
    _on_gpu(monkeypatch, (7, 0), "GPU")
    fp16 = ExperimentConfig(device="auto", training_config=TrainingConfig(amp="fp16"))
    optim.check_amp(fp16, torch.device("cuda"))  # accepted on a GPU (fp16 with a GradScaler)


# -- defect 7: what the GradScaler does, in the log


class Overflowing(Toy):
    """Toy whose gradients are infinite at the given global steps (its loss stays finite, so only
    the GradScaler can notice: it skips those steps and halves its scale)."""

    def __init__(self, overflow_at: set[int]) -> None:
        super().__init__()
        self.overflow_at = overflow_at

    def step(self, epoch: int, step: int, *args: Any) -> None:
        hook = None
        if self.global_step in self.overflow_at:
            hook = self.model[1].weight.register_hook(lambda grad: grad * math.inf)
        super().step(epoch, step, *args)
        if hook is not None:
            hook.remove()


def test_steps_the_grad_scaler_skips_and_its_scale_are_logged_per_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _scaled_on_cpu(monkeypatch)
    overflow = {2, 7, 8}  # 6 steps per epoch: one skip in epoch 0, two in epoch 1
    straight = _train(tmp_path / "straight", Overflowing(overflow))
    assert [(h["skipped_steps"], h["grad_scale"]) for h in straight["history"]] == [
        (1, 32768.0),
        (2, 8192.0),
        (0, 8192.0),
    ]
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert "grad_scale 32768  skipped_steps 1" in lines[0] and "skipped_steps 2" in lines[1]
    events = EventAccumulator(str(tmp_path / "straight"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("amp/skipped_steps")] == [(0, 1), (1, 2), (2, 0)]
    assert [e.value for e in events.Scalars("amp/grad_scale")] == [32768.0, 8192.0, 8192.0]

    # Killed within epoch 1 after its two skips: the count and the scale are part of last.pt.
    _signal_at(monkeypatch, Overflowing, (1, 3))
    with pytest.raises(skeleton.Preempted):
        _train(tmp_path / "run", Overflowing(overflow))
    assert read_checkpoint(tmp_path / "run/checkpoints/last.pt").resume.skipped_steps == 2
    monkeypatch.undo()
    _scaled_on_cpu(monkeypatch)
    resumed = _train(tmp_path / "run", Overflowing(overflow))
    assert resumed["history"] == straight["history"]
