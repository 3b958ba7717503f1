"""Benchmark: aggregate 10,000 run directories with kdgat.results.load_runs (target <= 5 s).

    python benchmarks/results.py [--runs 10000] [--repeat 3] [--keep DIR | --reuse DIR]
                                 [--without-config-json]

Writes a realistic sweep into a temporary folder: config.yaml as to_yaml writes it, and
config.json beside it as Run.claim writes it (--without-config-json: config.yaml alone, as in run
directories from before config.json, which are read with PyYAML); status.json; metrics.json with a
30-epoch history, per-attack-type and per-split results (with the floor and the field's metrics);
an eval_*.json transfer result in every tenth run; and 1% broken runs. Then times load_runs and
the grouping on top of it. Prints the figures; asserts nothing.
"""

import argparse
import itertools
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import configs
from kdgat import results
from kdgat.config.codec import to_dict, to_yaml
from kdgat.config.resolve import resolve
from kdgat.runs.store import CONFIG_JSON, config_json_text

ATTACKS = ("dos", "fuzzing", "spoofing", "replay")
DATASETS = ("hcrlch", "hcrlsa", "set01", "set02", "set03", "set04", "synthetic")
SIZES = ("tiny", "student", "intermediate", "teacher")
DISTILLATIONS = ("no", "standard", "topology_preserving")


def field_metrics(rng: random.Random) -> dict:
    """The keys kdgat.evaluation.field_metrics adds to every result, with plausible values."""
    return {
        "mcc": rng.uniform(0.7, 1.0),
        "balanced_accuracy": rng.uniform(0.8, 1.0),
        "recall_at_fpr_1pct": rng.uniform(0.5, 1.0),
        "recall_at_fpr_0_1pct": rng.uniform(0.2, 1.0),
        "precision_at_recall_95pct": rng.uniform(0.5, 1.0),
        "ece": rng.uniform(0.0, 0.1),
    }


def metrics_dict(rng: random.Random) -> dict:
    n, n_attack = 4000, 1500
    tp = rng.randint(1200, n_attack)
    fp = rng.randint(0, 60)
    precision, recall = tp / (tp + fp), tp / n_attack
    block = {
        "n": n,
        "n_attack": n_attack,
        "accuracy": (tp + n - n_attack - fp) / n,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall),
        "auroc": rng.uniform(0.9, 1.0),
        "benign_fpr": fp / (n - n_attack),
        "threshold": 0.5,
        "confusion_matrix": {"tn": n - n_attack - fp, "fp": fp, "fn": n_attack - tp, "tp": tp},
        "flag_all": {"precision": 0.375, "recall": 1.0, "f1": 0.5455, "accuracy": 0.375, "benign_fpr": 1.0},
        **field_metrics(rng),
    }
    attack_types = {a: {"n": 300, "recall": rng.uniform(0.8, 1.0), **field_metrics(rng)} for a in ATTACKS}
    test = dict(block, attack_types=attack_types)
    history = [
        {
            "epoch": e,
            "lr": 0.003 * (1 - e / 30),
            "train_loss": rng.random(),
            "val_loss": rng.random(),
            "val_f1": rng.random(),
            "val_auroc": rng.random(),
        }
        for e in range(30)
    ]
    return {
        "val": dict(block),
        "test": test,
        "test_by_split": {
            "test_01_known_vehicle_known_attack": dict(test),
            "test_02_unknown_vehicle_known_attack": dict(test),
        },
        "preset": "x",
        "params": rng.randint(5_000, 500_000),
        "best_epoch": rng.randint(0, 29),
        "epochs_run": 30,
        "stopped_early": False,
        "history": history,
        "data": {
            "root": "data/x",
            "train_graphs": 9600,
            "val_graphs": 2400,
            "test_graphs": {"test_01_known_vehicle_known_attack": 4000},
            "train_files": {f"data/x/train_0{i}/log.csv": 30000 for i in range(4)},
            "vocabulary_size": 42,
        },
    }


