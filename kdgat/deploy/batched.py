"""A GAT classifier's scoring path on a batch of window graphs in one call, for export.

plain.py's single-graph model gathers with dense one-hot incidence matrices (edges x nodes):
exact and exportable, but quadratic in a graph's size, so a batch of B windows as one disjoint
graph would cost B^2. Here the batch is one disjoint union graph and the gathers are index
selects, the sums and maxima by destination node or by graph scatter_add / scatter_reduce
(ONNX ScatterElements with add / max reduction, opset 18): linear in the batch. One call then
pays ONNX Runtime's per-operator overhead once for the batch instead of once per window.

Inputs (the batch's graphs concatenated, features raw as the graph builder gives them):
    x (N, F) float32, node_id (N,) int64, edge_index (2, E) int64 indices into the N nodes
    (each graph's offset added), edge_attr (E, F_e) float32, batch (N,) int64 graph of each
    node (0..G-1, ascending), graph_nodes (G,) float32 nodes per graph
Output: score (G,), each graph's attack probability, as plain.py's model gives it per graph
(tests/e2e/test_deploy.py). GAT classifiers only; VGAE and fusion runs score a batch graph by graph.
"""

from typing import Any

import torch
from torch import nn

from kdgat.data.normalisation import CLIP
from kdgat.deploy.plain import PlainEncoder
from kdgat.models.gat import GATClassifier


def _sum_by(index: torch.Tensor, values: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Rows of `values` (K, D) summed by index (K,) into a (len(rows), D) table."""
    out = torch.zeros(rows.shape[0], values.shape[1], dtype=values.dtype, device=values.device)
    return out.scatter_add(0, index[:, None].expand(-1, values.shape[1]), values)


def _max_by(index: torch.Tensor, values: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Rows of `values` maximised by index into a (len(rows), D) table (-inf where none)."""
    out = torch.full((rows.shape[0], values.shape[1]), -torch.inf, dtype=values.dtype, device=values.device)
    return out.scatter_reduce(0, index[:, None].expand(-1, values.shape[1]), values, "amax")


class _UnionEdges:
    """plain._Edges for a disjoint union graph: the graphs' own loops get weight 0, one loop
    per node appended with the mean of its incoming edge features (PyG's add_self_loops 'mean')."""

    def __init__(self, edge_index: torch.Tensor, edge_attr: torch.Tensor | None, x: torch.Tensor) -> None:
        src, dst = edge_index[0], edge_index[1]
        nodes = torch.arange(x.shape[0], device=x.device)
        keep = (src != dst).to(x.dtype)
        self.nodes = nodes
        self.src = torch.cat([src, nodes])
        self.dst = torch.cat([dst, nodes])
        self.keep = torch.cat([keep, torch.ones_like(nodes, dtype=x.dtype)])[:, None]  # (E + N, 1)
        self.attr = None
        if edge_attr is not None:
            total = _sum_by(dst, edge_attr * keep[:, None], nodes)
            count = _sum_by(dst, keep[:, None], nodes).clamp_min(1.0)
            self.attr = torch.cat([edge_attr, total / count])


class _UnionGATv2(nn.Module):
    def __init__(self, conv: Any) -> None:  # a torch_geometric GATv2Conv (PyG has no type information)
        super().__init__()
        self.conv = conv
        self.heads, self.channels = conv.heads, conv.out_channels

    def forward(self, h: torch.Tensor, edges: _UnionEdges, use_edge_attr: bool) -> torch.Tensor:
        c = self.conv
        heads, channels = self.heads, self.channels
        x_l = c.lin_l(h).view(-1, heads, channels)
        x_r = c.lin_r(h).view(-1, heads, channels)
        z = x_l[edges.src] + x_r[edges.dst]
        if use_edge_attr and edges.attr is not None and c.lin_edge is not None:
            z = z + c.lin_edge(edges.attr).view(-1, heads, channels)
        a = (nn.functional.leaky_relu(z, c.negative_slope) * c.att).sum(-1)  # (E + N, H)
        masked = torch.where(edges.keep > 0, a, torch.full_like(a, -torch.inf))
        top = _max_by(edges.dst, masked, edges.nodes)  # every node has its loop: finite
        e = torch.exp(a - top[edges.dst]) * edges.keep
        total = _sum_by(edges.dst, e, edges.nodes) + 1e-16  # PyG's softmax adds 1e-16 to the sum
        w = e / total[edges.dst]
        out = _sum_by(edges.dst, (w[:, :, None] * x_l[edges.src]).reshape(-1, heads * channels), edges.nodes)
        if c.bias is not None:
            out = out + c.bias
        return out


class BatchedGATModel(nn.Module):
    """A GAT classifier run's scoring path (normalisation, encoder, pooling, head) on a batch."""

    # Normalisation buffers (register_buffer), declared for the type checker.
    x_mean: torch.Tensor
    x_std: torch.Tensor
    e_mean: torch.Tensor
    e_std: torch.Tensor

    def __init__(self, model: GATClassifier, normalisation: dict[str, list[float]]) -> None:
        super().__init__()
        self.register_buffer("x_mean", torch.tensor(normalisation["x_mean"], dtype=torch.float32))
        self.register_buffer("x_std", torch.tensor(normalisation["x_std"], dtype=torch.float32))
        self.register_buffer("e_mean", torch.tensor(normalisation["edge_mean"], dtype=torch.float32))
        self.register_buffer("e_std", torch.tensor(normalisation["edge_std"], dtype=torch.float32))
        self.classifier = model
        self.encoder = PlainEncoder(model.encoder)  # checks the layers are exportable
        self.convs = nn.ModuleList(_UnionGATv2(conv) for conv in model.encoder.convs)

    def _encode(self, x: torch.Tensor, node_id: torch.Tensor, edges: _UnionEdges) -> torch.Tensor:
        e = self.encoder.encoder
        h = torch.relu(e.input(torch.cat([x, e.embed(node_id)], dim=-1)))
        outputs = []
        for conv, norm in zip(self.convs, e.norms, strict=True):
            h = norm(h + torch.relu(conv(h, edges, e.use_edge_features)))
            outputs.append(h)
        if self.encoder.mode == "cat":
            return torch.cat(outputs, dim=-1)
        return torch.stack(outputs, dim=-1).amax(-1)

    def forward(
        self,
        x: torch.Tensor,
        node_id: torch.Tensor,
        edge_index: torch.Tensor,
        edge_attr: torch.Tensor,
        batch: torch.Tensor,
        graph_nodes: torch.Tensor,
    ) -> torch.Tensor:
        x = ((x - self.x_mean) / self.x_std).clamp(-CLIP, CLIP)
        edge_attr = ((edge_attr - self.e_mean) / self.e_std).clamp(-CLIP, CLIP)
        use_attr = self.encoder.encoder.use_edge_features
        edges = _UnionEdges(edge_index, edge_attr if use_attr else None, x)
        h = self._encode(x, node_id, edges)
        mode = self.classifier.pooling
        parts = []
        if mode in ("mean", "mean_max"):
            parts.append(_sum_by(batch, h, graph_nodes) / graph_nodes[:, None])
        if mode == "add":
            parts.append(_sum_by(batch, h, graph_nodes))
        if mode in ("max", "mean_max"):
            parts.append(_max_by(batch, h, graph_nodes))
        logits = self.classifier.head(torch.cat(parts, -1))
        return torch.softmax(logits, -1)[:, 1]
