"""A calibration taken while the bus was still waking up is reported: set_04's accessory-4 opens at
ignition, and most of its CAN IDs arrive seconds after its first frame, where a capture of steady
traffic hears nearly every ID within a second or two."""

from pathlib import Path

import pytest

from configs import DatasetConfig, ExperimentConfig
from kdgat.data.automotive.modality import AUTOMOTIVE
from kdgat.data.calibration import LATE_SECONDS, calibrate, waking_warning
from tests.e2e.captures import late_arrivals
from tests.helpers import shared_data

pytestmark = pytest.mark.real_data

SET_04 = "can_train_and_test/set_04"
ACCESSORY = "train_01_attack_free/accessory-4.csv.gz"  # ignition on, engine off: the bus waking
STANDSTILL = "test_01_known_vehicle_known_attack/standstill-1.csv.gz"  # engine running, steady


def _described(path: Path, tmp_path: Path, seconds: float) -> dict:
    cfg = ExperimentConfig(dataset="set04", dataset_config=DatasetConfig(cache_dir=tmp_path / "cache"))
    return calibrate(path, "can4", cfg, {0x100: 1}, seconds).describe()


@pytest.mark.parametrize(
    ("capture", "seconds", "late"),
    [(ACCESSORY, 10.0, 35), (ACCESSORY, 5.0, 13), (ACCESSORY, 2.0, 0), (STANDSTILL, 10.0, 0)],
)
def test_ids_first_heard_late_in_the_calibration_are_named_and_warned_of(
    capture: str, seconds: float, late: int, tmp_path: Path
) -> None:
    path = shared_data(SET_04) / capture
    described = _described(path, tmp_path, seconds)
    heard, named = late_arrivals(path, seconds, LATE_SECONDS)
    assert described["identities_heard"] == heard and described["first_heard_late"] == named
    assert len(named) == late  # the figures LATE_SHARE's docstring quotes
    warning = waking_warning(described)
    if late:
        assert warning is not None and warning.startswith(f"{late} of the {heard} identities heard in ")
        assert f"the calibration capture {path}" in warning and ", ".join(named[:8]) in warning
    else:  # steady traffic; or 2 s, too short to tell (accessory-4 wakes at 5 s)
        assert warning is None


def test_a_few_slow_ids_are_not_a_waking_bus() -> None:
    """A slow or event-driven ID first heard late is normal traffic; many at once are not."""
    one = {"identities_heard": 50, "first_heard_late": ["0x120"], "late_after_seconds": 2.0}
    assert waking_warning(one) is None
    some = {**one, "first_heard_late": [f"0x{0x700 + k:03X}" for k in range(9)]}
    assert waking_warning(some) is None  # 9 of 50: under LATE_SHARE
    many = {**some, "identities_heard": 45}  # 9 of 45: at it
    text = waking_warning(many)
    assert text is not None and text.startswith("9 of the 45 identities heard in the stream's calibration")
    assert "(0x700, 0x701, 0x702, 0x703, 0x704, 0x705, 0x706, 0x707 and 1 more)" in text


def test_without_timestamps_no_arrival_is_judged() -> None:
    frames = AUTOMOTIVE.read(shared_data(SET_04) / ACCESSORY, "can4", DatasetConfig())
    frames.has_time = False  # a ROAD-like capture: record order only, seconds unknown
    assert AUTOMOTIVE.first_heard(frames, len(frames)) is None
