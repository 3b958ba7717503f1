"""launch.py against a REAL Slurm (../shared/slurm/local-slurm-up.sh; .ci/run starts it).

Tiny models, 1-3 epochs and small synthetic logs keep the file to a few minutes on 2 cores.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SMALL = [
    "--model-size", "tiny",
    "--device", "cpu",
    "--training.epochs", "1",
    "--dataset-config.automotive.synthetic-train-frames", "20000",
    "--dataset-config.automotive.synthetic-test-frames", "6000",
    "--osc-config.cpus-per-task", "1",
    "--osc-config.mem-gb", "1",
]  # fmt: skip
RUN_GLOB = "runs/*/*/*/*/*/*/*/run_*"


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


def sacct_state(job_id: str) -> str:
    out = subprocess.run(
        ["sacct", "-n", "-P", "-X", "-o", "State", "-j", job_id], capture_output=True, text=True
    )
    return out.stdout.split("\n")[0].split(" ")[0].strip()


def squeue_state(job_id: str) -> str:
    return subprocess.run(
        ["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True
    ).stdout.strip()


def wait_for(predicate, timeout: float, what: str, poll: float = 0.3) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


@pytest.fixture(scope="module")
def slurm() -> None:
    if shutil.which("sbatch") is None:
        pytest.skip(
            "sbatch is absent: start a local Slurm with ../shared/slurm/local-slurm-up.sh (.ci/run does)"
        )
    info = subprocess.run(["sinfo", "-h", "-o", "%a"], capture_output=True, text=True, timeout=30)
    assert info.returncode == 0 and "up" in info.stdout, (
        f"sbatch exists but the Slurm controller does not answer ({info.stderr.strip()}); "
        f"run ../shared/slurm/local-slurm-up.sh"
    )


# ---------------------------------------------------------------- before any submission


def test_dry_run_lists_runs_skips_invalid_and_submits_nothing(tmp_path: Path) -> None:
    args = [*SMALL, "--sweep", "--model-sizes", "tiny,teacher", "--distillations", "no,standard"]
    result = ok(launch([*args, "--parallelism", "2", "--dry-run"], tmp_path))
    assert "3 run(s) in 1 job(s)" in result.stdout
    assert "model_size=teacher distillation=standard" in result.stderr  # listed as skipped, with why
    assert "distillation trains a smaller student" in result.stderr
    script = scripts(result.stdout)["kdgat"]
    assert "#SBATCH --array=0-2%2\n" in script and "submitit.core._submit" in script
    assert "nothing submitted" in result.stdout
    assert not (tmp_path / "runs").exists()
    user_error(launch([*args, "--strict", "--dry-run"], tmp_path), "--strict", "teacher")


def test_comma_values_in_a_field_flag_are_a_grid(tmp_path: Path) -> None:
    """DESIGN's spelling `--model-size-config.hidden-dim 32,64` equals `--set ...=32,64`."""
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
    user_error(launch([*SMALL, *osc, "--osc-config.partition", "gpu", *flags], tmp_path), *words)
    assert not launches(tmp_path)


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
        "4",
    ]
    script = scripts(ok(launch([*SMALL, *osc, "--dry-run"], tmp_path)).stdout)["kdgat"]
    for line in ("--partition=gpu", "--account=PAS1234", "--gpus-per-node=4"):
        assert f"#SBATCH {line}\n" in script


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


# ---------------------------------------------------------------- real Slurm


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
    table = ok(launch(["status"], tmp_path)).stdout
    assert table.count("COMPLETED") == 4 and table.count("finished") == 4


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
    first = status(next(runs.glob("synthetic/*/*/tiny/*/*/run_001")))
    second = status(next(runs.glob("synthetic/*/*/student/*/*/run_001")))
    assert second["started_at"] >= first["finished_at"]
    broken = status(next(runs.glob("hcrlch/*/*/*/*/*/run_001")))
    assert broken["state"] == "failed" and "no-such-data" in broken["error"]
    assert not list(runs.glob("*/*/*/intermediate"))  # the dependant never started


