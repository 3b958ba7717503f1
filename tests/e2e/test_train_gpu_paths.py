"""train.py's CUDA-facing behaviour, end to end on the CPU (issue 30, defects 5 and 8): cuBLAS is made
repeatable before anything can touch CUDA, and the scores in metrics.json and predictions.csv are the
fp32 scores `python -m kdgat.evaluate` computes, whatever autocast the training steps ran under."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from kdgat.config.codec import load_yaml
from kdgat.config.resolve import resolve
from kdgat.data.dataset import load_splits
from kdgat.data.graphset import gather_graphs
from kdgat.runs.store import Run
from tests.e2e.test_train import run_dir_from
from tests.helpers import FAST, REPO, run_train

# Runs train.py with the device check and the training loop wrapped: each records the
# CUBLAS_WORKSPACE_CONFIG it sees; training stops before its first step.
PROBE = """
import json, os, sys
import kdgat.experiment as experiment
from kdgat.training import skeleton
import train

seen = {}
resolve_device = experiment.resolve_device

def device_check(cfg):
    seen["before_cuda"] = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    return resolve_device(cfg)

def training(*args, **kwargs):
    seen["training"] = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    print("SEEN " + json.dumps(seen), flush=True)
    raise SystemExit(0)

experiment.resolve_device, skeleton.train = device_check, training
train.main(sys.argv[1:])
"""


@pytest.mark.parametrize("given", [None, ":16:8"], ids=["unset", "user-set"])
def test_cublas_is_made_repeatable_before_cuda_can_start(tmp_path: Path, given: str | None) -> None:
    env = {key: value for key, value in os.environ.items() if key != "CUBLAS_WORKSPACE_CONFIG"}
    if given is not None:
        env["CUBLAS_WORKSPACE_CONFIG"] = given
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *FAST, "--runs-root", str(tmp_path / "runs")],
        cwd=REPO,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    line = next((x for x in result.stdout.splitlines() if x.startswith("SEEN ")), None)
    assert line is not None, result.stdout + result.stderr
    expected = given or ":4096:8"
    assert json.loads(line.removeprefix("SEEN ")) == {"before_cuda": expected, "training": expected}


def _predicted_scores(run_dir: Path) -> np.ndarray:
    with open(run_dir / "predictions.csv", newline="") as f:
        return np.array([float(row["score"]) for row in csv.DictReader(f)])


def _fp32_scores(run_dir: Path) -> np.ndarray:
    """The best model's attack probability of every test window, computed here at full precision
    with the run's own batches (no autocast anywhere)."""
    cfg = resolve(load_yaml(run_dir / "config.yaml"))
    model = Run.open(run_dir).model
    scores = []
    with torch.no_grad():
        for graphs in load_splits(cfg).test.values():
            for index in torch.arange(len(graphs)).split(cfg.training_config.batch_size):
                logits = model(gather_graphs(graphs, index)).float()
                scores.append(torch.softmax(logits, -1)[:, 1].double())
    return torch.cat(scores).numpy()


@pytest.mark.slow
def test_a_bf16_run_reports_the_fp32_scores_evaluate_gives(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    trained = run_train(
        [*FAST, "--training.amp", "bf16", "--training.epochs", "2", "--dataset-config.cache-dir", str(cache)],
        cwd=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr
    run_dir = tmp_path / run_dir_from(trained.stdout)
    assert json.loads((run_dir / "status.json").read_text())["amp"] == "bf16"
    # Every window's score in predictions.csv is the full-precision score of the same weights.
    predicted, fp32 = _predicted_scores(run_dir), _fp32_scores(run_dir)
    assert len(predicted) == len(fp32) > 0
    assert np.array_equal(predicted, fp32), f"{np.sum(predicted != fp32)} of {len(fp32)} windows differ"

    # And kdgat.evaluate, rescoring the same test captures, gives metrics.json's test figures.
    test_folder = next(cache.glob("synthetic/*/test_01_known_vehicle_known_attack"))
    evaluate = ["-m", "kdgat.evaluate", str(run_dir), "--data-root", str(test_folder), "--name", "own"]
    evaluated = subprocess.run(
        [sys.executable, *evaluate],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())["test"]
    evaluation = json.loads((run_dir / "eval_own.json").read_text())["all"]
    for key in ("n", "auroc", "f1", "precision", "recall", "benign_fpr", "confusion_matrix"):
        assert evaluation[key] == metrics[key], key
