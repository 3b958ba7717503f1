"""The internet modality on the real flow folders: detection figures beside the flag-everything
floor, and preprocessing speed beside the automotive one on the same machine.

    python benchmarks/internet.py [--data ../shared/data] [--runs-root DIR] [--epochs N]
                                  [--size student] [--datasets stratosphere,cicids2017,dapt2020]

For each dataset: the windows of each split and test file with their flag-everything F1; then a
GAT classifier (all_samples, with its edge read-out) and a VGAE (normals_only), both of --size,
trained for --epochs on the default windows (10 flows; DAPT2020: 10 s windows, KNOBS) and tested
on each capture's last 20% (threshold chosen on validation). Printed per run, at window level
and at flow level: F1 beside the F1 of flagging everything, precision, recall, AUROC (the floor
is 0.5) and benign FPR (flagging everything: 1.0). Then preprocessing, cold with the cache off
(read + cut + build, in worker processes as training does): flows/s on each flow folder and
frames/s on a CAN dataset (hcrl_sa) in the same process, each also as MB/s of uncompressed text
(a Zeek or CICFlowMeter row is 4-10 times wider than a CAN frame); best of --repeats, with the
CPU time (the machine may be shared).
"""

import dataclasses
import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from accuracy import benchmark_parser  # importing accuracy puts the repository on sys.path
from preprocess import _cpu_seconds

import configs
from kdgat.data.automotive.modality import AUTOMOTIVE
from kdgat.data.dataset import load_splits
from kdgat.data.internet.modality import INTERNET
from kdgat.data.modality import Modality
from kdgat.data.prepare import prepare_files
from kdgat.data.registry import capture_files, resolve_layout
from kdgat.experiment import run_experiment

FOLDERS = {
    "stratosphere": "internet_stratosphere_zeek",
    "cicids2017": "internet_cicids2017_improved_sampled",
    "dapt2020": "internet_dapt2020",
}
# InternetConfig fields a dataset's runs set. DAPT2020's traffic is thin (a median of 1 flow per
# 10 s) and its attacks rare in time: 10 s windows keep its flag-everything floor low (<= 0.15),
# while 10-flow windows would span minutes and mix its few attack flows into many windows.
KNOBS: dict[str, dict[str, float]] = {"dapt2020": {"window_seconds": 10.0}}
CAN_DATASET = ("hcrlsa", "hcrl_sa")
RUNS = (
    (
        "GAT classifier",
        {"learning_type": "classifier", "model_architecture": "GAT", "training_mode": "all_samples"},
    ),
    (
        "VGAE normals_only",
        {"learning_type": "unsupervised", "model_architecture": "VGAE", "training_mode": "normals_only"},
    ),
)
HEADER = (
    "| dataset      | model             | level   |      n | attacks | F1     | floor F1 | prec.  | recall "
    "| AUROC  | ben.FPR | scored by    | train s |"
)


def internet_config(
    dataset: str, data: Path, runs_root: Path, args, **levels: str
) -> configs.ExperimentConfig:
    cfg = configs.ExperimentConfig(
        modality="internet",
        dataset=dataset,
        device="cpu",
        runs_root=runs_root,
        model_size=args.size,
        **levels,
    )
    return dataclasses.replace(
        cfg,
        dataset_config=dataclasses.replace(
            cfg.dataset_config,
            data_root=data / FOLDERS[dataset],
            internet=dataclasses.replace(cfg.dataset_config.internet, **KNOBS.get(dataset, {})),
        ),
        training_config=dataclasses.replace(
            cfg.training_config, epochs=args.epochs, torch_threads=args.torch_threads
        ),
    )


def fmt(value: float | None, width: int = 6) -> str:
    return "n/a".rjust(width) if value is None else f"{value:.4f}".rjust(width)


def figure_row(dataset: str, model: str, level: str, m: dict | None, seconds: float, n_key: str) -> str:
    if m is None:  # see the note printed under the table
        return (
            f"| {dataset:12s} | {model:17s} | {level:7s} | "
            + " | ".join(["   -"] * 9)
            + f" | {seconds:7.1f} |"
        )
    attacks = m["n_attack_flows"] if n_key == "n_flows" else m["n_attack"]
    return (
        f"| {dataset:12s} | {model:17s} | {level:7s} | {m[n_key]:6d} | {attacks:7d} | {fmt(m['f1'])} "
        f"| {fmt(m['flag_all']['f1'], 8)} | {fmt(m['precision'])} | {fmt(m['recall'])} | {fmt(m['auroc'])} "
        f"| {fmt(m['benign_fpr'], 7)} | {m.get('scored_by', '-'):12s} | {seconds:7.1f} |"
    )


def detection(args, runs_root: Path) -> list[str]:
    lines = [HEADER, "|" + "|".join("-" * len(c) for c in HEADER.split("|")[1:-1]) + "|"]
    missing = []
    for dataset in args.datasets.split(","):
        for model, levels in RUNS:
            cfg = internet_config(dataset, args.data, runs_root, args, **levels)
            started = time.perf_counter()
            run_dir = run_experiment(cfg)
            seconds = time.perf_counter() - started
            test = json.loads((run_dir / "metrics.json").read_text())["test"]
            lines.append(figure_row(dataset, model, "windows", test, seconds, "n"))
            lines.append(figure_row(dataset, model, "flows", test.get("flows"), seconds, "n_flows"))
            if "flows" not in test:
                missing.append(f"{dataset} {model}")
    if missing:
        lines.append(
            f"\nno flow-level figures for {', '.join(missing)}: metrics.json has no test.flows (a test "
            "set without windows makes kdgat/evaluation/report.py window_flows drop them for window-scored "
            "models)"
        )
    return lines


