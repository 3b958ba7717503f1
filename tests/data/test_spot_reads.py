"""Scattered reads of mapped cache entries: pread copies of exactly the rows fancy indexing gives,
across the parts of a store, ranges that follow each other in one file read at once, and nothing
read for arrays that are not mapped."""

import gc
import os
from pathlib import Path

import numpy as np
import pytest

from kdgat.data import spot_reads
from kdgat.data.cache import map_entry, save_entry
from kdgat.data.spot_reads import FieldReader

FIELDS = ("x", "node_entity", "edge_index")


def write_parts(tmp_path: Path, sizes: list[int]) -> tuple[list[dict], list[dict]]:
    """Entries of random arrays, one per size (rows): the arrays in memory and mapped."""
    rng = np.random.default_rng(0)
    memory, mapped = [], []
    for k, n in enumerate(sizes):
        arrays = {
            "x": rng.normal(size=(n, 7)).astype(np.float32),
            "node_entity": rng.integers(0, 1 << 40, size=n),
            "edge_index": rng.integers(0, 100, size=(2, n)),
        }
        save_entry(tmp_path / f"part{k}.kdg", arrays, {"what": "test"})
        hit = map_entry(tmp_path / f"part{k}.kdg")
        assert hit is not None
        memory.append(arrays)
        mapped.append(hit[0])
    return memory, mapped


def expected(arrays: list[np.ndarray], part_of, starts, counts, axis: int) -> np.ndarray:
    pieces = [
        arrays[u][:, s : s + c] if axis == 1 else arrays[u][s : s + c]
        for u, s, c in zip(part_of, starts, counts, strict=True)
    ]
    empty = arrays[0][:, :0] if axis == 1 else arrays[0][:0]
    return np.concatenate(pieces or [empty], axis=axis)


@pytest.mark.parametrize("name", FIELDS)
def test_rows_read_from_the_files_are_the_rows_indexing_gives(tmp_path: Path, name: str) -> None:
    sizes = [5000, 3000, 4000]
    memory, mapped = write_parts(tmp_path, sizes)
    axis = 1 if name == "edge_index" else 0
    reader = FieldReader.of([m[name] for m in mapped], axis)
    assert reader is not None
    rng = np.random.default_rng(1)
    for _ in range(20):
        part_of = rng.integers(0, 3, size=rng.integers(0, 300))
        starts = rng.integers(0, np.array(sizes)[part_of] - 50)
        counts = rng.integers(0, 50, size=len(part_of))  # empty ranges among them
        got = reader.read(part_of, starts, counts)
        want = expected([m[name] for m in memory], part_of, starts, counts, axis)
        assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want)
        assert got.flags.writeable  # a copy, not a view of the read-only map


def test_ranges_that_follow_each_other_in_one_file_are_one_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory, mapped = write_parts(tmp_path, [5000, 5000])
    reader = FieldReader.of([m["x"] for m in mapped])
    assert reader is not None
    calls: list[int] = []
    real = os.preadv

    def counted(fd: int, buffers: list, offset: int) -> int:
        calls.append(offset)
        return real(fd, buffers, offset)

    monkeypatch.setattr(os, "preadv", counted)
    starts, counts = np.arange(0, 4000, 40), np.full(100, 40)  # a split read in order
    got = reader.read(np.zeros(100, dtype=np.int64), starts, counts)
    assert np.array_equal(got, memory[0]["x"][:4000]) and len(calls) == 1
    calls.clear()
    # The same rows of the other file follow on in the batch but not in a file: two reads.
    got = reader.read(np.array([0, 1]), np.array([0, 10]), np.array([10, 5]))
    assert np.array_equal(got, np.concatenate([memory[0]["x"][:10], memory[1]["x"][10:15]]))
    assert len(calls) == 2
    calls.clear()
    got = reader.read(np.array([0, 0, 0]), np.array([10, 500, 30]), np.array([5, 0, 2]))
    assert np.array_equal(got, memory[0]["x"][[10, 11, 12, 13, 14, 30, 31]])
    assert len(calls) == 2  # the empty range reads nothing
    assert reader.read(np.array([1]), np.array([7]), np.array([0])).shape == (0, 7)


def test_arrays_not_in_a_map_are_left_to_the_caller(tmp_path: Path) -> None:
    memory, mapped = write_parts(tmp_path, [100, 100])
    assert FieldReader.of([memory[0]["x"], memory[1]["x"]]) is None  # in memory
    assert FieldReader.of([mapped[0]["x"], memory[1]["x"]]) is None  # one part in memory
    assert FieldReader.of([mapped[0]["x"][:, 2], mapped[1]["x"][:, 2]]) is None  # not contiguous
    assert FieldReader.of([mapped[0]["x"], mapped[1]["node_entity"]]) is None  # shapes differ
    assert FieldReader.of([mapped[0]["x"]], axis=1) is not None  # a 2-D array along axis 1
    assert FieldReader.of([mapped[0]["node_entity"]], axis=1) is None  # not 2-D
    empty_part = FieldReader.of([mapped[0]["x"], mapped[1]["x"][:0]])  # nothing of it is read
    assert empty_part is not None
    assert np.array_equal(empty_part.read(np.array([0]), np.array([3]), np.array([2])), memory[0]["x"][3:5])


def test_a_collected_map_closes_its_descriptor(tmp_path: Path) -> None:
    save_entry(tmp_path / "entry.kdg", {"x": np.arange(10.0)}, {})
    gc.collect()
    before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    registered = len(spot_reads._maps)
    hit = map_entry(tmp_path / "entry.kdg")
    assert hit is not None and len(spot_reads._maps) == registered + 1
    del hit
    gc.collect()
    assert len(spot_reads._maps) == registered
    if before is not None:
        assert len(os.listdir("/proc/self/fd")) == before


def test_an_entry_with_empty_arrays_is_written_mapped_and_read(tmp_path: Path) -> None:
    """A block without a window (a short capture) has zero-size 2-D arrays; memoryview cannot
    cast those to bytes, which once failed the write."""
    arrays = {"x": np.zeros((0, 7), np.float32), "edge_index": np.zeros((2, 0), np.int64), "y": np.arange(3)}
    save_entry(tmp_path / "empty.kdg", arrays, {})
    hit = map_entry(tmp_path / "empty.kdg")
    assert hit is not None
    for name, array in arrays.items():
        assert hit[0][name].shape == array.shape and np.array_equal(hit[0][name], array)
    _, mapped = write_parts(tmp_path, [100])
    reader = FieldReader.of([hit[0]["x"], mapped[0]["x"]])  # the empty part beside a full one
    assert reader is not None
    assert reader.read(np.array([1, 0]), np.array([4, 0]), np.array([2, 0])).shape == (2, 7)
