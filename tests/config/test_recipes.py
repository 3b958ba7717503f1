"""Dataset recipes: applied where the user sets nothing, recorded in config.yaml, switched off with
--recipe none, never over a flag the user gave, and refused where their levels are contradicted."""

import dataclasses
import json
from pathlib import Path

import pytest

import configs
from configs import ConfigError, ExperimentConfig
from kdgat.config.codec import load_yaml, to_yaml
from kdgat.config.recipes import RECIPES, as_flags, describe
from kdgat.config.resolve import resolve
from tests.helpers import FIXTURES, run_train, shared_data
from train import parse_config

BATADAL = ["--modality", "watertreatment", "--dataset", "batadal"]
PLANT = RECIPES["batadal_plant_vgae"]


def test_a_bare_batadal_run_takes_the_plant_recipe() -> None:
    cfg, _ = parse_config(BATADAL)
    assert cfg.recipe == "batadal_plant_vgae"
    assert (cfg.learning_type, cfg.model_architecture, cfg.training_mode) == (
        "unsupervised",
        "VGAE",
        "normals_only",
    )
    assert cfg.model_config.vgae_decoder == "graph" and cfg.training_config.epochs == 50
    assert cfg.dataset_config.watertreatment.stats == ("last",)
    assert cfg.dataset_config.watertreatment.split == "competition"  # auto, for an unsupervised run


def test_a_flag_the_user_gives_wins_even_at_the_global_default() -> None:
    assert ExperimentConfig().training_config.epochs == 8
    cfg, _ = parse_config([*BATADAL, "--training.epochs", "8", "--model-config.vgae-decoder", "node"])
    assert cfg.recipe == "batadal_plant_vgae"
    assert cfg.training_config.epochs == 8 and cfg.model_config.vgae_decoder == "node"
    assert cfg.model_size_config.hidden_dim == 128  # the fields not given still come from the recipe


def test_recipe_none_gives_the_global_defaults() -> None:
    cfg, _ = parse_config([*BATADAL, "--recipe", "none"])
    plain = resolve(
        dataclasses.replace(ExperimentConfig(modality="watertreatment", dataset="batadal"), recipe="none")
    )
    assert cfg == plain and cfg.recipe == "none" and cfg.model_architecture == "GAT"


def test_other_levels_do_not_take_the_recipe_and_a_named_one_is_refused() -> None:
    cfg, _ = parse_config([*BATADAL, "--learning-type", "classifier"])
    assert cfg.recipe == "none" and cfg.model_config.vgae_decoder == "node"
    preset = "watertreatment_batadal_classifier_gat_student_no_all_samples"
    assert parse_config(["--preset", preset])[0].recipe == "none"
    with pytest.raises(ConfigError, match="learning_type=classifier was given"):
        parse_config([*BATADAL, "--learning-type", "classifier", "--recipe", "batadal_plant_vgae"])
    with pytest.raises(ConfigError, match="not a recipe"):
        parse_config([*BATADAL, "--recipe", "plant"])


def test_from_python_the_recipe_fills_fields_left_at_their_default() -> None:
    levels = dict(learning_type="unsupervised", model_architecture="VGAE", training_mode="normals_only")
    sizes = configs.ModelSizeConfig(hidden_dim=64)
    cfg = resolve(
        ExperimentConfig(modality="watertreatment", dataset="batadal", model_size_config=sizes, **levels)
    )
    assert cfg.recipe == "batadal_plant_vgae" and cfg.model_config.vgae_decoder == "graph"
    assert cfg.model_size_config.hidden_dim == 64 and cfg.model_size_config.latent_dim == 24
    assert resolve(cfg) == cfg  # idempotent: a resolved config carries the recipe's name
    gat = resolve(ExperimentConfig(modality="watertreatment", dataset="batadal"))
    assert gat.recipe == "none" and gat.model_architecture == "GAT"  # levels from Python are chosen


def test_config_yaml_records_the_recipe_and_reruns_exactly(tmp_path: Path) -> None:
    cfg, _ = parse_config([*BATADAL, "--training.epochs", "3"])
    saved = tmp_path / "config.yaml"
    saved.write_text(to_yaml(cfg))
    assert "recipe: batadal_plant_vgae" in saved.read_text()
    rerun, _ = parse_config(["--config", str(saved)])
    assert rerun == cfg
    assert load_yaml(FIXTURES / "config_2026-11_automotive.yaml").recipe == "none"  # before recipes


def test_the_recipe_flags_parse_back_to_the_recipe() -> None:
    cfg, _ = parse_config([*BATADAL, "--recipe", "none", *as_flags(PLANT)])
    recipe, _ = parse_config(BATADAL)
    assert dataclasses.replace(cfg, recipe=PLANT.name) == recipe
    assert describe(recipe).startswith("recipe batadal_plant_vgae (") and "epochs=50" in describe(recipe)


@pytest.mark.slow
@pytest.mark.real_data
def test_a_run_prints_its_recipe_at_the_start(tmp_path: Path) -> None:
    data = shared_data("watertreatment_batadal")
    result = run_train(
        [*BATADAL, "--data-root", str(data), "--device", "cpu", "--training.epochs", "1"], cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    (recipe,) = [i for i, line in enumerate(lines) if line.startswith("recipe batadal_plant_vgae (")]
    first_epoch = next(i for i, line in enumerate(lines) if line.startswith("epoch "))
    assert recipe < first_epoch and "--recipe none" in lines[recipe]  # said before anything trains
    run_dir = next((tmp_path / "runs").rglob("run_000"))
    saved = load_yaml(run_dir / "config.yaml")
    assert saved.recipe == "batadal_plant_vgae" and saved.model_config.vgae_decoder == "graph"
    assert saved.training_config.epochs == 1 and saved.model_size_config.hidden_dim == 128  # flag, recipe
    assert "S" in json.loads((run_dir / "metrics.json").read_text())["test"]["batadal"]


def test_a_launch_picks_each_runs_recipe_by_its_own_levels() -> None:
    """A pipeline sets levels per stage; the VGAE recipe must not reach the GAT and DQN stages."""
    import launch
    from kdgat.launcher.build import build_plan

    (gat,) = build_plan(launch.parse([*BATADAL, "--sweep", "--model-architectures", "GAT", "--dry-run"])).runs
    assert gat.cfg.recipe == "none" and gat.cfg.training_config.epochs == 8  # before: the VGAE recipe's 50
    vgae = launch.parse(
        [
            *BATADAL,
            "--sweep",
            "--learning-types",
            "unsupervised",
            "--model-architectures",
            "VGAE",
            "--training-modes",
            "normals_only",
            "--dry-run",
        ]
    )
    (run,) = build_plan(vgae).runs
    assert run.cfg.recipe == PLANT.name and run.cfg.training_config.epochs == 50
    # The pipeline's curriculum GAT cannot build on the recipe VGAE (other graphs): refused up front.
    with pytest.raises(configs.ConfigError, match="--recipe none"):
        build_plan(launch.parse([*BATADAL, "--pipeline", "--dry-run"]))
    same = ["--recipe", "none", "--dataset-config.watertreatment.split", "dataset04_blocks"]
    plan = build_plan(launch.parse([*BATADAL, "--pipeline", *same, "--dry-run"]))
    assert {r.cfg.recipe for r in plan.runs} == {"none"} and len(plan.runs) == 6
