"""The one callable that runs an experiment: config -> data -> model -> loop -> run dir -> metrics.

`python train.py` and every launcher job call `run_experiment`, so a job behaves the same
everywhere.
"""

import time
from pathlib import Path
from typing import Any

import torch

from configs import LEVELS, ExperimentConfig
from kdgat.common.errors import UserError
from kdgat.common.io import atomic_write_json
from kdgat.config.codec import to_dict
from kdgat.config.presets import preset_name
from kdgat.config.recipes import describe as describe_recipe
from kdgat.config.resolve import resolve
from kdgat.data.calibration import waking_warning
from kdgat.data.dataset import Splits, load_splits
from kdgat.evaluation.metrics import floor_warnings
from kdgat.results.hparams import entry_of, write_hparams_entry
from kdgat.runs.store import CONFIG_JSON, Run, config_knobs, git_commit, now, update_status, write_config_json
from kdgat.runs.threads import apply_threads, settle_threads
from kdgat.runs.upstream import bind, lineage
from kdgat.scoring.unheard import UnheardReport, unheard_report
from kdgat.stages import stage_for
from kdgat.training.device import deterministic_cublas, gpu_record
from kdgat.training.optim import amp_name, check_amp
from kdgat.training.skeleton import Preempted


def data_warnings(splits: Splits, cfg: ExperimentConfig, unheard: UnheardReport | None = None) -> list[str]:
    """Conditions that make a run's numbers less meaningful than they look (unheard: what a
    calibration never heard in the test folders, unheard_in_tests)."""
    warnings = []
    if int(splits.val.y.sum()) == 0:
        warnings.append(
            "the validation split has no attack windows, so early stopping and the decision "
            "threshold see benign data only (attacks in the training files lie outside their last "
            "val_fraction); validation F1 is 0 by construction."
        )
    if int(splits.train.y.sum()) == 0 and cfg.learning_type != "unsupervised":
        warnings.append("the training split has no attack windows: a classifier cannot learn attacks.")
    for path in splits.no_window:
        warnings.append(f"{path} is shorter than one window: it contributes no graph.")
    if splits.calibration is not None and (waking := waking_warning(splits.calibration)) is not None:
        warnings.append(waking)
    if unheard is not None and unheard.warning is not None:
        warnings.append(unheard.warning)  # benign target windows the model will see as unknown IDs
    return warnings


def unheard_in_tests(splits: Splits, cfg: ExperimentConfig) -> UnheardReport | None:
    """What the calibration never heard in each test folder and over them all (None without a
    calibration of identities)."""
    if not splits.unheard:
        return None
    parts = {group: (*found, splits.test[group].y.numpy()) for group, found in splits.unheard.items()}
    return unheard_report(parts, cfg.modality)


def with_unheard(stage_part: dict[str, Any], unheard: UnheardReport | None) -> dict[str, Any]:
    """stage_part with unheard_in_calibration in each test group's entry (test_by_split) and over
    them all (test), as eval_*.json has it per file and overall. The stage's dicts are copied,
    not changed; an entry that is not a dict is left as the stage wrote it."""
    if unheard is None:
        return stage_part
    out = dict(stage_part)
    if isinstance(by_split := stage_part.get("test_by_split"), dict):
        out["test_by_split"] = {
            group: {**entry, "unheard_in_calibration": unheard.each[group]}
            if group in unheard.each and isinstance(entry, dict)
            else entry
            for group, entry in by_split.items()
        }
    if isinstance(test := stage_part.get("test"), dict):
        out["test"] = {**test, "unheard_in_calibration": unheard.overall}
    return out


