"""The watertreatment plug-in: BATADAL files with fixed roles, the plant graph, hourly windows."""

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from configs import DatasetConfig, WaterTreatmentConfig
from kdgat.common.errors import DataError
from kdgat.data.cache import file_digest
from kdgat.data.modality import Layout, Modality
from kdgat.data.splits import block_bounds
from kdgat.data.watertreatment.batadal import ProcessLog, read_batadal
from kdgat.data.watertreatment.epanet import read_network
from kdgat.data.watertreatment.graphs import EDGE_FEATURES, NODE_FEATURES, build_raw
from kdgat.data.watertreatment.process_graph import (
    ProcessGraph,
    correlation_graph,
    merge_graphs,
    network_graph,
)
from kdgat.data.watertreatment.synthetic import synthetic_root

# Bump when the reader, the graph or the windows change what they produce (the cache key holds it).
BUILDER_VERSION = 2
TRAIN, VAL, TEST, TWIN = (
    "BATADAL_dataset03",
    "BATADAL_dataset04_fully_labelled",
    "BATADAL_test_dataset_labelled",
    "BATADAL_test_dataset_attack_ids",
)
BATADAL = {"BATADAL_*.csv": "batadal", "BATADAL_*.csv.gz": "batadal"}
DATASETS: dict[str, tuple[Layout, ...]] = {
    "synthetic": (Layout((), BATADAL, False),),
    "batadal": (Layout(("watertreatment_batadal", "batadal"), BATADAL, False),),
}


@dataclasses.dataclass
class PlantHours:
    """One log's hours and the plant graph its windows are built on."""

    log: ProcessLog
    graph: ProcessGraph

    @property
    def label(self) -> np.ndarray:
        return self.log.label

    @property
    def skipped(self) -> int:
        return self.log.skipped

    def __len__(self) -> int:
        return len(self.log)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.csv.gz", f"{stem}.csv"):
        if (folder / name).is_file():
            return folder / name
    return None


def _required(folder: Path, stem: str) -> Path:
    path = _find(folder, stem)
    if path is None:
        raise DataError(
            f"{folder} has no {stem}.csv(.gz); a BATADAL folder holds {TRAIN}, {VAL}, {TEST} (and its "
            f"twin {TWIN}) beside the plant's .inp network model."
        )
    return path


def network_file(folder: Path) -> Path:
    """The plant's EPANET model beside its logs (exactly one *.inp or *.inp.gz)."""
    found = sorted([*folder.glob("*.inp"), *folder.glob("*.inp.gz")])
    if len(found) != 1:
        raise DataError(
            f"{folder} holds {len(found)} EPANET network files "
            f"({', '.join(p.name for p in found) or 'none'}); "
            f"the process graph needs exactly one *.inp(.gz) beside the logs (C-Town: c-town.inp.gz), or "
            f"use --dataset-config.watertreatment.edges correlation."
        )
    return found[0]


def _learns_from_training(w: WaterTreatmentConfig) -> bool:
    """Whether every file's graphs depend on the benign training hours (correlation edges or
    'standard' readings are learned from them)."""
    return w.edges in ("correlation", "both") or w.readings == "standard"


def _twin(path: Path) -> Path | None:
    """The attack_ids twin that names the attacks of the labelled test file."""
    if path.name.startswith(TEST):
        return _find(path.parent, TWIN)
    return None


