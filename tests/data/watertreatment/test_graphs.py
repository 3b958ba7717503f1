"""The process graph: a tiny network with a hand-worked answer, C-Town against an independent
computation from the .inp (components of the unmonitored network, Dijkstra for hop counts), and
the correlation edge source."""

import heapq
import itertools
from pathlib import Path

import numpy as np
import pytest

from kdgat.common.errors import DataError
from kdgat.data.watertreatment.batadal import SENSOR_COLUMNS
from kdgat.data.watertreatment.epanet import Network, read_network
from kdgat.data.watertreatment.process_graph import (
    CONTROL,
    CORRELATION,
    END_JUNCTION,
    PIPE_PATH,
    ProcessGraph,
    correlation_graph,
    merge_graphs,
    network_graph,
    process_nodes,
)
from tests.data.watertreatment.test_epanet import TINY_INP
from tests.helpers import shared_data

TINY_COLUMNS = ("L_T1", "F_PU1", "S_PU1", "F_V2", "S_V2", "P_JA", "P_JD", "P_JF")


def edge_set(graph: ProcessGraph) -> dict[tuple[str, str, int], float]:
    return {
        (graph.nodes[a], graph.nodes[b], k): h
        for (a, b), k, h in zip(
            graph.edge_index.T.tolist(), graph.edge_kind.tolist(), graph.edge_hops.tolist(), strict=True
        )
    }


def both(pairs: dict[tuple[str, str], float], kind: int) -> dict[tuple[str, str, int], float]:
    out = {}
    for (a, b), hops in pairs.items():
        out[(a, b, kind)] = hops
        out[(b, a, kind)] = hops
    return out


def test_tiny_network_hand_worked(tmp_path: Path) -> None:
    path = tmp_path / "tiny.inp"
    path.write_text(TINY_INP)
    graph = network_graph(read_network(path), TINY_COLUMNS, path)
    assert graph.nodes == ("T1", "PU1", "V2", "JA", "JD", "JF")
    assert graph.kind.tolist() == [0, 1, 2, 3, 3, 3]
    assert graph.readings == [(0,), (1, 2), (3, 4), (5,), (6,), (7,)]
    # Worked by hand from TINY_INP: PU1 (JA -> JB) reaches T1 and JD over JB-JC (2 pipes) and V2
    # over the closed pipe P6 to JE (1: an initial status, passable); T1 reaches V2 over the CV
    # pipe P5 to JE (1), JD over JC or over JE and the PRV V1 (2); JD reaches V2 over the PRV (1).
    # JA lies behind PU1 only, JF behind V2 only.
    paths = {("T1", "PU1"): 2, ("T1", "JD"): 2, ("T1", "V2"): 1, ("PU1", "JD"): 2, ("JD", "V2"): 1}
    expected = both({**paths, ("PU1", "V2"): 1}, 0)
    expected |= both({("PU1", "JA"): 0, ("V2", "JF"): 0}, 1)
    expected |= {("T1", "PU1", CONTROL): 0.0, ("T1", "V2", CONTROL): 0.0}  # [CONTROLS] and [RULES]
    assert edge_set(graph) == expected
    kinds = graph.edge_kind.tolist()
    assert kinds == sorted(kinds)  # sorted by kind, then source


def test_missing_or_mistyped_element_names_the_inp(tmp_path: Path) -> None:
    path = tmp_path / "tiny.inp"
    path.write_text(TINY_INP)
    network = read_network(path)
    with pytest.raises(DataError) as err:
        network_graph(network, (*TINY_COLUMNS, "P_J999"), path)
    assert str(path) in str(err.value) and "'J999'" in str(err.value) and "P_J999" in str(err.value)
    with pytest.raises(DataError, match="'T1' is a tank there"):
        network_graph(network, ("P_T1",), path)
    with pytest.raises(DataError, match="defines no pump 'PU7'"):
        network_graph(network, ("F_PU7", "S_PU7"), path)


def test_process_nodes_of_batadal_columns() -> None:
    nodes, kind, readings = process_nodes(SENSOR_COLUMNS)
    assert len(nodes) == 31
    assert nodes[:7] == tuple(f"T{k}" for k in range(1, 8))
    assert nodes[7:18] == tuple(f"PU{k}" for k in range(1, 12)) and nodes[18] == "V2"
    assert nodes[19:] == (
        "J280",
        "J269",
        "J300",
        "J256",
        "J289",
        "J415",
        "J302",
        "J306",
        "J307",
        "J317",
        "J14",
        "J422",
    )
    assert np.bincount(kind).tolist() == [7, 11, 1, 12]
    assert readings[nodes.index("PU2")] == (SENSOR_COLUMNS.index("F_PU2"), SENSOR_COLUMNS.index("S_PU2"))
    assert readings[nodes.index("J14")] == (SENSOR_COLUMNS.index("P_J14"),)
    with pytest.raises(DataError, match="not a pump PU\\* or valve V\\*"):
        process_nodes(("F_X1",))


