"""Every path the code uses, in one place.

The project root is found from the current directory (the nearest parent holding ``params.yaml`` and
``notebooks/``), so ``cliplab`` works from any sub-folder of a clone; ``CLIPLAB_ROOT`` overrides it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT_ENV = "CLIPLAB_ROOT"


def project_root(start: Path | None = None) -> Path:
    """Return the project root: ``$CLIPLAB_ROOT`` or the nearest parent with params.yaml and notebooks/."""
    env = os.environ.get(ROOT_ENV)
    if env:
        return Path(env).resolve()
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "params.yaml").is_file() and (candidate / "notebooks").is_dir():
            return candidate
    raise FileNotFoundError(
        f"no cliplab project found at or above {here}: run cliplab inside a clone "
        f"(a folder with params.yaml and notebooks/), or set {ROOT_ENV}."
    )


def notebooks_dir(root: Path) -> Path:
    return root / "notebooks"


def notebook_path(root: Path, paper: str) -> Path:
    """The jupytext source of a paper's notebook."""
    return notebooks_dir(root) / f"{paper}.py"


def replications_dir(root: Path) -> Path:
    return root / "replications"


def model_slug(model: str, pretrained: str = "") -> str:
    """A folder name for one real model: ``ViT-B-32`` + ``openai`` → ``ViT-B-32__openai``; paths by base name."""
    def clean(text: str) -> str:
        text = text.strip().rstrip("/")
        for prefix in ("local-dir:", "hf-hub:"):
            text = text.removeprefix(prefix)
        if "/" in text or text.endswith((".safetensors", ".pt", ".pth", ".bin")):
            text = Path(text).name
        return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "model"

    return clean(model) + (f"__{clean(pretrained)}" if pretrained.strip() else "__random-init")


def real_runs_dir(root: Path, slug: str, smoke: bool = False) -> Path:
    """Where one real model's runs and its scoreboard go (smoke runs apart, so the scales never mix)."""
    base = replications_dir(root) / "real"
    return (base / "smoke" if smoke else base) / slug


def replication_dir(root: Path, paper: str, smoke: bool = False) -> Path:
    """Where a paper's versioned outputs live; smoke runs get their own tree so they never mix."""
    base = replications_dir(root) / "smoke" if smoke else replications_dir(root)
    return base / paper


def claims_path(root: Path, paper: str) -> Path:
    """claims.yaml is committed beside the default outputs (smoke runs are checked against it too)."""
    return replications_dir(root) / paper / "claims.yaml"


def params_path(root: Path) -> Path:
    return root / "params.yaml"


def state_dir(root: Path) -> Path:
    """Untracked working state: staging folders, failed notebooks, scratch outputs."""
    return root / ".cliplab"


def scratch_dir(root: Path, paper: str) -> Path:
    """Where a notebook opened by hand in JupyterLab writes, so versioned outputs stay untouched."""
    return state_dir(root) / "scratch" / paper


def failed_dir(root: Path) -> Path:
    return state_dir(root) / "failed"


def zoo_dir(root: Path) -> Path:
    """Trained model zoo (a DVC output): one ``local-dir:`` folder per model."""
    return root / "zoo"
