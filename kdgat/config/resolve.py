"""Resolving a parsed config: the levels' rules, size-derived fields, `auto` values, and every
knob against its declared range and the rules between knobs."""

import dataclasses
import math
import typing
from typing import Any, Literal

from configs import (
    MODALITY_DATASETS,
    SIZE_TABLE,
    CalibrationThreshold,
    ConfigError,
    ExperimentConfig,
    ModelSizeConfig,
    Range,
    ThresholdMethod,
)
from kdgat.config.levels import check_levels, levels_of
from kdgat.config.recipes import apply_recipe, flag_of


def resolve(cfg: ExperimentConfig) -> ExperimentConfig:
    """Apply the dataset recipe; check levels and ranges; fill size-derived fields. Returns a new,
    complete config."""
    cfg = apply_recipe(cfg)
    check_levels(levels_of(cfg))
    sizes = dataclasses.asdict(cfg.model_size_config)
    for key, value in SIZE_TABLE[cfg.model_size].items():
        if sizes[key] is None:
            sizes[key] = value
    cfg = dataclasses.replace(cfg, model_size_config=ModelSizeConfig(**sizes))
    cfg = _resolve_water_split(cfg)
    cfg = _resolve_threshold(cfg)
    _check_other_modality_knobs(cfg)
    _check_ranges(cfg)
    return cfg


def _resolve_water_split(cfg: ExperimentConfig) -> ExperimentConfig:
    """watertreatment split 'auto' -> the split this learning type can learn from; a supervised
    run on the attack-free competition training file is refused."""
    if cfg.modality != "watertreatment":
        return cfg
    w = cfg.dataset_config.watertreatment
    supervised = cfg.learning_type != "unsupervised"
    if w.split == "competition" and supervised:
        raise ConfigError(
            f"--dataset-config.watertreatment.split competition trains on BATADAL_dataset03, which has "
            f"no attacks, so learning_type={cfg.learning_type!r} ({cfg.model_architecture}) would never "
            f"see one. Use --dataset-config.watertreatment.split dataset04_blocks (or auto), or "
            f"--learning-type unsupervised --model-architecture VGAE."
        )
    if w.split != "auto":
        return cfg
    split: Literal["dataset04_blocks", "competition"] = "dataset04_blocks" if supervised else "competition"
    water = dataclasses.replace(w, split=split)
    dataset = dataclasses.replace(cfg.dataset_config, watertreatment=water)
    return dataclasses.replace(cfg, dataset_config=dataset)


def threshold_method(cfg: ExperimentConfig) -> ThresholdMethod:
    """The threshold method 'auto' stands for: best_f1 on validation for every task
    (docs/training.md#thresholds, with the measurements behind the choice)."""
    method = cfg.learning_config.threshold.method
    return "best_f1" if method == "auto" else method


# With a calibration capture, 'auto' is the rule measured on the shared targets (hcrl_sa test_02,
# can-train-and-test set_03 and set_04 over seeds 0-2: docs/unseen-vehicles.md#the-threshold-on-a-new-car).
CALIBRATION_RULE_AUTO: CalibrationThreshold = "quantile"


def calibration_rule(cfg: ExperimentConfig) -> CalibrationThreshold:
    """The calibration threshold rule 'auto' stands for (see CALIBRATION_RULE_AUTO)."""
    rule = cfg.learning_config.threshold.calibration
    return CALIBRATION_RULE_AUTO if rule == "auto" else rule


def _resolve_threshold(cfg: ExperimentConfig) -> ExperimentConfig:
    """threshold method 'auto' -> its method; 'fixed' is refused on a score that is no probability."""
    lc = cfg.learning_config
    if lc.threshold.method == "fixed" and cfg.model_architecture == "VGAE":
        raise ConfigError(
            "--learning-config.threshold.method fixed needs a class probability, but a VGAE scores a "
            "window by its reconstruction error (unbounded, in the units of the features), so no fixed "
            "value means the same on two runs. Use best_f1 or target_fpr (chosen on validation)."
        )
    # Flows of the edge read-out: 'auto' is 0.5, measured (docs/training.md#thresholds): on DAPT2020 a
    # best_f1 cut on the few validation attack flows missed every test attack flow in 1 seed of 3.
    flow = "fixed" if lc.threshold.flow_method == "auto" else lc.threshold.flow_method
    threshold = dataclasses.replace(
        lc.threshold, method=threshold_method(cfg), flow_method=flow, calibration=calibration_rule(cfg)
    )
    return dataclasses.replace(cfg, learning_config=dataclasses.replace(lc, threshold=threshold))


