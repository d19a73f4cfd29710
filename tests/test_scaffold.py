"""`cliplab new PAPER`: refuses bad names before writing anything, and what it writes runs and passes the tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cliplab.core import scaffold

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _copy_project(dest: Path) -> Path:
    """The project's files as a clone would have them (tracked, plus new files git does not ignore)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    for rel in listed:
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    return dest


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name, message", [
    ("My-Paper", "lower-case Python identifier"), ("class", "lower-case Python identifier"),
    ("x", "lower-case Python identifier"), ("zoo", "taken by cliplab itself"), ("sharpness", "exists already"),
])
def test_new_refuses_bad_names_and_writes_nothing(tmp_path: Path, name: str, message: str) -> None:
    root = _copy_project(tmp_path / "proj")
    before = _snapshot(root)
    with pytest.raises(scaffold.ScaffoldError, match=message):
        scaffold.new_paper(root, name)
    assert _snapshot(root) == before


def test_plan_adds_the_paper_to_params_yaml_and_keeps_its_comments(tmp_path: Path) -> None:
    root = _copy_project(tmp_path / "proj")
    plan = scaffold.plan(root, "toy_effect", "Toy effect")
    params = yaml.safe_load(plan.params_yaml)
    assert params["papers"][-1] == "toy_effect" and params["toy_effect"] == {"seeds": 5, "n": 2000, "effect": 0.1}
    assert plan.params_yaml.startswith((root / "params.yaml").read_text().splitlines()[0])
    assert {"notebooks/toy_effect.py", "lib/cliplab/toy_effect/experiment.py", "replications/toy_effect/claims.yaml",
            "tests/test_toy_effect.py", "docs/papers/toy_effect.md"} <= set(plan.files)


@pytest.mark.slow
def test_a_new_paper_runs_at_smoke_scale_and_passes_the_suite_right_away(tmp_path: Path) -> None:
    root = _copy_project(tmp_path / "proj")
    env = {k: v for k, v in os.environ.items() if k != "CLIPLAB_ROOT"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(root / "lib")  # the copy's package, also in the notebook kernel

    def run(*cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)

    created = run(str(BIN / "cliplab"), "new", "toy_effect", "--title", "Toy effect")
    assert created.returncode == 0, created.stdout + created.stderr
    assert "golden smoke metrics recorded" in created.stdout
    assert (root / "replications" / "smoke" / "toy_effect" / "metrics.json").is_file()
    assert list((root / "replications" / "smoke" / "toy_effect" / "figures").glob("*.png"))
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    assert {"toy_effect", "smoke-toy_effect"} <= set(stages)
    assert "lib/cliplab/toy_effect" in stages["toy_effect"]["deps"]

    again = run(str(BIN / "cliplab"), "new", "toy_effect")
    assert again.returncode == 2 and "exists already" in again.stderr

    suite = run(str(BIN / "pytest"), "-q", "-p", "no:cacheprovider", "-m", "not slow", "tests/test_layout.py",
                "tests/test_environment.py", "tests/test_notebook_prose.py", "tests/test_toy_effect.py")
    assert suite.returncode == 0, suite.stdout[-3000:] + suite.stderr[-2000:]
    smoke = run(str(BIN / "pytest"), "-q", "-p", "no:cacheprovider", "tests/test_notebooks.py", "-k", "toy_effect")
    assert smoke.returncode == 0 and "1 passed" in smoke.stdout, smoke.stdout[-3000:] + smoke.stderr[-2000:]
