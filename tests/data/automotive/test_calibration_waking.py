"""A calibration taken while the bus was still waking up is reported: set_04's accessory-4 opens at
ignition and many of its CAN IDs arrive only in the second half of its first 10 s, where a capture
of steady traffic hears every ID in the first half."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from configs import DatasetConfig, ExperimentConfig
from kdgat.data.automotive.modality import AUTOMOTIVE
from kdgat.data.calibration import calibrate, waking_warning
from tests.helpers import shared_data

pytestmark = pytest.mark.real_data

SET_04 = "can_train_and_test/set_04"
ACCESSORY = "train_01_attack_free/accessory-4.csv.gz"  # ignition on, engine off: the bus waking
STANDSTILL = "test_01_known_vehicle_known_attack/standstill-1.csv.gz"  # engine running, steady


def _late_by_pandas(path: Path, seconds: float) -> tuple[int, list[str]]:
    """The IDs of the capture's first `seconds` and those first heard after the middle of the
    records they span (the calibration's records: from the first to the last before t0 + seconds)."""
    frames = pd.read_csv(path, usecols=["timestamp", "arbitration_id"])
    t0 = frames["timestamp"].iloc[0]
    part = frames[frames["timestamp"] < t0 + seconds]
    middle = t0 + (part["timestamp"].iloc[-1] - t0) / 2
    first = part.groupby("arbitration_id")["timestamp"].min()
    late = sorted(int(i, 16) for i in first[first > middle].index)
    return len(first), [f"0x{i:03X}" for i in late]


def _calibration(path: Path, tmp_path: Path, seconds: float) -> dict:
    cfg = ExperimentConfig(dataset="set04", dataset_config=DatasetConfig(cache_dir=tmp_path / "cache"))
    return calibrate(path, "can4", cfg, {0x100: 1}, seconds).describe()


@pytest.mark.parametrize(("capture", "waking"), [(ACCESSORY, True), (STANDSTILL, False)])
def test_ids_first_heard_late_in_the_calibration_are_named_and_warned_of(
    capture: str, waking: bool, tmp_path: Path
) -> None:
    path = shared_data(SET_04) / capture
    described = _calibration(path, tmp_path, 10.0)
    heard, late = _late_by_pandas(path, 10.0)
    assert described["identities_heard"] == heard and described["first_heard_in_second_half"] == late
    warning = waking_warning(described, "the calibration capture")
    if waking:
        assert len(late) == 22 and heard == 48  # docs/findings.md's figures for accessory-4
        assert warning is not None and warning.startswith("22 of the 48 identities heard in the calibration")
        assert ", ".join(late[:8]) + " and 14 more" in warning
    else:
        assert late == [] and warning is None


def test_one_late_id_or_a_small_share_is_not_a_waking_bus() -> None:
    """An event-driven ID heard first late in a long calibration is normal traffic."""
    assert waking_warning({"identities_heard": 50, "first_heard_in_second_half": ["0x7DF"]}, "x") is None
    few = {"identities_heard": 50, "first_heard_in_second_half": ["0x700", "0x7DF", "0x7E8", "0x7E9"]}
    assert waking_warning(few, "x") is None  # 4 of 50: under LATE_SHARE
    assert waking_warning({**few, "identities_heard": 40}, "x") is not None  # 4 of 40: at it


def test_ids_without_timestamps_are_placed_by_record_order() -> None:
    frames = AUTOMOTIVE.read(
        shared_data(SET_04) / ACCESSORY, "can4", DatasetConfig()
    )  # the timestamps dropped below: order alone
    frames.has_time = False
    ids, when = AUTOMOTIVE.first_heard(frames, 1000)  # type: ignore[misc]
    first = {int(i): k for k, i in reversed(list(enumerate(frames.can_id[:1000].tolist())))}
    np.testing.assert_array_equal(ids, sorted(first))
    np.testing.assert_allclose(when, [first[int(i)] / 999 for i in ids])
