"""``bare_project``: what a run reads is copied, nothing a run writes; bad targets are refused before copying."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cliplab.core.workspace import bare_project

REPO = Path(__file__).resolve().parents[1]


def test_bare_project_holds_parameters_notebooks_and_claims_only(tmp_path: Path) -> None:
    root = bare_project(REPO, tmp_path / "p")
    papers = yaml.safe_load((REPO / "params.yaml").read_text())["papers"]
    assert (root / "params.yaml").read_bytes() == (REPO / "params.yaml").read_bytes()
    assert sorted(p.name for p in (root / "notebooks").glob("*.py")) == sorted(
        p.name for p in (REPO / "notebooks").glob("*.py"))
    assert sorted(p.name for p in (root / "replications").iterdir()) == sorted(papers)
    assert all(sorted(p.name for p in (root / "replications" / paper).iterdir()) == ["claims.yaml"]
               for paper in papers)
    assert not (root / "zoo").exists() and not (root / "data").exists()


def test_bare_project_refuses_an_existing_target_and_a_non_project(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError, match="new folder"):
        bare_project(REPO, tmp_path / "taken")
    with pytest.raises(FileNotFoundError, match="not a cliplab project"):
        bare_project(tmp_path / "taken", tmp_path / "q")
    assert not (tmp_path / "q").exists()
