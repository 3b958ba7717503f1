"""Does distillation help? Teacher, undistilled student and distilled students on real captures.

    python benchmarks/distillation.py [--data ../shared/data] [--runs-root DIR] [--epochs N]
                                      [--size tiny] [--datasets hcrlsa,set01] [--archs GAT,VGAE,DQN]

For each dataset and architecture: a teacher (size teacher, distillation no), then students of
--size with distillation no, standard and topology_preserving (not for the DQN), all with the
same seed, epochs and data; test metrics with the threshold chosen on validation, parameter
counts and wall-clock training time. The DQN rows build on the same-size VGAE and GAT of the
same distillation (teacher DQN on the teacher VGAE and GAT).
"""

import json
import sys
import tempfile
import time
from pathlib import Path

from accuracy import benchmark_parser, experiment, row  # importing accuracy puts the repository on sys.path

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
    args = parser.parse_args()
    runs_root = args.runs_root or Path(tempfile.mkdtemp(prefix="kdgat-distillation-"))
    header = "| dataset | run | F1 | prec. | recall | AUROC | AUPRC | ben.FPR | train s | params |"
    lines = [header, "|---" * 10 + "|"]
    for dataset in args.datasets.split(","):
        for arch in args.archs.split(","):
            learning_type, mode = ARCHS[arch]
            plan = [("teacher", "no")] + [
                (args.size, d) for d in DISTILLATIONS if not (arch == "DQN" and d == "topology_preserving")
            ]
            for size, distillation in plan:
                cfg = experiment(
                    dataset,
                    args.data,
                    runs_root,
                    args.epochs,
                    learning_type=learning_type,
                    model_architecture=arch,
                    training_mode=mode,
                    model_size=size,
                    distillation=distillation,
                )
                started = time.perf_counter()
                run_dir = run_experiment(cfg)
                seconds = time.perf_counter() - started
                metrics = json.loads((run_dir / "metrics.json").read_text())
                label = f"{arch} {size} {distillation}"
                lines.append(f"{row(dataset, label, metrics['test'], seconds)} {metrics['params']} |")
                print(lines[-1], flush=True)
    print(f"\nruns under {runs_root}; test metrics (threshold chosen on validation):\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
