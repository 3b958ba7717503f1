"""What a modality plugs into the shared data layer (docs/architecture.md#adding-a-modality).

The core (kdgat/data/: graph store, splits, vocabulary, normalisation, cache, worker pool, text
scanning) is the same for every modality. A modality brings, in its own sub-package:
- its dataset entries: the layouts a dataset may have under its data root (`Layout`);
- its readers: capture file -> a record table (CAN frames, network flows, process hours) with a
  per-record `label` (1 attack, 0 benign, -1 unlabelled), in capture order;
- its graph builder: records[lo:hi] -> the raw arrays of every window inside that block
  (kdgat/data/graphset.py describes them), vectorised over all windows at once;
- its synthetic generator, written in a real format so the real reader path runs offline.

The builder is a pure function of one block of records, so a streaming detector can rebuild the
window ending at each new record with it, and a feature-set knob only selects the columns it
computes; neither reaches into the core.
"""

import abc
import dataclasses
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from configs import DatasetConfig


@dataclasses.dataclass(frozen=True)
class Layout:
    """One way a dataset can be laid out under its data root."""

    folders: tuple[str, ...]
    """Sub-folders of the data root tried after the root itself."""
    patterns: dict[str, str]
    """File glob -> reader format of the modality."""
    split_folders: bool
    """True: train_*/ and test_*/ folders; False: capture files directly in the folder, each cut
    into train, validation and test blocks."""

    def describe(self, root: Path) -> str:
        files = " or ".join(self.patterns)
        where = [root, *(root / f for f in self.folders)]
        if self.split_folders:
            return " or ".join(f"{w}/train_*/{{{files}}} with test_*/ beside" for w in where)
        return " or ".join(f"{w}/{{{files}}}" for w in where)


class Records(Protocol):
    """A reader's table of one capture: whatever columns its builder needs, plus these."""

    @property
    def label(self) -> np.ndarray:
        """int8 per record: 1 attack, 0 benign, -1 unlabelled (neither)."""
        ...

    @property
    def skipped(self) -> int:
        """Malformed rows dropped under policy malformed=skip."""
        ...

    def __len__(self) -> int: ...


R = TypeVar("R", bound=Records)  # a modality's own record table (Frames, Flows, PlantHours)


# Fields of DatasetConfig (besides the modalities' sub-configs) that no cache key holds, and why.
UNCACHED_DATASET_FIELDS = {
    "data_root": "which files are read; each entry is keyed by its file's contents",
    "test_dirs": "which files are read",
    "normalisation": "fitted and applied to the assembled splits, after the cache",
    "cache_dir": "where entries are kept",
    "cache": "whether entries are kept",
    "synthetic_seed": "shapes the synthetic files, whose contents key their entries",
    "calibration": "fitted and applied to the assembled test graphs, after the cache",
    "calibration_seconds": "fitted and applied to the assembled test graphs, after the cache",
}


class Modality(abc.ABC, Generic[R]):
    """One modality's readers, graph builder, synthetic data and dataset entries."""

    name: str
    record: str
    """What one record is, for messages: 'frame', 'flow', 'hour'."""
    identity: str = "node identity"
    """What a learned node identity is, for messages ('CAN ID', 'plant element')."""
    node_features: tuple[str, ...]
    """Node features of the assembled graphs (is_unknown_id last where identities are learned)."""
    edge_features: tuple[str, ...]
    learns_identity: bool
    """True: node identities (CAN IDs) get a vocabulary and an embedding; False: every node is
    UNKNOWN_ID (hosts: an address is never a learned identity)."""
    datasets: dict[str, tuple[Layout, ...]]
    labels_edges: bool = False
    """True: edges stand for labelled records (internet flows), scored at edge level too."""
    uncached_settings: dict[str, str] = {}  # noqa: RUF012 (read-only class table)
    """Fields of this modality's sub-config (or of DatasetConfig beyond UNCACHED_DATASET_FIELDS)
    that cache_params leaves out, each with the reason it
    does not change what read + build produce. tests/data/test_cache_keys.py holds every other field to
    the key, so a knob added without a cache entry is caught instead of giving stale graphs."""

    key_defaults: dict[str, Any] = {}  # noqa: RUF012 (read-only class table)
    """Fields that cache_params puts in the key only when they differ from this default, so the
    entries written before the field existed keep their key (tests/data/test_cache_keys.py checks the
    field reaches the key at any other value)."""

    def variant(self, d: DatasetConfig) -> "Modality":
        """The plug-in for these settings: a feature-set knob may select a variant with other node
        features (and whether identities are learnt); by default the modality itself."""
        return self

    def settings(self, d: DatasetConfig) -> Any:
        """This modality's own sub-config of the dataset config (the DatasetConfig field of its name)."""
        return getattr(d, self.name)

    @property
    def widths(self) -> tuple[int, int]:
        return len(self.node_features), len(self.edge_features)

    @abc.abstractmethod
    def read(self, path: Path, fmt: str, d: DatasetConfig) -> R:
        """Read one capture with the named format; DataError names file:line on bad input."""

    @abc.abstractmethod
    def build(self, records: R, lo: int, hi: int, d: DatasetConfig) -> dict[str, np.ndarray]:
        """Raw arrays of every window inside records[lo:hi] ({} when none fits)."""

    @abc.abstractmethod
    def cache_params(self, fmt: str, kind: str, d: DatasetConfig, path: Path) -> dict[str, Any]:
        """Everything besides the file's bytes that changes what read + build produce (including
        the contents of companion files the reader uses, e.g. a plant's network model)."""

    @abc.abstractmethod
    def synthetic_root(self, d: DatasetConfig) -> Path:
        """Write (once) the seeded synthetic dataset and return its root folder."""

    @abc.abstractmethod
    def window_description(self, d: DatasetConfig) -> str:
        """'windows of 100 frames' and how to change it, for messages."""

    def plan(
        self, root: Path, layout: Layout, d: DatasetConfig
    ) -> tuple[list[tuple[Path, str, str]], dict[str, list[int]]] | None:
        """Files of a dataset whose files have fixed roles: (file, format, block kind) and the test
        groups (name -> job indices); None: the generic train_*/test_* or flat layout."""
        return None

    def info(self, records: R) -> dict[str, Any]:
        """What a capture adds to its cache entry's metadata (counts, attack names)."""
        return {}

    def identities(self, records: R, mask: np.ndarray) -> np.ndarray:
        """Node identities of the records in mask, for the training vocabulary."""
        return np.zeros(0, dtype=np.int64)

    def identity_name(self, identity: int) -> str:
        """A node identity as messages and reports name it."""
        return str(identity)

    def first_heard(self, records: R, stop: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Each node identity of the first `stop` records and the seconds from the first record
        to the first record of it; None where identities do not arrive one timed record at a
        time."""
        return None

    def file_attack_type(self, path: Path) -> str:
        """Attack name of a capture whose windows carry no per-window attack id."""
        return "attack"