def _check_other_modality_knobs(cfg: ExperimentConfig) -> None:
    """A knob of another modality's sub-config would be ignored: refuse it instead."""
    d = cfg.dataset_config
    for modality in MODALITY_DATASETS:  # a modality's knobs sit in the DatasetConfig field of its name
        if modality == cfg.modality:
            continue
        given, default = getattr(d, modality), type(getattr(d, modality))()
        changed = [
            f.name for f in dataclasses.fields(given) if getattr(given, f.name) != getattr(default, f.name)
        ]
        if changed:
            flags = ", ".join(f"--dataset-config.{modality}.{name.replace('_', '-')}" for name in changed)
            raise ConfigError(
                f"{flags} belong(s) to modality {modality!r}, but --modality is {cfg.modality!r}: "
                f"they would be ignored. Drop them, or use --modality {modality}."
            )


def in_range(rule: Range, value: float) -> bool:
    """Whether value lies in the range."""
    if rule.low is not None and (value <= rule.low if rule.low_open else value < rule.low):
        return False
    return rule.high is None or (value < rule.high if rule.high_open else value <= rule.high)


def describe_range(rule: Range, integer: bool) -> str:
    """The range in words, e.g. 'an integer >= 1', 'a number in (0, 1)'."""
    kind = "an integer" if integer else "a number"
    if rule.high is None:
        return f"{kind} {'>' if rule.low_open else '>='} {rule.low:g}"
    if rule.low is None:
        return f"{kind} {'<' if rule.high_open else '<='} {rule.high:g}"
    left, right = "(" if rule.low_open else "[", ")" if rule.high_open else "]"
    return f"{kind} in {left}{rule.low:g}, {rule.high:g}{right}"


def check_fields(value: Any, path: tuple[str, ...] = ()) -> None:
    """Every field against the Range declared beside it, walking the sub-configs; a float must be
    finite whatever its range (NaN passes every comparison, so a Range alone lets it through)."""
    hints = typing.get_type_hints(type(value), include_extras=True)
    for field in dataclasses.fields(value):
        item = getattr(value, field.name)
        if dataclasses.is_dataclass(item):
            check_fields(item, (*path, field.name))
            continue
        rules = [rule for rule in getattr(hints[field.name], "__metadata__", ()) if isinstance(rule, Range)]
        if isinstance(item, float) and not math.isfinite(item):
            expected = describe_range(rules[0], integer=False) if rules else "a finite number"
            raise ConfigError(
                f"{flag_of((*path, field.name))} {item!r} is not a finite number: NaN or infinity would "
                f"make every loss and score computed from it meaningless. Give {expected}."
            )
        for rule in rules:
            if isinstance(item, int | float) and not in_range(rule, item):  # a word (auto) has no range
                raise ConfigError(
                    f"{flag_of((*path, field.name))} {item!r} is out of range: expected "
                    f"{describe_range(rule, isinstance(item, int))}."
                )


