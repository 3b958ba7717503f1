"""CAN frames -> one graph per window, vectorised over all windows at once.

Per window of W frames: nodes are the distinct CAN IDs, directed edges the transitions between
consecutive frames (counted; self-loops kept). All windows of a frame block are built in one pass
of numpy sorting and bincounts; there is no Python loop per window.
"""

import dataclasses

import numpy as np
import torch

from kdgat.data.frames import Frames

NODE_FEATURES: tuple[str, ...] = (
    "count",
    "first_position",
    "last_position",
    *(f"byte{i}_mean" for i in range(8)),
    *(f"byte{i}_std" for i in range(8)),
    "dlc_mean",
    "payload_change_rate",
    "log_gap_mean",
    "log_gap_std",
    "in_degree",
    "out_degree",
    "is_unknown_id",
)
EDGE_FEATURES: tuple[str, ...] = ("log_count", "log_gap_mean")
UNKNOWN_ID = 0


@dataclasses.dataclass
class GraphSet:
    """Many graphs stored flat: graph g owns nodes node_ptr[g]:node_ptr[g+1], same for edges.

    edge_index holds node indices local to each graph. frame_start/frame_stop give each
    window's frames in its source file (used to prove splits share no frame).
    """

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

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @staticmethod
    def concat(parts: list["GraphSet"]) -> "GraphSet":
        parts = [p for p in parts if len(p)]
        if not parts:
            return empty_graph_set()
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
        )

    def subset(self, mask: torch.Tensor) -> "GraphSet":
        """Graphs where mask is True, in order."""
        index = torch.nonzero(mask).flatten()
        batch = gather_graphs(self, index)
        keep = index.tolist()
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
        )


