"""The graph models of a run re-written in plain torch for one window graph, so they export.

PyG's GATv2Conv scatters (softmax and sum by destination node, self-loops filled with the mean
of each node's incoming edge features); those scatters have data-dependent shapes that neither
ONNX nor TorchScript tracing takes well. Here the same arithmetic is written with one-hot
incidence matrices of the single graph (edges x nodes): gathers become matmuls and every shape
follows the input's N nodes and E edges. The weights are the trained modules' own (shared, not
copied), and tests/e2e/test_deploy.py checks the scores equal the PyG model's.

Inputs of every exported model (one window graph, features as the graph builder gives them,
before normalisation, which is part of the model):
    x (N, F) float32, node_id (N,) int64, edge_index (2, E) int64, edge_attr (E, F_e) float32
Outputs: score (1,) (the run's score: attack probability, or the VGAE anomaly score) and
node_score (N,) (each node's VGAE reconstruction error where the model has a VGAE, else zeros).
"""

from typing import Any

import torch
from torch import nn

from kdgat.common.errors import UserError
from kdgat.data.normalisation import CLIP
from kdgat.models.gat import GATClassifier, GATEncoder, GraphEncoder
from kdgat.models.vgae import VGAE


def _incidence(index: torch.Tensor, num_nodes: int, like: torch.Tensor) -> torch.Tensor:
    """(E, N) one-hot rows: edge e -> node index[e]."""
    nodes = torch.arange(num_nodes, device=index.device)
    return (index[:, None] == nodes[None, :]).to(like.dtype)


class _Edges:
    """One graph's edges as every GATv2 layer sees them, built once per forward pass: PyG
    drops the graph's own self-loops and appends one loop per node whose edge features are the
    mean of the node's incoming ones (remove_self_loops, add_self_loops fill_value 'mean').
    Here the appended loops follow the E edges and the graph's own loops get weight 0."""

    def __init__(self, edge_index: torch.Tensor, edge_attr: torch.Tensor | None, x: torch.Tensor) -> None:
        src, dst = edge_index[0], edge_index[1]
        num_nodes = x.shape[0]
        nodes = torch.arange(num_nodes, device=x.device)
        keep = (src != dst).to(x.dtype)
        d_keep = _incidence(dst, num_nodes, x) * keep[:, None]  # (E, N)
        self.src = torch.cat([src, nodes])
        self.dst = torch.cat([dst, nodes])
        self.keep = torch.cat([keep, torch.ones_like(nodes, dtype=x.dtype)])[:, None]  # (E + N, 1)
        self.d_inc_t = _incidence(self.dst, num_nodes, x).t()  # (N, E + N)
        self.mask = ((self.d_inc_t * self.keep.t()) > 0)[:, :, None]  # (N, E + N, 1)
        self.attr = None
        if edge_attr is not None:
            loop_attr = (d_keep.t() @ edge_attr) / d_keep.sum(0)[:, None].clamp_min(1.0)
            self.attr = torch.cat([edge_attr, loop_attr])