def _relations(cfg: ExperimentConfig) -> list[tuple[bool, str, Any, str]]:
    """Rules between fields: (holds, flag, value, what is expected)."""
    d, lc = cfg.dataset_config, cfg.learning_config
    rules: list[tuple[bool, str, Any, str]] = [
        (len(d.test_dirs) >= 1, "--dataset-config.test-dirs", d.test_dirs, "at least one folder pattern"),
        (
            d.val_fraction + d.test_fraction < 1,
            "--dataset-config.test-fraction",
            d.test_fraction,
            f"a number below 1 - val_fraction ({1 - d.val_fraction:g})",
        ),
        (
            lc.dqn.epsilon_end <= lc.dqn.epsilon_start,
            "--learning-config.dqn.epsilon-end",
            lc.dqn.epsilon_end,
            f"at most --learning-config.dqn.epsilon-start ({lc.dqn.epsilon_start:g})",
        ),
        (
            lc.dqn.buffer_size >= lc.dqn.batch_size,
            "--learning-config.dqn.buffer-size",
            lc.dqn.buffer_size,
            f"at least --learning-config.dqn.batch-size ({lc.dqn.batch_size})",
        ),
    ]
    if cfg.modality == "automotive":
        a, flag = d.automotive, "--dataset-config.automotive"
        rules += [
            (a.stride <= a.window, f"{flag}.stride", a.stride, f"an integer in 1..window ({a.window})"),
            (
                a.synthetic_train_frames >= 10 * a.window,
                f"{flag}.synthetic-train-frames",
                a.synthetic_train_frames,
                "at least 10 windows of frames",
            ),
            (
                a.synthetic_test_frames >= 2 * a.window,
                f"{flag}.synthetic-test-frames",
                a.synthetic_test_frames,
                "at least 2 windows of frames",
            ),
        ]
    elif cfg.modality == "internet":
        n, flag = d.internet, "--dataset-config.internet"
        rules += [
            (n.stride <= n.window, f"{flag}.stride", n.stride, f"an integer in 1..window ({n.window})"),
            (
                n.synthetic_flows >= 20 * n.window,
                f"{flag}.synthetic-flows",
                n.synthetic_flows,
                "at least 20 windows of flows",
            ),
        ]
        if n.window_seconds is None:
            rules.append(
                (
                    n.stride_seconds is None,
                    f"{flag}.stride-seconds",
                    n.stride_seconds,
                    "unset unless --dataset-config.internet.window-seconds is set (windows of flows)",
                )
            )
        elif n.stride_seconds is not None:
            rules.append(
                (
                    n.stride_seconds <= n.window_seconds,
                    f"{flag}.stride-seconds",
                    n.stride_seconds,
                    f"a number in (0, window_seconds ({n.window_seconds:g})]",
                )
            )
    else:
        w, flag = d.watertreatment, "--dataset-config.watertreatment"
        rules.append(
            (
                w.synthetic_train_hours >= max(48, 2 * w.window),
                f"{flag}.synthetic-train-hours",
                w.synthetic_train_hours,
                f"at least {max(48, 2 * w.window)} hours",
            )
        )
        rules.append((len(w.stats) > 0, f"{flag}.stats", w.stats, "at least one window statistic"))
        for name, hours in (("val", w.synthetic_val_hours), ("test", w.synthetic_test_hours)):
            need = max(168, 4 * w.window)
            rules.append((hours >= need, f"{flag}.synthetic-{name}-hours", hours, f"at least {need} hours"))
    return rules


def _check_ranges(cfg: ExperimentConfig) -> None:
    """Ranges, the rules between fields, and the checks that involve the device or the model."""
    check_fields(cfg)
    for holds, flag, value, expected in _relations(cfg):
        if not holds:
            raise ConfigError(f"{flag} {value!r} is out of range: expected {expected}.")
    s, t = cfg.model_size_config, cfg.training_config
    if t.amp == "fp16" and cfg.device == "cpu":
        raise ConfigError(
            "--training.amp fp16 needs CUDA (fp16 autocast with GradScaler); on CPU use "
            "--training.amp bf16 or off."
        )
    if s.hidden_dim is not None and s.heads is not None and s.hidden_dim % s.heads:  # filled in resolve()
        raise ConfigError(
            f"--model-size-config.hidden-dim {s.hidden_dim} is not divisible by "
            f"--model-size-config.heads {s.heads}: GAT heads split the hidden width evenly. "
            f"Pick a hidden_dim that is a multiple of {s.heads}."
        )
    if t.amp == "fp16" and cfg.model_architecture == "DQN":
        raise ConfigError(
            "--training.amp fp16 needs CUDA, and the DQN agent trains on the CPU (an MLP over ~11 "
            "numbers per window gains nothing from a GPU). Use --training.amp bf16 (CPU autocast), "
            "off, or auto (fp16 for the graph stages on CUDA, off for the DQN)."
        )
