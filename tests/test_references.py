"""Every file a notebook, dvc.yaml, a claims file or a doc points a reader to exists inside the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOP = ("notebooks/", "replications/", "lib/", "docs/", "tests/", "benchmarks/", "data/", "zoo/", "params.yaml",
       "dvc.yaml", "README.md", "Makefile", "environment.yml", "pyproject.toml")
# Paths that exist only after a run or a setup step (DVC outputs, the environment, scratch state).
MADE_BY_A_RUN = re.compile(r"^(replications/(smoke/)?[a-z_]+/(executed\.ipynb|metrics\.json|params\.json|figures)"
                           r"|replications/(smoke/)?REPORT\.md|replications/real/|zoo(-smoke)?/|data/|\.venv/|\.cliplab/)")
PATH = re.compile(r"`((?:\.\./)?[A-Za-z0-9_.\-/]+)`")


def _documents() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    return sorted(REPO / p for p in listed if p.endswith((".md", ".yaml")) or p.startswith("notebooks/")
                  if (REPO / p).is_file())


def referenced_paths(text: str) -> set[str]:
    """Repository paths written in backticks, or after 'see'/'in' as a bare path with a folder."""
    found = {m.group(1) for m in PATH.finditer(text)}
    return {p for p in found if p.startswith("../") or (p.startswith(TOP) and "*" not in p and "PAPER" not in p
                                                        and "NAME" not in p and "my_paper" not in p)}


def test_reference_finder_reads_backticked_paths() -> None:
    text = "see `docs/papers/x.md`, run `cliplab run x`, card `../shared/papers/y.md`, `replications/PAPER/claims.yaml`"
    assert referenced_paths(text) == {"docs/papers/x.md", "../shared/papers/y.md"}


@pytest.mark.parametrize("doc", _documents(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_referenced_file_is_in_the_repository(doc: Path) -> None:
    text = doc.read_text()
    assert "../shared" not in text and "shared/papers" not in text and "paper card" not in text, \
        f"{doc.name} points outside the repository; cite docs/papers/ instead"
    missing = sorted(p for p in referenced_paths(text) if not MADE_BY_A_RUN.match(p) and not (REPO / p).exists())
    assert not missing, f"{doc.relative_to(REPO)} references files that do not exist: {missing}"
