"""Every KD-GAT stage runs on network flows, end to end: `python train.py --modality internet` on
the synthetic default, every other model and mode chained on it in process, then a GAT classifier
and a VGAE on each real folder, scored again by `kdgat.evaluate`. metrics.json carries window-
and flow-level figures beside the flag-everything floor; predictions.csv reproduces them."""

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from configs import ARCHITECTURES, DatasetConfig, ExperimentConfig, InternetConfig, TrainingConfig
from kdgat.cli.evaluate import main as evaluate_main
from kdgat.experiment import run_experiment
from tests.helpers import run_train, shared_data

pytestmark = pytest.mark.slow  # every test reads runs trained end to end by its module fixtures

FLOWS = 2000  # synthetic flows per capture: ~60 windows of 10 flows in each capture's test block
EPOCHS = 2
PREDICTION_COLUMNS = [  # kdgat/evaluation/predictions.py's documented columns, in order
    *("split", "source", "window", "frame_start", "frame_stop", "time_start", "time_stop"),
    *("label", "attack_type", "score", "decision"),
]


def internet_config(root: Path, dataset: str = "synthetic", **changes: object) -> ExperimentConfig:
    internet = changes.pop("internet", {})
    cfg = ExperimentConfig(
        modality="internet",
        dataset=dataset,  # type: ignore[arg-type]
        model_size="tiny",
        device="cpu",
        runs_root=root / "runs",
        dataset_config=DatasetConfig(
            cache_dir=root / "cache",
            internet=InternetConfig(synthetic_flows=FLOWS, **internet),  # type: ignore[arg-type]
        ),
        # One torch thread: on a small shared machine the default (one per core) is many times slower.
        training_config=TrainingConfig(epochs=EPOCHS, torch_threads=1),
    )
    return dataclasses.replace(cfg, **changes)


def metrics_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


# Each stage: its levels and the upstream runs it is bound to (by name in the chain).
CHAIN: dict[str, tuple[dict, dict[str, str]]] = {
    "vgae_normals_only": (
        {"learning_type": "unsupervised", "model_architecture": "VGAE", "training_mode": "normals_only"},
        {},
    ),
    "vgae_all_samples": (
        {"learning_type": "unsupervised", "model_architecture": "VGAE", "training_mode": "all_samples"},
        {},
    ),
    "gat_curriculum": ({"training_mode": "curriculum_classifier"}, {"vgae_run": "vgae_normals_only"}),
    "fusion_gat": ({"learning_type": "fusion"}, {"vgae_run": "vgae_normals_only"}),
    "fusion_dqn": (
        {"learning_type": "fusion", "model_architecture": "DQN"},
        {"vgae_run": "vgae_normals_only", "gat_run": "gat"},
    ),
    "gat_teacher": ({"model_size": "teacher"}, {}),
    "gat_standard_kd": ({"distillation": "standard"}, {"teacher_run": "gat_teacher"}),
    "gat_topology_kd": ({"distillation": "topology_preserving"}, {"teacher_run": "gat_teacher"}),
    "sage": ({"model_architecture": "SAGE"}, {}),
    "sage_gat_kd": (  # a SAGE student of the GAT teacher: its flows learn from the GAT's too
        {"model_architecture": "SAGE", "distillation": "standard"},
        {"teacher_run": "gat_teacher"},
    ),
}
STAGES = ["gat", *CHAIN]


def architecture_of(stage: str) -> str:
    return CHAIN[stage][0].get("model_architecture", "GAT") if stage in CHAIN else "GAT"