def test_default_kd_gat_pipeline_trains_teachers_then_distilled_students(slurm: None, tmp_path: Path) -> None:
    """The whole KD-GAT study from one command: six dependent jobs, students distilled."""
    ok(launch([*SMALL, "--pipeline", "--wait"], tmp_path, timeout=600))
    ids = {r["unit"]: r["job_id"] for r in launches(tmp_path)}
    assert {name: sacct_state(job_id) for name, job_id in ids.items()} == {
        name: "COMPLETED"
        for name in (
            "vgae_teacher",
            "gat_teacher",
            "dqn_teacher",
            "vgae_student",
            "gat_student",
            "dqn_student",
        )
    }
    runs = tmp_path / "runs" / "automotive" / "synthetic"

    def run(pattern: str) -> Path:
        [found] = runs.glob(pattern + "/run_001")
        assert status(found)["state"] == "finished"
        return found

    def upstream(run_dir: Path) -> dict[str, str]:
        return json.loads((run_dir / "metrics.json").read_text())["upstream"]

    def rel(run_dir: Path) -> str:
        return str(run_dir.relative_to(tmp_path / "runs"))

    vgae_t, gat_t, dqn_t = (
        run("unsupervised/VGAE/teacher/no/normals_only"),
        run("classifier/GAT/teacher/no/curriculum_classifier"),
        run("fusion/DQN/teacher/no/all_samples"),
    )
    vgae_s = run("unsupervised/VGAE/student/standard/normals_only")
    gat_s = run("classifier/GAT/student/standard/curriculum_classifier")
    dqn_s = run("fusion/DQN/student/standard/all_samples")
    assert upstream(vgae_s) == {"teacher_run": rel(vgae_t)}
    assert upstream(gat_s) == {"vgae_run": rel(vgae_s), "teacher_run": rel(gat_t)}
    assert upstream(dqn_s) == {"vgae_run": rel(vgae_s), "gat_run": rel(gat_s), "teacher_run": rel(dqn_t)}
    assert status(gat_s)["started_at"] >= max(status(gat_t)["finished_at"], status(vgae_s)["finished_at"])


def test_requeued_job_resumes_in_its_run_dir_with_the_uninterrupted_result(
    slurm: None, tmp_path: Path
) -> None:
    # Enough epochs that training is still running when the signals arrive (cached graphs make
    # each epoch of this small set take a fraction of a second).
    args = [*SMALL, "--training.epochs", "60", "--training.patience", "100"]
    ok(launch(args, tmp_path))
    [record] = launches(tmp_path)
    job_id = record["job_id"]
    log = Path(record["stdout"][0])
    wait_for(lambda: log.is_file() and "epoch 1/" in log.read_text(), 120, "training to start")
    subprocess.check_call(["scancel", job_id, "--signal", "SIGTERM"])  # as submitit's Job._interrupt()
    subprocess.check_call(["scancel", job_id, "--signal", "USR2"])
    requeued = ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED")
    wait_for(lambda: squeue_state(job_id) in requeued, 180, "the requeue")  # generous: a loaded machine
    subprocess.check_call(["scontrol", "update", f"jobid={job_id}", "StartTime=now"])  # skip the 120 s hold
    wait_for(lambda: sacct_state(job_id) == "COMPLETED", 240, f"job {job_id} to complete", poll=1.0)
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


def test_same_sweep_runs_with_the_local_executor(tmp_path: Path) -> None:
    grid = [*SMALL, "--set", "model_size_config.hidden_dim=8,16", "training_config.lr=0.003,0.001"]
    result = ok(launch([*grid, "--executor", "local", "--parallelism", "2"], tmp_path))
    assert "1 of 1 job(s) finished" in result.stdout
    run_dirs = sorted(tmp_path.glob(RUN_GLOB))
    assert len(run_dirs) == 4
    for run_dir in run_dirs:
        st = status(run_dir)
        assert st["state"] == "finished" and st["launcher"]["executor"] == "local"
        assert (run_dir / "metrics.json").is_file()


def test_what_this_slurm_refuses_is_a_clear_error(slurm: None, tmp_path: Path) -> None:
    user_error(launch([*SMALL, "--osc-config.partition", "nosuch"], tmp_path), "nosuch", "sinfo")
    user_error(launch([*SMALL, "--osc-config.gpus-per-node", "64"], tmp_path), "sbatch refused the job")
    assert not launches(tmp_path)
