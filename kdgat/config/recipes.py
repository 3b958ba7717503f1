"""Dataset recipes: the knobs a (modality, dataset) needs beyond the global defaults, in one table.

A recipe names the levels it is for and the fields it sets. It applies (`--recipe auto`, the
default) when every level it names is either left unset or set to its value, and then fills every
field the user did not set. Its name is written into config.yaml (`recipe: NAME`) beside the values
it set, so a rerun with --config stays exact even if this table changes; `--recipe none` switches
it off. The run prints which recipe applied and what it set.

What counts as "set": on the command line, a flag that is given (train.py and launch.py parse the
flags over both bases and compare); from Python (`run_experiment(ExperimentConfig(...))`) and for
each point of a launch grid, a knob that differs from its global default, and every level (a
config built with the default levels means them: a BATADAL GAT stays a GAT).
"""

import dataclasses
from collections.abc import Set as AbstractSet
from typing import Any

from configs import ConfigError, ExperimentConfig

LEVEL_FIELDS = ("learning_type", "model_architecture", "training_mode")
WATER = "dataset_config.watertreatment."


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    modality: str
    dataset: str
    why: str
    settings: dict[str, Any]
    """Dotted field paths -> values; level fields among them decide whether the recipe applies."""


# The plant: an autoencoder over the joint readings is what works (docs/data.md#the-plant-recipe,
# with the measurements behind each knob).
_PLANT_VGAE: dict[str, Any] = {
    "learning_type": "unsupervised",
    "model_architecture": "VGAE",
    "training_mode": "normals_only",
    "model_config.vgae_decoder": "graph",
    WATER + "stats": ("last",),
    "model_size_config.hidden_dim": 128,
    "model_size_config.latent_dim": 24,
    "model_size_config.num_layers": 1,
    "learning_config.vgae.id_weight": 0.0,
    "learning_config.vgae.neighbour_weight": 0.0,
    "learning_config.vgae.score_pooling": "mean",
    "learning_config.vgae.kl_weight": 0.0,
    WATER + "score_hours": 12,
    "training_config.epochs": 50,
    "training_config.patience": 10,
}

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            "batadal_plant_vgae",
            "watertreatment",
            "batadal",
            "a window-bottleneck VGAE over the hourly readings, trained attack-free: S 0.946 on "
            "BATADAL's test set, where the default GAT scores 0.655 and flagging every hour 0.75",
            _PLANT_VGAE,
        ),
        Recipe(
            "synthetic_plant_vgae",
            "watertreatment",
            "synthetic",
            "the VGAE learns the plant from normal hours and scores test F1 0.56 (student, 8 epochs); the "
            "default GAT, fitted to its training block's attacks, 0.05; flagging every hour 0.14",
            {level: _PLANT_VGAE[level] for level in LEVEL_FIELDS},
        ),
    )
}


def recipe_for(cfg: ExperimentConfig) -> Recipe | None:
    """The recipe of this config's modality and dataset, if the table has one."""
    for recipe in RECIPES.values():
        if (recipe.modality, recipe.dataset) == (cfg.modality, cfg.dataset):
            return recipe
    return None


def get_field(cfg: Any, path: str) -> Any:
    for part in path.split("."):
        cfg = getattr(cfg, part)
    return cfg


def set_field(cfg: Any, path: str, value: Any) -> Any:
    """A copy of the (nested) dataclass with one dotted field replaced."""
    head, _, rest = path.partition(".")
    if not rest:
        return dataclasses.replace(cfg, **{head: value})
    return dataclasses.replace(cfg, **{head: set_field(getattr(cfg, head), rest, value)})


def with_settings(
    cfg: ExperimentConfig, recipe: Recipe, keep: AbstractSet[str] = frozenset()
) -> ExperimentConfig:
    """cfg with the recipe's values, except in the fields of `keep`; records the recipe's name."""
    for path, value in recipe.settings.items():
        if path not in keep:
            cfg = set_field(cfg, path, value)
    return dataclasses.replace(cfg, recipe=recipe.name)


def chosen_recipe(cfg: ExperimentConfig) -> Recipe | None:
    """The recipe `cfg.recipe` asks for: the table's for auto, none for none, or one by name."""
    if cfg.recipe == "none":
        return None
    if cfg.recipe == "auto":
        return recipe_for(cfg)
    if cfg.recipe not in RECIPES:
        raise ConfigError(
            f"--recipe {cfg.recipe!r} is not a recipe. Known: {', '.join(RECIPES)}; or auto (the "
            f"table's recipe for the dataset, if any) or none."
        )
    return RECIPES[cfg.recipe]


def conflicting_levels(recipe: Recipe, cfg: ExperimentConfig, user_set: set[str]) -> list[str]:
    """Levels the user set to other values than the recipe's (then the recipe is not for them)."""
    return [
        f"{level}={get_field(cfg, level)}"
        for level in LEVEL_FIELDS
        if level in recipe.settings and level in user_set and get_field(cfg, level) != recipe.settings[level]
    ]


def apply_recipe(cfg: ExperimentConfig, user_set: set[str] | None = None) -> ExperimentConfig:
    """Apply the recipe cfg.recipe asks for to the fields not in user_set (None: the fields still
    at their global default count as unset). The result records the recipe's name, or 'none'.

    An explicitly named recipe whose levels the user contradicts is refused; `auto` then applies
    nothing (the table's recipe is for other levels)."""
    if cfg.recipe in RECIPES and user_set is None:
        return cfg  # a config that already carries a recipe's values (config.yaml, resolved)
    recipe = chosen_recipe(cfg)
    if recipe is None:
        return dataclasses.replace(cfg, recipe="none")
    if user_set is None:
        default = ExperimentConfig()
        # From Python a level is always a choice: a config built with the default levels means them.
        user_set = {p for p in recipe.settings if get_field(cfg, p) != get_field(default, p)}
        user_set |= set(LEVEL_FIELDS)
    conflicts = conflicting_levels(recipe, cfg, user_set)
    if conflicts and cfg.recipe == recipe.name:
        raise ConfigError(
            f"--recipe {recipe.name} is for {', '.join(f'{k}={recipe.settings[k]}' for k in LEVEL_FIELDS)}, "
            f"but {', '.join(conflicts)} was given. Drop those level flags, or use --recipe none."
        )
    if conflicts:
        return dataclasses.replace(cfg, recipe="none")
    return with_settings(cfg, recipe, user_set)


def describe(cfg: ExperimentConfig) -> str | None:
    """One line for the start of a run: which recipe applied, why, and the values it holds."""
    recipe = RECIPES.get(cfg.recipe)
    if recipe is None:
        return None
    held = [f"{p}={get_field(cfg, p)}" for p, v in recipe.settings.items() if get_field(cfg, p) == v]
    return f"recipe {recipe.name} ({recipe.why}; off: --recipe none): {' '.join(held)}"


def flag_of(path: tuple[str, ...]) -> str:
    """('training_config', 'lr') -> '--training.lr': a field's command-line flag (tyro's name for
    that section); also what resolve's range messages name."""
    section = "training" if path[0] == "training_config" else path[0]
    return "--" + ".".join(part.replace("_", "-") for part in (section, *path[1:]))


def as_flags(recipe: Recipe) -> list[str]:
    """The recipe as train.py flags (what docs/data.md quotes and the benchmark passes)."""
    flags = []
    for path, value in recipe.settings.items():
        values = [str(v) for v in value] if isinstance(value, tuple) else [str(value)]
        flags += [flag_of(tuple(path.split("."))), *values]
    return flags
