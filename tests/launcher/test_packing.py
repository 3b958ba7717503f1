"""--runs-per-task: which runs share a task (fixed at planning) and how many of them go at once
(decided in the task from its CPUs and its GPU's free memory)."""

import dataclasses
from pathlib import Path

import pytest

from configs import ExperimentConfig
from kdgat.common.cpus import RUNS_SHARING_ENV
from kdgat.common.gpus import GPU_SHARE_ENV
from kdgat.config.resolve import resolve
from kdgat.launcher import packed_job
from kdgat.launcher.gpu_probe import run_bytes
from kdgat.launcher.packed_job import PackedJob, run_env
from kdgat.launcher.packing import CUDA_CONTEXT_BYTES, Gpu, cpu_slices, decide, estimate_gpu_bytes, pack
from kdgat.launcher.plan import Unit
from kdgat.runs.store import Run

GIB = 2**30


def test_96_runs_at_8_per_task_are_12_tasks_of_consecutive_runs() -> None:
    tasks = pack(96, 8)
    assert len(tasks) == 12
    assert tasks == [list(range(8 * t, 8 * t + 8)) for t in range(12)]


@pytest.mark.parametrize(
    ("runs", "per_task", "expected"),
    [
        (10, 4, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]),  # K does not divide N: the last task takes the rest
        (3, 8, [[0, 1, 2]]),  # fewer runs than K: one task
        (3, 1, [[0], [1], [2]]),  # K = 1: one run per task, as without packing
        (0, 4, []),
    ],
)
def test_packing_when_k_does_not_divide_n(runs: int, per_task: int, expected: list[list[int]]) -> None:
    assert pack(runs, per_task) == expected
    assert sorted(i for task in pack(runs, per_task) for i in task) == list(range(runs))


def test_k_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match=">= 1"):
        pack(4, 0)


def test_a_unit_knows_its_tasks() -> None:
    unit = Unit("kdgat", [ExperimentConfig()] * 5, runs_per_task=2)
    assert unit.task_groups() == [[0, 1], [2, 3], [4]]
    assert Unit("kdgat", [ExperimentConfig()] * 5).task_groups() == [[i] for i in range(5)]


def test_on_the_cpu_at_most_one_run_per_cpu_each_on_its_own_slice() -> None:
    slots = decide(8, [0, 1, 2, 3], [], None)
    assert slots.at_once == 4 and slots.cpu_slices == [[0], [1], [2], [3]] and slots.gpus == [None] * 4
    slots = decide(2, [0, 1, 2, 3], [], None)
    assert slots.at_once == 2 and slots.cpu_slices == [[0, 1], [2, 3]]
    assert decide(8, [0, 1], [], None, sharing=2).at_once == 1  # the local executor's tasks share them
    assert decide(3, [5], [], None).at_once == 1  # one CPU: in turn


def test_cpu_slices_are_as_equal_as_can_be_and_shared_when_runs_outnumber_cpus() -> None:
    assert cpu_slices([0, 1, 2, 3, 4], 2) == [[0, 1, 2], [3, 4]]
    assert cpu_slices([2, 3], 4) == [[2], [3], [2], [3]]


def test_on_a_gpu_as_many_run_at_once_as_fit_its_free_memory_the_rest_in_turn() -> None:
    v100 = Gpu("0", "Tesla V100-PCIE-16GB", free_bytes=10 * GIB, total_bytes=16 * GIB)
    slots = decide(8, [0, 1, 2, 3], [v100], 3 * GIB)  # 90 % of 10 GiB holds three runs of 3 GiB
    assert slots.at_once == 3 and slots.gpus == ["0", "0", "0"]
    assert "3.0 GiB" in slots.why and "10.0 GiB free" in slots.why
    alone = decide(8, [0, 1, 2, 3], [v100], 20 * GIB)  # not even one fits: one at a time
    assert alone.at_once == 1 and "in turn" in alone.why
    small = decide(8, [0, 1, 2, 3], [v100], 100 * 2**20)  # many would fit: all 8, sharing the 4 CPUs
    assert small.at_once == 8 and small.cpu_slices == [[0], [1], [2], [3], [0], [1], [2], [3]]


