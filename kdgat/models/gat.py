"""GAT models: a graph encoder (node-ID embedding, message-passing layers with residual + LayerNorm,
jumping knowledge) whose layer is a parameter, its GATv2 form, and the graph classifier built on an
encoder (pooling + MLP head). kdgat/models/sage.py builds the same layout on SAGEConv."""

from collections.abc import Callable

import torch
from torch import nn

from kdgat.data.graphset import GraphBatch
from kdgat.models.pyg import (
    GATv2Conv,
    JumpingKnowledge,
    global_add_pool,
    global_max_pool,
    global_mean_pool,
)


class GraphEncoder(nn.Module):
    """Node embeddings: [features | ID embedding] -> layers (residual, LayerNorm) -> JK.

    conv() makes one layer, hidden_dim -> hidden_dim; it is called once per layer after the input
    layer is made (so parameters are initialised in the same order for every layer type). With
    use_edge_features the layers are called with the edge features, else without them."""

    def __init__(
        self,
        *,
        num_ids: int,
        node_dim: int,
        hidden_dim: int,
        num_layers: int,
        embedding_dim: int,
        dropout: float,
        jk_mode: str,
        use_edge_features: bool,
        conv: Callable[[], nn.Module],
    ) -> None:
        super().__init__()
        self.dropout = dropout
        self.use_edge_features = use_edge_features
        self.embed = nn.Embedding(num_ids, embedding_dim)
        self.input = nn.Linear(node_dim + embedding_dim, hidden_dim)
        self.convs = nn.ModuleList(conv() for _ in range(num_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden_dim) for _ in range(num_layers))
        self.jk = JumpingKnowledge(jk_mode, channels=hidden_dim, num_layers=num_layers)
        self.out_dim = hidden_dim * num_layers if jk_mode == "cat" else hidden_dim

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        h = torch.relu(self.input(torch.cat([batch.x, self.embed(batch.node_id)], dim=-1)))
        edges = (batch.edge_index, batch.edge_attr) if self.use_edge_features else (batch.edge_index,)
        layer_outputs = []
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = norm(h + torch.relu(conv(h, *edges)))
            h = nn.functional.dropout(h, self.dropout, self.training)
            layer_outputs.append(h)
        return self.jk(layer_outputs)


class GATEncoder(GraphEncoder):
    """The encoder on GATv2 layers (hidden_dim split over the heads, edge features in the attention)."""

    def __init__(
        self,
        *,
        num_ids: int,
        node_dim: int,
        edge_dim: int,
        hidden_dim: int,
        num_layers: int,
        heads: int,
        embedding_dim: int,
        dropout: float,
        jk_mode: str,
        use_edge_features: bool,
    ) -> None:
        super().__init__(
            num_ids=num_ids,
            node_dim=node_dim,
            hidden_dim=hidden_dim,
            num_layers=num_layers,
            embedding_dim=embedding_dim,
            dropout=dropout,
            jk_mode=jk_mode,
            use_edge_features=use_edge_features,
            conv=lambda: GATv2Conv(
                hidden_dim,
                hidden_dim // heads,
                heads=heads,
                concat=True,
                edge_dim=edge_dim if use_edge_features else None,
                dropout=dropout,
            ),
        )


def pool(h: torch.Tensor, batch: GraphBatch, mode: str) -> torch.Tensor:
    """One row per graph of batch. The graph count comes from the batch (a host int), not from
    batch.batch.max(), which would make the host wait for the GPU at every forward pass."""
    graph, num_graphs = batch.batch, batch.num_graphs
    if mode == "mean":
        return global_mean_pool(h, graph, num_graphs)
    if mode == "max":
        return global_max_pool(h, graph, num_graphs)
    if mode == "add":
        return global_add_pool(h, graph, num_graphs)
    return torch.cat([global_mean_pool(h, graph, num_graphs), global_max_pool(h, graph, num_graphs)], -1)


class GraphClassifier(nn.Module):
    """Graph classification: encoder -> pooling -> MLP head; with edge_dim, also an edge read-out
    (edge_logits) for graphs whose edges carry labels."""

    def __init__(
        self,
        encoder: GraphEncoder,
        *,
        hidden_dim: int,
        dropout: float,
        pooling: str,
        head_layers: int,
        num_classes: int = 2,
        edge_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.pooling = pooling
        self.encoder = encoder
        width = self.encoder.out_dim * (2 if pooling == "mean_max" else 1)
        self.embedding_dim = width
        layers: list[nn.Module] = []
        for _ in range(head_layers - 1):
            layers += [nn.Linear(width, hidden_dim), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden_dim
        layers.append(nn.Linear(width, num_classes))
        self.head = nn.Sequential(*layers)
        self.edge_head: nn.Sequential | None = None
        if edge_dim is not None:
            # Per edge: both end nodes' embeddings and the edge's own features (E-GraphSAGE's
            # read-out), so that each aggregated flow edge gets its own attack probability.
            self.edge_head = nn.Sequential(
                nn.Linear(2 * self.encoder.out_dim + edge_dim, hidden_dim),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(hidden_dim, num_classes),
            )

    def edge_logits(self, nodes: torch.Tensor, batch: GraphBatch) -> torch.Tensor:
        """Class logits of every edge of batch from the node embeddings of one pass."""
        if self.edge_head is None:
            raise ValueError("this classifier has no edge read-out (built without edge_dim)")
        src, dst = batch.edge_index
        return self.edge_head(torch.cat([nodes[src], nodes[dst], batch.edge_attr.to(nodes.dtype)], dim=-1))

    def embed_graphs(self, batch: GraphBatch) -> torch.Tensor:
        """Graph embeddings before the head (used by fusion)."""
        return pool(self.encoder(batch), batch, self.pooling)

    def forward_parts(self, batch: GraphBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Node embeddings, graph embeddings and logits of one pass (distillation matches all three)."""
        nodes = self.encoder(batch)
        graphs = pool(nodes, batch, self.pooling)
        return nodes, graphs, self.head(graphs)

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        return self.head(self.embed_graphs(batch))


class GATClassifier(GraphClassifier):
    """The graph classifier on a GATEncoder (the one the exporters in kdgat/deploy know)."""