def empty_graph_set() -> GraphSet:
    zeros = torch.zeros(0, dtype=torch.long)
    return GraphSet(
        x=torch.zeros(0, len(NODE_FEATURES)),
        node_id=zeros,
        node_label=zeros,
        edge_index=torch.zeros(2, 0, dtype=torch.long),
        edge_attr=torch.zeros(0, len(EDGE_FEATURES)),
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

    @property
    def num_graphs(self) -> int:
        return int(self.y.shape[0])

    def to(self, device: torch.device) -> "GraphBatch":
        return GraphBatch(**{k: v.to(device) for k, v in dataclasses.asdict(self).items()})


def _ranges(starts: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Concatenated aranges [s, s+c) for each (s, c)."""
    total = int(counts.sum())
    offsets = torch.cumsum(counts, 0) - counts
    within = torch.arange(total) - torch.repeat_interleave(offsets, counts)
    return torch.repeat_interleave(starts, counts) + within


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
    )


def window_starts(num_frames: int, window: int, stride: int) -> np.ndarray:
    """Start offsets of every full window inside a block of num_frames frames."""
    if num_frames < window:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, num_frames - window + 1, stride, dtype=np.int64)


def build_graphs(
    frames: Frames,
    block_start: int,
    block_stop: int,
    window: int,
    stride: int,
    vocabulary: dict[int, int],
) -> GraphSet:
    """Graphs of every full window inside frames[block_start:block_stop]."""
    starts = block_start + window_starts(block_stop - block_start, window, stride)
    num_windows = len(starts)
    if num_windows == 0:
        return empty_graph_set()
    frame_index = starts[:, None] + np.arange(window)[None, :]  # (G, W)
    can_id = frames.can_id[frame_index]
    time = frames.time[frame_index]
    payload = frames.payload[frame_index].astype(np.float64)  # (G, W, 8)
    label = frames.label[frame_index]

    # Nodes: distinct (window, CAN ID), sorted window-major so each graph's nodes are contiguous.
    window_of = np.repeat(np.arange(num_windows, dtype=np.int64), window)
    key = window_of * (1 << 32) + can_id.reshape(-1)
    node_keys, frame_node = np.unique(key, return_inverse=True)
    num_nodes = len(node_keys)
    node_window = node_keys >> 32
    node_can_id = node_keys & ((1 << 32) - 1)
    node_ptr = np.searchsorted(node_window, np.arange(num_windows + 1))

    def per_node(weights: np.ndarray) -> np.ndarray:
        return np.bincount(frame_node, weights=weights.reshape(-1), minlength=num_nodes)

    count = per_node(np.ones(num_windows * window))
    position = np.broadcast_to(np.arange(window, dtype=np.float64), (num_windows, window))
    first = np.full(num_nodes, np.inf)
    np.minimum.at(first, frame_node, position.reshape(-1))
    last = np.zeros(num_nodes)
    np.maximum.at(last, frame_node, position.reshape(-1))
    flat_payload = payload.reshape(-1, 8)
    byte_sum = np.stack([per_node(flat_payload[:, i]) for i in range(8)], axis=1)
    byte_sq = np.stack([per_node(flat_payload[:, i] ** 2) for i in range(8)], axis=1)
    byte_mean = byte_sum / count[:, None]
    byte_std = np.sqrt(np.maximum(byte_sq / count[:, None] - byte_mean**2, 0.0))
    dlc_mean = per_node(frames.dlc[frame_index].astype(np.float64)) / count

    # Same-ID successions inside a window: gaps and payload changes.
    order = np.argsort(frame_node, kind="stable")
    sorted_node = frame_node[order]
    same = sorted_node[1:] == sorted_node[:-1]
    prev, nxt = order[:-1][same], order[1:][same]
    flat_time = time.reshape(-1)
    log_gap = np.log1p(np.abs(flat_time[nxt] - flat_time[prev]) * 1e3)  # log(1 + ms)
    changed = (flat_payload[nxt] != flat_payload[prev]).any(axis=1).astype(np.float64)
    succ_node = sorted_node[1:][same]
    pairs = np.maximum(count - 1, 1)
    gap_mean = np.bincount(succ_node, weights=log_gap, minlength=num_nodes) / pairs
    gap_sq = np.bincount(succ_node, weights=log_gap**2, minlength=num_nodes) / pairs
    gap_std = np.sqrt(np.maximum(gap_sq - gap_mean**2, 0.0))
    change_rate = np.bincount(succ_node, weights=changed, minlength=num_nodes) / pairs

    # Edges: consecutive-frame transitions, counted, in window-major order.
    node_of = frame_node.reshape(num_windows, window)
    src, dst = node_of[:, :-1].reshape(-1), node_of[:, 1:].reshape(-1)
    step_gap = np.log1p(np.abs(np.diff(time, axis=1)).reshape(-1) * 1e3)
    edge_keys, edge_of_step = np.unique(src * num_nodes + dst, return_inverse=True)
    edge_src, edge_dst = edge_keys // num_nodes, edge_keys % num_nodes
    edge_count = np.bincount(edge_of_step, minlength=len(edge_keys)).astype(np.float64)
    edge_gap = np.bincount(edge_of_step, weights=step_gap, minlength=len(edge_keys)) / edge_count
    in_degree = np.bincount(edge_dst, minlength=num_nodes).astype(np.float64)
    out_degree = np.bincount(edge_src, minlength=num_nodes).astype(np.float64)
    edge_window = node_window[edge_src]
    edge_ptr = np.searchsorted(edge_window, np.arange(num_windows + 1))
    local_src = edge_src - node_ptr[edge_window]
    local_dst = edge_dst - node_ptr[edge_window]

    vocab_lookup = np.vectorize(lambda i: vocabulary.get(int(i), UNKNOWN_ID), otypes=[np.int64])
    unique_ids, id_inverse = np.unique(node_can_id, return_inverse=True)
    node_vocab = vocab_lookup(unique_ids)[id_inverse] if len(unique_ids) else node_can_id

    x = np.column_stack(
        [
            count / window,
            first / window,
            last / window,
            byte_mean / 255.0,
            byte_std / 255.0,
            dlc_mean / 8.0,
            change_rate,
            gap_mean,
            gap_std,
            in_degree,
            out_degree,
            (node_vocab == UNKNOWN_ID).astype(np.float64),
        ]
    )
    node_label = np.zeros(num_nodes, dtype=np.int64)
    np.maximum.at(node_label, frame_node, label.reshape(-1).astype(np.int64))
    graph_label = label.max(axis=1).astype(np.int64)
    return GraphSet(
        x=torch.from_numpy(x.astype(np.float32)),
        node_id=torch.from_numpy(node_vocab.astype(np.int64)),
        node_label=torch.from_numpy(node_label),
        edge_index=torch.from_numpy(np.stack([local_src, local_dst]).astype(np.int64)),
        edge_attr=torch.from_numpy(np.column_stack([np.log1p(edge_count), edge_gap]).astype(np.float32)),
        node_ptr=torch.from_numpy(node_ptr.astype(np.int64)),
        edge_ptr=torch.from_numpy(edge_ptr.astype(np.int64)),
        y=torch.from_numpy(graph_label),
        attack_type=[frames.attack_type if v else "benign" for v in graph_label.tolist()],
        source=[str(frames.source)] * num_windows,
        frame_start=torch.from_numpy(starts),
        frame_stop=torch.from_numpy(starts + window),
    )
