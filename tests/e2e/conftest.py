"""Fixtures of the end-to-end tests."""

import shutil
import subprocess

import pytest


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
