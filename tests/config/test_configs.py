"""Config hierarchy, compatibility rules, preset names, CLI parsing and YAML round trips."""

import ast
import contextlib
import dataclasses
import io
import math
import typing
from pathlib import Path

import pytest

import configs
import train
from configs import ConfigError, ExperimentConfig
from kdgat.config.codec import from_dict, load_yaml, to_dict, to_yaml
from kdgat.config.presets import all_level_combinations, parse_preset, preset_name, valid_presets
from kdgat.config.resolve import resolve
from tests.helpers import REPO, run_train


def level_flags(levels: dict[str, str]) -> list[str]:
    return [item for key, value in levels.items() for item in (f"--{key.replace('_', '-')}", value)]


def call_main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = train.main(argv)
        except SystemExit as exit_:
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


def test_help_lists_every_level_with_choices(tmp_path: Path) -> None:
    result = run_train(["--help"], cwd=tmp_path)
    assert result.returncode == 0
    for level, choices in configs.LEVEL_CHOICES.items():
        assert f"--{level.replace('_', '-')}" in result.stdout
        for choice in choices:
            assert choice in result.stdout, (level, choice)
    for flag in (
        "--preset",
        "--config",
        "--resume",
        "--print-config",
        "--training.epochs",
        "--data-root",
    ):
        assert flag in result.stdout


def test_every_combination_is_valid_or_refused_with_a_reason() -> None:
    """All combinations (over 8,000) go through the validation the CLI runs after parsing."""
    combos = all_level_combinations()
    assert len(combos) == math.prod(len(choices) for choices in configs.LEVEL_CHOICES.values()) > 8000
    valid = 0
    for levels in combos:
        try:
            resolve(dataclasses.replace(ExperimentConfig(), **levels))
            valid += 1
        except ConfigError as err:
            message = str(err)
            assert "Use " in message or "Choose " in message, message  # says how to fix
            assert any(value in message for value in levels.values()), message  # names the value
    assert valid == len(valid_presets()) > 0


@pytest.mark.slow
def test_every_valid_preset_prints_its_config_and_round_trips() -> None:
    presets = valid_presets()
    for name in presets:
        levels = parse_preset(name)
        assert preset_name(resolve(dataclasses.replace(ExperimentConfig(), **levels))) == name
    # Through the CLI (slower): a sample that covers every value of every level and every
    # learning_type x architecture x distillation x training_mode combination.
    sample: dict[tuple, str] = {}
    for name in presets:
        levels = parse_preset(name)
        keys = [(level, value) for level, value in levels.items()]
        keys.append(
            tuple(levels[k] for k in ("learning_type", "model_architecture", "distillation", "training_mode"))
        )
        for key in keys:
            sample.setdefault(key, name)
    for number, name in enumerate(sorted(set(sample.values()))):
        levels = parse_preset(name)
        code, out, err = call_main(["--print-config", *level_flags(levels)])
        assert code == 0, (name, err)
        assert out.startswith(f"# preset: {name}\n")
        if number % 3 == 0:  # the preset path parses the same way
            code, out_preset, _ = call_main(["--print-config", "--preset", name])
            assert code == 0 and out_preset == out


@pytest.mark.parametrize(
    ("levels", "fragment"),
    [
        ({"modality": "watertreatment", "dataset": "road"}, "Use --modality automotive"),
        ({"modality": "internet", "dataset": "hcrlsa"}, "Use --modality automotive"),
        ({"learning_type": "unsupervised"}, "cannot do learning_type='unsupervised'"),
        ({"model_architecture": "DQN"}, "cannot do learning_type='classifier'"),
        ({"training_mode": "normals_only"}, "one class"),
        (
            {
                "learning_type": "unsupervised",
                "model_architecture": "VGAE",
                "training_mode": "curriculum_classifier",
            },
            "curriculum",
        ),
        ({"distillation": "standard", "model_size": "teacher"}, "student"),
    ],
)
def test_incompatible_combination_exits_2_with_reason(levels: dict[str, str], fragment: str) -> None:
    code, out, err = call_main(["--print-config", *level_flags(levels)])
    assert code == 2
    assert fragment in err and "Use " in err
    assert "Traceback" not in err and out == ""


@pytest.mark.slow
def test_bad_values_exit_2_without_traceback(tmp_path: Path) -> None:
    cases = {
        ("--training.epochs", "0"): "--training.epochs 0 is out of range",
        (
            "--dataset-config.automotive.stride",
            "500",
        ): "--dataset-config.automotive.stride 500 is out of range",
        ("--model-size-config.dropout", "1.5"): "dropout 1.5 is out of range: expected a number in [0, 1)",
        ("--model-size-config.hidden-dim", "30"): "not divisible",
        (
            "--learning-config.kd.alpha",
            "1.5",
        ): "--learning-config.kd.alpha 1.5 is out of range: expected a number in [0, 1]",
        ("--learning-config.dqn.epsilon-end", "0.5", "--learning-config.dqn.epsilon-start", "0.2"): (
            "--learning-config.dqn.epsilon-end 0.5 is out of range: expected at most"
        ),
        ("--learning-config.curriculum.start-percentile", "0"): "expected a number in (0, 100]",
        (
            "--training.torch-threads",
            "-1",
        ): "--training.torch-threads -1 is out of range: expected an integer >= 0",
        ("--modality", "watertreatment", "--dataset-config.watertreatment.stats"): (
            "--dataset-config.watertreatment.stats () is out of range: expected at least one"
        ),
        ("--modality", "watertreatment", "--dataset-config.watertreatment.score-hours", "0"): (
            "--dataset-config.watertreatment.score-hours 0 is out of range"
        ),
    }
    for argv, fragment in cases.items():
        code, _, err = call_main(["--print-config", *argv])
        assert code == 2 and fragment in err, (argv, err)
    for argv in (
        ["--training.epochs", "many"],
        ["--dataset", "nope"],
        ["--no-such-flag", "1"],
    ):
        result = run_train(["--print-config", *argv], cwd=tmp_path)
        assert result.returncode == 2, argv
        assert "Traceback" not in result.stderr


