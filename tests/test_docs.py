"""README and docs/ stay true to the repository: every relative link resolves (file and heading),
every command of README's list parses, no file cites a document outside the repository, and README
stays short (the detail lives in docs/)."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, REPO, SHARED_DATA

README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
README_LIMIT = 250  # lines
TEST_COMMAND = ".venv/bin/python -m pytest -q tests"  # README's, exactly as .ci/run runs it
RUN_DIR_PLACEHOLDER = "runs/.../run_003"  # README's name for a run directory
FIXTURE_RUN = FIXTURES / "run_2026-12_gat_tiny"  # a finished run, so --config / --resume parse
# Commands that import torch before they parse their arguments: a few seconds each.
TORCH_FIRST = ("--print-config", "kdgat.evaluate", "kdgat.export", "kdgat.detect", "kdgat.transfer")

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"`[^`]*`")
DOC_CITATION = re.compile(r"\bdocs/([\w.-]+\.md)(?:#([\w-]+))?")
# Repository paths and `python -m` modules the pages name ('<...>' placeholders end a path).
REPO_PATH = re.compile(r"(?<![\w./-])((?:kdgat|tests|benchmarks|docs)/[\w./-]*[\w/])")
MODULE = re.compile(r"python -m (kdgat(?:\.\w+)+)\b(?!\.?<)")
# A document outside the repository: DESIGN.md in any spelling ("DESIGN.md §9", "DESIGN §4",
# "DESIGN's"), or a path into ../shared that is neither the data nor the local Slurm scripts.
DESIGN = re.compile(r"\bDESIGN\b")
SHARED = re.compile(r"\.\./shared(?!/data\b|/slurm/local-slurm-[\w-]+\.sh\b)")
CITATION_FREE = ("tests/", ".ci/")  # may name ../shared and DESIGN.md (the checks themselves, CI)
TEXT_SUFFIXES = {".py", ".md", ".toml", ".txt", ".cfg", ".ini", ".yaml", ".yml", ".sh", ".json", ""}


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of a markdown text outside fenced code blocks."""
    out, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            out.append((number, line))
    return out


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: links reduced to their text, lower case, every character
    but letters, digits, '_', '-' and spaces dropped, spaces turned into '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a markdown text; repeated headings get -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    out = set()
    for _, line in prose_lines(text):
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        out.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return out


def broken_links(page: Path) -> list[str]:
    """Relative links of a markdown page whose file or heading does not exist, as 'line: target'."""
    text = page.read_text()
    broken = []
    for number, line in prose_lines(text):
        for target in LINK.findall(INLINE_CODE.sub("", line)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            path_part, _, anchor = target.partition("#")
            linked = (page.parent / path_part).resolve() if path_part else page
            if not linked.exists():
                broken.append(f"{number}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text()):
                broken.append(f"{number}: {target} (no heading #{anchor} in {linked.name})")
    return broken


def broken_doc_citations(text: str) -> list[str]:
    """`docs/NAME.md` and `docs/NAME.md#anchor` mentions whose page or heading does not exist."""
    broken = []
    for name, anchor in DOC_CITATION.findall(text):
        page = REPO / "docs" / name
        if not page.is_file():
            broken.append(f"docs/{name} (no such page)")
        elif anchor and anchor not in anchors(page.read_text()):
            broken.append(f"docs/{name}#{anchor} (no such heading)")
    return broken


def outside_citations(path: str, text: str) -> list[str]:
    """Lines of a repository file (path relative to the root) that cite a document outside the
    repository; tests/ and .ci/ may (they check for them, and CI starts the shared local Slurm)."""
    if path.startswith(CITATION_FREE):
        return []
    return [
        f"{path}:{number}: {line.strip()}"
        for number, line in enumerate(text.splitlines(), 1)
        if DESIGN.search(line) or SHARED.search(line)
    ]


def repository_files() -> list[str]:
    """Tracked files and new ones git does not ignore (what a commit could hold), text files only."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return sorted(
        name
        for name in set(listed)
        if Path(name).suffix in TEXT_SUFFIXES and (REPO / name).is_file() and "fixtures/" not in name
    )


def readme_commands() -> list[str]:
    """The `python ...` lines of the fenced block under README's '## Commands'."""
    section = README.read_text().split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.splitlines() if line.strip().startswith("python ")]


def runnable(command: str) -> list[str]:
    """A README command as argv that parses here: the run directory is a finished fixture run, the
    shared data folder the real one, and --help added unless it already only prints or dry-runs."""
    words = shlex.split(command, comments=True)
    assert words[0] == "python", command
    argv = [sys.executable]
    for word in words[1:]:
        if word in ("train.py", "launch.py"):
            word = str(REPO / word)
        word = word.replace(RUN_DIR_PLACEHOLDER, str(FIXTURE_RUN))
        word = word.replace("../shared/data", str(SHARED_DATA))
        argv.append(word)
    if not {"--print-config", "--dry-run"} & set(words):
        argv.append("--help")
    return argv


# (a) links --------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_resolves(page: Path) -> None:
    assert not broken_links(page), "\n".join(broken_links(page))


def test_the_pages_exist_and_readme_links_every_one() -> None:
    names = {p.name for p in PAGES[1:]}
    expected = {"training.md", "data.md", "unseen-vehicles.md", "deployment.md", "launching.md"}
    expected |= {"results.md", "findings.md", "architecture.md"}
    assert expected <= names, expected - names
    linked = {target.partition("#")[0] for target in LINK.findall(README.read_text())}
    assert {f"docs/{name}" for name in names} <= linked, "README's map of docs/ misses a page"


def test_every_docs_citation_in_the_repository_resolves() -> None:
    broken = [
        f"{name}: {problem}"
        for name in repository_files()
        if name != "tests/test_docs.py"
        for problem in broken_doc_citations((REPO / name).read_text(errors="replace"))
    ]
    assert not broken, "\n".join(broken)


def missing_names(text: str) -> list[str]:
    """Repository paths and `python -m kdgat...` modules a page names that do not exist."""
    missing = [path for path in REPO_PATH.findall(text) if not (REPO / path).exists()]
    for module in MODULE.findall(text):
        base = REPO / module.replace(".", "/")
        if not (base.with_suffix(".py").is_file() or (base / "__main__.py").is_file()):
            missing.append(f"python -m {module}")
    return missing


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_path_and_module_a_page_names_exists(page: Path) -> None:
    assert not missing_names(page.read_text()), missing_names(page.read_text())


def test_the_name_check_catches_a_moved_file() -> None:
    text = "see `kdgat/evaluation/evaluate.py`, python -m kdgat.evaluation.evaluate, kdgat/data/<name>/, "
    text += "python -m kdgat.<command>, python -m kdgat.results, tests/e2e/test_deploy.py"
    assert missing_names(text) == ["kdgat/evaluation/evaluate.py", "python -m kdgat.evaluation.evaluate"]


def test_the_link_check_catches_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text(
        "# Other\n\n## The plant recipe (BATADAL)\n\n```\n# not a heading\n```\n"
    )
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#the-plant-recipe-batadal) [ok](#top) `[code](missing.md)`\n"
        "[gone](missing.md)\n[bad](other.md#not-a-heading)\n[web](https://example.org/x.md)\n\n# Top\n"
    )
    assert broken_links(page) == [
        "2: missing.md (no such file)",
        "3: other.md#not-a-heading (no heading #not-a-heading in other.md)",
    ]


