"""Captures in candump, Vector ASC/BLF and python-can CSV format: a real hcrl_sa capture written
with python-can's own writers reads back through kdgat's readers to the same frames, with the
labels of its sidecar; without one it is marked unlabelled; malformed messages follow the policy."""

from pathlib import Path

import can
import numpy as np
import pytest

from kdgat.common.errors import DataError
from kdgat.data.automotive.canlogs import labels_path
from kdgat.data.automotive.frames import Frames
from kdgat.data.automotive.readers import read_frames
from tests.helpers import shared_data

pytestmark = pytest.mark.real_data
WRITERS = {".asc": can.ASCWriter, ".blf": can.BLFWriter, ".log": can.CanutilsLogWriter, ".csv": can.CSVWriter}


@pytest.fixture(scope="module")
def capture() -> Frames:
    """2,000 frames of DoS-sonata around its first attack (labels 0 and 1)."""
    path = shared_data("hcrl_sa") / "test_01_known_vehicle_known_attack" / "DoS-sonata.csv.gz"
    return read_frames(path, "can4").slice(38500, 40500)


def _messages(frames: Frames) -> list[can.Message]:
    return [
        can.Message(
            timestamp=float(frames.time[k]),
            arbitration_id=int(frames.can_id[k]),
            is_extended_id=False,
            data=frames.payload[k, : frames.dlc[k]].tobytes(),
            channel="can0",
        )
        for k in range(len(frames))
    ]


def _write(path: Path, messages: list[can.Message]) -> None:
    writer = WRITERS[path.suffix](path)
    for msg in messages:
        writer.on_message_received(msg)
    writer.stop()


@pytest.mark.parametrize("suffix", sorted(WRITERS))
def test_python_can_logs_read_back_to_the_same_frames(suffix: str, capture: Frames, tmp_path: Path) -> None:
    path = tmp_path / f"DoS-capture{suffix}"
    _write(path, _messages(capture))
    labels_path(path).write_text("# one label per message\n" + "\n".join(map(str, capture.label.tolist())))
    # .csv goes through the 4-column format a dataset's *.csv pattern names; its header decides.
    got = read_frames(path, "can4" if suffix == ".csv" else "python_can")
    assert got.labelled and got.skipped == 0 and got.attack_type == "dos"
    np.testing.assert_array_equal(got.can_id, capture.can_id)
    np.testing.assert_array_equal(got.payload, capture.payload)
    np.testing.assert_array_equal(got.dlc, capture.dlc)
    np.testing.assert_array_equal(got.label, capture.label)
    assert capture.label.any() and not capture.label.all()
    # ASC stores times relative to the first frame, to the microsecond; the others absolute.
    np.testing.assert_allclose(np.diff(got.time), np.diff(capture.time), atol=1e-6)
    if suffix != ".asc":
        np.testing.assert_allclose(got.time, capture.time, rtol=0, atol=1e-6)


def test_a_log_without_sidecar_is_unlabelled(capture: Frames, tmp_path: Path) -> None:
    path = tmp_path / "drive.log"
    _write(path, _messages(capture.slice(0, 50)))
    got = read_frames(path, "python_can")
    assert not got.labelled and not got.label.any() and len(got) == 50


def test_a_sidecar_of_the_wrong_length_is_refused(capture: Frames, tmp_path: Path) -> None:
    path = tmp_path / "drive.log"
    _write(path, _messages(capture.slice(0, 50)))
    labels_path(path).write_text("0\n" * 49)
    with pytest.raises(DataError, match=r"49 labels but .* 50 messages"):
        read_frames(path, "python_can")


def test_error_remote_and_fd_frames_are_malformed(capture: Frames, tmp_path: Path) -> None:
    messages = _messages(capture.slice(0, 30))
    t = messages[10].timestamp
    messages[10:10] = [
        can.Message(timestamp=t, is_error_frame=True, channel="can0"),
        can.Message(timestamp=t, arbitration_id=0x123, is_remote_frame=True, dlc=2, channel="can0"),
        can.Message(timestamp=t, arbitration_id=0x124, is_fd=True, data=bytes(12), channel="can0"),
    ]
    path = tmp_path / "odd.blf"
    _write(path, messages)
    with pytest.raises(DataError, match=r"message 11 .* error frame"):
        read_frames(path, "python_can")
    got = read_frames(path, "python_can", malformed="skip")
    assert got.skipped == 3 and len(got) == 30
    np.testing.assert_array_equal(got.can_id, capture.can_id[:30])
