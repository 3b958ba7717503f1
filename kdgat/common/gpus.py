"""The share of its GPU's memory a run may plan on.

A packed task (launch.py --runs-per-task) that runs n runs at once on one GPU tells each, in
GPU_SHARE_ENV, that it has 1/n of the memory that was free when the task started. Whatever
sizes itself by free GPU memory (keeping the graphs on the GPU, say) takes `gpu_memory_share()`
of it, so runs started together do not each plan on all of it. A run alone has all of it.
"""

import os

GPU_SHARE_ENV = "KDGAT_GPU_MEMORY_SHARE"


def gpu_memory_share() -> float:
    """This run's share of its GPU's free memory, in (0, 1]; 1 when unset or not a fraction."""
    try:
        share = float(os.environ.get(GPU_SHARE_ENV, "1"))
    except ValueError:
        return 1.0
    return share if 0 < share <= 1 else 1.0
