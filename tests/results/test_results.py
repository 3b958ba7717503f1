"""kdgat.results: run trees (real and generated, including broken ones) -> tables."""

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

import configs
from kdgat import results
from kdgat.cli.results import main as results_command
from kdgat.config.codec import load_yaml, to_dict, to_yaml
from kdgat.config.presets import preset_name
from kdgat.config.resolve import resolve
from kdgat.results import hparams, read
from kdgat.results.columns import is_knob
from kdgat.runs.store import write_config_json
from tests.helpers import REPO

BASE_LEVELS = dict(
    modality="automotive",
    dataset="hcrlsa",
    learning_type="classifier",
    model_architecture="GAT",
    training_mode="all_samples",
)


def metrics_block(f1: float, n: int = 100, n_attack: int = 40) -> dict:
    return {
        "n": n,
        "n_attack": n_attack,
        "accuracy": 0.9,
        "precision": f1,
        "recall": f1,
        "f1": f1,
        "auroc": 0.99,
        "benign_fpr": 0.01,
        "threshold": 0.5,
        "confusion_matrix": {"tn": 59, "fp": 1, "fn": 2, "tp": 38},
    }


def make_run(
    root: Path,
    *,
    seed: int = 0,
    f1: float = 0.9,
    params: int = 1000,
    train_s: float = 100.0,
    eval_s: float = 10.0,
    state: str = "finished",
    error: str | None = None,
    write_config: bool = True,
    config_json: bool = True,
    write_metrics: bool = True,
    evals: dict[str, float] | None = None,
    **levels: str,
) -> Path:
    """A run directory as kdgat writes it (config.yaml via to_yaml, then config.json from it;
    config_json=False: as kdgat wrote it before config.json)."""
    cfg = configs.ExperimentConfig(**{**BASE_LEVELS, "model_size": "student", "distillation": "no", **levels})
    cfg.training_config.seed = seed
    cfg = resolve(cfg)
    exp_dir = root.joinpath(*(str(getattr(cfg, level)) for level in configs.LEVELS))
    exp_dir.mkdir(parents=True, exist_ok=True)
    run_dir = exp_dir / f"run_{len(list(exp_dir.iterdir())):03d}"  # numbered as Run.claim numbers
    run_dir.mkdir()
    if write_config:
        (run_dir / "config.yaml").write_text(to_yaml(cfg))
        if config_json:
            write_config_json(run_dir)
    status = {
        "state": state,
        "host": "node7",
        "pid": 42,
        "git": {"commit": "abc", "dirty": False},
        "timings": {"data_s": 1.0, "train_s": train_s, "eval_s": eval_s},
        "slurm": {"slurm_job_id": "123"},
        "error": error,
    }
    (run_dir / "status.json").write_text(json.dumps(status))
    if write_metrics:
        test = dict(
            metrics_block(f1),
            attack_types={"dos": {"n": 20, "recall": 1.0}, "fuzzing": {"n": 20, "recall": f1}},
        )
        metrics = {
            "val": metrics_block(f1 - 0.01),
            "test": test,
            "test_by_split": {"test_01": dict(test)},
            "preset": preset_name(cfg),
            "params": params,
            "best_epoch": 3,
            "epochs_run": 5,
            "stopped_early": False,
            "history": [{"epoch": 0, "train_loss": 1.0}],
            "data": {"root": "data/x", "train_graphs": 10, "train_files": {"a.csv": 5}},
        }
        (run_dir / "metrics.json").write_text(json.dumps(metrics))
    for name, value in (evals or {}).items():
        (run_dir / f"eval_{name}.json").write_text(json.dumps(metrics_block(value)))
    return run_dir


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Teacher and distilled-student runs over two seeds on hcrlsa, one hcrlch run, broken runs."""
    root = tmp_path / "runs"
    make_run(
        root,
        model_size="teacher",
        seed=0,
        f1=0.96,
        params=10_000,
        train_s=400,
        eval_s=40,
        evals={"hcrlch": 0.7},
    )
    make_run(
        root,
        model_size="teacher",
        seed=1,
        f1=0.94,
        params=10_000,
        train_s=400,
        eval_s=40,
        evals={"hcrlch": 0.5},
    )
    make_run(
        root,
        model_size="student",
        distillation="standard",
        seed=0,
        f1=0.92,
        params=1000,
        train_s=100,
        eval_s=10,
    )
    make_run(
        root,
        model_size="student",
        distillation="standard",
        seed=1,
        f1=0.88,
        params=1000,
        train_s=100,
        eval_s=10,
    )
    make_run(  # written before config.json existed: read from config.yaml
        root,
        dataset="hcrlch",
        model_size="teacher",
        seed=0,
        f1=0.8,
        params=10_000,
        evals={"hcrlsa": 0.6},
        config_json=False,
    )
    # Broken or unfinished runs: each must be listed with its reason, never crash, never vanish.
    make_run(root, model_size="tiny", write_metrics=False)  # finished but metrics.json missing
    corrupt = make_run(root, model_size="intermediate")
    (corrupt / "metrics.json").write_text('{"test": {"f1": 0.9,')
    make_run(
        root, model_size="huge", state="failed", error="TrainingDiverged: loss is NaN", write_metrics=False
    )
    make_run(
        root, model_size="student", distillation="topology_preserving", state="running", write_metrics=False
    )
    make_run(root, dataset="set01", write_config=False)
    make_run(root, dataset="set04", state="preempted", write_metrics=False)
    bad_eval = make_run(root, dataset="set02", f1=0.5)
    (bad_eval / "eval_set03.json").write_text("not json")
    bad_status = make_run(root, dataset="set03")
    (bad_status / "status.json").write_text("{")
    return root


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        code = results_command(list(args))
    finally:
        sys.stdout, sys.stderr = saved
    return code, out.getvalue(), err.getvalue()


def row_of(df: pd.DataFrame, **where: object) -> pd.Series:
    mask = pd.Series(True, index=df.index)
    for key, value in where.items():
        mask &= df[key] == value
    assert mask.sum() == 1, (where, mask.sum())
    return df[mask].iloc[0]


# ---------------------------------------------------------------------------------------------


def test_config_json_gives_the_row_config_yaml_gives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = resolve(configs.ExperimentConfig(**BASE_LEVELS, model_size="student", distillation="no"))
    cfg.osc_config.setup = [
        "module load python/3.11",
        "source ~/venvs/kdgat/bin/activate && export A='x: y' # not a comment",
        "echo " + "very long line " * 12,
        "- dash",
        "",
        "yes",
        "123",
    ]
    cfg.osc_config.account = "PAS1234"
    cfg.dataset_config.test_dirs = ("test_*", "extra: colon", "#hash")
    run_dir = make_run(tmp_path / "runs", write_config=False)
    (run_dir / "config.yaml").write_text(to_yaml(cfg))
    from_yaml = read.read_run(run_dir)
    write_config_json(run_dir)
    with monkeypatch.context() as patch:  # config.json is read without any YAML parser
        patch.setattr(read.yaml, "load", lambda *a, **k: pytest.fail("config.yaml was parsed"))
        from_json = read.read_run(run_dir)
    assert from_json == from_yaml and list(from_json) == list(from_yaml)  # same columns, same order
    assert from_json["problem"] is None and from_json["warning"] is None
    assert from_json["osc_config.account"] == "PAS1234" and from_json["config.runs_root"] == "runs"
    assert from_json["dataset_config.test_dirs"] == "test_*,extra: colon,#hash"
    assert from_json["dataset_config.automotive.window"] == cfg.dataset_config.automotive.window
    assert from_json["learning_config.class_weighting"] == cfg.learning_config.class_weighting
    # config.yaml is the truth: edited after config.json was written, or config.json corrupt.
    text = (run_dir / "config.yaml").read_text()
    (run_dir / "config.yaml").write_text(text.replace("  lr: 0.003\n", "  lr: 0.01\n"))
    assert read.read_run(run_dir)["training_config.lr"] == 0.01
    (run_dir / "config.json").write_text('{"config_digest": ')
    row = read.read_run(run_dir)
    assert row["training_config.lr"] == 0.01 and row["problem"] is None and row["warning"] is None
    (run_dir / "config.yaml").write_text("a: [1,\n")  # and a broken config.yaml is still reported
    assert "config.yaml not valid YAML" in read.read_run(run_dir)["problem"]


def test_write_config_json_backfills_old_run_directories(tree: Path) -> None:
    before = results.load_runs(tree)
    old = [Path(p) for p in before["path"] if not (Path(p) / "config.json").exists()]
    assert len(old) == 2  # the run from before config.json, and the one without config.yaml
    code, out, err = run_cli(str(tree), "--write-config-json")
    assert code == 0 and "wrote config.json into 1 run(s); 11 already had a current one" in out, err
    assert [p.name for p in old if (p / "config.json").exists()] == ["run_000"]
    after = results.load_runs(tree)
    pd.testing.assert_frame_equal(before, after)
    code, out, _ = run_cli(str(tree), "--write-config-json")
    assert "into 0 run(s); 12 already" in out
    broken = Path(row_of(after, dataset="set02")["path"])
    (broken / "config.yaml").write_text("- a list, not a mapping\n")
    code, out, err = run_cli(str(tree), "--write-config-json", "--where", "dataset=set02")
    assert code == 1 and "into 0 run(s)" in out and "could not be read" in err and "set02" in err


@pytest.mark.slow
def test_training_runs_without_pandas() -> None:
    # With pandas made unimportable: torch_geometric imports it only if it can (so a plain
    # `import kdgat.experiment` still finds it in sys.modules), kdgat's training path never needs it.
    code = (
        "import sys; sys.modules['pandas'] = None\n"
        "import kdgat.experiment, kdgat.results.hparams\nprint('imported')"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "imported", proc.stderr[-2000:]
    code = "import sys, kdgat.results.hparams, kdgat.results.read; print('pandas' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"
    # A finishing run writes its HParams entry from the values in hand: no reading back.
    code = "import sys, kdgat.experiment; print('kdgat.results.read' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"


def test_metrics_reader_skips_history_only_when_safe(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    cases = [
        {"a": 1, "history": [{"epoch": 0, "loss": 0.5}, {"epoch": 1, "loss": 0.25}], "test": {"f1": 0.9}},
        {"history": [{"epoch": 0, "tags": ["x]", "y"]}], "z": {"history": [1]}},  # nested list: full parse
        {"history": [{"note": "a ] inside a string"}], "params": 3},
        {"test": {"history": [{"epoch": 0}]}, "params": 3},  # no top-level history
        {"history": [], "params": 3},
    ]
    for case in cases:
        for indent in (2, None, 1):
            path.write_text(json.dumps(case, indent=indent, sort_keys=True))
            got = read.read_metrics(str(path))
            expected = dict(case)
            if got.get("history") == [] and "history" in case:
                expected["history"] = []
            assert got == expected, (case, indent)
    path.write_text(json.dumps(cases[0], indent=2))
    assert read.read_metrics(str(path))["history"] == []  # the usual layout takes the fast path


def test_one_row_per_run_with_levels_knobs_metrics_status(tree: Path) -> None:
    df = results.load_runs(tree)
    assert len(df) == 13
    assert df["run"].is_unique
    ok = results.usable(df)
    assert len(ok) == 6  # 5 good runs + set02, whose only flaw is a corrupt eval file
    teacher = row_of(ok, dataset="hcrlsa", model_size="teacher", **{"training_config.seed": 1})
    assert teacher["run"] == "automotive/hcrlsa/classifier/GAT/teacher/no/all_samples/run_001"
    assert teacher["model_architecture"] == "GAT" and teacher["distillation"] == "no"
    assert teacher["state"] == "finished"
    assert teacher["test.f1"] == pytest.approx(0.94)
    assert teacher["val.f1"] == pytest.approx(0.93)
    assert teacher["test.confusion_matrix.tp"] == 38
    assert teacher["test.attack_types.fuzzing.recall"] == pytest.approx(0.94)
    assert teacher["test.attack_types.dos.n"] == 20
    assert teacher["test_by_split.test_01.f1"] == pytest.approx(0.94)
    assert teacher["eval.hcrlch.f1"] == pytest.approx(0.5)
    assert teacher["params"] == 10_000
    assert teacher["timings.train_s"] == 400
    assert teacher["git.commit"] == "abc" and teacher["slurm.slurm_job_id"] == "123"
    assert teacher["model_size_config.hidden_dim"] == configs.SIZE_TABLE["teacher"]["hidden_dim"]
    assert teacher["training_config.lr"] == configs.TrainingConfig().lr
    assert teacher["dataset_config.test_dirs"] == "test_*"
    assert teacher["data.train_graphs"] == 10
    assert "history" not in df.columns and not any(c.startswith("data.train_files") for c in df.columns)
    # A deeper root (one experiment, or one run) works too, levels still filled in.
    experiment = tree / "automotive/hcrlsa/classifier/GAT/teacher/no/all_samples"
    below = results.load_runs(experiment)
    assert list(below["run"]) == ["run_000", "run_001"] and set(below["model_size"]) == {"teacher"}
    single = results.load_runs(experiment / "run_001")
    assert len(single) == 1 and single.loc[0, "test.f1"] == pytest.approx(0.94)
    assert single.loc[0, "dataset"] == "hcrlsa"
    # Hierarchy columns come first, in hierarchy order.
    assert list(df.columns[:9]) == ["run", *configs.LEVELS, "run_number"]


def test_broken_runs_are_listed_with_reasons_not_dropped(tree: Path) -> None:
    df = results.load_runs(tree)
    listed = results.problems(df).set_index("run")["problem"].to_dict()
    reasons = {
        run.split("/")[1] + "/" + run.split("/")[4] + "/" + run.split("/")[5]: why
        for run, why in listed.items()
    }
    assert "metrics.json missing although status.json says finished" in reasons["hcrlsa/tiny/no"]
    assert "metrics.json not valid JSON" in reasons["hcrlsa/intermediate/no"]
    assert "'failed'" in reasons["hcrlsa/huge/no"] and "loss is NaN" in reasons["hcrlsa/huge/no"]
    assert "'running'" in reasons["hcrlsa/student/topology_preserving"]
    assert "check host and pid" in reasons["hcrlsa/student/topology_preserving"]
    assert reasons["set01/student/no"] == "config.yaml missing"
    assert "--resume " + str(tree / "automotive/set04") in reasons["set04/student/no"]
    assert "status.json not valid JSON" in reasons["set03/student/no"]
    assert pd.isna(reasons["set02/student/no"])  # usable, with a warning about its eval file
    warning = (
        results.problems(df).set_index("run").loc[df.loc[df.dataset == "set02", "run"].iloc[0], "warning"]
    )
    assert "eval_set03.json not valid JSON" in warning
    assert len(listed) == 8


def test_where_filters(tree: Path) -> None:
    df = results.usable(results.load_runs(tree))
    assert len(results.apply_where(df, ["dataset=hcrlsa", "model_size=student"])) == 2
    assert len(results.apply_where(df, ["size=student,teacher", "dataset=hcrlsa"])) == 4
    assert len(results.apply_where(df, ["model_size!=teacher"])) == 3
    assert set(results.apply_where(df, ["test.f1>=0.92"])["test.f1"]) == {0.96, 0.94, 0.92}
    assert set(results.apply_where(df, ["test.f1<0.9"])["test.f1"]) == {0.88, 0.8, 0.5}
    assert len(results.apply_where(df, ["seed=1"])) == 2
    assert len(results.apply_where(df, ["stopped_early=false"])) == 6
    with pytest.raises(results.ResultsError, match=r"unknown column 'datset'.*Did you mean: dataset"):
        results.apply_where(df, ["datset=hcrlsa"])
    with pytest.raises(results.ResultsError, match="expected COLUMN=VALUE"):
        results.apply_where(df, ["dataset"])
    with pytest.raises(results.ResultsError, match="not a number"):
        results.apply_where(df, ["test.f1=high"])


def test_group_mean_std_over_seeds(tree: Path) -> None:
    df = results.apply_where(results.usable(results.load_runs(tree)), ["dataset=hcrlsa"])
    grouped = results.group_runs(df, ["model_size", "distillation"], ["test.f1", "params"]).set_index(
        "model_size"
    )
    assert grouped.loc["teacher", "n"] == 2 and grouped.loc["teacher", "seeds"] == 2
    assert grouped.loc["teacher", "test.f1.mean"] == pytest.approx(0.95)
    assert grouped.loc["teacher", "test.f1.std"] == pytest.approx(math.sqrt(2) * 0.01)
    assert grouped.loc["student", "test.f1.mean"] == pytest.approx(0.90)
    assert grouped.loc["student", "distillation"] == "standard"
    assert grouped.loc["student", "params.mean"] == 1000


def test_best_run_per_group(tree: Path) -> None:
    df = results.usable(results.load_runs(tree))
    best = results.best_runs(df, ["dataset", "model_size"], "test.f1").set_index(["dataset", "model_size"])
    assert best.loc[("hcrlsa", "teacher"), "training_config.seed"] == 0
    assert best.loc[("hcrlsa", "student"), "test.f1"] == pytest.approx(0.92)
    assert len(best) == 4
    worst = results.best_runs(df, ["dataset", "model_size"], "test.f1", lowest=True)
    assert worst.set_index(["dataset", "model_size"]).loc[("hcrlsa", "teacher"), "test.f1"] == pytest.approx(
        0.94
    )


def test_teacher_student_deltas(tree: Path) -> None:
    df = results.usable(results.load_runs(tree))
    deltas = results.teacher_student_deltas(df, ["test.f1"])
    assert len(deltas) == 1  # only hcrlsa has a student next to its teacher
    row = deltas.iloc[0]
    assert (row["dataset"], row["model_size"], row["distillation"]) == ("hcrlsa", "student", "standard")
    assert row["n"] == 2 and row["n.teacher"] == 2
    assert row["param_ratio"] == pytest.approx(0.1)
    assert row["test.f1.delta"] == pytest.approx(0.90 - 0.95)
    assert row["speedup.train_s"] == pytest.approx(4.0)
    assert row["speedup.eval_s"] == pytest.approx(4.0)
    assert "speedup.data_s" not in deltas.columns
    with pytest.raises(results.ResultsError, match="no finished teacher runs"):
        results.teacher_student_deltas(results.apply_where(df, ["model_size=student"]), ["test.f1"])


def test_transfer_matrix(tree: Path) -> None:
    df = results.apply_where(results.usable(results.load_runs(tree)), ["model_size=teacher"])
    matrix = results.transfer_matrix(df, "f1")
    assert list(matrix.index) == ["hcrlch", "hcrlsa"] and list(matrix.columns) == ["hcrlch", "hcrlsa"]
    assert matrix.loc["hcrlsa", "hcrlch"] == pytest.approx(0.6)  # mean of the two seeds' eval files
    assert matrix.loc["hcrlsa", "hcrlsa"] == pytest.approx(0.95)  # own test split
    assert matrix.loc["hcrlch", "hcrlsa"] == pytest.approx(0.6)
    assert matrix.loc["hcrlch", "hcrlch"] == pytest.approx(0.8)
    code, out, _ = run_cli(str(tree), "--transfer", "f1", "--where", "model_size=teacher", "--format", "csv")
    assert code == 0
    back = pd.read_csv(io.StringIO(out), index_col=0)
    assert back.loc["hcrlsa", "hcrlch"] == pytest.approx(0.6)


def test_parallel_read_equals_serial(tree: Path) -> None:
    serial = results.load_runs(tree, workers=1)
    parallel = results.load_runs(tree, workers=2)
    assert list(serial.columns) == list(parallel.columns)

    def plain(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.astype(object).where(frame.notna(), None)

    pd.testing.assert_frame_equal(plain(serial), plain(parallel), check_dtype=False)


def test_cli_formats(tree: Path) -> None:
    code, out, err = run_cli(str(tree), "--where", "dataset=hcrlsa")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 5  # header + 4 usable hcrlsa runs
    assert "model_size" in lines[0] and "test.f1" in lines[0] and "dataset" not in lines[0].split()
    assert "7 run(s) left out" not in err and "run(s) left out" in err  # problems of the filtered set
    assert "state is 'failed'" in err and "loss is NaN" in err

    code, out, _ = run_cli(str(tree), "--format", "csv")
    back = pd.read_csv(io.StringIO(out))
    assert len(back) == 6 and "training_config.lr" in back.columns and "eval.hcrlch.f1" in back.columns
    assert sorted(back["test.f1"]) == pytest.approx([0.5, 0.8, 0.88, 0.92, 0.94, 0.96])

    code, out, _ = run_cli(
        str(tree), "--format", "markdown", "--group-by", "dataset,model_size", "--metrics", "test.f1"
    )
    lines = out.splitlines()
    assert lines[0] == "| dataset | model_size | n | seeds | test.f1 | test.f1 95% CI |"
    assert lines[1] == "|---|---|---|---|---|---|"
    assert "| hcrlsa | teacher | 2 | 2 | 0.9500 ± 0.0141 | [0.8229, 1.0771] |" in lines  # t(1) = 12.71

    code, out, _ = run_cli(
        str(tree), "--format", "latex", "--group-by", "model_size", "--where", "dataset=hcrlsa"
    )
    assert (
        out.startswith("\\begin{tabular}{") and "\\toprule" in out and out.rstrip().endswith("\\end{tabular}")
    )
    assert "model\\_size" in out and "$\\pm$" in out

    code, out, err = run_cli(str(tree), "--group-by", "model_size", "--metrics", "test.f1")
    assert code == 0 and "note: groups mix runs that differ in dataset (hcrlch, hcrlsa, set02)" in err
    assert " teacher 3     2 0.9000 ± 0.0872" in out
    assert "model_size_config" not in err  # knobs that follow from a mixed level are not listed
    code, out, err = run_cli(str(tree), "--group-by", "levels", "--metrics", "test.f1")
    assert code == 0 and "note:" not in err and len(out.splitlines()) == 5

    code, out, _ = run_cli(str(tree), "--best", "val.f1", "--group-by", "dataset", "--format", "csv")
    back = pd.read_csv(io.StringIO(out)).set_index("dataset")
    assert back.loc["hcrlsa", "val.f1"] == pytest.approx(0.95)

    code, out, _ = run_cli(str(tree), "--deltas", "--format", "csv", "--metrics", "test.f1")
    back = pd.read_csv(io.StringIO(out))
    assert back.loc[0, "param_ratio"] == pytest.approx(0.1) and back.loc[
        0, "speedup.eval_s"
    ] == pytest.approx(4.0)

    code, out, _ = run_cli(
        str(tree), "--columns", "run,test.attack_types.*.recall", "--sort", "test.f1", "--descending"
    )
    header = out.splitlines()[0].split()
    assert header == ["run", "test.attack_types.dos.recall", "test.attack_types.fuzzing.recall"]
    assert "teacher/no/all_samples/run_000" in out.splitlines()[1]

    code, out, _ = run_cli(str(tree), "--include-problems", "--format", "csv", "--columns", "run,problem")
    assert len(pd.read_csv(io.StringIO(out))) == 13


def test_cli_user_errors_exit_2_without_traceback(tree: Path, tmp_path: Path) -> None:
    code, _, err = run_cli(str(tmp_path / "nowhere"))
    assert code == 2 and "does not exist" in err and "Traceback" not in err
    code, _, err = run_cli(str(tree), "--where", "dataset~hcrlsa")
    assert code == 2 and "expected COLUMN=VALUE" in err
    code, _, err = run_cli(str(tree), "--group-by", "modelsize")
    assert code == 2 and "unknown column 'modelsize'" in err and "model_size" in err
    code, _, err = run_cli(str(tree), "--where", "dataset=nope")
    assert code == 1 and "no usable runs match" in err and "hcrlsa" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_cli(str(empty))
    assert code == 1 and "no run directories" in err
    # As a real process: exit status 2 and a one-line message, no traceback.
    proc = subprocess.run(
        [sys.executable, "-m", "kdgat.results", str(tmp_path / "nowhere")],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert (
        proc.returncode == 2 and proc.stderr.startswith("error: runs root") and "Traceback" not in proc.stderr
    )
    proc = subprocess.run(
        [sys.executable, "-m", "kdgat.results", "--help"], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0 and "--where" in proc.stdout and "--transfer" in proc.stdout


# ---------------------------------------------------------------------------------------------
# A real run from train.py, and TensorBoard HParams read back.


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("real") / "runs"
    subprocess.run(
        [sys.executable, "train.py", "--runs-root", str(root), "--training.epochs", "1"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    return root


@pytest.mark.slow
def test_real_run_row_matches_its_files(real_runs: Path) -> None:
    df = results.load_runs(real_runs)
    assert len(df) == 1 and results.problems(df).empty
    row = df.iloc[0]
    run_dir = Path(row["path"])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert json.loads((run_dir / "config.json").read_text())["config_digest"] == row["config_digest"]
    assert row["state"] == "finished"
    assert [row[level] for level in configs.LEVELS] == [config[level] for level in configs.LEVELS]
    assert row["training_config.epochs"] == 1
    assert row["test.f1"] == pytest.approx(metrics["test"]["f1"])
    assert row["params"] == metrics["params"]
    for attack, values in metrics["test"]["attack_types"].items():
        assert row[f"test.attack_types.{attack}.recall"] == pytest.approx(values["recall"])
    for key, value in config["model_size_config"].items():
        assert row[f"model_size_config.{key}"] == value
    timings = [c for c in df.columns if c.startswith("timings.")]
    assert timings and all(row[c] > 0 for c in timings)


@pytest.mark.slow
def test_resuming_a_run_from_before_config_json_writes_it(real_runs: Path, tmp_path: Path) -> None:
    import shutil

    run_dir = tmp_path / "runs" / Path(results.load_runs(real_runs).iloc[0]["run"])
    shutil.copytree(results.load_runs(real_runs).iloc[0]["path"], run_dir)
    (run_dir / "config.json").unlink()  # as run_experiment left it before config.json existed
    before = read.read_run(run_dir)
    proc = subprocess.run(
        [sys.executable, "train.py", "--resume", str(run_dir)], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["config_digest"] == before["config_digest"]
    after = read.read_run(run_dir)
    assert {k: v for k, v in after.items() if is_knob(k)} == {k: v for k, v in before.items() if is_knob(k)}


@pytest.mark.slow
def test_finishing_run_writes_the_entry_that_reading_it_back_gives(real_runs: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    from kdgat.runs.store import config_knobs

    run_dir = Path(results.load_runs(real_runs).iloc[0]["path"])
    row = read.read_run(run_dir)
    want_hparams, want_metrics = hparams.hparams_of(row)
    # What run_experiment hands the writer: its resolved config and the metrics it wrote.
    cfg = resolve(load_yaml(run_dir / "config.yaml"))
    levels = {level: getattr(cfg, level) for level in configs.LEVELS}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    got = hparams.entry_of(levels, config_knobs(to_dict(cfg)), metrics)
    assert got == (want_hparams, want_metrics, int(row["epochs_run"]))
    # ... and the entry the run itself wrote holds exactly those values.
    (path,) = run_dir.glob("*" + hparams.HPARAMS_SUFFIX)
    accumulator = EventAccumulator(str(path))
    accumulator.Reload()
    content = accumulator.PluginTagToContent("hparams")
    session = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]
    ).session_start_info
    assert set(session.hparams) == set(want_hparams)
    for key, value in want_hparams.items():  # torch writes text as text, bools and numbers as numbers
        if isinstance(value, str):
            assert session.hparams[key].string_value == value, key
        else:
            assert session.hparams[key].number_value == pytest.approx(float(value)), key
    for tag, value in want_metrics.items():
        (event,) = accumulator.Scalars(tag)
        assert event.value == pytest.approx(value, abs=1e-6) and event.step == int(row["epochs_run"])


@pytest.mark.slow
def test_write_hparams_readable_by_tensorboard(real_runs: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    run_dir = Path(results.load_runs(real_runs).iloc[0]["path"])
    hparams.write_hparams(run_dir)
    path = hparams.write_hparams(run_dir)  # rewriting replaces, never duplicates
    assert path.is_file() and len(list(run_dir.glob("*" + hparams.HPARAMS_SUFFIX))) == 1
    accumulator = EventAccumulator(str(path))
    accumulator.Reload()
    content = accumulator.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    session = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]
    ).session_start_info
    assert "final/test.f1" in {m.name.tag for m in experiment.metric_infos}
    assert session.hparams["model_size"].string_value == "student"
    assert session.hparams["training_config.epochs"].number_value == 1
    metrics = json.loads((run_dir / "metrics.json").read_text())
    scalar = accumulator.Scalars("final/test.f1")[-1].value
    assert scalar == pytest.approx(metrics["test"]["f1"], abs=1e-6)
    code, out, _ = run_cli(str(real_runs), "--write-hparams")
    assert code == 0 and "1 run(s)" in out


def test_columns_choose_what_a_grouped_table_shows(tree: Path) -> None:
    code, out, err = run_cli(
        str(tree), "--group-by", "model_size", "--columns", "model_size,n,test.f1.mean", "--format", "csv"
    )
    assert code == 0, err
    assert out.splitlines()[0] == "model_size,n,test.f1.mean"
    code, _, err = run_cli(str(tree), "--group-by", "model_size", "--columns", "test.f1")
    assert code == 2 and "test.f1" in err  # the grouped table has test.f1.mean / .std, not test.f1


def test_margin_over_the_floor_is_a_column_and_a_result_at_the_floor_is_warned(tmp_path: Path) -> None:
    near = make_run(tmp_path, f1=0.58, dataset="hcrlsa")
    clear = make_run(tmp_path, f1=0.99, dataset="hcrlch")
    for run_dir in (near, clear):
        metrics = json.loads((run_dir / "metrics.json").read_text())
        floor = {"f1": 0.5756, "precision": 0.4041, "recall": 1.0, "accuracy": 0.4041, "benign_fpr": 1.0}
        metrics["test"]["flag_all"] = floor
        metrics["test_by_split"]["test_01"]["flag_all"] = dict(floor, f1=0.3)
        (run_dir / "metrics.json").write_text(json.dumps(metrics))
    df = results.load_runs(tmp_path)
    assert row_of(df, dataset="hcrlsa")["test.f1_margin"] == pytest.approx(0.58 - 0.5756)
    assert row_of(df, dataset="hcrlsa")["test_by_split.test_01.f1_margin"] == pytest.approx(0.28)
    assert row_of(df, dataset="hcrlsa")["at_floor"] == "test"
    assert row_of(df, dataset="hcrlch")["test.f1_margin"] == pytest.approx(0.99 - 0.5756)
    assert pd.isna(row_of(df, dataset="hcrlch")["at_floor"])
    code, out, err = run_cli(str(tmp_path))
    assert code == 0 and "test.f1_margin" in out and "at_floor" in out
    assert "1 run(s) with a result within 0.01 F1 of flagging every window" in err
    assert "hcrlsa" in err.split("flagging every window", 1)[1] and "hcrlch" not in err
