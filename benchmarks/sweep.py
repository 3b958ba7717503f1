"""Many small runs at once: N tiny runs one by one vs at once through the local executor.

    python benchmarks/sweep.py [--runs 8] [--parallelism 2,8] [--epochs 2] [--data synthetic|hcrlsa]
        [--shared-data ../shared/data] [--old-threads] [--quick]

Every figure is a whole `python launch.py --sweep --set training_config.seed=0,...,N-1 --executor
local --parallelism P` (each run its own seed, otherwise the same tiny run), timed from start to
exit. Serial is the same command at --parallelism 1: the same launcher and the same start-up of
each job (a submitit controller and a Python process that imports torch), so the ratio isolates
running them at once. The graph cache is warmed by one run first (not timed), so the runs train
rather than all preparing the same graphs.

Columns: runs/minute, the ratio to serial (the goal: >= 1.7 at --parallelism 2 and 8 on 2 cores),
the torch threads each run got (status.json), and, averaged over the runs, the seconds inside
run_experiment spent loading data and training + evaluating (status.json timings) beside the
wall seconds per run (wall x P / N): what is left is start-up and the executor's polling. CPU
s/run is the CPU time of the whole launch (every process) per run: where other work shares the
machine, wall times are noisy, but a run that costs as much CPU at P as at 1 does the same work,
and on an otherwise idle machine with C cores runs/min approaches 60 x C / (CPU s/run).
--old-threads adds the same launches with every run at one thread per CPU (torch's default
before `auto`, oversubscribed), the behaviour the issue measured at 0.17 x serial.

--data synthetic (default): generated CAN traffic, tiny GAT. --data hcrlsa: HCRL Survival with
its test_01 folder only, a student GAT (the issue's measurement).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GOAL = 1.7  # x serial throughput at --parallelism 2 and 8 on 2 cores (issue 30)
RUN_GLOB = "*/*/*/*/*/*/*/run_*"


def run_flags(args: argparse.Namespace) -> list[str]:
    common = ["--device", "cpu", "--training.epochs", str(args.epochs)]
    if args.data == "hcrlsa":
        root = Path(args.shared_data) / "hcrl_sa"
        if not root.is_dir():
            sys.exit(f"{root} is absent: give --shared-data, or use --data synthetic")
        return [
            *common,
            *("--dataset", "hcrlsa", "--data-root", str(root), "--model-size", "student"),
            *("--dataset-config.test-dirs", "test_01*"),
        ]
    return [
        *common,
        *("--model-size", "tiny"),
        *("--dataset-config.automotive.synthetic-train-frames", "30000"),
        *("--dataset-config.automotive.synthetic-test-frames", "9000"),
    ]


def children_cpu() -> float:
    """CPU seconds (user + system) of every finished child process so far, grandchildren included
    (launch.py reaps its jobs)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def launch(flags: list[str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds `launch.py flags` took; exits with its output if it failed."""
    started, cpu = time.perf_counter(), children_cpu()
    out = subprocess.run(
        [sys.executable, str(REPO / "launch.py"), *flags],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    seconds = time.perf_counter() - started
    if out.returncode != 0:
        sys.exit(f"launch.py {' '.join(flags)} failed (rc {out.returncode}):\n{out.stdout}\n{out.stderr}")
    return seconds, children_cpu() - cpu


def inside(runs_root: Path) -> dict[str, float]:
    """Means over the runs: torch threads, data and train+eval seconds (status.json)."""
    statuses = [json.loads((d / "status.json").read_text()) for d in runs_root.glob(RUN_GLOB)]
    return {
        "runs": len(statuses),
        "threads": statistics.mean(s["threads"]["torch"] for s in statuses),
        "data_s": statistics.mean(s["timings"]["data_s"] for s in statuses),
        "train_s": statistics.mean(s["timings"]["train_eval_s"] for s in statuses),
    }


def measure(args: argparse.Namespace, work: Path, parallelism: int, threads: list[str]) -> dict:
    label = f"p{parallelism}{'_old' if threads else ''}"
    seeds = ",".join(str(s) for s in range(args.runs))
    flags = [
        *run_flags(args),
        *threads,
        *("--dataset-config.cache-dir", str(work / "cache"), "--runs-root", str(work / label)),
        *("--sweep", "--set", f"training_config.seed={seeds}"),
        *("--executor", "local", "--parallelism", str(parallelism)),
    ]
    wall, cpu = launch(flags, work)
    found = inside(work / label)
    if found["runs"] != args.runs:
        sys.exit(f"{label}: {found['runs']} run dirs, expected {args.runs}")
    return {"parallelism": parallelism, "old": bool(threads), "wall": wall, "cpu": cpu, **found}


def table(rows: list[dict], serial: float, runs: int) -> str:
    lines = [
        "| parallelism | threads/run | wall s | runs/min | x serial | wall s/run | CPU s/run | data s "
        "| train+eval s |",
        "|---" * 9 + "|",
    ]
    for r in rows:
        name = f"{r['parallelism']}{' (old threads)' if r['old'] else ''}"
        per_run = r["wall"] * r["parallelism"] / runs
        lines.append(
            f"| {name} | {r['threads']:.0f} | {r['wall']:.1f} | {60 * runs / r['wall']:.1f} | "
            f"{serial / r['wall']:.2f} | {per_run:.1f} | {r['cpu'] / runs:.1f} | {r['data_s']:.2f} | "
            f"{r['train_s']:.2f} |"
        )
    return "\n".join(lines)


def main() -> int:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--parallelism", default="2,8", help="comma list (serial, 1, always runs)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--data", choices=("synthetic", "hcrlsa"), default="synthetic")
    parser.add_argument("--shared-data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--old-threads", action="store_true", help="also every run at one thread per CPU")
    parser.add_argument("--quick", action="store_true", help="4 runs of 1 epoch at parallelism 2")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.epochs, args.parallelism = 4, 1, "2"
    levels = [int(p) for p in args.parallelism.split(",")]
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.runs} runs ({args.data}, {args.epochs} epoch(s)) on {cpus} CPU(s); load average {load:.1f}")
    with tempfile.TemporaryDirectory(prefix="kdgat-sweep-") as tmp:
        work = Path(tmp)
        warm, _ = launch([*run_flags(args), "--dataset-config.cache-dir", str(work / "cache"), "--runs-root",
                       str(work / "warm"), "--executor", "debug"], work)  # fmt: skip
        print(f"cache warmed by one run in {warm:.1f} s (not counted)")
        rows = [measure(args, work, 1, [])]
        old = ["--training.torch-threads", str(cpus)]
        for p in levels:
            rows.append(measure(args, work, p, []))
            if args.old_threads:
                rows.append(measure(args, work, p, old))
    serial = rows[0]["wall"]
    print(table(rows, serial, args.runs))
    new = [r for r in rows if not r["old"] and r["parallelism"] > 1]
    verdict = all(serial / r["wall"] >= GOAL for r in new)
    print(f"goal (>= {GOAL} x serial at every parallelism above 1): {'met' if verdict else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
