"""The run's CUDA device: what makes its results repeatable, and what status.json records of it.

On a GPU "same config and seed, identical metrics" holds for the same GPU model and the same
software (torch, CUDA, cuDNN): kernels differ between GPU generations and library versions, and
atomics make some of PyG's scatter sums order-dependent. gpu_record keeps what a comparison needs.
"""

import os
from typing import Any

import torch

CUBLAS_WORKSPACE = ":4096:8"
"""cuBLAS's fixed workspace under which its results repeat (":16:8" too, slower, less memory)."""


def deterministic_cublas() -> None:
    """Make cuBLAS repeatable: it reads CUBLAS_WORKSPACE_CONFIG once, at the first matrix product on
    the GPU, so this runs before anything touches CUDA (run_experiment's first step). A value the
    user set is kept. Without one, cuBLAS may pick different kernels from run to run and torch's
    deterministic mode warns at every product."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)


def gpu_record(device: torch.device) -> dict[str, Any] | None:
    """The GPU a run trains on and the software around it (None on the CPU), for status.json."""
    if device.type != "cuda":
        return None
    major, minor = torch.cuda.get_device_capability(device)
    return {
        "name": torch.cuda.get_device_name(device),
        "compute_capability": f"{major}.{minor}",
        "visible_gpus": torch.cuda.device_count(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    }
