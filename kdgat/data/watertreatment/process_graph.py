"""The process graph of a plant's monitored elements: which readings belong together.

Nodes are the elements the SCADA log names (C-Town: 7 tanks, 11 pumps, valve V2 and 12 junctions,
31 in all, in the order their first column appears): L_x -> tank x; F_x / S_x -> pump x (ID PU...)
or valve x (ID V...); P_x -> junction x. Each node's `readings` index its columns (tank: L; pump
and valve: F then S; junction: P).

Edges from the EPANET model (`network_graph`), as int8 `edge_kind`:
- 0 pipe-network path: two monitored elements are linked when the hydraulic network joins them by
  a path through no other monitored element. Pumps and V2 are links in EPANET; here each monitored
  link becomes a vertex between its two end nodes, so a path through it is a path through a
  monitored element. Pipes (whatever their initial status: controls may open them), unmonitored
  valves (C-Town's three PRVs), unmonitored pumps and unmonitored nodes (reservoir included) are
  passable. `edge_hops` = links traversed on a shortest such path (0 between two pumps in parallel
  on a shared unmonitored junction).
- 1 end junction: a pump or valve and its own end node, when that node is monitored (PU2 <->
  J280, J269). The path rule alone finds these pairs too (a path of 0 pipes); they get kind 1
  instead of 0, never both: one edge per pair and direction.
- 2 control: the node a [CONTROLS] line or a [RULES] condition tests (a tank level) -> the link
  it sets (T1 -> PU1, PU2), when both are monitored; one direction, one edge per pair.
Kinds 0 and 1 are symmetric and stored in both directions. A control pair may also be a path
pair: the two relations are different edges (different kind).

For plants with no model, `correlation_graph` learns kind 3 edges from the Pearson correlation of
each node's primary reading (level, flow, pressure) over BENIGN TRAINING hours only (the caller
passes only those rows): |r| >= threshold, optionally only each node's top_k, both directions.
`merge_graphs` joins edge sets of the same nodes (e.g. network + correlation).
"""

import collections
import dataclasses
from pathlib import Path

import numpy as np

from kdgat.common.errors import DataError
from kdgat.data.watertreatment.epanet import Network

NODE_KINDS = ("tank", "pump", "valve", "junction")
EDGE_KINDS = ("pipe_path", "end_junction", "control", "correlation")
TANK, PUMP, VALVE, JUNCTION = range(4)
PIPE_PATH, END_JUNCTION, CONTROL, CORRELATION = range(4)


@dataclasses.dataclass
class ProcessGraph:
    """nodes: element IDs; kind: int8 per node (NODE_KINDS); readings: per node, indices into
    the log's columns; edge_index: int64 (2, E); edge_kind: int8 (EDGE_KINDS); edge_hops: float64."""

    nodes: tuple[str, ...]
    kind: np.ndarray
    readings: list[tuple[int, ...]]
    edge_index: np.ndarray
    edge_kind: np.ndarray
    edge_hops: np.ndarray

    @property
    def num_nodes(self) -> int:
        return len(self.nodes)

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[1])


def process_nodes(columns: tuple[str, ...]) -> tuple[tuple[str, ...], np.ndarray, list[tuple[int, ...]]]:
    """(nodes, kind, readings) named by the log's columns (see module doc)."""
    order: dict[str, int] = {}
    kinds: list[int] = []
    readings: list[list[tuple[int, int]]] = []  # (rank of the reading in its node, column)
    for j, column in enumerate(columns):
        prefix, _, element = column.partition("_")
        if prefix == "L":
            kind, rank = TANK, 0
        elif prefix in ("F", "S"):
            if element.startswith("PU"):
                kind = PUMP
            elif element.startswith("V"):
                kind = VALVE
            else:
                raise DataError(
                    f"column {column!r}: a flow/status reading of {element!r}, not a pump PU* or valve V*."
                )
            rank = 0 if prefix == "F" else 1
        elif prefix == "P":
            kind, rank = JUNCTION, 0
        else:
            raise DataError(f"column {column!r} is not a reading L_, F_, S_ or P_ of a plant element.")
        if element not in order:
            order[element] = len(order)
            kinds.append(kind)
            readings.append([])
        elif kinds[order[element]] != kind:
            raise DataError(f"column {column!r} gives {element!r} a second kind of reading.")
        readings[order[element]].append((rank, j))
    nodes = tuple(order)
    return nodes, np.array(kinds, dtype=np.int8), [tuple(j for _, j in sorted(r)) for r in readings]


