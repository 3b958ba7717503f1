"""kdgat.results reads lineage: upstream columns, runs whose upstream was deleted or retrained after
them flagged in `stale`, and the `--lineage RUN` tree. Run trees are written as kdgat writes them."""

import json
import shutil
from pathlib import Path

import configs
from kdgat import results
from kdgat.cli.results import main as results_main
from kdgat.config.resolve import resolve
from kdgat.runs.store import Run, portable, update_status

DQN = dict(learning_type="fusion", model_architecture="DQN")
GAT_TEACHER = dict(model_size="teacher")
GAT_STUDENT = dict(model_size="student", distillation="standard")
VGAE = dict(learning_type="unsupervised", model_architecture="VGAE", training_mode="normals_only")


def write_run(root: Path, started: str, finished: str, seed: int = 0, **upstream: Path) -> Path:
    """A finished run built on `upstream` (field -> run dir), recording it as run_experiment does."""
    levels = upstream.pop("levels")
    cfg = resolve(
        configs.ExperimentConfig(
            runs_root=root, training_config=configs.TrainingConfig(seed=seed), **levels, **upstream
        )
    )
    run = Run.claim(cfg)
    refs = {field: Run(path).reference(run.path) for field, path in upstream.items()}
    metrics = {
        "test": {"f1": 0.9, "n": 10},
        "upstream": {field: portable(path, run.path) for field, path in upstream.items()},
        "lineage": refs,
    }
    (run.path / "metrics.json").write_text(json.dumps(metrics))
    update_status(run.path, state="finished", started_at=started, finished_at=finished, lineage=refs)
    return run.path


def tree_of(tmp_path: Path) -> dict[str, Path]:
    root = tmp_path / "runs"
    runs = {"teacher": write_run(root, "2026-01-01T00:00", "2026-01-01T01:00", levels=GAT_TEACHER)}
    runs["student"] = write_run(
        root, "2026-01-01T02:00", "2026-01-01T03:00", levels=GAT_STUDENT, teacher_run=runs["teacher"]
    )
    runs["vgae"] = write_run(root, "2026-01-01T00:00", "2026-01-01T00:30", levels={**VGAE, **GAT_STUDENT})
    runs["dqn"] = write_run(
        root,
        "2026-01-01T04:00",
        "2026-01-01T05:00",
        levels={**DQN, "model_size": "student"},
        vgae_run=runs["vgae"],
        gat_run=runs["student"],
    )
    return runs


def stale(tmp_path: Path) -> dict[str, str | None]:
    """The `stale` column by run path."""
    df = results.load_runs(tmp_path / "runs")
    return {p: None if s is None else str(s) for p, s in zip(df["path"], df["stale"], strict=True)}


def test_fresh_lineage_has_columns_and_nothing_stale(tmp_path: Path) -> None:
    runs = tree_of(tmp_path)
    df = results.load_runs(tmp_path / "runs").set_index("path")
    dqn = df.loc[str(runs["dqn"])]
    assert dqn["upstream.gat_run"] == portable(runs["student"], runs["dqn"])
    assert dqn["lineage.gat_run.config_digest"] == df.loc[str(runs["student"]), "config_digest"]
    assert dqn["lineage.gat_run.config_digest"].startswith("sha256:")
    assert df["stale"].isna().all()


def test_a_retrained_upstream_flags_its_dependants_and_theirs(tmp_path: Path) -> None:
    runs = tree_of(tmp_path)
    update_status(runs["teacher"], finished_at="2026-01-02T00:00")  # trained again in its directory
    flagged = stale(tmp_path)
    rel = portable(runs["teacher"], runs["student"])
    assert flagged[str(runs["student"])] == (
        f"teacher_run {rel} was retrained after it (finished 2026-01-02T00:00, it used 2026-01-01T01:00)"
    )
    dqn = flagged[str(runs["dqn"])]
    assert dqn.startswith("gat_run ") and "builds on stale runs (teacher_run" in dqn
    assert flagged[str(runs["teacher"])] is None and flagged[str(runs["vgae"])] is None


def test_a_deleted_or_replaced_upstream_is_flagged(tmp_path: Path) -> None:
    runs = tree_of(tmp_path)
    shutil.rmtree(runs["vgae"])
    df = results.load_runs(tmp_path / "runs").set_index("path")
    assert df.loc[str(runs["dqn"]), "stale"] == f"vgae_run {portable(runs['vgae'], runs['dqn'])} was deleted"
    # Another run took the teacher's directory (deleted, then a new claim got its number back).
    config = runs["teacher"] / "config.yaml"
    config.write_text(config.read_text().replace("seed: 0", "seed: 7"))
    df = results.load_runs(tmp_path / "runs").set_index("path")
    assert "was replaced by a run with another config.yaml" in df.loc[str(runs["student"]), "stale"]


def test_runs_without_recorded_lineage_are_judged_by_time(tmp_path: Path) -> None:
    runs = tree_of(tmp_path)
    metrics_path = runs["student"] / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    del metrics["lineage"]  # written before lineage was recorded: only the path
    metrics_path.write_text(json.dumps(metrics))
    status = json.loads((runs["student"] / "status.json").read_text())
    del status["lineage"]
    (runs["student"] / "status.json").write_text(json.dumps(status))
    assert stale(tmp_path)[str(runs["student"])] is None
    update_status(runs["teacher"], finished_at="2026-01-01T02:30")  # after the student started
    df = results.load_runs(tmp_path / "runs").set_index("path")
    assert "finished 2026-01-01T02:30, after it started" in df.loc[str(runs["student"]), "stale"]


def test_lineage_view_prints_the_tree(tmp_path: Path, capsys) -> None:
    runs = tree_of(tmp_path)
    shutil.rmtree(runs["teacher"])
    root = tmp_path / "runs"
    dqn = str(runs["dqn"].relative_to(root))
    assert results_main([str(root), "--lineage", dqn]) == 0
    lines = capsys.readouterr().out.splitlines()
    digest = lambda run: Run(run).config_digest  # noqa: E731
    student = str(runs["student"].relative_to(root))
    assert lines[0] == f"{dqn}  finished  test.f1=0.9000  {digest(runs['dqn'])}"
    assert lines[1].startswith(f"├── vgae_run: {runs['vgae'].relative_to(root)}  finished")
    assert lines[2] == f"└── gat_run: {student}  finished  test.f1=0.9000  {digest(runs['student'])}"
    teacher = str(runs["teacher"].relative_to(root))
    assert lines[3] == f"    └── teacher_run: {teacher}  MISSING  !! teacher_run {teacher} was deleted"
    assert len(lines) == 4
    assert results_main([str(root), "--lineage", "automotive/nope/run_000"]) == 2
    assert "no run directory" in capsys.readouterr().err
