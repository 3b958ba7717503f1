"""The import directions of DESIGN.md §9: each part of kdgat imports only the parts below it.

Layers, bottom up; a module imports from its own layer or lower ones. Imports inside a function
count too (they are how a module reaches a heavy dependency late, not a way round the layers);
the few that deliberately reach up are listed in LATE_UPWARD with the reason.
"""

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

LAYERS: list[tuple[str, ...]] = [
    ("configs", "kdgat", "kdgat.common"),
    ("kdgat.config",),
    ("kdgat.runs",),
    ("kdgat.data",),
    ("kdgat.models",),
    ("kdgat.evaluation",),  # metrics and reports; the evaluate command sits higher (below)
    ("kdgat.training",),
    ("kdgat.stages",),
    ("kdgat.results",),  # reads run directories only
    ("kdgat.experiment", "kdgat.evaluation.evaluate", "kdgat.evaluate", "kdgat.transfer"),
    ("kdgat.deploy", "kdgat.export", "kdgat.detect"),  # exported detectors: read runs, reuse evaluate
    ("kdgat.launcher",),
    ("train", "launch"),
]

# (importer, imported): upward imports made inside a function on purpose.
LATE_UPWARD = {
    # Run.model / Run.best load a finished run's weights: the one place run bookkeeping meets torch,
    # imported only when weights are asked for so the launcher claims runs without torch.
    ("kdgat.runs.store", "kdgat.models"),
    ("kdgat.runs.store", "kdgat.training"),
}


def layer_of(module: str) -> int:
    """The layer of a module: its longest matching prefix in LAYERS."""
    best, rank = -1, -1
    for i, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best:
                best, rank = len(name), i
    assert rank >= 0, f"{module} is in no layer: add it to LAYERS in {__file__}"
    return rank


def project_modules() -> dict[str, Path]:
    found = {p.stem: p for p in (REPO / name for name in ("configs.py", "train.py", "launch.py"))}
    for path in (REPO / "kdgat").rglob("*.py"):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        found[name] = path
    return found


def imports_of(path: Path, module: str) -> set[str]:
    """Project modules a file imports (absolute and relative), anywhere in the file."""
    out = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in out if m.split(".")[0] in ("kdgat", "configs", "train", "launch")}


def closest_module(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def test_every_module_imports_only_its_layer_or_below() -> None:
    modules = project_modules()
    assert len(modules) > 60  # the whole package was found
    wrong = []
    for module, path in sorted(modules.items()):
        for imported in imports_of(path, module):
            target = closest_module(imported, modules)
            if target is None or target == module:
                continue
            if layer_of(target) > layer_of(module) and not any(
                module.startswith(a) and target.startswith(b) for a, b in LATE_UPWARD
            ):
                wrong.append(f"{path.relative_to(REPO)} imports {target} (a higher layer)")
    assert not wrong, "\n".join(wrong)


def test_the_layer_check_sees_a_wrong_direction() -> None:
    # The check above must be able to fail: data reaching up into a stage is caught.
    assert layer_of("kdgat.stages.fusion") > layer_of("kdgat.data.graphset")
    assert layer_of("kdgat.evaluation.evaluate") > layer_of("kdgat.stages.graph_stage")
    assert layer_of("kdgat.evaluation.metrics") < layer_of("kdgat.training.skeleton")


def test_configs_config_and_runs_import_no_torch() -> None:
    # The launcher plans, claims and submits runs on a login node: none of that may load torch.
    code = (
        "import sys, configs, kdgat.config.resolve, kdgat.config.codec, kdgat.config.migrations\n"
        "import kdgat.config.presets, kdgat.config.levels\n"
        "import kdgat.runs.store, kdgat.runs.upstream, kdgat.runs.prerequisites\n"
        "print(sorted(m for m in ('torch', 'numpy', 'pandas') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "torch" not in proc.stdout, proc.stdout
