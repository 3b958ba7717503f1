"""Does distillation help? Teacher, undistilled student and distilled students on real captures.

    python benchmarks/distillation.py [--data ../shared/data] [--runs-root DIR] [--epochs N]
        [--size tiny] [--datasets hcrlsa,set01] [--archs GAT,VGAE,DQN] [--seeds 0,1,2] [--quick]
        [--distillations no,standard,topology_preserving]

For each dataset and architecture: a teacher (size teacher, distillation no), then students of
--size with distillation no, standard and topology_preserving (not for the DQN), all with the
same seed, epochs and data, over --seeds (mean +- std); test F1 beside the flag-everything floor,
AUROC, benign FPR and parameter counts, with the threshold chosen on validation; the elapsed time.
Students of one seed pair with those of another distillation for
`python -m kdgat.results RUNS_ROOT --compare distillation=no,standard` (docs/results.md).
--quick: 2 epochs, GAT on hcrlsa. The DQN rows build on the same-size VGAE and GAT of the
same distillation (teacher DQN on the teacher VGAE and GAT).
"""

import json
import sys
import tempfile
import time
from pathlib import Path

from accuracy import (
    benchmark_parser,
    experiment,
    figures,
    table_line,
)  # importing accuracy puts the repo on sys.path

from kdgat.experiment import run_experiment

ARCHS = {  # learning_type, training_mode
    "VGAE": ("unsupervised", "normals_only"),
    "GAT": ("classifier", "all_samples"),
    "DQN": ("fusion", "all_samples"),
}
DISTILLATIONS = ("no", "standard", "topology_preserving")


def main() -> int:
    parser = benchmark_parser(__doc__, "tiny")
    parser.add_argument("--archs", default=",".join(ARCHS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--quick", action="store_true", help="2 epochs, hcrlsa, GAT only")
    parser.add_argument(
        "--distillations",
        default=",".join(DISTILLATIONS),
        help="the students' distillations (the paired comparison no vs standard needs those two)",
    )
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.datasets, args.archs = args.epochs or 2, "hcrlsa", "GAT"
    runs_root = args.runs_root or Path(tempfile.mkdtemp(prefix="kdgat-distillation-"))
    started = time.perf_counter()
    lines = [
        "| dataset | run | F1 | floor F1 | AUROC | benign FPR | flow F1 | flow floor | seeds | params |",
        "|---" * 10 + "|",
    ]
    for dataset in args.datasets.split(","):
        results: dict[str, list[dict]] = {}
        params: dict[str, int] = {}
        for seed in (int(s) for s in args.seeds.split(",")):
            for arch in args.archs.split(","):
                learning_type, mode = ARCHS[arch]
                plan = [("teacher", "no")] + [
                    (args.size, d)
                    for d in args.distillations.split(",")
                    if not (arch == "DQN" and d == "topology_preserving")
                ]
                for size, distillation in plan:
                    cfg = experiment(
                        dataset,
                        args.data,
                        runs_root / f"seed_{seed}",  # a student distils from its own seed's teacher
                        args.epochs,
                        seed,
                        learning_type=learning_type,
                        model_architecture=arch,
                        training_mode=mode,
                        model_size=size,
                        distillation=distillation,
                    )
                    metrics = json.loads((run_experiment(cfg) / "metrics.json").read_text())
                    label = f"{arch} {size} {distillation}"
                    results.setdefault(label, []).append(figures(metrics["test"]))
                    params[label] = metrics["params"]
        done = [f"{table_line(dataset, label, runs)} {params[label]} |" for label, runs in results.items()]
        lines += done
        print("\n".join([f"{dataset} done after {time.perf_counter() - started:.0f} s:", *done]), flush=True)
    print(
        f"\nruns under {runs_root}; test figures over seeds {args.seeds} (threshold chosen on validation):\n"
    )
    print("\n".join(lines))
    print(f"\nelapsed {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
