"""Compiled (numba) kernels and where their machine code is cached between processes.

A cold compile of the detector's kernels takes ~30 s, so they are cached on disk. numba's own
cache invalidates an entry only when the kernel's own source file changes, but the fused
detector kernel (kdgat/deploy/native.py) compiles in the window builder's kernel
(kdgat/data/automotive/compiled_window.py), which bakes in the entropy tables of
kdgat/data/text/words.py: after an edit to either, a stale cached kernel would still run the old
code. So the cache lives in one directory per version of all the kernel sources (KERNEL_SOURCES,
hashed): an edit anywhere compiles afresh.

The directory is the first writable of: $NUMBA_CACHE_DIR (numba's own setting), kdgat's
__pycache__, the user cache ($XDG_CACHE_HOME or ~/.cache)/kdgat/numba and the temp dir. Where
none is writable (a read-only install without a home), the kernels compile per process, with one
warning, instead of failing.
"""

import functools
import hashlib
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parent.parent  # kdgat/: KERNEL_SOURCES are relative to it
KERNEL_SOURCES = (
    "data/text/words.py",
    "data/automotive/compiled_window.py",
    "deploy/native_forward.py",
    "deploy/native.py",
)


@functools.cache
def sources_digest() -> str:
    digest = hashlib.sha256()
    for name in KERNEL_SOURCES:
        digest.update(name.encode() + b"\0" + (PACKAGE / name).read_bytes())
    return digest.hexdigest()[:16]


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return False
    return True


@functools.cache
def cache_dir() -> Path | None:
    """This version's kernel cache directory; None where no candidate is writable."""
    home = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache" if "HOME" in os.environ else None)
    bases = [
        os.environ.get("NUMBA_CACHE_DIR"),
        PACKAGE / "__pycache__" / "numba",
        Path(home) / "kdgat" / "numba" if home else None,
        Path(tempfile.gettempdir()) / f"kdgat-numba-{os.getuid() if hasattr(os, 'getuid') else 0}",
    ]
    for base in bases:
        if base and _writable(Path(base) / sources_digest()):
            return Path(base) / sources_digest()
    warnings.warn(
        "no writable directory for the compiled kernels' cache (tried $NUMBA_CACHE_DIR, kdgat's "
        "__pycache__, ~/.cache/kdgat/numba, the temp dir): they compile in every process (~30 s); "
        "set NUMBA_CACHE_DIR to a writable folder.",
        stacklevel=2,
    )
    return None


def kernel(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """numba.njit(**options), cached in cache_dir() (see the module docstring). The decorated
    function becomes a numba dispatcher (Any to a type checker: numba's types stop at njit)."""
    import numba
    from numba import njit

    config: Any = numba.config  # its options (CACHE_DIR, ...) are set at run time, unseen by mypy

    def decorate(func: Callable[..., Any]) -> Any:
        where = cache_dir()
        if where is None:
            return njit(**options)(func)
        # numba picks a function's cache locator when it is decorated, from config.CACHE_DIR
        # first; set it for this decoration only, so numba's other users keep theirs.
        saved = config.CACHE_DIR
        config.CACHE_DIR = str(where)
        try:
            return njit(cache=True, **options)(func)
        finally:
            config.CACHE_DIR = saved

    return decorate
