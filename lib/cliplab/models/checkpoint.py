"""Checkpoints as plain open_clip ``local-dir:`` folders, and resumable training state without pickles.

A saved model is a folder that ``open_clip.create_model_and_transforms("local-dir:" + folder)`` loads with
no cliplab code at all (factory.py reads ``open_clip_config.json`` with ``model_cfg`` + ``preprocess_cfg``
and prefers ``open_clip_model.safetensors`` among the weight files it finds there). cliplab adds a
``cliplab_card.json`` (what the model is and how it was trained), which open_clip ignores.

Training state (weights, AdamW moments, RNG state) is stored as safetensors tensors plus JSON scalars, so
resuming never unpickles anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import open_clip
import torch
from open_clip.transform import PreprocessCfg
from safetensors.torch import load_file, save_file

CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"
CARD_FILE = "cliplab_card.json"
HISTORY_FILE = "train_history.csv"


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _atomic_save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    tmp = path.with_name(path.name + ".tmp")
    # clone() breaks any storage sharing, which safetensors refuses to serialise
    save_file({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def weights_sha256(path: str | Path) -> str:
    """sha256 of a weights file: recorded in the card at save time, checked at load time (safetensors carries
    no checksum of its own, so a flipped bit in the tensor data would otherwise load silently)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record_weights_checksum(folder: str | Path) -> str:
    """Add ``weights_sha256`` to a saved model's card when it lacks one (models saved before it existed)."""
    folder = Path(folder)
    card = read_card(folder)
    if "weights_sha256" not in card:
        card["weights_sha256"] = weights_sha256(folder / WEIGHTS_FILE)
        _atomic_write_text(folder / CARD_FILE, json.dumps(card, indent=2, sort_keys=True, default=_json_default) + "\n")
    return card["weights_sha256"]


def preprocess_config(model: torch.nn.Module) -> dict[str, Any]:
    """The model's open_clip preprocess_cfg (size, mean, std, interpolation, ...), with defaults filled in."""
    cfg = asdict(PreprocessCfg())
    cfg.update(getattr(model.visual, "preprocess_cfg", None) or {})
    size = getattr(model.visual, "image_size", cfg["size"])
    cfg["size"] = list(size) if isinstance(size, (tuple, list)) else int(size)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}


