"""Which GPUs the local executor's jobs see.

submitit's LocalExecutor sets each job's CUDA_VISIBLE_DEVICES from its `gpus_per_node` and
`visible_gpus` parameters, and to "" when none are given: left alone, every local job on a GPU
workstation (or inside an interactive Slurm GPU allocation) would see no GPU, and `--device auto`
would train it on the CPU without a word. The launcher instead gives each job one of the GPUs
launch.py itself sees: the one the fewest running jobs hold (kdgat trains a run on one GPU, so
jobs at --parallelism N on N GPUs get one each, a job that ends frees its GPU for the next, and
more jobs than GPUs share them evenly).
"""

import os
import sys
from typing import Any

VISIBLE = "CUDA_VISIBLE_DEVICES"


def launching_gpus() -> list[int]:
    """The GPUs this process may use, as the indices submitit passes on: CUDA_VISIBLE_DEVICES's
    entries where it is set, read as CUDA reads them (up to the first entry that names no device:
    "", "-1" and "NoDevFiles" hide every GPU), else every GPU torch counts on this machine."""
    given = os.environ.get(VISIBLE)
    if given is None:
        import torch  # only for a local launch: its jobs import it anyway

        return list(range(torch.cuda.device_count()))
    gpus: list[int] = []
    for entry in (e.strip() for e in given.split(",")):
        if entry.startswith(("GPU-", "MIG-")):
            # submitit takes indices only, so a job cannot be given a GPU named this way; say so
            # rather than let the jobs fall back to the CPU unannounced.
            print(
                f"launch.py: {VISIBLE}={given!r} names GPUs by UUID; the local executor hands jobs "
                f"GPUs by index only, so its jobs will see no GPU and `--device auto` trains them on "
                f"the CPU. Set {VISIBLE} to indices (`nvidia-smi -L` lists them) to give them the GPUs.",
                file=sys.stderr,
            )
            return []
        if not entry.isdecimal():
            break
        gpus.append(int(entry))
    return gpus


class GpuShare:
    """The GPUs of the local jobs: each new job gets the one the fewest running jobs hold (the
    first listed among equals), and gives it back when it ends."""

    def __init__(self, gpus: list[int]) -> None:
        self.running = dict.fromkeys(gpus, 0)
        self.held: dict[str, int] = {}

    def next_gpu(self) -> int | None:
        """The GPU for the next job, None where there is none."""
        return min(self.running, key=self.running.__getitem__) if self.running else None

    def hold(self, job_id: str, gpu: int | None) -> None:
        if gpu is not None:
            self.running[gpu] += 1
            self.held[job_id] = gpu

    def release(self, job_id: str) -> None:
        if (gpu := self.held.pop(job_id, None)) is not None:
            self.running[gpu] -= 1


def executor_gpus(gpu: int | None) -> dict[str, Any]:
    """LocalExecutor parameters that show a job this GPU only (None: none, as submitit's default)."""
    return (
        {"gpus_per_node": 0, "visible_gpus": ()}
        if gpu is None
        else {"gpus_per_node": 1, "visible_gpus": (gpu,)}
    )
