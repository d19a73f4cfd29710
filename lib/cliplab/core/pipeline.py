"""``dvc.yaml``, written from the project itself: the papers in params.yaml and the import graph of the code.

Each stage depends on exactly the code that makes its outputs (``cliplab.core.imports``): a paper's stage on its
notebook and its import closure inside cliplab, plus ``zoo/`` (or ``zoo-smoke/``) when that closure loads the
zoo; the zoo stages on the closure of ``cliplab.zoo``; the report stages on the claims code and every paper's
claims and metrics. ``cliplab stages`` rewrites the file after a change of imports, ``cliplab new`` after adding a
paper, and ``tests/test_layout.py`` fails while the committed file differs from what this module writes.
"""

from __future__ import annotations

from pathlib import Path

from cliplab.core import imports, paths
from cliplab.core.runner import papers

HEADER = """\
# The replication pipeline: world -> zoo -> one stage per paper -> report (docs/architecture.md).
# Written by `cliplab stages` (cliplab.core.pipeline) from params.yaml's papers and the code's import graph:
# edit those, not this file. `cliplab replicate` runs `dvc repro report`; `cliplab replicate --smoke` runs
# `dvc repro smoke-report`, whose outputs (zoo-smoke/, replications/smoke/) live apart so the scales never mix.
# Each stage depends on exactly the code that makes its outputs, and each paper's stage tracks its own
# params.yaml block: changing one paper's code or parameter reruns that paper only.
stages:
"""
ZOO_ENTRY = "cliplab.zoo"
REPORT_ENTRY = "cliplab.core.claims"


def _list(key: str, items: list[str]) -> list[str]:
    return [f"    {key}:", *(f"      - {item}" for item in items)]


def _persisted(key: str, items: list[str], comment: str = "") -> list[str]:
    lines = [f"    {key}:"]
    for i, item in enumerate(items):
        lines += [f"      - {item}:", "          persist: true" + (f"  # {comment}" if comment and i == 0 else "")]
    return lines


def paper_deps(root: Path, paper: str, smoke: bool) -> list[str]:
    """A paper stage's deps: notebook, its import closure in cliplab, and the zoo it loads (if it loads one)."""
    notebook = paths.notebook_path(root, paper)
    graph = imports.build_graph(root / "lib")
    deps = imports.stage_deps(root, notebook)
    if ZOO_ENTRY in graph.closure(imports.notebook_imports(notebook, set(graph.files))):
        deps.append("zoo-smoke" if smoke else "zoo")
    return deps


def report_deps(root: Path, smoke: bool) -> list[str]:
    tree = "replications/smoke" if smoke else "replications"
    return imports.module_deps(root, [REPORT_ENTRY]) + [
        path for paper in papers(root) for path in (f"replications/{paper}/claims.yaml", f"{tree}/{paper}/metrics.json")]


def _zoo_stage(root: Path, smoke: bool) -> list[str]:
    name, cmd, out = ("smoke-zoo", "cliplab zoo --smoke train --all", "zoo-smoke") if smoke else \
        ("zoo", "cliplab zoo train --all", "zoo")
    return [f"  {name}:", f"    cmd: {cmd}", *_list("deps", imports.module_deps(root, [ZOO_ENTRY])),
            *_list("params", ["world", "zoo"]),
            *_persisted("outs", [out], "training resumes from finished checkpoints; cards are rewritten")]


def _paper_stage(root: Path, paper: str, smoke: bool) -> list[str]:
    tree = f"replications/smoke/{paper}" if smoke else f"replications/{paper}"
    return [f"  {'smoke-' if smoke else ''}{paper}:", f"    cmd: cliplab run {paper}" + (" --smoke" if smoke else ""),
            *_list("deps", paper_deps(root, paper, smoke)), *_list("params", [paper]),
            *_persisted("outs", [f"{tree}/executed.ipynb", f"{tree}/params.json", f"{tree}/figures"],
                        "the runner replaces outputs atomically; a failed run must not delete them"),
            *_persisted("metrics", [f"{tree}/metrics.json"])]


def _report_stage(root: Path, smoke: bool) -> list[str]:
    tree = "replications/smoke" if smoke else "replications"
    return [f"  {'smoke-' if smoke else ''}report:", "    cmd: cliplab report" + (" --smoke" if smoke else ""),
            *_list("deps", report_deps(root, smoke)), *_list("outs", [f"{tree}/REPORT.md"])]


def render(root: Path) -> str:
    """The text of dvc.yaml for the project at ``root``."""
    lines: list[str] = []
    for smoke in (False, True):
        lines += _zoo_stage(root, smoke)
    for smoke in (False, True):
        for paper in papers(root):
            lines += _paper_stage(root, paper, smoke)
    for smoke in (False, True):
        lines += _report_stage(root, smoke)
    return HEADER + "\n".join(lines) + "\n"


def write(root: Path) -> Path:
    """Rewrite dvc.yaml; returns its path."""
    target = root / "dvc.yaml"
    target.write_text(render(root))
    return target
