"""best.pt and last.pt: what they hold, and the one place that writes and reads them.

Both files hold only tensors and plain data (dict, list, tuple, str, int, float, bool, None), so
they load with `torch.load(weights_only=True)`: a checkpoint from elsewhere cannot run code when
loaded (torch's full unpickler calls whatever functions the file names). What is not
plain in memory is converted on write and back on read (the numpy RNG state), and anything else
that is not plain is refused on write, so a bug shows when the file is saved, not when it is read.

On disk a checkpoint is a dict: {"format": FORMAT, "version": VERSION, "model", "epoch", "info",
"monitor", "resume"}. Files written before this module (version 1: one flat dict, no "format")
still load: best.pt is plain already; last.pt holds the numpy RNG state as an ndarray, which is
read under an allowlist of the few numpy types that make up arrays and scalars, then converted.
"""

import collections
import dataclasses
import pickle
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kdgat.common.errors import UserError
from kdgat.common.io import atomic_torch_save

FORMAT = "kdgat-checkpoint"
VERSION = 2


class CheckpointError(UserError):
    """A checkpoint that cannot be used: unsafe to load, unreadable, or from an incompatible kdgat."""


@dataclasses.dataclass
class RunInfo:
    """What a run's weights need around them to be used again: how its inputs were built (the
    config, CAN-ID vocabulary, normalisation, input dims) and which runs it built on."""

    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    """to_dict of the run's resolved config."""
    vocabulary: dict[int, int] = dataclasses.field(default_factory=dict)
    normalisation: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    upstream: dict[str, str] = dataclasses.field(default_factory=dict)
    """Field (vgae_run, gat_run, teacher_run) -> run directory, relative to the runs root."""
    input_dims: dict[str, Any] | None = None
    """Graph models: the argument of models.build_from_dims."""
    state_scaler: dict[str, list[float]] | None = None
    """The DQN agent: StateScaler.state_dict (its length is the state width)."""


@dataclasses.dataclass
class Resume:
    """What last.pt adds to the weights so that a resumed run ends exactly as an uninterrupted one."""

    step: int
    """Steps of `epoch` already done (0 at an epoch's end)."""
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    scaler: dict[str, Any]
    early_stopping: dict[str, Any]
    history: list[dict[str, Any]]
    rng: dict[str, Any]
    """capture_rng(): python, numpy, torch (and cuda) generator states, as plain data."""
    trainer: dict[str, Any]
    """Trainer.state_dict(): the trainer's own state (replay buffer, partial sums, ...)."""
    skipped_steps: int = 0
    """Steps of `epoch` so far that the GradScaler skipped (fp16; absent from older files)."""


@dataclasses.dataclass
class Checkpoint:
    model: dict[str, torch.Tensor]
    epoch: int
    """best.pt: the epoch of these weights; last.pt: the epoch to continue (with resume.step)."""
    info: RunInfo
    monitor: list[float] | None = None
    """best.pt: the validation value early stopping ranked this epoch by."""
    resume: Resume | None = None
    """last.pt only."""


