"""Variational graph auto-encoder over CAN windows.

GAT encoder -> per-node mu / logvar (clamped: fp16 overflows exp(logvar) otherwise) -> z, then
three decoders: node features (MSE), the node's CAN ID (cross-entropy) and its neighbourhood as
a multi-hot vector over the ID vocabulary (BCE). A graph's anomaly score pools the per-node
reconstruction errors (mean + max, so one odd node in a normal window still counts; or the
mean alone, learning_config.vgae.score_pooling).
"""

import dataclasses

import torch
from torch import nn

from kdgat.data.graphset import GraphBatch
from kdgat.models.gat import GATEncoder
from kdgat.models.pyg import global_max_pool, global_mean_pool


@dataclasses.dataclass
class VGAEOutput:
    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor
    x_hat: torch.Tensor
    id_logits: torch.Tensor
    neighbour_logits: torch.Tensor


@dataclasses.dataclass
class NodeErrors:
    feature: torch.Tensor
    can_id: torch.Tensor
    neighbour: torch.Tensor
    kl: torch.Tensor


class VGAE(nn.Module):
    def __init__(
        self,
        encoder: GATEncoder,
        *,
        num_ids: int,
        node_dim: int,
        hidden_dim: int,
        latent_dim: int,
        logvar_clamp: float,
        decoder: str = "node",
    ) -> None:
        super().__init__()
        self.num_ids = num_ids
        self.logvar_clamp = logvar_clamp
        self.encoder = encoder
        self.decoder = decoder
        self.mu = nn.Linear(self.encoder.out_dim, latent_dim)
        self.logvar = nn.Linear(self.encoder.out_dim, latent_dim)
        # 'graph': each node's features are decoded from its graph's mean latent and the node's
        # identity embedding, a bottleneck over the whole window (as an autoencoder over the
        # joint sensor vector has); 'node': from the node's own latent.
        decoder_in = latent_dim + (encoder.embed.embedding_dim if decoder == "graph" else 0)
        self.feature_decoder = nn.Sequential(
            nn.Linear(decoder_in, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, node_dim)
        )
        self.id_decoder = nn.Linear(latent_dim, num_ids)
        self.neighbour_decoder = nn.Linear(latent_dim, num_ids)

    def forward(self, batch: GraphBatch) -> VGAEOutput:
        h = self.encoder(batch)
        mu = self.mu(h)
        logvar = self.logvar(h).clamp(-self.logvar_clamp, self.logvar_clamp)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        decoder_in = z
        if self.decoder == "graph":
            graph = batch.batch
            window = global_mean_pool(z, graph, batch.num_graphs)[graph]
            decoder_in = torch.cat([window, self.encoder.embed(batch.node_id).to(z.dtype)], dim=-1)
        return VGAEOutput(
            mu=mu,
            logvar=logvar,
            z=z,
            x_hat=self.feature_decoder(decoder_in),
            id_logits=self.id_decoder(z),
            neighbour_logits=self.neighbour_decoder(z),
        )

    def node_errors(self, out: VGAEOutput, batch: GraphBatch) -> NodeErrors:
        """Per-node reconstruction errors and KL divergence (float32) of out, the pass over batch."""
        x, edge_index, node_id = batch.x, batch.edge_index, batch.node_id
        neighbours = torch.zeros(x.shape[0], self.num_ids, device=x.device)
        src, dst = edge_index
        neighbours[src, node_id[dst]] = 1.0
        neighbours[dst, node_id[src]] = 1.0
        mu, logvar = out.mu.float(), out.logvar.float()
        return NodeErrors(
            feature=((out.x_hat.float() - x) ** 2).mean(dim=1),
            can_id=nn.functional.cross_entropy(out.id_logits.float(), node_id, reduction="none"),
            neighbour=nn.functional.binary_cross_entropy_with_logits(
                out.neighbour_logits.float(), neighbours, reduction="none"
            ).mean(dim=1),
            kl=-0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(dim=1),
        )


def graph_scores(
    node_score: torch.Tensor, batch: torch.Tensor, num_graphs: int, pooling: str = "mean_max"
) -> torch.Tensor:
    """Per-graph anomaly score from per-node errors: their mean, plus their max under 'mean_max'.
    batch: each node's graph; num_graphs: the batch's graph count (a host int: no GPU wait)."""
    if pooling not in ("mean", "mean_max"):
        raise ValueError(f"unknown score pooling {pooling!r}; known: mean_max, mean")
    score = global_mean_pool(node_score[:, None], batch, num_graphs)[:, 0]
    if pooling == "mean_max":
        score = score + global_max_pool(node_score[:, None], batch, num_graphs)[:, 0]
    return score
