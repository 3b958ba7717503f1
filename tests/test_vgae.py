"""The VGAE's anomaly-score pooling and its two feature decoders, on hand-made graphs."""

import pytest
import torch

import configs
from configs import ExperimentConfig, ModelConfig
from kdgat.models import build_graph_model
from kdgat.models.vgae import graph_scores


def test_graph_scores_pool_node_errors_as_asked() -> None:
    errors = torch.tensor([1.0, 2.0, 3.0, 4.0])
    batch = torch.tensor([0, 0, 0, 1])
    assert graph_scores(errors, batch, "mean").tolist() == [2.0, 4.0]
    assert graph_scores(errors, batch, "mean_max").tolist() == [5.0, 8.0]  # mean + max
    assert graph_scores(errors, batch).tolist() == [5.0, 8.0]  # CAN's default
    with pytest.raises(ValueError, match="unknown score pooling 'median'"):
        graph_scores(errors, batch, "median")


def _vgae(decoder: str) -> torch.nn.Module:
    cfg = ExperimentConfig(
        learning_type="unsupervised",
        model_architecture="VGAE",
        training_mode="normals_only",
        model_size="tiny",
        model_config=ModelConfig(vgae_decoder=decoder),
    )
    cfg = configs.resolve(cfg)  # fills the size's widths
    torch.manual_seed(0)
    return build_graph_model(cfg, num_ids=5, node_dim=3, edge_dim=1).eval()


def _reconstruction(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    no_edges = torch.zeros(2, 0, dtype=torch.long)
    out = model(x, no_edges, torch.zeros(0, 1), torch.zeros(4, dtype=torch.long), torch.arange(1, 5))
    return out.x_hat


@pytest.mark.parametrize("decoder", ["node", "graph"])
def test_only_the_graph_decoder_explains_a_node_by_the_others(decoder: str) -> None:
    """Four nodes, no edges: the only path from node 0 to node 3's reconstruction is the window's
    pooled latent, which the 'graph' decoder reads and the 'node' decoder does not."""
    model = _vgae(decoder)
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(1))
    moved = x.clone()
    moved[0] += 5.0
    with torch.no_grad():
        before, after = _reconstruction(model, x), _reconstruction(model, moved)
    assert not torch.allclose(before[0], after[0])
    changed = not torch.allclose(before[3], after[3])
    assert changed == (decoder == "graph")
