"""The finished runs an experiment builds on (the table in kdgat.runs.prerequisites): bound to exact run
directories before it starts, found by deterministic path when not given, checked, recorded.

A bound run is recorded in config.yaml (`vgae_run`, `gat_run`, `teacher_run`), so a rerun with
`--config` builds on the same runs. No torch here: the launcher binds runs when it submits.
"""

import dataclasses
import shlex
from pathlib import Path
from typing import Any

import configs
from configs import ExperimentConfig
from kdgat.common.errors import PrerequisiteError
from kdgat.config.codec import with_fields
from kdgat.config.presets import preset_name
from kdgat.runs.prerequisites import Prerequisite, candidate_levels, fits, match_key, needed, restricted
from kdgat.runs.store import Run, experiment_dir, resolve_recorded, run_dirs

__all__ = ["bind", "check_given", "check_same_data", "find_on_disk", "lineage", "load_upstream"]
__all__ += ["missing_message", "resolve_recorded", "train_command"]


def bind(cfg: ExperimentConfig, purpose: str | None = None) -> ExperimentConfig:
    """cfg with every prerequisite bound to a run directory: the one given (checked), else the one
    found on disk. A missing one raises PrerequisiteError with the command that trains it."""
    purpose = purpose or preset_name(cfg)
    changes: dict[str, Path] = {}
    for p in needed(cfg):
        given = getattr(cfg, p.field)
        if given is not None:
            check_given(p, cfg, Path(given), purpose)
            continue
        found = find_on_disk(p, cfg)
        if found is None:
            raise PrerequisiteError(missing_message(p, cfg, purpose))
        changes[p.field] = found
    return with_fields(cfg, changes)


def _finished_runs(exp_dir: Path, cache: dict[Path, list[Run]] | None) -> list[Run]:
    """Finished runs of one experiment, newest first (cached per planning pass)."""
    if cache is not None and exp_dir in cache:
        return cache[exp_dir]
    found = []
    for run_dir in reversed(run_dirs(exp_dir)):
        run = Run(run_dir)
        if not run.finished:
            continue
        try:
            run.config  # noqa: B018  (a run whose config.yaml no longer loads cannot be matched)
        except (configs.ConfigError, OSError):
            continue
        found.append(run)
    if cache is not None:
        cache[exp_dir] = found
    return found


def find_on_disk(
    p: Prerequisite, cfg: ExperimentConfig, cache: dict[Path, list[Run]] | None = None
) -> Path | None:
    """The run on disk that serves as `p` for `cfg`: in the first of its candidate experiments
    (kdgat.runs.prerequisites.candidate_levels) that holds a finished run, the latest one with the same
    data and seed, else the latest with the same data, else the latest."""
    want = match_key(cfg)
    want_data = {k: v for k, v in want.items() if k.startswith("dataset_config.")}
    for levels in candidate_levels(p, cfg):
        runs = _finished_runs(experiment_dir(with_fields(cfg, levels)), cache)
        if not runs:
            continue
        keys = [match_key(run.config) for run in runs]
        for rank in (
            lambda key: key == want,
            lambda key: {k: v for k, v in key.items() if k.startswith("dataset_config.")} == want_data,
            lambda key: True,
        ):
            for run, key in zip(runs, keys, strict=True):
                if rank(key):
                    return run.path
    return None


def check_given(p: Prerequisite, cfg: ExperimentConfig, path: Path, purpose: str) -> None:
    """A run given (or bound by a launch) as `p` must be finished and of the right levels."""
    run = Run(path)
    if not run.finished:
        raise PrerequisiteError(
            f"{purpose}: {path} is not a finished run (state={run.state}); {p.flag} needs the "
            f"directory of a finished {p.what} run."
        )
    wrong = fits(p, cfg, run.config)
    if wrong:
        must = [f"{k}={getattr(cfg, k)}" for k in p.shares] + [f"{k}={v}" for k, v in p.fixed.items()]
        must += [f"{k}={' or '.join(v)}" for k, v in restricted(p, cfg).items()]
        raise PrerequisiteError(
            f"{purpose}: {p.flag} {path} cannot serve as its {p.what}: it has {', '.join(wrong)}. "
            f"A {p.what} run for it has {', '.join(must)}."
        )


