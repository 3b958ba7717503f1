"""The layout rules of docs/architecture.md#layers for the package itself."""

from pathlib import Path

import kdgat

LIMIT = 500  # lines per module (docs/architecture.md: small modules with one job each)


def test_every_module_under_kdgat_stays_under_the_line_limit() -> None:
    package = Path(kdgat.__file__).parent
    sizes = {p.relative_to(package.parent): len(p.read_text().splitlines()) for p in package.rglob("*.py")}
    assert len(sizes) > 40  # the whole package was found, not an empty folder
    too_long = {str(p): n for p, n in sizes.items() if n >= LIMIT}
    assert not too_long, f"split these modules by job: {too_long}"


def test_the_top_level_schema_and_entry_points_stay_under_the_line_limit() -> None:
    """configs.py is the schema a researcher reads; train.py and launch.py parse and call into kdgat."""
    top = Path(kdgat.__file__).parent.parent
    names = ("configs.py", "train.py", "launch.py")
    sizes = {name: len((top / name).read_text().splitlines()) for name in names}
    too_long = {name: n for name, n in sizes.items() if n >= LIMIT}
    assert not too_long, f"move what is not schema / parsing into kdgat: {too_long}"


def test_the_package_root_holds_at_most_five_modules() -> None:
    """The root keeps experiment and the `python -m kdgat.<command>` names; everything else lives in
    a package with one job (the commands themselves in kdgat/cli/)."""
    package = Path(kdgat.__file__).parent
    modules = sorted(p.name for p in package.glob("*.py") if p.name != "__init__.py")
    assert "experiment.py" in modules  # the right folder was read
    assert len(modules) <= 5, f"move these into a package of kdgat/ (kdgat/cli/ for commands): {modules}"


def test_every_folder_of_the_package_is_a_regular_package() -> None:
    """setuptools' package finder ships only folders with an __init__.py: without one (kdgat/runs once)
    `pip install .` leaves the folder out, and launch.py fails where kdgat is installed."""
    package = Path(kdgat.__file__).parent
    folders = {p.parent for p in package.rglob("*.py")}
    assert package / "runs" in folders  # the whole tree was read
    missing = sorted(str(f.relative_to(package.parent)) for f in folders if not (f / "__init__.py").is_file())
    assert not missing, f"add an __init__.py (a docstring saying what the package holds) to: {missing}"
