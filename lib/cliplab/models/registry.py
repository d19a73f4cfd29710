"""cliplab's tiny CLIP architectures, registered with open_clip so every open_clip entry point knows them.

The configs are ordinary open_clip JSON model configs (``configs/<name>.json``); after
:func:`register_configs` ``open_clip.create_model("cliplab-tiny")`` and
``open_clip.get_tokenizer("cliplab-tiny")`` work like they do for ``ViT-B-32``. ``vocab_size`` stays 49408
because open_clip's bundled SimpleTokenizer emits ids up to that size (so the token table dominates the
parameter count of these models).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import open_clip

CONFIG_DIR = Path(__file__).parent / "configs"
PREFIX = "cliplab-"


def register_configs() -> list[str]:
    """Add ``configs/`` to open_clip's model registry (idempotent) and return cliplab's model names."""
    names = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
    if not names:
        raise FileNotFoundError(f"no model configs in {CONFIG_DIR}: the package data is missing; reinstall cliplab")
    if not set(names) <= set(open_clip.list_models()):
        open_clip.add_model_config(CONFIG_DIR)
    return names


def model_names() -> list[str]:
    """cliplab's own architectures, smallest first."""
    names = register_configs()
    return sorted(names, key=lambda n: count_parameters_from_config(model_config(n)))


def model_config(name: str) -> dict[str, Any]:
    """The open_clip model config (``embed_dim``, ``vision_cfg``, ``text_cfg``) of a registered architecture."""
    register_configs()
    cfg = open_clip.get_model_config(name)
    if cfg is None:
        raise ValueError(f"unknown model architecture {name!r}; known: {', '.join(open_clip.list_models())}")
    return cfg


def config_path(name: str) -> Path:
    """The JSON file that defines one of cliplab's architectures."""
    path = CONFIG_DIR / f"{name}.json"
    if not path.is_file():
        raise ValueError(f"{name!r} is not a cliplab architecture; choose one of {register_configs()}")
    return path


def count_parameters_from_config(cfg: dict[str, Any]) -> int:
    """Exact parameter count of a cliplab CLIP config (ViT or ModifiedResNet image tower), without building it."""
    v, t, d = cfg["vision_cfg"], cfg["text_cfg"], int(cfg["embed_dim"])

    def tower(width: int, layers: int, mlp_ratio: float) -> int:
        hidden = int(width * mlp_ratio)
        per_layer = 4 * width * width + 4 * width + 2 * width * hidden + hidden + width + 4 * width
        return layers * per_layer

    tw = int(t["width"])
    if isinstance(v["layers"], (list, tuple)):
        vision = _resnet_parameters(v, d)
    else:
        vw = int(v["width"])
        image_size, patch = int(v["image_size"]), int(v["patch_size"])
        vision = 3 * patch * patch * vw + ((image_size // patch) ** 2 + 1) * vw + vw
        vision += tower(vw, int(v["layers"]), float(v.get("mlp_ratio", 4.0))) + vw * d + 4 * vw
    text = int(t["vocab_size"]) * tw + int(t["context_length"]) * tw
    text += tower(tw, int(t["layers"]), float(t.get("mlp_ratio", 4.0))) + tw * d + 2 * tw
    return vision + text + 1


def _resnet_parameters(v: dict[str, Any], embed_dim: int) -> int:
    """Parameters of open_clip's ModifiedResNet (3-conv stem, bottleneck stages, attention pooling)."""
    w, half = int(v["width"]), int(v["width"]) // 2
    total = 27 * half + 9 * half * half + 9 * half * w + 2 * (half + half + w)  # stem convs + batch norms
    inplanes = w
    for stage, blocks in enumerate(v["layers"]):
        planes = w * 2**stage
        for block in range(int(blocks)):
            total += inplanes * planes + 9 * planes * planes + planes * 4 * planes + 2 * (planes + planes + 4 * planes)
            if block == 0 and (stage > 0 or inplanes != 4 * planes):
                total += inplanes * 4 * planes + 2 * 4 * planes  # downsample conv + batch norm
            inplanes = 4 * planes
    width = w * 32
    spatial = int(v["image_size"]) // 32
    total += (spatial * spatial + 1) * width + 3 * (width * width + width) + width * embed_dim + embed_dim
    return total


def describe(name: str) -> str:
    """One line for listings: sizes of both towers from the JSON config."""
    cfg = json.loads(config_path(name).read_text())
    v, t = cfg["vision_cfg"], cfg["text_cfg"]
    if isinstance(v["layers"], (list, tuple)):
        image = f"ResNet {v['layers']} width {v['width']} @ {v['image_size']}px"
    else:
        image = f"ViT {v['layers']}x{v['width']} patch {v['patch_size']} @ {v['image_size']}px"
    return (
        f"{name}: {image}, "
        f"text {t['layers']}x{t['width']} ctx {t['context_length']}, embed {cfg['embed_dim']}"
    )
