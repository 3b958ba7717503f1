"""config.yaml layouts of earlier versions -> today's, so old run directories keep loading, rerunning
and resuming."""

from typing import Any

# Flat DatasetConfig fields of config.yaml files written before the modality sub-configs; they
# are moved into dataset_config.automotive on load (every such run was automotive).
_LEGACY_AUTOMOTIVE_FIELDS = (
    "window",
    "stride",
    "na_frames",
    "synthetic_train_frames",
    "synthetic_test_frames",
)
# Learning knobs moved from flat prefixed names into sub-configs, and single renames, field by field
# (nothing else changes).
_LEGACY_SECTIONS = {
    "learning_config": {"kd_": "kd", "vgae_": "vgae", "curriculum_": "curriculum", "dqn_": "dqn"},
}
_LEGACY_RENAMES = {
    ("learning_config", "fixed_alpha"): ("learning_config", "dqn", "fixed_alpha"),
    ("training_config", "num_workers"): ("training_config", "torch_threads"),
}


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """A config mapping in today's layout. Before 2026-12: the CAN knobs sat flat in dataset_config
    (now dataset_config.automotive), the learning knobs flat with prefixes in learning_config
    (kd_alpha -> learning_config.kd.alpha, dqn_*, vgae_*, curriculum_*; fixed_alpha -> dqn), and
    training_config.num_workers is torch_threads. Before the threshold knob (2026-12-03) a
    classifier and the DQN decided at 0.5 and a VGAE at its best validation F1: such a file gets
    that method written in, so its rerun decides as the run did; and, written before dataset recipes,
    `recipe: none` (its values are all in the file). Before the calibration threshold rule, a run
    trained with a calibration capture kept its validation threshold: `keep` is written in."""
    # One level deep copied: each step below edits the sections in place, never the caller's.
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    _nest_flat_automotive(data)
    _rename(data)
    _nest_prefixed(data)
    _pin_old_threshold(data)
    _pin_old_calibration_threshold(data)
    return data


def _pin_old_threshold(data: dict[str, Any]) -> None:
    learning = data.get("learning_config")
    # Only a complete dump (kdgat writes every field, class_weighting among them) is an old run's;
    # a hand-written partial file takes today's default like any flag left out.
    if not isinstance(learning, dict) or "threshold" in learning or "class_weighting" not in learning:
        return
    method = "best_f1" if data.get("model_architecture") == "VGAE" else "fixed"
    learning["threshold"] = {"method": method}
    data.setdefault("recipe", "none")


def _pin_old_calibration_threshold(data: dict[str, Any]) -> None:
    """Before the calibration threshold rule (2026-12, issue 31) a run trained with a calibration
    capture decided its test windows at its validation threshold: `keep` is written in, so its
    rerun decides as it did. Runs without a calibration take today's default."""
    learning, dataset = data.get("learning_config"), data.get("dataset_config")
    if not isinstance(learning, dict) or "class_weighting" not in learning or not isinstance(dataset, dict):
        return
    threshold = learning.get("threshold")
    if isinstance(threshold, dict) and "calibration" not in threshold and dataset.get("calibration"):
        learning["threshold"] = {**threshold, "calibration": "keep"}


def _nest_flat_automotive(data: dict[str, Any]) -> None:
    dataset = data.get("dataset_config")
    if isinstance(dataset, dict) and any(k in dataset for k in _LEGACY_AUTOMOTIVE_FIELDS):
        automotive = dict(dataset.get("automotive") or {})
        for key in _LEGACY_AUTOMOTIVE_FIELDS:
            if key in dataset:
                automotive[key] = dataset.pop(key)
        dataset["automotive"] = automotive


def _rename(data: dict[str, Any]) -> None:
    for (section, old), (*parents, leaf) in _LEGACY_RENAMES.items():
        if isinstance(data.get(section), dict) and old in data[section]:
            node = data
            for part in parents:
                node[part] = node = dict(node.get(part) or {})
            node[leaf] = data[section].pop(old)


def _nest_prefixed(data: dict[str, Any]) -> None:
    for section, prefixes in _LEGACY_SECTIONS.items():
        fields = data.get(section)
        if not isinstance(fields, dict):
            continue
        for key in list(fields):
            for prefix, sub in prefixes.items():
                if key.startswith(prefix):
                    fields[sub] = {**(fields.get(sub) or {}), key.removeprefix(prefix): fields.pop(key)}
                    break
