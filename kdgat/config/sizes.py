"""A resolved config's model sizes, typed as set.

ModelSizeConfig's fields are Optional: unset means "from --model-size", and resolve() fills them
from SIZE_TABLE. Model builders read them through sizes(), which a type checker sees as ints and
floats and which refuses a config resolve() has not filled, instead of passing None to a layer.
"""

import dataclasses

from configs import ConfigError, ExperimentConfig


@dataclasses.dataclass(frozen=True)
class Sizes:
    """model_size_config with every field set."""

    hidden_dim: int
    num_layers: int
    heads: int
    latent_dim: int
    embedding_dim: int
    dropout: float


def sizes(cfg: ExperimentConfig) -> Sizes:
    """cfg's model sizes; a ConfigError for a config resolve() has not filled."""
    values = dataclasses.asdict(cfg.model_size_config)
    unset = [name for name, value in values.items() if value is None]
    if unset:
        raise ConfigError(
            f"model_size_config.{unset[0]} is unset: resolve() the config before building a model."
        )
    return Sizes(**values)
