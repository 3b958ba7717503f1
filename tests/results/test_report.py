"""--figures and --report on a run tree with predictions.csv, TensorBoard event files, lineage and a
failed run (tests/results/report_tree.py): every figure in PNG and PDF, the curves equal to
scikit-learn's, and the report's pages, links and tables as files (the browser test opens them)."""

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from configs import LEVELS
from kdgat import results
from kdgat.results.curves import read_predictions, run_curves, training_scalars
from kdgat.results.figure_style import COLOURS, LINESTYLES, MARKERS, series_style
from kdgat.results.report import write_report
from tests.results.report_tree import RUNS, write_curve_tree
from tests.results.test_results import run_cli

FIGURES = ("roc_pr", "training", "attack_recall", "teacher_students", "transfer")


@pytest.fixture(scope="module")
def curve_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("curves") / "runs"
    return root, write_curve_tree(root)


@pytest.fixture(scope="module")
def report_dir(curve_tree: tuple[Path, dict[str, Path]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    code, printed, err = run_cli(str(curve_tree[0]), "--report", str(out))
    assert code == 0, err
    assert "report:" in printed and "6 run pages" in printed
    return out


class Links(HTMLParser):
    """Every href and src of a page, the ids, and the rows of table#runs."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.runs_rows = 0
        self._in_runs = self._in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.refs += [v for k, v in attrs if k in ("href", "src") and v]
        if tag == "table":
            self._in_runs = values.get("id") == "runs"
        if tag == "tbody" and self._in_runs:
            self._in_body = True
        if tag == "tr" and self._in_body:
            self.runs_rows += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_body = False


def parse(page: Path) -> Links:
    links = Links()
    links.feed(page.read_text())
    return links


def test_curves_read_back_equal_sklearn(curve_tree: tuple[Path, dict[str, Path]]) -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    run_dir = curve_tree[1]["tiny no 0"]
    label, score = read_predictions(run_dir)
    curves = run_curves(run_dir)
    fpr, tpr, _ = metrics.roc_curve(label, score, drop_intermediate=False)
    np.testing.assert_allclose(curves.fpr, fpr, atol=1e-12)
    np.testing.assert_allclose(curves.tpr, tpr, atol=1e-12)
    precision, recall, _ = metrics.precision_recall_curve(label, score)
    # scikit-learn: highest threshold last, stopping at full recall, then its (recall 0, precision 1)
    kept = len(precision) - 1
    np.testing.assert_allclose(curves.precision[1 : 1 + kept], precision[:-1][::-1], atol=1e-12)
    np.testing.assert_allclose(curves.recall[1 : 1 + kept], recall[:-1][::-1], atol=1e-12)
    scalars = training_scalars(run_dir)
    assert list(scalars["charts/val_f1"][0]) == [0, 1, 2, 3] and "losses/val" in scalars
    assert run_curves(curve_tree[1]["failed"]) is None and training_scalars(curve_tree[1]["failed"]) is None


def test_every_figure_in_png_and_pdf(curve_tree: tuple[Path, dict[str, Path]], tmp_path: Path) -> None:
    from matplotlib.image import imread

    code, printed, err = run_cli(str(curve_tree[0]), "--figures", str(tmp_path))
    assert code == 0, err
    for name in FIGURES:
        png, pdf = tmp_path / f"{name}.png", tmp_path / f"{name}.pdf"
        assert imread(png).shape[0] > 100, name
        assert pdf.read_bytes().startswith(b"%PDF"), name
        assert f"{name}: " in printed
    # One style: series differ in line style and marker too, so greyscale keeps them apart.
    looks = [series_style(i) for i in range(len(COLOURS))]
    assert len({(s["linestyle"], s["marker"]) for s in looks}) == len(looks) == len(LINESTYLES)
    assert len(MARKERS) == len(LINESTYLES)

    code, printed, err = run_cli(str(curve_tree[0]), "--figures", str(tmp_path / "one"), "--runs", "teacher")
    assert code == 0 and "teacher_students: not drawn" in err  # one model size: nothing to compare
    assert "curves drawn" not in err
    code, _, err = run_cli(str(curve_tree[0]), "--figures", str(tmp_path / "x"), "--runs", "nothing_like_it")
    assert code == 2 and "no selected run matches" in err


def test_report_has_every_run_page_figure_and_link(report_dir: Path) -> None:
    index = report_dir / "index.html"
    links = parse(index)
    assert links.runs_rows == len(RUNS) + 1  # every run, the failed one too
    pages = [ref for ref in links.refs if ref.startswith("runs/")]
    assert len(pages) == len(RUNS) + 1
    for ref in links.refs:
        assert not re.match(r"^(https?:)?//", ref), ref  # nothing fetched from the network
        if not ref.startswith("#"):
            assert (report_dir / ref).is_file(), ref
    for name in FIGURES:
        assert f"figures/{name}.png" in links.refs
    text = index.read_text()
    assert "<script>" in text and "<style>" in text and "95% CI" in text
    assert "hover for why" in text  # the failed run is in the table, greyed, with its reason


def test_run_pages_hold_metrics_curves_config_and_lineage(
    report_dir: Path, curve_tree: tuple[Path, dict[str, Path]]
) -> None:
    root, made = curve_tree
    pages = {}
    for page in (report_dir / "runs").glob("*.html"):
        title = re.search(r"<h1>(.*?)</h1>", page.read_text()).group(1)
        pages[title] = page
    student = pages[str(made["tiny standard 0"].relative_to(root))]
    teacher = pages[str(made["teacher no 0"].relative_to(root))]
    text = student.read_text()
    wanted = ("Metrics per split", "Per attack type", "test: dos", "<svg", "ROC (test windows)")
    wanted += ("config.yaml",)
    for part in wanted:
        assert part in text, part
    assert f'teacher_run: <a href="{teacher.name}">' in text
    assert f'used by: <a href="{student.name}">' in teacher.read_text()
    for ref in parse(student).refs:
        assert (student.parent / ref).exists(), ref
    failed = pages[str(made["failed"].relative_to(root))].read_text()
    assert "TrainingDiverged" in failed and "no metrics" in failed


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_report_by_worker_processes_is_the_serial_report(
    curve_tree: tuple[Path, dict[str, Path]], tmp_path: Path
) -> None:
    """Pages and figures written by two worker processes (the figures drawn while pages are
    written), byte for byte what one process writes; a report written again over an old one
    keeps only its own runs' pages and leaves no folder of its own behind."""
    root = curve_tree[0]
    table = results.load_runs(root)
    # The same depth below tmp_path, so the pages' relative links to the runs' files are equal.
    serial = write_report(table, tmp_path / "one" / "report", str(root), workers=1)
    parallel = write_report(table, tmp_path / "two" / "report", str(root), workers=2)
    assert serial.pages == parallel.pages == len(RUNS) + 1
    assert serial.figures.written.keys() == parallel.figures.written.keys() == set(FIGURES)
    one, two = files_of(tmp_path / "one" / "report"), files_of(tmp_path / "two" / "report")
    assert len(one) == len(RUNS) + 1 + len(FIGURES) + 1 and one.keys() == two.keys()
    for name in one:
        assert one[name] == two[name], name

    out = tmp_path / "two" / "report"
    teachers = table[table["model_size"] == "teacher"]
    again = write_report(teachers, out, str(root), workers=2)
    assert again.pages == len(teachers) == 1
    assert sorted(p.name for p in out.iterdir()) == ["figures", "index.html", "runs"]
    (page,) = (out / "runs").iterdir()
    assert f"<h1>{teachers['run'].iloc[0]}</h1>" in page.read_text()
    assert parse(out / "index.html").runs_rows == 1


def plain_columns(prefix: str, obj: dict, skip: tuple[str, ...] = ()) -> dict:
    """A JSON object's columns as the results table names them, flattened the plain way."""
    out = {}
    for key, value in obj.items():
        if key in skip:
            continue
        if isinstance(value, dict):
            out.update(plain_columns(f"{prefix}{key}.", value))
        elif isinstance(value, list):
            out[f"{prefix}{key}"] = ",".join(map(str, value))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_rows_hold_every_value_of_the_run_files_in_their_order(
    curve_tree: tuple[Path, dict[str, Path]],
) -> None:
    """read_run's fast paths (knobs, flattening, floors) against the run files read back here:
    every value of status.json, config.json, metrics.json and eval_*.json, in the files' order."""
    root, made = curve_tree
    for run_dir in made.values():
        row = results.read_run(run_dir, root)
        status = json.loads((run_dir / "status.json").read_text())
        expected = plain_columns("", status, skip=("state",))
        knobs = json.loads((run_dir / "config.json").read_text())["config"]
        for key, value in knobs.items():
            if key not in LEVELS:
                column = key if "." in key else f"config.{key}"
                expected[column] = ",".join(map(str, value)) if isinstance(value, list) else value
        if (run_dir / "metrics.json").exists():
            metrics = json.loads((run_dir / "metrics.json").read_text())
            expected.update(plain_columns("", metrics, skip=("history", "data")))
            expected.update(plain_columns("data.", metrics.get("data", {}), skip=("train_files",)))
            floor = metrics["test"]["flag_all"]["f1"]
            assert row["test.f1_margin"] == metrics["test"]["f1"] - floor
        for path in sorted(run_dir.glob("eval_*.json")):
            name = path.name.removeprefix("eval_").removesuffix(".json")
            expected.update(plain_columns(f"eval.{name}.", json.loads(path.read_text())))
        assert len(expected) > 100
        for column, value in expected.items():
            assert row[column] == value, (run_dir, column)
        assert [c for c in row if c in expected] == list(expected)


def test_metric_cells_fast_path_writes_what_float_cells_writes() -> None:
    """A run page's metric rows come from one %-format per pattern of missing values; every kind
    of value (NaN, infinite, counts, whole numbers from 1000 up, negatives, -0.0) against
    float_cells, the general path."""
    from kdgat.results.html import float_cells
    from kdgat.results.run_page import MetricRows

    rng = np.random.default_rng(0)
    kinds = np.array([np.nan, np.inf, -np.inf, 4000.0, -1000.0, 999.99996, 0.5, -0.0, 12.0, 1e-9, -3.25])
    matrix = rng.choice(kinds, size=(400, 16)) * rng.choice([1.0, 1.0, 0.37], size=(400, 16))
    matrix[:100] = rng.random((100, 16))  # plain rows
    matrix[100:150, 5] = np.nan  # one metric missing, as auprc is where a run has none
    for counts in (0, 1, 2):
        rows = MetricRows.of("test", matrix, counts)
        assert 0 < sum(b < 0 for b in rows.nan_bits) < len(matrix)  # both paths taken
        for i, values in enumerate(matrix.tolist()):
            if rows.present[i]:
                assert rows.cells(i) == float_cells(values, counts=counts), (counts, values)


def test_a_report_that_fails_leaves_the_old_pages(
    curve_tree: tuple[Path, dict[str, Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages go to a fresh folder swapped in at the end: a report stopped halfway (here its
    figures fail) leaves the previous report's pages as they were and no folder of its own."""
    import kdgat.results.report as report

    root = curve_tree[0]
    table = results.load_runs(root)
    out = tmp_path / "report"
    write_report(table, out, str(root), workers=1)
    before = files_of(out / "runs")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("figures failed")

    monkeypatch.setattr(report, "write_figures", broken)
    with pytest.raises(RuntimeError, match="figures failed"):
        write_report(table[table["model_size"] == "teacher"], out, str(root), workers=1)
    assert files_of(out / "runs") == before
    assert sorted(p.name for p in out.iterdir()) == ["figures", "index.html", "runs"]
