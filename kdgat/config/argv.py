"""The options train.py and launch.py both read before the config flags, and the base config
they give: --config PATH (a saved config.yaml), then --preset NAME (its levels) over it.

Both entry points start tyro from this base, so `--preset X --training.lr 1e-3` means the same in
either. Imports only configs: launch.py stays torch-free.
"""

import argparse
from collections.abc import Callable
from pathlib import Path

from configs import ExperimentConfig
from kdgat.config.codec import load_yaml
from kdgat.config.presets import config_from_preset
from kdgat.config.recipes import LEVEL_FIELDS, Recipe, apply_recipe, chosen_recipe, get_field, with_settings


def pre_parser() -> argparse.ArgumentParser:
    """--preset and --config, read with parse_known_args before tyro sees the rest."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--preset")
    parser.add_argument("--config", type=Path)
    return parser


def base_config(options: argparse.Namespace, recipe: Recipe | None = None) -> ExperimentConfig:
    """The default config, or the one in --config; a recipe's values over it if given; the
    --preset levels over that. Unresolved: the flags tyro parses on top come first."""
    base = load_yaml(options.config) if options.config else ExperimentConfig()
    if recipe is not None:
        base = with_settings(base, recipe)
    if options.preset:
        base = config_from_preset(options.preset, base)
    return base


def parse_with_recipe(
    parse: Callable[[ExperimentConfig], ExperimentConfig], options: argparse.Namespace
) -> ExperimentConfig:
    """The flags parsed over the base config, with the dataset recipe in every field they leave
    unset. A field is set when the flags give it the same value over the plain base and over the
    recipe's (parse is run twice only where a recipe exists). A --config file is returned as
    parsed: it carries its recipe's values and name already."""
    cfg = parse(base_config(options))
    if options.config:
        return cfg
    recipe = chosen_recipe(cfg)
    if recipe is None:  # resolve records 'none' (or, for a launch grid point, its dataset's recipe)
        return cfg
    over = parse(base_config(options, recipe))
    fields = (*recipe.settings, *LEVEL_FIELDS)
    user_set = {path for path in fields if get_field(cfg, path) == get_field(over, path)}
    return apply_recipe(cfg, user_set)
