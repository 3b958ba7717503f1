"""The import directions: each part of kdgat imports only the parts below it, and no modules import each
other in a circle.

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
    ("kdgat.evaluation",),  # metrics and reports only; scoring a finished run sits higher (scoring)
    ("kdgat.training",),
    ("kdgat.stages",),
    ("kdgat.results",),  # reads run directories only
    ("kdgat.experiment", "kdgat.scoring"),  # a run trained; a finished run scored on other data
    ("kdgat.deploy",),  # exported detectors: read runs, reuse scoring's capture files
    # The commands, and the `python -m kdgat.<command>` names that call them. Only the launcher (the
    # transfer command's arguments) and train/launch sit above: no library module imports a command.
    (
        "kdgat.cli",
        "kdgat.evaluate",
        "kdgat.transfer",
        "kdgat.export",
        "kdgat.detect",
        "kdgat.results.__main__",
    ),
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
    assert layer_of("kdgat.scoring.target") > layer_of("kdgat.stages.graph_stage")
    assert layer_of("kdgat.cli.results") > layer_of("kdgat.results.table")
    assert layer_of("kdgat.results.__main__") == layer_of("kdgat.cli.results")
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


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports, anywhere in the file. `from package import name`
    counts as an import of the submodule when name is one, else of the package itself."""
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(closest_module(alias.name, modules) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
                for alias in node.names:
                    name = f"{base}.{alias.name}"
                    targets.add(name if name in modules else closest_module(base, modules))
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every group of modules that import each other, directly or round a longer circle (the
    strongly connected components of more than one module; Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next((c for c in children if c in graph), None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_no_modules_import_each_other() -> None:
    # Layers order packages; inside a package (kdgat.runs.store and kdgat.runs.prerequisites once did)
    # two modules could still import each other, each half-initialised while the other loads.
    graph = import_graph(project_modules())
    assert graph["kdgat.runs.store"] >= {"kdgat.runs.prerequisites"}  # the graph sees real imports
    cycles = import_cycles(graph)
    assert not cycles, "modules importing each other (move the shared piece down): " + "; ".join(
        " <-> ".join(c) for c in cycles
    )


def test_the_cycle_check_sees_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert import_cycles(graph) == [["a", "b", "c"]]
    assert import_cycles({"x": {"y"}, "y": {"x"}}) == [["x", "y"]]
    assert import_cycles({"x": {"y"}, "y": set()}) == []


def kdgat_imports_of_configs(path: Path) -> list[str]:
    """What a configs.py imports from kdgat, at module level or inside any function, and any
    dynamic import (importlib, __import__) or module __getattr__ that could forward to kdgat."""
    found = sorted(m for m in imports_of(path, "configs") if m.split(".")[0] == "kdgat")
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and "importlib" in ast.unparse(node):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
        if isinstance(node, ast.Name) and node.id == "__import__":
            found.append(f"line {node.lineno}: __import__")
    found += [
        f"line {n.lineno}: def __getattr__" for n in tree.body if getattr(n, "name", "") == "__getattr__"
    ]
    return found


def test_configs_imports_nothing_from_kdgat() -> None:
    # configs.py is the bottom of every layer: configuration flows one way, into the package.
    assert kdgat_imports_of_configs(REPO / "configs.py") == []
    code = "import sys, configs; print(sorted(m for m in sys.modules if m.split('.')[0] == 'kdgat'))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]", proc.stdout


def test_the_configs_check_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    fake = tmp_path / "configs.py"
    fake.write_text(
        "import dataclasses\n\ndef resolve(cfg):\n    from kdgat.config.resolve import resolve\n"
        "    return resolve(cfg)\n\ndef __getattr__(name):\n    import importlib\n"
        "    return getattr(importlib.import_module('kdgat.config.codec'), name)\n"
    )
    found = kdgat_imports_of_configs(fake)
    assert "kdgat.config.resolve" in found
    assert any("importlib" in f for f in found)
    assert any("__getattr__" in f for f in found)
