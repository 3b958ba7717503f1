"""Shared test helpers: the repository root, the shared real data, and running train.py.

A plain module, imported as `from tests.helpers import ...` (conftest.py is for pytest fixtures and
hooks only)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))

# Small synthetic data and a tiny model keep end-to-end runs to seconds.
FAST = [
    "--model-size",
    "tiny",
    "--dataset-config.automotive.synthetic-train-frames",
    "30000",
    "--dataset-config.automotive.synthetic-test-frames",
    "9000",
    "--device",
    "cpu",
]


def run_train(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def shared_data(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"real data {path} is absent (it ships in ../shared/data beside the repo)")
    return path


def sbatch_scripts(stdout: str) -> dict[str, str]:
    """The sbatch scripts `launch.py --dry-run` prints, by job name."""
    found, name, lines = {}, None, []
    for line in stdout.splitlines(keepends=True):
        if line.startswith("# ---- sbatch script for job "):
            name, lines = line.split("job ", 1)[1].split(" ----")[0], []
        elif line.startswith("# ---- end of sbatch script") and name:
            found[name], name = "".join(lines), None
        elif name:
            lines.append(line)
    return found
