"""Every row's builder, and the GraphSAGE classifier on hand-made graphs: the GAT's layout on
SAGEConv layers, which read each node's neighbourhood but no edge features."""

import dataclasses

import pytest
import torch

from configs import ARCHITECTURES, ExperimentConfig, ModelConfig
from kdgat.config.resolve import resolve
from kdgat.data.graphset import GraphBatch
from kdgat.models import build_from_dims, builder_of, wants_edge_readout
from kdgat.models.dqn import STATE_FEATURES
from kdgat.models.gat import GATClassifier
from kdgat.models.sage import SAGEClassifier

DIMS = {"num_ids": 6, "node_dim": 3, "edge_dim": 2}


def config(arch: str, **changes: object) -> ExperimentConfig:
    learning = ARCHITECTURES[arch].learning_types[0]
    mode = "normals_only" if learning == "unsupervised" else "all_samples"
    cfg = ExperimentConfig(
        learning_type=learning, model_architecture=arch, training_mode=mode, model_size="tiny"
    )
    return resolve(dataclasses.replace(cfg, **changes))  # type: ignore[arg-type]


def two_graphs(edge_attr: torch.Tensor | None = None, x: torch.Tensor | None = None) -> GraphBatch:
    """Graph 0: nodes 0-2 in a directed ring; graph 1: nodes 3-4, one edge each way."""
    edge_index = torch.tensor([[0, 1, 2, 3, 4], [1, 2, 0, 4, 3]])
    batch = torch.tensor([0, 0, 0, 1, 1])
    return GraphBatch(
        x=torch.randn(5, 3, generator=torch.Generator().manual_seed(0)) if x is None else x,
        node_id=torch.tensor([1, 2, 3, 4, 5]),
        node_label=torch.zeros(5, dtype=torch.long),
        edge_index=edge_index,
        edge_index_local=torch.tensor([[0, 1, 2, 0, 1], [1, 2, 0, 1, 0]]),
        edge_attr=torch.zeros(5, 2) if edge_attr is None else edge_attr,
        batch=batch,
        node_ptr=torch.tensor([0, 3, 5]),
        edge_ptr=torch.tensor([0, 3, 5]),
        y=torch.tensor([0, 1]),
    )


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_every_rows_builder_is_imported_on_use_and_builds_its_model(arch: str) -> None:
    cfg = config(arch)
    builder = builder_of(arch)
    assert f"{builder.__module__}:{builder.__name__}" == ARCHITECTURES[arch].builder
    torch.manual_seed(0)
    if arch == "DQN":  # the agent reads one state vector per window, not a graph
        q_values = build_from_dims(cfg, {"state_dim": len(STATE_FEATURES)})(
            torch.zeros(4, len(STATE_FEATURES))
        )
        assert q_values.shape == (4, cfg.learning_config.dqn.actions)
        return
    out = build_from_dims(cfg, DIMS).eval()(two_graphs())
    if arch == "VGAE":
        assert out.mu.shape == (5, cfg.model_size_config.latent_dim)
    else:
        assert out.shape == (2, 2)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_edge_readout_follows_the_row_the_knob_and_the_data(arch: str) -> None:
    cfg = config(arch)
    assert wants_edge_readout(cfg, has_edge_labels=True) == ARCHITECTURES[arch].edge_readout
    assert not wants_edge_readout(cfg, has_edge_labels=False)
    off = dataclasses.replace(cfg, model_config=ModelConfig(edge_readout=False))
    assert not wants_edge_readout(off, has_edge_labels=True)


def test_sage_has_the_gat_layout_around_its_own_layers() -> None:
    """Same embedding, input layer, LayerNorms, jumping knowledge, head and edge read-out; only the
    message-passing layers differ (SAGEConv: a map of the neighbours' mean and one of the node)."""
    dims = {**DIMS, "edge_readout": True}
    sage, gat = build_from_dims(config("SAGE"), dims), build_from_dims(config("GAT"), dims)
    assert isinstance(sage, SAGEClassifier) and not isinstance(sage, GATClassifier)
    keys = {name: set() for name in ("sage", "gat")}
    for name, model in (("sage", sage), ("gat", gat)):
        for key, value in model.state_dict().items():
            if not key.startswith("encoder.convs."):
                keys[name].add((key, tuple(value.shape)))
    assert keys["sage"] == keys["gat"]
    layer = {
        k.removeprefix("encoder.convs.0.") for k in sage.state_dict() if k.startswith("encoder.convs.0.")
    }
    assert layer == {"lin_l.weight", "lin_l.bias", "lin_r.weight"}


def test_sage_reads_the_neighbourhood_but_no_edge_features() -> None:
    torch.manual_seed(0)
    sage = build_from_dims(config("SAGE"), DIMS).eval()
    torch.manual_seed(0)
    gat = build_from_dims(config("GAT"), DIMS).eval()
    other_edges = two_graphs(edge_attr=torch.randn(5, 2, generator=torch.Generator().manual_seed(1)))
    with torch.no_grad():
        assert torch.equal(sage(two_graphs()), sage(other_edges))  # use_edge_features cannot reach it
        assert not torch.allclose(gat(two_graphs()), gat(other_edges))  # the GAT's attention reads them
        x = two_graphs().x.clone()
        x[0] += 3.0  # node 0 of graph 0 only
        nodes, moved = sage.encoder(two_graphs()), sage.encoder(two_graphs(x=x))
    assert not torch.allclose(nodes[1], moved[1])  # node 1 hears its in-neighbour 0
    assert torch.equal(nodes[3:], moved[3:])  # graph 1 has no path from node 0


def test_sage_edge_readout_scores_every_edge() -> None:
    sage = build_from_dims(config("SAGE"), {**DIMS, "edge_readout": True}).eval()
    batch = two_graphs()
    with torch.no_grad():
        nodes, graphs, logits = sage.forward_parts(batch)
        edges = sage.edge_logits(nodes, batch)
    assert edges.shape == (5, 2) and logits.shape == (2, 2) and graphs.shape[0] == 2
