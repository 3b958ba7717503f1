"""The commands in one place (kdgat/cli/): each starts as `python -m kdgat.<command>` (the names
existing scripts and Slurm jobs use) and as the console script pyproject.toml declares, and both
reach the same `main`."""

import importlib
import subprocess
import sys
import tomllib

import pytest

from tests.helpers import REPO

COMMANDS = ("evaluate", "transfer", "export", "detect", "results")


def console_scripts() -> dict[str, str]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]


def test_every_console_script_names_a_main_that_takes_argv() -> None:
    scripts = console_scripts()
    expected = {"kdgat-train", "kdgat-launch", *(f"kdgat-{c}" for c in COMMANDS)}
    assert set(scripts) == expected
    for name, target in scripts.items():
        module, _, function = target.partition(":")
        main = getattr(importlib.import_module(module), function)
        assert callable(main), name
        # console scripts call main() with no argument: sys.argv is read then
        assert main.__code__.co_varnames[:1] == ("argv",) and main.__defaults__ == (None,), name


def test_every_command_lives_in_kdgat_cli_with_its_old_name_and_script() -> None:
    modules = {p.stem for p in (REPO / "kdgat" / "cli").glob("*.py") if p.stem != "__init__"}
    assert set(COMMANDS) <= modules
    # The other modules there hold a command's options or outputs; a module with a main() is a command.
    helpers = {m for m in modules - set(COMMANDS) if "def main(" in (REPO / f"kdgat/cli/{m}.py").read_text()}
    assert not helpers, f"commands without a name, shim and script: {sorted(helpers)}"
    scripts = console_scripts()
    for command in COMMANDS:
        main = importlib.import_module(f"kdgat.cli.{command}").main
        assert scripts[f"kdgat-{command}"] == f"kdgat.cli.{command}:main"
        if command != "results":  # kdgat/results/__main__.py runs on import; read below instead
            assert importlib.import_module(f"kdgat.{command}").main is main
    assert "from kdgat.cli.results import main" in (REPO / "kdgat/results/__main__.py").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
def test_python_dash_m_help_exits_zero(command: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", f"kdgat.{command}", "--help"], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"usage: python -m kdgat.{command} "), proc.stdout[:200]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_bad_argument_exits_two(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    main = importlib.import_module(f"kdgat.cli.{command}").main
    with pytest.raises(SystemExit) as stop:
        main(["--no-such-option"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: python -m kdgat.{command} ") and f"kdgat.{command}: error:" in err, err


def test_the_transfer_command_and_the_cli_package_import_no_torch() -> None:
    # launch.py transfer parses its targets with kdgat.cli.transfer on a login node (--help, --dry-run).
    code = (
        "import sys, kdgat.cli, kdgat.cli.transfer, kdgat.launcher.transfer\n"
        "print(sorted(m for m in ('torch', 'pandas') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]", proc.stdout
