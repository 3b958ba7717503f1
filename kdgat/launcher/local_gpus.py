"""Which GPUs the local executor's jobs see.

submitit's LocalExecutor sets each job's CUDA_VISIBLE_DEVICES from its `gpus_per_node` and
`visible_gpus` parameters, and to "" when none are given: left alone, every local job on a GPU
workstation (or inside an interactive Slurm GPU allocation) would see no GPU, and `--device auto`
would train it on the CPU without a word. The launcher instead hands each job one of the GPUs
that launch.py itself sees, in turn (kdgat trains a run on one GPU, so jobs at --parallelism N on
N GPUs get one each, and more jobs than GPUs share them).
"""

import itertools
import os
import sys
from collections.abc import Iterator

VISIBLE = "CUDA_VISIBLE_DEVICES"


def launching_gpus() -> list[int]:
    """The GPUs this process may use, as the indices submitit passes on: CUDA_VISIBLE_DEVICES's
    entries where it is set (empty: none), else every GPU torch counts on this machine."""
    given = os.environ.get(VISIBLE)
    if given is None:
        import torch  # only for a local launch: the jobs import it anyway

        return list(range(torch.cuda.device_count()))
    entries = [entry.strip() for entry in given.split(",") if entry.strip()]
    if not all(entry.isdigit() for entry in entries):
        # GPU-<uuid> or MIG-<uuid> names: submitit takes indices only, so a job cannot be given
        # one of these; say so rather than let the jobs fall back to the CPU unannounced.
        print(
            f"launch.py: {VISIBLE}={given!r} names GPUs by UUID; the local executor hands jobs GPUs "
            f"by index only, so its jobs will see no GPU and `--device auto` trains them on the "
            f"CPU. Set {VISIBLE} to indices (`nvidia-smi -L` lists them) to give them the GPUs.",
            file=sys.stderr,
        )
        return []
    return [int(entry) for entry in entries]


def gpu_turns(gpus: list[int]) -> Iterator[dict[str, object]]:
    """For each local job in turn, the LocalExecutor parameters that give it one of `gpus`
    (none: no GPU, as submitit does by default)."""
    if not gpus:
        return itertools.repeat({"gpus_per_node": 0, "visible_gpus": ()})
    return ({"gpus_per_node": 1, "visible_gpus": (gpu,)} for gpu in itertools.cycle(gpus))