def _finish(
    nodes: tuple[str, ...],
    kind: np.ndarray,
    readings: list[tuple[int, ...]],
    edges: dict[tuple[int, int, int], float],
) -> ProcessGraph:
    """Edges (src, dst, kind) -> hops, sorted by kind, source, target."""
    keys = sorted(edges, key=lambda e: (e[2], e[0], e[1]))
    edge_index = np.array([[e[0] for e in keys], [e[1] for e in keys]], dtype=np.int64).reshape(2, -1)
    return ProcessGraph(
        nodes=nodes,
        kind=kind,
        readings=readings,
        edge_index=edge_index,
        edge_kind=np.array([e[2] for e in keys], dtype=np.int8),
        edge_hops=np.array([edges[e] for e in keys], dtype=np.float64),
    )


def network_graph(network: Network, columns: tuple[str, ...], source: Path) -> ProcessGraph:
    """The process graph of `columns` on the EPANET network read from `source`."""
    nodes, kind, readings = process_nodes(columns)
    _check_elements(network, nodes, kind, readings, columns, source)
    node_id = {name: i for i, name in enumerate(network.nodes)}
    vertex_of = {name: node_id[name] for name, k in zip(nodes, kind, strict=True) if k in (TANK, JUNCTION)}
    adjacency: list[list[tuple[int, int]]] = [[] for _ in network.nodes]
    ends: dict[str, tuple[str, ...]] = {}  # link -> its two end nodes
    node_set = set(nodes)
    for link, a, b in network.links:
        if link in node_set:
            vertex_of[link] = len(adjacency)
            adjacency.append([(node_id[a], 0), (node_id[b], 0)])
            adjacency[node_id[a]].append((vertex_of[link], 0))
            adjacency[node_id[b]].append((vertex_of[link], 0))
            ends[link] = (a, b)
        else:
            adjacency[node_id[a]].append((node_id[b], 1))
            adjacency[node_id[b]].append((node_id[a], 1))
    index = {name: i for i, name in enumerate(nodes)}
    monitored = {vertex_of[name]: index[name] for name in nodes}
    edges: dict[tuple[int, int, int], float] = {}
    for name in nodes:
        for target, hops in _reach(adjacency, vertex_of[name], monitored).items():
            i, j = index[name], monitored[target]
            own_end = nodes[j] in ends.get(name, ()) or name in ends.get(nodes[j], ())
            edges[(i, j, END_JUNCTION if own_end else PIPE_PATH)] = float(hops)
    ties = [(node, link) for link, _, node, _, _ in network.controls]
    ties += [(tank, link) for _, tanks, links in network.rule_links for tank in tanks for link in links]
    for node, link in ties:
        if node in index and link in index:
            edges[(index[node], index[link], CONTROL)] = 0.0
    return _finish(nodes, kind, readings, edges)


def _reach(adjacency: list[list[tuple[int, int]]], start: int, monitored: dict[int, int]) -> dict[int, int]:
    """Monitored vertices reachable from `start` through unmonitored ones -> fewest weight-1 links
    (0-1 breadth-first search; monitored vertices other than `start` are reached, not crossed)."""
    dist = {start: 0}
    queue = collections.deque([start])
    reached: dict[int, int] = {}
    while queue:
        v = queue.popleft()
        if v != start and v in monitored:
            reached[v] = dist[v]
            continue
        for w, weight in adjacency[v]:
            d = dist[v] + weight
            if d < dist.get(w, 1 << 30):
                dist[w] = d
                if weight:
                    queue.append(w)
                else:
                    queue.appendleft(w)
    reached.pop(start, None)
    return {v: dist[v] for v in reached}


