"""The synthetic plant: determinism, the real reader and graph path on its folder, labels and ids
as generated, and attacks that change what they should (against a run without them)."""

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from kdgat.common.errors import DataError
from kdgat.data.watertreatment.batadal import SENSOR_COLUMNS, read_batadal
from kdgat.data.watertreatment.epanet import read_network
from kdgat.data.watertreatment.plant import (
    ATTACK_KINDS,
    CONTROLS,
    LINK_IDS,
    REPLAY_LAG,
    Attack,
    attacked_columns,
    schedule_attacks,
    simulate,
)
from kdgat.data.watertreatment.process_graph import CONTROL, network_graph
from kdgat.data.watertreatment.synthetic import synthetic_root

HOURS = dict(train_hours=400, val_hours=400, test_hours=300)
FILES = (
    "BATADAL_dataset03",
    "BATADAL_dataset04",
    "BATADAL_dataset04_fully_labelled",
    "BATADAL_test_dataset_labelled",
    "BATADAL_test_dataset_attack_ids",
)
COL = {c: j for j, c in enumerate(SENSOR_COLUMNS)}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_root(tmp_path_factory.mktemp("cache"), seed=3, **HOURS)


def test_deterministic_and_reused(root: Path, tmp_path: Path) -> None:
    again = synthetic_root(tmp_path, seed=3, **HOURS)
    assert again != root and again.name == root.name  # same key in another cache
    for f in root.iterdir():
        assert (again / f.name).read_bytes() == f.read_bytes(), f.name
    other = synthetic_root(tmp_path, seed=4, **HOURS)
    assert other != again
    assert (other / "BATADAL_dataset03.csv.gz").read_bytes() != (
        again / "BATADAL_dataset03.csv.gz"
    ).read_bytes()
    marker = again / "marker"
    marker.write_text("kept")
    assert synthetic_root(tmp_path, seed=3, **HOURS) == again and marker.exists()  # reused, not rewritten
    assert not [p for p in again.parent.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_real_reader_and_graph_read_it(root: Path) -> None:
    schedule = json.loads((root / "attacks.json").read_text())
    logs = {name: read_batadal(root / f"{name}.csv.gz") for name in FILES}
    assert [len(logs[n]) for n in FILES] == [400, 400, 400, 300, 300]
    assert not (logs["BATADAL_dataset03"].label != 0).any()
    for name, split in (
        ("BATADAL_dataset04_fully_labelled", "validation"),
        ("BATADAL_test_dataset_attack_ids", "test"),
    ):
        log = logs[name]
        expected = np.zeros(len(log), dtype=np.int16)
        for a in schedule[split]:
            expected[a["start"] : a["start"] + a["hours"]] = a["attack_id"]
        # validation: runs numbered 1, 2, ... by the reader; test: read from the attack<k> labels
        np.testing.assert_array_equal(log.attack_id, expected)
        np.testing.assert_array_equal(log.label, (expected > 0).astype(np.int8))
    val_ids = [a["attack_id"] for a in schedule["validation"]]
    test_ids = [a["attack_id"] for a in schedule["test"]]
    assert val_ids == list(range(1, len(val_ids) + 1))
    assert test_ids == list(range(len(val_ids) + 1, len(val_ids) + len(test_ids) + 1))  # as BATADAL 8-14
    for split in schedule.values():
        assert {a["kind"] for a in split} == set(ATTACK_KINDS)
    both = read_batadal(
        root / "BATADAL_test_dataset_labelled.csv.gz",
        attack_ids=root / "BATADAL_test_dataset_attack_ids.csv.gz",
    )
    np.testing.assert_array_equal(both.attack_id, logs["BATADAL_test_dataset_attack_ids"].attack_id)
    partial, full = logs["BATADAL_dataset04"], logs["BATADAL_dataset04_fully_labelled"]
    assert (partial.label == -1).any() and (full.label[partial.label == 1] == 1).all()
    assert (partial.label != 0).all()  # 1 or -999, as the original dataset04
    np.testing.assert_array_equal(partial.values, full.values)
    inp = root / "c-town.inp.gz"
    network = read_network(inp)
    assert (len(network.tanks), len(network.pumps), len(network.valves)) == (7, 11, 2)
    assert len(network.pipes) < 50 and len(network.junctions) < 50
    graph = network_graph(network, full.columns, inp)
    assert graph.num_nodes == 31 and len(set(map(tuple, graph.edge_index.T.tolist()))) > 0
    controls = {
        (graph.nodes[a], graph.nodes[b])
        for (a, b), k in zip(graph.edge_index.T, graph.edge_kind, strict=True)
        if k == CONTROL
    }
    assert controls == {(tank, link) for link, (tank, _, _) in CONTROLS.items()}


def test_files_hold_the_simulated_readings(root: Path) -> None:
    train = simulate(400, 3, stream=0)
    log = read_batadal(root / "BATADAL_dataset03.csv.gz")
    np.testing.assert_allclose(log.values, train.readings, atol=5e-7)
    attacks = schedule_attacks(300, 3, first_id=len(schedule_attacks(400, 3, 1, stream=1)) + 1, stream=2)
    test = simulate(300, 3, attacks, stream=2)
    log = read_batadal(root / "BATADAL_test_dataset_labelled.csv.gz")
    np.testing.assert_allclose(log.values, test.readings, atol=0.005 + 1e-9)
    np.testing.assert_array_equal(log.label, test.label)


def test_simulate_is_deterministic_and_seeded() -> None:
    a, b = simulate(200, 7), simulate(200, 7)
    np.testing.assert_array_equal(a.readings, b.readings)
    assert not np.array_equal(a.readings, simulate(200, 8).readings)
    assert not np.array_equal(a.readings, simulate(200, 7, stream=1).readings)


def run_pair(attack: Attack, hours: int = 320, seed: int = 11):
    return simulate(hours, seed), simulate(hours, seed, [attack])


def test_level_spoof_hides_the_true_level() -> None:
    attack = Attack("level_spoof", "T7", start=100, length=30, value=4.9, attack_id=1)  # above 4.8: pumps off
    clean, hit = run_pair(attack)
    span = slice(100, 130)
    np.testing.assert_array_equal(hit.readings[:100], clean.readings[:100])
    assert np.abs(hit.readings[span, COL["L_T7"]] - 4.9).max() < 0.05  # SCADA sees the fake value
    assert (hit.readings[span, COL["S_PU10"]] == 0).all() and (hit.readings[span, COL["S_PU11"]] == 0).all()
    assert clean.readings[span, COL["S_PU10"]].any()  # the control would have run PU10
    true = hit.level[span, 6]
    assert true[-1] < true[0] - 1.0 and (np.diff(true) <= 0).all()  # T7 drains
    assert np.abs(hit.readings[span, COL["L_T7"]] - true).max() > 1.0  # reading hides it
    assert not np.allclose(hit.readings[span, COL["P_J317"]], clean.readings[span, COL["P_J317"]])
    np.testing.assert_array_equal(hit.label, np.isin(np.arange(320), np.arange(100, 130)).astype(np.int8))
    np.testing.assert_array_equal(np.unique(hit.attack_id), [0, 1])


def test_pump_forced_against_its_control() -> None:
    off = Attack("pump_forced", "PU7", start=150, length=24, value=0.0, attack_id=2)
    clean, hit = run_pair(off)
    span = slice(150, 174)
    assert (hit.readings[span, COL["S_PU7"]] == 0).all() and (hit.readings[span, COL["F_PU7"]] == 0).all()
    assert clean.readings[span, COL["S_PU7"]].sum() >= 6  # it would have run
    assert hit.level[173, 3] < clean.level[173, 3]  # T4 lower without it
    on = Attack("pump_forced", "PU5", start=150, length=24, value=1.0, attack_id=2)
    clean, hit = run_pair(on)
    assert (hit.state[span, LINK_IDS.index("PU5")] == 1).all() and (
        clean.readings[span, COL["S_PU5"]] == 0
    ).all()
    assert (hit.readings[span, COL["F_PU5"]] > 20).all()
    np.testing.assert_array_equal(hit.readings[:150], clean.readings[:150])


def test_scada_replay_changes_only_relations() -> None:
    attack = Attack("scada_replay", "T3", start=200, length=20, value=0.0, attack_id=3)
    clean, hit = run_pair(attack)
    cols = [COL[c] for c in attacked_columns(attack)]
    assert attacked_columns(attack) == ("L_T3", "F_PU4", "S_PU4", "F_PU5", "S_PU5")
    others = [j for j in range(len(SENSOR_COLUMNS)) if j not in cols]
    np.testing.assert_array_equal(hit.level, clean.level)  # the plant runs as before
    np.testing.assert_array_equal(hit.readings[:, others], clean.readings[:, others])
    span = np.arange(200, 220)
    np.testing.assert_array_equal(
        hit.readings[np.ix_(span, cols)], clean.readings[np.ix_(span - REPLAY_LAG, cols)]
    )
    outside = np.setdiff1d(np.arange(320), span)
    np.testing.assert_array_equal(hit.readings[np.ix_(outside, cols)], clean.readings[np.ix_(outside, cols)])
    assert not np.array_equal(hit.readings[np.ix_(span, cols)], clean.readings[np.ix_(span, cols)])
    for j in cols:  # each replayed value is an ordinary reading: inside the benign range of its column
        lo, hi = clean.readings[:, j].min(), clean.readings[:, j].max()
        assert ((hit.readings[span, j] >= lo) & (hit.readings[span, j] <= hi)).all()


def test_schedule() -> None:
    for hours in (168, 400, 2000):
        attacks = schedule_attacks(hours, seed=5, first_id=8)
        assert len(attacks) == max(3, hours // 300)
        assert [a.attack_id for a in attacks] == list(range(8, 8 + len(attacks)))
        assert {a.kind for a in attacks} == set(ATTACK_KINDS)
        ends = [(a.start, a.start + a.length) for a in attacks]
        assert all(e1 < s2 for (_, e1), (s2, _) in itertools.pairwise(ends))  # apart, in order
        assert ends[0][0] >= REPLAY_LAG and ends[-1][1] <= hours
        assert all(a.length <= REPLAY_LAG for a in attacks if a.kind == "scada_replay")
        assert all(a.length >= 12 for a in attacks)
    with pytest.raises(DataError, match="at least 168 hours"):
        schedule_attacks(100, seed=5, first_id=1)
    with pytest.raises(DataError, match="train_hours"):
        synthetic_root(Path("unused"), train_hours=10, val_hours=400, test_hours=400, seed=0)
