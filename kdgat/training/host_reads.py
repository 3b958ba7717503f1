"""Finding host syncs: the operators that make the host wait for the GPU to read a value back.

A training step on a GPU should queue work and move on; each `.item()`, `int(t)`, `if t:`, nonzero,
unique, boolean-mask index or copy to the host stops the host until the GPU has caught up. `HostReads`
is a TorchDispatchMode that sees every operator run inside it and records those. The tests use it on
the CPU (any_device=True: the same operators on CPU tensors stand in for GPU ones) and
benchmarks/gpu.py counts them per step on a real GPU.

Two reads are reported apart rather than as the step's own:
- `allowed` tensors, e.g. the optimizer's step counters, which live on the host on a GPU run too;
- PyG GATv2Conv's removal of self-loops (a boolean mask, twice per layer and pass): PyG's own, see
  docs/training.md#on-a-gpu.
"""

import sys
from collections.abc import Iterable
from types import FrameType
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten
READS = {
    "aten::_local_scalar_dense",  # .item(), int(), float(), bool()
    "aten::nonzero",
    "aten::masked_select",
    "aten::bincount",
    "aten::equal",
    "aten::is_nonzero",
    "aten::_unique",
    "aten::_unique2",
    "aten::unique_dim",
    "aten::unique_consecutive",
    "aten::unique_dim_consecutive",
}
REPEATS = {"aten::repeat_interleave.Tensor", "aten::repeat_interleave.self_Tensor"}  # sized by a sum
INDEXING = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default, aten._index_put_impl_.default}
COPIES = {aten._to_copy.default, aten.copy_.default}


def _caller() -> str:
    """Where the read was asked for: the innermost frame outside torch and this module."""
    frame: FrameType | None = sys._getframe()
    inside = ("/torch/", __file__)
    while frame is not None and any(part in frame.f_code.co_filename for part in inside):
        frame = frame.f_back
    if frame is None:
        return "?"
    return f"{'/'.join(frame.f_code.co_filename.split('/')[-2:])}:{frame.f_lineno} {frame.f_code.co_name}"


def _in_pyg_self_loop_removal() -> bool:
    frame: FrameType | None = sys._getframe()
    while frame is not None:
        if frame.f_code.co_name == "remove_self_loops" and "torch_geometric" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


def _mask(func: Any, args: tuple, kwargs: dict) -> torch.Tensor | None:
    """The boolean mask an indexing operator was given (it finds the mask's True positions, a
    nonzero on the mask's device), or None."""
    if func not in INDEXING:
        return None
    indices = args[1] if len(args) > 1 else kwargs.get("indices", [])
    masks = [i for i in indices if isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8)]
    return masks[0] if masks else None


class HostReads(TorchDispatchMode):
    """Records the host syncs of the code run inside it: `reads` ("operator at file:line function")
    and `pyg_self_loops` (a count). any_device: count reads of CPU tensors too (a CPU stand-in for a
    GPU run); otherwise only reads of device tensors and copies from a device to the host."""

    def __init__(self, allowed: Iterable[torch.Tensor] = (), any_device: bool = False) -> None:
        super().__init__()
        self.allowed = {t.untyped_storage().data_ptr() for t in allowed}
        self.any_device = any_device
        self.reads: list[str] = []
        self.pyg_self_loops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func.name()
        mask = _mask(func, args, kwargs)
        is_read = name in READS or mask is not None
        is_read |= name in REPEATS and kwargs.get("output_size") is None
        source = args[0] if args and isinstance(args[0], torch.Tensor) else None
        if mask is not None:
            source = mask
        if func in COPIES:  # to the host from a device: the host waits for the copy
            source = args[0] if func is aten._to_copy.default else args[1]
            target = out if func is aten._to_copy.default else args[0]
            is_read = source.device.type != "cpu" and target.device.type == "cpu"
        if not is_read or source is None:
            return out
        if not self.any_device and source.device.type == "cpu" and func not in COPIES:
            return out
        if source.untyped_storage().data_ptr() in self.allowed:
            return out
        if _in_pyg_self_loop_removal():
            self.pyg_self_loops += 1
        else:
            self.reads.append(f"{name}{' with a boolean mask' if mask is not None else ''} at {_caller()}")
        return out
