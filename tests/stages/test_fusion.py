"""The fusion inputs of the DQN are read-outs of frozen models: building them must record no autograd
graph, even from models whose parameters still require grad (Run.model freezes them, but a caller
that passes live models must not pay for, or be handed, a graph)."""

import dataclasses

import torch

from configs import ExperimentConfig
from kdgat.config.resolve import resolve
from kdgat.data.graphset import GraphSet
from kdgat.models import build_graph_model
from kdgat.stages.fusion import fusion_inputs


def _ring_graphs(count: int, nodes: int, node_dim: int, num_ids: int) -> GraphSet:
    """count graphs, each a directed ring of nodes, with random features and alternating labels."""
    generator = torch.Generator().manual_seed(0)
    ring = torch.stack([torch.arange(nodes), (torch.arange(nodes) + 1) % nodes])
    total = count * nodes
    return GraphSet(
        x=torch.randn(total, node_dim, generator=generator),
        node_id=torch.randint(1, num_ids, (total,), generator=generator),
        node_label=torch.zeros(total, dtype=torch.long),
        edge_index=ring.repeat(1, count),
        edge_attr=torch.randn(total, 1, generator=generator),
        node_ptr=torch.arange(count + 1) * nodes,
        edge_ptr=torch.arange(count + 1) * nodes,
        y=torch.arange(count) % 2,
        attack_type=["benign", "attack"] * (count // 2) + ["benign"] * (count % 2),
        source=["ring"] * count,
        frame_start=torch.arange(count),
        frame_stop=torch.arange(count) + 1,
    )


def _model(cfg: ExperimentConfig, **levels: str) -> torch.nn.Module:
    model_cfg = resolve(dataclasses.replace(cfg, **levels))
    return build_graph_model(model_cfg, num_ids=5, node_dim=3, edge_dim=1).eval()


def test_fusion_inputs_build_no_autograd_graph_from_models_that_require_grad() -> None:
    dqn = ExperimentConfig(learning_type="fusion", model_architecture="DQN", model_size="tiny")
    cfg = resolve(dqn)
    torch.manual_seed(0)
    vgae = _model(cfg, learning_type="unsupervised", model_architecture="VGAE", training_mode="normals_only")
    gat = _model(cfg, learning_type="classifier", model_architecture="GAT")
    assert all(p.requires_grad for p in [*vgae.parameters(), *gat.parameters()])
    recorded: list[bool] = []

    def record(module: torch.nn.Module, inputs: tuple, output: object) -> None:
        tensor = output.mu if hasattr(output, "mu") else output
        recorded.append(tensor.requires_grad or tensor.grad_fn is not None)

    hooks = [vgae.register_forward_hook(record), gat.encoder.register_forward_hook(record)]
    hooks.append(gat.head.register_forward_hook(record))
    inputs = fusion_inputs(cfg, _ring_graphs(5, 4, 3, 5), vgae, 1.0, gat, torch.device("cpu"))
    for hook in hooks:
        hook.remove()
    assert recorded and not any(recorded)
    assert inputs.state.shape[0] == inputs.p_gat.shape[0] == 5
