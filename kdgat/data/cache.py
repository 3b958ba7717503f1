"""On-disk cache of preprocessed captures: raw file -> parsed, windowed, vocabulary-free graphs.

An entry is keyed by the SHA-256 of the capture file's bytes, the reader format and policies, the
graph parameters, the block layout and FORMAT_VERSION (bump it whenever a reader or the graph
builder changes what it produces). Entries are written atomically (temp file + rename), carry a
magic header, their payload length and a CRC-32, so a truncated or corrupt entry is detected on
load, deleted and rebuilt. Nothing is written for a capture that fails to parse.
"""

import hashlib
import io
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from kdgat.io import atomic_write_bytes

FORMAT_VERSION = 1
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


def save_entry(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    meta_bytes = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    np.savez(buffer, __meta__=meta_bytes, **arrays)
    payload = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload)


def load_entry(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The entry's arrays and metadata, or None when it is missing, partial or corrupt (a bad
    entry is deleted so that it is rebuilt)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        magic, length, crc = _HEADER.unpack_from(data)
        payload = memoryview(data)[_HEADER.size :]
        if magic != MAGIC or len(payload) != length or zlib.crc32(payload) != crc:
            raise ValueError("bad header, length or checksum")
        with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        meta = json.loads(arrays.pop("__meta__").tobytes().decode())
    except (ValueError, OSError, struct.error, KeyError, zlib.error, EOFError):
        path.unlink(missing_ok=True)
        return None
    return arrays, meta
