"""One preparation per cache entry: processes started together build each entry once, the others
wait and read it; a builder killed mid-write leaves neither a partial entry nor a lock that blocks."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import configs
from kdgat.data import cache
from kdgat.data.automotive.modality import AUTOMOTIVE
from kdgat.data.cache import entry_lock, load_entry, lock_path
from kdgat.data.prepare import cache_target, prepare_file
from tests.helpers import REPO, shared_data

PROCESSES = 4

# A process that loads set_01's splits once every sibling is ready (so they really start together)
# and prints what it built, waited for and read (preprocess), and a digest of the graphs it got.
LOAD = """
import hashlib, json, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
import configs, dataclasses
from kdgat.data.dataset import load_splits
cfg = configs.ExperimentConfig(dataset="set01")
d = dataclasses.replace(cfg.dataset_config, data_root=Path({root!r}), cache_dir=Path({cache!r}))
cfg = dataclasses.replace(cfg, dataset_config=d)
Path({ready!r}).touch()
while not Path({go!r}).exists():
    time.sleep(0.02)
splits = load_splits(cfg)
digest = hashlib.sha256()
for graphs in (splits.train, splits.val, *splits.test.values()):
    for part in (graphs.y, graphs.node_ptr, graphs.edge_ptr, graphs.frame_start):
        digest.update(part.numpy().tobytes())
print(json.dumps({{**splits.preprocess, "digest": digest.hexdigest()}}))
"""

# Prepare one capture, but die in the middle of writing its entry: the patched writer writes
# half of the entry's temp file, says so, and waits to be killed.
DIE_WRITING = """
import sys, time, dataclasses
from pathlib import Path
sys.path.insert(0, {repo!r})
import configs
from kdgat.common.io import atomic_open
from kdgat.data import prepare
from kdgat.data.automotive.modality import AUTOMOTIVE

def half_then_hang(path, arrays, meta):
    with atomic_open(path, fsync=False) as handle:
        handle.write(b"KDGATGRAPHS\\x00" + bytes(4096))
        handle.flush()
        Path({ready!r}).touch()
        time.sleep(600)

