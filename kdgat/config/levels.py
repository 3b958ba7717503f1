"""Which combinations of the seven levels can run; a refusal says what, why and what would run."""

from configs import (
    LEARNING_ARCHITECTURES,
    LEVEL_CHOICES,
    LEVELS,
    MODALITY_DATASETS,
    STUDENT_SIDE_SIZES,
    ConfigError,
    ExperimentConfig,
)


def check_levels(levels: dict[str, str]) -> None:
    """Raise ConfigError if this combination of the seven levels cannot run, saying why."""
    for level in LEVELS:
        if levels[level] not in LEVEL_CHOICES[level]:
            raise ConfigError(
                f"{level}={levels[level]!r} is not a known value. "
                f"Choose one of: {', '.join(LEVEL_CHOICES[level])}."
            )
    modality, dataset = levels["modality"], levels["dataset"]
    learning, arch = levels["learning_type"], levels["model_architecture"]
    size, distill, mode = levels["model_size"], levels["distillation"], levels["training_mode"]
    datasets = MODALITY_DATASETS[modality]
    if dataset not in datasets:
        owners = [m for m, names in MODALITY_DATASETS.items() if dataset in names]
        raise ConfigError(
            f"dataset={dataset!r} does not belong to modality={modality!r}. "
            + (f"Use --modality {' or '.join(owners)} for it, or c" if owners else "C")
            + f"hoose a dataset of {modality}: {', '.join(datasets)}."
        )
    if arch not in LEARNING_ARCHITECTURES[learning]:
        fit = [k for k, v in LEARNING_ARCHITECTURES.items() if arch in v]
        why = {
            "unsupervised": "unsupervised learning needs a reconstruction model",
            "classifier": "the classifier is a supervised GAT (a reinforcement-learning DQN "
            "classifier is not built)",
            "fusion": "fusion combines VGAE and GAT outputs with a DQN agent or a fusion GAT",
        }[learning]
        raise ConfigError(
            f"model_architecture={arch!r} cannot do learning_type={learning!r}: {why}. "
            f"Use --model-architecture {' or '.join(LEARNING_ARCHITECTURES[learning])}"
            + (f", or --learning-type {' or '.join(fit)} with {arch}." if fit else ".")
        )
    if mode == "normals_only" and learning != "unsupervised":
        raise ConfigError(
            f"training_mode='normals_only' with learning_type={learning!r}: training on benign "
            f"graphs only leaves a supervised model with one class. Use --training-mode "
            f"all_samples{' or curriculum_classifier' if arch == 'GAT' else ''}, or "
            f"--learning-type unsupervised --model-architecture VGAE."
        )
    if mode == "curriculum_classifier" and arch != "GAT":
        raise ConfigError(
            f"training_mode='curriculum_classifier' with model_architecture={arch!r}: the "
            f"curriculum orders graphs for a GAT classifier by VGAE difficulty. Use --training-mode "
            f"{'all_samples or normals_only' if learning == 'unsupervised' else 'all_samples'}."
        )
    if distill != "no" and size not in STUDENT_SIDE_SIZES:
        raise ConfigError(
            f"distillation={distill!r} with model_size={size!r}: distillation trains a smaller "
            f"student from a teacher-size model. Use --model-size {' / '.join(STUDENT_SIDE_SIZES)}, "
            f"or --distillation no."
        )
    if distill == "topology_preserving" and arch == "DQN":
        raise ConfigError(
            "distillation='topology_preserving' with model_architecture='DQN': it matches the "
            "teacher's node neighbourhoods and graph-embedding geometry, and the DQN agent sees one "
            "state vector per window, no graph. Use --distillation standard (Q-value matching) for "
            "the DQN, or topology_preserving with --model-architecture GAT or VGAE."
        )


def levels_of(cfg: ExperimentConfig) -> dict[str, str]:
    """The seven levels that name this experiment, level -> value."""
    return {level: getattr(cfg, level) for level in LEVELS}
