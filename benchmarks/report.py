"""Benchmark: --report and --figures of python -m kdgat.results on 10,000 runs (target <= 15 s on
2 cores for the report).

    python benchmarks/report.py [--runs 10000] [--keep DIR | --reuse DIR] [--out DIR]

Writes the synthetic sweep of benchmarks/results.py (config.yaml and config.json, status.json,
metrics.json with a 30-epoch history and the field's metrics per split and attack type,
eval_*.json in every tenth run, 1 % broken runs), and gives the runs of seed 0 (one per
experiment, the runs whose curves the figures draw) a predictions.csv of 4,000 test windows and
TensorBoard event files with per-epoch losses and validation F1, as training writes them. Then
times, each as the command a user types (a fresh interpreter): the table alone (--format csv, the
baseline), --figures DIR and --report DIR; prints the figures written and the report's size on
disk. Asserts nothing.
"""

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from results import write_tree  # benchmarks/results.py: the same synthetic sweep

REPO = Path(__file__).resolve().parent.parent
WINDOWS = 4000


def add_curves(root: Path, runs: int) -> int:
    """predictions.csv and TensorBoard scalars for every run of seed 0 (folder run_001)."""
    from torch.utils.tensorboard import SummaryWriter

    rng = np.random.default_rng(0)
    done = 0
    for run_dir in sorted(root.rglob("run_001")):
        if not (run_dir / "metrics.json").exists():
            continue
        label = (rng.random(WINDOWS) < 0.375).astype(int)
        score = np.clip(rng.normal(0.25 + 0.5 * label, 0.18), 0, 1)
        lines = [
            "split,source,window,frame_start,frame_stop,time_start,time_stop,label,attack_type,score,decision"
        ]
        lines += [
            f"test_01,capture.csv,{i},{100 * i},{100 * i + 100},,,{y},{'dos' if y else 'benign'},{s!r},"
            f"{int(s >= 0.5)}"
            for i, (y, s) in enumerate(zip(label.tolist(), score.tolist(), strict=True))
        ]
        (run_dir / "predictions.csv").write_text("\n".join(lines) + "\n")
        writer = SummaryWriter(str(run_dir))
        r = random.Random(done)
        for epoch in range(30):
            writer.add_scalar("losses/train", 1 / (epoch + 1) + r.random() * 0.05, epoch)
            writer.add_scalar("losses/val", 1.2 / (epoch + 1) + r.random() * 0.05, epoch)
            writer.add_scalar("charts/val_f1", 1 - 0.5 / (epoch + 1), epoch)
        writer.close()
        done += 1
    return done


def timed(args: list[str]) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the command and its worker processes, stdout) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "kdgat.results", *args], cwd=REPO, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(args)}\n{proc.stderr[-2000:]}")
    return seconds, cpu, proc.stdout


def size_on_disk(folder: Path) -> tuple[int, int, int]:
    """(files, bytes of their contents, bytes of disk blocks)."""
    files, size, blocks = 0, 0, 0
    for path in folder.rglob("*"):
        if path.is_file():
            st = path.stat()
            files, size, blocks = files + 1, size + st.st_size, blocks + st.st_blocks * 512
    return files, size, blocks


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, help="write the tree here (kept) instead of a temp dir")
    parser.add_argument("--reuse", type=Path, help="time an existing tree (from --keep)")
    parser.add_argument("--out", type=Path, help="write the report and figures here (kept)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.reuse or args.keep or Path(tmp) / "runs"
        out = args.out or Path(tmp) / "out"
        if args.reuse is None:
            started = time.perf_counter()
            write_tree(root, args.runs)
            curves = add_curves(root, args.runs)
            print(
                f"wrote {args.runs} run directories ({curves} with predictions.csv and event files) "
                f"in {time.perf_counter() - started:.1f} s"
            )
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        print(
            f"cpus available: {cpus}; load average before timing: "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )
        table_s, table_cpu, _ = timed([str(root), "--format", "csv"])
        print(f"table alone (--format csv, baseline): {table_s:.2f} s wall, {table_cpu:.2f} s CPU")
        figures_s, figures_cpu, printed = timed([str(root), "--figures", str(out / "figures")])
        print(
            f"--figures: {figures_s:.2f} s wall ({figures_s / table_s:.2f}x the table alone), "
            f"{figures_cpu:.2f} s CPU"
        )
        print("".join(f"  {line}\n" for line in printed.splitlines()), end="")
        report_s, report_cpu, printed = timed([str(root), "--report", str(out / "report")])
        print(
            f"--report: {report_s:.2f} s wall ({report_s / table_s:.2f}x the table alone; target <= 15 s "
            f"on 2 cores), {report_cpu:.2f} s CPU (on 2 idle cores the wall time is about CPU / 2 "
            f"where both work, plus start-up)"
        )
        files, size, blocks = size_on_disk(out / "report")
        index = (out / "report" / "index.html").stat().st_size
        print(
            f"report on disk: {files} files, {size / 2**20:.1f} MiB ({blocks / 2**20:.1f} MiB in disk "
            f"blocks); index.html {index / 2**20:.1f} MiB"
        )
        print(f"load average after timing: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
