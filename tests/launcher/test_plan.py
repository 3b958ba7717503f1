"""The stage graph (one table) and the launch planner: order, exact binding, matching, refusals.

Nothing is trained here: finished upstream runs on disk are written as the files the planner reads.
"""

import dataclasses
import json
from pathlib import Path

import pytest

import configs
from configs import ConfigError, ExperimentConfig
from kdgat.config.codec import load_yaml
from kdgat.config.levels import check_levels
from kdgat.config.presets import config_from_preset, valid_presets
from kdgat.config.resolve import resolve
from kdgat.launcher import grid, pipeline
from kdgat.launcher.plan import Group, plan
from kdgat.runs.prerequisites import PREREQUISITES, candidate_levels, fits, needed
from kdgat.runs.store import Run, update_status
from kdgat.runs.upstream import _changed_flags

STUDENT = {"model_size": "student", "distillation": "standard"}


def base(tmp_path: Path, **changes) -> ExperimentConfig:
    return dataclasses.replace(ExperimentConfig(runs_root=tmp_path / "runs"), **changes)


def sweep(cfg: ExperimentConfig, levels: dict, sets: list | None = None) -> list[ExperimentConfig]:
    all_levels = {level: [] for level in configs.LEVELS} | levels
    return grid.expand(cfg, all_levels, sets or []).valid


def finished_run(cfg: ExperimentConfig) -> Path:
    """A run directory as a finished run leaves it, as far as binding reads it."""
    run = Run.claim(resolve(cfg))
    (run.path / "metrics.json").write_text(json.dumps({"test": {"f1": 0.5}}))
    (run.path / "checkpoints").mkdir()
    (run.path / "checkpoints/best.pt").write_bytes(b"")
    update_status(run.path, state="finished", finished_at="2026-01-01T00:00:00+00:00")
    return run.path


def test_every_prerequisite_of_every_valid_preset_is_a_valid_run_that_fits() -> None:
    for name in valid_presets():
        cfg = config_from_preset(name)
        for p in needed(cfg):
            for levels in candidate_levels(p, cfg):
                check_levels(levels)  # raises for an impossible upstream
                assert fits(p, cfg, dataclasses.replace(cfg, **levels)) == [], (name, p.field)
    assert [p.field for p in PREREQUISITES] == ["vgae_run", "gat_run", "teacher_run"]


def test_the_default_pipeline_waits_for_what_its_runs_build_on(tmp_path: Path) -> None:
    groups = [Group(s.name, [pipeline.stage_config(base(tmp_path), s)]) for s in pipeline.KD_GAT]
    units = plan(groups, []).units
    assert {u.name: u.after for u in units} == {
        "vgae_teacher": (),
        "gat_teacher": ("vgae_teacher",),
        "vgae_student": ("vgae_teacher",),
        "dqn_teacher": ("vgae_teacher", "gat_teacher"),
        "gat_student": ("gat_teacher", "vgae_student"),
        "dqn_student": ("dqn_teacher", "vgae_student", "gat_student"),
    }
    assert [u.name for u in units][:3] == ["vgae_teacher", "gat_teacher", "vgae_student"]


def test_a_seed_grid_binds_each_student_to_the_teacher_of_its_seed(tmp_path: Path) -> None:
    cfgs = sweep(
        base(tmp_path),
        {"model_size": ["teacher", "student"], "distillation": ["no", "standard"]},
        [("training_config.seed", [0, 1, 2])],
    )
    the_plan = plan([Group("kdgat", cfgs)], ["training_config.seed"])
    assert [(u.name, len(u.cfgs), u.after) for u in the_plan.units] == [
        ("kdgat_1", 6, ()),
        ("kdgat_2", 3, ("kdgat_1",)),
    ]
    students = [r for r in the_plan.runs if r.cfg.distillation == "standard"]
    assert len(students) == 3
    for student in students:
        teacher = the_plan.runs[student.binds["teacher_run"]].cfg
        assert (teacher.model_size, teacher.distillation) == ("teacher", "no")
        assert teacher.training_config.seed == student.cfg.training_config.seed


def test_any_grid_axis_binds_like_with_like(tmp_path: Path) -> None:
    cfgs = sweep(
        base(tmp_path),
        {"model_size": ["teacher", "student"], "distillation": ["no", "standard"]},
        [("model_size_config.hidden_dim", [8, 16])],
    )
    the_plan = plan([Group("kdgat", cfgs)], ["model_size_config.hidden_dim"])
    for run in the_plan.runs:
        if "teacher_run" in run.binds:
            teacher = the_plan.runs[run.binds["teacher_run"]].cfg
            assert teacher.model_size_config.hidden_dim == run.cfg.model_size_config.hidden_dim


