"""Every stage of KD-GAT trains on synthetic data and writes a complete run directory: every
architecture of configs.ARCHITECTURES with each learning type and training mode the table allows
(VGAE normals_only and all_samples; GAT and SAGE all_samples and curriculum, as classifiers and in
fusion; DQN fusion)."""

import dataclasses
import io
import json
import math
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import configs
from configs import AutomotiveConfig, DatasetConfig, ExperimentConfig, TrainingConfig
from kdgat.cli.evaluate import main as evaluate_main
from kdgat.common.errors import PrerequisiteError, TrainingDiverged
from kdgat.config.codec import load_yaml
from kdgat.config.presets import parse_preset, valid_presets
from kdgat.config.resolve import resolve
from kdgat.evaluation.field_metrics import NAMES as FIELD_METRICS
from kdgat.experiment import run_experiment
from kdgat.models import nominal_parameter_count
from kdgat.models.dqn import STATE_FEATURES
from kdgat.training.checkpoint import read_checkpoint
from kdgat.training.tasks import ClassifierTask, curriculum_selection
from tests.helpers import run_train, shared_data


def table_stages() -> list[tuple[str, str, str]]:
    """(learning_type, architecture, training_mode) of every row of configs.ARCHITECTURES, in
    dependency order: unsupervised (the VGAE) first, classifiers next, fusion last."""
    stages = []
    for learning, archs in configs.LEARNING_ARCHITECTURES.items():
        for arch in archs:
            modes = ["normals_only", "all_samples"] if learning == "unsupervised" else ["all_samples"]
            modes += ["curriculum_classifier"] * configs.ARCHITECTURES[arch].curriculum
            stages += [(learning, arch, mode) for mode in modes]
    return stages


STAGES = table_stages()


def base_config(root: Path, **changes) -> ExperimentConfig:
    cfg = ExperimentConfig(
        model_size="tiny",
        device="cpu",
        runs_root=root / "runs",
        dataset_config=DatasetConfig(
            cache_dir=root / "cache",
            automotive=AutomotiveConfig(synthetic_train_frames=30_000, synthetic_test_frames=9_000),
        ),
        training_config=TrainingConfig(epochs=2),
    )
    return dataclasses.replace(cfg, **changes)


@pytest.fixture(scope="module")
def stage_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str, str], Path]:
    root = tmp_path_factory.mktemp("stages")
    runs = {}
    for learning_type, arch, mode in STAGES:
        cfg = base_config(root, learning_type=learning_type, model_architecture=arch, training_mode=mode)
        runs[(learning_type, arch, mode)] = run_experiment(cfg)
    return runs


def test_every_valid_stage_combination_is_covered() -> None:
    """The stages the table gives are exactly those the level rules let run, each once."""
    combos = {
        (levels["learning_type"], levels["model_architecture"], levels["training_mode"])
        for levels in map(parse_preset, valid_presets())
    }
    assert combos == set(STAGES) and len(STAGES) == len(set(STAGES))
    assert {arch for _, arch, _ in STAGES} == set(configs.ARCHITECTURES)
    order = list(configs.LEARNING_ARCHITECTURES)  # a stage trains after the stages it builds on
    assert [order.index(s[0]) for s in STAGES] == sorted(order.index(s[0]) for s in STAGES)