def test_overrides_preset_and_size_defaults() -> None:
    cfg, _ = train.parse_config(
        [
            "--preset",
            "automotive_hcrlsa_classifier_gat_teacher_no_all_samples",
            "--training.epochs",
            "3",
            "--model-size-config.heads",
            "4",
            "--data-root",
            "somewhere",
        ]
    )
    assert cfg.dataset == "hcrlsa" and cfg.model_size == "teacher"
    assert cfg.training_config.epochs == 3
    assert cfg.model_size_config.heads == 4  # explicit override wins
    assert cfg.model_size_config.hidden_dim == configs.SIZE_TABLE["teacher"]["hidden_dim"]
    assert cfg.dataset_config.data_root == Path("somewhere")


def test_bad_preset_name_is_refused() -> None:
    code, _, err = call_main(["--preset", "automotive_nowhere_classifier"])
    assert code == 2 and "is not of the form" in err


def test_yaml_round_trip_and_strict_loading(tmp_path: Path) -> None:
    cfg = resolve(ExperimentConfig(dataset="set01", model_size="huge"))
    path = tmp_path / "config.yaml"
    path.write_text(to_yaml(cfg))
    assert load_yaml(path) == cfg
    loaded, _ = train.parse_config(["--config", str(path), "--training.lr", "0.5"])
    assert loaded.training_config.lr == 0.5 and loaded.model_size == "huge"

    path.write_text(to_yaml(cfg).replace("\n  epochs:", "\n  epochz:"))
    with pytest.raises(ConfigError, match=r"unknown field\(s\) epochz"):
        load_yaml(path)
    path.write_text(to_yaml(cfg).replace("batch_size: 64", "batch_size: lots"))
    with pytest.raises(ConfigError, match="batch_size: expected an integer"):
        load_yaml(path)
    code, _, err = call_main(["--config", str(tmp_path / "missing.yaml"), "--print-config"])
    assert code == 2 and "missing.yaml does not exist" in err


def test_configs_imports_nothing_from_kdgat() -> None:
    tree = ast.parse((REPO / "configs.py").read_text())
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert imported and not [name for name in imported if name.split(".")[0] == "kdgat"]


def test_every_numeric_knob_declares_its_range_beside_it() -> None:
    """resolve() checks ranges from the fields' own declarations: none may be left without one."""

    def walk(cls: type, path: str) -> list[str]:
        missing = []
        hints = typing.get_type_hints(cls, include_extras=True)
        for field in dataclasses.fields(cls):
            hint = hints[field.name]
            base = typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Annotated else hint
            if dataclasses.is_dataclass(base):
                missing += walk(base, f"{path}{field.name}.")
                continue
            kinds = set(typing.get_args(base)) - {type(None)} or {base}
            if kinds & {int, float} and not any(
                isinstance(m, configs.Range) for m in getattr(hint, "__metadata__", ())
            ):
                missing.append(path + field.name)
        return missing

    assert walk(ExperimentConfig, "") == []


def float_knobs(cls: type, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The field paths of every float knob (float or float | None), through the sub-configs."""
    found = []
    hints = typing.get_type_hints(cls, include_extras=True)
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        base = typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Annotated else hint
        if dataclasses.is_dataclass(base):
            found += float_knobs(base, (*path, field.name))
        elif float in (set(typing.get_args(base)) or {base}):
            found.append((*path, field.name))
    return found


def with_knob(cfg: typing.Any, path: tuple[str, ...], value: float) -> typing.Any:
    if len(path) == 1:
        return dataclasses.replace(cfg, **{path[0]: value})
    return dataclasses.replace(cfg, **{path[0]: with_knob(getattr(cfg, path[0]), path[1:], value)})


def test_every_float_knob_refuses_nan_and_infinity() -> None:
    """NaN passes every range comparison; resolve() (what the CLI calls after parsing) and the
    config.yaml loader must still refuse it, and +-inf, for every float knob."""
    knobs = float_knobs(ExperimentConfig)
    assert ("training_config", "lr") in knobs and ("dataset_config", "internet", "window_seconds") in knobs
    for path in knobs:
        # A modality's own knobs are only read (and only checked) under that modality.
        modality = path[1] if path[0] == "dataset_config" and path[1] in configs.MODALITY_DATASETS else None
        base = ExperimentConfig(modality=modality) if modality else ExperimentConfig()
        for value in (math.nan, math.inf, -math.inf):
            cfg = with_knob(base, path, value)
            with pytest.raises(ConfigError, match="is not a finite number") as refused:
                resolve(cfg)
            assert f"{path[-1].replace('_', '-')} {value!r} " in str(refused.value), (path, value)
            with pytest.raises(ConfigError, match=f"{path[-1]}: expected a finite number, got {value!r}"):
                from_dict(to_dict(cfg))


def test_a_nan_knob_on_the_command_line_exits_2_without_traceback(tmp_path: Path) -> None:
    result = run_train(["--training.lr", "nan", "--print-config"], cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "--training.lr nan is not a finite number" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
