"""Train and evaluate every KD-GAT stage on real captures and print one table.

    python benchmarks/accuracy.py [--data ../shared/data] [--runs-root DIR] [--epochs N] [--size student]

Datasets: HCRL Survival (hcrl_sa; test on test_01_known_vehicle_known_attack) and
can-train-and-test set_01 (test_01). Stages, in dependency order: VGAE (normals_only), GAT
(all_samples), GAT (curriculum_classifier, driven by that VGAE), DQN fusion (of that VGAE and the
all_samples GAT), with the DQN's own baselines (GAT alone, VGAE alone, fixed-alpha average).
"""

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import configs  # noqa: E402
from kdgat.experiment import run_experiment  # noqa: E402

DATASETS = {
    "hcrlsa": ("hcrl_sa", ("test_01_known_vehicle_known_attack",)),
    "set01": ("can_train_and_test", ("test_01_known_vehicle_known_attack",)),
}
STAGES = (
    ("VGAE normals_only", "unsupervised", "VGAE", "normals_only"),
    ("GAT all_samples", "classifier", "GAT", "all_samples"),
    ("GAT curriculum", "classifier", "GAT", "curriculum_classifier"),
    ("DQN fusion", "fusion", "DQN", "all_samples"),
)


def row(dataset: str, stage: str, test: dict, seconds: float) -> str:
    def fmt(value: float | None) -> str:
        return "  n/a " if value is None else f"{value:.4f}"

    return (
        f"| {dataset:7s} | {stage:28s} | {fmt(test['f1'])} | {fmt(test['precision'])} "
        f"| {fmt(test['recall'])} | {fmt(test['auroc'])} | {fmt(test.get('auprc'))} "
        f"| {fmt(test['benign_fpr'])} | {seconds:6.1f} |"
    )


def experiment(
    dataset: str, data: Path, runs_root: Path, epochs: int, **levels: str
) -> configs.ExperimentConfig:
    """A CPU experiment on one of DATASETS, tested on its benchmark test folder."""
    folder, test_dirs = DATASETS[dataset]
    cfg = configs.ExperimentConfig(dataset=dataset, device="cpu", runs_root=runs_root, **levels)
    return dataclasses.replace(
        cfg,
        dataset_config=dataclasses.replace(cfg.dataset_config, data_root=data / folder, test_dirs=test_dirs),
        training_config=dataclasses.replace(cfg.training_config, epochs=epochs),
    )


def benchmark_parser(description: str, size: str | None, datasets: bool = True) -> argparse.ArgumentParser:
    """Options every accuracy-style benchmark takes (data, runs root, epochs, size, and datasets
    unless the benchmark has one dataset)."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--runs-root", type=Path, default=None)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--size", default=size)
    if datasets:
        parser.add_argument("--datasets", default=",".join(DATASETS))
    return parser


def main() -> int:
    args = benchmark_parser(__doc__, "student").parse_args()
    runs_root = args.runs_root or Path(tempfile.mkdtemp(prefix="kdgat-accuracy-"))
    header = (
        "dataset",
        "stage" + " " * 23,
        "F1    ",
        "prec. ",
        "recall",
        "AUROC ",
        "AUPRC ",
        "ben.FPR",
        "train s",
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("-" * (len(h) + 2) for h in header) + "|"]
    for dataset in args.datasets.split(","):
        for label, learning_type, arch, mode in STAGES:
            cfg = experiment(
                dataset,
                args.data,
                runs_root,
                args.epochs,
                learning_type=learning_type,
                model_architecture=arch,
                training_mode=mode,
                model_size=args.size,
            )
            started = time.perf_counter()
            run_dir = run_experiment(cfg)
            seconds = time.perf_counter() - started
            metrics = json.loads((run_dir / "metrics.json").read_text())
            lines.append(row(dataset, label, metrics["test"], seconds))
            for name, baseline in metrics.get("baselines", {}).items():
                lines.append(row(dataset, f"  baseline {name}", baseline, 0.0))
    print(f"\nruns under {runs_root}; test metrics (threshold chosen on validation):\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
