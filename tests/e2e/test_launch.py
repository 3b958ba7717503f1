"""launch.py against a REAL Slurm (../shared/slurm/local-slurm-up.sh; .ci/run starts it).

Tiny models, 1-3 epochs and small synthetic logs keep the file to a few minutes on 2 cores.
"""

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.e2e.slurm import (
    preempt,
    sacct_state,
    start_requeued_now,
    wait_for,
    wait_until_completed,
)
from tests.helpers import REPO

ANY_MODALITY = [
    "--model-size", "tiny",
    "--device", "cpu",
    "--training.epochs", "1",
    "--osc-config.cpus-per-task", "1",
    "--osc-config.mem-gb", "1",
]  # fmt: skip
SMALL = [
    *ANY_MODALITY,
    "--dataset-config.automotive.synthetic-train-frames", "20000",
    "--dataset-config.automotive.synthetic-test-frames", "6000",
]  # fmt: skip
RUN_GLOB = "runs/*/*/*/*/*/*/*/run_*"
# Sweeps and pipelines set model_size per run; these keep teacher-size runs as small as tiny ones
# (distillation only needs the teacher level, not a wider model).
TINY_DIMS = [
    "--model-size-config.hidden-dim", "16",
    "--model-size-config.num-layers", "2",
    "--model-size-config.heads", "2",
    "--model-size-config.latent-dim", "8",
    "--model-size-config.embedding-dim", "4",
]  # fmt: skip


def swap(args: list[str], flag: str, value: str) -> list[str]:
    """args with flag's value replaced (a flag given twice is refused)."""
    i = args.index(flag)
    return [*args[: i + 1], value, *args[i + 2 :]]


def without_size(args: list[str]) -> list[str]:
    """Flags without --model-size, for a launch that sets it otherwise (a --model-sizes grid, the
    default pipeline's stages): a field given twice is refused."""
    i = args.index("--model-size")
    return args[:i] + args[i + 2 :]


