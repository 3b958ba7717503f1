"""Which combinations of the seven levels can run; a refusal says what, why and what would run."""

from configs import (
    ARCHITECTURES,
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
        raise ConfigError(_wrong_learning_type(arch, learning))
    _check_training_mode(arch, learning, mode)
    _check_distillation(arch, size, distill)


def _names(archs: tuple[str, ...] | list[str]) -> str:
    return " or ".join(archs)


def _wrong_learning_type(arch: str, learning: str) -> str:
    fit = [k for k, v in LEARNING_ARCHITECTURES.items() if arch in v]
    why = {
        "unsupervised": "unsupervised learning needs a reconstruction model",
        "classifier": "a classifier is a supervised graph model (a reinforcement-learning DQN "
        "classifier is not built)",
        "fusion": "fusion combines VGAE and GAT outputs with a DQN agent or a graph classifier over them",
    }[learning]
    return (
        f"model_architecture={arch!r} cannot do learning_type={learning!r}: {why}. "
        f"Use --model-architecture {_names(LEARNING_ARCHITECTURES[learning])}"
        + (f", or --learning-type {_names(fit)} with {arch}." if fit else ".")
    )


def _check_training_mode(arch: str, learning: str, mode: str) -> None:
    spec, unsupervised = ARCHITECTURES[arch], _names(LEARNING_ARCHITECTURES["unsupervised"])
    if mode == "normals_only" and learning != "unsupervised":
        raise ConfigError(
            f"training_mode='normals_only' with learning_type={learning!r}: training on benign "
            f"graphs only leaves a supervised model with one class. Use --training-mode "
            f"all_samples{' or curriculum_classifier' if spec.curriculum else ''}, or "
            f"--learning-type unsupervised --model-architecture {unsupervised}."
        )
    if mode == "curriculum_classifier" and not spec.curriculum:
        ordered = [a for a, s in ARCHITECTURES.items() if s.curriculum]
        raise ConfigError(
            f"training_mode='curriculum_classifier' with model_architecture={arch!r}: the "
            f"curriculum orders graphs for a graph classifier ({', '.join(ordered)}) by VGAE difficulty. "
            f"Use --training-mode "
            f"{'all_samples or normals_only' if learning == 'unsupervised' else 'all_samples'}."
        )


def _check_distillation(arch: str, size: str, distill: str) -> None:
    spec = ARCHITECTURES[arch]
    if distill == "no":
        return
    if size not in STUDENT_SIDE_SIZES:
        raise ConfigError(
            f"distillation={distill!r} with model_size={size!r}: distillation trains a smaller "
            f"student from a teacher-size model. Use --model-size {' / '.join(STUDENT_SIDE_SIZES)}, "
            f"or --distillation no."
        )
    if not spec.teachers:
        raise ConfigError(
            f"distillation={distill!r} with model_architecture={arch!r}: no architecture may teach it "
            f"(its row in configs.ARCHITECTURES names no teachers). Use --distillation no."
        )
    if distill == "topology_preserving" and not spec.topology:
        graph = [a for a, s in ARCHITECTURES.items() if s.topology]
        raise ConfigError(
            f"distillation='topology_preserving' with model_architecture={arch!r}: it matches the "
            f"teacher's node neighbourhoods and graph-embedding geometry, and the {arch} has no node "
            f"embeddings (the DQN agent sees one state vector per window, no graph). Use --distillation "
            f"standard for the {arch}, or topology_preserving with --model-architecture {_names(graph)}."
        )


def levels_of(cfg: ExperimentConfig) -> dict[str, str]:
    """The seven levels that name this experiment, level -> value."""
    return {level: getattr(cfg, level) for level in LEVELS}
