"""The options train.py and launch.py both read before the config flags, and the base config
they give: --config PATH (a saved config.yaml), then --preset NAME (its levels) over it.

Both entry points start tyro from this base, so `--preset X --training.lr 1e-3` means the same in
either. Imports only configs: launch.py stays torch-free.
"""

import argparse
from pathlib import Path

import configs
from configs import ExperimentConfig


def pre_parser() -> argparse.ArgumentParser:
    """--preset and --config, read with parse_known_args before tyro sees the rest."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--preset")
    parser.add_argument("--config", type=Path)
    return parser


def base_config(options: argparse.Namespace) -> ExperimentConfig:
    """The default config, or the one in --config; the --preset levels over it. Unresolved:
    the flags tyro parses on top come first."""
    base = configs.load_yaml(options.config) if options.config else ExperimentConfig()
    if options.preset:
        base = configs.config_from_preset(options.preset, base)
    return base
