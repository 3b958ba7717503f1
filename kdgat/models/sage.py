"""GraphSAGE classifier: the GAT classifier's layout (node-identity embedding, residual + LayerNorm,
jumping knowledge, pooling, MLP head, edge read-out) on SAGEConv layers with mean aggregation
(Hamilton et al. 2017): each node adds a linear map of its neighbours' mean to its own.

SAGEConv reads no edge features, so --model-config.use-edge-features and --model-size-config.heads
do not change it (the edge read-out still reads each edge's features). Its row in
configs.ARCHITECTURES: classifier and fusion, curriculum, edge read-out, GAT or SAGE teachers; its
runs do not export.
"""

from torch import nn

from configs import ExperimentConfig
from kdgat.config.sizes import sizes
from kdgat.models import classifier_head
from kdgat.models.gat import GraphClassifier, GraphEncoder
from kdgat.models.pyg import SAGEConv


class SAGEEncoder(GraphEncoder):
    """The encoder on SAGEConv layers (hidden_dim -> hidden_dim, mean over the in-neighbours)."""

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
    ) -> None:
        super().__init__(
            num_ids=num_ids,
            node_dim=node_dim,
            hidden_dim=hidden_dim,
            num_layers=num_layers,
            embedding_dim=embedding_dim,
            dropout=dropout,
            jk_mode=jk_mode,
            use_edge_features=False,
            conv=lambda: SAGEConv(hidden_dim, hidden_dim, aggr="mean"),
        )


class SAGEClassifier(GraphClassifier):
    """The graph classifier on a SAGEEncoder."""


def build_sage(cfg: ExperimentConfig, dims: dict) -> nn.Module:
    """configs.ARCHITECTURES["SAGE"].builder: the SAGE classifier for a run's input_dims."""
    s = sizes(cfg)
    encoder = SAGEEncoder(
        num_ids=dims["num_ids"],
        node_dim=dims["node_dim"],
        hidden_dim=s.hidden_dim,
        num_layers=s.num_layers,
        embedding_dim=s.embedding_dim,
        dropout=s.dropout,
        jk_mode=cfg.model_config.jk_mode,
    )
    return SAGEClassifier(encoder, **classifier_head(cfg, dims))