# ---- C-Town ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def c_town() -> tuple[Network, ProcessGraph]:
    path = shared_data("watertreatment_batadal") / "c-town.inp.gz"
    network = read_network(path)
    return network, network_graph(network, SENSOR_COLUMNS, path)


def independent_paths(network: Network, monitored: set[str]) -> dict[tuple[str, str], int]:
    """Pairs of monitored elements joined through unmonitored ones, with Dijkstra's hop count on a
    graph where every other monitored element is removed (a different method from the 0-1 BFS)."""
    graph: dict[str, list[tuple[str, int]]] = {}

    def join(a: str, b: str, w: int) -> None:
        graph.setdefault(a, []).append((b, w))
        graph.setdefault(b, []).append((a, w))

    for link, a, b in network.links:
        if link in monitored:
            join(a, link, 0)
            join(link, b, 0)
        else:
            join(a, b, 1)
    out = {}
    for source in sorted(monitored):
        dist = {source: 0}
        heap = [(0, source)]
        while heap:
            d, v = heapq.heappop(heap)
            if d > dist[v] or (v != source and v in monitored):
                continue
            for w, weight in graph.get(v, []):
                if d + weight < dist.get(w, 10**9):
                    dist[w] = d + weight
                    heapq.heappush(heap, (d + weight, w))
        for target in monitored - {source}:
            if target in dist:
                out[(source, target)] = dist[target]
    return out


