"""benchmarks/adaptive_threshold.py's replay: an adaptive threshold left free is taught by a slow
attack to stop alarming; the guarded one may only fall below the calibrated threshold, so it flags
the attack as soon as it crosses it."""

import sys
from pathlib import Path

import numpy as np
import torch

import configs
from kdgat.scoring.evaluate import decision_threshold
from kdgat.scoring.target import Scored
from tests.helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from adaptive_threshold import replay


class Windows:
    """What Scored reads of a file's graphs: their count and labels."""

    def __init__(self, labels: np.ndarray) -> None:
        self.y = torch.from_numpy(labels)

    def __len__(self) -> int:
        return len(self.y)


def logistic(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def scored_ramp() -> Scored:
    """A GAT run's scores on a car: benign calibration windows around logit -4, then benign
    windows like them and a slow attack whose scores climb from below the calibrated threshold
    to far above it."""
    rng = np.random.default_rng(0)
    calibration = logistic(rng.normal(-4.0, 0.3, size=200))
    benign = logistic(rng.normal(-4.0, 0.3, size=1000))
    attack = logistic(np.linspace(-3.6, 3.0, 4000))
    scores = np.concatenate([benign, attack])
    labels = np.concatenate([np.zeros(1000), np.ones(4000)]).astype(np.int64)
    cfg = configs.ExperimentConfig(learning_type="classifier", model_architecture="GAT")
    files = [("car", Windows(labels), scores, {})]
    return Scored(Path("run"), "hcrlsa", cfg, 0.5, files, None, None, calibration)  # type: ignore[arg-type]


def test_the_guard_keeps_a_slow_attack_from_lifting_the_threshold() -> None:
    scored = scored_ramp()
    static, _ = decision_threshold(scored)
    scores, attack = scored.scores, scored.y == 1
    crossed = attack & (scores >= static)
    assert 0.5 < crossed.sum() / attack.sum() < 1.0  # the ramp starts below the calibrated threshold
    free = replay(scored, every=50, pool_size=2000, guarded=False)
    guarded = replay(scored, every=50, pool_size=2000, guarded=True)
    # Left free, the attack's own windows, judged benign while still low, lift the threshold
    # ahead of it: most of what the static threshold flags goes unflagged.
    assert free[crossed].mean() < 0.5
    # Guarded, every window above the calibrated threshold is flagged, and the benign windows
    # before the attack no more than by the static threshold.
    assert guarded[crossed].all()
    assert guarded[~attack].sum() <= (scores[~attack] >= static).sum() + 5
