"""Model construction from a config: the one place that maps sizes and knobs onto modules."""

import torch

from configs import ExperimentConfig
from kdgat.models.dqn import STATE_FEATURES, QNetwork
from kdgat.models.gat import GATClassifier, GATEncoder
from kdgat.models.vgae import VGAE


def build_graph_model(
    cfg: ExperimentConfig, num_ids: int, node_dim: int, edge_dim: int, edge_readout: bool = False
) -> torch.nn.Module:
    """VGAE for unsupervised learning, otherwise the GAT classifier (also fusion GAT); edge_readout
    adds the GAT's per-edge head (graphs with edge labels, when --model-config.edge-readout)."""
    s, m = cfg.model_size_config, cfg.model_config
    encoder = GATEncoder(
        num_ids=num_ids,
        node_dim=node_dim,
        edge_dim=edge_dim,
        hidden_dim=s.hidden_dim,
        num_layers=s.num_layers,
        heads=s.heads,
        embedding_dim=s.embedding_dim,
        dropout=s.dropout,
        jk_mode=m.jk_mode,
        use_edge_features=m.use_edge_features,
    )
    if cfg.model_architecture == "VGAE":
        return VGAE(
            encoder,
            num_ids=num_ids,
            node_dim=node_dim,
            hidden_dim=s.hidden_dim,
            latent_dim=s.latent_dim,
            logvar_clamp=m.logvar_clamp,
            decoder=m.vgae_decoder,
        )
    return GATClassifier(
        encoder,
        hidden_dim=s.hidden_dim,
        dropout=s.dropout,
        pooling=m.pooling,
        head_layers=m.head_layers,
        edge_dim=edge_dim if edge_readout else None,
    )


def build_from_dims(cfg: ExperimentConfig, dims: dict) -> torch.nn.Module:
    """The graph model a run trained, from the input_dims its checkpoint records."""
    return build_graph_model(
        cfg, dims["num_ids"], dims["node_dim"], dims["edge_dim"], bool(dims.get("edge_readout", False))
    )


def wants_edge_readout(cfg: ExperimentConfig, has_edge_labels: bool) -> bool:
    """A GAT classifies edges too when its graphs label them and the knob allows it."""
    return cfg.model_architecture == "GAT" and cfg.model_config.edge_readout and has_edge_labels


def build_q_network(cfg: ExperimentConfig, state_dim: int) -> QNetwork:
    s = cfg.model_size_config
    return QNetwork(
        state_dim=state_dim,
        num_actions=cfg.learning_config.dqn.actions,
        hidden_dim=s.hidden_dim,
        num_layers=s.num_layers,
    )


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def nominal_parameter_count(cfg: ExperimentConfig) -> tuple[int, str]:
    """Parameters of the configured model before any data is read, and what they exclude.

    The node-identity embedding (CAN IDs) grows with the training vocabulary, so it is counted
    for the UNK row only; metrics.json has the exact count of a trained run.
    """
    from kdgat.data.registry import MODALITIES

    if cfg.model_architecture == "DQN":
        return count_parameters(build_q_network(cfg, len(STATE_FEATURES))), "exact"
    modality = MODALITIES[cfg.modality].variant(cfg.dataset_config)
    node_dim, edge_dim = modality.widths
    if cfg.learning_type == "fusion":
        node_dim += cfg.model_size_config.latent_dim + 3  # frozen VGAE latent mean and three errors
    edge_readout = wants_edge_readout(cfg, has_edge_labels=modality.labels_edges)
    model = build_graph_model(cfg, 1, node_dim, edge_dim, edge_readout)
    if not modality.learns_identity:
        return count_parameters(model), "exact"
    per_id = cfg.model_size_config.embedding_dim
    if cfg.model_architecture == "VGAE":
        per_id += 2 * (cfg.model_size_config.latent_dim + 1)  # ID and neighbourhood decoders
    return count_parameters(model), f"+ {per_id} per {modality.identity} in the training vocabulary"
