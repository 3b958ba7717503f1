"""The architecture table (configs.ARCHITECTURES) and what derives from it: the level's values,
LEARNING_ARCHITECTURES, the level rules, --help, the teacher lookup; and a row added to the table
reaching all of them, the model factory, the export gate and the tests' stage list with no other edit."""

import contextlib
import dataclasses
import functools
import io
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import configs
import train
from configs import ARCHITECTURES, ConfigError, ExperimentConfig
from kdgat.config.levels import check_levels, levels_of
from kdgat.config.presets import parse_preset, preset_name, valid_presets
from kdgat.config.resolve import resolve
from kdgat.runs.prerequisites import BY_FIELD, candidate_levels, fits
from tests.helpers import REPO, run_train

TEACHER = BY_FIELD["teacher_run"]


def test_the_level_values_and_learning_architectures_come_from_the_table() -> None:
    assert typing.get_args(configs.Architecture) == tuple(ARCHITECTURES)
    assert configs.LEVEL_CHOICES["model_architecture"] == tuple(ARCHITECTURES)
    for learning in configs.LEVEL_CHOICES["learning_type"]:
        archs = configs.LEARNING_ARCHITECTURES[learning]
        assert archs == tuple(a for a, spec in ARCHITECTURES.items() if learning in spec.learning_types)
        assert archs, f"no architecture serves {learning}"
    for arch, spec in ARCHITECTURES.items():
        assert set(spec.learning_types) <= set(configs.LEVEL_CHOICES["learning_type"]), arch
        module, _, function = spec.builder.partition(":")
        assert module.startswith("kdgat.") and function.isidentifier(), spec.builder
        for teacher in spec.teachers:  # a teacher shares the student's learning type
            assert set(ARCHITECTURES[teacher].learning_types) & set(spec.learning_types), (arch, teacher)


@functools.cache
def _valid() -> tuple[dict[str, str], ...]:
    return tuple(map(parse_preset, valid_presets()))


def _presets_of(arch: str) -> list[dict[str, str]]:
    return [p for p in _valid() if p["model_architecture"] == arch]


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_each_row_decides_which_presets_of_its_architecture_run(arch: str) -> None:
    spec, presets = ARCHITECTURES[arch], _presets_of(arch)
    assert {p["learning_type"] for p in presets} == set(spec.learning_types)
    assert any(p["training_mode"] == "curriculum_classifier" for p in presets) == spec.curriculum
    assert any(p["distillation"] == "standard" for p in presets) == bool(spec.teachers)
    assert any(p["distillation"] == "topology_preserving" for p in presets) == (
        spec.topology and bool(spec.teachers)
    )


@pytest.mark.slow
def test_sage_presets_round_trip_through_names_and_the_cli() -> None:
    presets = _presets_of("SAGE")
    # classifier and fusion x 9 datasets x student-side sizes and the rest, curriculum included
    assert len(presets) > 100
    for levels in presets:
        name = "_".join(v.lower() for v in levels.values())
        assert preset_name(resolve(dataclasses.replace(ExperimentConfig(), **levels))) == name
    sample = {(p["learning_type"], p["distillation"], p["training_mode"]): p for p in presets}
    assert len(sample) == 2 * 3 * 2  # every learning type x distillation x training mode of SAGE
    for levels in sample.values():
        name = "_".join(v.lower() for v in levels.values())
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert train.main(["--print-config", "--preset", name]) in (0, None)
        text = out.getvalue()
        assert text.startswith(f"# preset: {name}\n") and "model_architecture: SAGE" in text


@pytest.mark.parametrize(
    ("levels", "fragments"),
    [
        (  # the curriculum: the architectures whose row allows it
            {
                "learning_type": "fusion",
                "model_architecture": "DQN",
                "training_mode": "curriculum_classifier",
            },
            ("graph classifier (GAT, SAGE)", "Use --training-mode all_samples"),
        ),
        (  # topology-preserving distillation: the rows with node embeddings
            {"learning_type": "fusion", "model_architecture": "DQN", "distillation": "topology_preserving"},
            ("no node embeddings", "--model-architecture VGAE or GAT or SAGE"),
        ),
        (  # a learning type the row does not list
            {"learning_type": "unsupervised", "model_architecture": "SAGE", "training_mode": "normals_only"},
            ("cannot do learning_type='unsupervised'", "--learning-type classifier or fusion with SAGE"),
        ),
        (
            {"model_architecture": "SAGE", "training_mode": "normals_only"},
            ("all_samples or curriculum_classifier",),
        ),
    ],
)
def test_level_refusals_name_the_architectures_the_table_allows(
    levels: dict[str, str], fragments: tuple[str, ...]
) -> None:
    cfg = dataclasses.replace(ExperimentConfig(model_size="student"), **levels)
    with pytest.raises(ConfigError) as refused:
        check_levels(levels_of(cfg))
    for fragment in fragments:
        assert fragment in str(refused.value)


