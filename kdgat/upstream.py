"""Finished runs an experiment builds on (VGAE for curriculum and fusion, GAT for DQN fusion),
found by their deterministic paths, loaded frozen."""

import dataclasses
import json
import os
import shlex
from pathlib import Path
from typing import Any

import torch

import configs
from configs import ExperimentConfig
from kdgat.errors import PrerequisiteError
from kdgat.models import build_from_dims
from kdgat.runs import experiment_dir, latest_finished, read_status


@dataclasses.dataclass
class UpstreamRun:
    run_dir: Path
    cfg: ExperimentConfig
    model: torch.nn.Module
    metrics: dict[str, Any]
    vocabulary: dict[int, int]
    normalisation: dict[str, list[float]]


def _train_command(cfg: ExperimentConfig, learning_type: str, arch: str, mode: str) -> str:
    args = [
        "python",
        "train.py",
        "--dataset",
        cfg.dataset,
        "--learning-type",
        learning_type,
        "--model-architecture",
        arch,
        "--model-size",
        cfg.model_size,
        "--training-mode",
        mode,
    ]
    if cfg.distillation != "no":
        args += ["--distillation", cfg.distillation]
    if cfg.modality != "automotive":
        args[2:2] = ["--modality", cfg.modality]
    # The upstream model must see identically prepared graphs: carry every non-default data knob.
    for name, value in changed_fields(cfg.dataset_config, configs.DatasetConfig()):
        flag = "--data-root" if name == "data_root" else f"--dataset-config.{name.replace('_', '-')}"
        args += [flag, *(map(str, value) if isinstance(value, tuple) else [str(value)])]
    if cfg.runs_root != Path("runs"):
        args += ["--runs-root", str(cfg.runs_root)]
    return shlex.join(args)


def changed_fields(value: Any, default: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted name, value) of every field of a config dataclass that differs from its default,
    walking nested sub-configs (dataset_config.automotive.window)."""
    out = []
    for field in dataclasses.fields(value):
        mine, theirs = getattr(value, field.name), getattr(default, field.name)
        if dataclasses.is_dataclass(mine):
            out += changed_fields(mine, theirs, f"{prefix}{field.name}.")
        elif mine != theirs:
            out.append((f"{prefix}{field.name}", mine))
    return out


def find_upstream(
    cfg: ExperimentConfig,
    learning_type: str,
    arch: str,
    modes: tuple[str, ...],
    explicit: Path | None,
    purpose: str,
) -> Path:
    """The explicit run, or the latest finished run of the same dataset and size; else an error
    that prints the command which makes one.

    A distilled experiment prefers upstream runs distilled the same way (a KD study's students
    build on distilled students), then undistilled ones.
    """
    if explicit is not None:
        return check_finished(Path(explicit), arch, purpose)
    searched = []
    for distillation in dict.fromkeys((cfg.distillation, "no")):
        for mode in modes:
            upstream = dataclasses.replace(
                cfg,
                learning_type=learning_type,
                model_architecture=arch,
                distillation=distillation,
                training_mode=mode,
            )
            where = experiment_dir(upstream)
            searched.append(str(where))
            found = latest_finished(where)
            if found is not None:
                return found
    raise PrerequisiteError(
        f"{purpose} needs a finished {arch} run ({learning_type}, size {cfg.model_size}) of dataset "
        f"{cfg.dataset}; none under {' or '.join(searched)}. Train it first with:\n  "
        f"{_train_command(cfg, learning_type, arch, modes[0])}\n(or point at one with "
        f"--{'vgae' if arch == 'VGAE' else 'gat'}-run RUN_DIR)."
    )


def check_finished(run_dir: Path, what: str, purpose: str) -> Path:
    status = read_status(run_dir)
    if status.get("state") != "finished" or not (run_dir / "checkpoints/best.pt").is_file():
        raise PrerequisiteError(
            f"{purpose}: {run_dir} is not a finished run (state={status.get('state', 'missing')}); "
            f"pass the directory of a finished {what} run."
        )
    return run_dir


def find_teacher(cfg: ExperimentConfig, purpose: str) -> Path:
    """The teacher a distilled student learns from: --teacher-run, or the latest finished run of the
    same modality, dataset, learning type, architecture and training mode at size teacher."""
    levels = dict(model_size="teacher", distillation="no")
    if cfg.teacher_run is not None:
        run_dir = check_finished(Path(cfg.teacher_run), f"{cfg.model_architecture} teacher", purpose)
        teacher = configs.load_yaml(run_dir / "config.yaml")
        same = ("modality", "dataset", "learning_type", "model_architecture")
        wrong = [f"{k}={getattr(teacher, k)}" for k in same if getattr(teacher, k) != getattr(cfg, k)]
        if teacher.distillation != "no":
            wrong.append(f"distillation={teacher.distillation}")
        if wrong:
            raise PrerequisiteError(
                f"{purpose}: --teacher-run {run_dir} cannot teach this student: it has {', '.join(wrong)}. "
                f"A teacher must be an undistilled run of the same {', '.join(same)} "
                f"({', '.join(str(getattr(cfg, k)) for k in same)})."
            )
        return run_dir
    teacher_cfg = dataclasses.replace(cfg, **levels)
    where = experiment_dir(teacher_cfg)
    found = latest_finished(where)
    if found is None:
        raise PrerequisiteError(
            f"{purpose} distils from a finished teacher run ({cfg.model_architecture}, "
            f"{cfg.learning_type}, {cfg.training_mode}, size teacher) of dataset {cfg.dataset}; none "
            f"under {where}. Train it first with:\n  "
            f"{_train_command(teacher_cfg, cfg.learning_type, cfg.model_architecture, cfg.training_mode)}"
            f"\n(or point at one with --teacher-run RUN_DIR)."
        )
    return found


def load_upstream(run_dir: Path, device: torch.device) -> UpstreamRun:
    cfg = configs.resolve(configs.load_yaml(run_dir / "config.yaml"))
    best = torch.load(run_dir / "checkpoints/best.pt", map_location=device, weights_only=False)
    stats = best["normalisation"]
    dims = best["input_dims"]  # a fusion GAT's node features are wider than the normalised ones
    model = build_from_dims(cfg, dims)
    model.load_state_dict(best["model"])
    model.to(device).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return UpstreamRun(
        run_dir=run_dir,
        cfg=cfg,
        model=model,
        metrics=json.loads((run_dir / "metrics.json").read_text()),
        vocabulary=best["vocabulary"],
        normalisation=stats,
    )


def runs_root_of(run_dir: Path) -> Path:
    """runs/<7 levels>/run_NNN -> runs."""
    return Path(run_dir).parents[len(configs.LEVELS)]


def portable(upstream_dir: Path, run_dir: Path) -> str:
    """An upstream run's path relative to this run's runs root, so a moved tree still resolves."""
    return os.path.relpath(upstream_dir, runs_root_of(run_dir))


def resolve_recorded(recorded: str, run_dir: Path) -> Path:
    return runs_root_of(run_dir) / recorded


def check_same_data(
    upstream: UpstreamRun, vocabulary: dict[int, int], normalisation: dict, purpose: str
) -> None:
    """Frozen models only make sense on graphs prepared exactly as during their training."""
    if upstream.vocabulary != vocabulary or upstream.normalisation != normalisation:
        raise PrerequisiteError(
            f"{purpose}: {upstream.run_dir} was trained on differently prepared graphs (its CAN-ID "
            f"vocabulary or normalisation differs: other data files, window, stride or val_fraction). "
            f"Train it again with this experiment's --dataset-config, or pass a matching run."
        )
