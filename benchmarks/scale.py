"""Memory and time as the corpus grows: replicated set_01 captures, cold and warm cache, and N
processes started together on one empty cache.

    .venv/bin/python benchmarks/scale.py [--data DIR] [--copies 1,10,30] [--strides 100,10]
        [--concurrent 4 --concurrent-copies 1] [--baseline-rev REV] [--workdir DIR] [--keep]

Corpora: the shared can-train-and-test set_01 captures (4 files, 0.75 M frames), copied k times
with every copy's timestamps shifted by k x 10^6 s, so that each copy is new content (a new cache
key), laid out as set_01 is (train_*/ and test_*/ folders). For each corpus and stride, one
`train.py --dataset set01 --model-size tiny --training.epochs 1` (batch size 64; --batch-size
shortens the epoch on a busy machine, the graphs held are the same) on an empty cache (cold) and
again on the filled cache (warm), each printing: frames, graphs, wall time, CPU seconds (the
process and its workers: steadier than wall time on a busy machine), peak RSS of the
training process (ru_maxrss, the figure /usr/bin/time gives) and the peak summed over its process
tree (preprocessing workers included: what a Slurm job's memory limit sees), the epoch time,
the cache's size and peak RSS per frame. --concurrent N: N such runs started together on one
empty cache (the first tasks of an array): wall time, CPU seconds of all of them, and how many
cache entries were built (each entry once: the cache's lock), beside one run alone. A last line
times the warm start on hcrl_sa (load_splits from a filled cache, in a fresh process).

--baseline-rev REV runs the same cases on another revision of the repository (git archive of
REV into the work dir; e.g. the commit before the memory-mapped store) for a ratio measured on
the same machine at the same time. Wall times are unreliable on a machine shared with other
work; peak RSS and CPU seconds are not.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from isal import igzip

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kdgat.common.cpus import sharing_env  # noqa: E402

DATA = Path(os.environ.get("KDGAT_DATA", REPO.parent / "shared" / "data"))
SHIFT_SECONDS = 10**6  # per copy: beyond set_01's span, so no two copies share a timestamp
DIGITS = 10  # set_01's timestamps: 10 integer digits (2023 epochs), the same after the shifts


def shifted_copy(text: bytes, offset: int) -> bytes:
    """The 4-column CSV with every timestamp's integer part increased by offset (header kept)."""
    header_end = text.index(b"\n") + 1
    body = np.frombuffer(text, dtype=np.uint8)[header_end:].copy()
    starts = np.concatenate([[0], np.flatnonzero(body == ord("\n"))[:-1] + 1])
    starts = starts[starts < len(body)]
    digits = body[starts[:, None] + np.arange(DIGITS)].astype(np.int64) - ord("0")
    after = body[starts + DIGITS]
    if digits.min() < 0 or digits.max() > 9 or not np.isin(after, (ord("."), ord(","))).all():
        raise SystemExit(f"a timestamp is not {DIGITS} integer digits: cannot shift this capture")
    value = digits @ (10 ** np.arange(DIGITS - 1, -1, -1)) + offset
    if value.max() >= 10**DIGITS:
        raise SystemExit("shifted timestamps need more digits: use fewer copies")
    shifted = (value[:, None] // (10 ** np.arange(DIGITS - 1, -1, -1))) % 10 + ord("0")
    body[starts[:, None] + np.arange(DIGITS)] = shifted.astype(np.uint8)
    return text[:header_end] + body.tobytes()


def replicate(source: Path, target: Path, copies: int) -> int:
    """copies shifted copies of every capture under source, in the same folders; frames written."""
    frames = 0
    for capture in sorted(source.rglob("*.csv.gz")):
        text = igzip.decompress(capture.read_bytes())
        lines = text.count(b"\n") - 1
        folder = target / capture.parent.relative_to(source)
        folder.mkdir(parents=True, exist_ok=True)
        stem = capture.name.removesuffix(".csv.gz")
        for copy in range(copies):
            data = shifted_copy(text, copy * SHIFT_SECONDS)
            (folder / f"{stem}_c{copy:03d}.csv.gz").write_bytes(igzip.compress(data, compresslevel=1))
            frames += lines
    return frames


class TreeRSS:
    """Peak of the summed RSS of a process and all its descendants, sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self.stop = pid, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _tree(self) -> list[int]:
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                try:
                    todo += [int(c) for c in task.read_text().split()]
                except OSError:
                    pass
        return found

    def _run(self) -> None:
        while not self.stop.wait(0.05):
            total = 0
            for pid in self._tree():
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                found = re.search(r"VmRSS:\s+(\d+) kB", status)
                total += int(found.group(1)) * 1024 if found else 0
            self.peak = max(self.peak, total)

    def finish(self) -> int:
        self.stop.set()
        self.thread.join()
        return self.peak


SETTINGS = {"batch_size": 64}  # --batch-size: larger batches make an epoch on a busy machine shorter


def start_train(
    repo: Path, corpus: Path, cache: Path, runs: Path, stride: int, sharing: int = 1
) -> subprocess.Popen:
    command = [sys.executable, str(repo / "train.py"), "--dataset", "set01", "--data-root", str(corpus)]
    command += ["--model-size", "tiny", "--training.epochs", "1", "--device", "cpu"]
    command += ["--training.batch-size", str(SETTINGS["batch_size"])]
    command += ["--dataset-config.cache-dir", str(cache), "--runs-root", str(runs)]
    command += ["--dataset-config.automotive.stride", str(stride)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if sharing > 1:
        # Runs started together share this machine's CPUs, as launch.py's local executor tells its
        # jobs (--training.torch-threads auto then gives each its part; on Slurm each array task
        # has its own CPUs). Without it, N runs of one thread per CPU each oversubscribe the cores
        # and spin: 8 runs on 2 cores took 58 CPU s a run against 11 alone.
        env |= sharing_env(sharing)
    return subprocess.Popen(command, cwd=runs.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def run_measured(procs: list[subprocess.Popen]) -> list[dict]:
    """Wait for each process with os.wait4 (its own rusage: peak RSS, CPU of it and its waited-for
    workers) while a thread drains its output; then read what it printed and recorded."""
    trees = [TreeRSS(p.pid) for p in procs]
    outputs: list[list[bytes]] = [[] for _ in procs]
    readers = [
        threading.Thread(target=lambda p=p, o=o: o.extend([p.stdout.read(), p.stderr.read()]), daemon=True)
        for p, o in zip(procs, outputs, strict=True)
    ]
    for reader in readers:
        reader.start()
    started, results = time.perf_counter(), []
    for proc, tree, reader, output in zip(procs, trees, readers, outputs, strict=True):
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        reader.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        stdout, stderr = (b.decode(errors="replace") for b in output)
        if proc.returncode != 0:
            raise SystemExit(f"train.py failed ({proc.returncode}):\n{stderr[-3000:]}")
        results.append(
            {
                "wall": wall,
                "rss": usage.ru_maxrss * 1024,
                "tree_rss": max(tree.finish(), usage.ru_maxrss * 1024),
                "cpu": usage.ru_utime + usage.ru_stime,
                **parse_run(stdout),
            }
        )
    return results


def parse_run(stdout: str) -> dict:
    run_dir = Path(re.search(r"run directory: (\S+)", stdout).group(1))
    data = re.search(r"data: (\d+) train, (\d+) validation, (\d+) test", stdout)
    epoch = re.search(r"epoch 1/1 .*?([\d.]+)s", stdout)
    status = json.loads((run_dir / "status.json").read_text())
    preprocess = status.get("preprocess", {})
    return {
        "graphs": sum(int(g) for g in data.groups()),
        "epoch": float(epoch.group(1)) if epoch else float("nan"),
        "frames": int(preprocess.get("frames", 0)),
        "built": int(preprocess.get("cache_misses", 0)),
        "preprocess_s": float(preprocess.get("seconds", 0.0)),
    }


def size_of(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB"


WARM_START = """
import sys, time, dataclasses
from pathlib import Path
sys.path.insert(0, {repo!r})
import configs
from kdgat.data.dataset import load_splits
cfg = configs.ExperimentConfig(dataset="hcrlsa")
d = dataclasses.replace(cfg.dataset_config, data_root=Path({data!r}), cache_dir=Path({cache!r}))
cfg = dataclasses.replace(cfg, dataset_config=d)
load_splits(cfg)
started = time.perf_counter()
load_splits(cfg)
print(time.perf_counter() - started)
"""


def warm_start(repo: Path, cache: Path) -> float:
    script = WARM_START.format(repo=str(repo), data=str(DATA / "hcrl_sa"), cache=str(cache))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def baseline_tree(rev: str, workdir: Path) -> Path:
    tree = workdir / f"rev_{rev}"
    if not tree.exists():
        tree.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", rev], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return tree


def table_row(label: str, copies: int, stride: int, r: dict, cache_bytes: int) -> str:
    cells = [label, f"x{copies}", str(stride), f"{r['frames'] / 1e6:.2f} M", f"{r['graphs']:,}"]
    cells += [f"{r['wall']:.1f} s", f"{r['cpu']:.0f} s", gb(r["rss"]), gb(r["tree_rss"])]
    cells += [f"{r['epoch']:.1f} s", gb(cache_bytes)]
    cells.append(f"{r['rss'] / max(r['frames'], 1):.0f} B")
    return "| " + " | ".join(cells) + " |"


HEADER = ("code", "corpus", "stride", "frames", "graphs", "wall", "CPU", "peak RSS", "peak RSS, tree")
HEADER += ("epoch", "cache", "RSS/frame")


def scale_table(args: argparse.Namespace, workdir: Path, revisions: dict[str, Path]) -> None:
    """Each corpus and stride, cold then warm, on each revision."""
    baseline_copies = {int(c) for c in (args.baseline_copies or args.copies).split(",")}
    print("| " + " | ".join(HEADER) + " |\n|" + "---|" * len(HEADER))
    for copies in [int(c) for c in args.copies.split(",")]:
        corpus = workdir / f"x{copies}" / "set_01"
        if not corpus.exists():
            replicate(args.data, corpus, copies)
        for stride in [int(s) for s in args.strides.split(",")]:
            for label, repo in revisions.items():
                if repo is not REPO and copies not in baseline_copies:
                    continue
                case = workdir / f"x{copies}_s{stride}_{label.replace(' ', '_')}"
                shutil.rmtree(case, ignore_errors=True)
                (case / "runs").mkdir(parents=True)
                for temperature in ("cold", "warm"):
                    [result] = run_measured(
                        [start_train(repo, corpus, case / "cache", case / "runs", stride)]
                    )
                    cache = size_of(case / "cache")
                    print(table_row(f"{label}, {temperature}", copies, stride, result, cache), flush=True)
                shutil.rmtree(case, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA / "can_train_and_test" / "set_01")
    parser.add_argument("--copies", default="1,10,30")
    parser.add_argument("--strides", default="100,10")
    parser.add_argument("--concurrent", type=int, default=4)
    parser.add_argument("--concurrent-copies", type=int, default=1)
    parser.add_argument("--baseline-rev", default=None)
    parser.add_argument("--baseline-copies", default=None, help="copies run on the baseline (default: all)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--batch-size", type=int, default=64, help="training batch size (default 64)")
    args = parser.parse_args()
    SETTINGS["batch_size"] = args.batch_size
    if not args.data.is_dir():
        raise SystemExit(f"{args.data} is not a folder of set_01 captures (--data)")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kdgat_scale_"))
    workdir.mkdir(parents=True, exist_ok=True)
    revisions = {"now": REPO}
    if args.baseline_rev:
        revisions[f"rev {args.baseline_rev}"] = baseline_tree(args.baseline_rev, workdir)
    try:
        scale_table(args, workdir, revisions)
        concurrent(args, workdir, revisions)
        for label, repo in revisions.items():
            seconds = warm_start(repo, workdir / f"hcrl_sa_{label.replace(' ', '_')}")
            print(f"warm start, hcrl_sa load_splits from a filled cache ({label}): {seconds:.2f} s")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


def concurrent(args: argparse.Namespace, workdir: Path, revisions: dict[str, Path]) -> None:
    """N runs started together on one empty cache vs one run alone."""
    n, copies = args.concurrent, args.concurrent_copies
    if n < 2:
        return
    corpus = workdir / f"x{copies}" / "set_01"
    if not corpus.exists():
        replicate(args.data, corpus, copies)
    print(f"\n{n} runs started together on one empty cache, x{copies} (stride 100), vs one alone:\n")
    print("| code | runs | wall, all done | CPU s, all | CPU s per run | entries built | peak RSS, largest |")
    print("|---|---|---|---|---|---|---|")
    for label, repo in revisions.items():
        for runs in (1, n):
            case = workdir / f"concurrent_{runs}_{label.replace(' ', '_')}"
            shutil.rmtree(case, ignore_errors=True)
            (case / "runs").mkdir(parents=True)
            cache, out = case / "cache", case / "runs"
            procs = [start_train(repo, corpus, cache, out, 100, sharing=runs) for _ in range(runs)]
            results = run_measured(procs)
            cpu = sum(r["cpu"] for r in results)
            cells = [label, str(runs), f"{max(r['wall'] for r in results):.1f} s", f"{cpu:.1f}"]
            cells += [
                f"{cpu / runs:.1f}",
                str(sum(r["built"] for r in results)),
                gb(max(r["rss"] for r in results)),
            ]
            print("| " + " | ".join(cells) + " |", flush=True)
            shutil.rmtree(case, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
