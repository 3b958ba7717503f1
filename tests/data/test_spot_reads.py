"""Scattered reads of a mapped cache entry: pread copies of exactly the rows fancy indexing gives,
ranges that follow each other read at once, and nothing read for arrays that are not mapped."""

import gc
import os
from pathlib import Path

import numpy as np
import pytest

from kdgat.data import spot_reads
from kdgat.data.cache import map_entry, save_entry


@pytest.fixture
def mapped(tmp_path: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    arrays = {
        "x": rng.normal(size=(5000, 7)).astype(np.float32),
        "node_entity": rng.integers(0, 1 << 40, size=5000),
        "edge_index": rng.integers(0, 100, size=(2, 9000)),
    }
    save_entry(tmp_path / "entry.kdg", arrays, {"what": "test"})
    hit = map_entry(tmp_path / "entry.kdg")
    assert hit is not None
    return arrays, hit[0]


def expected(array: np.ndarray, starts: np.ndarray, counts: np.ndarray, axis: int) -> np.ndarray:
    rows = np.concatenate([np.arange(s, s + c) for s, c in zip(starts, counts, strict=True)] or [[]]).astype(
        int
    )
    return array[:, rows] if axis == 1 else array[rows]


@pytest.mark.parametrize(("name", "axis"), [("x", 0), ("node_entity", 0), ("edge_index", 1)])
def test_rows_read_from_the_file_are_the_rows_indexing_gives(mapped, name: str, axis: int) -> None:
    memory, maps = mapped
    n = memory[name].shape[axis]
    rng = np.random.default_rng(1)
    for _ in range(20):
        starts = rng.integers(0, n - 50, size=rng.integers(0, 300))
        counts = rng.integers(0, 50, size=len(starts))  # empty ranges among them
        got = spot_reads.take_rows(maps[name], starts, counts, axis)
        assert got is not None
        want = expected(memory[name], starts, counts, axis)
        assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want)
        assert got.flags.writeable  # a copy, not a view of the read-only map


def test_ranges_that_follow_each_other_are_one_read(mapped, monkeypatch: pytest.MonkeyPatch) -> None:
    memory, maps = mapped
    calls: list[int] = []
    real = os.preadv

    def counted(fd: int, buffers: list, offset: int) -> int:
        calls.append(offset)
        return real(fd, buffers, offset)

    monkeypatch.setattr(os, "preadv", counted)
    starts, counts = np.arange(0, 4000, 40), np.full(100, 40)  # a split read in order
    assert np.array_equal(spot_reads.take_rows(maps["x"], starts, counts), memory["x"][:4000])
    assert len(calls) == 1
    calls.clear()
    starts = np.array([10, 500, 30])
    got = spot_reads.take_rows(maps["x"], starts, np.array([5, 0, 2]))
    assert np.array_equal(got, memory["x"][[10, 11, 12, 13, 14, 30, 31]])
    assert len(calls) == 2  # the empty range reads nothing
    assert spot_reads.take_rows(maps["x"], np.array([7]), np.array([0])).shape == (0, 7)


def test_arrays_not_in_a_map_are_left_to_the_caller(mapped) -> None:
    memory, maps = mapped
    starts, counts = np.array([0]), np.array([3])
    assert spot_reads.take_rows(memory["x"], starts, counts) is None  # in memory
    assert spot_reads.take_rows(maps["x"][:0], np.array([0]), np.array([0])) is None  # no bytes
    assert spot_reads.take_rows(maps["x"][:, 2], starts, counts) is None  # not contiguous
    with pytest.raises(ValueError, match="axis"):
        spot_reads.take_rows(maps["x"][None], starts, counts, axis=1)


def test_a_collected_map_closes_its_descriptor(tmp_path: Path) -> None:
    save_entry(tmp_path / "entry.kdg", {"x": np.arange(10.0)}, {})
    before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    hit = map_entry(tmp_path / "entry.kdg")
    assert hit is not None and len(spot_reads._maps) >= 1
    registered = len(spot_reads._maps)
    del hit
    gc.collect()
    assert len(spot_reads._maps) == registered - 1
    if before is not None:
        assert len(os.listdir("/proc/self/fd")) == before
