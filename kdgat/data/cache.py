"""On-disk cache of preprocessed captures: raw file -> parsed, windowed, vocabulary-free graphs.

An entry is keyed by the SHA-256 of the capture file's bytes, the reader format and policies, the
graph parameters, the block layout and FORMAT_VERSION (bump it whenever a reader or the graph
builder changes what it produces). Entries are written atomically (temp file + rename), carry a
magic header, their payload length and a CRC-32, so a truncated or corrupt entry is detected on
load, deleted and rebuilt. Nothing is written for a capture that fails to parse.

One preparation per entry: the process that builds an entry holds its lock (`entry_lock`), so
processes started together on an empty cache (a Slurm array's first tasks) build each entry once
and the others wait, then read it. The lock is a lock *file* (filelock's SoftFileLease: an
O_EXCL-created marker holding the holder's pid, host and process start time, its mtime renewed
by a heartbeat thread), not flock(): exclusive create and rename behave the same on local disks,
NFS (v3+) and GPFS, whereas flock() is node-local or refused on some cluster mounts (Lustre
without `-o flock`). A holder killed on the same host (kill -9, the OOM killer) is seen dead by
its pid and taken over at once; one on another node, once its marker has gone unrenewed for
LEASE_SECONDS, measured on the waiter's own clock (no clock sync needed). The lock only saves
work: entries are written atomically and keyed by content, so a lease taken over from a process
that was merely stalled costs a duplicate build, never a wrong or partial entry.
"""

import contextlib
import functools
import hashlib
import json
import mmap
import os
import resource
import struct
import weakref
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from filelock import SoftFileLease, Timeout
from isal.isal_zlib import crc32  # zlib's polynomial, ~3x faster

from kdgat.common.errors import DataError
from kdgat.common.io import atomic_open
from kdgat.data import spot_reads

