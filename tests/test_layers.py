"""The import structure: layers point one way and no module imports itself back.

Layers, lowest first (``docs/architecture.md`` draws them)::

    config  <  mensatek  <  worker  <  tasks  <  entry points (worker.cli, worker.commands,
                                                               worker.web.wsgi), bench

``sandbox`` imitates the provider and may import only ``config``. Modules import each
other by their installed names (``certsms.worker.jobs.store``); the ``certsms`` package
(``certsms/__init__.py``, the public producer API) sits with ``tasks``. Every import
counts, at module level or inside a function; only ``if TYPE_CHECKING:`` blocks
are left out (they never run). A circle is any set of modules that import each
other, directly or through others; ``from pkg import submodule`` is an import of
the submodule (the package's ``__init__`` runs first, but that is Python's, not ours).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("config", "mensatek", "worker", "tasks", "sandbox", "bench")
ENTRY_POINTS = ("worker.cli", "worker.commands", "worker.web.wsgi")
LAYER = {"config": 0, "mensatek": 1, "worker": 2, "tasks": 3, "entry": 4, "bench": 5}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    found["certsms"] = ROOT / "certsms" / "__init__.py"
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    name = name.removeprefix("certsms.")  # installed names: certsms.<layer>.<module>
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def _imported(module: str, path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")
                if path.name != "__init__.py":
                    package = package[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, *([node.module] if node.module else [])])
            subs = [f"{base}.{alias.name}" for alias in node.names]
            names = [s for s in subs if s.removeprefix("certsms.") in MODULES] or [base]
            if len(names) < len(subs):
                names.append(base)
        else:
            continue
        if _type_checking_only(node, parents):
            continue
        for name in names:
            target = _resolve(name)
            if target and target != module:
                yield target


GRAPH = {module: set(_imported(module, path)) for module, path in MODULES.items()}


def layer_of(module: str) -> int:
    """The layer of a module (see the module docstring)."""
    if any(module == e or module.startswith(e + ".") for e in ENTRY_POINTS):
        return LAYER["entry"]
    top = module.split(".")[0]
    if top == "certsms":
        return LAYER["tasks"]
    return LAYER["config"] if top == "sandbox" else LAYER[top]


def upward_imports() -> list[tuple[str, str]]:
    """Every (importer, imported) pair where the imported module sits in a higher layer,
    and every import of ``sandbox`` by anything but entry points, tests and bench."""
    found = []
    for module, targets in GRAPH.items():
        for target in targets:
            into_sandbox = target.split(".")[0] == "sandbox" and module.split(".")[0] != "sandbox"
            if layer_of(target) > layer_of(module) or (
                into_sandbox and layer_of(module) < LAYER["entry"]
            ):
                found.append((module, target))
    return sorted(found)


def circles() -> list[list[str]]:
    """The strongly connected sets of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                result.append(sorted(group))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return result


def test_layers_no_module_imports_a_higher_layer() -> None:
    """config < mensatek < worker < tasks < entry points: no import points up."""
    assert upward_imports() == []


def test_layers_no_import_circles() -> None:
    """No set of modules imports each other (directly or through others)."""
    assert circles() == []


@pytest.mark.parametrize(
    ("module", "layer"),
    [
        ("config.settings", 0),
        ("sandbox.app", 0),
        ("mensatek.client", 1),
        ("worker.jobs.store", 2),
        ("worker.web.app", 2),
        ("tasks.actors", 3),
        ("worker.commands.jobs", 4),
        ("worker.cli", 4),
        ("worker.web.wsgi", 4),
    ],
)
def test_layers_modules_sit_in_their_layer(module: str, layer: int) -> None:
    """The layer table places each package where docs/architecture.md draws it."""
    assert module in MODULES
    assert layer_of(module) == layer


def test_layers_checker_sees_function_level_imports() -> None:
    """An import inside a function counts: the graph has the lazy imports of the CLI."""
    assert "worker.runtime" in GRAPH["worker.commands.jobs"]


def _bare_imports(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] in PACKAGES[:-1]:
                yield f"{path.relative_to(ROOT)}: {name}"


def test_layers_imports_use_the_installed_certsms_names() -> None:
    """Code imports ``certsms.worker…``, never a bare ``worker…`` (which would work only
    from a checkout and would clash with an application's own ``config`` or ``tasks``)."""
    files = [*MODULES.values(), *(ROOT / "tests").rglob("*.py")]
    assert [hit for path in files for hit in _bare_imports(path)] == []
