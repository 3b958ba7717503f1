"""The streaming graph builders (kdgat/data/automotive/incremental.py, and compiled_window.py's
one compiled call per graph) give build_raw's graphs, bit for bit, on real hcrl_sa captures: at
every stride, when graphs are asked for at irregular intervals (whole-window builds, table
rebuilds and incremental updates mixed), and without timestamps."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from kdgat.data.automotive.compiled_window import CompiledWindow
from kdgat.data.automotive.frames import Frames
from kdgat.data.automotive.graphs import build_raw
from kdgat.data.automotive.incremental import IncrementalWindow
from kdgat.data.automotive.readers import read_frames
from tests.helpers import shared_data

pytestmark = pytest.mark.real_data
WINDOW = 100
BUILDERS = pytest.mark.parametrize("builder_class", [IncrementalWindow, CompiledWindow])


def _frames(name: str, start: int, count: int) -> Frames:
    path = shared_data("hcrl_sa") / name
    return read_frames(path, "can4").slice(start, start + count)


@pytest.fixture(scope="module")
def dos() -> Frames:
    """DoS-sonata around the start of its first attack (frame 39181): benign, then flooding."""
    return _frames(Path("test_01_known_vehicle_known_attack/DoS-sonata.csv.gz"), 38600, 1400)


@pytest.fixture(scope="module")
def fuzzing() -> Frames:
    """fuzzing-sonata around its first attack: many random IDs enter and leave the window."""
    return _frames(Path("train_02_with_attacks/fuzzing-sonata.csv.gz"), 40200, 1000)


def _assert_window_equal(got: dict, frames: Frames, start: int) -> None:
    want = build_raw(frames, start, start + WINDOW, WINDOW, WINDOW)
    for key in ("x", "node_entity", "edge_index", "edge_attr"):
        np.testing.assert_array_equal(got[key], want[key], err_msg=f"{key} of window {start}")
    assert got["y"] == int(want["y"][0])
    assert (got["frame_start"], got["frame_stop"]) == (start, start + WINDOW)


def _push(builder: IncrementalWindow, frames: Frames, k: int) -> None:
    builder.push(
        int(frames.can_id[k]),
        float(frames.time[k]),
        frames.payload[k, : frames.dlc[k]].tobytes(),
        int(frames.dlc[k]),
        int(frames.label[k]),
    )


@BUILDERS
@pytest.mark.parametrize("stride", [1, 7, 100])
@pytest.mark.parametrize("capture", ["dos", "fuzzing"])
def test_incremental_graphs_equal_build_raw(
    capture: str, stride: int, builder_class: type, request: pytest.FixtureRequest
) -> None:
    frames = request.getfixturevalue(capture)
    want = build_raw(frames, 0, len(frames), WINDOW, stride)
    builder = builder_class(WINDOW, frames.has_time)
    graphs = 0
    for k in range(len(frames)):
        _push(builder, frames, k)
        if builder.full and (builder.frames - WINDOW) % stride == 0:
            _assert_window_equal(builder.graph(), frames, builder.frames - WINDOW)
            graphs += 1
    assert graphs == len(want["y"])
    assert want["y"].any() and not want["y"].all(), "the slice must hold benign and attack windows"


@BUILDERS
def test_graphs_asked_for_at_irregular_intervals_equal_build_raw(
    fuzzing: Frames, builder_class: type
) -> None:
    gaps = [150, 1, 3, 99, 100, 2, 250, 1, 1, 40, 60, 5]  # whole windows, rebuilds, updates
    builder = builder_class(WINDOW, True)
    k = 0
    for gap in gaps:
        for _ in range(gap):
            _push(builder, fuzzing, k)
            k += 1
        _assert_window_equal(builder.graph(), fuzzing, k - WINDOW)


@BUILDERS
def test_captures_without_timestamps_give_zero_timing_as_build_raw(dos: Frames, builder_class: type) -> None:
    untimed = dataclasses.replace(dos, time=np.arange(len(dos), dtype=np.float64), has_time=False)
    builder = builder_class(WINDOW, has_time=False)
    for k in range(400):
        _push(builder, untimed, k)
        if builder.full and k % 3 == 0:
            got = builder.graph()
            _assert_window_equal(got, untimed, builder.frames - WINDOW)
            assert not got["x"][:, -1].any()  # has_timing is 0


@BUILDERS
def test_a_graph_before_the_window_is_full_is_refused(builder_class: type) -> None:
    builder = builder_class(WINDOW)
    builder.push(0x100, 0.0, b"\x01", 1)
    with pytest.raises(ValueError, match="not full"):
        builder.graph()


@pytest.mark.parametrize(("stride", "size"), [(1, 37), (7, 250), (100, 333), (100, 1), (150, 77)])
def test_block_windows_equal_build_raw(stride: int, size: int, dos: Frames) -> None:
    """Frames handed over in blocks of odd sizes (splitting windows; one frame at a time; a
    stride past the window) give build_raw's graphs of the whole slice, in order."""
    from kdgat.deploy.blocks import BlockWindows, frames_block

    want = build_raw(dos, 0, len(dos), WINDOW, stride)
    windows = BlockWindows(WINDOW, stride, dos.has_time)
    starts: list[int] = []
    for k in range(0, len(dos), size):
        windows.extend(frames_block(dos, k, min(k + size, len(dos))))
        while windows.complete:
            raw = windows.take(min(windows.complete, 5))  # chunks of up to 5 windows
            for g, start in enumerate(raw["frame_start"].tolist()):
                n0, n1 = raw["node_ptr"][g], raw["node_ptr"][g + 1]
                e0, e1 = raw["edge_ptr"][g], raw["edge_ptr"][g + 1]
                got = {
                    "x": raw["x"][n0:n1],
                    "node_entity": raw["node_entity"][n0:n1],
                    "edge_index": raw["edge_index"][:, e0:e1],
                    "edge_attr": raw["edge_attr"][e0:e1],
                    "y": int(raw["y"][g]),
                    "frame_start": start,
                    "frame_stop": int(raw["frame_stop"][g]),
                }
                _assert_window_equal(got, dos, start)
                assert raw["time_stop"][g] == dos.time[start + WINDOW - 1]
                starts.append(start)
    assert starts == want["frame_start"].tolist()
    assert len(windows.frames) < WINDOW + size  # frames no later window needs are dropped


def test_one_payload_entropy_is_byte_entropys_float(fuzzing: Frames, dos: Frames) -> None:
    """The plain-Python entropy of one payload (the streaming builder's cache misses) and the
    compiled builder's give byte_entropy's float32 bit for bit: real payloads (fuzzing: random
    bytes) at every length."""
    from kdgat.data.automotive.compiled_window import _TABLES, _entropy
    from kdgat.data.text.words import byte_entropy, byte_entropy_one

    payload = np.concatenate([fuzzing.payload, dos.payload])
    for length in range(9):
        dlc = np.full(len(payload), length, dtype=np.int8)
        cut = np.where(np.arange(8) < length, payload, 0).astype(np.uint8)  # zero-padded past dlc
        want = byte_entropy(cut, dlc)
        got = np.array([byte_entropy_one(row.tobytes(), length) for row in cut], dtype=np.float32)
        np.testing.assert_array_equal(got, want, err_msg=f"length {length}")
        compiled = np.array([_entropy(row, length, *_TABLES) for row in cut[:2000]], dtype=np.float32)
        np.testing.assert_array_equal(compiled, want[:2000], err_msg=f"compiled, length {length}")
    assert len(np.unique(want)) > 5  # varied payloads, not one value
