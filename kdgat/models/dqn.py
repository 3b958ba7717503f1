"""Q-network of the DQN fusion agent: fusion state -> one Q-value per fusion weight alpha."""

import torch
from torch import nn


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
