"""The window -> graph builder: a tiny hand-made log with the arrays worked by hand, a per-window
Python reference against the vectorised output, and block bounds."""

from pathlib import Path

import numpy as np
import pytest

from kdgat.data.watertreatment.batadal import ProcessLog, read_batadal
from kdgat.data.watertreatment.epanet import read_network
from kdgat.data.watertreatment.graphs import EDGE_FEATURES, KEYS, NODE_FEATURES, STATS, build_raw
from kdgat.data.watertreatment.process_graph import ProcessGraph, network_graph, process_nodes
from tests.helpers import shared_data

COLUMNS = ("L_T1", "F_PU1", "S_PU1")


def tiny_log(values: np.ndarray, label: list[int], attack_id: list[int] | None = None) -> ProcessLog:
    n = len(values)
    return ProcessLog(
        source=Path("tiny.csv"),
        time=1_000_000.0 + 3600.0 * np.arange(n),
        columns=COLUMNS,
        values=np.asarray(values, dtype=np.float64),
        label=np.asarray(label, dtype=np.int8),
        attack_id=np.asarray(attack_id if attack_id is not None else [0] * n, dtype=np.int16),
    )


def tiny_graph() -> ProcessGraph:
    nodes, kind, readings = process_nodes(COLUMNS)
    return ProcessGraph(
        nodes=nodes,
        kind=kind,
        readings=readings,
        edge_index=np.array([[0, 1, 0], [1, 0, 1]], dtype=np.int64),
        edge_kind=np.array([0, 0, 2], dtype=np.int8),
        edge_hops=np.array([3.0, 3.0, 0.0]),
    )


def test_feature_names() -> None:
    assert len(NODE_FEATURES) == 2 * len(STATS) + 4 == 18
    assert NODE_FEATURES[0] == "primary_last" and NODE_FEATURES[7] == "status_last"
    assert NODE_FEATURES[-4:] == ("kind_tank", "kind_pump", "kind_valve", "kind_junction")
    assert EDGE_FEATURES == (
        "kind_pipe_path",
        "kind_end_junction",
        "kind_control",
        "kind_correlation",
        "hops",
    )


def test_tiny_log_by_hand() -> None:
    values = [[1.0, 10.0, 1.0], [3.0, 0.0, 0.0], [2.0, 20.0, 1.0], [6.0, 20.0, 1.0]]
    log = tiny_log(values, label=[0, 0, 1, -1], attack_id=[0, 0, 5, 0])
    raw = build_raw(log, tiny_graph(), 0, 4, window=2)
    assert set(raw) == set(KEYS)
    # windows start at rows 0, 1, 2 and decide rows 1, 2, 3; row 3 is unlabelled: no graph
    np.testing.assert_array_equal(raw["frame_start"], [0, 1])
    np.testing.assert_array_equal(raw["frame_stop"], [2, 3])
    np.testing.assert_array_equal(raw["y"], [0, 1])
    np.testing.assert_array_equal(raw["attack_id"], [0, 5])
    np.testing.assert_array_equal(raw["time_start"], [1_000_000.0, 1_003_600.0])
    np.testing.assert_array_equal(raw["time_stop"], [1_003_600.0, 1_007_200.0])
    np.testing.assert_array_equal(raw["node_ptr"], [0, 2, 4])
    np.testing.assert_array_equal(raw["edge_ptr"], [0, 3, 6])
    np.testing.assert_array_equal(raw["node_entity"], [1, 2, 1, 2])
    np.testing.assert_array_equal(raw["node_label"], [0, 0, 1, 1])
    np.testing.assert_array_equal(raw["edge_index"], [[0, 1, 0, 0, 1, 0], [1, 0, 1, 1, 0, 1]])
    np.testing.assert_array_equal(raw["edge_attr"][:3], [[1, 0, 0, 0, 3], [1, 0, 0, 0, 3], [0, 0, 1, 0, 0]])
    tank, tank_status = [3, 2, 1, 1, 3, 2, 1], [0] * 7  # L_T1 over rows 0-1: 1, 3
    pump = [0, 5, 5, 0, 10, -10, -5]  # F_PU1 over rows 0-1: 10, 0
    status = [0, 0.5, 0.5, 0, 1, -1, -0.5]  # S_PU1 over rows 0-1: 1, 0
    expected_0 = [tank + tank_status + [1, 0, 0, 0], pump + status + [0, 1, 0, 0]]
    np.testing.assert_allclose(raw["x"][:2], expected_0)
    tank = [2, 2.5, 0.5, 2, 3, -1, -0.5]  # rows 1-2: 3, 2
    pump = [20, 10, 10, 0, 20, 20, 10]  # rows 1-2: 0, 20
    status = [1, 0.5, 0.5, 0, 1, 1, 0.5]
    np.testing.assert_allclose(
        raw["x"][2:], [tank + tank_status + [1, 0, 0, 0], pump + status + [0, 1, 0, 0]]
    )
    for key, dtype in (("x", np.float32), ("edge_attr", np.float32), ("time_start", np.float64)):
        assert raw[key].dtype == dtype
    for key in (
        "node_entity",
        "node_label",
        "edge_index",
        "node_ptr",
        "edge_ptr",
        "y",
        "attack_id",
        "frame_start",
    ):
        assert raw[key].dtype == np.int64, key


