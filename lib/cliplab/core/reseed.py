"""A second, independent run of the whole pipeline: the same parameters with every seed moved by an offset.

Verdicts must not be a property of one seed. ``reseed_params`` rewrites params.yaml so that every source of
randomness changes while every other setting stays: each zoo model's seed (its world and its weights) moves by
``offset`` and its name follows (``tiny-s0`` -> ``tiny-s10``), every paper parameter naming a zoo model is
renamed alike, and every seed parameter moves too — an int named ``seed`` or ``*_seed``, a list of ints named
``*seeds``. Counts of seeds (an int named ``seeds`` / ``*_seeds``) stay counts. ``make_workspace`` clones the
committed project into a folder and writes the rewritten params.yaml there, so ``cliplab replicate`` in that
folder is the second run and ``cliplab verify --against FOLDER/replications`` compares the verdicts.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

_SEEDED_NAME = re.compile(r"^(?P<stem>.+)-s(?P<seed>\d+)$")


def model_renames(zoo: Mapping[str, Any], offset: int) -> dict[str, str]:
    """Old zoo model name -> the name of the same recipe with its seed moved by ``offset``."""
    renames = {}
    for model in zoo.get("models", []):
        match = _SEEDED_NAME.match(model["name"])
        if match is None or int(match["seed"]) != int(model["seed"]):
            raise ValueError(f"zoo model {model['name']!r} does not end in -s<its seed> ({model['seed']}): "
                             "reseeding renames models by their seed, so name it <recipe>-s<seed>")
        renames[model["name"]] = f"{match['stem']}-s{int(model['seed']) + offset}"
    return renames


def _is_seed_key(key: str) -> bool:
    return key == "seed" or key.endswith("_seed")


def _reseed_value(key: str, value: Any, offset: int, renames: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return renames.get(value, value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and _is_seed_key(key):
        return value + offset
    if isinstance(value, list):
        if key.endswith("seeds") and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return [v + offset for v in value]
        return [_reseed_value("", v, offset, renames) for v in value]
    if isinstance(value, dict):
        return {k: _reseed_value(k, v, offset, renames) for k, v in value.items()}
    return value


def reseed_params(params: Mapping[str, Any], offset: int) -> dict[str, Any]:
    """params.yaml with every seed moved by ``offset`` and zoo models renamed to match (see the module doc)."""
    if offset <= 0:
        raise ValueError(f"offset must be a positive integer (got {offset}): 0 is the committed run itself")
    renames = model_renames(params.get("zoo", {}), offset)
    taken = {m["name"] for m in params.get("zoo", {}).get("models", [])}
    clash = sorted(set(renames.values()) & taken)
    if clash:
        raise ValueError(f"offset {offset} maps models onto existing ones ({', '.join(clash)}); use a larger one")
    out = {}
    for block, value in params.items():
        if block == "zoo":
            value = {**value, "models": [{**m, "name": renames[m["name"]], "seed": int(m["seed"]) + offset}
                                         for m in value["models"]]}
            out[block] = value
        elif block in params.get("papers", []):
            out[block] = _reseed_value(block, value, offset, renames)
        else:
            out[block] = value
    return out


def make_workspace(root: Path, target: Path, offset: int) -> Path:
    """Clone the committed project at ``root`` into ``target`` and write its reseeded params.yaml there."""
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} exists and is not empty; pick a new folder (nothing was written)")
    params = yaml.safe_load((root / "params.yaml").read_text())
    reseeded = reseed_params(params, offset)  # validates before anything is written
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                           capture_output=True, text=True, check=True).stdout.strip()
    if dirty:
        raise ValueError("the project has uncommitted changes; the workspace is a clone of HEAD, so commit "
                         "them first (nothing was written)")
    subprocess.run(["git", "clone", "-q", str(root), str(target)], check=True)
    header = (f"# Reseeded copy of params.yaml (cliplab reseed {offset}): every seed moved by {offset}, zoo models "
              "renamed to match.\n")
    (target / "params.yaml").write_text(header + yaml.safe_dump(reseeded, sort_keys=False, allow_unicode=True))
    return target
