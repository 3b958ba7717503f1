"""A run's torch threads: `--training.torch-threads auto` resolved once, when the run first starts,
and written into its config.yaml.

Why the number goes into config.yaml, not `auto`: the thread count changes how torch splits its
sums, so the same config and seed at 1 and at 2 threads differ in the last bits of every loss
(measured: train_loss 0.56964225 vs 0.56964228 after one epoch). A rerun from config.yaml, and a
resume after a requeue onto another node, must use the count the run started with to repeat it
exactly. Why it is resolved at the run's start, not when a launch is planned: only the run's own
process knows its CPUs (a Slurm task's affinity mask, a packed task's slice, the local executor's
share; kdgat.common.cpus). An explicit number, and 0 (torch's default: one per core, the meaning
it had in config files written before `auto`), are used as given.
"""

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from configs import ExperimentConfig
from kdgat.common.cpus import runs_sharing, share, usable_cpus
from kdgat.common.io import atomic_write_text
from kdgat.runs.store import YAML_LOADER, write_config_json


@dataclasses.dataclass(frozen=True)
class Threads:
    """What a run was given: torch threads (0: torch's default) and where the number came from."""

    torch: int
    cpus: int  # CPUs this process may use (affinity mask)
    sharing: int  # runs sharing them (the local executor's jobs at once; 1 elsewhere)
    source: str  # "auto" (resolved now), "recorded" (at the run's first start), "config" (given)

    def describe(self) -> str:
        shared = f", shared by {self.sharing} runs" if self.sharing > 1 else ""
        where = f"{self.cpus} CPU(s) this process may use{shared}"
        if self.source == "auto":
            return f"{self.torch} torch thread(s) (auto: {where})"
        if self.source == "recorded":
            return f"{self.torch} torch thread(s) (auto, as resolved at the run's first start; {where})"
        if self.torch == 0:
            return f"torch's default threads (--training.torch-threads 0; {where})"
        return f"{self.torch} torch thread(s) (--training.torch-threads; {where})"

    def oversubscribed(self) -> str | None:
        """A warning when the threads asked for exceed this process's part of the CPUs."""
        part = share(self.cpus, self.sharing)
        if self.torch <= part:
            return None
        return (
            f"{self.torch} torch threads on {part} CPU(s) (this process's part): the threads wait for "
            f"each other and training slows down several times. The count comes from the config "
            f"({'resolved where it first ran' if self.source == 'recorded' else 'as given'}) and is kept "
            f"so this run repeats exactly; for a new run give --training.torch-threads auto."
        )


def with_threads(cfg: ExperimentConfig, threads: int) -> ExperimentConfig:
    training = dataclasses.replace(cfg.training_config, torch_threads=threads)
    return dataclasses.replace(cfg, training_config=training)


def _recorded(run_dir: Path | None) -> Any:
    """torch_threads as written in run_dir/config.yaml (None when there is none)."""
    path = None if run_dir is None else Path(run_dir) / "config.yaml"
    if path is None or not path.is_file():
        return None
    data = yaml.load(path.read_bytes(), Loader=YAML_LOADER) or {}
    return (data.get("training_config") or {}).get("torch_threads")


def _record(run_dir: Path, threads: int) -> None:
    """Write the resolved count into run_dir/config.yaml (that one value; the rest byte for byte
    as it was dumped) and config.json beside it."""
    path = Path(run_dir) / "config.yaml"
    data = yaml.load(path.read_bytes(), Loader=YAML_LOADER)
    data["training_config"]["torch_threads"] = threads
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))
    write_config_json(run_dir)


def settle_threads(cfg: ExperimentConfig, run_dir: Path | None) -> tuple[ExperimentConfig, Threads]:
    """cfg with `auto` replaced by this run's count, and what was decided. A run dir whose
    config.yaml still says auto gets the count written in; one that holds a count (an earlier
    start of the same run) keeps it."""
    cpus, sharing = usable_cpus(), runs_sharing()
    asked = cfg.training_config.torch_threads
    if asked != "auto":
        return cfg, Threads(asked, cpus, sharing, "config")
    recorded = _recorded(run_dir)
    if isinstance(recorded, int) and not isinstance(recorded, bool):
        return with_threads(cfg, recorded), Threads(recorded, cpus, sharing, "recorded")
    threads = share(cpus, sharing)
    if run_dir is not None and (Path(run_dir) / "config.yaml").is_file():
        _record(run_dir, threads)
    return with_threads(cfg, threads), Threads(threads, cpus, sharing, "auto")


def apply_threads(threads: Threads) -> dict[str, Any]:
    """Give torch the run's threads (intra-op, and inter-op where this process has not started that
    pool yet); returns what status.json records."""
    import torch  # here, not at the top: the launcher claims runs without torch

    if threads.torch > 0:
        torch.set_num_threads(threads.torch)
        if torch.get_num_interop_threads() != threads.torch:
            try:
                torch.set_num_interop_threads(threads.torch)
            except RuntimeError:  # set once per process (an earlier run of an in-process launch)
                pass
    return {
        "torch": torch.get_num_threads(),
        "interop": torch.get_num_interop_threads(),
        "cpus": threads.cpus,
        "runs_sharing": threads.sharing,
        "from": threads.source,
    }
