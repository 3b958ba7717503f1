"""best.pt and last.pt hold only tensors and plain data: they load with weights_only=True, the RNG
states round-trip exactly, checkpoints written before the typed format still load (a tiny GAT run
from 2026-12 in tests/fixtures), and a checkpoint holding a pickled object is refused, never run."""

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from kdgat.cli.evaluate import main as evaluate_main
from kdgat.common.errors import UserError
from kdgat.config.codec import load_yaml
from kdgat.config.resolve import resolve
from kdgat.data.automotive.synthetic import synthetic_root
from kdgat.models import build_from_dims
from kdgat.runs.store import Run
from kdgat.training import skeleton
from kdgat.training.checkpoint import (
    Checkpoint,
    CheckpointError,
    Resume,
    RunInfo,
    capture_rng,
    read_best,
    read_checkpoint,
    restore_rng,
    write_checkpoint,
)
from kdgat.training.optim import Optimisation
from tests.helpers import REPO

OLD_RUN = REPO / "tests/fixtures/run_2026-12_gat_tiny"  # train.py --model-size tiny, 1 epoch, at 38ebf10


def _draws() -> tuple:
    return random.random(), np.random.rand(), np.random.randn(), torch.rand(2).tolist()


def _resume(**trainer) -> Resume:
    history = [{"epoch": 0, "f1": np.float64(0.5)}]
    return Resume(0, {}, {}, {}, {"patience": 1}, history, capture_rng(), trainer)


def test_a_checkpoint_is_plain_data_and_its_rng_states_round_trip(tmp_path: Path) -> None:
    np.random.randn()  # leaves a cached gaussian in numpy's legacy state: it must survive too
    info = RunInfo(
        config={"dataset": "synthetic"}, vocabulary={5: 0, 9: 1}, upstream={"gat_run": "a/run_000"}
    )
    written = Checkpoint({"w": torch.ones(2)}, 3, info, resume=_resume(buffer={"states": torch.zeros(4, 2)}))
    expected = _draws()
    write_checkpoint(tmp_path / "last.pt", written)
    _draws()
    raw = torch.load(tmp_path / "last.pt", weights_only=True)  # no allowlist needed
    assert raw["format"] == "kdgat-checkpoint" and raw["resume"]["history"][0]["f1"] == 0.5
    assert type(raw["resume"]["history"][0]["f1"]) is float  # numpy scalars are written as Python numbers
    read = read_checkpoint(tmp_path / "last.pt")
    assert read.info == info and read.epoch == 3 and torch.equal(read.model["w"], torch.ones(2))
    assert torch.equal(read.resume.trainer["buffer"]["states"], torch.zeros(4, 2))
    restore_rng(read.resume.rng)
    assert _draws() == expected


def test_writing_something_a_safe_load_would_refuse_fails_at_write_time(tmp_path: Path) -> None:
    bad = Checkpoint({}, 0, RunInfo(), resume=_resume(scaler=np.zeros(3)))
    where = r"checkpoint\['resume'\]\['trainer'\]\['scaler'\]"
    with pytest.raises(TypeError, match=where + " is a numpy.ndarray"):
        write_checkpoint(tmp_path / "last.pt", bad)
    assert not (tmp_path / "last.pt").exists()


def test_the_checkpoints_written_before_the_typed_format_still_load(tmp_path: Path) -> None:
    best, last = read_best(OLD_RUN), read_checkpoint(OLD_RUN / "checkpoints/last.pt")
    assert best.resume is None and best.epoch == 0 and best.info.input_dims["num_ids"] == 25
    assert len(best.info.vocabulary) == 24 and best.info.config["model_architecture"] == "GAT"
    assert (
        last.epoch == 1
        and last.resume.step == 0
        and set(last.resume.trainer)
        == {
            "task_trainable",
            "global_step",
            "partial",
        }
    )
    # The old numpy RNG state (an ndarray in a tuple) becomes the same state in plain data.
    with torch.serialization.safe_globals(
        [np._core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]
    ):
        native = torch.load(OLD_RUN / "checkpoints/last.pt", weights_only=True)["rng"]
    np.random.set_state(native["numpy"])
    random.setstate(native["python"])
    torch.set_rng_state(native["torch"])
    expected = _draws()
    restore_rng(last.resume.rng)
    assert _draws() == expected
    # And the rest of the training state still fits its model and optimiser.
    cfg = Run.open(OLD_RUN).config
    model = build_from_dims(cfg, last.info.input_dims)
    model.load_state_dict(last.model)
    Optimisation(cfg, list(model.parameters()), torch.device("cpu")).load_state_dict(vars(last.resume))
    skeleton.EarlyStopping(**last.resume.early_stopping)


