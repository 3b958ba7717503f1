"""Model construction from a config: each architecture's builder, named in its row of
configs.ARCHITECTURES and imported when a model is built, maps sizes and knobs onto modules."""

import importlib
from typing import Any

import torch

from configs import ARCHITECTURES, ExperimentConfig
from kdgat.config.sizes import sizes
from kdgat.models.dqn import STATE_FEATURES, QNetwork
from kdgat.models.gat import GATClassifier, GATEncoder
from kdgat.models.vgae import VGAE


def builder_of(architecture: str) -> Any:
    """The function a row's "module:function" builder names (cfg, input_dims) -> module."""
    module, _, function = ARCHITECTURES[architecture].builder.partition(":")
    return getattr(importlib.import_module(module), function)


def build_from_dims(cfg: ExperimentConfig, dims: dict) -> torch.nn.Module:
    """The model of cfg's architecture for the input_dims a run records (graph models: num_ids,
    node_dim, edge_dim and edge_readout; the DQN: state_dim)."""
    return builder_of(cfg.model_architecture)(cfg, dims)


def build_graph_model(
    cfg: ExperimentConfig, num_ids: int, node_dim: int, edge_dim: int, edge_readout: bool = False
) -> torch.nn.Module:
    """A graph model of cfg's architecture; edge_readout adds a per-edge head (graphs with edge labels)."""
    dims = {"num_ids": num_ids, "node_dim": node_dim, "edge_dim": edge_dim, "edge_readout": edge_readout}
    return build_from_dims(cfg, dims)


def gat_encoder(cfg: ExperimentConfig, dims: dict) -> GATEncoder:
    """The GATv2 encoder of the GAT classifier and the VGAE."""
    s, m = sizes(cfg), cfg.model_config
    return GATEncoder(
        num_ids=dims["num_ids"],
        node_dim=dims["node_dim"],
        edge_dim=dims["edge_dim"],
        hidden_dim=s.hidden_dim,
        num_layers=s.num_layers,
        heads=s.heads,
        embedding_dim=s.embedding_dim,
        dropout=s.dropout,
        jk_mode=m.jk_mode,
        use_edge_features=m.use_edge_features,
    )


def classifier_head(cfg: ExperimentConfig, dims: dict) -> dict[str, Any]:
    """The keyword arguments of a GraphClassifier on cfg (pooling, head, edge read-out)."""
    s, m = sizes(cfg), cfg.model_config
    return {
        "hidden_dim": s.hidden_dim,
        "dropout": s.dropout,
        "pooling": m.pooling,
        "head_layers": m.head_layers,
        "edge_dim": dims["edge_dim"] if dims.get("edge_readout") else None,
    }


def build_gat(cfg: ExperimentConfig, dims: dict) -> GATClassifier:
    """The GAT classifier (also the fusion GAT, on wider node features)."""
    return GATClassifier(gat_encoder(cfg, dims), **classifier_head(cfg, dims))


def build_vgae(cfg: ExperimentConfig, dims: dict) -> VGAE:
    s, m = sizes(cfg), cfg.model_config
    return VGAE(
        gat_encoder(cfg, dims),
        num_ids=dims["num_ids"],
        node_dim=dims["node_dim"],
        hidden_dim=s.hidden_dim,
        latent_dim=s.latent_dim,
        logvar_clamp=m.logvar_clamp,
        decoder=m.vgae_decoder,
    )


def build_q_network(cfg: ExperimentConfig, state_dim: int) -> QNetwork:
    s = sizes(cfg)
    return QNetwork(
        state_dim=state_dim,
        num_actions=cfg.learning_config.dqn.actions,
        hidden_dim=s.hidden_dim,
        num_layers=s.num_layers,
    )


def build_dqn(cfg: ExperimentConfig, dims: dict) -> QNetwork:
    return build_q_network(cfg, dims["state_dim"])


def wants_edge_readout(cfg: ExperimentConfig, has_edge_labels: bool) -> bool:
    """A model classifies edges too when its architecture has an edge read-out (configs.ARCHITECTURES),
    its graphs label edges and the knob allows it."""
    return (
        ARCHITECTURES[cfg.model_architecture].edge_readout
        and cfg.model_config.edge_readout
        and has_edge_labels
    )


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def nominal_parameter_count(cfg: ExperimentConfig) -> tuple[int, str]:
    """Parameters of the configured model before any data is read, and what they exclude.

    The node-identity embedding (CAN IDs) grows with the training vocabulary, so it is counted
    for the UNK row only; metrics.json has the exact count of a trained run.
    """
    from kdgat.data.registry import MODALITIES

    if cfg.model_architecture == "DQN":  # the agent's input is a state vector, not a graph
        return count_parameters(build_dqn(cfg, {"state_dim": len(STATE_FEATURES)})), "exact"
    modality = MODALITIES[cfg.modality].variant(cfg.dataset_config)
    node_dim, edge_dim = modality.widths
    if cfg.learning_type == "fusion":
        node_dim += sizes(cfg).latent_dim + 3  # frozen VGAE latent mean and three errors
    edge_readout = wants_edge_readout(cfg, has_edge_labels=modality.labels_edges)
    model = build_graph_model(cfg, 1, node_dim, edge_dim, edge_readout)
    if not modality.learns_identity:
        return count_parameters(model), "exact"
    # What one more identity adds (its embedding row; the VGAE's ID and neighbourhood decoders too).
    per_id = count_parameters(build_graph_model(cfg, 2, node_dim, edge_dim, edge_readout)) - count_parameters(
        model
    )
    return count_parameters(model), f"+ {per_id} per {modality.identity} in the training vocabulary"
