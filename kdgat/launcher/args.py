"""launch.py's own flags (beside the experiment's) and the checks on them, before anything is planned.

Kept here, not in launch.py, so the planner and the printers can take a `LaunchArgs` without
importing the entry point. Torch-free: `python launch.py --help` and --dry-run never load torch.
"""

import dataclasses
from pathlib import Path
from typing import Annotated, Literal

import tyro

import configs
from configs import ConfigError, ExperimentConfig
from kdgat.launcher.grid import split_values

# flag -> the level it grids over
GRID_FLAGS = {
    "modalities": "modality",
    "datasets": "dataset",
    "learning_types": "learning_type",
    "model_architectures": "model_architecture",
    "model_sizes": "model_size",
    "distillations": "distillation",
    "training_modes": "training_mode",
}


@dataclasses.dataclass
class LaunchArgs:
    """Experiment flags as in train.py, plus the launcher's own options."""

    experiment: Annotated[ExperimentConfig, tyro.conf.arg(name="")] = dataclasses.field(
        default_factory=ExperimentConfig
    )
    executor: Literal["slurm", "local", "debug"] = "slurm"
    """slurm: sbatch (array jobs); local: subprocesses on this machine; debug: in this process."""
    sweep: bool = False
    """Say that this is a grid (grids apply whenever grid flags are given)."""
    modalities: tuple[str, ...] = ()
    """Grid over modality, comma separated."""
    datasets: tuple[str, ...] = ()
    """Grid over dataset, e.g. hcrlch,hcrlsa."""
    learning_types: tuple[str, ...] = ()
    """Grid over learning_type."""
    model_architectures: tuple[str, ...] = ()
    """Grid over model_architecture."""
    model_sizes: tuple[str, ...] = ()
    """Grid over model_size, e.g. teacher,student."""
    distillations: tuple[str, ...] = ()
    """Grid over distillation, e.g. no,standard."""
    training_modes: tuple[str, ...] = ()
    """Grid over training_mode."""
    set: tuple[str, ...] = ()
    """Grid over any field: FIELD=V1,V2 (dotted), e.g. model_size_config.hidden_dim=32,64."""
    strict: bool = False
    """Refuse the whole grid if any combination is invalid (default: list and skip those)."""
    dry_run: bool = False
    """Print the runs and the exact sbatch script(s); submit nothing."""
    pipeline: bool = False
    """Submit the KD-GAT study: VGAE -> GAT (curriculum) -> DQN teachers, then KD students (grid
    flags apply to every stage, e.g. --set training_config.seed=0,1,2)."""
    pipeline_file: Path | None = None
    """A YAML list of stages to submit as a pipeline instead of the default study."""
    parallelism: int = 8
    """Most array tasks (local: jobs) running at once."""
    runs_per_task: int = 1
    """Pack K runs of each stage into one array task (one GPU allocation): 96 runs at 8 per task
    are 12 tasks. A task runs them at once where they fit (its CPUs; its GPU's free memory), else
    in turn; each keeps its own run dir, status, requeue and resume."""
    gpu_gb_per_run: float = 0.0
    """GPU memory one packed run needs, in GiB, to decide how many run at once (0: estimated from
    the model size and batch; give it for large data kept on the GPU)."""
    sbatch: tuple[str, ...] = ()
    """Further sbatch options KEY=VALUE, e.g. gpu-bind=closest."""
    wait: bool = False
    """Slurm: block until every job has ended and report their states."""
    job_name: str = "kdgat"
    """Slurm job name."""


def grid_levels(args: LaunchArgs) -> dict[str, list[str]]:
    """The level grid flags as level -> values; an unknown value is refused with the choices."""
    levels = {}
    for flag, level in GRID_FLAGS.items():
        values = split_values(getattr(args, flag))
        unknown = [v for v in values if v not in configs.LEVEL_CHOICES[level]]
        if unknown:
            raise ConfigError(
                f"--{flag.replace('_', '-')}: {', '.join(unknown)} is not a {level}. "
                f"Choose from: {', '.join(configs.LEVEL_CHOICES[level])}."
            )
        levels[level] = values
    return levels


def extra_sbatch(items: tuple[str, ...]) -> dict[str, str]:
    """--sbatch KEY=VALUE items as sbatch options (a leading '--' on KEY tolerated)."""
    extra: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"--sbatch {item!r} is not KEY=VALUE (an sbatch long option without '--'), "
                f"e.g. --sbatch gpu-bind=closest."
            )
        key = key.strip().removeprefix("--")
        if key in extra and extra[key] != value:
            raise ConfigError(
                f"--sbatch {key} is given twice ({key}={extra[key]} and {key}={value}): sbatch takes one "
                f"value, so one would be silently dropped. Give it once."
            )
        extra[key] = value
    return extra
