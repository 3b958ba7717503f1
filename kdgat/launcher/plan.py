"""Order a launch into dependent arrays and bind every run to the runs of its own launch.

A launch is a list of groups of configs: a sweep is one group (named by --job-name), a pipeline
one group per stage. For every run and every prerequisite it needs (kdgat.runs.prerequisites), in order:

1. given (the config names a run directory, e.g. --teacher-run or a rerun's config.yaml): kept,
   checked now;
2. produced by this launch: bound to that run, the one that agrees with the dependant on data,
   seed and every grid axis (kdgat.runs.prerequisites.match_key); more than one such run is ambiguous
   and refused with the reason;
3. on disk: bound to the run found (kdgat.runs.upstream.find_on_disk);
4. else refused, before anything is submitted, with the command that trains it.

A group whose runs build on each other is split by depth into units `<group>_1`, `<group>_2`, ...;
each unit is one array job that waits (afterok) for the units holding the runs it builds on.
Run directories are claimed unit by unit at submission (`Plan.claim`), so every dependant's
config.yaml names the exact directories of its upstream runs before any job starts.
"""

import dataclasses
import shutil
from pathlib import Path

from configs import LEVELS, ConfigError, ExperimentConfig
from kdgat.common.errors import PrerequisiteError
from kdgat.config.codec import flatten, to_dict, with_fields
from kdgat.config.presets import preset_name
from kdgat.runs.prerequisites import Prerequisite, candidate_levels, differences, match_key, needed
from kdgat.runs.store import Run, update_status
from kdgat.runs.upstream import check_given, find_on_disk, missing_message

MAX_LISTED = 8  # refusals listed in one message


@dataclasses.dataclass
class Group:
    name: str
    cfgs: list[ExperimentConfig]
    after: tuple[str, ...] = ()  # groups it waits for whatever its runs build on (pipeline files)


@dataclasses.dataclass
class Unit:
    """One array job: configs (bound to their upstream run dirs once claimed) and the units it waits for."""

    name: str
    cfgs: list[ExperimentConfig]
    after: tuple[str, ...] = ()
    indices: list[int] = dataclasses.field(default_factory=list)  # positions in Plan.runs
    run_dirs: list[Path] = dataclasses.field(default_factory=list)  # filled by Plan.claim
    runs_per_task: int = 1  # --runs-per-task: runs packed into one array task (kdgat.launcher.packing)
    gpu_bytes_per_run: int | None = None  # --gpu-gb-per-run; None: a packed task estimates it

    def task_groups(self) -> list[list[int]]:
        """Positions of the unit's runs (in cfgs, run_dirs) per array task."""
        from kdgat.launcher.packing import pack

        return pack(len(self.cfgs), self.runs_per_task)


@dataclasses.dataclass
class PlannedRun:
    cfg: ExperimentConfig  # given and on-disk upstreams already bound
    group: str
    binds: dict[str, int]  # prerequisite field -> index of the run of this launch it builds on
    on_disk: dict[str, Path]  # prerequisite field -> run found on disk
    unit: str = ""
    run_dir: Path | None = None


