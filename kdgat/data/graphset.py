"""The flat graph store every modality produces, and PyG-style batching over it.

Many graphs are stored flat: graph g owns nodes node_ptr[g]:node_ptr[g+1] and edges
edge_ptr[g]:edge_ptr[g+1]; edge_index holds node indices local to each graph. A modality's
builder returns the same arrays as plain numpy ("raw", what the cache stores) and `assemble`
turns them into a GraphSet. Records are the modality's units (CAN frames, network flows,
process hours): frame_start/frame_stop give each window's records in its source file (used to
prove that splits share no record and to write predictions).

Optional parts, present only where the modality has them:
- time_start/time_stop: first and last record time of each window (flows, process hours; the
  CAN cache format predates them, CAN predictions give the frame span);
- edge_label (1 attack, 0 benign, -1 only unlabelled records), edge_flows (benign and attack
  records aggregated into each edge) and edge_attack_type: edges that stand for labelled
  records (internet flows, aggregated per host pair), scored at flow level.

A GraphSet holds its graphs in memory (one capture's calibration windows, tests); the splits a
run trains on are GraphStores (kdgat/data/store.py), which read them from the memory-mapped cache
batch by batch. Both answer the same questions: len, the per-graph fields, gather(index) for a
batch, subset, concat, node_columns/edge_columns for the normalisation fit.
"""

import dataclasses
from typing import Any

import numpy as np
import torch

UNKNOWN_ID = 0