def test_slugs_follow_github() -> None:
    assert github_slug("Stages (KD-GAT)") == "stages-kd-gat"
    assert github_slug("BATADAL: where the models stand") == "batadal-where-the-models-stand"
    assert github_slug("The curriculum on set_01") == "the-curriculum-on-set_01"
    assert github_slug("Internet (network flows -> host graphs)") == "internet-network-flows---host-graphs"
    assert anchors("# A\n## A\n## A\n") == {"a", "a-1", "a-2"}


# (b) README's command list ----------------------------------------------------------------------


def test_readme_lists_ten_commands() -> None:
    assert len(readme_commands()) == 10, readme_commands()


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(c, marks=[pytest.mark.slow] if any(t in c for t in TORCH_FIRST) else [])
        for c in readme_commands()
    ],
)
def test_each_readme_command_parses(command: str, tmp_path: Path) -> None:
    if "../shared/data" in command and not SHARED_DATA.is_dir():
        pytest.skip(f"the command reads {SHARED_DATA}, which is absent here")
    argv = runnable(command)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    # In an empty folder: a dry run or --help must not need (or write) anything in the checkout.
    result = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, f"{' '.join(argv)}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    if "--help" in argv:
        assert "usage" in (result.stdout + result.stderr).lower(), result.stdout[-2000:]
    else:
        assert result.stdout.strip(), "printed nothing"
    if "--print-config" in argv:
        assert "model_size: teacher" in result.stdout


def test_the_quick_start_test_command_is_what_ci_runs() -> None:
    assert f"&& {TEST_COMMAND}\n" in README.read_text()
    ci = [
        line for line in (REPO / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")
    ]
    assert ci[-1] == TEST_COMMAND


# (c) no document outside the repository ---------------------------------------------------------


def test_no_file_cites_a_document_outside_the_repository() -> None:
    files = repository_files()
    assert "kdgat/experiment.py" in files and "README.md" in files  # the repository was listed
    found = [
        hit for name in files for hit in outside_citations(name, (REPO / name).read_text(errors="replace"))
    ]
    assert not found, "cite docs/ instead:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "line",
    [
        "layers of DESIGN.md §9",
        "one graph per window (DESIGN §4).",
        "DESIGN's grid spelling",
        "see ../shared/DESIGN.md",
        "notes in ../shared/README.md",
        "../shared/slurm/README.md",
        "../shared/database",
    ],
)
def test_the_citation_check_catches_a_planted_citation(line: str) -> None:
    assert outside_citations("kdgat/planted.py", f'"""Docstring.\n\n{line}\n"""\n') == [
        f"kdgat/planted.py:3: {line}"
    ]


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("kdgat/data/x.py", "python train.py --data-root ../shared/data/hcrl_sa"),
        ("docs/launching.md", "`../shared/slurm/local-slurm-up.sh` (as root)"),
        ("kdgat/x.py", "a DESIGNATED place, the design of docs/architecture.md"),
        ("tests/test_x.py", "DESIGN.md and ../shared/anything"),
        (".ci/run", "# ../shared/slurm/README.md"),
    ],
)
def test_the_citation_check_lets_data_slurm_tests_and_ci_through(path: str, line: str) -> None:
    assert outside_citations(path, line) == []


# (d) a short README -----------------------------------------------------------------------------


def test_readme_is_at_most_250_lines() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= README_LIMIT, f"README.md has {lines} lines; move detail into docs/"