# The stages whose architecture's row has an edge read-out score flows with it (GAT, SAGE).
EDGE_READOUT = {stage for stage in STAGES if ARCHITECTURES[architecture_of(stage)].edge_readout}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The GAT classifier from the command line, then every other stage bound to its upstreams."""
    root = tmp_path_factory.mktemp("internet_stages")
    result = run_train(
        [
            *("--modality", "internet", "--model-size", "tiny", "--device", "cpu"),
            *("--training.epochs", str(EPOCHS), "--training.torch-threads", "1"),
            *("--dataset-config.internet.synthetic-flows", str(FLOWS)),
            *("--runs-root", str(root / "runs"), "--dataset-config.cache-dir", str(root / "cache")),
        ],
        cwd=root,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("finished "))
    out = {"gat": root / line.removeprefix("finished ").strip()}
    for name, (levels, upstream) in CHAIN.items():
        bound = {key: out[run].resolve() for key, run in upstream.items()}
        out[name] = run_experiment(internet_config(root, **levels, **bound))
    return out


def test_train_py_modality_internet_trains_the_gat_on_synthetic_flows(runs: dict[str, Path]) -> None:
    run_dir = runs["gat"]
    assert run_dir.parts[-8:-1] == ("internet", "synthetic", "classifier", "GAT", "tiny", "no", "all_samples")
    assert json.loads((run_dir / "status.json").read_text())["state"] == "finished"
    metrics = metrics_of(run_dir)
    assert metrics["epochs_run"] == EPOCHS and metrics["params"] > 0
    assert set(metrics["test"]["attack_types"]) <= {"portscan", "ddos", "ssh_bruteforce", "cc_beacon"}


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_reports_window_and_flow_figures_beside_the_floor(
    runs: dict[str, Path], stage: str
) -> None:
    metrics = metrics_of(runs[stage])
    test = metrics["test"]
    for key in ("f1", "precision", "recall", "auroc", "benign_fpr", "confusion_matrix", "flag_all"):
        assert key in test, key
    assert test["n"] == sum(test["confusion_matrix"].values()) > test["n_attack"] > 0
    assert test["flag_all"]["precision"] == pytest.approx(test["n_attack"] / test["n"])
    flows = test["flows"]
    assert flows["scored_by"] == ("edge_readout" if stage in EDGE_READOUT else "window")
    assert flows["n_flows"] == sum(flows["confusion_matrix"].values()) > flows["n_attack_flows"] > 0
    assert flows["flag_all"]["precision"] == pytest.approx(flows["n_attack_flows"] / flows["n_flows"])
    assert flows["auroc"] is not None and (stage not in EDGE_READOUT or flows["auroc"] > 0.9)
    matrix = flows["confusion_matrix"]
    assert flows["benign_fpr"] == pytest.approx(matrix["fp"] / (matrix["fp"] + matrix["tn"]))
    assert set(flows["attack_types"]) <= {"portscan", "ddos", "ssh_bruteforce", "cc_beacon"}
    if stage in EDGE_READOUT:  # flows decided at the read-out's own threshold (default: fixed 0.5)
        assert flows["threshold"] == metrics["flow_threshold"] == 0.5
    else:  # flows take their window's decision
        assert flows["threshold"] == metrics["threshold"] and "flow_threshold" not in metrics
    for name, split in metrics["test_by_split"].items():  # each capture's test block on its own too
        assert split["flows"]["n_flows"] > 0, name
    data = metrics["data"]
    assert data["unlabelled_policy"] == "context"
    assert len(data["label_counts"]) == 3
    for counts in data["label_counts"].values():  # as written, Background included
        assert set(counts) == {"Benign", "Malicious", "Background"} and sum(counts.values()) < FLOWS


def test_every_stage_scores_the_same_windows_and_flows(runs: dict[str, Path]) -> None:
    """One dataset, one test set: every stage's counts agree (DQN and fusion included)."""
    counts = {
        stage: (
            m["test"]["n"],
            m["test"]["n_attack"],
            m["test"]["flows"]["n_flows"],
            m["test"]["flows"]["n_attack_flows"],
        )
        for stage, m in ((s, metrics_of(runs[s])) for s in STAGES)
    }
    assert len(set(counts.values())) == 1, counts


