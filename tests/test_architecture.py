"""The layers of docs/architecture.md, checked on the source: no import cycles, and no module
importing a layer above its own.

Every import counts, including those inside functions (a lazy import is still a dependency).
Modules are read with ``ast``, not imported, so the check is fast and sees every file.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"vidrestore": "vidrestore", "engines": "vidrestore.engines",
           "training": "vidrestore.training", "testkit": "testkit"}
"""Repository folder → the package name it installs (or is imported) as."""

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("vidrestore", "vidrestore.errors", "vidrestore.config", "vidrestore.names",
              "vidrestore.imaging", "vidrestore.memory", "vidrestore.compat", "vidrestore.weights",
              "vidrestore.metrics", "vidrestore.degradation")),
    ("io", ("vidrestore.io",)),
    ("models", ("vidrestore.models",)),
    ("faces", ("vidrestore.faces",)),
    ("engines", ("vidrestore.engines",)),
    ("training", ("vidrestore.training",)),
    ("pipeline", ("vidrestore.settings", "vidrestore.pipeline")),
    ("app", ("vidrestore.restore_video", "vidrestore.restore_images", "vidrestore.bench", "vidrestore.batch",
             "vidrestore.evaluation", "vidrestore.degrade_video", "vidrestore.preview")),
    ("cli", ("vidrestore.commands", "vidrestore.cli", "vidrestore.training.cli",
             "vidrestore.training.__main__")),
    ("testkit", ("testkit",)),
]
"""Lowest first. A module may import its own layer and the layers below it, except:"""

FORBIDDEN: dict[str, tuple[str, ...]] = {
    "engines": ("training",),            # engines know networks, devices and precisions
    "training": ("engines",),            # training imports models and faces, not engines
    "pipeline": ("training",),           # the run time never imports training
    "app": ("training",),
}


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    is_package = path.name == "__init__.py"
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets.add(module)
            targets.update(f"{module}.{alias.name}" for alias in node.names)
    resolved = set()
    for target in targets:
        while target and target not in MODULES:
            target = target.rpartition(".")[0]
        if target and target != name:
            resolved.add(target)
    return resolved


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> int:
    best, best_len = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    assert best is not None, f"{module} is in no layer of tests/test_architecture.py"
    return best


def test_every_module_is_in_a_layer():
    """Only the package's own ``__init__`` falls back to the root entry: every other top-level
    module is placed on purpose."""
    for module in MODULES:
        layer = _layer(module)
        if module.count(".") == 1 and module.startswith("vidrestore."):
            assert any(module == p or module.startswith(p + ".") for p in LAYERS[layer][1] if p != "vidrestore"), module


def test_no_import_cycles():
    """Tarjan's strongly connected components over every module-level and lazy import."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    assert cycles == []


def test_imports_go_down_the_layers():
    wrong = []
    for module in sorted(MODULES):
        layer = _layer(module)
        name = LAYERS[layer][0]
        for target in sorted(GRAPH[module]):
            target_layer = _layer(target)
            if target_layer > layer or LAYERS[target_layer][0] in FORBIDDEN.get(name, ()):
                wrong.append(f"{module} ({name}) imports {target} ({LAYERS[target_layer][0]})")
    assert wrong == []


def test_the_runtime_never_imports_the_test_kit():
    users = [m for m, targets in GRAPH.items() if not m.startswith("testkit")
             and any(t.startswith("testkit") for t in targets)]
    assert users == []
