"""Knowledge distillation: the loss terms on their own, then teachers and students trained on
synthetic data for every distilled architecture (GAT, fusion GAT, VGAE, DQN)."""

import dataclasses
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import configs
from configs import ConfigError, DistillationConfig, DQNConfig, LearningConfig
from kdgat.common.errors import PrerequisiteError
from kdgat.config.codec import load_yaml
from kdgat.config.resolve import resolve
from kdgat.experiment import run_experiment
from kdgat.runs.upstream import bind
from kdgat.training.checkpoint import read_checkpoint
from kdgat.training.kd_losses import local_structure_loss, relational_distance_loss, soft_target_kl
from tests.helpers import REPO, run_train
from tests.stages.test_stages import base_config

# ---------------------------------------------------------------- the loss terms


def test_soft_target_kl_is_zero_only_when_the_distributions_agree() -> None:
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3]])
    assert float(soft_target_kl(logits, logits, 4.0)) == pytest.approx(0.0, abs=1e-7)
    assert float(soft_target_kl(logits + torch.tensor([[0.0, 3.0], [0.0, 0.0]]), logits, 4.0)) > 0.01
    # A shift of every logit of a row leaves the softmax, hence the loss, unchanged.
    assert float(soft_target_kl(logits + 5.0, logits, 2.0)) == pytest.approx(0.0, abs=1e-6)


def test_soft_target_kl_is_scaled_by_t_squared() -> None:
    student, teacher = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    kl_at_1 = float(soft_target_kl(student, teacher, 1.0))
    p, q = torch.softmax(student, -1)[0], torch.softmax(teacher, -1)[0]
    expected = (q * (q.log() - p.log())).sum()
    assert kl_at_1 == pytest.approx(float(expected), rel=1e-5)


