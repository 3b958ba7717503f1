"""The compiled kernels' cache: one directory per version of all the kernel sources (so an edit
to a kernel another one compiles in never leaves a stale cached copy), and kernels that still
work, uncached and with a warning, where no directory is writable."""

import warnings
from pathlib import Path

import numpy as np
import pytest

from kdgat.common import kernels
from kdgat.data.automotive import compiled_window
from kdgat.deploy import native, native_forward


def test_every_detector_kernel_caches_under_this_sources_version() -> None:
    where = kernels.cache_dir()
    assert where is not None and where.name == kernels.sources_digest()
    compiled = [
        compiled_window._window_graph,
        compiled_window._entropy,
        native_forward.forward,
        native._score_ring,
    ]
    for dispatcher in compiled:
        assert Path(dispatcher._cache.cache_path).is_relative_to(where)
    for name in kernels.KERNEL_SOURCES:  # the files whose code the kernels compile in
        assert (kernels.PACKAGE / name).is_file()


def test_the_digest_follows_every_kernel_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in kernels.KERNEL_SOURCES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes((kernels.PACKAGE / name).read_bytes())
    monkeypatch.setattr(kernels, "PACKAGE", tmp_path)
    kernels.sources_digest.cache_clear()
    try:
        digests = {kernels.sources_digest()}
        for name in kernels.KERNEL_SOURCES:  # an edit to any one of them moves the cache
            (tmp_path / name).write_text((tmp_path / name).read_text() + "\n# edited\n")
            kernels.sources_digest.cache_clear()
            digests.add(kernels.sources_digest())
        assert len(digests) == 1 + len(kernels.KERNEL_SOURCES)
    finally:
        kernels.sources_digest.cache_clear()


def test_without_a_writable_cache_kernels_compile_uncached_with_a_warning() -> None:
    kernels.cache_dir.cache_clear()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(kernels, "_writable", lambda folder: False)
            with pytest.warns(UserWarning, match="NUMBA_CACHE_DIR"):
                assert kernels.cache_dir() is None

            @kernels.kernel()
            def total(values):
                return values.sum()

            assert total(np.arange(5)) == 10
            assert total._cache.cache_path is None  # numba's no-op cache
    finally:
        kernels.cache_dir.cache_clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert kernels.cache_dir() is not None  # back to the real one, quietly
