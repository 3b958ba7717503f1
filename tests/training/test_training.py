"""The training skeleton on a toy trainer (exact resume after a real signal, the NaN guard before a
checkpoint, old checkpoints refused), the device-side loss log, the progress bar, and a quiet import.
Every test here runs in seconds; the real trainers' kill-and-resume tests are in tests/e2e/test_train.py
(graph models) and tests/stages/test_stages.py (the DQN agent)."""

import io
import math
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.tensorboard import SummaryWriter

from configs import ExperimentConfig, TrainingConfig
from kdgat.common.errors import TrainingDiverged, UserError
from kdgat.common.progress import progress_bar
from kdgat.training import skeleton
from kdgat.training.checkpoint import RunInfo, read_checkpoint
from kdgat.training.loss_log import LossLog, new_sums
from tests.helpers import REPO


class Toy(skeleton.Trainer):
    """Linear regression on fixed random data; dropout makes the steps consume the global RNG,
    so an inexact resume (wrong RNG state, order or step) changes the final weights."""

    def __init__(self, n: int = 96, poison_at: int | None = None) -> None:
        data = torch.Generator().manual_seed(1)
        self.x, self.y = torch.randn(n, 4, generator=data), torch.randn(n, generator=data)
        torch.manual_seed(0)  # as the stages do before building a model
        self.model = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(4, 1))
        self.device = torch.device("cpu")
        self.global_step, self.poison_at = 0, poison_at
        self.sums = new_sums()
        self.losses = LossLog("losses/train_step", interval=4)

    def parameters(self) -> list[torch.nn.Parameter]:
        return list(self.model.parameters())

    def batches(self, epoch: int) -> list[torch.Tensor]:
        return list(torch.randperm(len(self.y), generator=skeleton.epoch_generator(0, epoch)).split(16))

    def step(self, epoch: int, step: int, index: torch.Tensor, opt, writer: SummaryWriter) -> None:
        loss = ((self.model(self.x[index]).squeeze(1) - self.y[index]) ** 2).mean()
        if self.global_step == self.poison_at:
            loss = loss * float("nan")
        opt.step(loss)
        self.losses.record(loss, {"mse": loss}, len(index), self.global_step + 1, f"step {self.global_step}")
        self.global_step += 1
        if self.losses.due:
            self.losses.flush(writer, self.sums)

    def sync(self, writer: SummaryWriter) -> None:
        self.losses.flush(writer, self.sums)

    def end_epoch(self, epoch: int, writer: SummaryWriter) -> skeleton.EpochEnd:
        train_loss = self.sums["loss_sum"] / max(self.sums["graphs"], 1)
        self.sums = new_sums()
        return skeleton.EpochEnd(
            (-train_loss,), {"train_loss": train_loss}, {}, f"train_loss {train_loss:.4f}"
        )

    def state_dict(self) -> dict[str, Any]:
        return {"global_step": self.global_step, "partial": self.sums}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.global_step, self.sums = state["global_step"], state["partial"]


CFG = ExperimentConfig(training_config=TrainingConfig(epochs=3, patience=10, lr=0.05))


def _train(run_dir: Path, trainer: Toy) -> dict[str, Any]:
    run_dir.mkdir(parents=True, exist_ok=True)
    return skeleton.train(CFG, trainer, run_dir, RunInfo(upstream={"teacher_run": "x/run_000"}))


def test_a_signal_mid_epoch_saves_exact_state_and_the_resumed_run_ends_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    straight = _train(tmp_path / "straight", Toy())
    expected = read_checkpoint(tmp_path / "straight/checkpoints/last.pt")

    original = Toy.step

    def step_then_signal(self: Toy, epoch: int, step: int, *args: Any) -> None:
        original(self, epoch, step, *args)
        if (epoch, step) == (1, 2):  # mid-epoch, between two flushes of the loss log
            signal.raise_signal(signal.SIGUSR2)  # a real signal: the skeleton's handler receives it

    monkeypatch.setattr(Toy, "step", step_then_signal)
    with pytest.raises(skeleton.Preempted, match="epoch 1, step 3") as stop:
        _train(tmp_path / "killed", Toy())
    assert stop.value.signals == {signal.SIGUSR2}
    saved = read_checkpoint(tmp_path / "killed/checkpoints/last.pt")
    assert (saved.epoch, saved.resume.step, saved.resume.trainer["global_step"]) == (1, 3, 9)
    assert saved.resume.trainer["partial"]["graphs"] == 3 * 16  # the epoch's sums so far were read back
    monkeypatch.setattr(Toy, "step", original)
    resumed = _train(tmp_path / "killed", Toy())
    final = read_checkpoint(tmp_path / "killed/checkpoints/last.pt")
    for name, value in expected.model.items():
        assert torch.equal(value, final.model[name]), name
    assert resumed["history"] == straight["history"]
    for name in ("best", "last"):  # plain data: no allowlist needed
        torch.load(tmp_path / f"killed/checkpoints/{name}.pt", weights_only=True)
    best = read_checkpoint(tmp_path / "killed/checkpoints/best.pt")
    assert final.info.upstream == best.info.upstream == {"teacher_run": "x/run_000"}
    assert best.resume is None and best.monitor == [-straight["history"][best.epoch]["train_loss"]]
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"] * 2  # 3 straight, 1 + 2 resumed


