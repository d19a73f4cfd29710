"""A bare copy of a project: where a run on your own model can't touch the clone's versioned results.

``bare_project`` copies what a run reads (``params.yaml``, ``jupytext.toml``, the notebooks and each paper's
``claims.yaml``) and nothing it writes (no zoo, no data, no outputs). Pointed at with ``CLIPLAB_ROOT``, every
``cliplab`` command then runs there: the real-path tests and ``benchmarks/bench_real.py`` use it so that their
runs start from the state of a fresh clone with no results.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from cliplab.core import paths
from cliplab.core.runner import papers

TOP_FILES = ("params.yaml", "jupytext.toml")


def bare_project(source: Path, target: Path) -> Path:
    """Copy ``source``'s parameters, notebooks and claims into ``target`` (which must not exist); return it."""
    source, target = Path(source), Path(target)
    if target.exists():
        raise FileExistsError(f"{target} exists: give a new folder for the bare project")
    missing = [name for name in TOP_FILES if not (source / name).is_file()]
    if missing or not paths.notebooks_dir(source).is_dir():
        raise FileNotFoundError(f"{source} is not a cliplab project (missing {missing or ['notebooks/']})")
    shutil.copytree(paths.notebooks_dir(source), paths.notebooks_dir(target))
    for name in TOP_FILES:
        shutil.copy(source / name, target / name)
    for paper in papers(source):
        claims = paths.claims_path(target, paper)
        claims.parent.mkdir(parents=True)
        shutil.copy(paths.claims_path(source, paper), claims)
    return target


__all__ = ["bare_project"]