@dataclasses.dataclass
class Plan:
    runs: list[PlannedRun]
    units: list[Unit]

    def position(self, index: int) -> tuple[str, int]:
        """(unit name, task number) of a run."""
        unit = next(u for u in self.units if index in u.indices)
        return unit.name, unit.indices.index(index)

    def claim(self, unit: Unit) -> None:
        """Claim the run dirs of a unit (after those of every unit it waits for) and write each
        config.yaml with the exact upstream run dirs."""
        cfgs, dirs = [], []
        for i in unit.indices:
            run = self.runs[i]
            bound = {field: self.runs[j].run_dir for field, j in run.binds.items()}
            if any(path is None for path in bound.values()):
                raise RuntimeError(f"unit {unit.name} claimed before the units it waits for")
            run.cfg = with_fields(run.cfg, bound)
            run.run_dir = Run.claim(run.cfg, launcher={"stage": unit.name}).path
            cfgs.append(run.cfg)
            dirs.append(run.run_dir)
        unit.cfgs, unit.run_dirs = cfgs, dirs

    def release(self, unit: Unit) -> None:
        """Undo `claim` for a unit that was not submitted (its directories hold no job)."""
        for run_dir in unit.run_dirs:
            shutil.rmtree(run_dir, ignore_errors=True)
        for i in unit.indices:
            self.runs[i].run_dir = None
        unit.run_dirs = []

    def record_jobs(self, unit: Unit, job_ids: list[str]) -> None:
        """Slurm ids (one per array task) in each claimed run's status.json, so `launch.py status`
        follows a job that never starts (e.g. cancelled because a run it waits for failed)."""
        per_run = [job_ids[t] for t, group in enumerate(unit.task_groups()) for _ in group]
        for run_dir, job_id in zip(unit.run_dirs, per_run, strict=True):
            array_id, _, task = job_id.partition("_")
            update_status(
                run_dir,
                slurm={"slurm_array_job_id": array_id, "slurm_array_task_id": task or "0"},
                launcher={"stage": unit.name, "job_id": job_id},
            )


def _describe(cfg: ExperimentConfig, axes: list[str]) -> str:
    key = {k: v for k, v in match_key(cfg, axes).items() if not k.startswith("dataset_config.")}
    return preset_name(cfg) + "".join(f" {k}={v}" for k, v in key.items())


class _Binder:
    """Step 2 of the module docstring: find the run of this launch that serves as a prerequisite."""

    def __init__(self, cfgs: list[ExperimentConfig], axes: list[str]) -> None:
        self.cfgs, self.axes = cfgs, axes
        self.keys = [match_key(cfg, axes) for cfg in cfgs]
        self.by_levels: dict[tuple[str, ...], list[int]] = {}
        for i, cfg in enumerate(cfgs):
            self.by_levels.setdefault(tuple(getattr(cfg, level) for level in LEVELS), []).append(i)

    def find(self, i: int, p: Prerequisite) -> int | None:
        cfg, want = self.cfgs[i], self.keys[i]
        seen: list[int] = []
        for levels in candidate_levels(p, cfg):  # most preferred first
            at = [j for j in self.by_levels.get(tuple(levels.values()), []) if j != i]
            seen += at
            hits = [j for j in at if self.keys[j] == want]
            if len(hits) > 1:
                a, b = (flatten(to_dict(self.cfgs[j]), lists=tuple) for j in hits[:2])
                differ = differences(a, b)
                why = (
                    f"they differ only in {', '.join(differ[:4])}, which is not a grid axis. Make it "
                    f"one (--set KEY=V1,V2) so that each dependant has its own, or launch them separately."
                    if differ
                    else "they are identical: the grid lists a value twice. Drop the repeated value."
                )
                raise ConfigError(
                    f"{_describe(cfg, self.axes)} is ambiguous: {len(hits)} {p.what} runs of this launch "
                    f"agree with it on data, seed and the grid axes "
                    f"({'; '.join(_describe(self.cfgs[j], self.axes) for j in hits)}); {why}"
                )
            if hits:
                return hits[0]
        if seen:
            nearest = min(seen, key=lambda j: len(differences(self.keys[j], want)))
            recipes = sorted({c.recipe for c in (cfg, self.cfgs[nearest])} - {"none", "auto"})
            hint = (
                f" The {' and '.join(recipes)} recipe sets some of these for its own levels only; "
                f"with --recipe none every run has the same (then set the knobs all runs need)."
                if recipes
                else ""
            )
            raise ConfigError(
                f"{_describe(cfg, self.axes)}: this launch trains {p.what} runs for it, but none agrees "
                f"with it on data, seed and the grid axes; the nearest "
                f"({_describe(self.cfgs[nearest], self.axes)}) differs in "
                f"{', '.join(differences(self.keys[nearest], want)[:4])}. Give the {p.what} runs the "
                f"same values (or make the knob a grid axis for all of them).{hint}"
            )
        return None


