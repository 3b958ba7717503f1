"""Atomic writes (kdgat.common.io.atomic_open, behind run files, checkpoints and cache entries): the target
changes only when the whole write succeeded, and a failed write leaves no temp file behind."""

import os
from pathlib import Path

import numpy as np
import pytest

from kdgat.common.io import atomic_open, atomic_write_text
from kdgat.data.cache import load_entry, save_entry


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
