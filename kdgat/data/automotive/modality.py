"""automotive: CAN bus captures -> one graph per window of frames (docs/data.md).

Nodes are the distinct CAN IDs of a window (their identity is learned through a vocabulary
fitted on benign training frames), edges the transitions between consecutive frames.
"""

from pathlib import Path
from typing import Any

import numpy as np

from configs import DatasetConfig
from kdgat.data.automotive.agnostic_features import AGNOSTIC_NODE_FEATURES, build_agnostic
from kdgat.data.automotive.canlogs import PATTERNS
from kdgat.data.automotive.frames import Frames, attack_type_from_name
from kdgat.data.automotive.graphs import EDGE_FEATURES, NODE_FEATURES, build_raw
from kdgat.data.automotive.readers import read_frames
from kdgat.data.automotive.synthetic import synthetic_root
from kdgat.data.modality import Layout, Modality

# python-can's log formats (candump, ASC, BLF, TRC) beside the 4-column CSV; a python-can CSV is
# told from a 4-column one by its header (read_frames).
CAN4 = {"*.csv": "can4", "*.csv.gz": "can4", **PATTERNS}

DATASETS: dict[str, tuple[Layout, ...]] = {
    "synthetic": (Layout((), CAN4, True),),
    "hcrlsa": (Layout(("hcrl_sa",), CAN4, True),),
    "hcrlch": (
        Layout(("hcrl_ch",), CAN4, True),
        Layout(
            ("hcrl_ch", "car_hacking"),
            {"*.csv": "hcrl_csv", "*.csv.gz": "hcrl_csv", "*.txt": "hcrl_log", "*.txt.gz": "hcrl_log"},
            False,
        ),
    ),
    **{f"set0{k}": (Layout((f"set_0{k}", f"can_train_and_test/set_0{k}"), CAN4, True),) for k in range(1, 5)},
    "daga": (Layout(("daga_volvo_v40", "daga"), {"*.csv": "daga", "*.csv.gz": "daga"}, False),),
    "road": (Layout(("road_masquerade_statgraph", "road"), {"*.csv": "road", "*.csv.gz": "road"}, False),),
}


class Automotive(Modality[Frames]):
    name = "automotive"
    record = "frame"
    identity = "CAN ID"
    node_features = NODE_FEATURES
    edge_features = EDGE_FEATURES
    learns_identity = True
    datasets = DATASETS
    uncached_settings = {  # noqa: RUF012
        "synthetic_train_frames": "shapes the synthetic files, whose contents key their entries",
        "synthetic_test_frames": "shapes the synthetic files, whose contents key their entries",
    }
    key_defaults = {"features": "default"}  # noqa: RUF012 (entries from before the knob stay valid)

    def variant(self, d: DatasetConfig) -> Modality:
        return AGNOSTIC if d.automotive.features == "agnostic" else self

    def read(self, path: Path, fmt: str, d: DatasetConfig) -> Frames:
        return read_frames(path, fmt, malformed=d.malformed, na_frames=d.automotive.na_frames)

    def build(self, records: Frames, lo: int, hi: int, d: DatasetConfig) -> dict[str, np.ndarray]:
        return build_raw(records, lo, hi, d.automotive.window, d.automotive.stride)

    def cache_params(self, fmt: str, kind: str, d: DatasetConfig, path: Path) -> dict[str, Any]:
        # These exact keys and values: cache entries written before the modality layer stay valid.
        return {
            "format": fmt,
            "kind": kind,
            "window": d.automotive.window,
            "stride": d.automotive.stride,
            "val_fraction": d.val_fraction if kind != "whole" else None,
            "val_placement": d.val_placement if kind != "whole" else None,
            "test_fraction": d.test_fraction if kind == "train_val_test" else None,
            "malformed": d.malformed,
            "na_frames": d.automotive.na_frames,
            # Only when not the default: the default set's entries keep the key they always had.
            **({"features": d.automotive.features} if d.automotive.features != "default" else {}),
        }

    def synthetic_root(self, d: DatasetConfig) -> Path:
        a = d.automotive
        return synthetic_root(
            d.cache_dir, a.synthetic_train_frames, a.synthetic_test_frames, d.synthetic_seed
        )

    def window_description(self, d: DatasetConfig) -> str:
        return f"windows of {d.automotive.window} frames (--dataset-config.automotive.window)"

    def info(self, records: Frames) -> dict[str, Any]:
        return {"dropped_na": records.dropped_na, "labelled": records.labelled}

    def identities(self, records: Frames, mask: np.ndarray) -> np.ndarray:
        return np.unique(records.can_id[mask])

    def identity_name(self, identity: int) -> str:
        return f"0x{identity:03X}"

    def first_heard(self, records: Frames, stop: int) -> tuple[np.ndarray, np.ndarray] | None:
        if stop == 0 or not records.has_time:
            return None
        ids, first = np.unique(records.can_id[:stop], return_index=True)
        return ids, records.time[first] - records.time[0]

    def file_attack_type(self, path: Path) -> str:
        return attack_type_from_name(path)


class AgnosticAutomotive(Automotive):
    """The automotive modality with the vehicle-agnostic feature set: no node identity is learnt
    (no vocabulary, no embedding, no is_unknown_id column)."""

    node_features = AGNOSTIC_NODE_FEATURES
    learns_identity = False

    def build(self, records: Frames, lo: int, hi: int, d: DatasetConfig) -> dict[str, np.ndarray]:
        return build_agnostic(records, lo, hi, d.automotive.window, d.automotive.stride)


AUTOMOTIVE = Automotive()
AGNOSTIC = AgnosticAutomotive()
