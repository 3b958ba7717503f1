"""Preprocessing throughput on the real captures in ../shared/data.

    .venv/bin/python benchmarks/preprocess.py [--data DIR] [--workers N]

Prints, for the CAN captures of the data folder (can-train-and-test, hcrl_sa, DAGA, ROAD):
- cold: raw files -> parsed, windowed graphs written to an empty cache (frames/s, and the CPU time);
- warm: `load_splits` of all of hcrl_sa from that cache -> normalised tensors ready to train (s);
- reference: pandas read + a Python loop per window building the same graphs, on one file, in the
  same process, and the ratio of our per-file speed to it (the graphs are checked to be equal).
The data folder defaults to ../shared/data beside the repository root, or $KDGAT_DATA.
"""

import argparse
import dataclasses
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import configs  # noqa: E402
from kdgat.data.automotive.graphs import payload_entropy  # noqa: E402
from kdgat.data.automotive.modality import AUTOMOTIVE  # noqa: E402
from kdgat.data.dataset import load_splits  # noqa: E402
from kdgat.data.internet.modality import INTERNET  # noqa: E402
from kdgat.data.prepare import prepare_file, prepare_files  # noqa: E402

CAN_SETS = {
    "can_train_and_test": "can4",
    "hcrl_sa": "can4",
    "daga_volvo_v40": "daga",
    "road_masquerade_statgraph": "road",
}
REFERENCE_FILE = "hcrl_sa/train_01_attack_free/attack-free-kia.csv.gz"