def _cat(values: list, dim: int = 0):
    """Concatenate optional parts: None when every part lacks it."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    if len(present) != len(values):
        raise ValueError("graph sets with and without an optional part cannot be concatenated")
    if isinstance(present[0], list):
        return [item for part in present for item in part]
    return torch.cat(present, dim=dim)


@dataclasses.dataclass
class GraphSet:
    x: torch.Tensor
    node_id: torch.Tensor
    node_label: torch.Tensor
    edge_index: torch.Tensor
    edge_attr: torch.Tensor
    node_ptr: torch.Tensor
    edge_ptr: torch.Tensor
    y: torch.Tensor
    attack_type: list[str]
    source: list[str]
    frame_start: torch.Tensor
    frame_stop: torch.Tensor
    time_start: torch.Tensor | None = None
    time_stop: torch.Tensor | None = None
    edge_label: torch.Tensor | None = None
    edge_flows: torch.Tensor | None = None
    edge_attack_type: list[str] | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def has_edge_labels(self) -> bool:
        return self.edge_label is not None

    @property
    def node_dim(self) -> int:
        return int(self.x.shape[1])

    @property
    def edge_dim(self) -> int:
        return int(self.edge_attr.shape[1])

    def gather(self, index: torch.Tensor) -> "GraphBatch":
        """The graphs at index as one batch, in that order."""
        return _gather_in_memory(self, torch.as_tensor(index, dtype=torch.long))

    def materialise(self) -> "GraphSet":
        return self

    def node_columns(self, columns: list[int], graph_mask: torch.Tensor) -> torch.Tensor:
        """Node features `columns` of the nodes of the graphs in graph_mask, in order, as float64."""
        nodes = torch.repeat_interleave(graph_mask, self.node_ptr[1:] - self.node_ptr[:-1])
        return self.x[nodes][:, columns].double()

    def edge_columns(self, columns: list[int], graph_mask: torch.Tensor) -> torch.Tensor:
        """Edge features `columns` of the edges of the graphs in graph_mask, in order, as float64."""
        edges = torch.repeat_interleave(graph_mask, self.edge_ptr[1:] - self.edge_ptr[:-1])
        return self.edge_attr[edges][:, columns].double()

    def with_node_extras(self, extras: torch.Tensor) -> "GraphSet":
        """The same graphs with `extras` (one row per node, in order) appended to the node features."""
        return dataclasses.replace(self, x=torch.cat([self.x, extras], 1))

    @staticmethod
    def concat(parts: list["GraphSet"]) -> "GraphSet":
        """One set holding every part's graphs in order (empty parts keep the feature widths); a
        GraphStore where any part is one."""
        stores = [p for p in parts if not isinstance(p, GraphSet)]
        if stores:
            # GraphStore.concat (kdgat/data/store.py builds on this module, so it is not imported
            # here); a GraphStore answers everything a GraphSet's readers ask (module docstring).
            return type(stores[0]).concat(parts)
        parts = [p for p in parts if len(p)] or parts[:1]
        if not parts:
            return empty_graph_set(0, 0)
        if len(parts) == 1:
            return parts[0]
        node_offsets = np.cumsum([0] + [int(p.node_ptr[-1]) for p in parts[:-1]])
        edge_offsets = np.cumsum([0] + [int(p.edge_ptr[-1]) for p in parts[:-1]])
        return GraphSet(
            x=torch.cat([p.x for p in parts]),
            node_id=torch.cat([p.node_id for p in parts]),
            node_label=torch.cat([p.node_label for p in parts]),
            edge_index=torch.cat([p.edge_index for p in parts], dim=1),
            edge_attr=torch.cat([p.edge_attr for p in parts]),
            node_ptr=torch.cat(
                [torch.zeros(1, dtype=torch.long)]
                + [p.node_ptr[1:] + int(o) for p, o in zip(parts, node_offsets, strict=True)]
            ),
            edge_ptr=torch.cat(
                [torch.zeros(1, dtype=torch.long)]
                + [p.edge_ptr[1:] + int(o) for p, o in zip(parts, edge_offsets, strict=True)]
            ),
            y=torch.cat([p.y for p in parts]),
            attack_type=[t for p in parts for t in p.attack_type],
            source=[s for p in parts for s in p.source],
            frame_start=torch.cat([p.frame_start for p in parts]),
            frame_stop=torch.cat([p.frame_stop for p in parts]),
            time_start=_cat([p.time_start for p in parts]),
            time_stop=_cat([p.time_stop for p in parts]),
            edge_label=_cat([p.edge_label for p in parts]),
            edge_flows=_cat([p.edge_flows for p in parts]),
            edge_attack_type=_cat([p.edge_attack_type for p in parts]),
        )

    def subset(self, mask: torch.Tensor) -> "GraphSet":
        """Graphs where mask is True, in order."""
        index = torch.nonzero(mask).flatten()
        batch = self.gather(index)
        keep = index.tolist()
        edge_types = self.edge_attack_type
        return set_of_batch(
            batch,
            attack_type=[self.attack_type[i] for i in keep],
            source=[self.source[i] for i in keep],
            frame_start=self.frame_start[index],
            frame_stop=self.frame_stop[index],
            time_start=None if self.time_start is None else self.time_start[index],
            time_stop=None if self.time_stop is None else self.time_stop[index],
            edge_flows=None if self.edge_flows is None else self.edge_flows[edge_positions(self, index)],
            edge_attack_type=None
            if edge_types is None
            else [edge_types[i] for i in edge_positions(self, index).tolist()],
        )


def set_of_batch(batch: "GraphBatch", **per_graph: Any) -> GraphSet:
    """The graphs of a batch as a GraphSet: node and edge rows, graph-local edge indices, labels
    and edge labels from the batch; the per-graph fields a batch does not carry (attack types,
    sources, spans, flows) given by the caller."""
    return GraphSet(
        x=batch.x,
        node_id=batch.node_id,
        node_label=batch.node_label,
        edge_index=batch.edge_index_local,
        edge_attr=batch.edge_attr,
        node_ptr=batch.node_ptr,
        edge_ptr=batch.edge_ptr,
        y=batch.y,
        edge_label=batch.edge_label,
        **per_graph,
    )


def empty_graph_set(node_dim: int, edge_dim: int) -> GraphSet:
    zeros = torch.zeros(0, dtype=torch.long)
    return GraphSet(
        x=torch.zeros(0, node_dim),
        node_id=zeros,
        node_label=zeros,
        edge_index=torch.zeros(2, 0, dtype=torch.long),
        edge_attr=torch.zeros(0, edge_dim),
        node_ptr=torch.zeros(1, dtype=torch.long),
        edge_ptr=torch.zeros(1, dtype=torch.long),
        y=zeros,
        attack_type=[],
        source=[],
        frame_start=zeros,
        frame_stop=zeros,
    )


@dataclasses.dataclass
class GraphBatch:
    """A mini-batch in PyG's flat form: node tensors plus a `batch` vector."""

    x: torch.Tensor
    node_id: torch.Tensor
    node_label: torch.Tensor
    edge_index: torch.Tensor
    edge_index_local: torch.Tensor
    edge_attr: torch.Tensor
    batch: torch.Tensor
    node_ptr: torch.Tensor
    edge_ptr: torch.Tensor
    y: torch.Tensor
    edge_label: torch.Tensor | None = None

    @property
    def num_graphs(self) -> int:
        return int(self.y.shape[0])

    def with_x(self, x: torch.Tensor) -> "GraphBatch":
        """The same graphs with other node features (fusion extends them, a fusion teacher strips them)."""
        return dataclasses.replace(self, x=x)

    def to(self, device: torch.device | str) -> "GraphBatch":
        """The batch on device, sharing every tensor that is there already (no copy; the old
        dataclasses.asdict deep-copied each tensor first). Bound for CUDA, host tensors are pinned
        first so that their copies are asynchronous DMA (pageable memory is staged by the driver
        and blocks the host)."""
        device = torch.device(device)
        pin = device.type == "cuda"

        def move(value):
            if not isinstance(value, torch.Tensor) or value.device == device:
                return value
            if pin and value.device.type == "cpu":
                return value.pin_memory().to(device, non_blocking=True)
            return value.to(device)

        return dataclasses.replace(
            self, **{f.name: move(getattr(self, f.name)) for f in dataclasses.fields(self)}
        )