def best_path(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints" / "best.pt"


def write_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Atomically (temp file + rename): a reader or a crash never sees half a checkpoint."""
    data = {"format": FORMAT, "version": VERSION, **_fields(checkpoint)}
    data["info"] = _fields(checkpoint.info)
    data["resume"] = _fields(checkpoint.resume) if checkpoint.resume is not None else None
    atomic_torch_save(path, _plain(data, "checkpoint"))


def _fields(obj: Any) -> dict[str, Any]:
    """A dataclass's fields, one level deep: dataclasses.asdict would deep-copy every tensor."""
    return {field.name: getattr(obj, field.name) for field in dataclasses.fields(obj)}


def read_checkpoint(path: Path, device: Any = "cpu") -> Checkpoint:
    """best.pt or last.pt, tensors on `device`; CheckpointError when it cannot be used."""
    path = Path(path)
    data = _load(path, device)
    if not isinstance(data, dict) or "model" not in data:
        raise CheckpointError(f"{path} is not a kdgat checkpoint (no model weights in it).")
    if data.get("format") != FORMAT:
        return _from_version_1(path, data)
    if data["version"] > VERSION:
        raise CheckpointError(
            f"{path} was written by a newer kdgat (checkpoint version {data['version']}, this one reads "
            f"up to {VERSION}); update kdgat to use it."
        )
    resume = data["resume"]
    return Checkpoint(
        model=data["model"],
        epoch=data["epoch"],
        info=RunInfo(**data["info"]),
        monitor=data["monitor"],
        resume=Resume(**resume) if resume is not None else None,
    )


def read_best(run_dir: Path, device: Any = "cpu") -> Checkpoint:
    return read_checkpoint(best_path(run_dir), device)


# -- RNG states as plain data


def capture_rng() -> dict[str, Any]:
    """Every generator the steps draw from; numpy's key array becomes a list of ints."""
    version, internal, gauss = random.getstate()
    numpy = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": {**numpy, "state": {**numpy["state"], "key": numpy["state"]["key"].tolist()}},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy = state["numpy"]
    key = np.asarray(numpy["state"]["key"], dtype=np.uint32)
    np.random.set_state({**numpy, "state": {**numpy["state"], "key": key}})
    torch.set_rng_state(state["torch"].cpu())  # map_location may have moved it; the CPU RNG wants it here
    if "cuda" in state and torch.cuda.is_available():
        # One state per GPU the writing job saw. A requeued job may land where fewer are visible:
        # restore those it has (a run trains on the first; the states of the others are unused).
        visible = torch.cuda.device_count()
        for index, cuda_state in enumerate(state["cuda"][:visible]):
            torch.cuda.set_rng_state(cuda_state.cpu(), index)


# -- plain data


_PLAIN = (str, int, float, bool, type(None))


def _plain(value: Any, where: str) -> Any:
    """value with numpy scalars as Python numbers and Paths as str; TypeError (naming where) for
    anything else torch.load(weights_only=True) would refuse. Checks types exactly: np.float64 is a
    float subclass, but pickles as a numpy object."""
    if type(value) in _PLAIN or isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if type(value) in (dict, collections.OrderedDict):  # module state dicts are OrderedDicts
        out = type(value)()
        for key, item in value.items():
            if type(key) not in (str, int):
                raise TypeError(f"{where}: key {key!r} ({type(key).__name__}) is not str or int")
            out[key] = _plain(item, f"{where}[{key!r}]")
        return out
    if type(value) in (list, tuple):
        return type(value)(_plain(item, f"{where}[{i}]") for i, item in enumerate(value))
    raise TypeError(
        f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which a checkpoint cannot "
        f"hold: store tensors and plain data (dict, list, str, int, float, bool, None) only"
    )


# -- reading


def _numpy_allowlist() -> list[tuple[Any, str]]:
    """What a version-1 last.pt's numpy RNG state (a uint32 array) and any numpy scalar need: types
    that rebuild arrays and numbers from bytes, none that calls arbitrary code. The functions are
    listed under numpy 2's and numpy 1's module names, as files written under either may arrive."""
    from numpy._core import multiarray

    entries = [
        (function, f"{module}.{function.__name__}")
        for function in (multiarray._reconstruct, multiarray.scalar)
        for module in ("numpy._core.multiarray", "numpy.core.multiarray")
    ]
    types = [np.ndarray, np.dtype]
    types += [type(np.dtype(t)) for t in (np.uint32, np.int64, np.int32, np.float64, np.float32, np.bool_)]
    return entries + [(t, f"{t.__module__}.{t.__qualname__}") for t in types]


def _load(path: Path, device: Any) -> Any:
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError:
        pass  # a version-1 last.pt (numpy RNG state), or a file that is not safe to load: see which
    except FileNotFoundError:
        raise
    except (RuntimeError, EOFError, OSError) as err:
        raise CheckpointError(f"{path} cannot be read as a checkpoint ({err}); it may be truncated.") from err
    allowlist = _numpy_allowlist()
    unsafe = set(torch.serialization.get_unsafe_globals_in_checkpoint(path)) - {name for _, name in allowlist}
    if unsafe:
        raise CheckpointError(
            f"{path} was refused: it holds pickled Python objects ({', '.join(sorted(unsafe))}) that "
            f"loading would construct or call, so it could run code. kdgat checkpoints hold only "
            f"tensors and plain data. Do not load files from sources you do not trust; if it is yours, "
            f"retrain the run from its config: python train.py --config {path.parent.parent / 'config.yaml'}"
        )
    try:
        safe: list[Callable[..., Any] | tuple[Callable[..., Any], str]] = [*allowlist]
        with torch.serialization.safe_globals(safe):
            return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path} was refused: torch.load(weights_only=True) would not read it ({err})."
        ) from err


def _numbers(value: Any) -> Any:
    """Version 1 files: numpy arrays and scalars -> lists and Python numbers."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return type(value)((k, _numbers(v)) for k, v in value.items())
    if type(value) in (list, tuple):
        return type(value)(_numbers(v) for v in value)
    return value


_INFO = tuple(field.name for field in dataclasses.fields(RunInfo))
_RESUME = ("optimizer", "scheduler", "scaler", "step", "early_stopping", "history", "rng")


def _from_version_1(path: Path, data: dict[str, Any]) -> Checkpoint:
    """A flat dict: model, epoch, the run info keys; last.pt also the skeleton's resume keys, the
    trainer's own keys beside them, and the RNG states in their native types."""
    info = RunInfo(**{key: data[key] for key in _INFO if key in data})
    if not any(key in data for key in _RESUME):
        return Checkpoint(model=data["model"], epoch=data["epoch"], info=info)
    missing = [key for key in ("model", "epoch", *_RESUME) if key not in data]
    if missing:
        raise CheckpointError(
            f"{path} was written by an older kdgat (it lacks {', '.join(missing)}), so this run cannot "
            f"continue exactly. Start it afresh from its config: python train.py --config "
            f"{path.parent.parent / 'config.yaml'}"
        )
    python, numpy = data["rng"]["python"], data["rng"]["numpy"]
    _, key, pos, has_gauss, gauss = numpy  # np.random.get_state()'s legacy tuple
    rng = {
        **data["rng"],
        "python": [python[0], list(python[1]), python[2]],
        "numpy": {
            "bit_generator": str(numpy[0]),
            "state": {"key": key.tolist(), "pos": int(pos)},
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
    }
    own = {key: value for key, value in data.items() if key not in ("model", "epoch", *_INFO, *_RESUME)}
    resume = Resume(
        **{key: _numbers(data[key]) for key in _RESUME if key != "rng"}, rng=rng, trainer=_numbers(own)
    )
    return Checkpoint(model=data["model"], epoch=data["epoch"], info=info, resume=resume)
