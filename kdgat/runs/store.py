"""Run directories: deterministic paths, atomic claiming, status.json, and the `Run` type through
which every finished run is read (config, metrics, weights, upstream links).

torch is imported only when a run's weights are loaded: the launcher claims runs without it.
"""

import datetime
import functools
import hashlib
import json
import os
import re
import socket
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from configs import LEVELS, ExperimentConfig
from kdgat.common.errors import UserError
from kdgat.common.io import atomic_write_json, atomic_write_text
from kdgat.config.codec import flatten, load_yaml, to_yaml
from kdgat.config.migrations import migrate
from kdgat.config.presets import preset_name
from kdgat.config.resolve import resolve
from kdgat.runs.prerequisites import FIELDS

if TYPE_CHECKING:
    import torch

RUN_PATTERN = re.compile(r"^run_(\d{3,})$")
CONFIG_JSON = "config.json"
try:
    YAML_LOADER: Any = yaml.CSafeLoader  # libyaml: ~10x faster than the pure-Python loader
except AttributeError:  # PyYAML built without libyaml
    YAML_LOADER = yaml.SafeLoader
SLURM_VARIABLES = (
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_JOB_NAME",
)


def experiment_dir(cfg: ExperimentConfig) -> Path:
    """runs/<modality>/<dataset>/<learning_type>/<arch>/<size>/<distillation>/<training_mode>."""
    return Path(cfg.runs_root).joinpath(*(str(getattr(cfg, level)) for level in LEVELS))


def run_dirs(exp_dir: Path) -> list[Path]:
    """Existing run_NNN folders, oldest first."""
    if not exp_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in exp_dir.iterdir() if (m := RUN_PATTERN.match(p.name))]
    return [p for _, p in sorted(found)]


def claim_run_dir(exp_dir: Path) -> Path:
    """Create the next free run_NNN. mkdir is atomic, so concurrent claimers never share one."""
    exp_dir.mkdir(parents=True, exist_ok=True)
    existing = run_dirs(exp_dir)
    last = RUN_PATTERN.match(existing[-1].name) if existing else None  # run_dirs: every name matches
    number = int(last.group(1)) + 1 if last else 0
    while True:
        candidate = exp_dir / f"run_{number:03d}"
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            number += 1


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def git_commit() -> dict[str, Any]:
    """The code's commit and whether the tree had uncommitted changes (unknown outside git)."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}
    return {"commit": commit or "unknown", "dirty": bool(dirty) if commit else None}


def read_status(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "status.json"
    if not path.is_file():
        return {}
    try:
        status: dict[str, Any] = json.loads(path.read_text())  # an object: update_status writes it
    except json.JSONDecodeError:
        return {}
    return status


def update_status(run_dir: Path, **fields: Any) -> dict[str, Any]:
    """Merge fields into status.json (atomically), stamping host, pid and Slurm ids."""
    status = read_status(run_dir)
    status.update(fields)
    status["host"] = socket.gethostname()
    status["pid"] = os.getpid()
    slurm = {k.lower(): os.environ[k] for k in SLURM_VARIABLES if k in os.environ}
    if slurm:
        status.setdefault("slurm", {}).update(slurm)
    status["updated_at"] = now()
    atomic_write_json(run_dir / "status.json", status)
    return status


def latest_unfinished(exp_dir: Path) -> Path | None:
    for run_dir in reversed(run_dirs(exp_dir)):
        if read_status(run_dir).get("state") != "finished":
            return run_dir
    return None


# ---------------------------------------------------------------- the Run type


def runs_root_of(run_dir: Path) -> Path:
    """runs/<7 levels>/run_NNN -> runs."""
    return Path(run_dir).parents[len(LEVELS)]


def portable(upstream_dir: Path, run_dir: Path) -> str:
    """An upstream run's path relative to this run's runs root, so a moved tree still resolves."""
    return os.path.relpath(upstream_dir, runs_root_of(run_dir))


def resolve_recorded(recorded: str, run_dir: Path) -> Path:
    """The inverse of `portable`: a recorded upstream path as a path of this machine."""
    return runs_root_of(run_dir) / recorded


def config_digest(config_yaml: bytes) -> str:
    """Digest of a run's config.yaml as written at claim time (never rewritten afterwards)."""
    return "sha256:" + hashlib.sha256(config_yaml).hexdigest()[:16]


def config_knobs(config: dict[str, Any]) -> dict[str, Any]:
    """A config.yaml mapping as flat knobs under today's names (older layouts migrated first, so
    a run from before a rename shares its columns with the runs after it)."""
    return flatten(migrate(config))


def config_json_text(config_yaml: bytes, config: dict[str, Any]) -> str:
    """config.json for a config.yaml: its knobs flattened, and the digest of the bytes they came from.

    The digest lets a reader tell that config.yaml was changed after config.json was written
    (config.yaml is the source of truth; config.json only spares readers a YAML parser).
    Keys keep config.yaml's order, so a table's columns are the same whichever file was read.
    """
    return json.dumps({"config_digest": config_digest(config_yaml), "config": config_knobs(config)}, indent=2)


