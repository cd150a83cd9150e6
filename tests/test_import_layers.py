"""The package's imports run downward only, and form no circle.

Every ``import`` of a tsmoe module is read from the source (at module level and inside functions alike,
so an import hidden in a function body cannot hide a circle). Each module belongs to a layer; a module
may import its own layer or a lower one, never a higher one, and models and data never import each
other. The layers, from the ground up (``docs/ARCHITECTURE.md`` draws them):

0. errors, params, paths, io, version: no tsmoe imports but the ground itself
1. layers: the reusable network parts
2. text (encoders, the embedding cache); models and data
3. metrics, tasks, config
4. training
5. estimator and what serves it: forecast, predict, ensemble
6. cli, analysis, experiments (and tuning): reached from the outside; the package root ``tsmoe`` (its lazy
   ``Estimator``) is the public face
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "tsmoe"

LAYERS: dict[str, int] = {
    "tsmoe.errors": 0, "tsmoe.params": 0, "tsmoe.paths": 0, "tsmoe.io": 0, "tsmoe.version": 0,
    "tsmoe.layers": 1,
    "tsmoe.text": 2, "tsmoe.models": 2, "tsmoe.data": 2,
    "tsmoe.metrics": 3, "tsmoe.tasks": 3, "tsmoe.config": 3,
    "tsmoe.training": 4,
    "tsmoe.estimator": 5, "tsmoe.forecast": 5, "tsmoe.predict": 5, "tsmoe.ensemble": 5, "tsmoe.stream": 5,
    "tsmoe.ensemble_stream": 5, "tsmoe.stream_rows": 5,
    "tsmoe.intervals": 5, "tsmoe.quantile_intervals": 5, "tsmoe.backtest": 5, "tsmoe.output_files": 5,
    "tsmoe.cli": 6, "tsmoe.analysis": 6, "tsmoe.experiments": 6, "tsmoe.tuning": 6, "tsmoe": 6,
}  # fmt: skip
NEVER = {("tsmoe.models", "tsmoe.data"), ("tsmoe.data", "tsmoe.models"), ("tsmoe.text", "tsmoe.data")}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room(module: str) -> str:
    """The longest key of :data:`LAYERS` that ``module`` lies in."""
    for key in sorted(LAYERS, key=len, reverse=True):
        if module == key or module.startswith(key + "."):
            return key
    raise AssertionError(f"module {module} has no layer: add it to LAYERS and to docs/ARCHITECTURE.md")


def imports_of(path: Path) -> set[str]:
    """Every tsmoe module ``path`` imports, anywhere in the file."""
    module, found = module_name(path), set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "tsmoe"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.split(".")[0] == "tsmoe":
                # `from tsmoe import io` imports the module tsmoe.io, not only the package
                found |= {f"{target}.{a.name}" if is_module(f"{target}.{a.name}") else target for a in node.names}
    return found - {module}


def is_module(name: str) -> bool:
    relative = Path(*name.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").exists() or (PACKAGE / relative / "__init__.py").exists()


def import_graph() -> dict[str, set[str]]:
    return {module_name(path): imports_of(path) for path in sorted(PACKAGE.rglob("*.py"))}


def test_every_import_runs_downward():
    wrong = []
    for module, targets in import_graph().items():
        for target in targets:
            here, there = room(module), room(target)
            if LAYERS[there] > LAYERS[here] or (here, there) in NEVER:
                wrong.append(f"{module} (layer {LAYERS[here]}) imports {target} (layer {LAYERS[there]})")
    assert not wrong, "imports that run upward or across:\n" + "\n".join(sorted(wrong))


def test_no_import_circle():
    graph = import_graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    circles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                circles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target in graph and target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])
    assert not circles, "import circles:\n" + "\n".join(circles)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from tsmoe.estimator import Estimator\n", {"tsmoe.estimator"}),
        ("def f():\n    from tsmoe.cli import main\n", {"tsmoe.cli"}),
        ("from tsmoe import ensemble\n", {"tsmoe.ensemble"}),
    ],
)
def test_the_walker_sees_imports_at_any_depth(tmp_path, monkeypatch, source, expected):
    fake = PACKAGE / "layers" / "observation_summary.py"  # any module of layer 1: read another source there
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: source)
    assert imports_of(fake) == expected
    assert LAYERS[room(next(iter(expected)))] > LAYERS[room(module_name(fake))]