def reference(log: ProcessLog, graph: ProcessGraph, start: int, stop: int, window: int) -> dict[str, list]:
    """Window by window, reading by reading, in plain Python."""
    out: dict[str, list] = {k: [] for k in ("x", "y", "attack_id", "frame_start", "time_stop")}
    for s in range(start, stop - window + 1):
        last = s + window - 1
        if log.label[last] < 0:
            continue
        for i, cols in enumerate(graph.readings):
            row = []
            for slot in range(2):
                if slot < len(cols):
                    w = [float(v) for v in log.values[s : s + window, cols[slot]]]
                    mean = sum(w) / window
                    std = (sum((v - mean) ** 2 for v in w) / window) ** 0.5
                    row += [w[-1], mean, std, min(w), max(w), w[-1] - w[0], w[-1] - mean]
                else:
                    row += [0.0] * 7
            row += [1.0 if graph.kind[i] == k else 0.0 for k in range(4)]
            out["x"].append(row)
        out["y"].append(int(log.label[last]))
        out["attack_id"].append(int(log.attack_id[last]))
        out["frame_start"].append(s)
        out["time_stop"].append(float(log.time[last]))
    return out


@pytest.mark.real_data
@pytest.mark.parametrize(
    ("name", "start", "stop", "window", "graphs"),
    [
        ("BATADAL_dataset04_fully_labelled", 0, 300, 24, 277),
        ("BATADAL_dataset04", 1700, 1800, 12, 42),  # partly labelled: only hours 1731-1772 decided
        ("BATADAL_test_dataset_labelled", 280, 380, 1, 100),
        ("BATADAL_dataset04_fully_labelled", 1720, 1731, 11, 1),
    ],
)
def test_vectorised_equals_reference(name: str, start: int, stop: int, window: int, graphs: int) -> None:
    root = shared_data("watertreatment_batadal")
    log = read_batadal(root / f"{name}.csv.gz")
    graph = network_graph(read_network(root / "c-town.inp.gz"), log.columns, root / "c-town.inp.gz")
    raw = build_raw(log, graph, start, stop, window)
    ref = reference(log, graph, start, stop, window)
    g = len(ref["y"])
    assert len(raw["y"]) == g == graphs
    np.testing.assert_allclose(
        raw["x"], np.array(ref["x"], dtype=np.float32).reshape(-1, 18), rtol=1e-6, atol=1e-5
    )
    for key in ("y", "attack_id", "frame_start", "time_stop"):
        np.testing.assert_array_equal(raw[key], ref[key], err_msg=key)
    assert (raw["frame_start"] >= start).all() and (raw["frame_stop"] <= stop).all()  # inside the block
    assert (raw["frame_stop"] - raw["frame_start"] == window).all()
    assert raw["x"].shape == (g * 31, 18) and raw["edge_index"].shape == (2, g * graph.num_edges)
    assert raw["edge_attr"].shape == (g * graph.num_edges, 5)
    assert (raw["edge_index"] < 31).all()  # local node indices