def reference_graphs(path: Path, window: int, stride: int) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """The straightforward way: pandas read, per-row hex parsing, a Python loop per window."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    time_s = table["timestamp"].astype(float).to_numpy()
    can_id = np.array([int(v, 16) for v in table["arbitration_id"]], dtype=np.int64)
    payload_rows = [bytes.fromhex(v.strip()) for v in table["data_field"]]
    dlc = np.array([len(p) for p in payload_rows], dtype=np.int8)
    payload = np.zeros((len(payload_rows), 8), dtype=np.uint8)
    for i, p in enumerate(payload_rows):
        payload[i, : len(p)] = np.frombuffer(p, dtype=np.uint8)
    xs, edges = [], []
    for start in range(0, len(can_id) - window + 1, stride):
        sl = slice(start, start + window)
        ids, t, pay, ln = can_id[sl], time_s[sl], payload[sl], dlc[sl]
        nodes = sorted(set(ids.tolist()))
        local = {n: k for k, n in enumerate(nodes)}
        transitions: dict[tuple[int, int], list[float]] = {}
        for i in range(window - 1):
            key = (local[int(ids[i])], local[int(ids[i + 1])])
            transitions.setdefault(key, []).append(float(np.log1p(abs(t[i + 1] - t[i]) * 1e3)))
        rows = []
        for n in nodes:
            where = np.flatnonzero(ids == n)
            p = pay[where].astype(np.float64)
            gaps = np.log1p(np.abs(np.diff(t[where])) * 1e3)
            pairs = max(len(where) - 1, 1)
            changes = (pay[where][1:] != pay[where][:-1]).any(axis=1).sum()
            gap_mean = gaps.sum() / pairs
            entropy = payload_entropy(pay[where], ln[where]).mean()
            rows.append(
                [
                    len(where) / window,
                    where[0] / window,
                    where[-1] / window,
                    *(p.mean(0) / 255),
                    *(p.std(0) / 255),
                    *((p.max(0) - p.min(0)) / 255),
                    ln[where].mean() / 8,
                    changes / pairs,
                    entropy / 3,
                    gap_mean,
                    np.sqrt(max((gaps**2).sum() / pairs - gap_mean**2, 0.0)),
                    sum(1 for (_, b) in transitions if b == local[n]),
                    sum(1 for (a, _) in transitions if a == local[n]),
                    1.0,
                ]
            )
        xs.append(np.array(rows, dtype=np.float32))
        edges.append(
            np.array(
                [[np.log1p(len(g)), np.mean(g), np.std(g)] for _, g in sorted(transitions.items())],
                dtype=np.float32,
            )
        )
    return xs, edges, len(can_id)


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the preprocessing workers): on a
    shared machine, wall-clock frames/s also measures the other users."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("KDGAT_DATA", REPO / ".." / "shared" / "data"))
    )
    parser.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    parser.add_argument("--window", type=int, default=100)
    args = parser.parse_args(argv)
    data = args.data
    if not data.is_dir():
        print(f"data folder {data} not found; pass --data DIR or set KDGAT_DATA", file=sys.stderr)
        return 2
    jobs = [(p, fmt, "whole") for name, fmt in CAN_SETS.items() for p in sorted((data / name).rglob("*.gz"))]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"data: {data.resolve()}  files: {len(jobs)}  cores: {cores}  window=stride={args.window}")

    with tempfile.TemporaryDirectory() as cache:
        d = configs.DatasetConfig(
            automotive=configs.AutomotiveConfig(window=args.window, stride=args.window), cache_dir=Path(cache)
        )
        begin, cpu_begin = time.perf_counter(), _cpu_seconds()
        prepared = prepare_files(jobs, d, AUTOMOTIVE, workers=args.workers)
        cold, cpu = time.perf_counter() - begin, _cpu_seconds() - cpu_begin
        frames = sum(p.frames for p in prepared)
        print(
            f"cold  raw -> cached graphs: {frames:,} frames in {cold:.2f} s = {frames / cold:,.0f} frames/s "
            f"(CPU {cpu:.2f} s over all processes, {frames / cpu:,.0f} frames per CPU-second; "
            f"load average {os.getloadavg()[0]:.2f})"
        )

        cfg = configs.ExperimentConfig(dataset="hcrlsa")  # type: ignore[arg-type]
        cfg = dataclasses.replace(cfg, dataset_config=dataclasses.replace(d, data_root=data))
        load_splits(cfg)  # fills the cache with hcrl_sa's train/val blocks
        begin = time.perf_counter()
        splits = load_splits(cfg)
        warm = time.perf_counter() - begin
        graphs = len(splits.train) + len(splits.val) + len(splits.test_all)
        print(
            f"warm  cache -> ready tensors, all hcrl_sa: {splits.preprocess['frames']:,.0f} frames, "
            f"{graphs:,} graphs in {warm:.2f} s (cache hits {splits.preprocess['cache_hits']:.0f}/"
            f"{splits.preprocess['cache_hits'] + splits.preprocess['cache_misses']:.0f})"
        )

        path = data / REFERENCE_FILE
        d1 = dataclasses.replace(d, cache=False)
        begin = time.perf_counter()
        ours = prepare_file(path, "can4", "whole", d1, AUTOMOTIVE)
        ours_s = time.perf_counter() - begin
        begin = time.perf_counter()
        ref_x, ref_e, ref_frames = reference_graphs(path, args.window, args.window)
        ref_s = time.perf_counter() - begin
        raw = ours.blocks["test"]
        x = np.split(raw["x"], raw["node_ptr"][1:-1])
        e = np.split(raw["edge_attr"], raw["edge_ptr"][1:-1])
        same = all(np.allclose(a, b, atol=1e-4) for a, b in zip(x, ref_x, strict=True)) and all(
            np.allclose(a, b, atol=1e-4) for a, b in zip(e, ref_e, strict=True)
        )
        print(
            f"reference (pandas + Python loop per window) on {REFERENCE_FILE}: "
            f"{ref_frames / ref_s:,.0f} frames/s; ours on the same file, 1 thread: "
            f"{ours.frames / ours_s:,.0f} frames/s; ratio {ref_s / ours_s:.1f}x; "
            f"cold (all files) / reference {frames / cold / (ref_frames / ref_s):.1f}x; "
            f"graphs equal: {same}"
        )
        internet_cold(data, Path(cache) / "internet", args.workers, frames / cold)
    return 0


INTERNET_SETS = {
    "internet_stratosphere_zeek": ("*conn.log.labeled.gz", "zeek"),
    "internet_cicids2017_improved_sampled": ("*.csv.gz", "cicflowmeter"),
}


def internet_cold(data: Path, cache: Path, workers: int | None, can_rate: float) -> None:
    """Raw flow captures -> cached host graphs, beside the CAN rate just measured."""
    d = configs.DatasetConfig(cache_dir=cache)
    for name, (pattern, fmt) in INTERNET_SETS.items():
        jobs = [(p, fmt, "train_val_test") for p in sorted((data / name).glob(pattern))]
        if not jobs:
            print(f"internet: {data / name} absent, skipped")
            continue
        begin, cpu_begin = time.perf_counter(), _cpu_seconds()
        prepared = prepare_files(jobs, d, INTERNET, workers=workers)
        cold, cpu = time.perf_counter() - begin, _cpu_seconds() - cpu_begin
        flows = sum(p.frames for p in prepared)
        print(
            f"cold  {name}: {flows:,} flows in {cold:.2f} s = {flows / cold:,.0f} flows/s (CPU {cpu:.2f} s; "
            f"CAN above: {can_rate:,.0f} frames/s, ratio {can_rate / (flows / cold):.1f}x)"
        )


if __name__ == "__main__":
    raise SystemExit(main())