def missing_message(p: Prerequisite, cfg: ExperimentConfig, purpose: str) -> str:
    candidates = candidate_levels(p, cfg)
    searched = [str(experiment_dir(with_fields(cfg, levels))) for levels in candidates]
    first = with_fields(cfg, candidates[0])
    return (
        f"{purpose} needs a finished {p.what} run ({first.learning_type}, {first.model_architecture}, "
        f"size {first.model_size}) of dataset {cfg.dataset}, which {p.purpose}; none under "
        f"{' or '.join(searched)}. Train it first with:\n  {train_command(first)}\n"
        f"(or point at one with {p.flag} RUN_DIR)."
    )


def _changed_flags(value: Any, default: Any, flag: str) -> list[str]:
    """CLI flags for every field of a (nested) config section that differs from its default."""
    args = []
    for field in dataclasses.fields(value):
        mine, theirs = getattr(value, field.name), getattr(default, field.name)
        name = f"{flag}.{field.name.replace('_', '-')}"
        if dataclasses.is_dataclass(mine):
            args += _changed_flags(mine, theirs, name)
        elif mine != theirs:
            name = "--data-root" if name == "--dataset-config.data-root" else name
            args += [name, *(map(str, mine) if isinstance(mine, tuple) else [str(mine)])]
    return args


def train_command(cfg: ExperimentConfig) -> str:
    """The train.py command of a run with cfg's levels, data and seed (what a missing upstream needs)."""
    default = ExperimentConfig()
    args = ["python", "train.py"]
    if cfg.modality != default.modality:
        args += ["--modality", cfg.modality]
    args += [
        "--dataset",
        cfg.dataset,
        "--learning-type",
        cfg.learning_type,
        "--model-architecture",
        cfg.model_architecture,
        "--model-size",
        cfg.model_size,
        "--training-mode",
        cfg.training_mode,
    ]
    if cfg.distillation != "no":
        args += ["--distillation", cfg.distillation]
    # The upstream model must see identically prepared graphs: carry every non-default data knob.
    args += _changed_flags(cfg.dataset_config, default.dataset_config, "--dataset-config")
    if cfg.training_config.seed != default.training_config.seed:
        args += ["--training.seed", str(cfg.training_config.seed)]
    if cfg.runs_root != default.runs_root:
        args += ["--runs-root", str(cfg.runs_root)]
    return shlex.join(args)


def lineage(cfg: ExperimentConfig, run_dir: Path) -> dict[str, dict[str, Any]]:
    """Every run cfg builds on, by field: path (relative to the runs root), config digest and the
    time it finished. Written to status.json and metrics.json."""
    return {
        p.field: Run(getattr(cfg, p.field)).reference(run_dir)
        for p in needed(cfg)
        if getattr(cfg, p.field) is not None
    }


def load_upstream(run_dir: Path, device: Any) -> Run:
    """A finished run with its frozen model loaded on device (how kdgat.scoring loads one)."""
    run = Run.open(run_dir, device)
    run.model  # noqa: B018  (load now: a broken checkpoint fails here, not mid-evaluation)
    return run


def check_same_data(
    upstream: Run, vocabulary: dict[int, int], normalisation: dict[str, list[float]], purpose: str
) -> None:
    """Frozen models only make sense on graphs prepared exactly as during their training."""
    if upstream.vocabulary != vocabulary or upstream.normalisation != normalisation:
        raise PrerequisiteError(
            f"{purpose}: {upstream.path} was trained on differently prepared graphs (its CAN-ID "
            f"vocabulary or normalisation differs: other data files, window, stride or val_fraction). "
            f"Train it again with this experiment's --dataset-config, or pass a matching run."
        )