def launch(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, str(REPO / "launch.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def results(*args: str, cwd: Path) -> pd.DataFrame:
    """`python -m kdgat.results ... --format csv` read back as a table."""
    out = subprocess.run(
        [sys.executable, "-m", "kdgat.results", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stderr
    return pd.read_csv(io.StringIO(out.stdout))


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"rc {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def user_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, f"rc {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def scripts(stdout: str) -> dict[str, str]:
    """The sbatch scripts printed by --dry-run, by job name."""
    found, name, lines = {}, None, []
    for line in stdout.splitlines(keepends=True):
        if line.startswith("# ---- sbatch script for job "):
            name, lines = line.split("job ", 1)[1].split(" ----")[0], []
        elif line.startswith("# ---- end of sbatch script") and name:
            found[name], name = "".join(lines), None
        elif name:
            lines.append(line)
    return found


def launches(cwd: Path) -> list[dict]:
    path = cwd / "runs" / "launches.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def status(run_dir: Path) -> dict:
    return json.loads((run_dir / "status.json").read_text())


# ---------------------------------------------------------------- before any submission


@pytest.mark.slow
def test_dry_run_lists_runs_skips_invalid_and_submits_nothing(tmp_path: Path) -> None:
    grid = ["--sweep", "--model-sizes", "tiny,teacher", "--distillations", "no,standard"]
    args = [*without_size(SMALL), *grid]
    result = ok(launch([*args, "--parallelism", "2", "--dry-run"], tmp_path))
    assert "3 run(s) in 2 job(s)" in result.stdout  # the distilled student waits for the teacher
    assert "model_size=teacher distillation=standard" in result.stderr  # listed as skipped, with why
    assert "distillation trains a smaller student" in result.stderr
    found = scripts(result.stdout)
    assert list(found) == ["kdgat_1", "kdgat_2"]
    assert "#SBATCH --array=0-1%2\n" in found["kdgat_1"] and "submitit.core._submit" in found["kdgat_1"]
    assert "--dependency" not in found["kdgat_1"]
    assert "#SBATCH --dependency=afterok:JOBID_kdgat_1\n" in found["kdgat_2"]
    assert "teacher_run <- job kdgat_1 [1] (claimed at submission)" in result.stdout
    assert "nothing submitted" in result.stdout
    assert not (tmp_path / "runs").exists()
    user_error(launch([*args, "--strict", "--dry-run"], tmp_path), "--strict", "teacher")


@pytest.mark.slow
def test_comma_values_in_a_field_flag_are_a_grid(tmp_path: Path) -> None:
    """The grid spelling of docs/launching.md#grids: `--model-size-config.hidden-dim 32,64` equals
    `--set ...=32,64`."""
    flags = ["--model-size-config.hidden-dim", "32,64", "--training.lr=1e-3,3e-4"]
    result = ok(launch([*SMALL, "--sweep", *flags, "--dry-run"], tmp_path))
    assert "4 run(s) in 1 job(s)" in result.stdout
    for dim, lr in ((32, "0.001"), (32, "0.0003"), (64, "0.001"), (64, "0.0003")):
        assert f"hidden_dim={dim} layers=2 heads=2 lr={lr} " in result.stdout
    same = ok(
        launch(
            [
                *SMALL,
                "--set",
                "model_size_config.hidden_dim=32,64",
                "training_config.lr=1e-3,3e-4",
                "--dry-run",
            ],
            tmp_path,
        )
    )
    assert scripts(same.stdout) == scripts(result.stdout)
    # Free-text fields keep their commas: a setup line is not a grid.
    setup = ok(launch([*SMALL, "--osc-config.setup", "module load a,b", "--dry-run"], tmp_path))
    assert "1 run(s) in 1 job(s)" in setup.stdout and "module load a,b" in setup.stdout


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--osc-config.gpus-per-node", "8"], ["--osc-config.gpus-per-node 8", "at most 2", "gpu-quad"]),
        (["--osc-config.partition", "nosuch"], ["nosuch", "Partitions there"]),
        (["--osc-config.time-min", "20000"], ["time-min 20000", "Lower it"]),
        (["--osc-config.mail-type", "SOMETIMES", "--osc-config.mail-user", "a@b.edu"], ["SOMETIMES"]),
    ],
)
def test_invalid_osc_parameter_fails_before_submission(
    tmp_path: Path, flags: list[str], words: list[str]
) -> None:
    osc = ["--osc-config.cluster", "pitzer", "--osc-config.account", "PAS1234"]
    partition = [] if "--osc-config.partition" in flags else ["--osc-config.partition", "gpu"]
    user_error(launch([*SMALL, *osc, *partition, *flags], tmp_path), *words)
    assert not launches(tmp_path)


@pytest.mark.slow
def test_bad_account_and_bad_grid_field_are_refused(tmp_path: Path) -> None:
    user_error(
        launch([*SMALL, "--osc-config.cluster", "ascend"], tmp_path), "--osc-config.account", "PAS1234"
    )
    user_error(launch([*SMALL, "--set", "model_size_config.width=3,4"], tmp_path), "unknown field 'width'")
    user_error(launch([*SMALL, "--model-sizes", "giant"], tmp_path), "giant", "tiny")


def test_osc_preset_fills_partition(tmp_path: Path) -> None:
    osc = [
        "--osc-config.cluster",
        "cardinal",
        "--osc-config.account",
        "PAS1234",
        "--osc-config.gpus-per-node",
        "1",
    ]
    on_gpu = swap(SMALL, "--device", "auto")  # runs on the CPU ask for no GPU (nor its partition)
    script = scripts(ok(launch([*on_gpu, *osc, "--dry-run"], tmp_path)).stdout)["kdgat"]
    for line in ("--partition=gpu", "--account=PAS1234", "--gpus-per-node=1"):
        assert f"#SBATCH {line}\n" in script


@pytest.mark.slow
def test_default_pipeline_orders_teachers_before_students(tmp_path: Path) -> None:
    found = scripts(ok(launch(["--pipeline", "--dry-run"], tmp_path)).stdout)
    assert list(found) == [
        "vgae_teacher",
        "gat_teacher",
        "vgae_student",
        "dqn_teacher",
        "gat_student",
        "dqn_student",
    ]
    assert "--dependency" not in found["vgae_teacher"]
    after = "#SBATCH --dependency=afterok:JOBID_dqn_teacher:JOBID_vgae_student:JOBID_gat_student\n"
    assert after in found["dqn_student"]
    (tmp_path / "cycle.yaml").write_text("stages:\n  - {name: a, after: [b]}\n  - {name: b, after: [a]}\n")
    user_error(launch(["--pipeline-file", "cycle.yaml", "--dry-run"], tmp_path), "cycle")


README_SWEEP = ["--sweep", "--model-sizes", "teacher,student", "--distillations", "no,standard"]
JOB_LINE = re.compile(r"^  job (\S+)(?: \(after ([^)]*)\))?: (\d+) task\(s\)$")


def planned_jobs(stdout: str) -> dict[str, tuple[tuple[str, ...], int]]:
    """job name -> (jobs it waits for, tasks), as launch.py lists them."""
    found = {}
    for line in stdout.splitlines():
        if match := JOB_LINE.match(line):
            after = tuple(a.strip() for a in (match.group(2) or "").split(",") if a.strip())
            found[match.group(1)] = (after, int(match.group(3)))
    return found


def rel(run_dir: Path, tmp_path: Path) -> str:
    return str(run_dir.relative_to(tmp_path / "runs"))


# ---------------------------------------------------------------- real Slurm


@pytest.mark.slow
@pytest.mark.slurm
def test_sweep_is_one_array_job_equal_to_its_dry_run(slurm: None, tmp_path: Path) -> None:
    grid = [*SMALL, "--set", "model_size_config.hidden_dim=8,16", "training_config.lr=0.003,0.001"]
    dry = scripts(ok(launch([*grid, "--parallelism", "2", "--dry-run"], tmp_path)).stdout)["kdgat"]
    ok(launch([*grid, "--parallelism", "2", "--wait"], tmp_path))
    [record] = launches(tmp_path)  # ONE job for the whole grid
    job_id = record["job_id"]
    assert record["tasks"] == 4
    submitted = (tmp_path / "runs" / "slurm" / job_id / f"{job_id}_submission.sh").read_text()
    assert submitted == dry
    run_dirs = sorted(tmp_path.glob(RUN_GLOB))
    assert len(run_dirs) == 4
    tasks, dims = set(), set()
    for run_dir in run_dirs:
        st = status(run_dir)
        assert st["state"] == "finished" and (run_dir / "metrics.json").is_file()
        assert st["slurm"]["slurm_array_job_id"] == job_id
        tasks.add(st["slurm"]["slurm_array_task_id"])
        assert Path(st["launcher"]["stdout"]).is_file() and Path(st["launcher"]["stderr"]).is_file()
        dims.add(json.loads((run_dir / "metrics.json").read_text())["params"])
    assert tasks == {"0", "1", "2", "3"} and len(dims) == 2
    table, summary = ok(launch(["status"], tmp_path)).stdout.split("\n\n", 1)
    assert table.count("COMPLETED") == 4 and table.count("finished") == 4
    assert summary.strip() == "4 finished"  # nothing failed or unfinished, so nothing listed


@pytest.mark.slow
@pytest.mark.slurm
def test_pipeline_runs_in_order_and_a_failed_stage_stops_its_dependants(slurm: None, tmp_path: Path) -> None:
    (tmp_path / "stages.yaml").write_text(
        "stages:\n"
        "  - {name: first, set: {model_size: tiny}}\n"
        "  - {name: second, after: [first], set: {model_size: student, model_size_config.hidden_dim: 8}}\n"
        "  - {name: broken, after: [first], set: {dataset: hcrlch, dataset_config.data_root: no-such-data}}\n"
        "  - {name: never, after: [broken, second], set: {model_size: intermediate}}\n"
    )
    dry = ok(launch([*SMALL, "--pipeline-file", "stages.yaml", "--dry-run"], tmp_path))
    assert "#SBATCH --dependency=afterok:JOBID_broken:JOBID_second" in dry.stdout
    result = launch([*SMALL, "--pipeline-file", "stages.yaml", "--wait"], tmp_path, timeout=400)
    assert result.returncode == 1, result.stdout + result.stderr  # not every job completed
    ids = {r["unit"]: r["job_id"] for r in launches(tmp_path)}
    states = {name: sacct_state(job_id) for name, job_id in ids.items()}
    assert states == {"first": "COMPLETED", "second": "COMPLETED", "broken": "FAILED", "never": "CANCELLED"}
    runs = tmp_path / "runs" / "automotive"
    first = status(next(runs.glob("synthetic/*/*/tiny/*/*/run_000")))
    second = status(next(runs.glob("synthetic/*/*/student/*/*/run_000")))
    assert second["started_at"] >= first["finished_at"]
    broken = status(next(runs.glob("hcrlch/*/*/*/*/*/run_000")))
    assert broken["state"] == "failed" and "no-such-data" in broken["error"]
    # The dependant's run dir was claimed at submission; it never started, and `status` says why.
    never = status(next(runs.glob("*/*/*/intermediate/*/*/run_000")))
    assert never["state"] == "queued" and "started_at" not in never
    assert never["slurm"]["slurm_array_job_id"] == ids["never"]
    row = next(
        line for line in ok(launch(["status"], tmp_path)).stdout.splitlines() if "intermediate" in line
    )
    assert "queued" in row and "CANCELLED" in row


PIPELINE_STAGES = (
    ("vgae_teacher", "unsupervised/VGAE/teacher/no/normals_only"),
    ("gat_teacher", "classifier/GAT/teacher/no/curriculum_classifier"),
    ("dqn_teacher", "fusion/DQN/teacher/no/all_samples"),
    ("vgae_student", "unsupervised/VGAE/student/standard/normals_only"),
    ("gat_student", "classifier/GAT/student/standard/curriculum_classifier"),
    ("dqn_student", "fusion/DQN/student/standard/all_samples"),
)


def seed_of(run_dir: Path) -> int:
    return yaml.safe_load((run_dir / "config.yaml").read_text())["training_config"]["seed"]


@pytest.mark.slow
@pytest.mark.slurm
def test_two_seed_kd_gat_pipeline_binds_each_student_to_its_own_seeds_runs(
    slurm: None, tmp_path: Path
) -> None:
    """The whole KD-GAT study for seeds 0 and 1 from one command: six dependent arrays of two (two
    seeds are enough for a student to bind to the wrong seed's teacher; a third cost the suite 25 s)."""
    args = [*without_size(SMALL), *TINY_DIMS, "--pipeline", "--set", "training_config.seed=0,1", "--wait"]
    ok(launch(args, tmp_path, timeout=900))
    records = launches(tmp_path)
    assert [r["unit"] for r in records] == [
        "vgae_teacher", "gat_teacher", "vgae_student", "dqn_teacher", "gat_student", "dqn_student"
    ]  # fmt: skip
    assert {r["unit"]: sacct_state(r["job_id"]) for r in records} == {
        name: "COMPLETED" for name, _ in PIPELINE_STAGES
    }
    assert all(r["tasks"] == 2 for r in records)
    runs = tmp_path / "runs" / "automotive" / "synthetic"
    by_seed: dict[int, dict[str, Path]] = {0: {}, 1: {}}
    for name, pattern in PIPELINE_STAGES:
        found = sorted(runs.glob(pattern + "/run_*"))
        assert len(found) == 2 and all(status(d)["state"] == "finished" for d in found)
        for run_dir in found:
            by_seed[seed_of(run_dir)][name] = run_dir

    def upstream(run_dir: Path) -> dict[str, str]:
        return json.loads((run_dir / "metrics.json").read_text())["upstream"]

    def rel(run_dir: Path) -> str:
        return str(run_dir.relative_to(tmp_path / "runs"))

    for seed, stage in by_seed.items():
        assert upstream(stage["vgae_student"]) == {"teacher_run": rel(stage["vgae_teacher"])}, seed
        assert upstream(stage["gat_teacher"]) == {"vgae_run": rel(stage["vgae_teacher"])}
        assert upstream(stage["gat_student"]) == {
            "vgae_run": rel(stage["vgae_student"]),
            "teacher_run": rel(stage["gat_teacher"]),
        }
        assert upstream(stage["dqn_student"]) == {
            "vgae_run": rel(stage["vgae_student"]),
            "gat_run": rel(stage["gat_student"]),
            "teacher_run": rel(stage["dqn_teacher"]),
        }
        # config.yaml holds the same binding, so --config reruns exactly
        config = yaml.safe_load((stage["dqn_student"] / "config.yaml").read_text())
        assert config["teacher_run"] == str(Path("runs") / rel(stage["dqn_teacher"]))
        gat_s = status(stage["gat_student"])
        assert gat_s["started_at"] >= max(
            status(stage["gat_teacher"])["finished_at"], status(stage["vgae_student"])["finished_at"]
        )
    # One row per seed and stage; --group-by gives each stage's mean +- std over the two seeds.
    table = results("runs", "--format", "csv", "--columns", "run,training_config.seed,stale", cwd=tmp_path)
    assert len(table) == 12 and table["stale"].isna().all()
    grouped = results("runs", "--group-by", "stage", "--format", "csv", cwd=tmp_path)
    assert sorted(grouped["launcher.stage"]) == sorted(name for name, _ in PIPELINE_STAGES)
    assert (grouped["n"] == 2).all() and (grouped["seeds"] == 2).all()
    assert grouped["test.f1.std"].notna().all()


@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.real_data
def test_kd_gat_pipeline_on_real_stratosphere_flows_runs_on_slurm(slurm: None, tmp_path: Path) -> None:
    """The default study on real network flows (issue 10): six dependent jobs, flows scored."""
    from tests.helpers import shared_data

    data = shared_data("internet_stratosphere_zeek")
    args = [
        *without_size(ANY_MODALITY), *TINY_DIMS, "--pipeline", "--modality", "internet",
        "--dataset", "stratosphere", "--data-root", str(data), "--training.torch-threads", "1", "--wait",
    ]  # fmt: skip
    ok(launch(args, tmp_path, timeout=900))
    records = launches(tmp_path)
    assert {r["unit"]: sacct_state(r["job_id"]) for r in records} == {
        name: "COMPLETED" for name, _ in PIPELINE_STAGES
    }
    runs = tmp_path / "runs" / "internet" / "stratosphere"
    for name, pattern in PIPELINE_STAGES:
        (run_dir,) = runs.glob(pattern + "/run_*")
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["test"]["flows"]["n_flows"] > 0, name
        expected = "edge_readout" if "gat" in name else "window"
        assert metrics["test"]["flows"]["scored_by"] == expected, name
        assert (run_dir / "predictions.csv").is_file()
    (dqn_student,) = runs.glob("fusion/DQN/student/standard/all_samples/run_*")
    upstream = json.loads((dqn_student / "metrics.json").read_text())["upstream"]
    assert set(upstream) == {"vgae_run", "gat_run", "teacher_run"}


@pytest.mark.slow
@pytest.mark.slurm
def test_readme_sweep_on_slurm_runs_in_stages_exactly_as_its_dry_run_says(
    slurm: None, tmp_path: Path
) -> None:
    args = [*without_size(SMALL), *TINY_DIMS, *README_SWEEP, "--parallelism", "2"]
    dry = ok(launch([*args, "--dry-run"], tmp_path))
    planned = planned_jobs(dry.stdout)
    assert planned == {"kdgat_1": ((), 2), "kdgat_2": (("kdgat_1",), 1)}
    ok(launch([*args, "--wait"], tmp_path, timeout=400))
    records = launches(tmp_path)
    unit_of = {r["job_id"]: r["unit"] for r in records}
    submitted = {
        r["unit"]: (tuple(unit_of[i] for i in (r["dependency"] or "afterok").split(":")[1:]), r["tasks"])
        for r in records
    }
    assert submitted == planned
    printed = scripts(dry.stdout)
    for r in records:  # the scripts sbatch received are the dry run's, with the real job ids
        expected = printed[r["unit"]]
        for job_id, unit in unit_of.items():
            expected = expected.replace(f"JOBID_{unit}", job_id)
        assert (
            tmp_path / "runs" / "slurm" / r["job_id"] / f"{r['job_id']}_submission.sh"
        ).read_text() == expected
        assert sacct_state(r["job_id"]) == "COMPLETED"
    [teacher] = tmp_path.glob("runs/*/*/*/*/teacher/no/*/run_000")
    [student] = tmp_path.glob("runs/*/*/*/*/student/standard/*/run_000")
    assert json.loads((student / "metrics.json").read_text())["upstream"] == {
        "teacher_run": rel(teacher, tmp_path)
    }
    assert status(student)["started_at"] >= status(teacher)["finished_at"]
    assert status(student)["slurm"]["slurm_array_job_id"] == records[1]["job_id"]


@pytest.mark.slow
def test_readme_sweep_on_the_local_executor_distils_from_its_own_teacher_not_a_stale_one(
    tmp_path: Path,
) -> None:
    teacher = swap(SMALL, "--model-size", "teacher")
    ok(launch([*teacher, *TINY_DIMS, "--executor", "debug"], tmp_path))  # older
    [stale] = tmp_path.glob("runs/*/*/*/*/teacher/no/*/run_000")
    # --parallelism 1: the first array's two tasks run in two waves (LocalExecutor ignores array caps)
    sweep = [*without_size(SMALL), *TINY_DIMS, *README_SWEEP, "--executor", "local", "--parallelism", "1"]
    result = ok(launch(sweep, tmp_path))
    assert "2 of 2 job(s) finished" in result.stdout
    teacher = stale.parent / "run_001"  # the sweep's own
    [student] = tmp_path.glob("runs/*/*/*/*/student/standard/*/run_000")
    swept = [teacher, student, *tmp_path.glob("runs/*/*/*/*/student/no/*/run_000")]
    assert len(swept) == 3
    for run_dir in swept:
        assert status(run_dir)["state"] == "finished" and status(run_dir)["launcher"]["executor"] == "local"
    metrics = json.loads((student / "metrics.json").read_text())
    assert metrics["upstream"]["teacher_run"] == rel(teacher, tmp_path)
    digest = "sha256:" + hashlib.sha256((teacher / "config.yaml").read_bytes()).hexdigest()[:16]
    assert metrics["lineage"]["teacher_run"] == {
        "run": rel(teacher, tmp_path),
        "config_digest": digest,
        "finished_at": status(teacher)["finished_at"],
    }
    assert status(student)["lineage"] == metrics["lineage"]
    config = yaml.safe_load((student / "config.yaml").read_text())
    assert config["teacher_run"] == str(Path("runs") / rel(teacher, tmp_path))  # --config reruns exactly
    assert status(student)["started_at"] >= status(teacher)["finished_at"]
    tree = subprocess.run(
        [sys.executable, "-m", "kdgat.results", "runs", "--lineage", rel(student, tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert tree.returncode == 0, tree.stderr
    assert tree.stdout.splitlines()[1] == (
        f"└── teacher_run: {rel(teacher, tmp_path)}  finished  "
        f"test.f1={json.loads((teacher / 'metrics.json').read_text())['test']['f1']:.4f}  {digest}"
    )
    columns = ["--format", "csv", "--columns", "run,stale"]
    assert results("runs", *columns, cwd=tmp_path)["stale"].isna().all()
    shutil.rmtree(teacher)  # results now flag the student: the teacher it used is gone
    stale_column = results("runs", *columns, cwd=tmp_path).set_index("run")["stale"]
    assert stale_column[rel(student, tmp_path)] == f"teacher_run {rel(teacher, tmp_path)} was deleted"


@pytest.mark.slow
@pytest.mark.slurm
def test_requeued_job_resumes_in_its_run_dir_with_the_uninterrupted_result(
    slurm: None, tmp_path: Path
) -> None:
    # Enough epochs that training is still running when the signals arrive (cached graphs make
    # each epoch of this small set take a fraction of a second).
    # The thread count changes the last bits: the Slurm task (cpus-per-task 1) and the reference
    # run in this process must use the same one.
    longer = swap(SMALL, "--training.epochs", "60")
    args = [*longer, "--training.patience", "100", "--training.torch-threads", "1"]
    ok(launch(args, tmp_path))
    [record] = launches(tmp_path)
    job_id = record["job_id"]
    log = Path(record["stdout"][0])
    wait_for(lambda: log.is_file() and "epoch 1/" in log.read_text(), 120, "training to start")
    preempt(job_id)
    start_requeued_now(job_id)
    wait_until_completed(job_id, log, log.with_suffix(".err"))
    [run_dir] = tmp_path.glob(RUN_GLOB)  # resumed in place, no second run dir
    st = status(run_dir)
    assert st["state"] == "finished" and st["requeues"] >= 1 and st["launcher"]["restart_count"] >= 1
    assert "Requeued job" in log.read_text()
    resumed = json.loads((run_dir / "metrics.json").read_text())

    reference = tmp_path / "reference"
    reference.mkdir()
    ok(launch([*args, "--executor", "debug"], reference))
    [ref_dir] = reference.glob(RUN_GLOB)
    uninterrupted = json.loads((ref_dir / "metrics.json").read_text())
    assert resumed["history"] == uninterrupted["history"]
    assert resumed["test"] == uninterrupted["test"]


@pytest.mark.slow
@pytest.mark.slurm
def test_what_this_slurm_refuses_is_a_clear_error(slurm: None, tmp_path: Path) -> None:
    user_error(launch([*SMALL, "--osc-config.partition", "nosuch"], tmp_path), "nosuch", "sinfo")
    refused = launch([*SMALL, "--osc-config.constraint", "nosuchfeature"], tmp_path)
    user_error(refused, "sbatch refused the job")
    assert not launches(tmp_path)
    assert not list(tmp_path.glob(RUN_GLOB))  # the run dir claimed for the refused job is released
