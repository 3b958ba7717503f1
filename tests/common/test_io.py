"""Atomic writes (kdgat.common.io.atomic_open, behind run files, checkpoints and cache entries): the target
changes only when the whole write succeeded, and a failed write leaves no temp file behind."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kdgat.common.io import atomic_open, atomic_write_text
from kdgat.data.cache import load_entry, save_entry
from tests.helpers import REPO


def test_a_write_that_fails_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "status.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_open(target) as handle:
        handle.write(b"half")
        raise RuntimeError("cut short")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["status.json"]
    with atomic_open(target) as handle:
        handle.write(b"new")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["status.json"]


def test_a_cache_entry_is_all_there_or_absent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = tmp_path / "graphs" / "ab" / "ab12.kdg"
    arrays = {"x": np.arange(6, dtype=np.float32).reshape(3, 2)}

    def fail(*args: object) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", fail)
        with pytest.raises(OSError, match="disk full"):
            save_entry(entry, arrays, {"n": 3})
    assert os.listdir(entry.parent) == []  # neither the entry nor its temp file
    save_entry(entry, arrays, {"n": 3})
    loaded, meta = load_entry(entry)
    assert meta == {"n": 3} and np.array_equal(loaded["x"], arrays["x"])


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_an_atomic_write_gets_the_mode_a_new_file_gets_under_the_umask(
    tmp_path: Path, umask: int, mode: int
) -> None:
    """mkstemp's 0600 would make every run file, cache entry and report page unreadable by the
    project group that shares runs/ on a cluster; a file written in place would get 0666 & ~umask."""
    code = (
        f"import os, sys; os.umask({umask}); sys.path.insert(0, {str(REPO)!r}); "
        "from pathlib import Path; from kdgat.common.io import atomic_write_text; "
        f"atomic_write_text(Path({str(tmp_path / 'f.json')!r}), 'x'); "
        f"open({str(tmp_path / 'plain')!r}, 'w').close()"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert stat.S_IMODE((tmp_path / "f.json").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "plain").stat().st_mode) == mode