def _edges(num_nodes: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(num_nodes, (2, 40), generator=g)


def test_local_structure_matches_across_widths_when_the_geometry_is_the_same() -> None:
    g = torch.Generator().manual_seed(1)
    student = torch.randn(12, 8, generator=g)
    rotation, _ = torch.linalg.qr(torch.randn(16, 16, generator=g))
    teacher = torch.cat([student, torch.zeros(12, 8)], 1) @ rotation * 3.0  # wider, rotated, scaled
    edges = _edges(12)
    assert float(local_structure_loss(student, teacher, edges, 0.1)) == pytest.approx(0.0, abs=1e-5)
    other = torch.randn(12, 16, generator=g)
    assert float(local_structure_loss(student, other, edges, 0.1)) > 0.05
    assert float(local_structure_loss(student, other, torch.zeros(2, 0, dtype=torch.long), 0.1)) == 0.0


def test_local_structure_distribution_sums_to_one_per_node() -> None:
    from kdgat.training.kd_losses import neighbour_log_distribution

    edges = _edges(10, seed=3)
    log_p = neighbour_log_distribution(torch.randn(10, 5), edges, 0.5)
    sums = torch.zeros(10).index_add(0, edges[1], log_p.exp())
    has_neighbours = torch.bincount(edges[1], minlength=10) > 0
    assert torch.allclose(sums[has_neighbours], torch.ones(int(has_neighbours.sum())), atol=1e-5)


def test_relational_distances_ignore_scale_and_survive_identical_embeddings() -> None:
    g = torch.Generator().manual_seed(2)
    student = torch.randn(6, 4, generator=g, requires_grad=True)
    same_shape = relational_distance_loss(student, 5.0 * student.detach())
    assert same_shape.item() == pytest.approx(0.0, abs=1e-6)
    assert relational_distance_loss(student, torch.randn(6, 9, generator=g)).item() > 0.01
    twins = torch.ones(4, 3, requires_grad=True)  # identical windows embed identically
    loss = relational_distance_loss(twins, torch.randn(4, 5, generator=g))
    loss.backward()
    assert torch.isfinite(twins.grad).all()


# ---------------------------------------------------------------- configuration


def test_dqn_cannot_preserve_topology_and_says_what_to_use() -> None:
    with pytest.raises(ConfigError, match="Use --distillation standard"):
        resolve(
            configs.ExperimentConfig(
                learning_type="fusion",
                model_architecture="DQN",
                model_size="student",
                distillation="topology_preserving",
            )
        )


# ---------------------------------------------------------------- teachers and students


def _config(root: Path, **changes):
    return base_config(root, **changes)


TEACHER = {"model_size": "teacher"}
VGAE = {"learning_type": "unsupervised", "model_architecture": "VGAE", "training_mode": "normals_only"}


@pytest.fixture(scope="module")
def teachers(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """Teacher-size VGAE, GAT, fusion GAT and DQN fusion runs (2 epochs each) in one runs tree."""
    root = tmp_path_factory.mktemp("teachers")
    runs = {
        "vgae": run_experiment(_config(root, **TEACHER, **VGAE)),
        "gat": run_experiment(_config(root, **TEACHER)),
    }
    runs["fusion_gat"] = run_experiment(_config(root, **TEACHER, learning_type="fusion"))
    runs["dqn"] = run_experiment(_config(root, **TEACHER, learning_type="fusion", model_architecture="DQN"))
    run_experiment(_config(root, **VGAE))  # the student-size VGAE a fusion-GAT student builds on
    return root, runs


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize(
    "changes",
    [
        {"distillation": "standard"},
        {"distillation": "topology_preserving"},
        {"distillation": "standard", **VGAE},
        {"distillation": "topology_preserving", **VGAE},
        {"distillation": "topology_preserving", "learning_type": "fusion"},
    ],
    ids=["gat-standard", "gat-topology", "vgae-standard", "vgae-topology", "fusion_gat-topology"],
)
def test_distilled_student_records_its_teacher_and_logs_the_kd_terms(teachers, changes: dict) -> None:
    root, runs = teachers
    student = run_experiment(_config(root, **changes))
    metrics = _metrics(student)
    kind = (
        "fusion_gat" if changes.get("learning_type") == "fusion" else changes.get("model_architecture", "GAT")
    )
    teacher = runs[kind.lower()]
    assert (root / "runs" / metrics["upstream"]["teacher_run"]).resolve() == teacher.resolve()
    assert metrics["teacher_params"] == _metrics(teacher)["params"] > metrics["params"]
    assert metrics["test"]["auroc"] > 0.8  # it learnt to rank attacks (F1 at 0.5 may be 0 after 2 epochs)
    events = EventAccumulator(str(student))
    events.Reload()
    expected = (
        {"kd_soft_targets"}
        if changes.get("model_architecture") != "VGAE"
        else {"kd_latent", "kd_reconstruction"}
    )
    if changes["distillation"] == "topology_preserving":
        expected |= {"kd_local_structure", "kd_relational"}
    logged = {tag.split("/", 1)[1] for tag in events.Tags()["scalars"] if tag.startswith("loss_terms/")}
    assert expected <= logged
    for tag in expected:
        assert all(e.value >= 0 for e in events.Scalars(f"loss_terms/{tag}"))
    # The KD terms were part of the training loss: the first epoch's train loss differs from the
    # own-loss-only value of an undistilled twin.
    undistilled = run_experiment(_config(root, **{**changes, "distillation": "no"}))
    assert metrics["history"][0]["train_loss"] != _metrics(undistilled)["history"][0]["train_loss"]


@pytest.mark.slow
def test_kd_alpha_zero_without_topology_trains_exactly_like_no_distillation(teachers) -> None:
    """With kd.alpha = 0 the KD term has zero weight: same seed, same metrics as no distillation.
    This pins that distillation adds to the student's own objective and changes nothing else
    (the frozen teacher consumes no randomness, the VGAE projection does not move the model)."""
    root, _ = teachers
    for changes in ({}, VGAE):
        plain = _metrics(run_experiment(_config(root, **changes)))
        zero = _metrics(
            run_experiment(
                _config(
                    root,
                    **changes,
                    distillation="standard",
                    learning_config=LearningConfig(kd=DistillationConfig(alpha=0.0)),
                )
            )
        )
        assert zero["test"] == plain["test"] and zero["history"] == plain["history"]


@pytest.mark.slow
def test_distilled_dqn_matches_teacher_q_values(teachers) -> None:
    root, runs = teachers
    # The student DQN builds on a same-size VGAE and GAT: distilled ones are preferred when present.
    vgae = run_experiment(_config(root, **VGAE, distillation="standard"))
    gat = run_experiment(_config(root, distillation="standard"))
    dqn = {"learning_type": "fusion", "model_architecture": "DQN"}
    small_batches = LearningConfig(dqn=DQNConfig(batch_size=8))  # the synthetic halves hold few windows
    student = run_experiment(_config(root, **dqn, distillation="standard", learning_config=small_batches))
    metrics = _metrics(student)
    upstream = {k: (root / "runs" / v).resolve() for k, v in metrics["upstream"].items()}
    assert upstream == {
        "vgae_run": vgae.resolve(),
        "gat_run": gat.resolve(),
        "teacher_run": runs["dqn"].resolve(),
    }
    assert metrics["teacher_params"] == _metrics(runs["dqn"])["params"] > metrics["params"]
    plain = run_experiment(_config(root, **dqn, vgae_run=vgae, gat_run=gat, learning_config=small_batches))

    def weights(run_dir: Path) -> dict[str, torch.Tensor]:
        return read_checkpoint(run_dir / "checkpoints/last.pt").model

    a, b = weights(student), weights(plain)
    assert a.keys() == b.keys() and not all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_the_teacher_found_is_recorded_in_config_yaml_so_a_rerun_uses_it(teachers) -> None:
    root, runs = teachers
    student = run_experiment(_config(root, distillation="standard"))
    saved = load_yaml(student / "config.yaml")
    assert saved.teacher_run.resolve() == runs["gat"].resolve()
    # A newer finished teacher of the same data and seed appears; the rerun keeps the recorded one.
    newer = runs["gat"].parent / "run_999"
    shutil.copytree(runs["gat"], newer)
    try:
        unbound = bind(resolve(_config(root, distillation="standard")))
        assert unbound.teacher_run == newer  # a student without a recorded teacher takes the newest
        rerun = run_experiment(saved)
        assert (root / "runs" / _metrics(rerun)["upstream"]["teacher_run"]).resolve() == runs["gat"].resolve()
        assert _metrics(rerun)["lineage"]["teacher_run"]["config_digest"].startswith("sha256:")
    finally:
        shutil.rmtree(newer)


def test_missing_teacher_is_refused_with_the_command_that_trains_it(tmp_path: Path) -> None:
    with pytest.raises(PrerequisiteError) as err:
        run_experiment(_config(tmp_path, distillation="standard"))
    message = str(err.value)
    assert "--model-size teacher" in message and "--training-mode all_samples" in message
    assert "--teacher-run" in message
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("run_*"))


@pytest.mark.slow
def test_teacher_of_another_architecture_or_data_is_refused(teachers, tmp_path: Path) -> None:
    root, runs = teachers
    with pytest.raises(PrerequisiteError, match="model_architecture=VGAE"):
        run_experiment(_config(root, distillation="standard", teacher_run=runs["vgae"]))
    differently_prepared = dataclasses.replace(
        _config(root, distillation="standard", teacher_run=runs["gat"]),
    )
    differently_prepared = dataclasses.replace(
        differently_prepared,
        dataset_config=dataclasses.replace(
            differently_prepared.dataset_config,
            automotive=dataclasses.replace(
                differently_prepared.dataset_config.automotive, window=40, stride=40
            ),
        ),
    )
    with pytest.raises(PrerequisiteError, match="differently prepared"):
        run_experiment(differently_prepared)


@pytest.mark.slow
def test_cli_refuses_a_student_without_teacher_with_exit_2(tmp_path: Path) -> None:
    result = run_train(
        ["--model-size", "tiny", "--distillation", "standard", "--device", "cpu"], cwd=tmp_path, timeout=300
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "python train.py" in result.stderr + result.stdout


@pytest.mark.slow
def test_killed_distilled_vgae_resumes_to_identical_weights_and_projection(teachers, tmp_path: Path) -> None:
    """The projection the VGAE student learns lives in the task: it must survive a kill too."""
    root, runs = teachers
    args = [
        "--model-size", "tiny", "--learning-type", "unsupervised", "--model-architecture", "VGAE",
        "--training-mode", "normals_only", "--distillation", "standard", "--teacher-run", str(runs["vgae"]),
        "--device", "cpu", "--training.epochs", "3", "--dataset-config.cache-dir", str(root / "cache"),
        "--dataset-config.automotive.synthetic-train-frames", "30000",
        "--dataset-config.automotive.synthetic-test-frames", "9000",
    ]  # fmt: skip
    straight = run_train([*args, "--runs-root", str(tmp_path / "straight")], cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr
    process = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *args, "--runs-root", str(tmp_path / "runs")],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
    )
    last = None
    for line in process.stdout:
        if line.startswith("epoch 1/3"):
            process.send_signal(signal.SIGTERM)
        if line.startswith("run directory:"):
            last = Path(line.split(":", 1)[1].strip())
    assert process.wait(timeout=300) == 75
    resumed = run_train(["--resume", str(last)], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr

    def final(run_dir: Path) -> dict[str, torch.Tensor]:
        state = read_checkpoint(run_dir / "checkpoints/last.pt")
        task = state.resume.trainer["task_trainable"]
        return {**state.model, **{f"task.{k}": v for k, v in task.items()}}

    straight_dir = next((tmp_path / "straight").rglob("run_000"))
    a, b = final(straight_dir), final(last)
    assert a.keys() == b.keys() and any(k.startswith("task.") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)
