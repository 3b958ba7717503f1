"""Detection on vehicles the model never saw: default vs agnostic features, with and without
calibration on the target car, at the run's threshold and at the one chosen on the calibration.

    python benchmarks/transfer.py [--data ../shared/data] [--runs-root DIR] [--epochs N]
        [--arch GAT VGAE] [--seeds 0 1 2] [--calibration-seconds 10] [--by-capture]

For GAT (classifier, all_samples) and VGAE (unsupervised, normals_only), each trained with the
default and with the agnostic feature set, once per seed:
- hcrl_sa (trained on Kia/Sonata) -> test_01 (known vehicle, known attack), test_02 (the unknown
  Chevrolet Spark, known attacks) and test_03 (known vehicles, unknown malfunction attack);
- can-train-and-test set_01 -> every capture of set_03 and of set_04 (other vehicles).
"+ calibration" evaluates the same run with vocabulary, normalisation and threshold fitted on the
first --calibration-seconds of an attack-free or pre-attack capture of the target vehicle
(kdgat/data/calibration.py; no label of it is read): the Spark's DoS-spark (its first injected
frame is at 14.3 s), set_03's speed-accessory-1 (first injection at 50.6 s), set_04's attack-free
accessory-4. Windows inside the calibration part are not scored. For VGAE, "+cal+fine-tune" also
fine-tunes the model on the calibration windows (--fine-tune-epochs, kdgat/training/fine_tune.py).
Known-vehicle targets (test_01, test_03) are not calibrated (they are the training vehicles).

Columns, mean +- std over the seeds: AUROC; F1 and benign FPR at the run's validation threshold;
for calibrated rows, F1 and benign FPR at the threshold the default calibration rule
(--learning-config.threshold.calibration auto, kdgat/evaluation/thresholds.py) chose on the
calibration windows; and the flag-everything floor's F1. --by-capture adds each capture's AUROC,
recall and benign FPR, to show which of the target's captures a shortfall comes from. Runs are
reused from --runs-root when a finished one with the same settings is there.
"""

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import configs  # noqa: E402
from kdgat.evaluation.metrics import auroc, binary_metrics  # noqa: E402
from kdgat.experiment import run_experiment  # noqa: E402
from kdgat.runs.store import read_status  # noqa: E402
from kdgat.scoring.target import Scored  # noqa: E402

ARCHS = {"GAT": ("classifier", "GAT", "all_samples"), "VGAE": ("unsupervised", "VGAE", "normals_only")}
FEATURES = ("default", "agnostic")


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    path: str
    """Relative to --data."""
    calibration: str | None = None


SOURCES = {
    "hcrlsa": (
        "hcrl_sa",
        (
            Target("test_01", "hcrl_sa/test_01_known_vehicle_known_attack"),
            Target(
                "test_02",
                "hcrl_sa/test_02_unknown_vehicle_known_attack",
                "hcrl_sa/test_02_unknown_vehicle_known_attack/DoS-spark.csv.gz",
            ),
            Target("test_03", "hcrl_sa/test_03_known_vehicle_unknown_attack"),
        ),
    ),
    "set01": (
        "can_train_and_test",
        (
            Target(
                "set_03",
                "can_train_and_test/set_03",
                "can_train_and_test/set_03/test_03_known_vehicle_unknown_attack/speed-accessory-1.csv.gz",
            ),
            Target(
                "set_04",
                "can_train_and_test/set_04",
                "can_train_and_test/set_04/train_01_attack_free/accessory-4.csv.gz",
            ),
        ),
    ),
}


