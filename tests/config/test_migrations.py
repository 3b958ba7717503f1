"""A config.yaml written by the code of 2026-11 (flat dataset_config CAN knobs, prefixed
learning_config knobs, training_config.num_workers) still loads, reruns and resumes."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kdgat.config.codec import from_dict, load_yaml, to_dict, to_yaml
from kdgat.config.resolve import resolve
from tests.helpers import FIXTURES, REPO, run_train

OLD = FIXTURES / "config_2026-11_synthetic.yaml"
RUN_PARENT = Path("runs/automotive/synthetic/classifier/GAT/tiny/no/all_samples")


def test_old_layout_loads_into_todays_fields() -> None:
    cfg = resolve(load_yaml(OLD))
    assert cfg.learning_config.kd.alpha == 0.5
    assert cfg.learning_config.dqn.batch_size == 64
    assert cfg.learning_config.curriculum.ramp_epochs == 2
    assert cfg.learning_config.dqn.fixed_alpha == 0.5 and cfg.learning_config.vgae.kl_weight == 0.01
    assert cfg.training_config.torch_threads == 1
    assert cfg.dataset_config.automotive.synthetic_train_frames == 30_000
    # Written back in today's layout, it round-trips.
    assert from_dict(to_dict(cfg)) == cfg
    text = to_yaml(cfg)
    assert "kd_alpha" not in text and "num_workers" not in text and "torch_threads: 1" in text


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints/last.pt", weights_only=True)["model"]


@pytest.mark.slow
def test_old_config_reruns_and_an_old_run_dir_resumes_to_identical_weights(tmp_path: Path) -> None:
    straight = run_train(["--config", str(OLD), "--runs-root", "straight"], cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr
    straight_dir = tmp_path / "straight" / RUN_PARENT.relative_to("runs") / "run_000"
    assert "kd:" in (straight_dir / "config.yaml").read_text()  # the rerun records today's layout

    process = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), "--config", str(OLD)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    run_dir = tmp_path / RUN_PARENT / "run_000"
    last = run_dir / "checkpoints" / "last.pt"
    for line in process.stdout:  # the first epoch has ended and been checkpointed
        if line.startswith("epoch 1/"):
            break
    assert process.poll() is None and last.is_file(), "training ended before it could be stopped"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 75, stderr
    # The run directory as the 2026-11 code would have left it: its config.yaml in the old layout.
    (run_dir / "config.yaml").write_text(OLD.read_text())
    resumed = run_train(["--resume", str(run_dir)], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run_dir / "status.json").read_text())["state"] == "finished"
    mine, theirs = _weights(run_dir), _weights(straight_dir)
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test"] == json.loads((straight_dir / "metrics.json").read_text())["test"]


def test_an_old_run_dir_shares_todays_columns_in_results(tmp_path: Path) -> None:
    from kdgat import results
    from kdgat.runs.store import write_config_json

    run_dir = tmp_path / RUN_PARENT / "run_000"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_bytes(OLD.read_bytes())
    renamed = {
        "learning_config.kd_alpha": "learning_config.kd.alpha",
        "learning_config.fixed_alpha": "learning_config.dqn.fixed_alpha",
        "training_config.num_workers": "training_config.torch_threads",
        "dataset_config.window": "dataset_config.automotive.window",
    }
    for source in ("config.yaml", "config.json"):  # PyYAML fallback, then the flat file
        if source == "config.json":
            write_config_json(run_dir)
            assert "kd_alpha" not in (run_dir / "config.json").read_text()
        row = results.load_runs(tmp_path).iloc[0]
        for old, new in renamed.items():
            assert old not in row.index and new in row.index, (source, old)
        assert row["learning_config.kd.alpha"] == 0.5 and row["training_config.torch_threads"] == 1
        assert row["dataset_config.automotive.window"] == 100
