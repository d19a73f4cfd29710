"""The architecture the folders show, checked: imports only go downward, no circles, papers never import each
other, and every DVC stage depends on exactly the code its outputs come from (so a change restales the stages
it can affect and no others)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cliplab.core import imports as im
from cliplab.core import pipeline
from cliplab.core.runner import papers

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# Layers, bottom up. A module may import its own package and any lower layer; papers share a layer and never
# import one another; the command line is the one module that wires everything together. Every other
# top-level package is a paper's (so one made by `cliplab new` needs no entry here).
LAYERS: dict[str, int] = {
    "cliplab": 0, "core": 0, "stats": 1, "plots": 1, "world": 2, "models": 3, "eval": 4, "zoo": 5, "cli": 7,
}
PAPER_LAYER = 6
PAPER_PACKAGES = {"sharpness", "frequency", "shortcut", "association"}


def _layer(top: str) -> int:
    return LAYERS.get(top, PAPER_LAYER)


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


@pytest.fixture(scope="module")
def graph() -> im.Graph:
    return im.build_graph(REPO / "lib")


def test_papers_are_packages_and_the_shared_layers_are_known(graph: im.Graph) -> None:
    flat = sorted(m for m in graph.files if m.count(".") == 1 and graph.files[m].name != "__init__.py"
                  and _top(m) not in LAYERS)
    assert not flat, f"{flat}: a paper's code lives in a package of its own; shared modules need a layer in LAYERS"
    assert PAPER_PACKAGES <= {_top(m) for m in graph.files}


def test_imports_only_go_downward_and_papers_stay_apart(graph: im.Graph) -> None:
    wrong = []
    for module, deps in graph.edges.items():
        for dep in deps:
            a, b = _top(module), _top(dep)
            if a == b or b == "cliplab":
                continue
            if _layer(b) >= _layer(a):
                wrong.append(f"{module} -> {dep}")
    assert not wrong, "imports that go up a layer or across papers:\n" + "\n".join(sorted(wrong))


def _cycles(edges: dict[str, frozenset[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.append(top)
                        if top == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_no_import_circles(graph: im.Graph) -> None:
    assert not _cycles(graph.edges)


def test_cycle_finder_finds_a_circle() -> None:
    edges = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}), "d": frozenset({"a"})}
    assert _cycles(edges) == [["a", "b", "c"]]


def test_closure_follows_lazy_imports_and_parent_packages(graph: im.Graph) -> None:
    closure = graph.closure(["cliplab.frequency.experiment"])
    assert {"cliplab", "cliplab.frequency", "cliplab.zoo", "cliplab.eval.zeroshot"} <= closure  # lazy imports
    assert not any(_top(m) in PAPER_PACKAGES - {"frequency"} for m in closure)


def _stages() -> dict[str, dict]:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def test_dvc_yaml_is_the_pipeline_the_code_implies() -> None:
    assert (REPO / "dvc.yaml").read_text() == pipeline.render(REPO), \
        "dvc.yaml is out of date with the import graph or params.yaml: run `cliplab stages` and commit it"


@pytest.mark.parametrize("paper", papers(REPO))
@pytest.mark.parametrize("smoke", [False, True])
def test_paper_stage_depends_on_its_notebook_package_and_closure_only(graph: im.Graph, paper: str,
                                                                      smoke: bool) -> None:
    """Independent of how pipeline.py lists them: every module the notebook can import is covered by a dep,
    and every dep holds at least one such module (or is the notebook or the zoo)."""
    stage = _stages()[f"smoke-{paper}" if smoke else paper]
    notebook = REPO / "notebooks" / f"{paper}.py"
    closure = graph.closure(im.notebook_imports(notebook, set(graph.files)))
    needed = {graph.files[m].relative_to(REPO).as_posix() for m in closure}

    def covers(dep: str, file: str) -> bool:
        return file == dep or file.startswith(dep.rstrip("/") + "/")

    uncovered = sorted(f for f in needed if not any(covers(d, f) for d in stage["deps"]))
    assert not uncovered, f"{paper}: stage deps miss {uncovered} (its results would go stale unnoticed)"
    zoo = "zoo-smoke" if smoke else "zoo"
    for dep in stage["deps"]:
        if dep in (f"notebooks/{paper}.py", zoo):
            continue
        held = {f.relative_to(REPO).as_posix() for f in (REPO / dep).rglob("*.py")} if (REPO / dep).is_dir() \
            else {dep}
        assert held <= needed, f"{paper}: dep {dep} holds {sorted(held - needed)}, which the notebook never imports"
    assert (zoo in stage["deps"]) == ("cliplab.zoo" in closure)
    own = [d for d in stage["deps"] if d.startswith("lib/cliplab/") and d.count("/") >= 2
           and d.split("/")[2].removesuffix(".py") not in LAYERS]
    assert own, f"{paper}: its stage depends on no package of its own"


@pytest.mark.parametrize("name", ["zoo", "smoke-zoo"])
def test_zoo_stage_depends_on_the_zoo_code_only(name: str) -> None:
    assert sorted(_stages()[name]["deps"]) == sorted(im.module_deps(REPO, ["cliplab.zoo"]))


@pytest.mark.parametrize("name", ["report", "smoke-report"])
def test_report_stage_depends_on_the_claims_code_and_every_paper(name: str) -> None:
    tree = "replications/smoke" if name == "smoke-report" else "replications"
    deps = _stages()[name]["deps"]
    assert "lib/cliplab/core/claims.py" in deps and not any(d.startswith("lib/cliplab/") and "core" not in d
                                                            and d != "lib/cliplab/__init__.py" for d in deps)
    for paper in papers(REPO):
        assert f"replications/{paper}/claims.yaml" in deps and f"{tree}/{paper}/metrics.json" in deps


def test_stage_deps_split_a_package_into_files_only_where_part_of_it_is_used(graph: im.Graph) -> None:
    deps = im.dep_paths(graph, graph.closure(["cliplab.core.claims"]), REPO)
    assert deps == ["lib/cliplab/__init__.py", "lib/cliplab/core/__init__.py", "lib/cliplab/core/claims.py",
                    "lib/cliplab/core/paths.py", "lib/cliplab/core/replicates.py"]
    whole = {m for m in graph.files if m.startswith("cliplab.world")}
    assert "lib/cliplab/world" in im.dep_paths(graph, whole | {"cliplab"}, REPO)


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", *args], cwd=cwd, check=True,
                   capture_output=True)


@pytest.mark.slow
def test_changing_a_sharpness_module_restales_only_the_sharpness_stages(tmp_path: Path) -> None:
    """Real DVC: lock every paper stage as it is (``dvc commit`` of stub outputs), change one sharpness module,
    and ask ``dvc status`` which stages are stale."""
    work = tmp_path / "work"
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout
    for rel in listed.splitlines():
        if (REPO / rel).is_file() and rel != "dvc.lock":
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, work / rel)
    _git("init", "-q", cwd=work)
    stages = [s for s in _stages() if s not in ("report", "smoke-report")]
    for name, stage in _stages().items():  # stub outputs, so DVC can record a lock without running anything
        for out in [*stage.get("outs", []), *stage.get("metrics", [])]:
            path = work / (next(iter(out)) if isinstance(out, dict) else out)
            if path.suffix:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("{}")
            else:
                path.mkdir(parents=True, exist_ok=True)
                (path / "stub").write_text("stub")
    env = {k: v for k, v in os.environ.items() if k != "CLIPLAB_ROOT"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    dvc = str(BIN / "dvc")
    committed = subprocess.run([dvc, "commit", "-f", *stages], cwd=work, env=env, capture_output=True, text=True)
    assert committed.returncode == 0, committed.stdout + committed.stderr

    def stale() -> set[str]:
        proc = subprocess.run([dvc, "status", *stages], cwd=work, env=env, capture_output=True, text=True,
                              check=True)
        return {line.rstrip(":").strip() for line in proc.stdout.splitlines()
                if line and not line.startswith((" ", "\t")) and line.rstrip().endswith(":")}

    assert stale() == set()
    module = work / "lib" / "cliplab" / "sharpness" / "measures.py"
    module.write_text(module.read_text() + "\n# a change\n")
    assert stale() == {"sharpness", "smoke-sharpness"}
    shared = work / "lib" / "cliplab" / "stats.py"
    shared.write_text(shared.read_text() + "\n# a change\n")
    assert stale() == {"sharpness", "smoke-sharpness", "shortcut_learning", "smoke-shortcut_learning",
                       "concept_frequency", "smoke-concept_frequency", "concept_association_bias",
                       "smoke-concept_association_bias"}