def write_tree(root: Path, count: int, config_json: bool = True) -> None:
    rng = random.Random(0)
    templates = {}
    for dataset, size, distillation in itertools.product(DATASETS, SIZES, DISTILLATIONS):
        if size == "teacher" and distillation != "no":
            continue
        cfg = resolve(configs.ExperimentConfig(dataset=dataset, model_size=size, distillation=distillation))
        templates[(dataset, size, distillation)] = (cfg, to_yaml(cfg), to_dict(cfg))
    combos = list(templates)
    for i in range(count):
        dataset, size, distillation = combos[i % len(combos)]
        cfg, text, mapping = templates[(dataset, size, distillation)]
        seed, lr = i // len(combos), [0.001, 0.003, 0.01][i % 3]
        text = text.replace("  seed: 0\n", f"  seed: {seed}\n").replace("  lr: 0.003\n", f"  lr: {lr}\n")
        levels = [str(getattr(cfg, level)) for level in configs.LEVELS]
        run_dir = root.joinpath(*levels, f"run_{seed + 1:03d}")
        run_dir.mkdir(parents=True)
        broken = i % 100 == 99
        (run_dir / "config.yaml").write_text(text)
        if config_json:
            training = {**mapping["training_config"], "seed": seed, "lr": lr}
            knobs = config_json_text(text.encode(), {**mapping, "training_config": training})
            (run_dir / CONFIG_JSON).write_text(knobs + "\n")
        status = {
            "state": "failed" if broken else "finished",
            "host": "node01",
            "pid": 1234,
            "git": {"commit": "abc123", "dirty": False},
            "created_at": "2026-01-01T00:00:00+00:00",
            "finished_at": "2026-01-01T01:00:00+00:00",
            "timings": {
                "data_s": rng.uniform(1, 5),
                "train_s": rng.uniform(100, 900),
                "eval_s": rng.uniform(1, 9),
            },
            "slurm": {"slurm_job_id": str(1000 + i)},
            "error": "RuntimeError: CUDA out of memory" if broken else None,
        }
        (run_dir / "status.json").write_text(json.dumps(status, indent=2))
        if not broken:
            (run_dir / "metrics.json").write_text(json.dumps(metrics_dict(rng), indent=2, sort_keys=True))
        if i % 10 == 0:
            other = DATASETS[(DATASETS.index(dataset) + 1) % len(DATASETS)]
            (run_dir / f"eval_{other}.json").write_text(json.dumps(metrics_dict(rng)["test"]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the tree here (kept) instead of a temp dir")
    parser.add_argument(
        "--reuse", type=Path, help="time an existing tree (from --keep) instead of writing one"
    )
    parser.add_argument(
        "--without-config-json",
        action="store_true",
        help="write config.yaml alone (run directories from before config.json: the PyYAML fallback)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.reuse or args.keep or Path(tmp) / "runs"
        if args.reuse is None:
            started = time.perf_counter()
            write_tree(root, args.runs, config_json=not args.without_config_json)
            print(f"wrote {args.runs} run directories in {time.perf_counter() - started:.1f} s")
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        print(f"cpus available: {cpus}")
        print(f"load average before timing: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        timings, cpu = [], []
        for _ in range(args.repeat):
            before = os.times()
            started = time.perf_counter()
            df = results.load_runs(root)
            timings.append(time.perf_counter() - started)
            after = os.times()
            # CPU seconds of this process and its (joined) worker processes together.
            cpu.append(sum(after[:4]) - sum(before[:4]))
        started = time.perf_counter()
        grouped = results.group_runs(
            results.usable(df), ["dataset", "model_size", "distillation"], list(results.DEFAULT_METRICS)
        )
        group_s = time.perf_counter() - started
        listed = len(results.problems(df))
        print(f"load_runs: {len(df)} rows x {df.shape[1]} columns, {listed} listed as problems")
        best, mean = min(timings), sum(timings) / len(timings)
        print(f"load_runs time: best {best:.2f} s, mean {mean:.2f} s (target <= 5 s)")
        print(
            f"load_runs CPU time, all processes: best {min(cpu):.2f} s "
            f"(wall time on idle cores is about this / cores, plus start-up)"
        )
        print(f"load average after timing: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"group_runs over {len(grouped)} groups: {group_s:.3f} s")


if __name__ == "__main__":
    main()
