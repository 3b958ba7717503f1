"""Train and evaluate every KD-GAT stage on real captures over several seeds; print mean +- std.

    python benchmarks/accuracy.py [--data ../shared/data] [--runs-root DIR] [--epochs N]
        [--size student] [--seeds 0,1,2] [--datasets hcrlsa,set01,...] [--quick]
        [--can-features default|agnostic]

Datasets (DATASETS): HCRL Survival (hcrlsa, test_01_known_vehicle_known_attack), can-train-and-
test set_01 (test_01), set_03 (test_03: an unknown attack), set_04 (test_01 and the masquerade
test_06), DAGA (Volvo V40) and ROAD masquerade (each file's last 20 %), the internet flow
folders (stratosphere, cicids2017, dapt2020 in 10 s windows: each capture's last 20 %; window
and flow figures) and BATADAL (its test set). Stages, in dependency order per seed: VGAE
(normals_only), GAT (all_samples), GAT (curriculum_classifier, on that VGAE), DQN fusion (of
that VGAE and that GAT), with the DQN's baselines: the GAT alone, the VGAE alone, a fixed alpha
0.5 and the fixed alpha that scores best on validation, each thresholded as the agent is. A
dataset's recipe applies (BATADAL: the plant VGAE, 50 epochs unless --epochs is given); where
it changes the graphs, a VGAE without the recipe on the GATs' graphs is trained too, and the
curriculum and the DQN build on that one.

Each row: test F1 mean +- std over the seeds, the F1 of flagging every window (floor), AUROC,
benign FPR, and for internet rows the same at flow level. Then, per dataset, whether the
curriculum beats all_samples and whether the DQN beats its best baseline (a difference inside
one std of either decides nothing), and the elapsed time. --quick: tiny models, 2 epochs, seeds
0,1,2, on hcrlsa and set01 (a run of minutes, to check the benchmark itself).
"""

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import configs  # noqa: E402
from kdgat.config.resolve import resolve  # noqa: E402
from kdgat.experiment import run_experiment  # noqa: E402

CAN = "automotive"
# name -> (modality, folder under --data, test folders or None for each file's end)
DATASETS: dict[str, tuple[str, str, tuple[str, ...] | None]] = {
    "hcrlsa": (CAN, "hcrl_sa", ("test_01_known_vehicle_known_attack",)),
    "set01": (CAN, "can_train_and_test", ("test_01_known_vehicle_known_attack",)),
    "set03": (CAN, "can_train_and_test", ("test_03_known_vehicle_unknown_attack",)),
    "set04": (CAN, "can_train_and_test", ("test_01_known_vehicle_known_attack", "test_06_masquerade")),
    "daga": (CAN, "daga_volvo_v40", None),
    "road": (CAN, "road_masquerade_statgraph", None),
    "stratosphere": ("internet", "internet_stratosphere_zeek", None),
    "cicids2017": ("internet", "internet_cicids2017_improved_sampled", None),
    "dapt2020": ("internet", "internet_dapt2020", None),
    "batadal": ("watertreatment", "watertreatment_batadal", None),
}
# Modality knobs a dataset's benchmark runs need: DAPT2020's attacks are rare in time, so its
# windows are 10 s of flows (flagging every window then scores F1 0.02, not ~1 as for 10 flows).
KNOBS: dict[str, dict[str, object]] = {"dapt2020": {"window_seconds": 10.0}}
STAGES = (
    ("VGAE normals_only", "unsupervised", "VGAE", "normals_only"),
    ("GAT all_samples", "classifier", "GAT", "all_samples"),
    ("GAT curriculum", "classifier", "GAT", "curriculum_classifier"),
    ("DQN fusion", "fusion", "DQN", "all_samples"),
)
DISAGREE = "_disagreements"  # per seed: validation windows where the DQN's two inputs disagree
# Trained before the curriculum where the dataset's VGAE recipe changes the graphs (BATADAL).
OWN_GRAPHS_VGAE = (
    "VGAE normals_only, no recipe (the GATs' graphs)",
    "unsupervised",
    "VGAE",
    "normals_only",
    "none",
)