class WaterTreatment(Modality[PlantHours]):
    name = "watertreatment"
    record = "hour"
    identity = "plant element"
    node_features = (*NODE_FEATURES, "is_unknown_id")
    edge_features = EDGE_FEATURES
    learns_identity = True  # a plant's elements are fixed: T1's normal range is T1's own
    datasets = DATASETS
    uncached_settings = {  # noqa: RUF012
        "score_hours": "filters the model's scores over time, after the graphs",
        "test_fraction": "unused: BATADAL's test hours are a file of their own (plan)",
        "synthetic_train_hours": "shapes the synthetic files, whose contents key their entries",
        "synthetic_val_hours": "shapes the synthetic files, whose contents key their entries",
        "synthetic_test_hours": "shapes the synthetic files, whose contents key their entries",
    }

    def plan(
        self, root: Path, layout: Layout, d: DatasetConfig
    ) -> tuple[list[tuple[Path, str, str]], dict[str, list[int]]]:
        train, val, test = (_required(root, stem) for stem in (TRAIN, VAL, TEST))
        if d.watertreatment.split == "competition":
            jobs = [(train, "batadal", "train"), (val, "batadal", "val")]
        else:
            jobs = [(train, "batadal", "train"), (val, "batadal", "train_val")]
        return [*jobs, (test, "batadal", "whole")], {TEST: [2]}

    def _training_hours(self, folder: Path, d: DatasetConfig) -> np.ndarray:
        """Readings of the benign training hours: correlation edges and 'standard' readings are
        learned from them only."""
        parts = [read_batadal(_required(folder, TRAIN), d.malformed)]
        if d.watertreatment.split == "dataset04_blocks":
            log = read_batadal(_required(folder, VAL), d.malformed)
            bounds = block_bounds("train_val", log.label, d.val_fraction, d.test_fraction, d.val_placement)
            keep = np.zeros(len(log), dtype=bool)
            for role in ("train", "train_tail"):
                if role in bounds:
                    keep[slice(*bounds[role])] = True
            parts.append(dataclasses.replace(log, values=log.values[keep], label=log.label[keep]))
        return np.concatenate([p.values[p.label == 0] for p in parts])

    def graph(
        self, folder: Path, columns: tuple[str, ...], d: DatasetConfig, hours: np.ndarray | None
    ) -> ProcessGraph:
        """The plant graph; hours: the benign training readings (needed for correlation edges)."""
        w = d.watertreatment
        graphs = []
        if w.edges in ("network", "both"):
            inp = network_file(folder)
            graphs.append(network_graph(read_network(inp), columns, inp))
        if w.edges in ("correlation", "both"):
            if hours is None:
                raise ValueError("correlation edges are learned from the benign training hours: pass them")
            graphs.append(correlation_graph(hours, columns, w.correlation_threshold))
        return merge_graphs(*graphs)

    def read(self, path: Path, fmt: str, d: DatasetConfig) -> PlantHours:
        if fmt != "batadal":
            raise DataError(f"unknown process-log format {fmt!r}; known: batadal.")
        w, folder = d.watertreatment, Path(path).parent
        log = read_batadal(Path(path), d.malformed, attack_ids=_twin(Path(path)))
        hours = self._training_hours(folder, d) if _learns_from_training(w) else None  # once, for both
        graph = self.graph(folder, log.columns, d, hours)
        if w.readings == "standard" and hours is not None:  # (never None then: learned from them)
            std = np.maximum(hours.std(axis=0), w.reading_std_floor)
            log = dataclasses.replace(log, values=(log.values - hours.mean(axis=0)) / std)
        return PlantHours(log, graph)

    def build(self, records: PlantHours, lo: int, hi: int, d: DatasetConfig) -> dict[str, np.ndarray]:
        raw = build_raw(records.log, records.graph, lo, hi, d.watertreatment.window, d.watertreatment.stats)
        return raw if len(raw["y"]) else {}

    def cache_params(self, fmt: str, kind: str, d: DatasetConfig, path: Path) -> dict[str, Any]:
        w, folder = d.watertreatment, Path(path).parent
        companions: dict[str, Any] = {}
        twin = _twin(Path(path))
        if twin is not None:
            companions["attack_ids"] = file_digest(twin)
        if w.edges in ("network", "both"):
            companions["network"] = file_digest(network_file(folder))
        learned = _learns_from_training(w)
        if learned:  # learned from the benign training hours of these files
            companions["training"] = [file_digest(_required(folder, s)) for s in (TRAIN, VAL)]
        # Under dataset04_blocks the training hours include dataset04's training block, which
        # val_fraction and val_placement place: every file's graphs depend on them then.
        blocks = kind == "train_val" or (learned and w.split == "dataset04_blocks")
        return {
            "modality": self.name,
            "builder": BUILDER_VERSION,
            "format": fmt,
            "kind": kind,
            "window": w.window,
            "stats": list(w.stats),
            "split": w.split,
            "edges": w.edges,
            "correlation_threshold": w.correlation_threshold if w.edges != "network" else None,
            "readings": w.readings,
            "reading_std_floor": w.reading_std_floor if w.readings == "standard" else None,
            "val_fraction": d.val_fraction if blocks else None,
            "val_placement": d.val_placement if blocks else None,
            "malformed": d.malformed,
            "companions": companions,
        }

    def synthetic_root(self, d: DatasetConfig) -> Path:
        w = d.watertreatment
        return synthetic_root(
            d.cache_dir,
            w.synthetic_train_hours,
            w.synthetic_val_hours,
            w.synthetic_test_hours,
            d.synthetic_seed,
        )

    def window_description(self, d: DatasetConfig) -> str:
        return f"windows of {d.watertreatment.window} hours (--dataset-config.watertreatment.window)"

    def info(self, records: PlantHours) -> dict[str, Any]:
        top = int(records.log.attack_id.max(initial=0))
        return {"attack_names": ["benign", *(f"attack{k}" for k in range(1, top + 1))]}

    def identities(self, records: PlantHours, mask: np.ndarray) -> np.ndarray:
        if not mask.any():
            return np.zeros(0, dtype=np.int64)
        return np.arange(1, len(records.graph.nodes) + 1, dtype=np.int64)


WATERTREATMENT = WaterTreatment()