def test_an_ambiguous_launch_is_refused_with_the_reason(tmp_path: Path) -> None:
    teacher = pipeline.stage_config(base(tmp_path), pipeline.Stage("t", {"model_size": "teacher"}))
    other = dataclasses.replace(
        teacher, training_config=dataclasses.replace(teacher.training_config, lr=1e-3)
    )
    student = resolve(base(tmp_path, **STUDENT))
    groups = [Group("a", [teacher]), Group("b", [other]), Group("s", [student])]
    with pytest.raises(ConfigError, match=r"ambiguous.*differ only in training_config\.lr") as err:
        plan(groups, [])
    assert "nothing was submitted" in str(err.value)
    # With lr a grid axis the student binds the teacher of its own lr.
    bound = plan(groups, ["training_config.lr"]).runs[2].binds["teacher_run"]
    assert bound == 0
    # A launch whose teachers all differ from the student (here in seed) is refused, not left to disk.
    odd = dataclasses.replace(student, training_config=dataclasses.replace(student.training_config, seed=5))
    with pytest.raises(ConfigError, match=r"none agrees with it.*training_config\.seed \(0 vs 5\)"):
        plan([Group("a", [teacher]), Group("s", [odd])], [])


def test_a_missing_prerequisite_is_refused_with_the_command_that_trains_it(tmp_path: Path) -> None:
    cfg = base(tmp_path, training_config=configs.TrainingConfig(seed=2), **STUDENT)
    with pytest.raises(ConfigError) as err:
        plan([Group("kdgat", [resolve(cfg)])], [])
    message = str(err.value)
    assert "needs a finished teacher run" in message and "--teacher-run RUN_DIR" in message
    assert "python train.py --dataset synthetic --learning-type classifier" in message
    assert "--model-size teacher" in message and "--training.seed 2" in message
    assert f"--runs-root {tmp_path / 'runs'}" in message
    assert not (tmp_path / "runs").exists()


def test_a_teacher_on_disk_is_bound_when_planned_same_seed_first(tmp_path: Path) -> None:
    seed = lambda s: configs.TrainingConfig(seed=s)  # noqa: E731
    seed0 = finished_run(base(tmp_path, model_size="teacher", training_config=seed(0)))
    finished_run(base(tmp_path, model_size="teacher", training_config=seed(1)))  # newer, other seed
    student = resolve(base(tmp_path, training_config=seed(0), **STUDENT))
    [run] = plan([Group("kdgat", [student])], []).runs
    assert run.on_disk == {"teacher_run": seed0} and run.binds == {}
    assert run.cfg.teacher_run == seed0  # recorded in its config.yaml once claimed


def test_a_given_upstream_wins_and_is_checked(tmp_path: Path) -> None:
    vgae = finished_run(
        base(tmp_path, learning_type="unsupervised", model_architecture="VGAE", training_mode="normals_only")
    )
    teacher = resolve(base(tmp_path, model_size="teacher"))
    student = resolve(base(tmp_path, teacher_run=vgae, **STUDENT))
    with pytest.raises(ConfigError, match="model_architecture=VGAE"):
        plan([Group("kdgat", [teacher, student])], [])


def test_claiming_writes_each_config_with_the_run_dirs_it_builds_on(tmp_path: Path) -> None:
    cfgs = sweep(base(tmp_path), {"model_size": ["teacher", "student"], "distillation": ["no", "standard"]})
    the_plan = plan([Group("kdgat", cfgs)], [])
    first, second = the_plan.units
    with pytest.raises(RuntimeError):
        the_plan.claim(second)  # its teacher has no directory yet
    the_plan.claim(first)
    the_plan.claim(second)
    [student_dir] = second.run_dirs
    teacher_dir = first.run_dirs[[c.model_size for c in first.cfgs].index("teacher")]
    saved = load_yaml(student_dir / "config.yaml")
    assert (
        saved.teacher_run == teacher_dir and Run.open(student_dir).upstream["teacher_run"].path == teacher_dir
    )
    assert Run.open(student_dir).status["state"] == "queued"
    the_plan.release(second)
    assert not student_dir.exists() and teacher_dir.exists()


def test_the_train_command_walks_nested_data_sections() -> None:
    @dataclasses.dataclass
    class Automotive:
        window: int = 100

    @dataclasses.dataclass
    class Data:
        data_root: Path | None = None
        automotive: Automotive = dataclasses.field(default_factory=Automotive)

    changed = Data(data_root=Path("d"), automotive=Automotive(window=50))
    assert _changed_flags(changed, Data(), "--dataset-config") == [
        "--data-root",
        "d",
        "--dataset-config.automotive.window",
        "50",
    ]
