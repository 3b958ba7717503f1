"""The KD-GAT study as stages: teachers first, students (KD) after their teachers.

A stage is a name, the config fields it changes from the base config, and optionally stages it
waits for whatever its runs build on. The planner (kdgat.launcher.plan) adds the stages holding
the runs it builds on, and binds each run to them. `--pipeline` submits the default study;
`--pipeline-file FILE.yaml` submits any other list of stages in the same shape:

    stages:
      - {name: teacher, set: {model_size: teacher}}
      - {name: student, set: {model_size: student, distillation: standard}}   # after teacher
      - {name: report, after: [student], set: {...}}                          # explicit order
"""

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from configs import ConfigError, ExperimentConfig
from kdgat.config.codec import from_dict, to_dict
from kdgat.config.resolve import resolve
from kdgat.launcher.grid import with_field


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str
    changes: dict[str, Any]
    after: tuple[str, ...] = ()


def _levels(arch: str, learning: str, size: str, distill: str, mode: str) -> dict[str, Any]:
    return dict(
        model_architecture=arch,
        learning_type=learning,
        model_size=size,
        distillation=distill,
        training_mode=mode,
    )


# The KD-GAT study. What each stage waits for is not written here: the planner derives it from
# what its runs build on (kdgat.runs.prerequisites), e.g. gat_student after gat_teacher (its teacher) and
# vgae_student (the same-size VGAE that ranks its curriculum), and binds each run to those runs.
KD_GAT: tuple[Stage, ...] = (
    Stage("vgae_teacher", _levels("VGAE", "unsupervised", "teacher", "no", "normals_only")),
    Stage("gat_teacher", _levels("GAT", "classifier", "teacher", "no", "curriculum_classifier")),
    Stage("dqn_teacher", _levels("DQN", "fusion", "teacher", "no", "all_samples")),
    Stage("vgae_student", _levels("VGAE", "unsupervised", "student", "standard", "normals_only")),
    Stage("gat_student", _levels("GAT", "classifier", "student", "standard", "curriculum_classifier")),
    Stage("dqn_student", _levels("DQN", "fusion", "student", "standard", "all_samples")),
)


def load_stages(path: Path) -> tuple[Stage, ...]:
    """Read a pipeline file (see module docstring); every problem names the file."""
    if not path.is_file():
        raise ConfigError(f"--pipeline-file {path} does not exist. Give a YAML file with a 'stages:' list.")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("stages"), list) or not data["stages"]:
        raise ConfigError(
            f"{path}: expected a mapping with a non-empty 'stages:' list (see launch.py --help)."
        )
    stages = []
    for i, raw in enumerate(data["stages"]):
        if not isinstance(raw, dict) or "name" not in raw or set(raw) - {"name", "after", "set"}:
            raise ConfigError(f"{path}: stage {i} must be a mapping with 'name' and optional 'after', 'set'.")
        stages.append(Stage(str(raw["name"]), dict(raw.get("set") or {}), tuple(raw.get("after") or ())))
    return tuple(stages)


def ordered(stages: tuple[Stage, ...]) -> list[Stage]:
    """Stages in dependency order; unknown names, duplicates and cycles are refused."""
    by_name = {s.name: s for s in stages}
    if len(by_name) != len(stages):
        raise ConfigError("pipeline: two stages share a name; stage names must be unique.")
    for s in stages:
        missing = [a for a in s.after if a not in by_name]
        if missing:
            raise ConfigError(
                f"pipeline stage {s.name!r} waits for unknown stage(s) {', '.join(missing)}. "
                f"Stages: {', '.join(by_name)}."
            )
    done: list[Stage] = []
    pending = list(stages)
    while pending:
        ready = [s for s in pending if all(a in {d.name for d in done} for a in s.after)]
        if not ready:
            raise ConfigError(
                f"pipeline: stages {', '.join(s.name for s in pending)} wait for each other (a cycle)."
            )
        done += ready
        pending = [s for s in pending if s not in ready]
    return done


def shared_data(base: ExperimentConfig, stages: list[Stage]) -> ExperimentConfig:
    """The base config with data knobs every stage can share: the stages are bound to each other,
    and a frozen upstream model must see its dependant's graphs prepared exactly as its own. A
    watertreatment split 'auto' would pick per stage (competition for the VGAE); a pipeline with
    any supervised stage fixes dataset04_blocks for all of them."""
    if base.modality != "watertreatment" or base.dataset_config.watertreatment.split != "auto":
        return base
    learning = [stage.changes.get("learning_type", base.learning_type) for stage in stages]
    if all(kind == "unsupervised" for kind in learning):
        return base
    water = dataclasses.replace(base.dataset_config.watertreatment, split="dataset04_blocks")
    return dataclasses.replace(
        base, dataset_config=dataclasses.replace(base.dataset_config, watertreatment=water)
    )


def stage_config(base: ExperimentConfig, stage: Stage) -> ExperimentConfig:
    data = to_dict(base)
    for key, value in stage.changes.items():
        data = with_field(data, key, value)
    try:
        return resolve(from_dict(data, source=f"pipeline stage {stage.name}"))
    except ConfigError as err:
        raise ConfigError(f"pipeline stage {stage.name!r}: {err}") from None
