"""Fusion of a frozen VGAE and a frozen GAT.

Feature level (fusion GAT): every node's features are extended with the VGAE's latent mean and
its three reconstruction errors. Decision level (DQN): per graph, a state built from VGAE errors
and latent statistics plus GAT probability and embedding statistics (columns:
kdgat.models.dqn.STATE_FEATURES), standardised by StateScaler; the agent picks a fusion
weight alpha and the fused probability alpha * p_gat + (1 - alpha) * p_vgae decides.
"""

import dataclasses

import numpy as np
import torch

from configs import ExperimentConfig
from kdgat.data.graphs import Graphs
from kdgat.data.graphset import GraphBatch, gather_graphs
from kdgat.models.dqn import QNetwork
from kdgat.models.gat import GraphClassifier
from kdgat.models.vgae import VGAE
from kdgat.training.tasks import VGAETask


@torch.no_grad()
def vgae_node_extras(vgae: VGAE, batch: GraphBatch) -> torch.Tensor:
    """Per node: the VGAE's latent mean and its feature / ID / neighbourhood errors on batch."""
    out = vgae(batch)
    errors = vgae.node_errors(out, batch)
    return torch.cat(
        [out.mu.float(), errors.feature[:, None], errors.can_id[:, None], errors.neighbour[:, None]], 1
    )


@torch.no_grad()
def augment_with_vgae(graphs: Graphs, vgae: VGAE, device: torch.device, batch_size: int = 256) -> Graphs:
    """Node features + VGAE latent mean + per-node feature / ID / neighbourhood errors."""
    extra = []
    for index in torch.arange(len(graphs)).split(batch_size):
        batch = gather_graphs(graphs, index).to(device)
        extra.append(vgae_node_extras(vgae, batch).cpu())
    width = vgae.mu.out_features + 3
    added = torch.cat(extra) if extra else torch.zeros(0, width)
    return graphs.with_node_extras(added)


@dataclasses.dataclass
class FusionInputs:
    """Per-graph inputs of the DQN: state matrix and the two models' attack probabilities."""

    state: np.ndarray
    p_gat: np.ndarray
    p_vgae: np.ndarray
    vgae_score: np.ndarray
    y: np.ndarray
    attack_type: list[str]


@torch.no_grad()
def fusion_inputs(
    cfg: ExperimentConfig,
    graphs: Graphs,
    vgae: VGAE,
    vgae_threshold: float,
    gat: GraphClassifier,
    device: torch.device,
) -> FusionInputs:
    task = VGAETask(cfg, graphs)
    rows, p_gat, scores = [], [], []
    for index in torch.arange(len(graphs)).split(cfg.training_config.batch_size):
        batch = gather_graphs(graphs, index).to(device)
        out = vgae(batch)
        errors = vgae.node_errors(out, batch)
        count = torch.bincount(batch.batch, minlength=len(index)).clamp_min(1).float()

        def per_graph(values: torch.Tensor, batch=batch, count=count, index=index) -> torch.Tensor:
            return torch.zeros(len(index), device=values.device).index_add_(0, batch.batch, values) / count

        score = task.scores(vgae, batch)
        mu = out.mu.float()
        embedding = gat.embed_graphs(batch)
        prob = torch.softmax(gat.head(embedding).float(), -1)
        entropy = -(prob * prob.clamp_min(1e-12).log()).sum(-1)
        rows.append(
            torch.stack(
                [
                    per_graph(errors.feature),
                    per_graph(errors.can_id),
                    per_graph(errors.neighbour),
                    torch.log(score.clamp_min(1e-12) / max(vgae_threshold, 1e-12)),
                    per_graph(mu.abs().mean(1)),
                    per_graph(mu.std(1)),
                    prob[:, 1],
                    entropy,
                    embedding.float().norm(dim=1),
                    embedding.float().mean(1),
                    embedding.float().std(1),
                ],
                1,
            ).cpu()
        )
        p_gat.append(prob[:, 1].cpu())
        scores.append(score.cpu())
    state = torch.cat(rows).double().numpy()
    vgae_score = torch.cat(scores).double().numpy()
    sharp = cfg.learning_config.dqn.vgae_sharpness
    p_vgae = 1.0 / (1.0 + np.exp(-sharp * np.log(np.maximum(vgae_score, 1e-12) / max(vgae_threshold, 1e-12))))
    return FusionInputs(
        state=state,
        p_gat=torch.cat(p_gat).double().numpy(),
        p_vgae=p_vgae,
        vgae_score=vgae_score,
        y=graphs.y.numpy(),
        attack_type=list(graphs.attack_type),
    )


def fused_probability(inputs: FusionInputs, alpha: np.ndarray | float) -> np.ndarray:
    return alpha * inputs.p_gat + (1.0 - alpha) * inputs.p_vgae


class StateScaler:
    """Standardises fusion states with statistics of the training states."""

    def __init__(self, train_state: np.ndarray) -> None:
        self.mean = train_state.mean(0)
        self.std = np.maximum(train_state.std(0), 1e-6)

    def state_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_state(cls, state: dict[str, list[float]]) -> "StateScaler":
        scaler = cls.__new__(cls)
        scaler.mean, scaler.std = np.asarray(state["mean"]), np.asarray(state["std"])
        return scaler

    def __call__(self, state: np.ndarray) -> torch.Tensor:
        return torch.from_numpy((state - self.mean) / self.std).float()


def alphas(cfg: ExperimentConfig) -> np.ndarray:
    """The agent's actions: fusion weights of the GAT probability, evenly spaced in [0, 1]."""
    return np.linspace(0.0, 1.0, cfg.learning_config.dqn.actions)


def greedy_alpha(q_net: QNetwork, states: torch.Tensor, cfg: ExperimentConfig) -> np.ndarray:
    """The fusion weight the agent picks for each (scaled) state."""
    with torch.no_grad():
        return alphas(cfg)[q_net(states).argmax(1).numpy()]
