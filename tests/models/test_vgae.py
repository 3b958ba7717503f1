"""The VGAE's anomaly-score pooling and its two feature decoders, on hand-made graphs."""

import json
from pathlib import Path

import pytest
import torch

from configs import ExperimentConfig, ModelConfig
from kdgat.config.codec import load_yaml
from kdgat.config.resolve import resolve
from kdgat.data.graphset import GraphBatch
from kdgat.models import build_graph_model
from kdgat.models.vgae import graph_scores
from tests.helpers import run_train


def test_graph_scores_pool_node_errors_as_asked() -> None:
    errors = torch.tensor([1.0, 2.0, 3.0, 4.0])
    batch = torch.tensor([0, 0, 0, 1])
    assert graph_scores(errors, batch, 2, "mean").tolist() == [2.0, 4.0]
    assert graph_scores(errors, batch, 2, "mean_max").tolist() == [5.0, 8.0]  # mean + max
    assert graph_scores(errors, batch, 2).tolist() == [5.0, 8.0]  # CAN's default
    with pytest.raises(ValueError, match="unknown score pooling 'median'"):
        graph_scores(errors, batch, 2, "median")


def _vgae(decoder: str) -> torch.nn.Module:
    cfg = ExperimentConfig(
        learning_type="unsupervised",
        model_architecture="VGAE",
        training_mode="normals_only",
        model_size="tiny",
        model_config=ModelConfig(vgae_decoder=decoder),
    )
    cfg = resolve(cfg)  # fills the size's widths
    torch.manual_seed(0)
    return build_graph_model(cfg, num_ids=5, node_dim=3, edge_dim=1).eval()


def _reconstruction(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One window of four nodes (IDs 1-4) and no edges."""
    no_edges = torch.zeros(2, 0, dtype=torch.long)
    one_graph = torch.zeros(4, dtype=torch.long)
    batch = GraphBatch(
        x=x,
        node_id=torch.arange(1, 5),
        node_label=one_graph,
        edge_index=no_edges,
        edge_index_local=no_edges,
        edge_attr=torch.zeros(0, 1),
        batch=one_graph,
        node_ptr=torch.tensor([0, 4]),
        edge_ptr=torch.tensor([0, 0]),
        y=torch.zeros(1, dtype=torch.long),
    )
    return model(batch).x_hat


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


@pytest.mark.slow
def test_the_benchmarks_plant_recipe_trains_on_the_synthetic_plant(tmp_path: Path) -> None:
    """docs/data.md quotes benchmarks/watertreatment.PLANT_VGAE as the BATADAL recipe: it must keep
    parsing and training (fewer epochs and hours here), and config.yaml must record it."""
    from benchmarks.watertreatment import PLANT_VGAE, VGAE

    args = [*VGAE, *PLANT_VGAE, "--modality", "watertreatment", "--device", "cpu", "--training.epochs", "1"]
    for split, hours in (("train", 400), ("val", 300), ("test", 300)):
        args += [f"--dataset-config.watertreatment.synthetic-{split}-hours", str(hours)]
    result = run_train(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run_dir = next((tmp_path / "runs").rglob("run_*"))
    cfg = load_yaml(run_dir / "config.yaml")
    assert cfg.model_config.vgae_decoder == "graph"
    assert cfg.learning_config.vgae.score_pooling == "mean"
    assert cfg.dataset_config.watertreatment.stats == ("last",)
    assert cfg.dataset_config.watertreatment.score_hours == 12
    test = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert test["batadal"]["flag_all"]["S"] == pytest.approx(0.75) and test["auroc"] > 0.7  # it learns
