"""The set-up a newcomer relies on stays consistent: pins, conda file, registry, pipeline, CI."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from cliplab.core.parameters import read_parameters
from cliplab.core.runner import load_params_file, resolve_run_parameters

REPO = Path(__file__).resolve().parents[1]


def _pyproject_requirements() -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return project["dependencies"] + project["optional-dependencies"]["dev"]


def test_every_dependency_is_pinned_exactly() -> None:
    for req in _pyproject_requirements():
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][A-Za-z0-9.+]*", req), f"{req} is not pinned with =="


def test_environment_yml_matches_pyproject() -> None:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert sorted(pip_section) == sorted(_pyproject_requirements())
    assert "python=3.11" in env["dependencies"]


def test_lock_file_agrees_with_the_pins() -> None:
    lock = dict(
        line.split("==", 1) for line in (REPO / "requirements.lock").read_text().splitlines()
        if "==" in line and not line.startswith((" ", "#"))
    )
    lock = {k.lower().replace("_", "-"): v.split(" ")[0].split(";")[0] for k, v in lock.items()}
    for req in _pyproject_requirements():
        name, version = req.split("==")
        assert lock.get(name.lower().replace("_", "-")) == version, f"requirements.lock disagrees on {req}"


def test_every_paper_is_wired_end_to_end() -> None:
    params = load_params_file(REPO)
    papers = params["papers"]
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    # one stage per paper and scale (their deps are checked against the import graph in test_layout.py)
    for paper in papers:
        assert dvc[paper]["cmd"] == f"cliplab run {paper}"
        assert dvc[f"smoke-{paper}"]["cmd"] == f"cliplab run {paper} --smoke"
    for paper in papers:
        assert (REPO / "notebooks" / f"{paper}.py").is_file()
        assert (REPO / "replications" / paper / "claims.yaml").is_file()
        for stage, tree in (("report", "replications"), ("smoke-report", "replications/smoke")):
            assert f"{tree}/{paper}/metrics.json" in dvc[stage]["deps"], f"{stage} misses {paper}"
            assert f"replications/{paper}/claims.yaml" in dvc[stage]["deps"]
        # the params.yaml block validates against the notebook's parameters cell
        resolve_run_parameters(REPO, paper, {}, smoke=True)
        declared = read_parameters(REPO / "notebooks" / f"{paper}.py")
        assert {"smoke", "out_dir"} <= set(declared)


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    assert "make replicate" in readme and "make test" in readme


def test_notebooks_are_sources_not_outputs() -> None:
    assert not list((REPO / "notebooks").glob("*.ipynb")), "notebooks/ holds jupytext .py sources only"


def test_notebooks_open_as_notebooks_with_the_project_kernel() -> None:
    import json

    import jupytext

    overrides = json.loads((REPO / "lib" / "cliplab" / "core" / "lab_overrides.json").read_text())
    assert overrides["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]["python"] == "Jupytext Notebook"
    for paper in load_params_file(REPO)["papers"]:
        nb = jupytext.read(REPO / "notebooks" / f"{paper}.py")
        assert nb.metadata.get("kernelspec", {}).get("name") == "cliplab", f"{paper}.py must select the cliplab kernel"
        first = nb.cells[0]
        assert first.cell_type == "markdown" and "cliplab run" in first.source, "first cell: paper, claims, command"