def train(
    dataset: str, data: Path, arch: str, features: str, runs_root: Path, epochs: int, seed: int
) -> Path:
    """A finished run of these settings under runs_root (trained now unless one is there)."""
    learning_type, architecture, mode = ARCHS[arch]
    root = runs_root / f"{dataset}_{arch}_{features}_e{epochs}_s{seed}"
    for status in sorted(root.rglob("status.json")):
        if read_status(status.parent).get("state") == "finished":
            return status.parent
    cfg = configs.ExperimentConfig(
        dataset=dataset,
        learning_type=learning_type,
        model_architecture=architecture,
        training_mode=mode,
        device="cpu",
        runs_root=root,
    )
    d = cfg.dataset_config
    cfg = dataclasses.replace(
        cfg,
        dataset_config=dataclasses.replace(
            d,
            data_root=data / SOURCES[dataset][0],
            automotive=dataclasses.replace(d.automotive, features=features),
        ),
        training_config=dataclasses.replace(cfg.training_config, epochs=epochs, seed=seed),
    )
    started = time.perf_counter()
    run_dir = run_experiment(cfg)
    print(f"trained {run_dir} in {time.perf_counter() - started:.0f}s", flush=True)
    return run_dir


def figures(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    m = binary_metrics(y, scores, threshold)
    return {k: m[k] for k in ("f1", "recall", "benign_fpr", "auroc")} | {"floor": m["flag_all"]["f1"]}


def by_capture(scored: Scored, threshold: float) -> dict[str, dict[str, float | int | None]]:
    """Each scored capture's windows, attack windows, AUROC (None without both classes), recall
    and benign FPR at threshold: where on the target car a shortfall lies."""
    out: dict[str, dict[str, float | int | None]] = {}
    for name, graphs, scores, _ in scored.files:
        if not len(graphs):
            continue
        y = graphs.y.numpy().astype(bool)
        flagged = np.asarray(scores) >= threshold
        out[name] = {
            "windows": len(y),
            "attacks": int(y.sum()),
            "auroc": auroc(y.astype(np.int64), np.asarray(scores, np.float64)),
            "recall": float(flagged[y].mean()) if y.any() else None,
            "benign_fpr": float(flagged[~y].mean()) if (~y).any() else None,
        }
    return out


def evaluate(
    run_dir: Path, target: Target, data: Path, calibrated: bool, seconds: float, fine_tune: int
) -> dict:
    """The run on the target: figures at its own threshold, and calibrated at the calibration's;
    "captures": each capture's figures at the threshold the row reports last."""
    from kdgat.scoring.evaluate import decision_threshold
    from kdgat.scoring.target import score_target

    scored = score_target(
        run_dir,
        data / target.path,
        calibration=data / target.calibration if calibrated and target.calibration else None,
        calibration_seconds=seconds if calibrated else None,
        fine_tune_epochs=fine_tune,
    )
    out = {"run": figures(scored.y, scored.scores, scored.threshold), "calibration": None}
    threshold = scored.threshold
    if scored.calibration_scores is not None:
        threshold, choice = decision_threshold(scored)
        out["calibration"] = figures(scored.y, scored.scores, threshold) | {"rule": choice}
    return out | {"captures": by_capture(scored, threshold)}


def mean_std(values: list[float | None]) -> str:
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    return "  n/a        " if len(v) == 0 else f"{v.mean():.4f}+-{v.std():.4f}"


HEADER = (
    f"{'source':7s} {'arch':4s} {'variant':20s} {'target':8s} {'AUROC':>13s} | run's threshold: "
    f"{'F1':>13s} {'bFPR':>13s} | calibrated: {'F1':>13s} {'bFPR':>13s} | {'floor':>6s}"
)


def row_text(key: tuple[str, ...], seeds: list[dict]) -> str:
    run = [r["run"] for r in seeds]
    cal = [r["calibration"] for r in seeds if r["calibration"] is not None]
    text = f"{key[0]:7s} {key[1]:4s} {key[2]:20s} {key[3]:8s} {mean_std([r['auroc'] for r in run])} | "
    text += f"{'':17s}{mean_std([r['f1'] for r in run])} {mean_std([r['benign_fpr'] for r in run])} | "
    if cal:
        text += f"{'':12s}{mean_std([r['f1'] for r in cal])} {mean_std([r['benign_fpr'] for r in cal])} | "
    else:
        text += f"{'':12s}{'-':>13s} {'-':>13s} | "
    return text + f"{np.mean([r['floor'] for r in run]):.4f}  (seeds: {len(seeds)})"


def capture_rows(rows: dict[tuple[str, ...], list[dict]]) -> list[str]:
    """One line per (row, capture): its figures, mean +- std over the seeds."""
    width = max((len(n) for seeds in rows.values() for n in seeds[0]["captures"]), default=7)
    lines = [
        f"{'source':7s} {'arch':4s} {'variant':20s} {'target':8s} {'capture':{width}s} "
        f"{'attacks/windows':>15s} {'AUROC':>13s} {'recall':>13s} {'bFPR':>13s}"
    ]
    for key, seeds in rows.items():
        for name, first in seeds[0]["captures"].items():
            each = [r["captures"][name] for r in seeds if name in r["captures"]]
            counts = f"{first['attacks']}/{first['windows']}"
            figures_text = " ".join(mean_std([c[m] for c in each]) for m in ("auroc", "recall", "benign_fpr"))
            row = f"{key[0]:7s} {key[1]:4s} {key[2]:20s} {key[3]:8s} {name:{width}s} {counts:>15s}"
            lines.append(f"{row} {figures_text}")
    return lines


def run_options(description: str | None) -> argparse.ArgumentParser:
    """A parser with the options that pick the runs and their targets (shared with
    benchmarks/adaptive_threshold.py, which reuses these runs)."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--runs-root", type=Path, default=REPO / "runs" / "benchmark_transfer")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--arch", nargs="+", default=list(ARCHS), choices=list(ARCHS))
    parser.add_argument("--features", nargs="+", default=list(FEATURES), choices=list(FEATURES))
    parser.add_argument("--source", nargs="+", default=list(SOURCES), choices=list(SOURCES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--calibration-seconds", type=float, default=10.0)
    return parser


def main() -> int:
    parser = run_options(__doc__)
    parser.add_argument("--train-only", action="store_true", help="train the runs, evaluate nothing")
    parser.add_argument(
        "--fine-tune-epochs",
        type=int,
        default=3,
        help="VGAE '+cal+fine-tune' rows: epochs on the calibration windows",
    )
    parser.add_argument("--json", type=Path, help="also write every seed's figures to this JSON file")
    parser.add_argument(
        "--by-capture",
        action="store_true",
        help="also print each capture's AUROC, recall and benign FPR (at the calibrated threshold "
        "on calibrated rows, the run's otherwise)",
    )
    args = parser.parse_args()
    rows: dict[tuple[str, ...], list[dict]] = {}
    print(HEADER, flush=True)
    for source in args.source:
        for arch in args.arch:
            for features in args.features:
                variants = [(features, False, 0), (f"{features}+calibration", True, 0)]
                if arch == "VGAE" and args.fine_tune_epochs:
                    variants.append((f"{features}+cal+fine-tune", True, args.fine_tune_epochs))
                for seed in args.seeds:
                    run_dir = train(source, args.data, arch, features, args.runs_root, args.epochs, seed)
                    if args.train_only:
                        continue
                    for variant, calibrated, fine_tune in variants:
                        for target in SOURCES[source][1]:
                            if calibrated and target.calibration is None:
                                continue
                            key = (source, arch, variant, target.name)
                            result = evaluate(
                                run_dir, target, args.data, calibrated, args.calibration_seconds, fine_tune
                            )
                            rows.setdefault(key, []).append(result | {"seed": seed, "run_dir": str(run_dir)})
                            print(row_text(key, [result]), f"seed {seed}", flush=True)
    if rows:
        print("\n" + HEADER)
        for key, seeds in rows.items():
            print(row_text(key, seeds))
    if rows and args.by_capture:
        print("\nBy capture (n/a: the capture has one class):")
        print("\n".join(capture_rows(rows)))
    if args.json:
        args.json.write_text(json.dumps({" ".join(k): v for k, v in rows.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
