"""launch.py's flags add up or are refused: nothing given is silently dropped.

Parsed in this process (launch.parse, launch.main on --dry-run): nothing is submitted or trained.
"""

from pathlib import Path

import pytest

import launch
from configs import ConfigError
from kdgat.launcher.build import build_plan
from kdgat.launcher.flags import launch_flags

# Every list flag of launch.py: two occurrences, and where the parsed arguments hold their values.
# A list flag added to LaunchArgs or ExperimentConfig without a row here fails the first test.
LIST_FLAGS = {
    "--modalities": (["automotive"], ["internet"], lambda a: a.modalities),
    "--datasets": (["hcrlsa"], ["hcrlch", "road"], lambda a: a.datasets),
    "--learning-types": (["classifier"], ["unsupervised"], lambda a: a.learning_types),
    "--model-architectures": (["GAT"], ["VGAE"], lambda a: a.model_architectures),
    "--model-sizes": (["teacher"], ["student"], lambda a: a.model_sizes),
    "--distillations": (["no"], ["standard"], lambda a: a.distillations),
    "--training-modes": (["all_samples"], ["normals_only"], lambda a: a.training_modes),
    "--set": (["training_config.epochs=2"], ["training_config.seed=1,2"], lambda a: a.set),
    "--sbatch": (["gpu-bind=closest"], ["exclusive=user"], lambda a: a.sbatch),
    "--dataset-config.test-dirs": (["test_a"], ["test_b"], lambda a: a.experiment.dataset_config.test_dirs),
    "--dataset-config.watertreatment.stats": (
        ["last"],
        ["mean", "std"],
        lambda a: a.experiment.dataset_config.watertreatment.stats,
    ),
    "--osc-config.setup": (["module load a"], ["source b"], lambda a: a.experiment.osc_config.setup),
}


def test_the_table_holds_every_list_flag_of_launch_py() -> None:
    listed = {option for option, flag in launch_flags().items() if flag.nargs in ("*", "+")}
    assert listed == set(LIST_FLAGS)


@pytest.mark.parametrize("option", list(LIST_FLAGS))
def test_a_repeated_list_flag_keeps_every_value(option: str) -> None:
    first, second, read = LIST_FLAGS[option]
    args = launch.parse(["--dry-run", option, *first, "--parallelism", "2", option, *second])
    assert tuple(read(args)) == (*first, *second)
    assert args.parallelism == 2 and args.dry_run


def test_one_set_per_field_plans_the_grid_asked_for(tmp_path: Path) -> None:
    """The issue's command: two --set flags planned two runs at 8 epochs (the first was dropped)."""
    argv = ["--sweep", "--set", "training_config.epochs=2", "--set", "training_config.seed=1,2"]
    runs = build_plan(launch.parse([*argv, "--runs-root", str(tmp_path / "runs")])).runs
    assert [(r.cfg.training_config.epochs, r.cfg.training_config.seed) for r in runs] == [(2, 1), (2, 2)]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--training.epochs", "2", "--training.epochs", "8"], ["--training.epochs is given 2 times"]),
        (["--executor", "local", "--executor=debug"], ["--executor is given 2 times"]),
        (["--preset", "a", "--preset", "b"], ["--preset is given 2 times"]),
        (["--dry-run", "--no-dry-run"], ["'--dry-run' and '--no-dry-run'"]),
        (["--data-root", "a", "--dataset-config.data-root", "b"], ["--data-root is given 2 times"]),
        (["--sbatch", "gpu-bind=closest", "--sbatch", "gpu-bind=none"], ["--sbatch gpu-bind is given twice"]),
        (
            ["--set", "training_config.seed=1", "--set", "training_config.seed=2"],
            ["training_config.seed is gridded twice", "--set training_config.seed=V1,V2,V3"],
        ),
        (
            ["--training.lr", "1e-3,3e-4", "--set", "training_config.lr=0.1"],
            ["training_config.lr is gridded twice"],
        ),
        (["--model-sizes", "tiny", "--set", "model_size=teacher"], ["model_size is gridded twice"]),
        (
            ["--training.epochs", "8", "--set", "training_config.epochs=2,4"],
            ["'--training.epochs 8' and as a grid", "would replace --training.epochs"],
        ),
        (
            ["--model-size", "teacher", "--model-sizes", "tiny,student"],
            ["'--model-size teacher' and as a grid"],
        ),
        (
            ["--pipeline", "--model-size", "tiny"],
            ["every pipeline stage sets it itself", "drop --model-size"],
        ),
    ],
)
def test_a_value_that_would_be_dropped_is_refused_with_exit_2(
    argv: list[str], words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert launch.main([*argv, "--dry-run"]) == launch.EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    for word in words:
        assert word in err


def test_a_flag_some_pipeline_stages_replace_is_kept_for_the_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stages = tmp_path / "stages.yaml"
    stages.write_text("stages:\n  - {name: a, set: {model_size: teacher}}\n  - {name: b, set: {}}\n")
    args = launch.parse(["--pipeline-file", str(stages), "--model-size", "tiny"])
    assert (
        "note: --model-size tiny applies to stage(s) b; a set model_size themselves."
        in capsys.readouterr().err
    )
    sizes = [r.cfg.model_size for r in build_plan(args).runs]
    assert sizes == ["teacher", "tiny"]


def test_the_same_value_twice_is_not_a_conflict() -> None:
    args = launch.parse(["--training.epochs", "3", "--training.epochs", "3", "--dry-run", "--dry-run"])
    assert args.experiment.training_config.epochs == 3 and args.dry_run


def test_repeated_transfer_flags_add_up_or_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["transfer", "run_x", "--on", "a=b", "--dataset", "hcrlsa", "--dataset", "road"]
    assert launch.main(argv) == launch.EXIT_USER_ERROR
    assert "--dataset is given 2 times" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="given 2 times"):
        launch.parse(["--parallelism", "2", "--parallelism", "3"])
