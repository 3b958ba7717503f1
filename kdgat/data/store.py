"""GraphStore: a run's graphs read from the memory-mapped cache batch by batch, never held whole.

The cache keeps each capture's raw graphs as flat arrays (kdgat/data/cache.py); a store is a list
of parts, each one block of one capture (its raw arrays, memory-mapped) with the view that turns
raw graphs into model inputs: the run's vocabulary (node_id and the is_unknown_id column) and its
normalisation. A batch is gathered from the parts' maps and the view is applied to it alone, with
the same operations, in the same order, as applying it to the whole set (kdgat/data/graphset.py
assemble, kdgat/data/normalisation.py normalise) did: the batches are bit for bit the ones an
in-memory GraphSet gives. Only per-graph fields (labels, node and edge counts, record spans,
attack types and sources: a few dozen bytes a graph) live in memory.

Why memory maps over the cache's own files rather than PyG's OnDiskDataset: the cache already
stores every capture as flat arrays, so they are read in place with no second copy of the
corpus on disk and no conversion step, and a batch is one pread per graph and field (ranges
that follow each other merged; kdgat.data.spot_reads says why not through the map); PyG's
on-disk storage keeps one serialized row per graph in SQLite and decodes graph by graph, which
is slower per batch and would duplicate the cache. A batch's bytes are copied out of the page
cache, and the pages the per-graph fields were read through are dropped from the process's
resident set (cache.MappedPages), so memory stays flat as the corpus grows.
"""

import dataclasses
from collections.abc import Iterator

import numpy as np
import torch

from kdgat.data.cache import MAPPED_PAGES
from kdgat.data.graphset import (
    GraphBatch,
    GraphSet,
    batch_structure,
    empty_graph_set,
    graph_attack_types,
    lookup_identities,
    make_batch,
    set_of_batch,
    vocabulary_table,
    with_unknown_flag,
)
from kdgat.data.normalisation import CLIP
from kdgat.data.spot_reads import FieldReader

# 8-byte per-graph fields a store reads through its parts' maps when it is built (pointers, labels,
# record spans, attack ids): what MappedPages counts where it cannot measure.
_PER_GRAPH_READS = 8
_CHUNK_GRAPHS = 4096  # graphs per pass when a whole column or label array is read


def ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenated aranges [s, s+c) for each (s, c)."""
    offsets = np.cumsum(counts) - counts
    return np.repeat(starts - offsets, counts) + np.arange(int(counts.sum()), dtype=np.int64)


@dataclasses.dataclass(frozen=True, eq=False)
class View:
    """How raw graphs become model inputs: the vocabulary as a lookup table (None: node
    identities are not learned, every node_id is UNKNOWN_ID and no is_unknown_id column is
    added) and the normalisation statistics (None: raw features)."""

    table: tuple[np.ndarray, np.ndarray] | None
    stats: dict[str, list[float]] | None = None

    @classmethod
    def of(cls, vocabulary: dict[int, int] | None) -> "View":
        return cls(None if vocabulary is None else vocabulary_table(vocabulary))

    def nodes(self, x: np.ndarray, entity: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Node features and node_id of raw node rows."""
        if self.table is not None:
            node_id = lookup_identities(entity, self.table)
            x = with_unknown_flag(x, node_id)
        else:
            node_id = np.zeros(len(entity), dtype=np.int64)
        features = torch.from_numpy(x)
        if self.stats is not None:
            mean, std = torch.tensor(self.stats["x_mean"]), torch.tensor(self.stats["x_std"])
            features = ((features - mean) / std).clamp(-CLIP, CLIP)
        return features, torch.from_numpy(node_id)

    def edges(self, edge_attr: np.ndarray) -> torch.Tensor:
        features = torch.from_numpy(edge_attr)
        if self.stats is not None:
            mean, std = torch.tensor(self.stats["edge_mean"]), torch.tensor(self.stats["edge_std"])
            features = ((features - mean) / std).clamp(-CLIP, CLIP)
        return features


@dataclasses.dataclass(eq=False)
class Part:
    """One block of one capture: its raw graphs (cache arrays, usually memory-mapped) and view."""

    raw: dict[str, np.ndarray]
    view: View
    attack_type: str
    source: str
    attack_names: list[str] | None = None

    def __len__(self) -> int:
        return len(self.raw["y"])

    def with_view(self, view: View) -> "Part":
        return dataclasses.replace(self, view=view)