class PlainGATv2(nn.Module):
    """GATv2Conv (concat heads, self-loops filled with 'mean', no residual) on one graph."""

    def __init__(self, conv: Any) -> None:  # a torch_geometric GATv2Conv (PyG has no type information)
        super().__init__()
        if getattr(conv, "res", None) is not None or not conv.concat or not conv.add_self_loops:
            raise UserError("only GATv2Conv with concat heads, self-loops and no residual is exportable")
        if conv.fill_value != "mean" or conv.share_weights:
            raise UserError("only GATv2Conv with fill_value 'mean' and separate weights is exportable")
        self.conv = conv
        self.heads, self.channels = conv.heads, conv.out_channels

    def forward(self, h: torch.Tensor, edges: _Edges, use_edge_attr: bool) -> torch.Tensor:
        c = self.conv
        heads, channels = self.heads, self.channels
        x_l = c.lin_l(h).view(-1, heads, channels)
        x_r = c.lin_r(h).view(-1, heads, channels)
        z = x_l[edges.src] + x_r[edges.dst]
        if use_edge_attr and edges.attr is not None and c.lin_edge is not None:
            z = z + c.lin_edge(edges.attr).view(-1, heads, channels)
        a = (nn.functional.leaky_relu(z, c.negative_slope) * c.att).sum(-1)  # (E + N, H)
        # Softmax over each destination's incoming edges (its loop included), shifted by their max.
        masked = torch.where(edges.mask, a[None, :, :], torch.full_like(a[None, :, :], -torch.inf))
        top = masked.amax(1)  # (N, H); every node has its loop, so no row is all -inf
        e = torch.exp(a - top[edges.dst]) * edges.keep
        total = edges.d_inc_t @ e + 1e-16  # PyG's softmax adds 1e-16 to the sum
        w = e / total[edges.dst]
        out = edges.d_inc_t @ (w[:, :, None] * x_l[edges.src]).reshape(-1, heads * channels)
        if c.bias is not None:
            out = out + c.bias
        return out


class PlainEncoder(nn.Module):
    """GATEncoder on one graph: input layer, GATv2 layers (residual, LayerNorm), jumping knowledge."""

    def __init__(self, encoder: GraphEncoder) -> None:
        super().__init__()
        if not isinstance(encoder, GATEncoder):
            raise UserError(
                f"a {type(encoder).__name__} is not exportable: the exporters rewrite GATv2 layers only"
            )
        mode = encoder.jk.mode
        if mode not in ("cat", "max"):
            raise UserError(
                f"jumping knowledge {mode!r} is not exportable (cat and max are); "
                f"train with --model-config.jk-mode cat or max."
            )
        self.encoder = encoder
        self.mode = mode
        self.convs = nn.ModuleList(PlainGATv2(conv) for conv in encoder.convs)

    def forward(
        self,
        x: torch.Tensor,
        node_id: torch.Tensor,
        edge_index: torch.Tensor,
        edge_attr: torch.Tensor,
    ) -> torch.Tensor:
        e = self.encoder
        edges = _Edges(edge_index, edge_attr if e.use_edge_features else None, x)
        h = torch.relu(e.input(torch.cat([x, e.embed(node_id)], dim=-1)))
        outputs = []
        for conv, norm in zip(self.convs, e.norms, strict=True):
            h = norm(h + torch.relu(conv(h, edges, e.use_edge_features)))
            outputs.append(h)
        if self.mode == "cat":
            return torch.cat(outputs, dim=-1)
        return torch.stack(outputs, dim=-1).amax(-1)


def _pool(h: torch.Tensor, mode: str) -> torch.Tensor:
    if mode == "mean":
        return h.mean(0, keepdim=True)
    if mode == "max":
        return h.amax(0, keepdim=True)
    if mode == "add":
        return h.sum(0, keepdim=True)
    return torch.cat([h.mean(0, keepdim=True), h.amax(0, keepdim=True)], -1)