@pytest.mark.parametrize("stage", STAGES, ids=["-".join(s) for s in STAGES])
def test_stage_writes_a_complete_run_directory(stage_runs: dict, stage: tuple[str, str, str]) -> None:
    run_dir = stage_runs[stage]
    assert run_dir.parts[-8:-1] == ("automotive", "synthetic", stage[0], stage[1], "tiny", "no", stage[2])
    for name in ("config.yaml", "status.json", "metrics.json", "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (run_dir / name).is_file(), name
    assert list(run_dir.glob("events.out.tfevents.*"))
    assert json.loads((run_dir / "status.json").read_text())["state"] == "finished"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["params"] > 0 and metrics["epochs_run"] == 2
    for key in ("f1", "precision", "recall", "auroc", "auprc", "benign_fpr", "confusion_matrix"):
        assert key in metrics["test"], key
    assert metrics["test"]["n"] == sum(metrics["test"]["confusion_matrix"].values()) > 0
    assert set(metrics["test"]["attack_types"]) <= {"dos", "fuzzing", "spoofing"}
    if stage[0] == "fusion" or stage[2] == "curriculum_classifier":
        assert "vgae_run" in metrics["upstream"]


@pytest.mark.parametrize("stage", STAGES, ids=["-".join(s) for s in STAGES])
def test_metrics_hold_the_fields_metrics_per_split_and_attack_type(stage_runs: dict, stage: tuple) -> None:
    """MCC, balanced accuracy, recall at 1 % / 0.1 % benign FPR, precision at 95 % recall and ECE
    (kdgat/evaluation/field_metrics.py) beside F1 in val, test, each test split and each attack
    type; ECE only where the score is a probability (not a VGAE's anomaly score)."""
    metrics = json.loads((stage_runs[stage] / "metrics.json").read_text())
    results = [metrics["val"], metrics["test"], *metrics["test_by_split"].values()]
    results += [
        r
        for part in (metrics["test"], *metrics["test_by_split"].values())
        for r in part["attack_types"].values()
    ]
    assert metrics["test"]["attack_types"]
    for result in results:
        assert set(FIELD_METRICS) <= set(result)
        assert -1.0 <= result["mcc"] <= 1.0 and 0.0 <= result["balanced_accuracy"] <= 1.0
        assert (result["ece"] is None) == (stage[1] == "VGAE")


@pytest.mark.parametrize("stage", STAGES, ids=["-".join(s) for s in STAGES])
def test_print_config_parameter_count_matches_the_trained_model(stage_runs: dict, stage: tuple) -> None:
    run_dir = stage_runs[stage]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    cfg = load_yaml(run_dir / "config.yaml")
    nominal, note = nominal_parameter_count(cfg)
    if stage[1] == "DQN":
        assert note == "exact" and nominal == metrics["params"]
    else:
        per_id = int(note.split()[1])
        assert nominal + per_id * metrics["data"]["vocabulary_size"] == metrics["params"]


def test_tensorboard_has_pr_curves_and_hparams(stage_runs: dict) -> None:
    run_dir = stage_runs[("unsupervised", "VGAE", "normals_only")]
    events = EventAccumulator(str(run_dir), size_guidance={"tensors": 0})
    events.Reload()
    tensors = set(events.Tags()["tensors"])
    assert "pr/val" in tensors and "pr/test/test_01_known_vehicle_known_attack" in tensors
    assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")
    assert "final/test.f1" in events.Tags()["scalars"]


def test_vgae_threshold_is_chosen_on_validation(stage_runs: dict) -> None:
    metrics = json.loads((stage_runs[("unsupervised", "VGAE", "normals_only")] / "metrics.json").read_text())
    assert metrics["threshold"] == metrics["val"]["threshold"] == metrics["test"]["threshold"]
    assert metrics["test"]["auroc"] > 0.5  # the reconstruction error separates attacks on synthetic data


@pytest.mark.parametrize("stage", [s for s in STAGES if s[1] != "DQN"], ids=lambda s: "-".join(s))
def test_threshold_is_recorded_with_its_method_and_each_alternative(stage_runs: dict, stage: tuple) -> None:
    metrics = json.loads((stage_runs[stage] / "metrics.json").read_text())
    choice, alternatives = metrics["threshold_choice"], metrics["test_by_threshold"]
    assert choice["method"] == "best_f1"  # what auto resolves to, and what config.yaml records
    assert load_yaml(stage_runs[stage] / "config.yaml").learning_config.threshold.method == "best_f1"
    assert metrics["threshold"] == choice["threshold"] == alternatives["best_f1"]["threshold"]
    assert alternatives["best_f1"]["f1"] == metrics["test"]["f1"]
    expected = {"best_f1", "target_fpr"} | ({"fixed"} if stage[1] != "VGAE" else set())
    assert set(alternatives) == expected
    if "fixed" in alternatives:
        assert alternatives["fixed"]["threshold"] == 0.5


def test_dqn_reports_its_baselines_and_derived_state(stage_runs: dict) -> None:
    metrics = json.loads((stage_runs[("fusion", "DQN", "all_samples")] / "metrics.json").read_text())
    assert metrics["state_dim"] == len(STATE_FEATURES)
    assert set(metrics["baselines"]) == {"gat_alone", "vgae_alone", "fixed_alpha_0.5", "best_fixed_alpha"}
    grid = np.linspace(0, 1, configs.ExperimentConfig().learning_config.dqn.actions)
    assert np.isclose(grid, metrics["baselines"]["best_fixed_alpha"]["alpha"]).any()
    assert metrics["threshold"] == metrics["threshold_choice"]["threshold"] == metrics["test"]["threshold"]
    assert metrics["upstream"]["gat_run"].startswith("automotive/synthetic/classifier/GAT/tiny/no/")
    for baseline in metrics["baselines"].values():
        assert baseline["n"] == metrics["test"]["n"]
    assert 0.0 <= metrics["alpha_chosen"]["mean"] <= 1.0
    headroom = metrics["fusion_headroom"]
    assert headroom["test"]["windows"] == metrics["test"]["n"]
    assert headroom["test"]["disagree"] >= headroom["test"]["gat_right_where_they_disagree"] >= 0
    # No alpha, learnt or fixed, decides better than the per-window oracle.
    assert metrics["test"]["f1"] <= headroom["test"]["oracle_per_window_alpha_f1"] + 1e-9


def test_missing_upstream_run_is_refused_with_the_command(tmp_path: Path) -> None:
    result = run_train(
        ["--model-size", "tiny", "--training-mode", "curriculum_classifier", "--runs-root", "empty"],
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "needs a finished VGAE run" in result.stderr
    assert (
        "python train.py --dataset synthetic --learning-type unsupervised --model-architecture VGAE"
        in result.stderr
    )
    assert not (tmp_path / "empty").exists() or not list((tmp_path / "empty").rglob("run_*"))
    with pytest.raises(PrerequisiteError, match="--vgae-run RUN_DIR"):
        run_experiment(base_config(tmp_path, learning_type="fusion", model_architecture="DQN", vgae_run=None))


def test_curriculum_admits_harder_benign_graphs_as_epochs_pass() -> None:
    cfg = resolve(ExperimentConfig(training_config=TrainingConfig(epochs=5)))
    y = torch.tensor([1] * 10 + [0] * 100)
    difficulty = np.r_[np.zeros(10), np.arange(100, dtype=float)]  # benign i has difficulty i
    first = curriculum_selection(cfg, y, difficulty, 0, torch.Generator().manual_seed(0))
    last = curriculum_selection(cfg, y, difficulty, 4, torch.Generator().manual_seed(0))
    assert set(range(10)) <= set(first.tolist()) and set(range(10)) <= set(last.tolist())
    benign_first = [i - 10 for i in first.tolist() if i >= 10]
    benign_last = [i - 10 for i in last.tolist() if i >= 10]
    assert len(benign_first) == 10 and max(benign_first) < 50  # ratio 1, easiest 50 %
    assert len(benign_last) == 40 and max(benign_last) >= 50  # ratio 4, every benign graph eligible


def test_the_default_curriculum_ramps_over_four_epochs_then_shows_every_benign_graph() -> None:
    """DAGA, seed 0: a ramp over all 8 epochs let early stopping keep epoch 5, which had never seen
    the hardest benign graphs (test F1 0.945, benign FPR 0.012); a 4-epoch ramp: 0.981, 0.003."""
    cfg = resolve(ExperimentConfig(training_config=TrainingConfig(epochs=8)))
    assert cfg.learning_config.curriculum.ramp_epochs == 4
    y = torch.tensor([1] * 10 + [0] * 100)
    difficulty = np.r_[np.zeros(10), np.arange(100, dtype=float)]
    for epoch in range(8):
        benign = [
            i - 10 for i in curriculum_selection(cfg, y, difficulty, epoch, torch.Generator()) if i >= 10
        ]
        if epoch >= 3:  # the ramp is over: ratio 4, every benign graph eligible
            assert len(benign) == 40 and max(benign) >= 75
        else:
            assert len(benign) < 40 and max(benign) < 50 + 50 * epoch / 3 + 1


def test_curriculum_class_weights_follow_the_graphs_each_epoch_shows() -> None:
    """The weights balance the classes of the epoch's selection (1 to 4 benign graphs per attack),
    not of the whole split (10 benign per attack here); validation keeps the split's weights."""
    cfg = resolve(ExperimentConfig(training_config=TrainingConfig(epochs=5)))
    y = torch.tensor([1] * 10 + [0] * 100)
    train = type("Labels", (), {"y": y, "edge_label": None, "__len__": lambda self: len(y)})()
    difficulty = np.r_[np.zeros(10), np.arange(100, dtype=float)]
    task = ClassifierTask(cfg, train, difficulty)
    split = task.split_weights.clone()
    assert split[1] / split[0] == pytest.approx(10.0)
    for epoch in range(5):
        selected = task.epoch_graphs(epoch, torch.Generator().manual_seed(epoch))
        shown = torch.bincount(y[selected], minlength=2).float()
        assert (task.weights * shown)[0] == pytest.approx((task.weights * shown)[1])  # balanced mass
        assert torch.equal(task.split_weights, split)
    assert task.weights[1] / task.weights[0] == pytest.approx(4.0)  # the last epoch: 4 benign per attack


@pytest.mark.parametrize("amp", ["bf16", "off"])
def test_amp_on_and_off_run_on_cpu(tmp_path: Path, amp: str) -> None:
    cfg = base_config(tmp_path, training_config=TrainingConfig(epochs=1, amp=amp))
    metrics = json.loads((run_experiment(cfg) / "metrics.json").read_text())
    assert metrics["epochs_run"] == 1 and metrics["test"]["auroc"] > 0.8  # one epoch already ranks attacks


def test_nan_guard_names_the_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kdgat.training import tasks

    original = tasks.ClassifierTask.loss
    calls = {"n": 0}

    def poisoned(self, model, batch):
        loss, terms = original(self, model, batch)
        calls["n"] += 1
        if calls["n"] == 3:
            return loss * float("nan"), {**terms, "cross_entropy": loss * float("nan")}
        return loss, terms

    monkeypatch.setattr(tasks.ClassifierTask, "loss", poisoned)
    with pytest.raises(TrainingDiverged, match=r"epoch 0, step 2 \(batch 2 of the epoch.*cross_entropy=nan"):
        run_experiment(base_config(tmp_path))
    status = json.loads(next((tmp_path / "runs").rglob("status.json")).read_text())
    assert status["state"] == "failed" and "step 2" in status["error"]


@pytest.mark.real_data
def test_evaluate_on_a_folder_and_on_a_single_file(stage_runs: dict, capsys: pytest.CaptureFixture) -> None:
    data = shared_data("hcrl_sa")
    for stage in (("classifier", "GAT", "all_samples"), ("fusion", "DQN", "all_samples")):
        run_dir = stage_runs[stage]
        folder = data / "test_02_unknown_vehicle_known_attack"
        assert evaluate_main([str(run_dir), "--data-root", str(folder), "--dataset", "hcrlsa"]) == 0
        result = json.loads((run_dir / "eval_test_02_unknown_vehicle_known_attack.json").read_text())
        assert result["trained_on"] == "synthetic" and result["evaluated_on"] == "hcrlsa"
        assert len(result["per_file"]) == 2
        assert result["all"]["n"] == sum(v["n"] for v in result["per_file"].values()) > 1000
        single = folder / "DoS-spark.csv.gz"
        assert evaluate_main([str(run_dir), "--data-root", str(single)]) == 0
        one = json.loads((run_dir / "eval_DoS-spark.json").read_text())
        assert list(one["per_file"]) == ["DoS-spark.csv.gz"]
        assert one["all"]["n_attack"] > 0
        assert one["all"]["ece"] is not None and "recall_at_fpr_1pct" in one["per_file"]["DoS-spark.csv.gz"]
    assert "f1" in capsys.readouterr().out
    assert evaluate_main([str(run_dir), "--data-root", str(data / "nope")]) == 2


def test_dqn_learns_on_held_out_validation_halves(tmp_path: Path) -> None:
    from kdgat.data.dataset import load_splits
    from kdgat.stages.dqn_stage import DQN_BLOCK, dqn_graphs

    cfg = resolve(base_config(tmp_path, learning_type="fusion", model_architecture="DQN"))
    splits = load_splits(cfg)
    learn, select = dqn_graphs(cfg, splits)
    assert len(learn) + len(select) == len(splits.val) and len(learn) and len(select)
    starts = lambda g: set(zip(g.source, g.frame_start.tolist(), strict=True))  # noqa: E731
    assert not starts(learn) & starts(select)
    assert starts(learn) | starts(select) == starts(splits.val)
    assert learn.frame_start[:DQN_BLOCK].tolist() == splits.val.frame_start[:DQN_BLOCK].tolist()
    fit_on_train = dataclasses.replace(
        cfg,
        learning_config=dataclasses.replace(
            cfg.learning_config, dqn=dataclasses.replace(cfg.learning_config.dqn, fit_on="train")
        ),
    )
    learn, select = dqn_graphs(fit_on_train, splits)
    assert learn is splits.train and select is splits.val


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_killed_dqn_resumes_to_identical_weights_and_honours_the_training_flags(
    stage_runs: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The DQN agent runs on the shared skeleton: a real SIGTERM mid-epoch saves last.pt (replay
    buffer, target network, RNGs) and the resumed run ends with the straight run's weights and
    metrics. --training.optimizer / scheduler / amp reach the agent."""
    from kdgat.stages.dqn_agent import DQNTrainer
    from kdgat.training.skeleton import Preempted

    stage_root = stage_runs[("classifier", "GAT", "all_samples")].parents[8]
    cfg = base_config(
        tmp_path,
        learning_type="fusion",
        model_architecture="DQN",
        vgae_run=stage_runs[("unsupervised", "VGAE", "normals_only")],
        gat_run=stage_runs[("classifier", "GAT", "all_samples")],
        training_config=TrainingConfig(
            epochs=3, patience=10, optimizer="sgd", scheduler="cosine", amp="bf16"
        ),
    )
    cfg = dataclasses.replace(
        cfg,
        dataset_config=dataclasses.replace(cfg.dataset_config, cache_dir=stage_root / "cache"),
        learning_config=dataclasses.replace(
            cfg.learning_config,
            dqn=dataclasses.replace(cfg.learning_config.dqn, episode_length=8, batch_size=8),
        ),
    )
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    straight = run_experiment(dataclasses.replace(cfg, runs_root=tmp_path / "straight"))
    monkeypatch.undo()
    assert "window/s" in terminal.getvalue() and "epoch 3/3" in terminal.getvalue()  # the bar, on a TTY

    original = DQNTrainer.step

    def step_then_signal(self, epoch: int, step: int, *args) -> None:
        original(self, epoch, step, *args)
        if (epoch, step) == (1, 1):
            signal.raise_signal(signal.SIGTERM)  # delivered to the skeleton's handler before it returns

    monkeypatch.setattr(DQNTrainer, "step", step_then_signal)
    with pytest.raises(Preempted) as stop:
        run_experiment(dataclasses.replace(cfg, runs_root=tmp_path / "killed"))
    monkeypatch.undo()
    run_dir = stop.value.run_dir
    assert stop.value.signals == {signal.SIGTERM}
    assert json.loads((run_dir / "status.json").read_text())["state"] == "preempted"
    saved = read_checkpoint(run_dir / "checkpoints/last.pt")
    assert (saved.epoch, saved.resume.step) == (1, 2) and saved.resume.trainer["buffer"]["size"] > 0
    assert not (run_dir / "metrics.json").exists()
    assert run_experiment(dataclasses.replace(cfg, runs_root=tmp_path / "killed"), run_dir) == run_dir

    a = read_checkpoint(straight / "checkpoints/last.pt")
    b = read_checkpoint(run_dir / "checkpoints/last.pt")
    for part, x, y in (
        ("model", a.model, b.model),
        ("target", a.resume.trainer["target"], b.resume.trainer["target"]),
    ):
        assert x.keys() == y.keys()
        assert all(torch.equal(x[k], y[k]) for k in x), part
    metrics = json.loads((straight / "metrics.json").read_text())
    assert json.loads((run_dir / "metrics.json").read_text()) == metrics
    assert metrics["history"][-1]["updates"] > 0  # the agent learnt: TD updates happened
    assert b.resume.optimizer["param_groups"][0]["momentum"] == 0.9  # SGD, as asked, not a fixed Adam
    base_lr = cfg.training_config.lr
    cosine = [base_lr * (1 + math.cos(math.pi * (e + 1) / 3)) / 2 for e in range(3)]
    assert [h["lr"] for h in metrics["history"]] == pytest.approx(cosine, abs=1e-12)


def test_dqn_refuses_fp16_with_the_reason() -> None:
    with pytest.raises(configs.ConfigError, match="DQN agent trains on the CPU"):
        resolve(
            ExperimentConfig(
                learning_type="fusion",
                model_architecture="DQN",
                device="cuda",
                training_config=TrainingConfig(amp="fp16"),
            )
        )
