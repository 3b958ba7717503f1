"""internet: network flows (Zeek conn.log, CICFlowMeter CSV of CIC-IDS2017 / DAPT2020) -> host
graphs (docs/data.md).

Nodes are hosts, never a learned identity (memorising attacker addresses is a shortcut, not
detection): there is no vocabulary and every node_id is UNKNOWN_ID. Edges are flows
originator -> responder aggregated per host pair, carrying labels so that flows are scored too.
"""

from pathlib import Path
from typing import Any

import numpy as np

from configs import DatasetConfig
from kdgat.common.errors import DataError
from kdgat.data.internet.cicflowmeter import read_cicflowmeter
from kdgat.data.internet.dapt2020 import read_dapt2020
from kdgat.data.internet.flows import Flows, apply_unlabelled_policy
from kdgat.data.internet.graphs import EDGE_FEATURES, NODE_FEATURES, build_raw
from kdgat.data.internet.synthetic import synthetic_root
from kdgat.data.internet.zeek import read_zeek
from kdgat.data.modality import Layout, Modality

# Bump when a reader or the builder changes what it produces (the cache key holds it).
BUILDER_VERSION = 2
ZEEK = {"*conn.log.labeled": "zeek", "*conn.log.labeled.gz": "zeek"}
CICFLOWMETER = {"*.csv": "cicflowmeter", "*.csv.gz": "cicflowmeter"}
DAPT2020 = {"*.csv": "dapt2020", "*.csv.gz": "dapt2020"}
READERS = {"zeek": read_zeek, "cicflowmeter": read_cicflowmeter, "dapt2020": read_dapt2020}

DATASETS: dict[str, tuple[Layout, ...]] = {
    "synthetic": (Layout((), ZEEK, False),),
    "stratosphere": (Layout(("internet_stratosphere_zeek", "stratosphere"), ZEEK, False),),
    "cicids2017": (Layout(("internet_cicids2017_improved_sampled", "cicids2017"), CICFLOWMETER, False),),
    "dapt2020": (Layout(("internet_dapt2020", "dapt2020"), DAPT2020, False),),
}


class Internet(Modality[Flows]):
    name = "internet"
    record = "flow"
    node_features = NODE_FEATURES
    edge_features = EDGE_FEATURES
    learns_identity = False
    labels_edges = True
    datasets = DATASETS
    uncached_settings = {  # noqa: RUF012
        "synthetic_flows": "shapes the synthetic files, whose contents key their entries",
    }

    def read(self, path: Path, fmt: str, d: DatasetConfig) -> Flows:
        if fmt not in READERS:
            raise DataError(f"unknown flow format {fmt!r}; known: {', '.join(READERS)}.")
        flows = READERS[fmt](Path(path), malformed=d.malformed)
        return apply_unlabelled_policy(flows, d.internet.unlabelled)

    def build(self, records: Flows, lo: int, hi: int, d: DatasetConfig) -> dict[str, np.ndarray]:
        n = d.internet
        return build_raw(records, lo, hi, n.window, n.stride, n.window_seconds, n.stride_seconds)

    def cache_params(self, fmt: str, kind: str, d: DatasetConfig, path: Path) -> dict[str, Any]:
        n = d.internet
        seconds = n.window_seconds is not None
        return {
            "modality": self.name,
            "builder": BUILDER_VERSION,
            "format": fmt,
            "kind": kind,
            "window": None if seconds else n.window,
            "stride": None if seconds else n.stride,
            "window_seconds": n.window_seconds,
            "stride_seconds": n.stride_seconds,
            "unlabelled": n.unlabelled,
            "val_fraction": d.val_fraction if kind != "whole" else None,
            "val_placement": d.val_placement if kind != "whole" else None,
            "test_fraction": d.test_fraction if kind == "train_val_test" else None,
            "malformed": d.malformed,
        }

    def synthetic_root(self, d: DatasetConfig) -> Path:
        return synthetic_root(d.cache_dir, d.internet.synthetic_flows, d.synthetic_seed)

    def window_description(self, d: DatasetConfig) -> str:
        n = d.internet
        if n.window_seconds is not None:
            return f"windows of {n.window_seconds:g} s of flows (--dataset-config.internet.window-seconds)"
        return f"windows of {n.window} flows (--dataset-config.internet.window)"

    def info(self, records: Flows) -> dict[str, Any]:
        return {
            "label_counts": records.label_counts,
            "attack_names": list(records.attack_names),
            "dropped_unlabelled": records.dropped_unlabelled,
        }


INTERNET = Internet()
