"""Memory known before submission: the estimate reads the data as the run will (exactly from the
cache where it exists), launch.py refuses a job asking for less, train.py --print-config prints it,
and `launch.py status` says what a run killed for memory asked for."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

import configs
from kdgat.config.codec import to_yaml
from kdgat.data.dataset import load_splits
from kdgat.launcher.failures import phase, report
from kdgat.launcher.memory import GIB, data_size, estimate_bytes
from kdgat.launcher.status import run_row
from kdgat.runs.store import update_status
from tests.helpers import REPO, shared_data

SET01_FRAMES = 753_064


def set01(cache: Path) -> configs.ExperimentConfig:
    cfg = configs.ExperimentConfig(dataset="set01", device="cpu")
    d = dataclasses.replace(cfg.dataset_config, data_root=shared_data("can_train_and_test"), cache_dir=cache)
    return dataclasses.replace(cfg, dataset_config=d)


@pytest.mark.real_data
def test_the_estimate_reads_the_cache_exactly_and_file_sizes_roughly(tmp_path: Path) -> None:
    cfg = set01(tmp_path / "cache")
    cold = data_size(cfg)
    assert cold is not None and cold.files == 4 and cold.cached == 0 and len(cold.largest_frames) == 4
    assert abs(cold.frames - SET01_FRAMES) < 0.15 * SET01_FRAMES  # from the gzipped files' sizes
    splits = load_splits(cfg)
    warm = data_size(cfg)
    assert warm is not None and warm.cached == 4 and warm.largest_frames == ()
    assert warm.frames == SET01_FRAMES == int(splits.preprocess["frames"])
    assert warm.graphs == len(splits.train) + len(splits.val) + len(splits.test_all)
    # A cold cache adds the preprocessing workers; more graphs, more memory.
    assert estimate_bytes(cfg, cold, 10_000, workers=2) > estimate_bytes(cfg, warm, 10_000, workers=2)
    bigger = dataclasses.replace(warm, graphs=100 * warm.graphs)
    assert estimate_bytes(cfg, bigger, 10_000) > estimate_bytes(cfg, warm, 10_000)
    missing = set01(tmp_path / "cache")
    missing = dataclasses.replace(
        missing, dataset_config=dataclasses.replace(missing.dataset_config, data_root=tmp_path / "nowhere")
    )
    assert data_size(missing) is None  # data this machine cannot see: no estimate, no check


def launch(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "launch.py"), *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
@pytest.mark.real_data
def test_launch_refuses_a_job_asking_for_less_memory_than_its_runs_need(tmp_path: Path) -> None:
    data = shared_data("can_train_and_test")
    base = [
        "--dataset",
        "set01",
        "--data-root",
        str(data),
        "--dry-run",
        "--runs-root",
        str(tmp_path / "runs"),
    ]
    base += ["--dataset-config.cache-dir", str(tmp_path / "cache")]
    refused = launch([*base, "--osc-config.mem-gb", "1"], tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert "estimated at" in refused.stderr and "Pass --osc-config.mem-gb " in refused.stderr
    assert "Traceback" not in refused.stderr
    needed = int(refused.stderr.split("Pass --osc-config.mem-gb ")[1].split()[0])
    assert needed > 1
    accepted = launch([*base, "--osc-config.mem-gb", str(needed)], tmp_path)
    assert accepted.returncode == 0, accepted.stderr
    assert "memory estimate" in accepted.stdout and f"asks --osc-config.mem-gb {needed}" in accepted.stdout


@pytest.mark.slow
@pytest.mark.real_data
def test_print_config_prints_the_memory_estimate(tmp_path: Path) -> None:
    data = shared_data("can_train_and_test")
    args = ["--print-config", "--dataset", "set01", "--data-root", str(data)]
    args += ["--dataset-config.cache-dir", str(tmp_path / "cache"), "--device", "cpu"]
    out = subprocess.run([sys.executable, str(REPO / "train.py"), *args], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith("# memory estimate: "))
    assert "GiB" in line and "0 of 4 files cached" in line and "--osc-config.mem-gb" in line


def test_status_says_what_a_run_killed_for_memory_asked_for(tmp_path: Path) -> None:
    """Slurm's OUT_OF_MEMORY (sacct) as `launch.py status` reports it. The local test Slurm does not
    enforce memory (no cgroup), so the state is given here as sacct would return it."""
    root = tmp_path / "runs"
    run_dir = root / "a" / "run_000"
    run_dir.mkdir(parents=True)
    cfg = configs.ExperimentConfig(osc_config=dataclasses.replace(configs.OscConfig(), mem_gb=2))
    (run_dir / "config.yaml").write_text(to_yaml(cfg))
    update_status(run_dir, state="running")
    row = run_row(run_dir, root)
    row["slurm_state"] = "OUT_OF_MEMORY"
    row["phase"] = phase(row["state"], row["slurm_state"], row["status"])
    text = report([row], root)
    assert row["phase"] == "failed" and "Slurm OUT_OF_MEMORY" in text
    assert "it asked for 2 GiB" in text and "--print-config --config" in text
    assert GIB == 1 << 30