def test_an_old_run_directory_still_evaluates_to_the_figures_it_gave(tmp_path: Path) -> None:
    run_dir = tmp_path / "run_000"
    shutil.copytree(OLD_RUN, run_dir)
    assert sum(p.numel() for p in Run.open(run_dir).model.parameters()) > 0
    root = synthetic_root(tmp_path / "cache", 30000, 9000, 7)  # the fixture's data (synthetic_seed 7)
    folder = root / "test_01_known_vehicle_known_attack"
    assert evaluate_main([str(run_dir), "--data-root", str(folder), "--name", "old"]) == 0
    result = json.loads((run_dir / "eval_old.json").read_text())["all"]
    # What the code that wrote the fixture printed for the same run and data (at 38ebf10).
    assert result["confusion_matrix"] == {"fn": 19, "fp": 0, "tn": 63, "tp": 8}
    assert result["auroc"] == pytest.approx(0.9488536155202821, abs=1e-12)


class Payload:
    """What an attacker's checkpoint might hold: an object whose unpickling runs code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


class Custom:
    """A harmless instance of a class: still not plain data, still refused."""


@pytest.mark.parametrize("kind", ["reduce", "instance"])
def test_a_checkpoint_holding_a_pickled_object_is_refused_and_never_run(tmp_path: Path, kind: str) -> None:
    run_dir = tmp_path / "run_000"
    shutil.copytree(OLD_RUN, run_dir)
    marker = tmp_path / "code-ran"
    payload = Payload(marker) if kind == "reduce" else Custom()
    best = torch.load(OLD_RUN / "checkpoints/best.pt", weights_only=True)
    torch.save({**best, "vocabulary": payload}, run_dir / "checkpoints/best.pt")
    torch.save({"model": {}, "epoch": 0, "resume": payload}, run_dir / "checkpoints/last.pt")
    named = "io.open" if kind == "reduce" else "tests.training.test_checkpoint.Custom"

    with pytest.raises(CheckpointError, match=rf"refused: it holds pickled Python objects \({named}\)"):
        _ = Run.open(run_dir).best
    assert issubclass(CheckpointError, UserError)
    with pytest.raises(UserError, match="could run code"):
        skeleton.load_last(run_dir / "checkpoints/last.pt", torch.device("cpu"))
    result = subprocess.run(
        [sys.executable, "-m", "kdgat.evaluate", str(run_dir), "--data-root", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert "error: " in result.stderr and named in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()


def test_a_truncated_or_newer_checkpoint_is_a_user_error(tmp_path: Path) -> None:
    data = (OLD_RUN / "checkpoints/best.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cannot be read as a checkpoint"):
        read_checkpoint(tmp_path / "cut.pt")
    torch.save({"format": "kdgat-checkpoint", "version": 99, "model": {}}, tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match="newer kdgat"):
        read_checkpoint(tmp_path / "new.pt")


def test_the_fixture_is_what_it_says() -> None:
    """The old-format fixture stays small and old: no "format" key, numpy in its last.pt."""
    assert sum(p.stat().st_size for p in OLD_RUN.rglob("*") if p.is_file()) < 200_000
    assert "format" not in torch.load(OLD_RUN / "checkpoints/best.pt", weights_only=True)
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(OLD_RUN / "checkpoints/last.pt")
    assert "numpy.ndarray" in unsafe
    assert resolve(load_yaml(OLD_RUN / "config.yaml")).model_architecture == "GAT"
