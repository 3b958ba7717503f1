"""What each KD-GAT stage builds on, stated once, and how a run is matched to the runs it builds on.

`PREREQUISITES` is the one table of the stage graph. It is read by the prerequisite check
(`kdgat.runs.upstream.bind`), by the stages when they load their frozen upstream models
(`kdgat.stages`), and by the launcher's planner, which orders sweeps and pipelines into dependent
arrays and binds each dependant to the run of its own launch (`kdgat.launcher.plan`).

This module imports only configs and kdgat.config (torch-free): the launcher reads it when it submits,
and the run store reads FIELDS from it.
"""

import dataclasses
import itertools
from collections.abc import Iterable
from typing import Any

from configs import ARCHITECTURES, LEVELS, ExperimentConfig
from kdgat.config.codec import flatten, to_dict

OWN = "="  # in a preference list: the dependant's own value of that level
# In a preference list: the architectures allowed to teach the dependant's (configs.ARCHITECTURES
# teachers), most preferred first; a run of any other architecture cannot serve.
TEACHERS = "<teachers>"


@dataclasses.dataclass(frozen=True)
class Prerequisite:
    """A finished run that some runs build on.

    needed_by: a run needs it when any of its levels holds one of the listed values.
    shares:    levels it always has in common with the dependant.
    fixed:     levels it always has.
    prefers:   when it is looked up (not given), the remaining levels in order of preference
               (`OWN` = the dependant's own value; `TEACHERS` = the architectures its row in
               configs.ARCHITECTURES lets teach it, and no others); the first level varies slowest.
    """

    field: str  # ExperimentConfig field that binds it; its key in metrics.json's `upstream`
    what: str  # how messages name it
    purpose: str  # what the dependant does with it (messages)
    needed_by: dict[str, tuple[str, ...]]
    shares: tuple[str, ...]
    fixed: dict[str, str]
    prefers: dict[str, tuple[str, ...]]

    @property
    def flag(self) -> str:
        return "--" + self.field.replace("_", "-")


PREREQUISITES: tuple[Prerequisite, ...] = (
    Prerequisite(
        field="vgae_run",
        what="VGAE",
        purpose="ranks the curriculum / feeds fusion with its latents and errors",
        needed_by={"learning_type": ("fusion",), "training_mode": ("curriculum_classifier",)},
        shares=("modality", "dataset"),
        fixed={"learning_type": "unsupervised", "model_architecture": "VGAE"},
        # Distilled studies build on distilled same-size runs first, then on undistilled ones.
        prefers={
            "model_size": (OWN,),
            "distillation": (OWN, "no"),
            "training_mode": ("normals_only", "all_samples"),
        },
    ),
    Prerequisite(
        field="gat_run",
        what="GAT",
        purpose="gives the DQN its classifier probabilities",
        needed_by={"model_architecture": ("DQN",)},
        shares=("modality", "dataset"),
        fixed={"learning_type": "classifier", "model_architecture": "GAT"},
        prefers={
            "model_size": (OWN,),
            "distillation": (OWN, "no"),
            "training_mode": ("all_samples", "curriculum_classifier"),
        },
    ),
    Prerequisite(
        field="teacher_run",
        what="teacher",
        purpose="is distilled into the student",
        needed_by={"distillation": ("standard", "topology_preserving")},
        shares=("modality", "dataset", "learning_type"),
        fixed={"distillation": "no"},
        prefers={"model_size": ("teacher",), "model_architecture": (TEACHERS,), "training_mode": (OWN,)},
    ),
)
BY_FIELD: dict[str, Prerequisite] = {p.field: p for p in PREREQUISITES}
FIELDS: tuple[str, ...] = tuple(BY_FIELD)

for _p in PREREQUISITES:  # every row names all seven levels of the run it points at, exactly once
    assert sorted([*_p.shares, *_p.fixed, *_p.prefers]) == sorted(LEVELS), _p.field


def needs(cfg: ExperimentConfig, field: str) -> bool:
    """Whether a run of these levels builds on the prerequisite bound by `field`."""
    p = BY_FIELD[field]
    return any(getattr(cfg, level) in values for level, values in p.needed_by.items())


def needed(cfg: ExperimentConfig) -> list[Prerequisite]:
    """The prerequisites of a run, in table order."""
    return [p for p in PREREQUISITES if needs(cfg, p.field)]


def _preferred(cfg: ExperimentConfig, level: str, values: tuple[str, ...]) -> list[str]:
    """A preference list with OWN and TEACHERS replaced by the values they stand for."""
    out: list[str] = []
    for v in values:
        if v == OWN:
            out.append(getattr(cfg, level))
        elif v == TEACHERS:
            out.extend(ARCHITECTURES[cfg.model_architecture].teachers)
        else:
            out.append(v)
    return list(dict.fromkeys(out))


def restricted(p: Prerequisite, cfg: ExperimentConfig) -> dict[str, tuple[str, ...]]:
    """Levels whose preference list is a rule, not only an order (TEACHERS): level -> allowed values."""
    return {
        level: tuple(_preferred(cfg, level, values))
        for level, values in p.prefers.items()
        if TEACHERS in values
    }


def candidate_levels(p: Prerequisite, cfg: ExperimentConfig) -> list[dict[str, str]]:
    """The levels of the runs that can serve as `p` for `cfg`, most preferred first."""
    base = {level: getattr(cfg, level) for level in p.shares} | p.fixed
    choices = [_preferred(cfg, level, values) for level, values in p.prefers.items()]
    found = []
    for combo in itertools.product(*choices):
        levels = base | dict(zip(p.prefers, combo, strict=True))
        found.append({level: levels[level] for level in LEVELS})
    return found


def fits(p: Prerequisite, cfg: ExperimentConfig, upstream: ExperimentConfig) -> list[str]:
    """Why `upstream` cannot serve as `p` for `cfg` (its wrong levels as 'level=value'), or []."""
    wrong = [f"{k}={getattr(upstream, k)}" for k in p.shares if getattr(upstream, k) != getattr(cfg, k)]
    wrong += [f"{k}={getattr(upstream, k)}" for k, v in p.fixed.items() if getattr(upstream, k) != v]
    wrong += [
        f"{k}={getattr(upstream, k)}" for k, v in restricted(p, cfg).items() if getattr(upstream, k) not in v
    ]
    return wrong


# ---------------------------------------------------------------- matching runs with each other


MATCHED_ALWAYS = ("dataset_config", "training_config.seed")  # same data, same seed


def match_key(cfg: ExperimentConfig, axes: Iterable[str] = ()) -> dict[str, Any]:
    """What a dependant and the run it builds on must agree on: every dataset_config field (same
    data), the seed, and every non-level grid axis of the launch (e.g. --set model_size_config.hidden_dim)."""
    data = flatten(to_dict(cfg), lists=tuple)  # tuples: comparable, hashable
    prefixes = [*MATCHED_ALWAYS, *(a for a in axes if a not in LEVELS and a not in FIELDS)]
    return {k: v for k, v in data.items() if any(k == p or k.startswith(p + ".") for p in prefixes)}


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """'key (a vs b)' for every key whose values differ."""
    return [f"{k} ({a.get(k)!r} vs {b.get(k)!r})" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
