"""What each KD-GAT stage learns: the graph stage (VGAE, GAT, fusion GAT), the DQN fusion stage,
fusion inputs, distillation and the DQN agent; each turns prepared graphs into a trained model and
its metrics."""

from collections.abc import Callable
from typing import Any

from configs import ExperimentConfig


def stage_for(cfg: ExperimentConfig) -> Callable[..., dict[str, Any]]:
    """The stage function that trains cfg's architecture."""
    # Imported here: `kdgat.stages.fusion` and friends should not pull in both stages' imports.
    from kdgat.stages.dqn_stage import train_dqn_stage
    from kdgat.stages.graph_stage import train_graph_stage

    return train_dqn_stage if cfg.model_architecture == "DQN" else train_graph_stage