def _check_elements(
    network: Network,
    nodes: tuple[str, ...],
    kind: np.ndarray,
    readings: list[tuple[int, ...]],
    columns: tuple[str, ...],
    source: Path,
) -> None:
    """Every element the log names must exist in the network, as the same kind of element."""
    have = {
        TANK: set(network.tanks),
        PUMP: {p[0] for p in network.pumps},
        VALVE: {v[0] for v in network.valves},
        JUNCTION: set(network.junctions),
    }
    for name, k, cols in zip(nodes, kind.tolist(), readings, strict=True):
        if name in have[k]:
            continue
        named = ", ".join(columns[j] for j in cols)
        other = [NODE_KINDS[o] for o, ids in have.items() if name in ids]
        found = f" ({name!r} is a {other[0]} there)" if other else ""
        raise DataError(
            f"{source}: the log's column(s) {named} name {NODE_KINDS[k]} {name!r}, but this network "
            f"defines no {NODE_KINDS[k]} {name!r}{found}. Use the .inp file of the plant that wrote the "
            f"log (C-Town: c-town.inp.gz beside the BATADAL CSVs)."
        )


def correlation_graph(
    log_values_benign: np.ndarray, columns: tuple[str, ...], threshold: float, top_k: int | None = None
) -> ProcessGraph:
    """Kind-3 edges between nodes whose primary readings correlate (|Pearson r| >= threshold) over
    the given rows, which must be benign training hours only; top_k keeps each node's k strongest
    (an edge stays when either end keeps it). Constant readings (a pump that never runs) have no
    correlation and get no edges."""
    if not 0.0 < threshold <= 1.0:
        raise DataError(f"correlation threshold {threshold} must be in (0, 1].")
    if top_k is not None and top_k < 1:
        raise DataError(f"correlation top_k {top_k} must be at least 1.")
    values = np.asarray(log_values_benign, dtype=np.float64)
    nodes, kind, readings = process_nodes(columns)
    if values.ndim != 2 or values.shape[1] != len(columns):
        raise DataError(
            f"correlation_graph: values of shape {values.shape}, expected (hours, {len(columns)})."
        )
    if values.shape[0] < 3:
        raise DataError(
            f"correlation_graph: {values.shape[0]} benign training hour(s); correlations need at least 3."
        )
    if not np.isfinite(values).all():
        raise DataError("correlation_graph: the benign training readings contain NaN or Inf.")
    primary = values[:, [r[0] for r in readings]]
    std = primary.std(axis=0)
    varies = std > 1e-9 * (1.0 + np.abs(primary.mean(axis=0)))
    r = np.zeros((len(nodes), len(nodes)))
    if varies.sum() >= 2:
        r[np.ix_(varies, varies)] = np.corrcoef(primary[:, varies], rowvar=False)
    strength = np.abs(r)
    np.fill_diagonal(strength, 0.0)
    keep = strength >= threshold
    if top_k is not None:
        rank = np.argsort(-strength, axis=1, kind="stable")[:, :top_k]
        best = np.zeros_like(keep)
        np.put_along_axis(best, rank, True, axis=1)
        keep &= best
    keep |= keep.T
    src, dst = np.nonzero(keep)
    edges = {(int(a), int(b), CORRELATION): 0.0 for a, b in zip(src, dst, strict=True)}
    return _finish(nodes, kind, readings, edges)


def merge_graphs(first: ProcessGraph, *others: ProcessGraph) -> ProcessGraph:
    """The union of the edge sets of graphs over the same nodes (one edge per pair, direction, kind)."""
    edges: dict[tuple[int, int, int], float] = {}
    for graph in (first, *others):
        if graph.nodes != first.nodes or graph.readings != first.readings:
            raise DataError(
                "merge_graphs: the graphs have different nodes; build them from the same columns."
            )
        for (a, b), k, hops in zip(
            graph.edge_index.T.tolist(), graph.edge_kind.tolist(), graph.edge_hops.tolist(), strict=True
        ):
            edges.setdefault((a, b, k), hops)
    return _finish(first.nodes, first.kind, first.readings, edges)
