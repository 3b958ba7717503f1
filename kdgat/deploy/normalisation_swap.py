"""A car's normalisation in place of the run's, in every kind of artefact, without re-exporting.

The exported models hold the normalisation as four named tensors (x_mean, x_std, e_mean, e_std:
plain.py's and batched.py's buffers, which the ONNX export keeps as initializers of those names,
and the native model as the first four tensors of its packed buffer). A detector calibrating
itself on a car (kdgat/deploy/calibrate.py) swaps them for the car's fit, so the artefact scores
exactly as one exported with that normalisation (kdgat.export --calibration) would.
"""

from pathlib import Path
from typing import Any

import numpy as np
import torch

from kdgat.common.errors import UserError
from kdgat.config.resolve import calibration_rule

# The normalisation buffers of the exported modules (plain.py, batched.py) and their keys.
NORMALISATION_BUFFERS = {"x_mean": "x_mean", "x_std": "x_std", "e_mean": "edge_mean", "e_std": "edge_std"}


def onnx_normalisation(proto: Any, normalisation: dict[str, list[float]], path: Path) -> None:
    """Replace the model's normalisation initializers (named as the buffers) with a car's."""
    from onnx import numpy_helper

    replaced = 0
    for tensor in proto.graph.initializer:
        if tensor.name in NORMALISATION_BUFFERS:
            values = np.asarray(normalisation[NORMALISATION_BUFFERS[tensor.name]], np.float32)
            if tuple(tensor.dims) != values.shape:
                raise UserError(
                    f"{path}: its {tensor.name} holds {list(tensor.dims)} values, the calibration's "
                    f"{values.shape[0]}; calibrate an artefact of the same feature set."
                )
            tensor.CopyFrom(numpy_helper.from_array(values, tensor.name))
            replaced += 1
    if replaced != len(NORMALISATION_BUFFERS):
        raise UserError(
            f"{path}: its normalisation is not held where kdgat's export puts it, so it cannot be "
            f"calibrated; export the run again (python -m kdgat.export RUN_DIR)."
        )


def set_normalisation(module: Any, normalisation: dict[str, list[float]] | None) -> Any:
    """A torch or TorchScript module (plain.py, batched.py) with a car's normalisation buffers."""
    if normalisation is not None:
        with torch.no_grad():
            for buffer, key in NORMALISATION_BUFFERS.items():
                getattr(module, buffer).copy_(torch.tensor(normalisation[key], dtype=torch.float32))
    return module


def native_with_normalisation(native: Any, normalisation: dict[str, list[float]]) -> Any:
    """A NativeGAT (kdgat/deploy/native.py) scoring with this normalisation: its packed buffer
    copied with the first four tensors replaced; the compiled kernels are the same (no recompile)."""
    import copy

    from kdgat.deploy.native import _PACKED

    params, index, head_dims, ints = native._packed
    params = params.copy()
    for k, (name, key) in enumerate(NORMALISATION_BUFFERS.items()):
        assert _PACKED[k] == name  # the packed order native.py documents
        values = np.asarray(normalisation[key], np.float32)
        offset, size = int(index[k, 0]), int(index[k, 1])
        if values.shape != (size,):
            raise UserError(
                f"the native model's {name} holds {size} values, the calibration's {values.shape[0]}."
            )
        params[offset : offset + size] = values
    other = copy.copy(native)
    other._packed = (params, index, head_dims, ints)
    return other


def calibration_knobs(cfg: Any) -> dict[str, Any]:
    """The run's rule for a threshold on a car's calibration windows (kdgat/evaluation/thresholds.py)."""
    t = cfg.learning_config.threshold
    return {"rule": calibration_rule(cfg), "quantile": t.calibration_quantile, "margin": t.calibration_margin}


def calibrated_meta(meta: dict[str, Any], fitted: Any) -> dict[str, Any]:
    """An artefact's metadata for a car: its vocabulary map, normalisation and threshold, what
    they were fitted on (calibration), and the run's own (trained: a detector calibrating it
    for another car maps that car's IDs onto the training vocabulary)."""
    trained = meta.get("trained") or {k: meta[k] for k in ("vocabulary", "normalisation", "threshold")}
    return {
        **meta,
        "vocabulary": {str(k): v for k, v in sorted(fitted.vocabulary.items())},
        "normalisation": fitted.normalisation,
        "threshold": fitted.threshold,
        "calibration": fitted.info,
        "trained": trained,
    }
