"""Every knob that shapes a cached graph is in its cache key: a field added to a modality's
sub-config without a cache entry would otherwise give stale graphs from an old entry."""

import dataclasses
from pathlib import Path

import pytest

import configs
from kdgat.data.modality import UNCACHED_DATASET_FIELDS, Modality
from kdgat.data.registry import MODALITIES, capture_files, resolve_layout

KINDS = ("train_val", "whole", "train_val_test")


def missing_from_key(modality: Modality, d: configs.DatasetConfig, path: Path, kind: str) -> list[str]:
    """Dataset-config fields neither in the cache key nor declared as not shaping graphs."""
    key = modality.cache_params("csv", kind, d, path)
    own = getattr(d, modality.name)
    fields = [f.name for f in dataclasses.fields(own)]
    shared = [f.name for f in dataclasses.fields(d) if not dataclasses.is_dataclass(getattr(d, f.name))]
    # A field left out at its declared default (key_defaults) must still reach the key otherwise.
    at_default = {f for f, v in modality.key_defaults.items() if getattr(own, f) == v}
    return [
        f for f in fields if f not in key and f not in modality.uncached_settings and f not in at_default
    ] + [
        f
        for f in shared
        if f not in key and f not in UNCACHED_DATASET_FIELDS and f not in modality.uncached_settings
    ]


def a_capture(modality: str, tmp_path: Path) -> tuple[configs.DatasetConfig, Path]:
    cfg = configs.ExperimentConfig(modality=modality, dataset="synthetic")
    cfg = dataclasses.replace(cfg, dataset_config=dataclasses.replace(cfg.dataset_config, cache_dir=tmp_path))
    root, layout = resolve_layout(cfg)
    files = [p for p in root.rglob("*") if p.is_file() and capture_files(p.parent, layout)]
    return cfg.dataset_config, sorted(files)[0]


@pytest.mark.parametrize("name", sorted(MODALITIES))
def test_every_dataset_knob_is_in_the_cache_key_or_says_why_not(name: str, tmp_path: Path) -> None:
    d, path = a_capture(name, tmp_path)
    for kind in KINDS:
        assert missing_from_key(MODALITIES[name], d, path, kind) == [], (name, kind)


def test_a_knob_left_out_of_the_key_is_caught(tmp_path: Path) -> None:
    automotive = MODALITIES["automotive"]
    d, path = a_capture("automotive", tmp_path)

    class Forgetful(type(automotive)):
        def cache_params(self, fmt, kind, d, path):
            return {k: v for k, v in super().cache_params(fmt, kind, d, path).items() if k != "stride"}

    assert missing_from_key(Forgetful(), d, path, "train_val") == ["stride"]


def test_a_feature_set_other_than_the_default_is_in_the_key(tmp_path: Path) -> None:
    automotive = MODALITIES["automotive"]
    d, path = a_capture("automotive", tmp_path)
    default_key = automotive.cache_params("csv", "whole", d, path)
    assert "features" not in default_key  # the default set keeps the entries written before the knob
    agnostic = dataclasses.replace(d, automotive=dataclasses.replace(d.automotive, features="agnostic"))
    key = automotive.variant(agnostic).cache_params("csv", "whole", agnostic, path)
    assert key == {**default_key, "features": "agnostic"}