def save_checkpoint(
    model: torch.nn.Module,
    model_name: str,
    out_dir: str | Path,
    extra_card: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` as an open_clip ``local-dir:`` folder and return the folder.

    ``model_name`` is the architecture it was built from (``cliplab-tiny``, ``ViT-B-32``, or a
    ``local-dir:`` path); its config is written verbatim so open_clip rebuilds the same architecture.
    ``extra_card`` (JSON-serialisable) is merged into ``cliplab_card.json``.
    """
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "visual"):
        raise TypeError(f"expected an open_clip CLIP model, got {type(model).__name__}")
    from cliplab.models.registry import register_configs

    register_configs()
    model_cfg = open_clip.get_model_config(model_name)
    if model_cfg is None:
        raise ValueError(
            f"no open_clip config for architecture {model_name!r}: pass the name the model was created with "
            f"(one of open_clip.list_models(), e.g. 'cliplab-tiny')"
        )
    card: dict[str, Any] = {
        "architecture": model_name,
        "n_params": int(sum(p.numel() for p in model.parameters())),
        "open_clip_version": open_clip.__version__,
    }
    card.update(extra_card or {})
    try:
        json.dumps(card, default=_json_default)
    except TypeError as err:
        raise TypeError(f"extra_card must be JSON-serialisable: {err}") from None

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _atomic_save_tensors(out / WEIGHTS_FILE, model.state_dict(), metadata={"format": "pt"})
    card["weights_sha256"] = weights_sha256(out / WEIGHTS_FILE)
    card_text = json.dumps(card, indent=2, sort_keys=True, default=_json_default)
    config = {"model_cfg": model_cfg, "preprocess_cfg": preprocess_config(model)}
    _atomic_write_text(out / CONFIG_FILE, json.dumps(config, indent=2, sort_keys=True) + "\n")
    _atomic_write_text(out / CARD_FILE, card_text + "\n")
    return out


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def read_card(folder: str | Path) -> dict[str, Any]:
    """The ``cliplab_card.json`` of a saved model ({} when the folder has none, e.g. a foreign checkpoint)."""
    path = Path(folder) / CARD_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def is_checkpoint_dir(folder: str | Path) -> bool:
    """True when ``folder`` has the files open_clip's ``local-dir:`` loader needs."""
    folder = Path(folder)
    return (folder / CONFIG_FILE).is_file() and any(
        next(folder.glob(pattern), None) is not None for pattern in ("*.safetensors", "*.bin", "*.pth")
    )


# --- resumable training state ------------------------------------------------------------------------------


def save_train_state(
    state_dir: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    step: int,
    meta: dict[str, Any],
) -> Path:
    """Snapshot training at ``step`` into ``state_dir/step-XXXXXXXX/`` and point ``latest.json`` at it.

    The snapshot is complete before ``latest.json`` (written atomically) names it, so a crash mid-write leaves
    the previous snapshot in charge; older snapshots are deleted afterwards.
    """
    root = Path(state_dir)
    snap = root / f"step-{step:08d}"
    if snap.exists():
        shutil.rmtree(snap)
    snap.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()},
              str(snap / "model.safetensors"))
    opt_tensors, opt_json = _split_optimizer_state(optimizer.state_dict())
    opt_tensors["torch_rng_state"] = torch.get_rng_state()
    save_file(opt_tensors, str(snap / "optimizer.safetensors"))
    (snap / "state.json").write_text(
        json.dumps({"step": step, "optimizer": opt_json, "meta": meta}, indent=1, default=_json_default)
    )
    _atomic_write_text(root / "latest.json", json.dumps({"snapshot": snap.name, "step": step}) + "\n")
    for old in root.glob("step-*"):
        if old.is_dir() and old.name != snap.name:
            shutil.rmtree(old)
    return snap


def load_train_state(
    state_dir: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
) -> tuple[int, dict[str, Any], torch.Tensor]:
    """Restore model and optimizer from the latest snapshot; return (step, meta, torch RNG state)."""
    root = Path(state_dir)
    latest = json.loads((root / "latest.json").read_text())
    snap = root / latest["snapshot"]
    state = json.loads((snap / "state.json").read_text())
    model.load_state_dict(load_file(str(snap / "model.safetensors")), strict=True)
    tensors = load_file(str(snap / "optimizer.safetensors"))
    rng_state = tensors.pop("torch_rng_state")
    optimizer.load_state_dict(_join_optimizer_state(tensors, state["optimizer"]))
    return int(state["step"]), state["meta"], rng_state


def peek_train_state(state_dir: str | Path) -> dict[str, Any] | None:
    """The meta of the latest snapshot without loading tensors (None when there is none)."""
    root = Path(state_dir)
    if not (root / "latest.json").is_file():
        return None
    latest = json.loads((root / "latest.json").read_text())
    state_path = root / latest["snapshot"] / "state.json"
    if not state_path.is_file():
        return None
    state = json.loads(state_path.read_text())
    return {"step": int(state["step"]), "meta": state["meta"]}


def _split_optimizer_state(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Optimizer state_dict -> (tensors keyed 'state.<param>.<name>', JSON for scalars and param groups)."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, pstate in state_dict["state"].items():
        for name, value in pstate.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{pid}.{name}"] = value
            else:
                scalars.setdefault(str(pid), {})[name] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in state_dict["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def _join_optimizer_state(tensors: dict[str, torch.Tensor], saved: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = value
    for pid, values in saved["scalars"].items():
        state.setdefault(int(pid), {}).update(values)
    groups = []
    for group in saved["param_groups"]:
        group = dict(group)
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
        groups.append(group)
    return {"state": state, "param_groups": groups}