def _ranges(starts: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Concatenated aranges [s, s+c) for each (s, c)."""
    total = int(counts.sum())
    offsets = torch.cumsum(counts, 0) - counts
    within = torch.arange(total) - torch.repeat_interleave(offsets, counts)
    return torch.repeat_interleave(starts, counts) + within


def edge_positions(graphs: GraphSet, index: torch.Tensor) -> torch.Tensor:
    """Positions in graphs' edge arrays of every edge of the graphs at `index`, in order."""
    return _ranges(graphs.edge_ptr[index], graphs.edge_ptr[index + 1] - graphs.edge_ptr[index])


def gather_graphs(graphs, index: torch.Tensor) -> GraphBatch:
    """Collate the graphs at `index` of a GraphSet or GraphStore into one batch."""
    return graphs.gather(index)


def batch_structure(node_counts: torch.Tensor, edge_counts: torch.Tensor) -> dict[str, torch.Tensor]:
    """A batch's node and edge pointers, `batch` vector and the shift that makes its graphs'
    local edge indices global, from its graphs' node and edge counts (host tensors)."""
    node_ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(node_counts, 0)])
    edge_ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(edge_counts, 0)])
    return {
        "node_ptr": node_ptr,
        "edge_ptr": edge_ptr,
        "batch": torch.repeat_interleave(torch.arange(len(node_counts)), node_counts),
        "shift": torch.repeat_interleave(node_ptr[:-1], edge_counts),
    }


def make_batch(
    x: torch.Tensor,
    node_id: torch.Tensor,
    node_label: torch.Tensor,
    edge_index_local: torch.Tensor,
    edge_attr: torch.Tensor,
    y: torch.Tensor,
    edge_label: torch.Tensor | None,
    structure: dict[str, torch.Tensor],
) -> GraphBatch:
    """A batch from its graphs' rows, in batch order, and its batch_structure (on the rows'
    device): the one place every gather builds its GraphBatch."""
    return GraphBatch(
        x=x,
        node_id=node_id,
        node_label=node_label,
        edge_index=edge_index_local + structure["shift"],
        edge_index_local=edge_index_local,
        edge_attr=edge_attr,
        batch=structure["batch"],
        node_ptr=structure["node_ptr"],
        edge_ptr=structure["edge_ptr"],
        y=y,
        edge_label=edge_label,
    )


def _gather_in_memory(graphs: GraphSet, index: torch.Tensor) -> GraphBatch:
    """Collate the graphs at `index` into one batch with one indexing pass."""
    node_counts = graphs.node_ptr[index + 1] - graphs.node_ptr[index]
    edge_counts = graphs.edge_ptr[index + 1] - graphs.edge_ptr[index]
    nodes = _ranges(graphs.node_ptr[index], node_counts)
    edges = _ranges(graphs.edge_ptr[index], edge_counts)
    return make_batch(
        x=graphs.x[nodes],
        node_id=graphs.node_id[nodes],
        node_label=graphs.node_label[nodes],
        edge_index_local=graphs.edge_index[:, edges],
        edge_attr=graphs.edge_attr[edges],
        y=graphs.y[index],
        edge_label=None if graphs.edge_label is None else graphs.edge_label[edges],
        structure=batch_structure(node_counts, edge_counts),
    )