def test_a_nan_step_is_named_and_never_checkpointed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = Toy.step

    def step_then_signal(self: Toy, epoch: int, step: int, *args: Any) -> None:
        original(self, epoch, step, *args)
        if self.global_step == 9:  # epoch 1, after its step 2
            signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(Toy, "step", step_then_signal)
    # NaN at step 7 (epoch 1, step 1). The log is read back every 4 steps of an epoch, so the guard
    # first sees it when the signal after step 8 asks for a checkpoint, whose weights are NaN by then.
    with pytest.raises(TrainingDiverged, match=r"the loss became nan at step 7; loss terms: mse=nan"):
        _train(tmp_path / "run", Toy(poison_at=7))
    last = tmp_path / "run/checkpoints/last.pt"
    assert read_checkpoint(last).epoch == 1  # the epoch-0 checkpoint, finite
    assert all(torch.isfinite(v).all() for v in read_checkpoint(last).model.values())


def test_a_checkpoint_without_the_skeletons_keys_is_refused_with_the_rerun_command(tmp_path: Path) -> None:
    (tmp_path / "run/checkpoints").mkdir(parents=True)
    torch.save({"model": {}, "optimizer": {}, "episode": 2, "epoch": 1}, tmp_path / "run/checkpoints/last.pt")
    with pytest.raises(UserError, match=r"older kdgat.*scheduler.*python train.py --config .*config.yaml"):
        _train(tmp_path / "run", Toy())


def test_the_loss_log_reads_back_exactly_what_per_step_item_calls_gave(tmp_path: Path) -> None:
    log, sums, expected = LossLog("t", interval=1000), new_sums(), 0.0
    values = torch.rand(50, generator=torch.Generator().manual_seed(0))
    for i, value in enumerate(values):
        loss = value * 3
        log.record(loss, {"a": value, "b": value * 2}, weight=7, tb_step=i, where=f"step {i}")
        expected += loss.item() * 7
    assert len(log.pending) == 50  # nothing read back yet
    with SummaryWriter(str(tmp_path)) as writer:
        assert log.flush(writer, sums) == (values[-1] * 3).item()
    assert sums["loss_sum"] == expected and sums["graphs"] == 350  # equal, not approximately
    assert sums["terms"]["b"] == sum(v.item() * 2 * 7 for v in values)
    assert not log.pending


def test_the_loss_log_names_the_first_non_finite_step_of_an_interval(tmp_path: Path) -> None:
    log = LossLog("t")
    for i, value in enumerate([1.0, 2.0, math.inf, float("nan")]):
        log.record(torch.tensor(value), {"ce": torch.tensor(value / 2)}, 1, i, f"epoch 0, step {i}")
    with SummaryWriter(str(tmp_path)) as writer, pytest.raises(TrainingDiverged) as err:
        log.flush(writer)
    assert "the loss became inf at epoch 0, step 2; loss terms: ce=inf" in str(err.value)
    assert "--training.lr" in str(err.value)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_draws_on_a_terminal_and_nowhere_else() -> None:
    terminal, log = _Terminal(), io.StringIO()
    for stream in (terminal, log):
        bar = progress_bar(640, unit="graph", desc="epoch 1/8", file=stream)
        for step in range(10):
            bar.update(64)
            bar.set_postfix_str(f"batch {step + 1}/10")
        bar.close()
    assert "epoch 1/8" in terminal.getvalue() and "graph/s" in terminal.getvalue()
    assert "batch" in terminal.getvalue()
    assert log.getvalue() == ""


@pytest.mark.slow
def test_importing_kdgat_warns_nothing() -> None:
    """torch_geometric's import-time torch.jit.script DeprecationWarning is filtered at its one
    source (kdgat/models/pyg.py); -W error turns any other import-time warning into a failure."""
    code = "import kdgat.experiment, kdgat.scoring.evaluate, kdgat.stages.dqn_agent, kdgat.launcher.job"
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
