"""A run's share of its GPU's memory, as a packed task tells it."""

import pytest

from kdgat.common.gpus import GPU_SHARE_ENV, gpu_memory_share


@pytest.mark.parametrize(
    ("value", "share"),
    [(None, 1.0), ("0.25", 0.25), ("1", 1.0), ("0", 1.0), ("1.5", 1.0), ("-0.5", 1.0), ("half", 1.0)],
)
def test_the_share_is_a_fraction_and_anything_else_is_all_of_it(
    monkeypatch: pytest.MonkeyPatch, value: str | None, share: float
) -> None:
    if value is None:
        monkeypatch.delenv(GPU_SHARE_ENV, raising=False)
    else:
        monkeypatch.setenv(GPU_SHARE_ENV, value)
    assert gpu_memory_share() == share