class PlainVGAE(nn.Module):
    """The VGAE's per-node errors (feature MSE, ID cross-entropy, neighbourhood BCE) on one
    graph, in eval mode (z = mu), as VGAE.node_errors computes them."""

    def __init__(self, vgae: VGAE) -> None:
        super().__init__()
        self.vgae = vgae
        self.encoder = PlainEncoder(vgae.encoder)

    def forward(
        self, x: torch.Tensor, node_id: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        v = self.vgae
        mu = v.mu(self.encoder(x, node_id, edge_index, edge_attr))
        decoder_in = mu
        if v.decoder == "graph":
            window = mu.mean(0, keepdim=True).expand(mu.shape[0], -1)
            decoder_in = torch.cat([window, v.encoder.embed(node_id).to(mu.dtype)], dim=-1)
        x_hat = v.feature_decoder(decoder_in)
        id_logits = v.id_decoder(mu)
        neighbour_logits = v.neighbour_decoder(mu)
        src, dst = edge_index[0], edge_index[1]
        s_inc, d_inc = _incidence(src, x.shape[0], x), _incidence(dst, x.shape[0], x)
        ids = torch.arange(v.num_ids, device=x.device)
        id_of_src = (node_id[src][:, None] == ids[None, :]).to(x.dtype)  # (E, V)
        id_of_dst = (node_id[dst][:, None] == ids[None, :]).to(x.dtype)
        # neighbours[src, id(dst)] = neighbours[dst, id(src)] = 1
        neighbours = (s_inc.t() @ id_of_dst + d_inc.t() @ id_of_src).clamp(max=1.0)
        feature = ((x_hat - x) ** 2).mean(1)
        can_id = -torch.log_softmax(id_logits, -1).gather(1, node_id[:, None])[:, 0]
        # binary_cross_entropy_with_logits, written out: max(z, 0) - z*y + log(1 + exp(-|z|))
        z = neighbour_logits
        neighbour = (z.clamp_min(0) - z * neighbours + torch.log1p(torch.exp(-z.abs()))).mean(1)
        return mu, feature, can_id, neighbour


class ExportedGraphModel(nn.Module):
    """A run's whole scoring path on one raw window graph: normalisation, the fusion VGAE's
    features where there is one, the model, and the score the run thresholds."""

    # Normalisation buffers (register_buffer), declared for the type checker.
    x_mean: torch.Tensor
    x_std: torch.Tensor
    e_mean: torch.Tensor
    e_std: torch.Tensor

    def __init__(
        self,
        model: nn.Module,
        normalisation: dict[str, list[float]],
        vgae: VGAE | None = None,
        vgae_weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
        score_pooling: str = "mean_max",
    ) -> None:
        super().__init__()
        self.register_buffer("x_mean", torch.tensor(normalisation["x_mean"], dtype=torch.float32))
        self.register_buffer("x_std", torch.tensor(normalisation["x_std"], dtype=torch.float32))
        self.register_buffer("e_mean", torch.tensor(normalisation["edge_mean"], dtype=torch.float32))
        self.register_buffer("e_std", torch.tensor(normalisation["edge_std"], dtype=torch.float32))
        self.weights = vgae_weights
        self.score_pooling = score_pooling
        self.is_vgae = isinstance(model, VGAE)
        if isinstance(model, VGAE):
            self.vgae = PlainVGAE(model)
        elif isinstance(model, GATClassifier):
            self.classifier = model
            self.encoder = PlainEncoder(model.encoder)
            self.fusion = PlainVGAE(vgae) if vgae is not None else None
        else:
            raise UserError(f"a {type(model).__name__} is not a graph model this exporter knows")

    def _node_score(
        self, feature: torch.Tensor, can_id: torch.Tensor, neighbour: torch.Tensor
    ) -> torch.Tensor:
        fw, iw, nw = self.weights
        return fw * feature + iw * can_id + nw * neighbour

    def forward(
        self, x: torch.Tensor, node_id: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = ((x - self.x_mean) / self.x_std).clamp(-CLIP, CLIP)
        edge_attr = ((edge_attr - self.e_mean) / self.e_std).clamp(-CLIP, CLIP)
        if self.is_vgae:
            _, feature, can_id, neighbour = self.vgae(x, node_id, edge_index, edge_attr)
            node_score = self._node_score(feature, can_id, neighbour)
            score = node_score.mean(0, keepdim=True)
            if self.score_pooling == "mean_max":
                score = score + node_score.amax(0, keepdim=True)
            return score, node_score
        node_score = torch.zeros_like(x[:, 0])
        if self.fusion is not None:
            mu, feature, can_id, neighbour = self.fusion(x, node_id, edge_index, edge_attr)
            x = torch.cat([x, mu, feature[:, None], can_id[:, None], neighbour[:, None]], 1)
            node_score = self._node_score(feature, can_id, neighbour)
        graph = _pool(self.encoder(x, node_id, edge_index, edge_attr), self.classifier.pooling)
        logits = self.classifier.head(graph)
        return torch.softmax(logits, -1)[:, 1], node_score
