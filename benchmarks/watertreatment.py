"""BATADAL's official test set (attacks 8-14): the VGAE and the GAT against the competition's score.

    python benchmarks/watertreatment.py [--data ../shared/data] [--epochs N] [--size student] [--window W]
        [--score-hours K] [--readings standard|raw]

- VGAE, normals_only, trained on the attack-free BATADAL_dataset03, threshold from dataset04
  (`--dataset-config.watertreatment.split competition`);
- GAT classifier trained with dataset04's attacks (`split dataset04_blocks`: dataset03 and a
  training block of dataset04, validated on a dataset04 block).
Prints, on the test set: F1, precision, recall, BATADAL's S, S_TTD and S_CM, the attacks detected
out of 7 and their delays, and the same figures for flagging every hour. Published reference
points: the best competition entries reach S ~ 0.97, an autoencoder F1 ~ 0.78, flag-every-hour
S = 0.75.
"""

import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import configs  # noqa: E402
from benchmarks.accuracy import benchmark_parser  # noqa: E402
from kdgat.experiment import run_experiment  # noqa: E402

RUNS = (
    ("VGAE normals_only, dataset03", "unsupervised", "VGAE", "normals_only", "competition"),
    ("GAT, dataset04 attacks", "classifier", "GAT", "all_samples", "dataset04_blocks"),
)


def experiment(data: Path, runs_root: Path, args, learning: str, arch: str, mode: str, split: str):
    water = configs.WaterTreatmentConfig(
        window=args.window, split=split, score_hours=args.score_hours, readings=args.readings
    )
    d = configs.DatasetConfig(data_root=data / "watertreatment_batadal", watertreatment=water)
    cfg = configs.ExperimentConfig(
        modality="watertreatment",
        dataset="batadal",
        learning_type=learning,
        model_architecture=arch,
        training_mode=mode,
        model_size=args.size,
        device="cpu",
        runs_root=runs_root,
        dataset_config=d,
    )
    return dataclasses.replace(
        cfg, training_config=dataclasses.replace(cfg.training_config, epochs=args.epochs)
    )


def line(label: str, test: dict, batadal: dict, seconds: float | None) -> str:
    time_text = "" if seconds is None else f"{seconds:7.1f}"
    return (
        f"| {label:32s} | {test['f1']:.4f} | {test['precision']:.4f} | {test['recall']:.4f} | "
        f"{batadal['S']:.4f} | {batadal['S_TTD']:.4f} | {batadal['S_CM']:.4f} | "
        f"{batadal.get('attacks_detected', '-')}/{batadal.get('attacks', '-')} | {time_text} |"
    )


def main() -> int:
    parser = benchmark_parser(__doc__, "student")
    parser.add_argument("--window", type=int, default=24)
    parser.add_argument("--score-hours", type=int, default=1, help="hours of score per decision")
    parser.add_argument("--readings", choices=("standard", "raw"), default="standard")
    args = parser.parse_args()
    if not (args.data / "watertreatment_batadal").is_dir():
        print(f"{args.data / 'watertreatment_batadal'} is absent; pass --data DIR", file=sys.stderr)
        return 2
    runs_root = args.runs_root or Path(tempfile.mkdtemp(prefix="kdgat-batadal-"))
    header = ("run" + " " * 29, "F1    ", "prec. ", "recall", "S     ", "S_TTD ", "S_CM  ", "det.", "train s")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    delays = []
    for label, learning, arch, mode, split in RUNS:
        started = time.perf_counter()
        run_dir = run_experiment(experiment(args.data, runs_root, args, learning, arch, mode, split))
        seconds = time.perf_counter() - started
        test = json.loads((run_dir / "metrics.json").read_text())["test"]
        lines.append(line(label, test, test["batadal"], seconds))
        floor = dict(test["flag_all"], **test["batadal"]["flag_all"])
        lines.append(line("  flag every hour", floor, floor, None))
        per = ", ".join(
            f"attack{a['attack_id']}: {'-' if a['delay_hours'] is None else a['delay_hours']}"
            for a in test["batadal"]["per_attack"]
        )
        delays.append(f"{label}: detection delay (hours) {per}")
    print(
        f"\nruns under {runs_root}; BATADAL test set, window {args.window} h, score over "
        f"{args.score_hours} h, {args.readings} readings, {args.epochs} epochs:\n"
    )
    print("\n".join(lines))
    print("\n" + "\n".join(delays))
    return 0


if __name__ == "__main__":
    sys.exit(main())
