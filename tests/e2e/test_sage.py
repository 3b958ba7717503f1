"""GraphSAGE end to end through train.py: `--model-architecture SAGE --learning-type classifier`
trains on synthetic CAN data and on slices of the real hcrl_sa captures, and a SAGE student learns
from a GAT teacher (standard and topology-preserving distillation, found on disk by the teacher
lookup); a teacher of an architecture SAGE's row does not name is refused before training."""

import gzip
import json
from pathlib import Path

import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.helpers import FAST, run_train, shared_data

pytestmark = pytest.mark.slow

SAGE = ["--model-architecture", "SAGE", "--learning-type", "classifier"]
TEACHER = ["--model-architecture", "GAT", "--learning-type", "classifier", "--model-size", "teacher"]
EPOCHS = ["--training.epochs", "2"]
# (folder, file, first frame, frames): slices of the real captures with benign and attack traffic.
HCRL_SA_SLICES = [
    ("train_01_attack_free", "attack-free-kia.csv.gz", 0, 8000),
    ("train_02_with_attacks", "DoS-kia.csv.gz", 68000, 8000),
    ("test_01_known_vehicle_known_attack", "DoS-sonata.csv.gz", 37000, 5000),
]


def without_size(args: list[str]) -> list[str]:
    i = args.index("--model-size")
    return args[:i] + args[i + 2 :]


def train(args: list[str], cwd: Path) -> tuple[Path, str]:
    """The run directory and the `test windows:` line of one train.py run that must finish."""
    result = run_train(args, cwd=cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    run_dir = cwd / next(x for x in lines if x.startswith("finished ")).removeprefix("finished ").strip()
    test_line = next(x.strip() for x in lines if x.strip().startswith("test windows: f1 "))
    print(f"{run_dir.relative_to(cwd / 'runs')}: {test_line}")
    return run_dir, result.stdout


def metrics_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def loss_terms(run_dir: Path) -> set[str]:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {t.removeprefix("loss_terms/") for t in events.Tags()["scalars"] if t.startswith("loss_terms/")}


def assert_a_trained_sage(run_dir: Path, stdout: str, size: str, distillation: str) -> dict:
    assert run_dir.parts[-8:-1][2:] == ("classifier", "SAGE", size, distillation, "all_samples")
    assert json.loads((run_dir / "status.json").read_text())["state"] == "finished"
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["model_architecture"] == "SAGE"
    metrics = metrics_of(run_dir)
    test = metrics["test"]
    assert test["n"] == sum(test["confusion_matrix"].values()) > test["n_attack"] > 0
    assert f"test windows: f1 {test['f1']:.4f}" in stdout
    # Better than flagging every window, and it ranks attacks above benign windows.
    assert test["f1"] > test["flag_all"]["f1"] and test["auroc"] > 0.9
    return metrics


def assert_taught_by(student: Path, stdout: str, teacher: Path, topology: bool) -> None:
    metrics = metrics_of(student)
    runs_root, cwd = student.parents[7], student.parents[8]  # runs/<7 levels>/run_NNN
    assert (runs_root / metrics["upstream"]["teacher_run"]).resolve() == teacher.resolve()
    assert f"distilling from {teacher.relative_to(cwd)}" in stdout
    assert metrics["teacher_params"] == metrics_of(teacher)["params"] > metrics["params"]
    terms = loss_terms(student)
    assert {"cross_entropy", "kd_soft_targets"} <= terms
    assert ({"kd_local_structure", "kd_relational"} <= terms) == topology


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """SAGE, a GAT teacher, and a topology-preserving SAGE student of it, on synthetic CAN (the
    standard student is trained on hcrl_sa below: one run fewer in the suite)."""
    root = tmp_path_factory.mktemp("sage_synthetic")
    fast = [*FAST, *EPOCHS]
    return {
        "sage": train([*fast, *SAGE], root),
        "teacher": train([*without_size(fast), *TEACHER], root),
        "topology": train([*fast, *SAGE, "--distillation", "topology_preserving"], root),
    }


def test_train_py_trains_sage_on_synthetic_data(synthetic: dict) -> None:
    metrics = assert_a_trained_sage(*synthetic["sage"], size="tiny", distillation="no")
    assert metrics["epochs_run"] == 2 and metrics["params"] > 0
    assert "teacher_run" not in metrics["upstream"]


def test_a_topology_preserving_sage_student_learns_from_a_gat_teacher(synthetic: dict) -> None:
    student, stdout = synthetic["topology"]
    assert_a_trained_sage(student, stdout, size="tiny", distillation="topology_preserving")
    assert synthetic["teacher"][0].parts[-5:-2] == ("GAT", "teacher", "no")
    assert_taught_by(student, stdout, synthetic["teacher"][0], topology=True)


def test_a_teacher_of_an_architecture_the_row_does_not_name_is_refused(synthetic: dict) -> None:
    """GAT's row names only GAT teachers: a finished SAGE run given as its teacher is refused."""
    sage_run = synthetic["sage"][0]
    cwd = sage_run.parents[8].parent
    result = run_train(
        [*FAST, *EPOCHS, "--distillation", "standard", "--teacher-run", str(sage_run)], cwd=cwd
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cannot serve as its teacher: it has model_architecture=SAGE" in result.stderr
    assert "model_architecture=GAT" in result.stderr  # what a teacher for it has


@pytest.fixture(scope="module")
def hcrl_sa(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small hcrl_sa tree cut from the real captures (same layout, fewer frames)."""
    source, root = shared_data("hcrl_sa"), tmp_path_factory.mktemp("hcrl_sa_slices")
    for folder, name, start, count in HCRL_SA_SLICES:
        with gzip.open(source / folder / name, "rt") as handle:
            lines = handle.read().splitlines()
        (root / folder).mkdir()
        text = "\n".join([lines[0], *lines[1 + start : 1 + start + count]]) + "\n"
        (root / folder / name.removesuffix(".gz")).write_text(text)
    return root


@pytest.mark.real_data
def test_sage_and_a_sage_student_of_a_gat_teacher_train_on_hcrl_sa(hcrl_sa: Path, tmp_path: Path) -> None:
    data = ["--dataset", "hcrlsa", "--data-root", str(hcrl_sa), "--device", "cpu", *EPOCHS]
    tiny = [*data, "--model-size", "tiny"]
    sage = assert_a_trained_sage(*train([*tiny, *SAGE], tmp_path), size="tiny", distillation="no")
    assert list(sage["test_by_split"]) == ["test_01_known_vehicle_known_attack"]
    teacher, _ = train([*data, *TEACHER], tmp_path)
    student, stdout = train([*tiny, *SAGE, "--distillation", "standard"], tmp_path)
    assert_a_trained_sage(student, stdout, size="tiny", distillation="standard")
    assert_taught_by(student, stdout, teacher, topology=False)
