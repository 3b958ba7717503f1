"""The `python train.py --modality X` line of each modality (README, docs/training.md) gives a fair first
result: a test F1 well above flagging everything, on the synthetic data at small sizes (the
generators' sizes and the epochs are the only changes from the command the docs print)."""

import json
from pathlib import Path

import pytest

from kdgat.config.codec import load_yaml
from kdgat.config.presets import preset_name
from tests.helpers import run_train

SMALL = {
    "automotive": [
        "--dataset-config.automotive.synthetic-train-frames", "30000",
        "--dataset-config.automotive.synthetic-test-frames", "9000",
    ],
    "internet": [],  # its default 8,000 flows: fewer leave too few attack windows to learn from
    "watertreatment": [
        "--dataset-config.watertreatment.synthetic-train-hours", "600",
        "--dataset-config.watertreatment.synthetic-val-hours", "400",
        "--dataset-config.watertreatment.synthetic-test-hours", "400",
    ],
}  # fmt: skip
MARGIN = 0.25  # "well above the floor": F1 points above flagging everything


@pytest.mark.slow
@pytest.mark.parametrize("modality", list(SMALL))
def test_the_default_run_of_each_modality_beats_flagging_everything(tmp_path: Path, modality: str) -> None:
    result = run_train(
        ["--modality", modality, "--device", "cpu", "--training.epochs", "4", *SMALL[modality]], tmp_path
    )
    assert result.returncode == 0, result.stderr
    run_dir = next((tmp_path / "runs").rglob("run_000"))
    test = json.loads((run_dir / "metrics.json").read_text())["test"]
    floor = test["flag_all"]["f1"]
    assert test["f1"] >= floor + MARGIN, (
        modality,
        test["f1"],
        floor,
        preset_name(load_yaml(run_dir / "config.yaml")),
    )
    assert f"flagging every window: f1 {floor:.4f}" in result.stdout  # the floor is printed beside it