def test_help_lists_every_architecture_with_its_learning_types(tmp_path: Path) -> None:
    out = run_train(["--help"], cwd=tmp_path)
    assert out.returncode == 0
    text = " ".join(out.stdout.replace("│", " ").split())  # the help box wraps lines
    assert "--model-architecture {" + ",".join(ARCHITECTURES) + "}" in text
    for arch, spec in ARCHITECTURES.items():
        assert f"{arch} ({'/'.join(spec.learning_types)}" in text, arch


@pytest.mark.parametrize("arch", [a for a, spec in ARCHITECTURES.items() if spec.teachers])
def test_a_teacher_is_looked_up_and_accepted_only_among_the_rows_teachers(arch: str) -> None:
    spec = ARCHITECTURES[arch]
    learning = spec.learning_types[0]
    mode = "normals_only" if learning == "unsupervised" else "all_samples"
    cfg = ExperimentConfig(
        learning_type=learning, model_architecture=arch, training_mode=mode, distillation="standard"
    )
    looked_up = [levels["model_architecture"] for levels in candidate_levels(TEACHER, cfg)]
    assert looked_up == list(spec.teachers)  # in the row's order of preference
    for other in ARCHITECTURES:
        upstream = dataclasses.replace(cfg, model_architecture=other, distillation="no", model_size="teacher")
        assert (fits(TEACHER, cfg, upstream) == []) == (other in spec.teachers), (arch, other)


# A row for a made-up architecture, on SAGE's builder: it serves classifiers only, with no
# curriculum and no edge read-out, is taught by GAT and does not export.
TOY_ROW = (
    '    "TOY": ArchitectureSpec(("classifier",), "kdgat.models.sage:build_sage", teachers=("GAT",),\n'
    '                            no_export="toy layers"),\n'
)
TOY_CHECKS = """
import dataclasses, io, contextlib, sys
from pathlib import Path
import configs
from configs import ExperimentConfig
assert configs.LEVEL_CHOICES["model_architecture"][-1] == "TOY"
assert configs.LEARNING_ARCHITECTURES["classifier"][-1] == "TOY"
assert "TOY" not in configs.LEARNING_ARCHITECTURES["fusion"]
from kdgat.config.presets import parse_preset, valid_presets
from kdgat.config.resolve import resolve
names = [n for n in valid_presets() if parse_preset(n)["model_architecture"] == "TOY"]
modes = {parse_preset(n)["training_mode"] for n in names}
assert names and modes == {"all_samples"}, modes
cfg = resolve(ExperimentConfig(model_architecture="TOY", model_size="tiny"))
try:
    resolve(dataclasses.replace(cfg, training_mode="curriculum_classifier"))
    raise SystemExit("the curriculum was not refused")
except configs.ConfigError as err:
    assert "(GAT, SAGE)" in str(err), err
from kdgat.runs.prerequisites import BY_FIELD, candidate_levels
student = dataclasses.replace(cfg, distillation="standard")
assert [c["model_architecture"] for c in candidate_levels(BY_FIELD["teacher_run"], student)] == ["GAT"]
from kdgat.models import build_from_dims, wants_edge_readout
from kdgat.models.sage import SAGEClassifier
model = build_from_dims(cfg, {"num_ids": 3, "node_dim": 4, "edge_dim": 2})
assert isinstance(model, SAGEClassifier) and not wants_edge_readout(cfg, has_edge_labels=True)
from kdgat.deploy.artefact import export_refusal
assert "TOY runs do not export: toy layers" in export_refusal(Path("run"), "TOY")
from tests.stages.test_stages import STAGES
assert ("classifier", "TOY", "all_samples") in STAGES
assert ("classifier", "TOY", "curriculum_classifier") not in STAGES
import train
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        train.main(["--help"])
    except SystemExit:
        pass
assert "TOY (classifier)" in " ".join(out.getvalue().replace("│", " ").split())
print("the TOY row reached every derived place")
"""


@pytest.mark.slow
def test_a_new_row_reaches_every_place_that_derives_from_the_table() -> None:
    """configs.py with one more row, loaded in a fresh interpreter before anything imports it."""
    source = (REPO / "configs.py").read_text()
    anchor = "\n}\n# fmt: on\n"  # the end of ARCHITECTURES
    assert source.count(anchor) == 1, "the table's end moved: update TOY_ROW's anchor"
    patched = source.replace(anchor, "\n" + TOY_ROW + anchor[1:])
    loader = (
        "import sys, types\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "module = types.ModuleType('configs')\n"
        f"module.__file__ = {str(REPO / 'configs.py')!r}\n"
        "sys.modules['configs'] = module\n"
        f"exec(compile({patched!r}, module.__file__, 'exec'), module.__dict__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", loader + TOY_CHECKS], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the TOY row reached every derived place" in result.stdout
