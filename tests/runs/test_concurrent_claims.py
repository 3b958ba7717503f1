"""Array tasks that start together never share a run directory.

This module imports no torch on purpose: the 32 spawned workers import it to find _claim, and
each would otherwise spend a second importing torch and TensorBoard before it could claim."""

import multiprocessing
from pathlib import Path

import pytest

from kdgat.runs.store import claim_run_dir


def _claim(args: tuple[str, object]) -> str:
    root, barrier = args
    barrier.wait()  # type: ignore[attr-defined]
    return str(claim_run_dir(Path(root)))


@pytest.mark.slow
def test_32_concurrent_claims_get_32_distinct_run_dirs(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Manager().Barrier(32)
    with context.Pool(32) as pool:
        claimed = pool.map(_claim, [(str(tmp_path / "exp"), barrier)] * 32)
    assert len(set(claimed)) == 32
    assert sorted(Path(p).name for p in claimed) == [f"run_{i:03d}" for i in range(32)]
