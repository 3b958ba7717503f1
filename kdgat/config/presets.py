"""Preset names <-> levels: a preset names the seven levels of an experiment, joined by '_'."""

import itertools

from configs import LEVEL_CHOICES, LEVELS, ConfigError, ExperimentConfig
from kdgat.config.codec import with_fields
from kdgat.config.levels import check_levels, levels_of


def preset_name(cfg: ExperimentConfig) -> str:
    """`{modality}_{dataset}_{learning_type}_{arch}_{size}_{distillation}_{training_mode}`."""
    return "_".join(str(v).lower() for v in levels_of(cfg).values())


def parse_preset(name: str) -> dict[str, str]:
    """Split a preset name into its seven levels (values may themselves contain '_')."""

    def match(rest: str, levels: tuple[str, ...]) -> list[str] | None:
        if not levels:
            return [] if rest == "" else None
        for value in LEVEL_CHOICES[levels[0]]:
            token = value.lower()
            if rest == token and len(levels) == 1:
                return [value]
            if rest.startswith(token + "_"):
                tail = match(rest[len(token) + 1 :], levels[1:])
                if tail is not None:
                    return [value, *tail]
        return None

    found = match(name.lower(), LEVELS)
    if found is None:
        raise ConfigError(
            f"preset {name!r} is not of the form "
            "{modality}_{dataset}_{learning_type}_{arch}_{size}_{distillation}_{training_mode}, "
            f"e.g. automotive_hcrlsa_classifier_gat_student_no_all_samples. "
            f"`python train.py --list-presets` prints every valid name."
        )
    return dict(zip(LEVELS, found, strict=True))


def config_from_preset(name: str, base: ExperimentConfig | None = None) -> ExperimentConfig:
    levels = parse_preset(name)
    check_levels(levels)
    return with_fields(base or ExperimentConfig(), levels)


def all_level_combinations() -> list[dict[str, str]]:
    return [
        dict(zip(LEVELS, combo, strict=True))
        for combo in itertools.product(*(LEVEL_CHOICES[level] for level in LEVELS))
    ]


def valid_presets() -> list[str]:
    """Every preset name whose levels pass the compatibility rules."""
    names = []
    for levels in all_level_combinations():
        try:
            check_levels(levels)
        except ConfigError:
            continue
        names.append("_".join(v.lower() for v in levels.values()))
    return names
