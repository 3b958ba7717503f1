"""BATADAL's official test set (attacks 8-14): the VGAE and the GAT against the competition's score.

    python benchmarks/watertreatment.py [--data ../shared/data] [--epochs N] [--size SIZE]
        [--runs RUN,...] [-- TRAIN.PY FLAGS...]

Rows (--runs picks some; each is the train.py flags RUNS gives it, so docs/data.md can quote them):
- vgae: VGAE, normals_only, trained on the attack-free BATADAL_dataset03, threshold from
  dataset04 (split competition), with the plant recipe (RECIPES["batadal_plant_vgae"], the
  dataset's default): a window bottleneck decoder over the hourly readings, scored by the mean
  node error over 12 hours;
- vgae_node: the same VGAE with every default (per-node decoder, window statistics, one hour);
- gat: GAT classifier trained with dataset04's attacks (split dataset04_blocks: dataset03 and a
  training block of dataset04, validated on a dataset04 block).
Flags after `--` go to every run (e.g. `-- --dataset-config.watertreatment.score-hours 8`);
--epochs and --size, when given, override every row's own.
Prints, on the test set: F1, precision, recall, BATADAL's S, S_TTD and S_CM, the attacks detected
out of 7 and their delays, and the same figures for flagging every hour. Published reference
points: the best competition entries reach S ~ 0.97, an autoencoder F1 ~ 0.78, flag-every-hour
S = 0.75.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.accuracy import benchmark_parser  # noqa: E402
from kdgat.config.recipes import RECIPES, as_flags  # noqa: E402
from kdgat.experiment import run_experiment  # noqa: E402
from train import parse_config  # noqa: E402

# The plant recipe, as flags: BATADAL's table entry (kdgat/config/recipes.py), which a plain
# `--modality watertreatment --dataset batadal` run now takes by default.
PLANT_VGAE = as_flags(RECIPES["batadal_plant_vgae"])
VGAE = ["--learning-type", "unsupervised", "--model-architecture", "VGAE", "--training-mode", "normals_only"]
STUDENT_8 = ["--model-size", "student", "--training.epochs", "8"]
GAT = ["--learning-type", "classifier", "--model-architecture", "GAT"]
RUNS: dict[str, tuple[str, list[str]]] = {
    "vgae": ("VGAE normals_only, plant recipe", [*VGAE, *PLANT_VGAE]),
    "vgae_node": ("VGAE normals_only, defaults", [*VGAE, "--recipe", "none", *STUDENT_8]),
    "gat": ("GAT, dataset04 attacks", [*GAT, "--recipe", "none", *STUDENT_8]),
}


def run_flags(data: Path, runs_root: Path, args: argparse.Namespace, row: list[str]) -> list[str]:
    """train.py flags of one row: the data, the row's own, then what the command line overrides."""
    flags = ["--modality", "watertreatment", "--dataset", "batadal", "--device", "cpu"]
    flags += ["--data-root", str(data / "watertreatment_batadal"), "--runs-root", str(runs_root), *row]
    if args.epochs is not None:
        flags += ["--training.epochs", str(args.epochs)]
    if args.size is not None:
        flags += ["--model-size", args.size]
    return flags + args.train_flags


def line(label: str, test: dict, batadal: dict, seconds: float | None) -> str:
    time_text = "" if seconds is None else f"{seconds:7.1f}"
    return (
        f"| {label:32s} | {test['f1']:.4f} | {test['precision']:.4f} | {test['recall']:.4f} | "
        f"{batadal['S']:.4f} | {batadal['S_TTD']:.4f} | {batadal['S_CM']:.4f} | "
        f"{batadal.get('attacks_detected', '-')}/{batadal.get('attacks', '-')} | {time_text} |"
    )


def main() -> int:
    parser = benchmark_parser(__doc__, None, datasets=False)
    parser.set_defaults(epochs=None)
    parser.add_argument("--runs", default=",".join(RUNS), help=f"rows to run, of {', '.join(RUNS)}")
    parser.add_argument("train_flags", nargs="*", help="after --: train.py flags for every run")
    args = parser.parse_args()
    unknown = sorted(set(args.runs.split(",")) - set(RUNS))
    if unknown:
        parser.error(f"unknown rows {unknown}; known: {', '.join(RUNS)}")
    if not (args.data / "watertreatment_batadal").is_dir():
        print(f"{args.data / 'watertreatment_batadal'} is absent; pass --data DIR", file=sys.stderr)
        return 2
    runs_root = args.runs_root or Path(tempfile.mkdtemp(prefix="kdgat-batadal-"))
    header = ("run" + " " * 29, "F1    ", "prec. ", "recall", "S     ", "S_TTD ", "S_CM  ", "det.", "train s")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    delays = []
    for name in args.runs.split(","):
        label, row = RUNS[name]
        flags = run_flags(args.data, runs_root, args, row)
        print(f"{name}: python train.py {' '.join(flags)}", flush=True)
        started = time.perf_counter()
        run_dir = run_experiment(parse_config(flags)[0])
        seconds = time.perf_counter() - started
        test = json.loads((run_dir / "metrics.json").read_text())["test"]
        lines.append(line(label, test, test["batadal"], seconds))
        attacks = test["batadal"]["attacks"]  # flagging every hour detects every attack
        floor = dict(test["flag_all"], **test["batadal"]["flag_all"], attacks=attacks)
        floor["attacks_detected"] = attacks
        lines.append(line("  flag every hour", floor, floor, None))
        per = ", ".join(
            f"attack{a['attack_id']}: {'-' if a['delay_hours'] is None else a['delay_hours']}"
            for a in test["batadal"]["per_attack"]
        )
        auroc = "-" if test.get("auroc") is None else f"{test['auroc']:.4f}"
        delays.append(f"{label}: AUROC {auroc}; detection delay (hours) {per}")
    print(f"\nruns under {runs_root}; BATADAL test set:\n")
    print("\n".join(lines))
    print("\n" + "\n".join(delays))
    return 0


if __name__ == "__main__":
    sys.exit(main())
