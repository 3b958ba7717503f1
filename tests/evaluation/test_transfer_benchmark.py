"""benchmarks/transfer.py --by-capture: each capture's figures at the row's threshold, so a
shortfall on a target car can be traced to the capture it comes from."""

import sys
from pathlib import Path

import numpy as np
import torch

import configs
from kdgat.scoring.target import Scored
from tests.helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from transfer import by_capture, capture_rows


class Windows:
    """What Scored reads of a file's graphs: their count and labels."""

    def __init__(self, labels: list[int]) -> None:
        self.y = torch.tensor(labels)

    def __len__(self) -> int:
        return len(self.y)


def scored(files: list[tuple[str, list[int], list[float]]]) -> Scored:
    cfg = configs.ExperimentConfig(learning_type="classifier", model_architecture="GAT")
    held = [(name, Windows(labels), np.asarray(scores), {}) for name, labels, scores in files]
    return Scored(Path("run"), "set01", cfg, 0.5, held, None, None)  # type: ignore[arg-type]


def test_each_capture_is_figured_at_the_threshold_given() -> None:
    captures = by_capture(
        scored(
            [
                ("ranked/attack.csv", [0, 0, 0, 1, 1], [0.1, 0.2, 0.6, 0.7, 0.4]),
                ("benign.csv", [0, 0, 0, 0], [0.1, 0.9, 0.2, 0.3]),
                ("empty.csv", [], []),
            ]
        ),
        threshold=0.5,
    )
    assert list(captures) == ["ranked/attack.csv", "benign.csv"]  # a capture without windows is left out
    attack = captures["ranked/attack.csv"]
    assert attack["windows"] == 5 and attack["attacks"] == 2
    assert attack["recall"] == 0.5 and attack["benign_fpr"] == 1 / 3
    assert attack["auroc"] == 5 / 6  # of the 6 (attack, benign) pairs, 0.4 < 0.6 is the one misordered
    benign = captures["benign.csv"]
    assert benign["auroc"] is None and benign["recall"] is None and benign["benign_fpr"] == 0.25


def test_capture_rows_average_each_capture_over_the_seeds() -> None:
    seeds = [
        {"captures": by_capture(scored([("a.csv", [0, 1], [0.1, s])]), threshold=0.5)} for s in (0.9, 0.05)
    ]
    header, row = capture_rows({("set01", "GAT", "default", "set_04"): seeds})
    assert header.split()[:5] == ["source", "arch", "variant", "target", "capture"]
    assert row.split() == [
        *("set01", "GAT", "default", "set_04", "a.csv", "1/2"),
        "0.5000+-0.5000",  # AUROC 1 and 0
        "0.5000+-0.5000",  # recall 1 and 0
        "0.0000+-0.0000",
    ]
