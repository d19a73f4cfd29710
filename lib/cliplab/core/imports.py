"""The import graph of the ``cliplab`` package, read from the source with ``ast`` (nothing is imported).

Why: a DVC stage must depend on exactly the code that produces its outputs. A paper's stage depends on its
notebook and on every ``cliplab`` module the notebook's import closure reaches, so a change to one paper's
package restales that paper only, and a change to a shared module restales every paper that uses it.
``stage_deps`` derives that list; ``tests/test_layout.py`` checks ``dvc.yaml`` against it, and ``cliplab new``
writes a new paper's stage from it.

Every import counts, also one inside a function (it runs when the function does) or under ``TYPE_CHECKING``.
Importing ``a.b.c`` runs ``a/__init__.py`` and ``a/b/__init__.py`` first, so those are part of the closure too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import jupytext

PACKAGE = "cliplab"


@dataclass(frozen=True)
class Graph:
    """Modules of the package (dotted name → source file) and the cliplab modules each one imports."""

    lib: Path
    files: dict[str, Path]
    edges: dict[str, frozenset[str]]

    def closure(self, roots: Iterable[str]) -> set[str]:
        """Every module reachable from ``roots`` (and the roots), parent packages included."""
        todo = [m for root in roots for m in _with_parents(self._known(root))]
        seen: set[str] = set()
        while todo:
            module = todo.pop()
            if module in seen:
                continue
            seen.add(module)
            todo.extend(m for dep in self.edges[module] for m in _with_parents(dep))
        return seen

    def _known(self, module: str) -> str:
        if module not in self.files:
            raise KeyError(f"{module} is not a module of {PACKAGE} under {self.lib}")
        return module


def _with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _module_name(lib: Path, path: Path) -> str:
    parts = list(path.relative_to(lib).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(tree: ast.AST, current: str, is_package: bool, known: set[str]) -> set[str]:
    """The cliplab modules an AST imports: ``import a.b``, ``from a import b`` (b a module or a name of a)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against the current package
                base = current.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != PACKAGE:
                continue
            submodules = {f"{target}.{alias.name}" for alias in node.names} & known
            found |= submodules
            if len(submodules) < len(node.names):  # some names are the module's own attributes
                found.add(target)
    unknown = sorted(m for m in found if m not in known)
    if unknown:
        raise ImportError(f"{current} imports {unknown}, which are not modules of {PACKAGE}")
    return found


def build_graph(lib: Path) -> Graph:
    """Parse every ``.py`` file under ``lib/cliplab`` into the package's import graph."""
    files = {_module_name(lib, p): p for p in sorted((lib / PACKAGE).rglob("*.py")) if "__pycache__" not in p.parts}
    known = set(files)
    edges = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges[name] = frozenset(_imported(tree, name, path.name == "__init__.py", known) - {name})
    return Graph(lib, files, edges)


def notebook_imports(notebook: Path, known: set[str]) -> set[str]:
    """The cliplab modules the code cells of a jupytext notebook import."""
    nb = jupytext.read(notebook)
    source = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]  # IPython magics
    return _imported(ast.parse("\n".join(lines), filename=str(notebook)), "__notebook__", False, known)


def dep_paths(graph: Graph, modules: set[str], root: Path) -> list[str]:
    """``modules`` as the shortest list of repository paths: a package folder when every module under it is
    in the set (its data files, such as model configs, then come along), else the module files themselves."""
    covered: set[str] = set()
    out: list[str] = []
    packages = sorted((m for m in modules if graph.files[m].name == "__init__.py"), key=lambda m: m.count("."))
    for package in packages:
        if package == PACKAGE or package in covered:
            continue
        members = {m for m in graph.files if m == package or m.startswith(package + ".")}
        if members <= modules:
            covered |= members
            out.append(graph.files[package].parent.relative_to(root).as_posix())
    out += [graph.files[m].relative_to(root).as_posix() for m in sorted(modules - covered)]
    return sorted(out)


def stage_deps(root: Path, notebook: Path) -> list[str]:
    """The DVC deps of a paper's stage: its notebook and the files of its import closure inside cliplab."""
    graph = build_graph(root / "lib")
    modules = graph.closure(notebook_imports(notebook, set(graph.files)))
    return [notebook.relative_to(root).as_posix(), *dep_paths(graph, modules, root)]


def module_deps(root: Path, modules: Iterable[str]) -> list[str]:
    """The DVC deps of a stage whose command runs library code only (the zoo, the report)."""
    graph = build_graph(root / "lib")
    return dep_paths(graph, graph.closure(modules), root)
