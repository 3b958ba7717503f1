"""Q-network of the DQN fusion agent: fusion state -> one Q-value per fusion weight alpha."""

import torch
from torch import nn

# The columns of the fusion state the Q-network reads (built by kdgat.stages.fusion.fusion_inputs). Here,
# beside the network, so that a parameter count needs no stage module.
STATE_FEATURES: tuple[str, ...] = (
    "vgae_feature_error",
    "vgae_id_error",
    "vgae_neighbour_error",
    "vgae_log_score_over_threshold",
    "vgae_latent_abs_mean",
    "vgae_latent_std",
    "gat_p_attack",
    "gat_entropy",
    "gat_embedding_norm",
    "gat_embedding_mean",
    "gat_embedding_std",
)


class QNetwork(nn.Module):
    def __init__(self, *, state_dim: int, num_actions: int, hidden_dim: int, num_layers: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = state_dim
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden_dim), nn.ReLU()]
            width = hidden_dim
        layers.append(nn.Linear(width, num_actions))
        self.net = nn.Sequential(*layers)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return self.net(state)