def stage_experiment(
    stage: tuple[str, ...], dataset: str, args: argparse.Namespace, runs_root: Path, seed: int
) -> configs.ExperimentConfig:
    _, learning_type, arch, mode, *recipe = stage
    return experiment(
        dataset,
        args.data,
        runs_root / f"seed_{seed}",  # so curriculum and DQN bind this seed's VGAE and GAT
        args.epochs,
        seed,
        learning_type=learning_type,
        model_architecture=arch,
        training_mode=mode,
        model_size=args.size,
        can_features=getattr(args, "can_features", "default"),
        **({"recipe": recipe[0]} if recipe else {}),
    )


def run_stage(stage: tuple[str, ...], cfg: configs.ExperimentConfig, results: dict[str, list[dict]]) -> None:
    """Train one stage; its test figures (and its baselines') appended to results by label."""
    metrics = json.loads((run_experiment(cfg) / "metrics.json").read_text())
    results.setdefault(stage[0], []).append(figures(metrics["test"]))
    for name, baseline in metrics.get("baselines", {}).items():
        results.setdefault(f"  baseline {name}", []).append(figures(baseline))
    headroom = metrics.get("fusion_headroom")
    if headroom:  # what any per-window alpha could reach (an upper bound, not a baseline)
        bound = {
            "f1": headroom["test"]["oracle_per_window_alpha_f1"],
            "floor": metrics["test"]["flag_all"]["f1"],
        }
        results.setdefault("  bound: oracle per-window alpha", []).append(bound)
        results.setdefault(DISAGREE, []).append(headroom["val"])  # for the verdict, not the table


def experiment(
    dataset: str,
    data: Path,
    runs_root: Path,
    epochs: int | None,
    seed: int = 0,
    can_features: str = "default",
    **levels: str,
) -> configs.ExperimentConfig:
    """A CPU experiment on one of DATASETS, tested on its benchmark test folders (CAN datasets
    with the feature set can_features)."""
    modality, folder, test_dirs = DATASETS[dataset]
    cfg = configs.ExperimentConfig(
        modality=modality, dataset=dataset, device="cpu", runs_root=runs_root, **levels
    )
    d = dataclasses.replace(cfg.dataset_config, data_root=data / folder)
    if dataset in KNOBS:
        own = dataclasses.replace(getattr(d, modality), **KNOBS[dataset])
        d = dataclasses.replace(d, **{modality: own})
    if test_dirs:
        d = dataclasses.replace(d, test_dirs=test_dirs)
    if modality == CAN:
        d = dataclasses.replace(d, automotive=dataclasses.replace(d.automotive, features=can_features))
    t = dataclasses.replace(cfg.training_config, seed=seed)
    cfg = resolve(dataclasses.replace(cfg, dataset_config=d, training_config=t))  # the recipe
    if epochs is not None:
        cfg = dataclasses.replace(
            cfg, training_config=dataclasses.replace(cfg.training_config, epochs=epochs)
        )
    return cfg


