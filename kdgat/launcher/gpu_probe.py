"""`python -m kdgat.launcher.gpu_probe RUN_DIR...`: the GPUs a packed task sees and what one of its
runs needs, as one JSON line on stdout.

Run as a child of the packed task, so that the task's own process never creates a CUDA context
(torch.cuda.mem_get_info does; it would hold ~0.5 GiB for the whole task) nor imports torch.
"""

import json
import sys
from pathlib import Path
from typing import Any

from kdgat.config.codec import load_yaml
from kdgat.config.resolve import resolve
from kdgat.launcher.packing import CUDA_CONTEXT_BYTES, estimate_gpu_bytes


def gpus() -> list[dict[str, Any]]:
    """Each visible CUDA device: its CUDA_VISIBLE_DEVICES name, model and memory now."""
    import os

    import torch

    if not torch.cuda.is_available():
        return []
    names = [n for n in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if n.strip()]
    found = []
    for index in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(index)
        found.append(
            {
                "visible_id": names[index] if index < len(names) else str(index),
                "name": torch.cuda.get_device_name(index),
                "free_bytes": int(free),
                "total_bytes": int(total),
            }
        )
    return found


def run_bytes(run_dir: Path) -> int:
    """estimate_gpu_bytes for the run's config (the DQN agent trains on the CPU: a context only)."""
    from kdgat.models import nominal_parameter_count

    cfg = resolve(load_yaml(run_dir / "config.yaml"))
    if cfg.model_architecture == "DQN":
        return CUDA_CONTEXT_BYTES
    params, _ = nominal_parameter_count(cfg)
    modality = getattr(cfg.dataset_config, cfg.modality, None)
    size = cfg.model_size_config
    return estimate_gpu_bytes(
        params,
        cfg.training_config.batch_size,
        max(int(getattr(modality, "window", 100)), 64),
        int(size.hidden_dim or 64),
        int(size.num_layers or 1),
        cfg.distillation != "no",
    )


def main(argv: list[str]) -> int:
    found = gpus()
    per_run = max((run_bytes(Path(d)) for d in argv), default=0) if found else 0
    print(json.dumps({"gpus": found, "per_run_bytes": per_run}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
