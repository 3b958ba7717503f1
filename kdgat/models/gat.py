"""GAT graph classifier: CAN-ID embedding, GATv2 layers with edge features, jumping knowledge,
graph pooling and an MLP head."""

import torch
from torch import nn
from torch_geometric.nn import (
    GATv2Conv,
    JumpingKnowledge,
    global_add_pool,
    global_max_pool,
    global_mean_pool,
)


class GATClassifier(nn.Module):
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
        pooling: str,
        head_layers: int,
        use_edge_features: bool,
        num_classes: int = 2,
    ) -> None:
        super().__init__()
        self.pooling = pooling
        self.dropout = dropout
        self.use_edge_features = use_edge_features
        self.embed = nn.Embedding(num_ids, embedding_dim)
        self.input = nn.Linear(node_dim + embedding_dim, hidden_dim)
        self.convs = nn.ModuleList(
            GATv2Conv(
                hidden_dim,
                hidden_dim // heads,
                heads=heads,
                concat=True,
                edge_dim=edge_dim if use_edge_features else None,
                dropout=dropout,
            )
            for _ in range(num_layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(hidden_dim) for _ in range(num_layers))
        self.jk = JumpingKnowledge(jk_mode, channels=hidden_dim, num_layers=num_layers)
        jk_dim = hidden_dim * num_layers if jk_mode == "cat" else hidden_dim
        pooled_dim = jk_dim * (2 if pooling == "mean_max" else 1)
        layers: list[nn.Module] = []
        width = pooled_dim
        for _ in range(head_layers - 1):
            layers += [nn.Linear(width, hidden_dim), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden_dim
        layers.append(nn.Linear(width, num_classes))
        self.head = nn.Sequential(*layers)

    def embed_graphs(
        self,
        x: torch.Tensor,
        edge_index: torch.Tensor,
        edge_attr: torch.Tensor,
        batch: torch.Tensor,
        node_id: torch.Tensor,
    ) -> torch.Tensor:
        """Graph embeddings (before the head); also used by distillation and fusion."""
        h = torch.relu(self.input(torch.cat([x, self.embed(node_id)], dim=-1)))
        layer_outputs = []
        for conv, norm in zip(self.convs, self.norms, strict=True):
            attr = edge_attr if self.use_edge_features else None
            h = norm(h + torch.relu(conv(h, edge_index, attr)))
            h = nn.functional.dropout(h, self.dropout, self.training)
            layer_outputs.append(h)
        h = self.jk(layer_outputs)
        num_graphs = int(batch.max()) + 1 if batch.numel() else 0
        if self.pooling == "mean":
            return global_mean_pool(h, batch, num_graphs)
        if self.pooling == "max":
            return global_max_pool(h, batch, num_graphs)
        if self.pooling == "add":
            return global_add_pool(h, batch, num_graphs)
        return torch.cat(
            [
                global_mean_pool(h, batch, num_graphs),
                global_max_pool(h, batch, num_graphs),
            ],
            -1,
        )

    def forward(
        self,
        x: torch.Tensor,
        edge_index: torch.Tensor,
        edge_attr: torch.Tensor,
        batch: torch.Tensor,
        node_id: torch.Tensor,
    ) -> torch.Tensor:
        return self.head(self.embed_graphs(x, edge_index, edge_attr, batch, node_id))