def test_block_bounds_and_short_blocks() -> None:
    values = np.arange(30, dtype=np.float64).reshape(10, 3)
    log = tiny_log(values, label=[0] * 10)
    graph = tiny_graph()
    raw = build_raw(log, graph, 3, 8, window=3)
    np.testing.assert_array_equal(raw["frame_start"], [3, 4, 5])
    np.testing.assert_array_equal(raw["frame_stop"], [6, 7, 8])
    assert raw["x"][0, 0] == values[5, 0]  # last = row 5, not a row outside the block
    empty = build_raw(log, graph, 3, 5, window=3)  # shorter than a window
    assert len(empty["y"]) == 0 and empty["x"].shape == (0, 18) and empty["edge_index"].shape == (2, 0)
    np.testing.assert_array_equal(empty["node_ptr"], [0])
    assert len(build_raw(log, graph, 0, 10, window=10)["y"]) == 1
    with pytest.raises(ValueError, match="not inside"):
        build_raw(log, graph, 5, 11, window=2)
    with pytest.raises(ValueError, match="at least 1"):
        build_raw(log, graph, 0, 10, window=0)


def test_chosen_stats_keep_the_layout_and_zero_the_others() -> None:
    values = [[1.0, 10.0, 1.0], [3.0, 0.0, 0.0], [2.0, 20.0, 1.0]]
    log, graph = tiny_log(values, label=[0, 0, 1]), tiny_graph()
    every = build_raw(log, graph, 0, 3, window=2)
    some = build_raw(log, graph, 0, 3, window=2, stats=("last", "std"))
    assert some["x"].shape == every["x"].shape
    kept = [i for i, name in enumerate(NODE_FEATURES) if name.endswith(("_last", "_std")) or "kind_" in name]
    dropped = sorted(set(range(len(NODE_FEATURES))) - set(kept))
    np.testing.assert_array_equal(some["x"][:, kept], every["x"][:, kept])
    assert not some["x"][:, dropped].any() and every["x"][:, dropped].any()
    with pytest.raises(ValueError, match="unknown window statistics"):
        build_raw(log, graph, 0, 3, window=2, stats=("median",))


@pytest.mark.real_data
def test_standard_readings_are_z_scores_of_the_benign_training_hours() -> None:
    import configs
    from kdgat.data.watertreatment.modality import WATERTREATMENT

    root = shared_data("watertreatment_batadal")
    path = next(root.glob("BATADAL_dataset03.csv*"))

    def settings(readings: str) -> configs.DatasetConfig:
        water = configs.WaterTreatmentConfig(split="competition", readings=readings)
        return configs.DatasetConfig(data_root=root, watertreatment=water)

    raw = WATERTREATMENT.read(path, "batadal", settings("raw")).log.values
    standard = WATERTREATMENT.read(path, "batadal", settings("standard")).log.values
    spread = raw.std(axis=0)
    wide = spread >= 0.1  # the others are divided by reading_std_floor (0.1), not by ~0
    np.testing.assert_allclose(standard.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(standard[:, wide].std(axis=0), 1.0, rtol=1e-9)
    np.testing.assert_allclose(standard[:, ~wide], (raw[:, ~wide] - raw[:, ~wide].mean(axis=0)) / 0.1)
    assert wide.sum() >= 30 and raw[:, 0].std() < 5 < raw[:, wide].std(axis=0).max()  # tank levels vs flows