def benchmark_parser(description: str, size: str | None, datasets: bool = True) -> argparse.ArgumentParser:
    """Options every accuracy-style benchmark takes (data, runs root, epochs, size, and datasets
    unless the benchmark has one dataset)."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--runs-root", type=Path, default=None)
    parser.add_argument("--epochs", type=int, default=None, help="default: 8, or the dataset recipe's")
    parser.add_argument("--size", default=size)
    if datasets:
        parser.add_argument("--datasets", default=",".join(DATASETS))
    return parser


def mean_std(values: list[float | None]) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return "     n/a     "
    spread = statistics.stdev(present) if len(present) > 1 else 0.0
    return f"{statistics.mean(present):.4f}+-{spread:.4f}"


def figures(test: dict) -> dict[str, float | None]:
    out = {
        "f1": test["f1"],
        "floor": test["flag_all"]["f1"],
        "auroc": test["auroc"],
        "fpr": test["benign_fpr"],
    }
    flows = test.get("flows")
    if flows:
        out |= {"flow_f1": flows["f1"], "flow_floor": flows["flag_all"]["f1"], "flow_auroc": flows["auroc"]}
    return out


def table_line(dataset: str, stage: str, runs: list[dict[str, float | None]]) -> str:
    def col(key: str) -> str:
        return mean_std([r.get(key) for r in runs])

    flow = f" | {col('flow_f1')} | {col('flow_floor')}" if any("flow_f1" in r for r in runs) else " | | "
    cells = " | ".join(col(key) for key in ("f1", "floor", "auroc", "fpr"))
    return f"| {dataset} | {stage} | {cells}{flow} | {len(runs)} |"


def verdict(name: str, mine: list[float], other: list[float], other_name: str) -> str:
    """'beats' only when the mean difference exceeds one std of either side."""
    diff = statistics.mean(mine) - statistics.mean(other)
    noise = max(
        statistics.stdev(mine) if len(mine) > 1 else 0.0, statistics.stdev(other) if len(other) > 1 else 0.0
    )
    word = "beats" if diff > noise else "loses to" if diff < -noise else "is within noise of"
    return f"{name} {word} {other_name} ({diff:+.4f} F1, noise {noise:.4f})"


def main() -> int:
    parser = benchmark_parser(__doc__, "student")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--quick", action="store_true", help="tiny, 2 epochs, hcrlsa and set01")
    parser.add_argument(
        "--can-features",
        choices=("default", "agnostic"),
        default="default",
        help="the CAN datasets' feature set (--dataset-config.automotive.features)",
    )
    args = parser.parse_args()
    if args.quick:
        args.size, args.epochs = "tiny", args.epochs or 2
        if args.datasets == ",".join(DATASETS):
            args.datasets = "hcrlsa,set01"
    seeds = [int(s) for s in args.seeds.split(",")]
    runs_root = args.runs_root or Path(tempfile.mkdtemp(prefix="kdgat-accuracy-"))
    started = time.perf_counter()
    header = "| dataset | stage | F1 | floor F1 | AUROC | benign FPR | flow F1 | flow floor | seeds |"
    lines = [header, "|---" * 9 + "|"]
    verdicts = []
    for dataset in args.datasets.split(","):
        results: dict[str, list[dict]] = {}
        for seed in seeds:
            vgae_data = None
            for stage in STAGES:
                cfg = stage_experiment(stage, dataset, args, runs_root, seed)
                if stage[0] == "GAT curriculum" and vgae_data != cfg.dataset_config:
                    # BATADAL's VGAE (recipe, competition split) reads other graphs than its GATs
                    # (dataset04 blocks); the curriculum and the DQN need a VGAE on theirs, which
                    # the binder prefers when it finds one.
                    own = stage_experiment(OWN_GRAPHS_VGAE, dataset, args, runs_root, seed)
                    own = dataclasses.replace(own, dataset_config=cfg.dataset_config)
                    run_stage(OWN_GRAPHS_VGAE, resolve(own), results)
                run_stage(stage, cfg, results)
                if stage[0] == "VGAE normals_only":
                    vgae_data = cfg.dataset_config
        done = [table_line(dataset, label, runs) for label, runs in results.items() if label != DISAGREE]
        lines += done
        disagree = results.pop(DISAGREE, [])
        f1 = {label: [r["f1"] for r in runs] for label, runs in results.items()}
        best = max((k for k in f1 if k.startswith("  baseline")), key=lambda k: statistics.mean(f1[k]))
        verdicts.append(
            f"{dataset}: "
            + verdict("curriculum", f1["GAT curriculum"], f1["GAT all_samples"], "all_samples")
            + "; "
            + verdict("DQN", f1["DQN fusion"], f1[best], f"its best baseline ({best.strip()})")
            + "; GAT and VGAE disagree on "
            + ", ".join(f"{d['disagree']} of {d['windows']}" for d in disagree)
            + " validation windows (per seed)"
        )
        print(
            "\n".join([f"{dataset} done after {time.perf_counter() - started:.0f} s:", *done, verdicts[-1]]),
            flush=True,
        )
    print(
        f"\nruns under {runs_root}; test figures over seeds {args.seeds} (threshold chosen on validation; "
        f"CAN features {args.can_features}):\n"
    )
    print("\n".join(lines))
    print("\n" + "\n".join(verdicts))
    print(f"\nelapsed {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