def plan(groups: list[Group], axes: list[str]) -> Plan:
    """Bind every run (module docstring) and split the groups into ordered, dependent units."""
    known = {g.name for g in groups}
    for g in groups:
        unknown = [a for a in g.after if a not in known]
        if unknown:
            raise ConfigError(f"stage {g.name!r} waits for unknown stage(s) {', '.join(unknown)}.")
    cfgs = [cfg for g in groups for cfg in g.cfgs]
    group_of = [g.name for g in groups for _ in g.cfgs]
    binder = _Binder(cfgs, axes)
    cache: dict = {}
    runs, refusals = [], []
    for i, cfg in enumerate(cfgs):
        binds, on_disk, purpose = {}, {}, preset_name(cfg)
        for p in needed(cfg):
            try:
                given = getattr(cfg, p.field)
                if given is not None:
                    check_given(p, cfg, Path(given), purpose)
                elif (j := binder.find(i, p)) is not None:
                    binds[p.field] = j
                elif (found := find_on_disk(p, cfg, cache)) is not None:
                    on_disk[p.field] = found
                else:
                    refusals.append(
                        missing_message(p, cfg, purpose) + " It is also found when this launch trains it."
                    )
            except (ConfigError, PrerequisiteError) as err:
                refusals.append(str(err))
        runs.append(PlannedRun(with_fields(cfg, on_disk), group_of[i], binds, on_disk))
    if refusals:
        unique = list(dict.fromkeys(refusals))
        more = f"\n... and {len(unique) - MAX_LISTED} more" if len(unique) > MAX_LISTED else ""
        raise ConfigError(
            f"{len(unique)} problem(s) with what the runs of this launch build on; nothing was "
            f"submitted:\n" + "\n".join(f"- {m}" for m in unique[:MAX_LISTED]) + more
        )
    return Plan(runs, _units(groups, runs))


def _units(groups: list[Group], runs: list[PlannedRun]) -> list[Unit]:
    depth: dict[int, int] = {}

    def depth_of(i: int) -> int:  # 1 + the deepest run of its own group that it builds on
        if i not in depth:
            same = [j for j in runs[i].binds.values() if runs[j].group == runs[i].group]
            depth[i] = max((depth_of(j) + 1 for j in same), default=0)
        return depth[i]

    rank: dict[str, tuple[int, int]] = {}
    units: dict[str, Unit] = {}
    for g_index, g in enumerate(groups):
        members = [i for i, r in enumerate(runs) if r.group == g.name]
        if not members:
            continue
        deepest = max((depth_of(i) for i in members), default=0)
        for d in range(deepest + 1):
            name = g.name if deepest == 0 else f"{g.name}_{d + 1}"
            if name in units:
                raise ConfigError(
                    f"stage {g.name!r} splits into {name!r}, which is also the name of another stage: "
                    f"its runs build on each other. Rename one of the stages."
                )
            indices = [i for i in members if depth_of(i) == d]
            for i in indices:
                runs[i].unit = name
            units[name] = Unit(name, [runs[i].cfg for i in indices], indices=indices)
            rank[name] = (g_index, d)
    group_after = {g.name: g.after for g in groups}
    units_of: dict[str, list[str]] = {}
    for name, unit in units.items():
        units_of.setdefault(runs[unit.indices[0]].group, []).append(name)
    for unit in units.values():
        # the stages a pipeline file names, in its order, then those holding the runs it builds on
        named = [u for g in group_after[runs[unit.indices[0]].group] for u in units_of.get(g, [])]
        derived = {runs[j].unit for i in unit.indices for j in runs[i].binds.values()}
        waits = [*named, *sorted(derived, key=rank.__getitem__)]
        unit.after = tuple(u for u in dict.fromkeys(waits) if u != unit.name)
    ordered: list[Unit] = []
    pending = sorted(units.values(), key=lambda u: rank[u.name])
    while pending:
        done = {u.name for u in ordered}
        ready = [u for u in pending if all(a in done for a in u.after)]
        if not ready:
            raise ConfigError(
                f"stages {', '.join(u.name for u in pending)} wait for each other (a cycle): a stage's "
                f"'after' contradicts what its runs build on. Remove that 'after'."
            )
        ordered += ready
        pending = [u for u in pending if u not in ready]
    return ordered
