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
"""

import dataclasses

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

    @staticmethod
    def concat(parts: list["GraphSet"]) -> "GraphSet":
        """One set holding every part's graphs in order (empty parts keep the feature widths)."""
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
        batch = gather_graphs(self, index)
        keep = index.tolist()
        edges = edge_positions(self, index) if self.edge_attack_type is not None else None
        return GraphSet(
            x=batch.x,
            node_id=batch.node_id,
            node_label=batch.node_label,
            edge_index=batch.edge_index_local,
            edge_attr=batch.edge_attr,
            node_ptr=batch.node_ptr,
            edge_ptr=batch.edge_ptr,
            y=batch.y,
            attack_type=[self.attack_type[i] for i in keep],
            source=[self.source[i] for i in keep],
            frame_start=self.frame_start[index],
            frame_stop=self.frame_stop[index],
            time_start=None if self.time_start is None else self.time_start[index],
            time_stop=None if self.time_stop is None else self.time_stop[index],
            edge_label=batch.edge_label,
            edge_flows=None if self.edge_flows is None else self.edge_flows[edge_positions(self, index)],
            edge_attack_type=None if edges is None else [self.edge_attack_type[i] for i in edges.tolist()],
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

    def to(self, device: torch.device) -> "GraphBatch":
        return GraphBatch(
            **{k: None if v is None else v.to(device) for k, v in dataclasses.asdict(self).items()}
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


def gather_graphs(graphs: GraphSet, index: torch.Tensor) -> GraphBatch:
    """Collate the graphs at `index` into one batch with one indexing pass."""
    node_counts = graphs.node_ptr[index + 1] - graphs.node_ptr[index]
    edge_counts = graphs.edge_ptr[index + 1] - graphs.edge_ptr[index]
    nodes = _ranges(graphs.node_ptr[index], node_counts)
    edges = _ranges(graphs.edge_ptr[index], edge_counts)
    new_node_ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(node_counts, 0)])
    new_edge_ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(edge_counts, 0)])
    local = graphs.edge_index[:, edges]
    shift = torch.repeat_interleave(new_node_ptr[:-1], edge_counts)
    return GraphBatch(
        x=graphs.x[nodes],
        node_id=graphs.node_id[nodes],
        node_label=graphs.node_label[nodes],
        edge_index=local + shift,
        edge_index_local=local,
        edge_attr=graphs.edge_attr[edges],
        batch=torch.repeat_interleave(torch.arange(len(index)), node_counts),
        node_ptr=new_node_ptr,
        edge_ptr=new_edge_ptr,
        y=graphs.y[index],
        edge_label=None if graphs.edge_label is None else graphs.edge_label[edges],
    )


def vocabulary_lookup(entities: np.ndarray, vocabulary: dict[int, int]) -> np.ndarray:
    """Vocabulary index of each entity (UNKNOWN_ID for entities not in it), vectorised."""
    if not vocabulary:
        return np.zeros(len(entities), dtype=np.int64)
    keys = np.fromiter(vocabulary.keys(), dtype=np.int64, count=len(vocabulary))
    values = np.fromiter(vocabulary.values(), dtype=np.int64, count=len(vocabulary))
    order = np.argsort(keys)
    keys, values = keys[order], values[order]
    at = np.minimum(np.searchsorted(keys, entities), len(keys) - 1)
    return np.where(keys[at] == entities, values[at], UNKNOWN_ID)


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
        unknown = (node_id == UNKNOWN_ID).astype(np.float32)[:, None]
        x = np.concatenate([raw["x"], unknown], axis=1)
    else:
        node_id = np.zeros(len(raw["node_entity"]), dtype=np.int64)
        x = raw["x"]
    if "attack_id" in raw:
        graph_types = _names(raw["attack_id"], attack_names or [])
        types = [t if v else "benign" for t, v in zip(graph_types, y.tolist(), strict=True)]
    else:
        types = [attack_type if v else "benign" for v in y.tolist()]
    optional = {}
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