def read_predictions(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "predictions.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == PREDICTION_COLUMNS
        return list(reader)


def f1_of(y: np.ndarray, decision: np.ndarray) -> float:
    tp = int((decision & y).sum())
    fp, fn = int((decision & ~y).sum()), int((~decision & y).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


@pytest.mark.parametrize("stage", STAGES)
def test_predictions_csv_reproduces_the_test_figures(runs: dict[str, Path], stage: str) -> None:
    metrics = metrics_of(runs[stage])
    rows = read_predictions(runs[stage])
    assert len(rows) == metrics["test"]["n"]  # one row per test window
    for name, split in metrics["test_by_split"].items():
        mine = [r for r in rows if r["split"] == name]
        assert len(mine) == split["n"] and [int(r["window"]) for r in mine] == list(range(len(mine)))
    threshold = metrics["test"]["threshold"]
    y = np.array([r["label"] == "1" for r in rows])
    score = np.array([float(r["score"]) for r in rows])
    decision = score >= threshold
    assert (decision == np.array([r["decision"] == "1" for r in rows])).all()
    assert f1_of(y, decision) == pytest.approx(metrics["test"]["f1"], abs=1e-12)
    assert int(y.sum()) == metrics["test"]["n_attack"]
    for r in rows:
        assert int(r["frame_start"]) < int(r["frame_stop"]) and float(r["time_start"]) <= float(
            r["time_stop"]
        )
        assert (r["attack_type"] == "benign") == (r["label"] == "0")


def test_upstream_runs_are_recorded(runs: dict[str, Path]) -> None:
    for name, (_, upstream) in CHAIN.items():
        recorded = metrics_of(runs[name])["upstream"]
        for key, run in upstream.items():
            assert Path(recorded[key]).name == runs[run].name and runs[run].parts[-8] == "internet", name
    assert (
        metrics_of(runs["gat_standard_kd"])["teacher_params"] > metrics_of(runs["gat_standard_kd"])["params"]
    )


# ---------------------------------------------------------------- the real folders

REAL = {"stratosphere": "internet_stratosphere_zeek", "cicids2017": "internet_cicids2017_improved_sampled"}
REAL_STAGES = {
    "gat": {},
    "vgae": {"learning_type": "unsupervised", "model_architecture": "VGAE", "training_mode": "normals_only"},
}


@pytest.fixture(scope="module", params=list(REAL))
def real_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    """A GAT classifier and a VGAE, one epoch each, on one real folder; stratosphere drops its
    unlabelled flows (the policy is recorded), cicids2017 has none."""
    dataset = request.param
    folder = shared_data(REAL[dataset])
    root = tmp_path_factory.mktemp(dataset)
    policy = {"unlabelled": "drop"} if dataset == "stratosphere" else {}
    out = {}
    for name, levels in REAL_STAGES.items():
        cfg = internet_config(root, dataset, internet=policy, **levels)
        cfg = dataclasses.replace(
            cfg,
            dataset_config=dataclasses.replace(cfg.dataset_config, data_root=folder),
            training_config=dataclasses.replace(cfg.training_config, epochs=1),
        )
        out[name] = run_experiment(cfg)
    return dataset, out


@pytest.mark.real_data
@pytest.mark.parametrize("stage", list(REAL_STAGES))
def test_gat_and_vgae_train_on_each_real_folder(real_runs: tuple[str, dict], stage: str) -> None:
    dataset, runs = real_runs
    metrics = metrics_of(runs[stage])
    test, flows = metrics["test"], metrics["test"]["flows"]
    assert test["n"] > 0 and flows["n_flows"] > 0 and "flag_all" in flows
    assert flows["scored_by"] == ("edge_readout" if stage == "gat" else "window")
    assert metrics["data"]["unlabelled_policy"] == ("drop" if dataset == "stratosphere" else "context")
    if dataset == "stratosphere":
        per_file = metrics["data"]["label_counts"].values()
        assert sum(c.get("Background", 0) for c in per_file) == 739 + 60 + 37 + 326 + 930  # as written
        assert sum(metrics["data"]["dropped_unlabelled_rows"].values()) == 739 + 60 + 37 + 326 + 930 + 3
        assert len(metrics["test_by_split"]) == 6
    else:
        assert sum(sum(c.values()) for c in metrics["data"]["label_counts"].values()) == 43_419
        assert "BENIGN_5000" in metrics["test_by_split"]
    names = {"benign", *(t for counts in metrics["data"]["label_counts"].values() for t in counts)}
    assert set(test["attack_types"]) <= names | {
        "CC",
        "External-Attack-to-Device",
        "From_malicious-To_malicious-Malware_data_exfiltration-RemcosRAT",
    }
    assert len(read_predictions(runs[stage])) == test["n"]


@pytest.mark.real_data
@pytest.mark.parametrize("stage", list(REAL_STAGES))
def test_evaluate_scores_a_real_capture_with_flow_metrics(real_runs: tuple[str, dict], stage: str) -> None:
    dataset, runs = real_runs
    folder = shared_data(REAL[dataset])
    # stratosphere: one capture file, as a user scores a new capture; cicids2017: the folder (its
    # files are one class each, so one file alone has no AUROC).
    target = folder / "001_CTU-Malware-Capture-Botnet-230-1_first1000_conn.log.labeled.gz"
    target = target if dataset == "stratosphere" else folder
    assert (
        evaluate_main([str(runs[stage]), "--data-root", str(target), "--dataset", dataset, "--name", "x"])
        == 0
    )
    out = json.loads((runs[stage] / "eval_x.json").read_text())
    assert out["trained_on"] == out["evaluated_on"] == dataset
    assert out["threshold"] == metrics_of(runs[stage])["threshold"]
    everything, flows = out["all"], out["all"]["flows"]
    assert everything["n"] > 0 and flows["n_flows"] > 0 and "flag_all" in flows
    assert flows["scored_by"] == ("edge_readout" if stage == "gat" else "window")
    own = metrics_of(runs[stage])
    assert flows["threshold"] == own.get("flow_threshold", own["threshold"])
    if dataset == "stratosphere":
        # Whole-file windows of 10 flows, Background dropped as in training: 253 flows, 25 windows.
        assert everything["n"] == 25 and flows["n_flows"] == 250
        (counts,) = out["data"]["label_counts"].values()
        assert counts == {"Background": 739, "Benign": 9, "Malicious": 244}
    else:
        assert len(out["per_file"]) == 16