def write_config_json(run_dir: Path) -> None:
    """Write run_dir/config.json from run_dir/config.yaml (atomically)."""
    raw = (Path(run_dir) / "config.yaml").read_bytes()
    config = yaml.load(raw, Loader=YAML_LOADER)
    if not isinstance(config, dict):
        raise ValueError(f"{run_dir}/config.yaml holds no mapping of config fields")
    atomic_write_text(Path(run_dir) / CONFIG_JSON, config_json_text(raw, config) + "\n")


class Run:
    """One run directory. Cheap to make; each part is read when first asked for.

    `Run.claim(cfg)` makes a new one (config.yaml, config.json, status.json queued); `Run.open(path)` reads an
    existing one. Weights are loaded on `device`, frozen: a run read this way is an upstream.
    """

    def __init__(self, path: Path | str, device: Any = "cpu") -> None:
        self.path = Path(path)
        self.device = device

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    @classmethod
    def claim(cls, cfg: ExperimentConfig, **status: Any) -> "Run":
        """Claim the next run_NNN of cfg's experiment (atomic mkdir); write config.yaml and config.json."""
        path = claim_run_dir(experiment_dir(cfg))
        atomic_write_text(path / "config.yaml", to_yaml(cfg))
        write_config_json(path)  # queued runs of a sweep are read fast too
        update_status(path, state="queued", created_at=now(), preset=preset_name(cfg), **status)
        return cls(path)

    @classmethod
    def open(cls, path: Path | str, device: Any = "cpu") -> "Run":
        """An existing run directory; refused with the reason when it is not one."""
        run = cls(path, device)
        if not (run.path / "config.yaml").is_file():
            raise UserError(
                f"{run.path} is not a run directory (no config.yaml); pass a runs/<levels>/run_NNN "
                f"directory written by train.py or launch.py."
            )
        return run

    # -- what is on disk

    @property
    def status(self) -> dict[str, Any]:
        """status.json, read afresh ({} when missing or being replaced)."""
        return read_status(self.path)

    @property
    def state(self) -> str:
        state: str = self.status.get("state", "missing")
        return state

    @property
    def finished(self) -> bool:
        return (
            self.state == "finished"
            and (self.path / "metrics.json").is_file()
            and (self.path / "checkpoints/best.pt").is_file()
        )

    @functools.cached_property
    def config(self) -> ExperimentConfig:
        return resolve(load_yaml(self.path / "config.yaml"))

    @functools.cached_property
    def config_digest(self) -> str:
        return config_digest((self.path / "config.yaml").read_bytes())

    @functools.cached_property
    def metrics(self) -> dict[str, Any]:
        metrics: dict[str, Any] = json.loads((self.path / "metrics.json").read_text())
        return metrics

    @functools.cached_property
    def best(self) -> Any:
        """checkpoints/best.pt (a kdgat.training.checkpoint.Checkpoint): weights, and in .info the
        vocabulary, normalisation, input dims and upstream links."""
        from kdgat.training.checkpoint import read_best  # torch: imported when a checkpoint is read

        return read_best(self.path, self.device)

    @property
    def vocabulary(self) -> dict[int, int]:
        vocabulary: dict[int, int] = self.best.info.vocabulary
        return vocabulary

    @property
    def normalisation(self) -> dict[str, list[float]]:
        normalisation: dict[str, list[float]] = self.best.info.normalisation
        return normalisation

    @functools.cached_property
    def model(self) -> Any:
        """The best weights in their module (GAT, VGAE or Q-network), frozen, in eval mode."""
        from kdgat.models import build_from_dims, build_q_network

        cfg, best = self.config, self.best
        model: torch.nn.Module
        if cfg.model_architecture == "DQN":
            model = build_q_network(cfg, len(best.info.state_scaler["mean"]))
        else:
            # input_dims: a fusion GAT's node features are wider than the normalised ones, and a
            # GAT on flows has an edge read-out.
            model = build_from_dims(cfg, best.info.input_dims)
        model.load_state_dict(best.model)
        model.to(self.device).eval()
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        return model

    @functools.cached_property
    def upstream(self) -> dict[str, "Run"]:
        """The runs this one built on, by field (vgae_run, gat_run, teacher_run): as recorded in
        metrics.json once finished, else as bound in config.yaml."""
        if (self.path / "metrics.json").is_file():
            recorded = self.metrics.get("upstream", {})
            return {k: Run(resolve_recorded(v, self.path), self.device) for k, v in recorded.items()}
        cfg = self.config
        return {f: Run(getattr(cfg, f), self.device) for f in FIELDS if getattr(cfg, f) is not None}

    def reference(self, dependant: Path) -> dict[str, Any]:
        """How a dependant records this run: its path (relative to the runs root), config digest and
        the time it finished, so that a later deletion or retraining is detected (kdgat.results)."""
        return {
            "run": portable(self.path, dependant),
            "config_digest": self.config_digest,
            "finished_at": self.status.get("finished_at"),
        }
