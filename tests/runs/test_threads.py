"""--training.torch-threads auto: resolved once, at a run's first start, and kept in its config.yaml."""

import json
import os
from pathlib import Path

import pytest
import yaml

from configs import ConfigError, ExperimentConfig
from kdgat.common.cpus import RUNS_SHARING_ENV, SLURM_CPUS_ENV
from kdgat.config.codec import load_yaml, to_yaml
from kdgat.config.resolve import resolve
from kdgat.runs.store import CONFIG_JSON, Run, config_digest
from kdgat.runs.threads import settle_threads, with_threads
from tests.helpers import FIXTURES


@pytest.fixture
def cpus(monkeypatch: pytest.MonkeyPatch):
    """Set this process's affinity mask to n CPUs (as Slurm does for a task)."""
    monkeypatch.delenv(RUNS_SHARING_ENV, raising=False)
    monkeypatch.delenv(SLURM_CPUS_ENV, raising=False)

    def mask(n: int) -> None:
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(n)), raising=False)

    return mask


def config(tmp_path: Path) -> ExperimentConfig:
    return resolve(ExperimentConfig(runs_root=tmp_path / "runs"))


def test_auto_is_the_affinity_mask_divided_among_the_runs_sharing_it(
    cpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(tmp_path)
    assert cfg.training_config.torch_threads == "auto"  # the default
    cpus(6)
    settled, threads = settle_threads(cfg, None)
    assert settled.training_config.torch_threads == 6 and (threads.torch, threads.source) == (6, "auto")
    assert "6 torch thread(s) (auto: 6 CPU(s) this process may use)" in threads.describe()
    monkeypatch.setenv(RUNS_SHARING_ENV, "4")  # the local executor's four jobs at once
    settled, threads = settle_threads(cfg, None)
    assert (settled.training_config.torch_threads, threads.cpus, threads.sharing) == (1, 6, 4)
    assert "shared by 4 runs" in threads.describe()


def test_a_claimed_run_gets_its_count_written_into_config_yaml_and_nothing_else_changes(
    cpus, tmp_path: Path
) -> None:
    cfg = config(tmp_path)
    run = Run.claim(cfg).path  # as the launcher claims it: auto
    cpus(3)
    settled, threads = settle_threads(cfg, run)
    assert threads.source == "auto" and load_yaml(run / "config.yaml") == settled
    assert (run / "config.yaml").read_text() == to_yaml(with_threads(cfg, 3))  # byte for byte
    written = json.loads((run / CONFIG_JSON).read_text())
    assert written["config_digest"] == config_digest((run / "config.yaml").read_bytes())
    assert written["config"]["training_config.torch_threads"] == 3


def test_a_resumed_run_keeps_the_count_it_started_with(cpus, tmp_path: Path) -> None:
    """A requeue lands on another node with more CPUs: the same count, so the same last bits."""
    cfg = config(tmp_path)
    run = Run.claim(cfg).path
    cpus(2)
    settle_threads(cfg, run)
    cpus(48)
    settled, threads = settle_threads(cfg, run)  # the job's own config still says auto
    assert settled.training_config.torch_threads == 2 and threads.source == "recorded"
    assert threads.oversubscribed() is None


@pytest.mark.parametrize(
    ("fixture", "threads"), [("config_2026-11_automotive.yaml", 0), ("config_2026-11_synthetic.yaml", 1)]
)
def test_configs_written_before_auto_keep_their_number(cpus, fixture: str, threads: int) -> None:
    """0 (torch's default) and explicit counts are used as given: old runs rerun as they ran."""
    cfg = load_yaml(FIXTURES / fixture)
    cpus(8)
    settled, given = settle_threads(cfg, None)
    assert settled == cfg and given.torch == threads and given.source == "config"


def test_more_threads_than_cpus_warn_with_the_fix(cpus, tmp_path: Path) -> None:
    cfg = with_threads(config(tmp_path), 8)
    cpus(2)
    _, threads = settle_threads(cfg, None)
    assert "8 torch threads on 2 CPU(s)" in threads.oversubscribed() and "auto" in threads.oversubscribed()


def test_a_config_yaml_with_auto_loads_and_a_bad_word_is_refused(tmp_path: Path) -> None:
    text = to_yaml(ExperimentConfig())
    assert "torch_threads: auto" in text
    data = yaml.safe_load(text)
    data["training_config"]["torch_threads"] = "many"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="torch_threads"):
        load_yaml(tmp_path / "bad.yaml")
