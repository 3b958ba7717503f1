"""A small run tree with everything the figures and the report read: teacher and tiny students
(without and with distillation, two seeds), each with predictions.csv, real TensorBoard event files
(SummaryWriter) and a per-epoch history; a distilled student's lineage to its teacher; a transfer
result; and a failed run. A plain module (the tests that use it make their own fixtures)."""

import json
from pathlib import Path

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from kdgat.evaluation.predictions import COLUMNS
from tests.results.test_results import make_run

WINDOWS = 300
# (model_size, distillation, seed, test F1)
RUNS = (
    ("teacher", "no", 0, 0.95),
    ("tiny", "no", 0, 0.80),
    ("tiny", "no", 1, 0.84),
    ("tiny", "standard", 0, 0.86),
    ("tiny", "standard", 1, 0.83),
)


def write_predictions(run_dir: Path, seed: int, separation: float) -> None:
    rng = np.random.default_rng(seed)
    label = (rng.random(WINDOWS) < 0.3).astype(int)
    score = np.round(np.clip(rng.normal(0.3 + separation * label, 0.2), 0, 1), 3)
    types = np.where(label == 1, np.where(rng.random(WINDOWS) < 0.5, "dos", "fuzzing"), "benign")
    lines = [",".join(COLUMNS)]
    for i in range(WINDOWS):
        lines.append(
            f"test_01,capture.csv,{i},{100 * i},{100 * i + 100},,,{label[i]},{types[i]},{float(score[i])!r},"
            f"{int(score[i] >= 0.5)}"
        )
    (run_dir / "predictions.csv").write_text("\n".join(lines) + "\n")


def write_training(run_dir: Path, f1: float, epochs: int = 4) -> None:
    writer = SummaryWriter(str(run_dir))
    history = []
    for epoch in range(epochs):
        train, val, val_f1 = 1.0 / (epoch + 1), 1.1 / (epoch + 1), f1 * (1 - 0.3 / (epoch + 1))
        writer.add_scalar("losses/train", train, epoch)
        writer.add_scalar("losses/val", val, epoch)
        writer.add_scalar("charts/val_f1", val_f1, epoch)
        history.append(
            {"epoch": epoch, "train_loss": train, "val_loss": val, "val_f1": val_f1, "val_auroc": 0.9}
        )
    writer.close()
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics["history"] = history
    metrics["test"]["mcc"] = f1 - 0.1
    floor = {"precision": 0.3, "recall": 1.0, "f1": 0.4615, "accuracy": 0.3, "benign_fpr": 1.0}
    metrics["test"]["flag_all"] = floor
    metrics_path.write_text(json.dumps(metrics, indent=2))


def write_curve_tree(root: Path) -> dict[str, Path]:
    """The tree under root; returns run dirs by 'size distillation seed'."""
    made: dict[str, Path] = {}
    for size, distillation, seed, f1 in RUNS:
        evals = {"hcrlch": f1 - 0.2} if size == "teacher" else None
        run_dir = make_run(
            root,
            model_size=size,
            distillation=distillation,
            seed=seed,
            f1=f1,
            params=200_000 if size == "teacher" else 3_000,
            evals=evals,
        )
        write_predictions(run_dir, seed, 0.2 + f1 / 2)
        write_training(run_dir, f1)
        made[f"{size} {distillation} {seed}"] = run_dir
    teacher = made["teacher no 0"]
    for key, run_dir in made.items():
        if "standard" in key:
            metrics = json.loads((run_dir / "metrics.json").read_text())
            metrics["upstream"] = {"teacher_run": str(teacher.relative_to(root))}
            (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    made["failed"] = make_run(
        root, model_size="student", state="failed", error="TrainingDiverged: loss is NaN", write_metrics=False
    )
    return made
