"""`python launch.py transfer`: the transfer matrix's evaluations as one array job on a REAL Slurm.

Two tiny runs (1 epoch, synthetic CAN) are evaluated on heads of real hcrl_sa captures, the
format a researcher's transfer targets come in.
"""

import dataclasses
import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from configs import OscConfig
from kdgat.experiment import run_experiment
from kdgat.scoring.evaluate import evaluate_run
from tests.e2e.captures import head_copy
from tests.e2e.test_launch import launch, launches, ok, scripts
from tests.e2e.test_transfer import SPARK, tiny_config
from tests.helpers import shared_data

SLURM_SMALL = ["--osc-config.cpus-per-task", "1", "--osc-config.mem-gb", "1"]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """Two finished runs (default and agnostic features) trained under account PAS1234."""
    root = tmp_path_factory.mktemp("transfer")
    runs = []
    for features in ("default", "agnostic"):
        cfg = tiny_config(root, features)
        runs.append(run_experiment(dataclasses.replace(cfg, osc_config=OscConfig(account="PAS1234"))))
    return root, runs


@pytest.fixture(scope="module")
def targets(two_runs: tuple[Path, list[Path]]) -> dict[str, Path]:
    root = two_runs[0]
    spark = shared_data("hcrl_sa") / SPARK
    return {
        "spark": head_copy(spark / "DoS-spark.csv.gz", root / "spark" / "DoS-spark.csv.gz", 20_000),
        "fuzzing": head_copy(spark / "fuzzing-Spark.csv.gz", root / "fuzzing-Spark.csv.gz", 20_000),
    }


def transfer_argv(runs: list[Path], targets: dict[str, Path], root: Path) -> list[str]:
    argv = ["transfer", *map(str, runs), "--dataset", "hcrlsa", "--runs-root", str(root / "runs")]
    for name, path in targets.items():
        argv += ["--on", f"{name}={path}"]
    return [*argv, "--calibrate", f"spark={targets['spark']}@5"]


@pytest.mark.real_data
def test_transfer_dry_run_lists_every_evaluation_and_the_array_script(
    two_runs: tuple[Path, list[Path]], targets: dict[str, Path], tmp_path: Path
) -> None:
    _, runs = two_runs
    argv = transfer_argv(runs, targets, tmp_path)
    out = ok(launch([*argv, "--parallelism", "2", "--dry-run"], tmp_path)).stdout
    assert "4 evaluation(s) in 1 job:" in out
    for run in runs:
        for name in targets:
            assert f"{run} on {name} = {targets[name]}" in out
    assert f"calibrated on {targets['spark']}@5" in out
    script = scripts(out)["transfer"]
    assert "#SBATCH --array=0-3%2" in script
    assert "#SBATCH --account=PAS1234" in script  # the runs' own account
    override = ok(launch([*argv, "--osc-config.account", "PAS9999", "--dry-run"], tmp_path)).stdout
    assert "#SBATCH --account=PAS9999" in scripts(override)["transfer"]
    assert "dry run: nothing submitted." in out
    assert not (tmp_path / "runs").exists() and not list(runs[0].glob("eval_*.json"))


@pytest.mark.real_data
def test_transfer_refuses_what_it_cannot_evaluate_before_submitting(
    two_runs: tuple[Path, list[Path]], targets: dict[str, Path], tmp_path: Path
) -> None:
    _, runs = two_runs
    unfinished = tmp_path / "unfinished"
    shutil.copytree(runs[0], unfinished)
    (unfinished / "metrics.json").unlink()
    bad_run = transfer_argv([unfinished], targets, tmp_path)
    missing = ["transfer", str(runs[0]), "--on", f"x={tmp_path / 'nothing.csv'}"]
    unnamed = [
        "transfer",
        str(runs[0]),
        "--on",
        f"x={targets['spark']}",
        "--calibrate",
        f"y={targets['spark']}",
    ]
    cases = [
        (bad_run, [str(unfinished), "not a finished run"]),
        (missing, ["nothing.csv", "does not exist"]),
        (unnamed, ["--calibrate names y"]),
        (["transfer", str(runs[0]), "--on", "x"], ["NAME=VALUE"]),
    ]
    for argv, words in cases:
        result = launch([*argv, "--dry-run"], tmp_path)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert all(word in result.stderr for word in words), (words, result.stderr)
    assert not (tmp_path / "runs").exists()  # nothing was submitted or logged


@pytest.mark.slurm
@pytest.mark.real_data
@pytest.mark.slow
def test_transfer_on_slurm_writes_every_eval_and_the_matrix(
    slurm: None,
    two_runs: tuple[Path, list[Path]],
    targets: dict[str, Path],
    tmp_path: Path,
) -> None:
    _, runs = two_runs
    png = tmp_path / "matrix.png"
    argv = [*transfer_argv(runs, targets, tmp_path), *SLURM_SMALL, "--wait", "--png", str(png)]
    result = ok(launch([*argv, "--format", "csv"], tmp_path, timeout=600))
    (record,) = launches(tmp_path)
    assert record["tasks"] == 4 and record["presets"] == ["transfer evaluations"]
    submitted = tmp_path / "runs" / "slurm" / record["job_id"] / f"{record['job_id']}_submission.sh"
    assert "#SBATCH --array=0-3%4" in submitted.read_text()  # submitit caps it at the task count
    assert "4 of 4 evaluation(s) finished" in result.stdout
    for run in runs:
        spark = json.loads((run / "eval_spark.json").read_text())
        assert (
            spark["calibration"]["file"] == str(targets["spark"]) and spark["calibration"]["seconds"] == 5.0
        )
        assert json.loads((run / "eval_fuzzing.json").read_text())["calibration"] is None
    # A Slurm task's evaluation is the in-process one.
    here = json.loads(evaluate_run(runs[1], targets["fuzzing"], "hcrlsa", "fuzzing_here").read_text())
    there = json.loads((runs[1] / "eval_fuzzing.json").read_text())
    assert there["all"] == here["all"]
    block = result.stdout.split("F1:\n", 1)[1].split("\n\n", 1)[0]
    f1 = pd.read_csv(io.StringIO(block), index_col=0)
    assert f1.shape == (2, 2) and list(f1.columns) == ["spark", "fuzzing"]
    assert f1.iloc[1]["fuzzing"] == pytest.approx(there["all"]["f1"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    status = ok(launch(["status", "--runs-root", str(tmp_path / "runs")], tmp_path)).stdout
    assert "(4 x transfer evaluations)" in status and "COMPLETED x4" in status


@pytest.mark.real_data
def test_transfer_on_the_local_executor_prints_the_matrix(
    two_runs: tuple[Path, list[Path]], targets: dict[str, Path], tmp_path: Path
) -> None:
    _, runs = two_runs
    png = tmp_path / "local.png"
    argv = ["transfer", str(runs[0]), "--on", f"local_fuzz={targets['fuzzing']}", "--dataset", "hcrlsa"]
    argv += [
        "--executor",
        "local",
        "--runs-root",
        str(tmp_path / "runs"),
        "--png",
        str(png),
        "--format",
        "csv",
    ]
    out = ok(launch(argv, tmp_path)).stdout
    written = json.loads((runs[0] / "eval_local_fuzz.json").read_text())
    assert "1 of 1 evaluation(s) finished" in out and f"heatmap: {png}" in out and png.is_file()
    f1 = pd.read_csv(io.StringIO(out.split("F1:\n", 1)[1].split("\n\n", 1)[0]), index_col=0)
    assert f1.shape == (1, 1) and f1.iloc[0]["local_fuzz"] == pytest.approx(written["all"]["f1"])
