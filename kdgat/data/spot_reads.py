"""Scattered reads of a memory-mapped cache entry, copied with pread() instead of touched through the map.

A batch of shuffled graphs reads a few hundred short row ranges spread over the whole corpus. Read
through the map, each range maps whatever page-cache folio holds it, and recent kernels (6.18
here) map the whole folio on a fault, hundreds of KiB once a file has been written or read ahead
in large folios: one batch of 512 graphs of a 22.6 M-frame corpus at stride 10 added up to ~2 GB
to the process's resident set, far past MappedPages' budget between two checks, and the run's
peak RSS was 3.8-4.1 GB for 0.8 GB of its own data. pread() copies only the bytes asked for out
of the same page cache; nothing is mapped, so the resident set holds just the batch. Ranges that
follow each other in the file (a split read in order) are merged into one read. The price: a
batch of 512 scattered graphs took 47 ms to gather against 32 ms through the map (~3 us a read,
mostly the system call); at batch size 64 and stride 100 the epoch time did not change.

cache.map_entry registers each map with the file descriptor to read it by; an array that is not a
view of a registered map (graphs built in memory) is not handled here (take_rows returns None).
"""

import bisect
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


def _merged(starts: np.ndarray, counts: np.ndarray) -> tuple[list[int], list[int]]:
    """(starts, counts) with empty ranges dropped and each range that begins where the previous
    one ends merged into it."""
    keep = counts > 0
    starts, counts = starts[keep], counts[keep]
    if len(starts) == 0:
        return [], []
    new = np.ones(len(starts), dtype=bool)
    new[1:] = starts[1:] != starts[:-1] + counts[:-1]
    heads = np.flatnonzero(new)
    return starts[heads].tolist(), np.add.reduceat(counts, heads).tolist()


def _pread_ranges(
    entry: _Mapped, offset: int, unit: int, starts: list[int], counts: list[int], out: memoryview
) -> None:
    """Copy `unit`-byte rows [start, start + count) of the file region at offset, one range after
    another, into out."""
    at = 0
    for start, count in zip(starts, counts, strict=True):
        size = count * unit
        target, where = out[at : at + size], offset + start * unit
        while len(target):
            got = os.preadv(entry.fd, [target], where)
            if got <= 0:
                raise OSError(
                    f"cache entry {entry.path} ended at byte {where} while a batch was read from it"
                )
            target, where = target[got:], where + got
        at += size


def take_rows(array: np.ndarray, starts: np.ndarray, counts: np.ndarray, axis: int = 0) -> np.ndarray | None:
    """The slices [s, s + c) of array along axis (0, or 1 for a 2-D array such as edge_index),
    concatenated in the order given, read from the array's cache file; None when the array is not
    a view of a registered map (the caller indexes it in memory)."""
    found = _mapped(array)
    if found is None:
        return None
    entry, offset = found
    starts = np.asarray(starts, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.int64)
    if axis not in (0, 1) or (axis == 1 and array.ndim != 2):
        raise ValueError(
            f"take_rows reads along axis 0, or axis 1 of a 2-D array; got axis {axis} of {array.ndim}-D"
        )
    total = int(counts.sum())
    runs = _merged(starts, counts)
    if axis == 0:
        out = np.empty((total, *array.shape[1:]), dtype=array.dtype)
        if out.size:  # (a zero-length buffer cannot be cast to bytes)
            unit = array.itemsize * int(np.prod(array.shape[1:], dtype=np.int64))
            _pread_ranges(entry, offset, unit, *runs, out.data.cast("B"))
        return out
    out = np.empty((array.shape[0], total), dtype=array.dtype)
    for row in range(array.shape[0] if total else 0):
        row_offset = offset + row * array.strides[0]
        _pread_ranges(entry, row_offset, array.itemsize, *runs, out[row].data.cast("B"))
    return out