def resolve_device(cfg: ExperimentConfig) -> torch.device:
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise UserError(
            "--device cuda was asked for, but torch sees no CUDA device here. Use --device cpu or auto."
        )
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def run_experiment(cfg: ExperimentConfig, run_dir: Path | None = None) -> Path:
    """Train and evaluate one experiment; returns its run directory.

    With run_dir=None a new run_NNN is claimed. With an existing run_dir the run continues there
    (resuming from checkpoints/last.pt when present); its config.yaml is the caller's cfg.
    The runs it builds on are bound first and recorded in its config.yaml (exact reruns).
    Entry points hand cfg over as given: it is resolved here, once (resolve is idempotent, so a
    resolved config is welcome too). A missing upstream run is refused here, before anything runs.
    """
    deterministic_cublas()  # before anything touches CUDA
    cfg = bind(resolve(cfg))
    device = resolve_device(cfg)
    check_amp(cfg, device)  # before this call claims a run directory (a launcher job's exists: marked failed)
    cfg, threads = settle_threads(cfg, run_dir)  # auto -> this run's count, kept in its config.yaml
    if run_dir is None:
        run_dir = Run.claim(cfg).path  # writes config.yaml and config.json
    elif not (run_dir / CONFIG_JSON).is_file():
        write_config_json(run_dir)  # a run directory claimed before config.json existed, resumed
    print(f"run directory: {run_dir}", flush=True)
    print(f"threads: {threads.describe()}", flush=True)
    if too_many := threads.oversubscribed():
        print(f"warning: {too_many}", flush=True)
    if recipe_line := describe_recipe(cfg):
        print(recipe_line, flush=True)
    links = lineage(cfg, run_dir)  # every upstream run, its config digest and when it finished
    update_status(
        run_dir,
        state="running",
        started_at=now(),
        git=git_commit(),
        device=str(device),
        threads=apply_threads(threads),
        gpu=gpu_record(device),
        amp=amp_name(cfg, torch.device("cpu") if cfg.model_architecture == "DQN" else device),
        error=None,
        lineage=links,
    )
    try:
        metrics = _train_and_evaluate(cfg, run_dir, device, links)
    except Preempted as stop:
        update_status(run_dir, state="preempted", error=str(stop))
        stop.run_dir = run_dir
        raise
    except UserError as err:
        update_status(run_dir, state="failed", error=str(err), finished_at=now())
        raise
    except BaseException as err:
        update_status(
            run_dir,
            state="failed",
            error=f"{type(err).__name__}: {err}",
            finished_at=now(),
        )
        raise
    print(f"finished {run_dir}\n{summary_lines(metrics['test'])}", flush=True)
    for warning in run_floor_warnings(metrics):
        print(f"warning: {warning}", flush=True)
    return run_dir


def run_floor_warnings(metrics: dict[str, Any]) -> list[str]:
    """The test results (all test sets, each alone) within FLOOR_MARGIN F1 of flagging everything."""
    named = {
        "test": metrics["test"],
        **{f"test_by_split.{k}": v for k, v in metrics.get("test_by_split", {}).items()},
    }
    return floor_warnings(named)


def summary_lines(test: dict[str, Any]) -> str:
    """The test figures, each beside what flagging everything would score."""
    floor = test["flag_all"]
    lines = [
        f"  test windows: f1 {test['f1']:.4f}  precision {test['precision']:.4f}  recall {test['recall']:.4f}"
        f"  auroc {_fmt(test['auroc'])}  benign_fpr {test['benign_fpr']:.4f}  ({test['n']} graphs, "
        f"{test['n_attack']} attacks; flagging every window: f1 {floor['f1']:.4f}, precision "
        f"{floor['precision']:.4f})"
    ]
    flows = test.get("flows")
    if flows:
        lines.append(
            f"  test flows:   f1 {flows['f1']:.4f}  precision {flows['precision']:.4f}  recall "
            f"{flows['recall']:.4f}  auroc {_fmt(flows['auroc'])}  benign_fpr {flows['benign_fpr']:.4f}"
            f"  ({flows['n_flows']} flows, scored by {flows['scored_by']}; flagging every flow: f1 "
            f"{flows['flag_all']['f1']:.4f})"
        )
    batadal = test.get("batadal")
    if batadal:
        floor = batadal["flag_all"]
        lines.append(
            f"  BATADAL:      S {batadal['S']:.4f}  S_TTD {batadal['S_TTD']:.4f}  S_CM {batadal['S_CM']:.4f}"
            f"  attacks detected {batadal['attacks_detected']}/{batadal['attacks']}  (flagging every hour: "
            f"S {floor['S']:.4f})"
        )
    return "\n".join(lines)


