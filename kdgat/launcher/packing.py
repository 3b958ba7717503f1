"""--runs-per-task K: several runs of an array stage in one Slurm task (one GPU allocation).

Which runs share a task is fixed when the launch is planned (`pack`): a stage's runs in order,
K per task, the last task taking what is left, so 96 runs at K = 8 are an array of 12 tasks and
`--dry-run` lists each task's runs. How many of a task's runs go at once is decided in the task,
at its start, where its CPUs and GPU are known (`decide`):

- on a GPU, as many as fit its free memory (torch.cuda.mem_get_info at task start, less
  GPU_HEADROOM) at the estimated memory of one run (`--gpu-gb-per-run`, or `estimate_gpu_bytes`:
  a CUDA context, fp32 weights with gradients and Adam's two moments, and one batch's
  activations); the rest wait for a slot, so runs that would not fit go in turn;
- on the CPU, at most one run per CPU of the task.

Each running run gets its own slice of the task's CPUs (`cpu_slices`, its affinity mask, so
torch's threads follow: `threads = cpus / runs at once`) and, on a task with several GPUs, a GPU
of its own in turn.
"""

import dataclasses
from typing import Any

from kdgat.common.cpus import share

GPU_HEADROOM = 0.10  # of the free memory left unplanned: allocator fragmentation, estimate error
# one process's CUDA context and cuBLAS/cuDNN workspaces (typically 0.3-0.6 GiB, by GPU and CUDA)
CUDA_CONTEXT_BYTES = 600 * 2**20
ACTIVATION_FACTOR = 12  # saved tensors per (node, channel, layer) for backward: attention, dropout, norm


def pack(n_runs: int, per_task: int) -> list[list[int]]:
    """Positions of a stage's runs, per task: K consecutive runs each, the last task the rest."""
    if per_task < 1:
        raise ValueError(f"runs per task must be >= 1, got {per_task}")
    return [list(range(start, min(start + per_task, n_runs))) for start in range(0, n_runs, per_task)]


@dataclasses.dataclass(frozen=True)
class Gpu:
    """One GPU the task sees: its CUDA_VISIBLE_DEVICES name and memory at task start."""

    visible_id: str
    name: str
    free_bytes: int
    total_bytes: int


@dataclasses.dataclass(frozen=True)
class Slots:
    """How a packed task runs its runs: `at_once` at a time, each on cpu_slices[i] (and gpus[i])."""

    at_once: int
    why: str
    cpu_slices: list[list[int]]
    gpus: list[str | None]

    def describe(self) -> dict[str, Any]:
        return {"at_once": self.at_once, "why": self.why}


def cpu_slices(cpus: list[int], at_once: int) -> list[list[int]]:
    """The task's CPUs cut into `at_once` contiguous slices as equal as can be; with more runs
    than CPUs (GPU runs on a small CPU request) runs share CPUs, one each."""
    cpus = sorted(cpus)
    if at_once >= len(cpus):
        return [[cpus[i % len(cpus)]] for i in range(at_once)]
    size, extra = divmod(len(cpus), at_once)
    slices, start = [], 0
    for i in range(at_once):
        end = start + size + (1 if i < extra else 0)
        slices.append(cpus[start:end])
        start = end
    return slices


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def decide(runs: int, cpus: list[int], gpus: list[Gpu], per_run_bytes: int | None, sharing: int = 1) -> Slots:
    """How many of `runs` run at once (module docstring). `gpus` empty: the runs train on the CPU.
    `sharing`: tasks sharing these CPUs (the local executor's jobs at once; 1 on Slurm)."""
    if runs < 1:
        return Slots(0, "nothing left to run", [], [])
    if not gpus:
        part = share(len(cpus), sharing)
        at_once = max(1, min(runs, part))
        shared = f" (this task's part of {len(cpus)}, shared by {sharing} tasks)" if sharing > 1 else ""
        why = f"{part} CPU(s){shared}, at most one run per CPU"
        return Slots(at_once, why, cpu_slices(cpus, at_once), [None] * at_once)
    need = max(1, per_run_bytes or CUDA_CONTEXT_BYTES)
    fit = [max(0, int(g.free_bytes * (1 - GPU_HEADROOM)) // need) for g in gpus]
    at_once = max(1, min(runs, sum(fit)))
    free = ", ".join(f"{g.visible_id} {g.name}: {_gib(g.free_bytes)} free" for g in gpus)
    why = f"one run needs ~{_gib(need)} of GPU memory; {free}; {sum(fit)} fit at once"
    if sum(fit) == 0:
        why += " (not even one: running in turn, one at a time)"
    slots: list[str | None] = [gpus[i].visible_id for i in _round_robin(fit)[:at_once]]
    return Slots(at_once, why, cpu_slices(cpus, at_once), slots or [gpus[0].visible_id])


def _round_robin(counts: list[int]) -> list[int]:
    """GPU indices for the slots, taking the GPUs in turn (a first run on each before a second on
    any), each at most as often as its count."""
    return [gpu for round_ in range(max(counts, default=0)) for gpu, n in enumerate(counts) if round_ < n]


def estimate_gpu_bytes(
    params: int, batch_size: int, nodes_per_graph: int, width: int, layers: int, distilled: bool
) -> int:
    """A deliberately generous estimate of one run's GPU memory (module docstring); graphs kept on
    the GPU are not counted: set --gpu-gb-per-run for large data sets."""
    model = params * 4 * 4 * (2 if distilled else 1)  # weights, grads, Adam m and v (a teacher's weights too)
    activations = batch_size * nodes_per_graph * width * max(1, layers) * 4 * ACTIVATION_FACTOR
    return CUDA_CONTEXT_BYTES + model + activations
