"""Atomic file writes: a temp file in the target's folder, fsync, then rename over the target.

A reader (or a crash) never sees a half-written file.
"""

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO


def _new_file_mode() -> int:
    """The mode open() gives a new file under this process's umask. mkstemp makes its files 0600,
    and a rename keeps that: every run file, cache entry and report page would be private to its
    owner, unreadable by the project group that shares runs/ on a cluster. Read once, at import:
    the umask can only be read by setting it, which must not race with threads creating files."""
    mask = os.umask(0o077)
    os.umask(mask)
    return 0o666 & ~mask


NEW_FILE_MODE = _new_file_mode()


@contextlib.contextmanager
def atomic_open(path: Path, fsync: bool = True) -> Iterator[BinaryIO]:
    """A binary handle on a temp file beside path that replaces path when the block ends; if the
    block raises, the temp file is removed and path is left as it was. fsync=False skips flushing
    to disk before the rename, for files whose readers detect and rebuild a file cut short."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, NEW_FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_open(path) as handle:
        handle.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def atomic_torch_save(path: Path, obj: Any) -> None:
    import torch  # here, not at the top: the launcher writes run files without loading torch

    with atomic_open(path) as handle:
        torch.save(obj, handle)