def components_say_linked(network: Network, monitored: set[str]) -> set[frozenset[str]]:
    """Pairs that touch a common component of the unmonitored network, or share a link end."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    touches: dict[str, set[str]] = {m: set() for m in monitored}
    for link, a, b in network.links:
        if link in monitored:
            for end in (a, b):
                if end in monitored:
                    touches[link].add("=" + end)  # direct: the link's own monitored end
                else:
                    touches[link].add(end)
        elif a not in monitored and b not in monitored:
            parent[find(a)] = find(b)
        else:
            for x, y in ((a, b), (b, a)):
                if x in monitored:
                    touches[x].add("=" + y if y in monitored else y)
    linked = set()
    for m, t in touches.items():
        for item in t:
            if item.startswith("="):
                linked.add(frozenset((m, item[1:])))
    roots = {m: {find(x) for x in t if not x.startswith("=")} for m, t in touches.items()}
    for a, b in itertools.combinations(sorted(monitored), 2):
        if roots[a] & roots[b]:
            linked.add(frozenset((a, b)))
    return linked


@pytest.mark.real_data
def test_c_town_edges_match_the_inp(c_town: tuple[Network, ProcessGraph]) -> None:
    network, graph = c_town
    monitored = set(graph.nodes)
    edges = edge_set(graph)
    hydraulic = {(a, b): h for (a, b, k), h in edges.items() if k in (PIPE_PATH, END_JUNCTION)}
    assert hydraulic == independent_paths(network, monitored)
    assert {frozenset(p) for p in hydraulic} == components_say_linked(network, monitored)
    # kind 1: exactly each monitored pump/valve with its own monitored end junctions, hops 0
    own_ends = {(link, end) for link, *ends in network.links if link in monitored for end in ends[:2]}
    own_ends = {p for p in own_ends if p[1] in monitored}
    expected_end = {(a, b) for a, b in own_ends} | {(b, a) for a, b in own_ends}
    assert {(a, b) for (a, b, k) in edges if k == END_JUNCTION} == expected_end
    assert (
        ("PU2", "J280") in expected_end and ("J269", "PU2") in expected_end and ("V2", "J422") in expected_end
    )
    assert all(h == 0 for (a, b, k), h in edges.items() if k == END_JUNCTION)
    assert all(h >= 1 for (a, b, k), h in edges.items() if k == PIPE_PATH)  # no pumps in parallel here


@pytest.mark.real_data
def test_c_town_control_edges(c_town: tuple[Network, ProcessGraph]) -> None:
    _, graph = c_town
    controls = {(a, b) for (a, b, k) in edge_set(graph) if k == CONTROL}
    # c-town.inp [CONTROLS], read by eye: which tank's level switches which link
    assert controls == {
        ("T1", "PU1"),
        ("T1", "PU2"),
        ("T2", "V2"),
        ("T3", "PU4"),
        ("T3", "PU5"),
        ("T4", "PU6"),
        ("T4", "PU7"),
        ("T5", "PU8"),
        ("T7", "PU10"),
        ("T7", "PU11"),
    }
    controlled = {b for _, b in controls}
    assert {p for p in graph.nodes if p.startswith("PU")} - controlled == {"PU3", "PU9"}  # no control lines


@pytest.mark.real_data
def test_c_town_graph_invariants(c_town: tuple[Network, ProcessGraph]) -> None:
    _, graph = c_town
    src, dst = graph.edge_index
    assert graph.edge_index.dtype == np.int64 and graph.edge_kind.dtype == np.int8
    assert graph.num_nodes == 31 and np.bincount(graph.kind).tolist() == [7, 11, 1, 12]
    counts = np.bincount(graph.edge_kind, minlength=4).tolist()
    assert counts == [78, 24, 10, 0] and graph.num_edges == 112
    assert not (src == dst).any()
    triples = set(zip(src.tolist(), dst.tolist(), graph.edge_kind.tolist(), strict=True))
    assert len(triples) == graph.num_edges  # no duplicates
    symmetric = graph.edge_kind < CONTROL
    assert {(b, a, k) for a, b, k in triples if k < CONTROL} == {t for t in triples if t[2] < CONTROL}
    assert symmetric.sum() == 102
    reach = {0}  # connected over all edges, ignoring direction
    for _ in range(graph.num_nodes):
        reach |= {int(b) for a, b in zip(src, dst, strict=True) if a in reach}
        reach |= {int(a) for a, b in zip(src, dst, strict=True) if b in reach}
    assert reach == set(range(graph.num_nodes))
    for i, name in enumerate(graph.nodes):  # every element has a hydraulic neighbour
        assert ((src == i) & symmetric).any(), name


# ---- correlations --------------------------------------------------------------------------


def test_correlation_graph_hand_made() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=200)
    columns = ("L_T1", "L_T2", "F_PU1", "S_PU1", "P_J1", "P_J2")
    values = np.stack(
        [
            base,
            -2 * base + 0.01 * rng.normal(size=200),  # T2 anticorrelated with T1
            base + 0.05 * rng.normal(size=200),  # PU1 flow follows T1
            np.ones(200),  # S_PU1: not a primary reading
            rng.normal(size=200),  # J1: independent
            np.full(200, 3.0),  # J2: constant, no correlation defined
        ],
        axis=1,
    )
    graph = correlation_graph(values, columns, threshold=0.9)
    assert graph.nodes == ("T1", "T2", "PU1", "J1", "J2")
    pairs = {(a, b) for (a, b, k) in edge_set(graph)}
    assert pairs == {("T1", "T2"), ("T2", "T1"), ("T1", "PU1"), ("PU1", "T1"), ("T2", "PU1"), ("PU1", "T2")}
    assert (graph.edge_kind == CORRELATION).all() and (graph.edge_hops == 0).all()
    top1 = correlation_graph(values, columns, threshold=0.5, top_k=1)
    # T1's strongest is T2 and T2's is T1; PU1's strongest is T1 (or T2): 4 directed edges
    assert top1.num_edges == 4 and ("T1", "T2", CORRELATION) in edge_set(top1)
    with pytest.raises(DataError, match="at least 3"):
        correlation_graph(values[:2], columns, 0.5)
    with pytest.raises(DataError, match="must be in"):
        correlation_graph(values, columns, 0.0)


@pytest.mark.real_data
def test_correlation_on_benign_batadal_and_merge(c_town: tuple[Network, ProcessGraph]) -> None:
    from kdgat.data.watertreatment.batadal import read_batadal

    log = read_batadal(shared_data("watertreatment_batadal") / "BATADAL_dataset03.csv.gz")
    graph = correlation_graph(log.values[:2000], log.columns, threshold=0.8)
    assert graph.nodes == c_town[1].nodes
    pairs = edge_set(graph)
    # PU1/PU2 share a station: their flows, and J269 at PU2's discharge, move together
    assert ("PU1", "J269", CORRELATION) in pairs or ("PU2", "J269", CORRELATION) in pairs
    assert not any("PU5" in (a, b) for a, b, _ in pairs)  # PU5 never runs in dataset03
    merged = merge_graphs(c_town[1], graph)
    assert merged.num_edges == c_town[1].num_edges + graph.num_edges
    assert edge_set(merged) == edge_set(c_town[1]) | pairs
    assert merge_graphs(merged, graph).num_edges == merged.num_edges  # no duplicates
