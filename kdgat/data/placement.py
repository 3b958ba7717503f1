"""Graphs on the training device when they fit.

On CUDA, a set that fits is copied once to the GPU (DeviceGraphs), and every batch is then
indexed there: the host computes only the batch's row positions and structure (a few KB, copied
from pinned memory without a sync) instead of gathering the features and copying them each step.
A set that does not fit stays where it is (the memory-mapped store, gathered on the host and
copied per batch from pinned memory: kdgat/data/graphset.py GraphBatch.to).

Whether it fits: the set's resident bytes (resident_bytes: features, ids, labels, edge indices)
against the device's free memory (torch.cuda.mem_get_info, which sees other processes sharing
the GPU) less a margin for the model, its activations and the caching allocator:
max(MARGIN_MIN_BYTES, MARGIN_FRACTION of the device's total). Sets are placed in order (the
training set first: it is gathered every step), each while the budget left allows.
"""

import numpy as np
import torch

from kdgat.data.graphset import GraphBatch, batch_structure, make_batch
from kdgat.data.store import ranges

MARGIN_MIN_BYTES = 2 << 30
MARGIN_FRACTION = 0.25
_UPLOAD_GRAPHS = 8192


def resident_bytes(graphs) -> int:
    """Bytes the set takes on a device: node features, node_id and node_label per node; edge
    features, edge_index and edge_label per edge; label and pointers per graph."""
    sample = graphs.gather(np.arange(min(len(graphs), 1)))
    per_node = sample.x.element_size() * graphs.node_dim + 2 * 8
    per_edge = (
        sample.edge_attr.element_size() * graphs.edge_dim + 2 * 8 + (8 if graphs.has_edge_labels else 0)
    )
    return int(graphs.node_ptr[-1]) * per_node + int(graphs.edge_ptr[-1]) * per_edge + len(graphs) * 3 * 8


def device_budget(device: torch.device) -> int:
    """Bytes that graphs may take on a CUDA device: its free memory less the margin."""
    free, total = torch.cuda.mem_get_info(device)
    return int(free) - max(MARGIN_MIN_BYTES, int(MARGIN_FRACTION * total))


def place_on_device(sets: list, device: torch.device) -> list:
    """Each set resident on device (DeviceGraphs) while the budget allows, in order; the others,
    and every set on a CPU or other device, as they are."""
    device = torch.device(device)
    if device.type != "cuda":
        return list(sets)
    budget = device_budget(device)
    placed, resident = [], 0
    for graphs in sets:
        need = resident_bytes(graphs)
        if len(graphs) and need <= budget:
            placed.append(DeviceGraphs(graphs, device))
            budget, resident = budget - need, resident + 1
        else:
            placed.append(graphs)
    print(
        f"graphs on {device}: {resident} of {len(sets)} sets resident (others are gathered on the host)",
        flush=True,
    )
    return placed


class DeviceGraphs:
    """A set's graphs resident on a device; a batch is indexed there from row positions the
    host computes (no host sync). Everything else (len, y, attack types, subset, ...) is the
    wrapped set's, on the host."""

    def __init__(self, graphs, device: torch.device) -> None:
        self.graphs, self.device = graphs, torch.device(device)
        self._node_ptr, self._edge_ptr = graphs.node_ptr.numpy(), graphs.edge_ptr.numpy()
        nodes, edges = int(self._node_ptr[-1]), int(self._edge_ptr[-1])
        sample = graphs.gather(np.arange(min(len(graphs), 1)))

        def empty(like: torch.Tensor, *shape: int) -> torch.Tensor:
            return torch.empty(*shape, dtype=like.dtype, device=self.device)

        self.x = empty(sample.x, nodes, graphs.node_dim)
        self.node_id, self.node_label = empty(sample.node_id, nodes), empty(sample.node_label, nodes)
        self.edge_index = empty(sample.edge_index_local, 2, edges)
        self.edge_attr = empty(sample.edge_attr, edges, graphs.edge_dim)
        self.edge_label = None if sample.edge_label is None else empty(sample.edge_label, edges)
        self.y = graphs.y.to(self.device)
        for start in range(0, len(graphs), _UPLOAD_GRAPHS):  # a chunk at a time: host memory stays small
            self._upload(graphs.gather(np.arange(start, min(start + _UPLOAD_GRAPHS, len(graphs)))), start)

    def _upload(self, batch: GraphBatch, first: int) -> None:
        n0, e0 = int(self._node_ptr[first]), int(self._edge_ptr[first])
        n1, e1 = n0 + len(batch.x), e0 + batch.edge_attr.shape[0]
        self.x[n0:n1] = batch.x.to(self.device)
        self.node_id[n0:n1] = batch.node_id.to(self.device)
        self.node_label[n0:n1] = batch.node_label.to(self.device)
        self.edge_index[:, e0:e1] = batch.edge_index_local.to(self.device)
        self.edge_attr[e0:e1] = batch.edge_attr.to(self.device)
        if self.edge_label is not None and batch.edge_label is not None:
            self.edge_label[e0:e1] = batch.edge_label.to(self.device)

    def __len__(self) -> int:
        return len(self.graphs)

    def __getattr__(self, name: str):
        return getattr(self.graphs, name)

    def gather(self, index: torch.Tensor | np.ndarray) -> GraphBatch:
        """The graphs at index as one batch on the device, in that order."""
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        node_counts = self._node_ptr[index + 1] - self._node_ptr[index]
        edge_counts = self._edge_ptr[index + 1] - self._edge_ptr[index]
        host = {
            "rows": torch.from_numpy(ranges(self._node_ptr[index], node_counts)),
            "edges": torch.from_numpy(ranges(self._edge_ptr[index], edge_counts)),
            "index": torch.from_numpy(index),
            **batch_structure(torch.from_numpy(node_counts), torch.from_numpy(edge_counts)),
        }
        pin = self.device.type == "cuda"
        on = {k: (v.pin_memory() if pin else v).to(self.device, non_blocking=pin) for k, v in host.items()}
        rows, edges = on.pop("rows"), on.pop("edges")
        return make_batch(
            x=self.x[rows],
            node_id=self.node_id[rows],
            node_label=self.node_label[rows],
            edge_index_local=self.edge_index[:, edges],
            edge_attr=self.edge_attr[edges],
            y=self.y[on.pop("index")],
            edge_label=None if self.edge_label is None else self.edge_label[edges],
            structure=on,
        )