prepare.save_entry = half_then_hang
d = dataclasses.replace(configs.DatasetConfig(), cache_dir=Path({cache!r}))
prepare.prepare_file(Path({capture!r}), "can4", "whole", d, AUTOMOTIVE)
"""


def set01() -> Path:
    return shared_data("can_train_and_test") / "set_01"


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_processes_started_together_prepare_each_entry_once(tmp_path: Path) -> None:
    """PROCESSES loads of set_01 on one empty cache, with one entry's lock held by this test until
    every process says it waits for it: each entry is built once, the rest are read."""
    root = set01().parent
    captures = sorted(set01().rglob("*.csv.gz"))
    held_capture = set01() / "train_02_with_attacks" / "targeted_payload_fuzzing-2.csv.gz"
    d = dataclasses.replace(configs.DatasetConfig(), cache_dir=tmp_path / "cache")
    held = entry_lock(cache_target(held_capture, "can4", "train_val", d, AUTOMOTIVE))
    held.acquire()
    go = tmp_path / "go"
    procs, logs = [], []
    for n in range(PROCESSES):
        ready, logs = tmp_path / f"ready{n}", [*logs, tmp_path / f"out{n}"]
        paths = {"root": root, "cache": d.cache_dir, "ready": ready, "go": go}
        script = LOAD.format(repo=str(REPO), **{k: str(v) for k, v in paths.items()})
        with open(logs[-1], "w") as out:
            command = [sys.executable, "-c", script]
            procs.append(subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT))
    for n, proc in enumerate(procs):
        wait_for(tmp_path / f"ready{n}", proc)
    go.touch()
    says = f"waiting for pid {os.getpid()} on host {os.uname()[1]}, which is preparing {held_capture.name}"
    deadline = time.monotonic() + 300
    while not all(says in log.read_text() for log in logs):
        assert all(p.poll() is None for p in procs) and time.monotonic() < deadline, [
            log.read_text() for log in logs
        ]
        time.sleep(0.05)
    held.release()  # released without an entry: one waiter builds it, the others read it
    reports = []
    for proc, log in zip(procs, logs, strict=True):
        assert proc.wait(timeout=600) == 0, log.read_text()
        reports.append(json.loads(log.read_text().strip().splitlines()[-1]))
    assert sum(r["cache_misses"] for r in reports) == len(captures)
    assert sum(r["cache_hits"] + r["cache_waited"] for r in reports) == (PROCESSES - 1) * len(captures)
    assert len({r["digest"] for r in reports}) == 1
    entries = sorted((tmp_path / "cache" / "graphs").rglob("*.kdg"))
    assert len(entries) == len(captures) and all(load_entry(e) is not None for e in entries)
    assert not list((tmp_path / "cache").rglob("*.lock")) and not list((tmp_path / "cache").rglob("*.tmp"))


def test_a_builder_killed_mid_write_leaves_no_partial_entry_and_no_blocking_lock(tmp_path: Path) -> None:
    capture = set01() / "train_02_with_attacks" / "DoS-1.csv.gz"
    d = dataclasses.replace(configs.DatasetConfig(), cache_dir=tmp_path / "cache")
    target = cache_target(capture, "can4", "whole", d, AUTOMOTIVE)
    ready = tmp_path / "writing"
    paths = {"repo": REPO, "cache": d.cache_dir, "ready": ready, "capture": capture}
    script = DIE_WRITING.format(**{k: str(v) for k, v in paths.items()})
    builder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(ready, builder)
    os.kill(builder.pid, signal.SIGKILL)
    builder.wait()
    # The killed builder left its lock marker and a half-written temp file, but no entry.
    assert lock_path(target).exists() and list(target.parent.glob(f".{target.name}.*.tmp"))
    assert not target.exists()

    started = time.monotonic()
    prepared = prepare_file(capture, "can4", "whole", d, AUTOMOTIVE)
    # Taken over at once (the holder's pid is dead on this host), not after the lease expires.
    assert time.monotonic() - started < cache.LEASE_SECONDS
    assert not prepared.cached
    assert not lock_path(target).exists() and not list(target.parent.glob("*.tmp"))
    uncached = prepare_file(capture, "can4", "whole", dataclasses.replace(d, cache=False), AUTOMOTIVE)
    arrays, _ = load_entry(target)
    for role, raw in uncached.blocks.items():
        for name, array in raw.items():
            assert np.array_equal(arrays[f"{role}.{name}"], array), (role, name)


def test_a_lock_held_on_another_node_is_taken_over_once_its_lease_runs_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A holder on another host cannot be probed by pid: its marker, no longer renewed, is taken
    over after the lease (shortened here), and the waiter names it while it waits."""
    monkeypatch.setattr(cache, "LEASE_SECONDS", 1.0)
    monkeypatch.setattr(cache, "LOCK_POLL_SECONDS", 0.05)
    capture = set01() / "train_02_with_attacks" / "DoS-1.csv.gz"
    d = dataclasses.replace(configs.DatasetConfig(), cache_dir=tmp_path / "cache")
    target = cache_target(capture, "can4", "whole", d, AUTOMOTIVE)
    target.parent.mkdir(parents=True)
    lock_path(target).write_text(
        "filelock/2\npid=4242\nhost=node-elsewhere\nmode=lease\ntoken=0f\nduration=1.0\nstart=1\n"
    )
    prepared = prepare_file(capture, "can4", "whole", d, AUTOMOTIVE)
    assert not prepared.cached and load_entry(target) is not None
    assert "waiting for pid 4242 on host node-elsewhere" in capsys.readouterr().out
    assert not lock_path(target).exists()


def test_a_held_lock_makes_a_second_claim_fail_until_released(tmp_path: Path) -> None:
    target = tmp_path / "graphs" / "ab" / "abc.kdg"
    held = entry_lock(target)
    held.acquire()
    assert cache.try_lock(target) is None
    assert cache.lock_holder(target) == f"pid {os.getpid()} on host {os.uname()[1]}"
    held.release()
    again = cache.try_lock(target)
    assert again is not None
    again.release()