def split_counts(args, runs_root: Path) -> list[str]:
    """Windows, attack windows and the flag-everything F1 of every split and test file, as
    training cuts them (the floor the detection table is read against)."""
    lines = ["| dataset      | split                                    | windows | attacks | floor F1 |"]
    lines.append("|" + "|".join("-" * len(c) for c in lines[0].split("|")[1:-1]) + "|")
    for dataset in args.datasets.split(","):
        cfg = internet_config(dataset, args.data, runs_root, args)
        splits = load_splits(
            dataclasses.replace(cfg, dataset_config=dataclasses.replace(cfg.dataset_config, cache=False))
        )
        parts = [("train", splits.train), ("validation", splits.val), ("test, all files", splits.test_all)]
        parts += [(f"test {name}", graphs) for name, graphs in splits.test.items()]
        for name, graphs in parts:
            n, attacks = len(graphs), int(graphs.y.sum())
            floor = 2 * attacks / (n + attacks) if attacks else 0.0
            lines.append(f"| {dataset:12s} | {name:40s} | {n:7d} | {attacks:7d} | {fmt(floor, 8)} |")
    return lines


def cold_rate(
    jobs: list[tuple[Path, str, str]], modality: Modality, repeats: int
) -> tuple[int, float, float]:
    """Records, best wall-clock seconds and its CPU seconds of preprocessing jobs, cache off."""
    d = configs.DatasetConfig(cache=False)
    best = (0, float("inf"), 0.0)
    for _ in range(repeats):
        begin, cpu_begin = time.perf_counter(), _cpu_seconds()
        prepared = prepare_files(jobs, d, modality)
        wall, cpu = time.perf_counter() - begin, _cpu_seconds() - cpu_begin
        if wall < best[1]:
            best = (sum(p.frames for p in prepared), wall, cpu)
    return best


def dataset_jobs(modality: str, dataset: str, data_root: Path) -> list[tuple[Path, str, str]]:
    """(file, format, block kind) of every capture of the dataset, as load_splits cuts them."""
    cfg = configs.ExperimentConfig(modality=modality, dataset=dataset)  # type: ignore[arg-type]
    cfg = dataclasses.replace(
        cfg, dataset_config=dataclasses.replace(cfg.dataset_config, data_root=data_root)
    )
    root, layout = resolve_layout(cfg)
    if not layout.split_folders:
        return [(p, fmt, "train_val_test") for p, fmt in capture_files(root, layout)]
    jobs = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        kind = "train_val" if folder.name.startswith("train_") else "whole"
        jobs += [(p, fmt, kind) for p, fmt in capture_files(folder, layout)]
    return jobs


def text_megabytes(jobs: list[tuple[Path, str, str]]) -> float:
    """Uncompressed size of the captures: a flow row is several times wider than a CAN frame."""
    return (
        sum(
            len(gzip.decompress(p.read_bytes())) if p.suffix == ".gz" else p.stat().st_size
            for p, _, _ in jobs
        )
        / 1e6
    )


def throughput(args) -> list[str]:
    can_name, can_folder = CAN_DATASET
    can_jobs = dataset_jobs("automotive", can_name, args.data / can_folder)
    frames, wall, cpu = cold_rate(can_jobs, AUTOMOTIVE, args.repeats)
    can_rate = frames / wall
    lines = [
        f"automotive {can_name}: {frames:,} frames in {wall:.2f} s = {can_rate:,.0f} frames/s, "
        f"{text_megabytes(can_jobs) / wall:.0f} MB/s of text ({frames / cpu:,.0f} frames per CPU-second)"
    ]
    for dataset in args.datasets.split(","):
        jobs = dataset_jobs("internet", dataset, args.data / FOLDERS[dataset])
        flows, wall, cpu = cold_rate(jobs, INTERNET, args.repeats)
        lines.append(
            f"internet {dataset}: {flows:,} flows in {wall:.2f} s = {flows / wall:,.0f} flows/s, "
            f"{text_megabytes(jobs) / wall:.0f} MB/s of text ({flows / cpu:,.0f} flows per CPU-second); "
            f"automotive frames/s / internet flows/s: {can_rate / (flows / wall):.1f}x"
        )
    return lines


def main() -> int:
    parser = benchmark_parser(__doc__, "student")
    parser.set_defaults(datasets=",".join(FOLDERS), epochs=5)
    parser.add_argument("--torch-threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--repeats", type=int, default=3, help="preprocessing repeats (best is printed)")
    args = parser.parse_args()
    runs_root = args.runs_root or Path(tempfile.mkdtemp(prefix="kdgat-internet-"))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"data {args.data.resolve()}; {cores} cores, load average {os.getloadavg()[0]:.2f}; "
        f"size {args.size}, {args.epochs} epochs, {args.torch_threads} torch thread(s);\n"
        f"runs under {runs_root}\n"
    )
    print("windows per split (flag-everything F1 = 2a / (n + a)):\n")
    print("\n".join(split_counts(args, runs_root)) + "\n")
    table = detection(args, runs_root)
    print("test figures (threshold chosen on validation; floor = flag every window / flow):\n")
    print("\n".join(table))
    print("\npreprocessing, cold, cache off (read + cut + build, worker processes as in training):\n")
    print("\n".join(throughput(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
