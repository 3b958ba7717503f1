"""The registry: (modality, dataset) -> the modality plug-in and the dataset's layouts.

configs.MODALITY_DATASETS is the plain table the CLI and the compatibility rules read; this
registry is what the code behind them provides, and tests/data/test_modalities.py holds the two equal.
"""

import fnmatch
from pathlib import Path

from configs import ExperimentConfig
from kdgat.common.errors import DataError
from kdgat.data.automotive.modality import AUTOMOTIVE
from kdgat.data.internet.modality import INTERNET
from kdgat.data.modality import Layout, Modality
from kdgat.data.watertreatment.modality import WATERTREATMENT

MODALITIES: dict[str, Modality] = {m.name: m for m in (AUTOMOTIVE, INTERNET, WATERTREATMENT)}


def modality_of(cfg: ExperimentConfig) -> Modality:
    if cfg.modality not in MODALITIES:
        raise DataError(f"modality {cfg.modality!r} has no data layer yet; known: {', '.join(MODALITIES)}.")
    return MODALITIES[cfg.modality].variant(cfg.dataset_config)


def layouts_of(cfg: ExperimentConfig) -> tuple[Layout, ...]:
    modality = modality_of(cfg)
    if cfg.dataset not in modality.datasets:
        raise DataError(
            f"dataset {cfg.dataset!r} has no reader in modality {cfg.modality!r}; known: "
            f"{', '.join(modality.datasets)}."
        )
    return modality.datasets[cfg.dataset]


def capture_files(folder: Path, layout: Layout) -> list[tuple[Path, str]]:
    """(file, reader format) of every capture directly in folder, sorted."""
    found: dict[Path, str] = {}
    for pattern, fmt in layout.patterns.items():
        for path in folder.glob(pattern):
            if path.is_file():
                found.setdefault(path, fmt)
    return sorted(found.items())


def _matches(candidate: Path, layout: Layout) -> bool:
    if not candidate.is_dir():
        return False
    if layout.split_folders:
        return any(p.is_dir() for p in candidate.glob("train_*"))
    return bool(capture_files(candidate, layout))


def resolve_layout(cfg: ExperimentConfig) -> tuple[Path, Layout]:
    """The folder holding this dataset and the layout it matched, or a DataError saying why not."""
    d = cfg.dataset_config
    layouts = layouts_of(cfg)
    if cfg.dataset == "synthetic":
        return modality_of(cfg).synthetic_root(d), layouts[0]
    if d.data_root is None:
        raise DataError(
            f"dataset {cfg.dataset!r} needs its data folder: pass --data-root PATH; expected "
            f"{' or '.join(layout.describe(Path('PATH')) for layout in layouts)}."
        )
    root = Path(d.data_root)
    if not root.is_dir():
        raise DataError(
            f"data root {root} does not exist or is not a folder; set it with --data-root PATH "
            f"(alias of --dataset-config.data-root)."
        )
    for layout in layouts:
        for candidate in [root, *(root / name for name in layout.folders)]:
            if _matches(candidate, layout):
                return candidate, layout
    found = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())[:20]
    raise DataError(
        f"data root {root} does not hold dataset {cfg.dataset!r}. Expected "
        f"{' or '.join(layout.describe(root) for layout in layouts)}; found: "
        f"{', '.join(found) or 'nothing'}."
    )


def format_of(path: Path, cfg: ExperimentConfig) -> str:
    """The reader format of one capture file, by the file patterns of the dataset's layouts."""
    patterns: dict[str, str] = {}
    for layout in layouts_of(cfg):
        for pattern, fmt in layout.patterns.items():
            patterns.setdefault(pattern, fmt)
    if not Path(path).is_file():
        raise DataError(f"{path} is not a file; give one capture file of the {cfg.dataset} dataset.")
    for pattern, fmt in patterns.items():
        if fnmatch.fnmatch(Path(path).name, pattern):
            return fmt
    raise DataError(f"{path} does not look like a {cfg.dataset} capture ({' or '.join(patterns)}).")