FORMAT_VERSION = 3
MAGIC = b"KDGATGRAPHS\x00"
_HEADER = struct.Struct("<12sQI")  # magic, payload length, crc32


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (as stored: a .gz is hashed compressed)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def entry_key(digest: str, params: dict[str, Any]) -> str:
    text = json.dumps({"file": digest, "version": FORMAT_VERSION, **params}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def entry_path(cache_dir: Path, key: str) -> Path:
    return Path(cache_dir) / "graphs" / key[:2] / f"{key}.kdg"


# Every process that prepares entries must use the same lease (filelock refuses a mismatch).
LEASE_SECONDS = 60.0
LOCK_POLL_SECONDS = 0.5  # a waiter's re-check interval: cheap on a shared file system


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def entry_lock(path: Path) -> SoftFileLease:
    """The lock of the entry at path (not yet acquired): acquire(blocking=False) claims the
    entry or raises filelock.Timeout while another process prepares it; acquire() waits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return SoftFileLease(lock_path(path), lease_duration=LEASE_SECONDS, poll_interval=LOCK_POLL_SECONDS)


def try_lock(path: Path) -> SoftFileLease | None:
    """The entry's lock, held, or None while another process holds it."""
    lock = entry_lock(path)
    try:
        lock.acquire(blocking=False)
    except Timeout:
        return None
    return lock


def lock_holder(path: Path) -> str:
    """Who holds the entry's lock, as "pid P on host H" (read from its marker), for messages."""
    try:
        fields = dict(line.split("=", 1) for line in lock_path(path).read_text().splitlines() if "=" in line)
    except (OSError, UnicodeDecodeError):
        return "another process"
    if "pid" not in fields:
        return "another process"
    return f"pid {fields['pid']} on host {fields.get('host', '?')}"


def remove_partial_writes(path: Path) -> None:
    """Delete temp files a killed builder of this entry left beside it (atomic_open's
    `.<name>.*.tmp`); call only while holding the entry's lock, when nobody else writes it."""
    for leftover in path.parent.glob(f".{path.name}.*.tmp"):
        leftover.unlink(missing_ok=True)


def save_entry(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Write an entry: header (magic, payload length, CRC-32), then a JSON table of contents and
    the arrays' raw bytes. Temp file + rename; no fsync: an entry cut short by a crash fails its
    length/CRC check on the next load and is rebuilt."""
    arrays = {name: np.ascontiguousarray(array) for name, array in arrays.items()}
    table, offset = {}, 0
    for name, array in arrays.items():
        table[name] = [array.dtype.str, list(array.shape), offset]
        offset += array.nbytes
    head = json.dumps({"meta": meta, "arrays": table}, sort_keys=True).encode()
    parts: list[bytes | memoryview] = [struct.pack("<Q", len(head)), head]
    # (a zero-size array's buffer cannot be cast to bytes: an empty block of a short capture)
    parts += (a.data.cast("B") if a.size else memoryview(b"") for a in arrays.values())
    crc = 0
    for part in parts:
        crc = crc32(part, crc)
    length = sum(len(p) for p in parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, fsync=False) as handle:
        handle.write(_HEADER.pack(MAGIC, length, crc))
        for part in parts:
            handle.write(part)


def _read(path: Path) -> np.ndarray:
    """The file's bytes in a fresh, uninitialised buffer: the arrays become writable views of it.
    (A bytearray is zero-filled first, which took as long as the read; a memory map would be
    faster still but holds a file descriptor per entry for as long as its arrays live.)"""
    with open(path, "rb") as handle:
        data = np.empty(os.fstat(handle.fileno()).st_size, dtype=np.uint8)
        handle.readinto(data.data)
    return data


def _parse(payload: memoryview) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays (views of payload) and metadata of an entry's verified payload."""
    (head_len,) = struct.unpack_from("<Q", payload)
    head = json.loads(bytes(payload[8 : 8 + head_len]).decode())
    body = payload[8 + head_len :]
    arrays = {}
    for name, (dtype, shape, offset) in head["arrays"].items():
        count = int(np.prod(shape, dtype=np.int64))
        array = np.frombuffer(body, dtype=np.dtype(dtype), count=count, offset=offset)
        arrays[name] = array.reshape(shape)
    return arrays, head["meta"]


_BAD_ENTRY = (ValueError, OSError, struct.error, KeyError, TypeError, zlib.error, EOFError)


def load_entry(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The entry's arrays and metadata, or None when it is missing, partial or corrupt (a bad
    entry is deleted so that it is rebuilt)."""
    try:
        data = _read(path)
    except OSError:
        return None
    try:
        magic, length, crc = _HEADER.unpack_from(data.data)
        payload = data.data[_HEADER.size :]
        if magic != MAGIC or len(payload) != length or crc32(payload) != crc:
            raise ValueError("bad header, length or checksum")
        return _parse(payload)
    except _BAD_ENTRY:
        path.unlink(missing_ok=True)
        return None


def read_entry_head(path: Path) -> tuple[dict[str, Any], dict[str, list[int]]] | None:
    """An entry's metadata and its arrays' shapes, read from its head alone (no checksum: for
    estimates, e.g. graphs per block before a run is submitted); None when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            magic, _, _ = _HEADER.unpack(handle.read(_HEADER.size))
            (head_len,) = struct.unpack("<Q", handle.read(8))
            if magic != MAGIC or head_len > 1 << 30:
                return None
            head = json.loads(handle.read(head_len).decode())
        return head["meta"], {name: shape for name, (_, shape, _) in head["arrays"].items()}
    except (*_BAD_ENTRY, UnicodeDecodeError):
        return None


_CHUNK = 1 << 22


def _streamed_crc(handle: Any) -> int:
    """CRC-32 of the rest of the file, read through one small buffer (the checked bytes do not
    stay in this process's memory, only in the page cache)."""
    view, crc = memoryview(bytearray(_CHUNK)), 0
    while read := handle.readinto(view):
        crc = crc32(view[:read], crc)
    return crc


def map_entry(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """load_entry without reading the entry into memory: the entry is checked (length, CRC-32)
    by streaming it once, then memory-mapped, and its arrays are read-only views of the map whose
    pages come from the page cache as they are touched (see MappedPages). None, and the entry
    deleted, when it is missing, partial or corrupt."""
    try:
        handle = open(path, "rb")  # closed below; the map outlives it
    except OSError:
        return None
    with handle:
        try:
            magic, length, crc = _HEADER.unpack(handle.read(_HEADER.size))
            if magic != MAGIC or os.fstat(handle.fileno()).st_size - _HEADER.size != length:
                raise ValueError("bad header or length")
            if _streamed_crc(handle) != crc:
                raise ValueError("bad checksum")
        except _BAD_ENTRY:
            path.unlink(missing_ok=True)
            return None
        mapping, reader = _map(handle.fileno(), path)
    view = memoryview(mapping)
    try:
        arrays, meta = _parse(view[_HEADER.size :])
    except _BAD_ENTRY:
        os.close(reader)
        path.unlink(missing_ok=True)
        return None
    MAPPED_PAGES.track(mapping)
    spot_reads.register(mapping, view, reader, path)
    return arrays, meta


def _map(fd: int, path: Path) -> tuple[mmap.mmap, int]:
    """A read-only map of the open entry. Each map holds two file descriptors (Python's mmap keeps
    its own; spot_reads a second for pread), per capture for as long as the run reads it: the soft
    limit on descriptors is raised to the hard one first (a login shell's 1024 is below a corpus
    of many captures)."""
    _raise_descriptor_limit()
    try:
        mapping = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        try:
            return mapping, os.dup(fd)  # scattered batches are read with pread (spot_reads)
        except OSError:
            mapping.close()
            raise
    except OSError as err:  # not the entry's fault: never delete it for this
        raise DataError(
            f"cannot memory-map cache entry {path}: {err.strerror}. A run maps one entry per capture "
            f"file; raise the limit on open files (ulimit -n) or on address space (ulimit -v), or "
            f"merge small captures into fewer files."
        ) from err


@functools.cache
def _raise_descriptor_limit() -> None:
    with contextlib.suppress(ValueError, OSError, AttributeError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def file_resident_bytes() -> int | None:
    """Bytes of file-backed (and shared) pages resident in this process: the third field of
    /proc/self/statm, in pages; None where there is no /proc (the estimate is used instead)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[2]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


class MappedPages:
    """Keeps the cache pages this process has touched through its maps out of its resident set.

    A page read through a memory map counts in the process's RSS (Slurm's accounting and
    ru_maxrss include file-backed pages) until it is unmapped, so reading a mapped corpus would
    show all of it as resident. Batches are not read through the maps at all (spot_reads copies
    them with pread); what is (the per-graph fields a store reads when it is built) reports each
    read (note_read). Once the file-backed pages resident in this process have grown RELEASE_BYTES
    past what they were after the last release, every map is told MADV_DONTNEED: its pages leave
    this process's resident set but stay in the kernel's page cache, so reading them again is a
    minor fault, not disk I/O.

    The growth is measured (/proc/self/statm), not estimated from the bytes read: a spot read
    maps what the kernel decides (fault-around, large page-cache folios), and on this kernel a
    batch of 64 random graphs of a 22.6 M-frame corpus mapped ~4.5 times the 64 KiB per field
    and graph an estimate assumed, so the maps reached 570 MB between releases of a 128 MB budget
    and grew with the corpus. Without /proc, the estimate (bytes read, 64 KiB per spot) is used.
    """

    RELEASE_BYTES = 128 << 20

    def __init__(self) -> None:
        self.maps: weakref.WeakSet[mmap.mmap] = weakref.WeakSet()
        self.read = 0
        self.floor: int | None = None  # file-backed resident bytes after the last release

    def track(self, mapping: mmap.mmap) -> None:
        self.maps.add(mapping)

    def note_read(self, nbytes: int) -> None:
        self.read += nbytes
        resident = file_resident_bytes()
        if resident is None:
            grown = self.read
        else:
            if self.floor is None:
                self.floor = resident
            grown = resident - self.floor
        if grown > self.RELEASE_BYTES:
            self.release()

    def release(self) -> None:
        self.read = 0
        for mapping in list(self.maps):
            with contextlib.suppress(ValueError, OSError):  # closed meanwhile
                mapping.madvise(mmap.MADV_DONTNEED)
        self.floor = file_resident_bytes()


MAPPED_PAGES = MappedPages()
