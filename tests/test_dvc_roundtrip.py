"""Artifacts travel: smoke `dvc repro` -> `dvc push` -> fresh `git clone` -> `dvc pull` -> identical files.

Runs the real pipeline (smoke scale) on a copy of the tracked project in a temporary directory, with a
temporary local remote, so nothing in the working tree or the user's cache is touched.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GIT = ["git", "-c", "user.name=cliplab-test", "-c", "user.email=test@cliplab.invalid", "-c", "init.defaultBranch=main"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CLIPLAB_ROOT"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def _sh(cmd: list[str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _hashes(root: Path, folders: list[str]) -> dict[str, str]:
    out = {}
    for folder in folders:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and ".gitignore" not in path.name:
                out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.mark.slow
def test_smoke_pipeline_round_trip(tmp_path: Path) -> None:
    work, clone, remote = tmp_path / "work", tmp_path / "clone", tmp_path / "remote"
    tracked = _sh(["git", "ls-files"], REPO).splitlines()
    for rel in tracked:
        if (REPO / rel).is_file():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, work / rel)
    _sh([*GIT, "init", "-q"], work)
    dvc = str(BIN / "dvc")
    _sh([dvc, "remote", "add", "-f", "-d", "local", str(remote)], work)
    _sh([str(BIN / "cliplab"), "sample-data", "data"], work)
    committed = (work / "data.dvc").read_text()
    _sh([dvc, "add", "-q", "data"], work)
    assert (work / "data.dvc").read_text() == committed, "regenerated sample data differs from data.dvc"
    _sh([dvc, "repro", "smoke-report"], work)
    targets = ["data.dvc", "smoke-report", "--with-deps"]  # a committed dvc.lock may also name default-scale stages
    _sh([dvc, "push", "-q", *targets], work)
    _sh([*GIT, "add", "-A"], work)
    _sh([*GIT, "commit", "-q", "-m", "smoke run"], work)

    _sh([*GIT, "clone", "-q", str(work), str(clone)], tmp_path)
    _sh([dvc, "pull", "-q", *targets], clone)
    status = _sh([dvc, "status", *targets], clone)
    assert "up to date" in status, status
    folders = ["data", "replications/smoke"]
    original, pulled = _hashes(work, folders), _hashes(clone, folders)
    assert pulled == original
    assert any(k.endswith("metrics.json") for k in pulled) and any(k.endswith(".png") for k in pulled)
    assert "REPORT.md" in "".join(pulled)
