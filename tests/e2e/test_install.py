"""`pip install -e .` into a fresh venv makes kdgat and the top-level modules importable from any folder.

The venv reuses this interpreter's installed dependencies (a .pth line) instead of downloading
torch again, and pip installs with --no-deps, so the test takes seconds; .ci/run does the full
install (dependencies resolved from pyproject.toml) on a fresh machine.
"""

import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

NOT_IN_A_CLONE = (".git", ".venv", "__pycache__", "*.egg-info", "build", ".*_cache")
NOT_IN_A_CLONE_AT_THE_TOP = {"runs", ".cache"}  # outputs of a checkout; kdgat/runs/ is code


def not_in_a_clone(folder: str, names: list[str]) -> set[str]:
    ignored = set(shutil.ignore_patterns(*NOT_IN_A_CLONE)(folder, names))
    return ignored | (NOT_IN_A_CLONE_AT_THE_TOP & set(names) if Path(folder) == REPO else set())


@pytest.mark.slow
def test_editable_install_imports_from_another_folder(tmp_path: Path) -> None:
    pytest.importorskip("setuptools", minversion="64", reason="editable installs need setuptools >= 64")
    clone = tmp_path / "clone"
    shutil.copytree(REPO, clone, ignore=not_in_a_clone)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    packages = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(packages, "reuse_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check"]
    install = subprocess.run(
        [*pip, "install", "-q", "--no-deps", "--no-build-isolation", "-e", str(clone)],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = "import kdgat, configs, train, launch, kdgat.training\nprint(kdgat.__file__, configs.__file__)"
    result = subprocess.run([str(python), "-c", code], cwd=elsewhere, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(clone / "kdgat/__init__.py"), str(clone / "configs.py")]
    # The console scripts of [project.scripts] are installed and start from any folder.
    for script in ("kdgat-train", "kdgat-launch", "kdgat-results", "kdgat-transfer"):
        assert (venv / "bin" / script).is_file(), f"pip did not install the {script} console script"
        ran = subprocess.run(
            [str(venv / "bin" / script), "--help"], cwd=elsewhere, capture_output=True, text=True
        )
        assert ran.returncode == 0 and ran.stdout.startswith("usage:"), (script, ran.stderr[-2000:])