def vocabulary_table(vocabulary: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The vocabulary as sorted (identities, indices) arrays, for lookup_identities."""
    keys = np.fromiter(vocabulary.keys(), dtype=np.int64, count=len(vocabulary))
    values = np.fromiter(vocabulary.values(), dtype=np.int64, count=len(vocabulary))
    order = np.argsort(keys)
    return keys[order], values[order]


def lookup_identities(entities: np.ndarray, table: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Vocabulary index of each entity (UNKNOWN_ID for entities not in the table)."""
    keys, values = table
    if len(keys) == 0:
        return np.zeros(len(entities), dtype=np.int64)
    at = np.minimum(np.searchsorted(keys, entities), len(keys) - 1)
    return np.where(keys[at] == entities, values[at], UNKNOWN_ID)


def with_unknown_flag(x: np.ndarray, node_id: np.ndarray) -> np.ndarray:
    """Node features with the is_unknown_id column appended."""
    unknown = (node_id == UNKNOWN_ID).astype(np.float32)[:, None]
    return np.concatenate([x, unknown], axis=1)


def vocabulary_lookup(entities: np.ndarray, vocabulary: dict[int, int]) -> np.ndarray:
    """Vocabulary index of each entity (UNKNOWN_ID for entities not in it), vectorised."""
    return lookup_identities(entities, vocabulary_table(vocabulary))


def graph_attack_types(
    raw: dict[str, np.ndarray], attack_type: str, attack_names: list[str] | None
) -> list[str]:
    """Each raw graph's attack type ("benign" for benign graphs)."""
    y = raw["y"]
    if "attack_id" in raw:
        graph_types = _names(raw["attack_id"], attack_names or [])
        return [t if v else "benign" for t, v in zip(graph_types, y.tolist(), strict=True)]
    return [attack_type if v else "benign" for v in y.tolist()]


def _names(codes: np.ndarray, names: list[str]) -> list[str]:
    table = np.asarray(names, dtype=object)
    return table[codes].tolist()


def assemble(
    raw: dict[str, np.ndarray],
    vocabulary: dict[int, int] | None,
    attack_type: str,
    source: str,
    widths: tuple[int, int],
    attack_names: list[str] | None = None,
) -> GraphSet:
    """Raw graphs -> GraphSet.

    vocabulary: node identities are learned (CAN IDs, plant elements): node_id comes from the
    vocabulary and the is_unknown_id feature is appended; None: node identities are never learned
    (hosts), every node_id is UNKNOWN_ID. attack_type names every attack graph of a capture whose
    raw arrays carry no per-graph `attack_id`; otherwise attack_names[attack_id] does.
    widths: (node features, edge features) of the assembled graphs, for empty blocks.
    """
    if not raw or len(raw["y"]) == 0:
        return empty_graph_set(*widths)
    y = raw["y"]
    if vocabulary is not None:
        node_id = vocabulary_lookup(raw["node_entity"], vocabulary)
        x = with_unknown_flag(raw["x"], node_id)
    else:
        node_id = np.zeros(len(raw["node_entity"]), dtype=np.int64)
        x = raw["x"]
    types = graph_attack_types(raw, attack_type, attack_names)
    optional: dict[str, Any] = {}  # GraphSet's optional fields (tensors, and edge_attack_type's names)
    if "time_start" in raw:
        optional["time_start"] = torch.from_numpy(raw["time_start"])
        optional["time_stop"] = torch.from_numpy(raw["time_stop"])
    if "edge_label" in raw:
        optional["edge_label"] = torch.from_numpy(raw["edge_label"])
        optional["edge_flows"] = torch.from_numpy(raw["edge_flows"])
        optional["edge_attack_type"] = _names(raw["edge_attack_id"], attack_names or [])
    return GraphSet(
        x=torch.from_numpy(x),
        node_id=torch.from_numpy(node_id),
        node_label=torch.from_numpy(raw["node_label"]),
        edge_index=torch.from_numpy(raw["edge_index"]),
        edge_attr=torch.from_numpy(raw["edge_attr"]),
        node_ptr=torch.from_numpy(raw["node_ptr"]),
        edge_ptr=torch.from_numpy(raw["edge_ptr"]),
        y=torch.from_numpy(y),
        attack_type=types,
        source=[source] * len(y),
        frame_start=torch.from_numpy(raw["frame_start"]),
        frame_stop=torch.from_numpy(raw["frame_stop"]),
        **optional,
    )
