"""Detection on vehicles the model never saw: default vs agnostic features vs agnostic + calibration.

    python benchmarks/transfer.py [--data ../shared/data] [--runs-root DIR] [--epochs N] [--arch GAT VGAE]

For GAT (classifier, all_samples) and VGAE (unsupervised, normals_only), each trained once with
the default and once with the agnostic feature set:
- hcrl_sa (trained on Kia/Sonata) -> test_01 (known vehicle, known attack), test_02 (the unknown
  Chevrolet Spark, known attacks) and test_03 (known vehicles, unknown malfunction attack);
- can-train-and-test set_01 -> every capture of set_03 and of set_04 (other vehicles).
"+ calibration" evaluates the same run with vocabulary and normalisation fitted on an attack-free
capture of the target vehicle (kdgat/data/calibration.py; no label of it is read): for the Spark,
the first 10 s of DoS-spark (its first injected frame is at 14.3 s); for set_03 the first 40 s of
speed-accessory-1 (first injection at 50.6 s); for set_04 its attack-free accessory-4 capture.
Windows inside the calibration part are not scored. For VGAE, "+cal+fine-tune" also fine-tunes the
model on the calibration windows (--fine-tune-epochs, kdgat/training/fine_tune.py) before scoring.
Known-vehicle targets (test_01, test_03) are not calibrated (they are the training vehicles).

Thresholds: beside each row's figures at the run's validation threshold, `fpr5%@val` gives
recall, F1 and benign FPR at the threshold whose benign FPR on the run's validation windows is
5 %, and `fpr5%@calib` the same with the threshold set on the calibration windows (computed here
from the scores; the threshold knob itself is not part of this benchmark).
Runs are reused from --runs-root when a finished one with the same settings is there.
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
from kdgat.evaluation.metrics import binary_metrics  # noqa: E402
from kdgat.experiment import run_experiment  # noqa: E402
from kdgat.runs.store import read_status  # noqa: E402

ARCHS = {"GAT": ("classifier", "GAT", "all_samples"), "VGAE": ("unsupervised", "VGAE", "normals_only")}
FEATURES = ("default", "agnostic")
TARGET_FPR = 0.05


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    path: str
    """Relative to --data."""
    calibration: str | None = None
    calibration_seconds: float | None = None


SOURCES = {
    "hcrlsa": (
        "hcrl_sa",
        (
            Target("test_01", "hcrl_sa/test_01_known_vehicle_known_attack"),
            Target(
                "test_02",
                "hcrl_sa/test_02_unknown_vehicle_known_attack",
                "hcrl_sa/test_02_unknown_vehicle_known_attack/DoS-spark.csv.gz",
                10.0,
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
                40.0,
            ),
            Target(
                "set_04",
                "can_train_and_test/set_04",
                "can_train_and_test/set_04/train_01_attack_free/accessory-4.csv.gz",
            ),
        ),
    ),
}


def train(dataset: str, data: Path, arch: str, features: str, runs_root: Path, epochs: int) -> Path:
    """A finished run of these settings under runs_root (trained now unless one is there)."""
    learning_type, architecture, mode = ARCHS[arch]
    root = runs_root / f"{dataset}_{arch}_{features}_e{epochs}"
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
        training_config=dataclasses.replace(cfg.training_config, epochs=epochs),
    )
    started = time.perf_counter()
    run_dir = run_experiment(cfg)
    print(f"trained {run_dir} in {time.perf_counter() - started:.0f}s", flush=True)
    return run_dir


def fpr_threshold(benign_scores: np.ndarray, fpr: float) -> float:
    """The threshold (score >= t flags) that flags at most `fpr` of these benign windows."""
    if len(benign_scores) == 0:
        return float("inf")
    return float(np.nextafter(np.quantile(benign_scores, 1 - fpr, method="higher"), np.inf))


def fmt(value: float | None) -> str:
    return "  n/a " if value is None else f"{value:.4f}"


def row_text(r: dict) -> str:
    m, f, c = r["at_val_threshold"], r["at_val_fpr_5pct"], r["at_calibration_fpr_5pct"]
    text = (
        f"{r['source']:7s} {r['arch']:4s} {r['variant']:20s} {r['target']:8s} {m['f1']:.4f} "
        f"{m['precision']:.4f} {m['recall']:.4f} {fmt(m['auroc'])} {m['benign_fpr']:.4f} "
        f"{m['flag_all']['f1']:.4f} {m['f1'] - m['flag_all']['f1']:+.4f} | {'':10s} {f['recall']:.4f} "
        f"{f['f1']:.4f} {f['benign_fpr']:.4f}"
    )
    if c is not None:
        text += f" | {'':12s} {c['recall']:.4f} {c['f1']:.4f} {c['benign_fpr']:.4f}"
    return text


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--runs-root", type=Path, default=REPO / "runs" / "benchmark_transfer")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--arch", nargs="+", default=list(ARCHS), choices=list(ARCHS))
    parser.add_argument("--source", nargs="+", default=list(SOURCES), choices=list(SOURCES))
    parser.add_argument("--train-only", action="store_true", help="train the runs, evaluate nothing")
    parser.add_argument(
        "--fine-tune-epochs",
        type=int,
        default=3,
        help="VGAE '+fine-tune' rows: epochs on the calibration windows",
    )
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args()
    rows = []
    header = (
        f"{'source':7s} {'arch':4s} {'variant':20s} {'target':8s} {'F1':>6s} {'prec':>6s} {'recall':>6s} "
        f"{'AUROC':>6s} {'bFPR':>6s} {'floor':>6s} {'margin':>7s} | fpr5%@val: {'rec':>6s} {'F1':>6s} "
        f"{'bFPR':>6s} | fpr5%@calib: {'rec':>6s} {'F1':>6s} {'bFPR':>6s}"
    )
    print(header, flush=True)
    for source in args.source:
        for arch in args.arch:
            for features in FEATURES:
                run_dir = train(source, args.data, arch, features, args.runs_root, args.epochs)
                if args.train_only:
                    continue
                from kdgat.scoring.target import score_target, validation_scores

                y_val, s_val = validation_scores(run_dir)
                at_val = fpr_threshold(s_val[y_val == 0], TARGET_FPR)
                variants = [(features, False, 0), (f"{features}+calibration", True, 0)]
                if arch == "VGAE" and args.fine_tune_epochs:
                    variants.append((f"{features}+cal+fine-tune", True, args.fine_tune_epochs))
                for variant, calibrated, fine_tune in variants:
                    for target in SOURCES[source][1]:
                        if calibrated and target.calibration is None:
                            continue
                        result = score_target(
                            run_dir,
                            args.data / target.path,
                            calibration=args.data / target.calibration if calibrated else None,
                            calibration_seconds=target.calibration_seconds if calibrated else None,
                            fine_tune_epochs=fine_tune,
                        )
                        m = binary_metrics(result.y, result.scores, result.threshold)
                        m_fpr = binary_metrics(result.y, result.scores, at_val)
                        m_cal = None
                        if result.calibration_scores is not None:
                            at_cal = fpr_threshold(result.calibration_scores, TARGET_FPR)
                            m_cal = binary_metrics(result.y, result.scores, at_cal)
                        rows.append(
                            {
                                "source": source,
                                "arch": arch,
                                "variant": variant,
                                "target": target.name,
                                "at_val_threshold": m,
                                "at_val_fpr_5pct": m_fpr,
                                "at_calibration_fpr_5pct": m_cal,
                            }
                        )
                        print(row_text(rows[-1]), flush=True)
    if rows:
        print("\n" + header)
        for r in rows:
            print(row_text(r))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