def test_a_task_with_two_gpus_spreads_its_runs_over_both() -> None:
    gpus = [Gpu(str(i), "NVIDIA A100", 10 * GIB, 40 * GIB) for i in (2, 3)]
    slots = decide(8, list(range(8)), gpus, 4 * GIB)  # two per GPU
    assert slots.at_once == 4 and slots.gpus == ["2", "3", "2", "3"]


def test_the_gpu_estimate_grows_with_the_model_and_the_batch() -> None:
    base = estimate_gpu_bytes(10_000, 64, 100, 64, 2, distilled=False)
    assert base > CUDA_CONTEXT_BYTES
    assert estimate_gpu_bytes(1_000_000, 64, 100, 64, 2, False) > base
    assert estimate_gpu_bytes(10_000, 256, 100, 64, 2, False) > base
    assert estimate_gpu_bytes(10_000, 64, 100, 64, 2, distilled=True) > base


def claimed(tmp_path: Path, **changes) -> Path:
    cfg = dataclasses.replace(ExperimentConfig(runs_root=tmp_path / "runs"), **changes)
    return Run.claim(resolve(cfg)).path


def test_a_run_estimate_reads_its_config_and_a_teacher_needs_more_than_a_tiny_model(tmp_path: Path) -> None:
    tiny = run_bytes(claimed(tmp_path, model_size="tiny"))
    teacher = run_bytes(claimed(tmp_path, model_size="teacher"))
    assert CUDA_CONTEXT_BYTES < tiny < teacher


def test_a_packed_task_on_a_full_gpu_runs_in_turn_and_on_the_cpu_never_probes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decision in the task itself, with the GPU probe patched (no GPU here)."""
    dirs = [claimed(tmp_path, device="cuda") for _ in range(4)]
    probed: list[list[Path]] = []

    def fake_probe(run_dirs: list[Path]) -> tuple[list[Gpu], int | None, str]:
        probed.append(run_dirs)
        return [Gpu("0", "Tesla V100-SXM2-16GB", 3 * GIB, 16 * GIB)], 2 * GIB, ""

    monkeypatch.setattr(packed_job, "probe", fake_probe)
    monkeypatch.setattr(packed_job.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    job = PackedJob([str(d) for d in dirs], "kdgat")
    slots = job.slots(dirs)
    assert probed == [dirs] and slots.at_once == 1 and slots.gpus == ["0"]  # 2.7 GiB usable, 2 GiB each
    roomy = PackedJob([str(d) for d in dirs], "kdgat", gpu_bytes_per_run=GIB // 2).slots(dirs)
    assert roomy.at_once == 4  # --gpu-gb-per-run 0.5: five would fit, four are asked
    cpu_dirs = [claimed(tmp_path, device="cpu") for _ in range(2)]
    probed.clear()
    assert PackedJob([str(d) for d in cpu_dirs]).slots(cpu_dirs).at_once == 2
    assert probed == []  # CPU runs: no GPU probe


def test_an_unknown_gpu_means_one_run_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dirs = [claimed(tmp_path, device="auto") for _ in range(3)]
    monkeypatch.setattr(packed_job, "probe", lambda run_dirs: ([], None, "the GPU probe failed (boom)"))
    slots = PackedJob([str(d) for d in dirs]).slots(dirs)
    assert slots.at_once == 1 and "probe failed" in slots.why


def test_each_run_is_told_its_threads_its_gpu_and_its_share_of_that_gpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(RUNS_SHARING_ENV, raising=False)
    gpus = [Gpu(str(i), "NVIDIA A100", 10 * GIB, 40 * GIB) for i in (2, 3)]
    slots = decide(3, list(range(8)), gpus, 4 * GIB)  # three at once: two on GPU 2, one on GPU 3
    assert slots.gpus == ["2", "3", "2"]
    envs = [run_env(slots, slot) for slot in range(3)]
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["2", "3", "2"]
    assert [float(e[GPU_SHARE_ENV]) for e in envs] == [0.5, 1.0, 0.5]
    assert [e["OMP_NUM_THREADS"] for e in envs] == ["3", "3", "2"]  # 8 CPUs in slices of 3, 3, 2
    cpu_only = run_env(decide(2, [0, 1, 2, 3], [], None), 0)
    assert cpu_only["OMP_NUM_THREADS"] == "2" and "CUDA_VISIBLE_DEVICES" not in cpu_only