_NODE_FIELDS = ("x", "node_entity", "node_label")
_EDGE_FIELDS = ("edge_index", "edge_attr")


def _fill(n: int, parts: list[Part], groups, name: str, required: bool = False) -> np.ndarray | None:
    """A per-graph raw field over the store's graphs (None when no part has it; an empty int64
    array for a required field of a store without parts)."""
    have = [name in p.raw for p in parts]
    if not any(have):
        return np.zeros(0, dtype=np.int64) if required else None
    if not all(have):
        raise ValueError(f"graph sets with and without {name} cannot be stored together")
    out = np.empty(n, dtype=parts[0].raw[name].dtype)
    for u, at, local in groups:
        out[at] = parts[u].raw[name][local]
    return out


class GraphStore:
    """Graphs read batch by batch from their parts; the per-graph fields live in memory.

    graph_part[g], graph_local[g]: which part holds graph g and its index there. extras: extra
    node features appended after the view's (fusion's VGAE outputs), one row per node in store
    order, or None."""

    def __init__(
        self,
        parts: list[Part],
        graph_part: np.ndarray,
        graph_local: np.ndarray,
        widths: tuple[int, int],
        extras: torch.Tensor | None = None,
    ) -> None:
        self.parts, self.widths, self.extras = parts, widths, extras
        self._readers: dict[str, FieldReader | None] = {}
        self.graph_part = np.asarray(graph_part, dtype=np.int64)
        self.graph_local = np.asarray(graph_local, dtype=np.int64)
        n = len(self.graph_part)
        groups = list(self._groups(np.arange(n)))
        self._node_counts = np.zeros(n, dtype=np.int64)
        self._edge_counts = np.zeros(n, dtype=np.int64)
        # Each graph's first node and edge row in its part, held here so that a shuffled batch
        # reads no pointer through a map (each spot read there maps a whole page-cache folio).
        self._node_at = np.zeros(n, dtype=np.int64)
        self._edge_at = np.zeros(n, dtype=np.int64)
        types, sources = np.empty(n, dtype=object), np.empty(n, dtype=object)
        for u, at, local in groups:
            part = parts[u]
            self._node_counts[at] = np.diff(part.raw["node_ptr"])[local]
            self._edge_counts[at] = np.diff(part.raw["edge_ptr"])[local]
            self._node_at[at] = part.raw["node_ptr"][local]
            self._edge_at[at] = part.raw["edge_ptr"][local]
            names = graph_attack_types(part.raw, part.attack_type, part.attack_names)
            types[at] = np.asarray(names, dtype=object)[local]
            sources[at] = part.source
        self._node_start = np.cumsum(self._node_counts) - self._node_counts
        self._edge_start = np.cumsum(self._edge_counts) - self._edge_counts
        self.y, self.frame_start, self.frame_stop = (
            torch.from_numpy(_fill(n, parts, groups, k, required=True))
            for k in ("y", "frame_start", "frame_stop")
        )
        self.time_start, self.time_stop = (
            _tensor(_fill(n, parts, groups, k)) for k in ("time_start", "time_stop")
        )
        self.node_ptr = torch.from_numpy(np.concatenate([[0], np.cumsum(self._node_counts)]))
        self.edge_ptr = torch.from_numpy(np.concatenate([[0], np.cumsum(self._edge_counts)]))
        self.attack_type: list[str] = types.tolist()
        self.source: list[str] = sources.tolist()
        # The per-graph fields above were read through the parts' maps (batches are not: spot_reads).
        MAPPED_PAGES.note_read(_PER_GRAPH_READS * 8 * n)

    @classmethod
    def of_parts(cls, parts: list[Part], widths: tuple[int, int]) -> "GraphStore":
        """Every graph of every part, part by part."""
        parts = [p for p in parts if len(p)]
        graph_part = np.repeat(np.arange(len(parts)), [len(p) for p in parts])
        graph_local = np.concatenate([np.arange(len(p)) for p in parts] or [np.zeros(0, np.int64)])
        return cls(parts, graph_part, graph_local, widths)

    def __len__(self) -> int:
        return len(self.graph_part)

    @property
    def node_dim(self) -> int:
        return self.widths[0] + (0 if self.extras is None else int(self.extras.shape[1]))

    @property
    def edge_dim(self) -> int:
        return self.widths[1]

    @property
    def has_edge_labels(self) -> bool:
        return bool(self.parts) and all("edge_label" in p.raw for p in self.parts)

    def _groups(self, index: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """(part, positions in index, local graph indices) for each part index touches."""
        part_of = self.graph_part[index]
        if len(index) and (part_of == part_of[0]).all():
            yield int(part_of[0]), np.arange(len(index)), self.graph_local[index]
            return
        order = np.argsort(part_of, kind="stable")
        cuts = np.flatnonzero(np.diff(part_of[order])) + 1
        for at in np.split(order, cuts):
            if len(at):
                yield int(part_of[at[0]]), at, self.graph_local[index[at]]

    def _collect(
        self, index: np.ndarray, node_fields, edge_fields
    ) -> tuple[dict, list[View], np.ndarray | None]:
        """Raw node and edge rows of the graphs at index, grouped by part (groups in part order,
        graphs in index order within each); the views of the groups; the permutation of index
        the groups follow (None when it is index's own order)."""
        groups = list(self._groups(index))
        order = [at for _, at, _ in groups]
        grouped = index[np.concatenate(order)] if len(order) > 1 else index
        part_of = self.graph_part[grouped]
        chunks: dict[str, list[np.ndarray]] = {}
        heads = np.cumsum([len(at) for at in order])[:-1]  # where each group after the first begins
        for fields, firsts, all_counts in (
            (node_fields, self._node_at, self._node_counts),
            (edge_fields, self._edge_at, self._edge_counts),
        ):
            starts, counts = firsts[grouped], all_counts[grouped]
            cuts = np.cumsum(counts)[heads - 1] if len(heads) else heads  # rows before each group
            for f in fields:
                axis = 1 if f == "edge_index" else 0
                reader = self._reader(f, axis)
                if reader is None:  # graphs held in memory: indexed group by group
                    chunks[f] = [
                        _index_rows(self.parts[u].raw[f], firsts[index[pos]], counts_of, axis)
                        for (u, pos, _), counts_of in zip(groups, np.split(counts, heads), strict=True)
                    ]
                else:
                    chunks[f] = np.split(reader.read(part_of, starts, counts), cuts, axis=axis)
        permutation = np.concatenate(order) if len(order) > 1 else None
        if permutation is not None and (np.diff(permutation) == 1).all():
            permutation = None  # graphs in part order already (a split read in order)
        return chunks, [self.parts[u].view for u, _, _ in groups], permutation

    def _reader(self, field: str, axis: int) -> FieldReader | None:
        """The field's reader over every part's cache file (None: a part is held in memory)."""
        if field not in self._readers:
            self._readers[field] = FieldReader.of([p.raw[field] for p in self.parts], axis)
        return self._readers[field]

    def _nodes(self, index: np.ndarray, chunks: dict, views: list[View], permutation) -> tuple:
        """x, node_id and node_label of the graphs at index, in index order, from _collect."""
        x, node_id = _apply(views, chunks["x"], chunks["node_entity"], View.nodes)
        node_label = torch.from_numpy(np.concatenate(chunks["node_label"]))
        if permutation is not None:
            back = torch.from_numpy(self._back(permutation, self._node_counts[index]))
            x, node_id, node_label = x[back], node_id[back], node_label[back]
        if self.extras is not None:
            rows = torch.from_numpy(ranges(self._node_start[index], self._node_counts[index]))
            x = torch.cat([x, self.extras[rows]], 1)
        return x, node_id, node_label

    def _edges(self, index: np.ndarray, chunks: dict, views: list[View], permutation) -> tuple:
        """edge_attr, local edge_index and edge_label of the graphs at index, from _collect."""
        edge_attr = torch.cat([v.edges(a) for v, a in zip(views, chunks["edge_attr"], strict=True)])
        local = torch.from_numpy(np.concatenate(chunks["edge_index"], 1)) if "edge_index" in chunks else None
        label = torch.from_numpy(np.concatenate(chunks["edge_label"])) if "edge_label" in chunks else None
        if permutation is not None:
            back = torch.from_numpy(self._back(permutation, self._edge_counts[index]))
            edge_attr = edge_attr[back]
            local = None if local is None else local[:, back]
            label = None if label is None else label[back]
        return edge_attr, local, label

    @staticmethod
    def _back(permutation: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Rows of the grouped order that put graphs back in index order (counts in index order)."""
        grouped = counts[permutation]
        starts = np.empty_like(grouped)
        starts[permutation] = np.cumsum(grouped) - grouped
        return ranges(starts, counts)

    def gather(self, index: torch.Tensor | np.ndarray) -> GraphBatch:
        """The graphs at index as one batch, in that order (views applied)."""
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        if len(index) == 0:
            return empty_graph_set(self.node_dim, self.edge_dim).gather(torch.zeros(0, dtype=torch.long))
        labelled = ("edge_label",) if self.has_edge_labels else ()
        collected = self._collect(index, _NODE_FIELDS, (*_EDGE_FIELDS, *labelled))
        x, node_id, node_label = self._nodes(index, *collected)
        edge_attr, local, edge_label = self._edges(index, *collected)
        return make_batch(
            x=x,
            node_id=node_id,
            node_label=node_label,
            edge_index_local=local,
            edge_attr=edge_attr,
            y=self.y[torch.from_numpy(index)],
            edge_label=edge_label,
            structure=batch_structure(
                torch.from_numpy(self._node_counts[index]), torch.from_numpy(self._edge_counts[index])
            ),
        )

    def _chunks(self, graph_mask: torch.Tensor | np.ndarray | None = None) -> Iterator[np.ndarray]:
        selected = np.arange(len(self)) if graph_mask is None else np.flatnonzero(np.asarray(graph_mask))
        for start in range(0, len(selected), _CHUNK_GRAPHS):
            yield selected[start : start + _CHUNK_GRAPHS]

    def node_columns(self, columns: list[int], graph_mask: torch.Tensor) -> torch.Tensor:
        """Node features `columns` of the nodes of the graphs in graph_mask, in order, as float64
        (written chunk by chunk into one array: no second copy of the block)."""
        rows = int(self._node_counts[np.asarray(graph_mask)].sum())
        out, at = torch.empty(rows, len(columns), dtype=torch.float64), 0
        for chunk in self._chunks(graph_mask):
            block = self._nodes(chunk, *self._collect(chunk, _NODE_FIELDS, ()))[0][:, columns]
            out[at : at + len(block)], at = block, at + len(block)
        return out

    def edge_columns(self, columns: list[int], graph_mask: torch.Tensor) -> torch.Tensor:
        """Edge features `columns` of the edges of the graphs in graph_mask, in order, as float64."""
        rows = int(self._edge_counts[np.asarray(graph_mask)].sum())
        out, at = torch.empty(rows, len(columns), dtype=torch.float64), 0
        for chunk in self._chunks(graph_mask):
            block = self._edges(chunk, *self._collect(chunk, (), ("edge_attr",)))[0][:, columns]
            out[at : at + len(block)], at = block, at + len(block)
        return out

    def _edge_values(self, name: str) -> Iterator[tuple[Part, np.ndarray]]:
        """An edge-level raw field of every graph, in store order: (part, values) per run of
        consecutive graphs of one part."""
        reader = self._reader(name, 0)
        for chunk in self._chunks():
            part_of = self.graph_part[chunk]
            for run in np.split(chunk, np.flatnonzero(np.diff(part_of)) + 1):
                part = self.parts[int(self.graph_part[run[0]])]
                starts, counts = self._edge_at[run], self._edge_counts[run]
                if reader is None:
                    yield part, _index_rows(part.raw[name], starts, counts, 0)
                else:
                    yield part, reader.read(self.graph_part[run], starts, counts)

    def _edge_array(self, name: str) -> torch.Tensor | None:
        """An edge-level label array of every graph, in order (None when the parts lack it)."""
        if not self.parts or not all(name in p.raw for p in self.parts):
            return None
        values = [v for _, v in self._edge_values(name)]
        return torch.from_numpy(np.concatenate(values) if values else self.parts[0].raw[name][:0].copy())

    @property
    def edge_label(self) -> torch.Tensor | None:
        return self._edge_array("edge_label")

    @property
    def edge_flows(self) -> torch.Tensor | None:
        return self._edge_array("edge_flows")

    @property
    def edge_attack_type(self) -> list[str] | None:
        if not self.parts or not all("edge_attack_id" in p.raw for p in self.parts):
            return None
        names: list[str] = []
        for part, codes in self._edge_values("edge_attack_id"):
            names += np.asarray(part.attack_names or [], dtype=object)[codes].tolist()
        return names

    def normalised(self, stats: dict[str, list[float]]) -> "GraphStore":
        """The same graphs with features normalised by stats (applied per batch)."""
        views = {id(p.view): dataclasses.replace(p.view, stats=stats) for p in self.parts}
        parts = [p.with_view(views[id(p.view)]) for p in self.parts]
        return GraphStore(parts, self.graph_part, self.graph_local, self.widths, self.extras)

    def with_node_extras(self, extras: torch.Tensor) -> "GraphStore":
        """The same graphs with `extras` (one row per node, in order) appended to the node features."""
        if self.extras is not None:
            extras = torch.cat([self.extras, extras], 1)
        return GraphStore(self.parts, self.graph_part, self.graph_local, self.widths, extras)

    def subset(self, mask: torch.Tensor) -> "GraphStore":
        """Graphs where mask is True, in order."""
        keep = np.flatnonzero(np.asarray(mask))
        extras = None
        if self.extras is not None:
            extras = self.extras[torch.from_numpy(ranges(self._node_start[keep], self._node_counts[keep]))]
        return GraphStore(self.parts, self.graph_part[keep], self.graph_local[keep], self.widths, extras)

    @staticmethod
    def concat(sets: list) -> "GraphStore":
        """One store holding every set's graphs in order (in-memory GraphSets must be empty)."""
        stores = [s for s in sets if isinstance(s, GraphStore)]
        if any(isinstance(s, GraphSet) and len(s) for s in sets) or not stores:
            raise TypeError("only empty GraphSets can be concatenated with GraphStores")
        stores = [s for s in stores if len(s)] or stores[:1]
        if len(stores) == 1:
            return stores[0]
        if len({s.extras is None for s in stores}) > 1:
            raise ValueError("graph sets with and without extra node features cannot be concatenated")
        parts: list[Part] = []
        where: dict[int, int] = {}
        graph_part = []
        for s in stores:
            for p in s.parts:
                where.setdefault(id(p), len(parts))
                if where[id(p)] == len(parts):
                    parts.append(p)
            graph_part.append(np.asarray([where[id(p)] for p in s.parts], dtype=np.int64)[s.graph_part])
        extra = [s.extras for s in stores if s.extras is not None]
        extras = torch.cat(extra) if extra else None
        local = np.concatenate([s.graph_local for s in stores])
        return GraphStore(parts, np.concatenate(graph_part), local, stores[0].widths, extras)

    def materialise(self) -> GraphSet:
        """Every graph in memory, as a GraphSet (tests and small sets; a corpus may not fit)."""
        batch = self.gather(np.arange(len(self)))
        return set_of_batch(
            batch,
            attack_type=list(self.attack_type),
            source=list(self.source),
            frame_start=self.frame_start,
            frame_stop=self.frame_stop,
            time_start=self.time_start,
            time_stop=self.time_stop,
            edge_flows=self.edge_flows,
            edge_attack_type=self.edge_attack_type,
        )


def _index_rows(array: np.ndarray, starts: np.ndarray, counts: np.ndarray, axis: int) -> np.ndarray:
    """Slices [s, s + c) of an in-memory array along axis, concatenated."""
    rows = ranges(starts, counts)
    return array[:, rows] if axis == 1 else array[rows]


def _tensor(values: np.ndarray | None) -> torch.Tensor | None:
    return None if values is None else torch.from_numpy(values)


def _apply(views: list[View], xs: list[np.ndarray], entities: list[np.ndarray], nodes) -> tuple:
    """The views' node inputs of grouped raw rows: once over all rows when every group shares
    one view (the usual case), group by group otherwise."""
    if all(v is views[0] for v in views):
        return nodes(views[0], np.concatenate(xs), np.concatenate(entities))
    outs = [nodes(v, x, e) for v, x, e in zip(views, xs, entities, strict=True)]
    return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])
