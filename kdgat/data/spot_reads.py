"""Scattered reads of a memory-mapped cache entry, copied with pread() instead of touched through the map.

A batch of shuffled graphs reads a few hundred short row ranges spread over the whole corpus. Read
through the map, each range maps whatever page-cache folio holds it, and recent kernels (6.18
here) map the whole folio on a fault, hundreds of KiB once a file has been written or read ahead
in large folios: one batch of 512 graphs of a 22.6 M-frame corpus at stride 10 added up to ~2 GB
to the process's resident set, far past MappedPages' budget between two checks, and the run's
peak RSS was 3.8-4.1 GB for 0.8 GB of its own data. pread() copies only the bytes asked for out
of the same page cache; nothing is mapped, so the resident set holds just the batch. Ranges that
follow each other in the file (a split read in order) are merged into one read. Gathering is faster
too (one loop of reads per field over all the batch's captures, ~3 us a read): 19 ms for a batch
of 512 graphs at stride 10 against 37 ms through the maps, 4.5 ms against 7.8 ms for 64 at stride
100, on 120 captures of 22.6 M frames.

cache.map_entry registers each map with the file descriptor to read it by. A store reads each
field of a batch with one FieldReader over all its parts, in one loop of reads: graphs of
different captures in one batch (a shuffled batch of a corpus of many files) cost no more than
graphs of one. Arrays that are not views of a registered map (graphs built in memory) are not
handled here (FieldReader.of returns None and the store indexes them).
"""

import bisect
import dataclasses
import os
import threading
import weakref
from pathlib import Path
from typing import NamedTuple

import numpy as np


class _Mapped(NamedTuple):
    base: int  # address of the map's first byte (file offset 0)
    end: int
    fd: int  # a descriptor of its own, for pread (the mmap object keeps its fd private)
    path: Path


_lock = threading.Lock()
_bases: list[int] = []  # sorted, parallel to _maps
_maps: list[_Mapped] = []


def register(mapping: object, view: memoryview, fd: int, path: Path) -> None:
    """Read arrays that are views of `view` (all of `mapping`) through `fd`, which this module
    now owns: it is closed when the map is collected, and the map is forgotten then."""
    address = int(np.frombuffer(view, dtype=np.uint8, count=min(1, len(view))).ctypes.data)
    entry = _Mapped(address, address + len(view), fd, path)
    with _lock:
        at = bisect.bisect_left(_bases, address)
        _bases.insert(at, address)
        _maps.insert(at, entry)
    weakref.finalize(mapping, _forget, entry)


def _forget(entry: _Mapped) -> None:
    with _lock:
        at = bisect.bisect_left(_bases, entry.base)
        while at < len(_maps) and _maps[at] is not entry:
            at += 1
        if at < len(_maps):
            del _bases[at], _maps[at]
    os.close(entry.fd)


def _mapped(array: np.ndarray) -> tuple[_Mapped, int] | None:
    """The registered map an array's bytes lie in, and their offset in its file."""
    if not array.flags.c_contiguous or array.size == 0:
        return None
    start = int(array.ctypes.data)
    with _lock:
        at = bisect.bisect_right(_bases, start) - 1
        entry = _maps[at] if at >= 0 else None
    if entry is None or start + array.nbytes > entry.end:
        return None
    return entry, start - entry.base


@dataclasses.dataclass(frozen=True, eq=False)
class FieldReader:
    """One field (x, edge_index, ...) of every part of a store, read with pread: part u's array
    starts at byte bases[u] of the file fds[u] reads. Along axis 0, a row is `unit` bytes; along
    axis 1 (a 2-D array such as edge_index), an element is, and row r of part u's array starts
    r * row_bytes[u] bytes after its base."""

    fds: np.ndarray
    bases: np.ndarray
    row_bytes: np.ndarray
    unit: int
    axis: int
    shape: tuple[int, ...]  # the array's shape without the axis read along
    dtype: np.dtype
    paths: dict[int, Path]  # each descriptor's file, for errors

    @classmethod
    def of(cls, arrays: list[np.ndarray], axis: int = 0) -> "FieldReader | None":
        """A reader of the arrays (one per part), or None unless every one is a view of a
        registered map with one dtype and shape apart from the axis (the caller indexes them)."""
        if not arrays or axis not in (0, 1) or (axis == 1 and any(a.ndim != 2 for a in arrays)):
            return None

        def rest(array: np.ndarray) -> tuple[int, ...]:  # the shape without the axis read along
            return array.shape[:1] if axis == 1 else array.shape[1:]

        first = arrays[0]
        shape = rest(first)
        fds, bases = np.full(len(arrays), -1, dtype=np.int64), np.zeros(len(arrays), dtype=np.int64)
        paths: dict[int, Path] = {}
        for u, array in enumerate(arrays):
            if array.dtype != first.dtype or rest(array) != shape:
                return None
            if array.size == 0:
                continue  # nothing of it is ever read
            found = _mapped(array)
            if found is None:
                return None
            fds[u], bases[u] = found[0].fd, found[1]
            paths[found[0].fd] = found[0].path
        row_bytes = np.array([a.strides[0] if axis == 1 and a.size else 0 for a in arrays], dtype=np.int64)
        unit = first.itemsize * (1 if axis == 1 else int(np.prod(shape, dtype=np.int64)))
        return cls(fds, bases, row_bytes, unit, axis, shape, first.dtype, paths)

    def read(self, part_of: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Slices [starts[i], starts[i] + counts[i]) along the axis of part part_of[i]'s array,
        concatenated in that order."""
        total = int(counts.sum())
        if self.axis == 0:
            out = np.empty((total, *self.shape), dtype=self.dtype)
            self._fill(out, part_of, starts, counts, 0)
        else:
            out = np.empty((*self.shape, total), dtype=self.dtype)
            for row in range(self.shape[0]):
                self._fill(out[row], part_of, starts, counts, row)
        return out

    def _fill(
        self, out: np.ndarray, part_of: np.ndarray, starts: np.ndarray, counts: np.ndarray, row: int
    ) -> None:
        if out.size == 0:  # (a zero-length buffer cannot be cast to bytes)
            return
        sizes = counts * self.unit
        keep = sizes > 0
        fds, sizes, part_of = self.fds[part_of][keep], sizes[keep], part_of[keep]
        offsets = self.bases[part_of] + row * self.row_bytes[part_of] + starts[keep] * self.unit
        new = np.ones(len(offsets), dtype=bool)  # a range that goes on where the last one ended
        new[1:] = (fds[1:] != fds[:-1]) | (offsets[1:] != offsets[:-1] + sizes[:-1])
        heads = np.flatnonzero(new)
        view, at = out.data.cast("B"), 0
        for fd, offset, size in zip(
            fds[heads].tolist(), offsets[heads].tolist(), np.add.reduceat(sizes, heads).tolist(), strict=True
        ):
            end = at + size
            got = os.preadv(fd, [view[at:end]], offset)
            while at + got < end:  # a short read: only at the file's end, or interrupted
                more = os.preadv(fd, [view[at + got : end]], offset + got)
                if more <= 0:
                    raise OSError(
                        f"cache entry {self.paths[fd]} ended at byte {offset + got} while a batch was read"
                    )
                got += more
            at = end
