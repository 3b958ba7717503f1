"""The HTML report opened in a real headless Chromium (Debian's chromium; .ci/run installs it):
one table row per run, sorting by a clicked column reorders the rows (the inline script ran),
filtering hides rows, every figure loads, a run page's charts render; a screenshot of each page
is kept in the test's tmp dir."""

from pathlib import Path

import pytest

from tests.results.browser import Chromium, find_chromium
from tests.results.report_tree import RUNS, write_curve_tree
from tests.results.test_results import run_cli

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    if find_chromium() is None:
        pytest.skip("no Chromium on PATH (CI installs Debian's: apt-get install chromium)")
    pytest.importorskip("websocket", reason="websocket-client (requirements.txt) is missing")
    with Chromium.start(tmp_path_factory.mktemp("chromium")) as started:
        yield started


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser-runs") / "runs"
    write_curve_tree(root)
    out = tmp_path_factory.mktemp("browser-report")
    code, _, err = run_cli(str(root), "--report", str(out))
    assert code == 0, err
    return out


F1_COLUMN = "Array.from(document.querySelectorAll('#runs thead th')).findIndex(th => th.textContent === 'F1')"
ROW_VALUES = (
    f"(function(){{var c={F1_COLUMN};return Array.from(document.querySelectorAll('#runs tbody tr'))"
    ".map(r => r.cells[c].textContent);})()"
)
VISIBLE_ROWS = (
    "Array.from(document.querySelectorAll('#runs tbody tr')).filter(r => r.style.display !== 'none').length"
)


def test_report_in_a_real_browser(browser: Chromium, report: Path, tmp_path: Path) -> None:
    browser.open(report / "index.html")
    assert browser.evaluate("document.documentElement.getAttribute('data-script')") == "ran"
    assert browser.evaluate("document.querySelectorAll('#runs tbody tr').length") == len(RUNS) + 1

    before = browser.evaluate(ROW_VALUES)
    column = browser.evaluate(F1_COLUMN)
    browser.click(f"#runs thead th:nth-child({column + 1})")
    ascending = browser.evaluate(ROW_VALUES)
    numbers = [float(v) for v in ascending if v]
    assert numbers == sorted(numbers) and ascending != before
    assert ascending[-1] == ""  # the failed run has no F1: blanks sort last
    browser.click(f"#runs thead th:nth-child({column + 1})")
    descending = [float(v) for v in browser.evaluate(ROW_VALUES) if v]
    assert descending == sorted(numbers, reverse=True)

    images = browser.evaluate("Array.from(document.images).map(i => [i.getAttribute('src'), i.naturalWidth])")
    assert len(images) >= 5 and all(width > 0 for _, width in images), images

    browser.type_into("input.filter[data-table='runs']", "standard")
    assert browser.evaluate(VISIBLE_ROWS) == sum(1 for run in RUNS if run[1] == "standard")
    assert browser.evaluate("document.getElementById('runs-count').textContent").startswith("2 of")
    shot = browser.screenshot(tmp_path / "index.png")
    assert shot.read_bytes().startswith(b"\x89PNG")

    page = browser.evaluate("document.querySelector('#runs tbody a').getAttribute('href')")
    browser.open(report / page)
    assert browser.evaluate("document.querySelectorAll('svg polyline').length") >= 4  # training + ROC/PR
    assert browser.evaluate("document.querySelector('h1').textContent").startswith("automotive/")
    assert browser.screenshot(tmp_path / "run.png").stat().st_size > 1000