def modality_data_policy(cfg: ExperimentConfig) -> dict[str, Any]:
    """Label policies that change what the counts mean, recorded beside them."""
    if cfg.modality == "internet":
        return {"unlabelled_policy": cfg.dataset_config.internet.unlabelled}
    if cfg.modality == "watertreatment":
        w = cfg.dataset_config.watertreatment
        return {"split_policy": w.split, "edge_source": w.edges}
    return {}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def metrics_json(
    stage_part: dict[str, Any],
    cfg: ExperimentConfig,
    splits: Splits,
    links: dict[str, dict[str, Any]],
    warnings: list[str],
    unheard: UnheardReport | None = None,
) -> dict[str, Any]:
    """metrics.json: what the stage measured (its scores, threshold, params, upstream, training
    summary, and what a calibration never heard in its test folders), then what every run records
    alike (preset, lineage, warnings, the data it saw)."""
    return {
        **with_unheard(stage_part, unheard),
        "preset": preset_name(cfg),
        "lineage": links,
        "warnings": warnings,
        "data": {
            "root": str(splits.data_root),
            "train_graphs": len(splits.train),
            "val_graphs": len(splits.val),
            "test_graphs": {name: len(g) for name, g in splits.test.items()},
            "train_files": splits.files,
            "vocabulary_size": len(splits.vocabulary),
            "skipped_rows": splits.skipped_rows,
            "dropped_na_rows": splits.dropped_na,
            "label_counts": splits.label_counts,
            "dropped_unlabelled_rows": splits.dropped_unlabelled,
            "no_window": splits.no_window,
            **({"calibration": splits.calibration} if splits.calibration else {}),
            **modality_data_policy(cfg),
        },
    }


def _train_and_evaluate(
    cfg: ExperimentConfig, run_dir: Path, device: torch.device, links: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    splits = load_splits(cfg)
    timings["data_s"] = time.perf_counter() - started
    print(
        f"data: {len(splits.train)} train, {len(splits.val)} validation, "
        f"{sum(len(g) for g in splits.test.values())} test graphs from {splits.data_root}",
        flush=True,
    )
    unheard = unheard_in_tests(splits, cfg)  # once: the warnings and metrics.json both report it
    warnings = data_warnings(splits, cfg, unheard)
    for warning in warnings:
        print(f"warning: {warning}", flush=True)
    atomic_write_json(run_dir / "normalisation.json", splits.normalisation)
    extra: dict[str, Any] = {  # RunInfo's fields (kdgat.training.checkpoint)
        "config": to_dict(cfg),
        "vocabulary": splits.vocabulary,
        "normalisation": splits.normalisation,
    }
    started = time.perf_counter()
    stage_part = stage_for(cfg)(cfg, splits, run_dir, device, extra)
    timings["train_eval_s"] = time.perf_counter() - started
    metrics = metrics_json(stage_part, cfg, splits, links, warnings + run_floor_warnings(stage_part), unheard)
    atomic_write_json(run_dir / "metrics.json", metrics)
    update_status(run_dir, state="finished", finished_at=now(), timings=timings, preprocess=splits.preprocess)
    # The HParams dashboard compares runs by knobs and final metrics: from the values in hand.
    levels = {level: str(getattr(cfg, level)) for level in LEVELS}
    hparams, final, step = entry_of(levels, config_knobs(extra["config"]), metrics)
    write_hparams_entry(run_dir, hparams, final, step)
    return metrics
