"""Each job's Slurm request matches what its runs use (--dry-run scripts, read in this process)."""

import re
import shutil
from pathlib import Path

import pytest
import yaml

import launch
from kdgat.launcher.build import build_plan
from kdgat.launcher.requests import job_requests
from tests.helpers import FIXTURES, sbatch_scripts

PITZER = ["--osc-config.cluster", "pitzer", "--osc-config.account", "PAS1234"]
GPU_LINE = re.compile(r"^#SBATCH --(gres|gpus)", re.MULTILINE)  # --gres=gpu:N, --gpus-per-node=N, --gpus=N


def dry_run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert launch.main([*argv, "--dry-run"]) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def test_a_gpu_pipeline_asks_no_gpu_for_its_dqn_stages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    out = dry_run(["--pipeline", *PITZER, "--osc-config.gpus-per-node", "1", "--device", "cuda"], capsys)
    found = sbatch_scripts(out)
    assert set(found) == {
        "vgae_teacher",
        "gat_teacher",
        "dqn_teacher",
        "vgae_student",
        "gat_student",
        "dqn_student",
    }
    for name, script in found.items():
        if name.startswith("dqn"):
            assert not GPU_LINE.search(script), script
            assert "#SBATCH --partition=cpu\n" in script  # pitzer's gpu partition bills GPUs
            assert f"job {name}: no GPU requested (its runs train on the CPU); --device cpu" in out
        else:
            assert GPU_LINE.findall(script) == ["gpus"] and "#SBATCH --gpus-per-node=1\n" in script
            assert "#SBATCH --partition=gpu\n" in script


def test_dqn_runs_asked_for_cuda_are_planned_on_the_cpu_their_job_has(tmp_path: Path) -> None:
    args = launch.parse(["--pipeline", "--device", "cuda", "--osc-config.gpus-per-node", "1"])
    args.experiment.runs_root = tmp_path / "runs"
    the_plan = build_plan(args)
    requests, _ = job_requests(the_plan, args.experiment.osc_config, args)
    for unit in the_plan.units:
        cpu = unit.name.startswith("dqn")
        assert requests[unit.name].gpus_per_node == (0 if cpu else 1)
        assert {the_plan.runs[i].cfg.device for i in unit.indices} == {"cpu" if cpu else "cuda"}
        assert {cfg.device for cfg in unit.cfgs} == {"cpu" if cpu else "cuda"}  # what claim writes


def test_runs_on_the_cpu_ask_for_no_gpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    out = dry_run(["--device", "cpu", "--osc-config.gpus-per-node", "1"], capsys)
    assert not GPU_LINE.search(sbatch_scripts(out)["kdgat"])
    assert "job kdgat: no GPU requested (its runs train on the CPU)" in out


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (
            ["--device", "cuda"],
            ["--device cuda", "gpus-per-node is 0", "fail at start", "--osc-config.gpus-per-node 1"],
        ),
        (
            ["--training.amp", "fp16"],
            ["--training.amp fp16, which needs CUDA", "gpus-per-node is 0", "--osc-config.gpus-per-node 1"],
        ),
        (["--osc-config.gpus-per-node", "2"], ["bills 2 GPUs per task", "1 GPU(s) per task would sit idle"]),
        (
            [
                "--osc-config.gpus-per-node",
                "2",
                "--runs-per-task",
                "1",
                *PITZER,
                "--osc-config.partition",
                "gpu",
            ],
            ["--osc-config.gpus-per-node 1", "--runs-per-task K"],
        ),
    ],
)
def test_a_gpu_request_that_cannot_be_used_is_refused_before_submission(
    argv: list[str],
    words: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert launch.main([*argv, "--dry-run"]) == launch.EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for word in words:
        assert word in err
    assert not (tmp_path / "runs").exists()


def test_the_local_executors_keep_the_devices_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """They ask Slurm for nothing: --device cuda with no GPU request is not theirs to refuse."""
    monkeypatch.chdir(tmp_path)
    out = dry_run(["--pipeline", "--device", "cuda", "--executor", "local"], capsys)
    assert "no GPU requested" not in out


def test_transfer_evaluations_ask_for_no_gpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first run trained on a GPU partition; its evaluations score on the CPU."""
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "run_2026-12_gat_tiny", run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["osc_config"] |= {
        "cluster": "pitzer",
        "account": "PAS1234",
        "partition": "gpu",
        "gpus_per_node": 1,
    }
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    argv = ["transfer", str(run), "--on", f"here={tmp_path}", "--osc-config.setup", "echo a"]
    out = dry_run([*argv, "--osc-config.setup", "echo b"], capsys)
    script = sbatch_scripts(out)["transfer"]
    assert not GPU_LINE.search(script) and "#SBATCH --partition=cpu\n" in script
    assert "echo a\necho b\n" in script  # a repeated list flag adds up here too
    assert launch.main([*argv, "--osc-config.gpus-per-node", "1", "--dry-run"]) == launch.EXIT_USER_ERROR
    assert "score on the CPU" in capsys.readouterr().err
