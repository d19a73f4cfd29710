"""One loader for every model cliplab touches: real open_clip models, checkpoint files, folders, the zoo.

``load_model(spec, pretrained)`` accepts

- an open_clip name and pretrained tag (``"ViT-B-32", "laion2b_s34b_b79k"``), or ``hf-hub:org/repo``:
  weights come from the local cache, or from the hub when it is reachable;
- an open_clip name and a weights file (``"ViT-B-32", "/ckpt/model.pt"``), or just a weights file that sits
  next to an ``open_clip_config.json``; ``.pt/.pth/.bin`` are read with ``torch.load(weights_only=True)``;
- ``local-dir:/folder`` (open_clip's own folder layout, as written by :func:`save_checkpoint`);
- ``zoo:<name>``, resolved to ``<zoo_dir>/<name>/``;
- one of cliplab's architectures (``cliplab-tiny``) with ``pretrained=None``: a seeded random init.

Missing weights never hang: the cache is checked first and, when nothing is cached, the hub's host gets one
short socket probe (or none, under ``HF_HUB_OFFLINE=1``) before anything is downloaded. The download itself
(only the fetching of the files into the cache) runs in a child process under a hard overall deadline:
``load_model(..., download_timeout=seconds)``, else ``$CLIPLAB_DOWNLOAD_TIMEOUT``, else 600 s. A server or proxy
that accepts the connection and never answers gets the child killed at the deadline and
:class:`WeightsUnavailable` raised, naming the weights, the endpoint (and proxy) and the timeout. The model is then
built from the cache exactly as for weights that were cached already.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
import math
import os
import pickle
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import open_clip
import torch
from open_clip.pretrained import get_pretrained_cfg, has_hf_hub, list_pretrained_tags_by_model
from safetensors import SafetensorError

from cliplab.models.checkpoint import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE, read_card, weights_sha256
from cliplab.models.registry import register_configs

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")
ZOO_PREFIX = "zoo:"
LOCAL_DIR_PREFIX = "local-dir:"
HF_HUB_PREFIX = "hf-hub:"
ZOO_ENV = "CLIPLAB_ZOO_DIR"
DOWNLOAD_TIMEOUT_ENV = "CLIPLAB_DOWNLOAD_TIMEOUT"
DEFAULT_DOWNLOAD_TIMEOUT = 600.0
HF_WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "open_clip_pytorch_model.bin")
TRUE_WORDS = {"1", "on", "yes", "true"}


class WeightsUnavailable(RuntimeError):
    """Pretrained weights are neither cached nor downloadable right now."""


class UnknownModel(ValueError):
    """The model name (or pretrained tag) is not known to open_clip, cliplab or the zoo."""


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for inference: eval mode, its preprocess and tokenizer, and where it came from."""

    model: torch.nn.Module
    preprocess: Callable[[Any], torch.Tensor]
    tokenizer: Callable[..., torch.Tensor]
    name: str
    source: str


def load_model(
    spec: str,
    pretrained: str | None = None,
    device: str | torch.device = "cpu",
    *,
    zoo_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    seed: int = 0,
    connect_timeout: float = 2.0,
    download_timeout: float | None = None,
) -> LoadedModel:
    """Load a model from any supported source (see module docstring); the model comes back in eval mode.

    ``seed`` only matters for random initialisation (``pretrained=None`` on an architecture name); it is
    applied inside ``torch.random.fork_rng`` so the caller's global RNG is untouched.

    ``connect_timeout`` bounds the one socket probe of the hub's host (or proxy) before a download;
    ``download_timeout`` bounds the whole download of uncached weights, in seconds: None means
    ``$CLIPLAB_DOWNLOAD_TIMEOUT`` if set, else 600. Past it the download is killed and WeightsUnavailable raised.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise TypeError(f"spec must be a non-empty string (model name, path, local-dir: or zoo:), got {spec!r}")
    if pretrained is not None and not isinstance(pretrained, str):
        raise TypeError(f"pretrained must be a tag or a file path string, got {type(pretrained).__name__}")
    register_configs()
    spec = spec.strip()
    if spec.startswith(ZOO_PREFIX):
        return _load_zoo(spec[len(ZOO_PREFIX):], zoo_dir, device)
    if spec.startswith(LOCAL_DIR_PREFIX):
        return _load_local_dir(Path(spec[len(LOCAL_DIR_PREFIX):]), device, name=None)
    if spec.startswith(HF_HUB_PREFIX):
        return _load_hf_hub(spec[len(HF_HUB_PREFIX):], device, cache_dir, connect_timeout, download_timeout)
    if _looks_like_path(spec):
        return _load_weights_file(Path(spec).expanduser(), device)
    name = _check_architecture(spec)
    if pretrained is None:
        return _load_random(name, device, seed)
    if _looks_like_path(pretrained):
        return _load_arch_with_file(name, Path(pretrained).expanduser(), device)
    return _load_tag(name, pretrained, device, cache_dir, connect_timeout, download_timeout)


def _looks_like_path(text: str) -> bool:
    """A weights file or folder rather than a name ('ViT-B/32' is a name, './ViT-B/32' a path)."""
    return text.endswith(WEIGHT_SUFFIXES) or text.startswith(("/", "./", "../", "~")) or Path(text).exists()


# --- names -------------------------------------------------------------------------------------------------


def _check_architecture(name: str) -> str:
    """Return open_clip's spelling of an architecture name, or raise UnknownModel with close matches."""
    cleaned = name.replace("/", "-")
    known = open_clip.list_models()
    if cleaned in known:
        return cleaned
    close = difflib.get_close_matches(cleaned, known, n=5, cutoff=0.5)
    lowered = {k.lower(): k for k in known}
    if cleaned.lower() in lowered:
        close = [lowered[cleaned.lower()], *[c for c in close if c != lowered[cleaned.lower()]]]
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UnknownModel(
        f"unknown model {name!r}.{hint} Use an open_clip architecture (open_clip.list_models()), one of "
        f"cliplab's ({', '.join(register_configs())}), 'zoo:<name>', 'local-dir:<folder>' or a weights file path."
    )


def _check_tag(name: str, tag: str) -> dict[str, Any]:
    cfg = get_pretrained_cfg(name, tag)
    if cfg:
        return cfg
    tags = list_pretrained_tags_by_model(name)
    close = difflib.get_close_matches(tag.lower().replace("-", "_"), tags, n=5, cutoff=0.4)
    listing = ", ".join(close or tags) or "none (open_clip has no pretrained weights for this architecture)"
    raise UnknownModel(
        f"unknown pretrained tag {tag!r} for {name!r} and no such file. "
        f"{'Close matches' if close else 'Known tags'}: {listing}."
    )


# --- sources -----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_open_clip() -> Iterator[None]:
    """Hide open_clip's 'initialized randomly' warning, which is expected before weights are loaded."""

    def drop(record: logging.LogRecord) -> bool:
        return "No pretrained weights loaded" not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def _finish(model: torch.nn.Module, name: str, source: str, tokenizer_spec: str, preprocess: Any) -> LoadedModel:
    model.eval()
    tokenizer = open_clip.get_tokenizer(tokenizer_spec)
    return LoadedModel(model=model, preprocess=preprocess, tokenizer=tokenizer, name=name, source=source)


def _load_random(name: str, device: str | torch.device, seed: int) -> LoadedModel:
    with torch.random.fork_rng(devices=[]), _quiet_open_clip():
        torch.manual_seed(seed)
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=None, device=device)
    return _finish(model, name, f"random-init:{name} seed={seed}", name, preprocess)


def _load_local_dir(folder: Path, device: str | torch.device, name: str | None, source: str | None = None) -> LoadedModel:
    """A ``local-dir:`` folder: its config, then its safetensors weights (checked against the card's sha256).

    Without safetensors, a ``.bin/.pt/.pth`` file is read only through ``torch.load(weights_only=True)``.
    """
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder not found: {folder} (expected a local-dir: folder with {CONFIG_FILE})")
    if not (folder / CONFIG_FILE).is_file():
        raise FileNotFoundError(
            f"{folder} has no {CONFIG_FILE}: it is not an open_clip local-dir folder "
            "(write one with cliplab.models.save_checkpoint)"
        )
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        weights = next((p for p in sorted(folder.iterdir()) if p.suffix in WEIGHT_SUFFIXES), None)
    if weights is None:
        raise WeightsUnavailable(f"{folder} has {CONFIG_FILE} but no weights file ({WEIGHTS_FILE})")
    _check_weights_checksum(folder, weights)
    spec = LOCAL_DIR_PREFIX + str(folder.resolve())
    with _quiet_open_clip():
        model, _, preprocess = open_clip.create_model_and_transforms(spec, load_weights=False, device=device)
    _read_weights_into(model, weights)
    model.to(device)
    label = name or read_card(folder).get("name") or folder.name
    return _finish(model, label, source or spec, spec, preprocess)


def _check_weights_checksum(folder: Path, weights: Path) -> None:
    """Refuse weights whose sha256 differs from the one their card recorded when they were saved."""
    expected = read_card(folder).get("weights_sha256")
    if expected and weights.name == WEIGHTS_FILE and weights_sha256(weights) != expected:
        raise ValueError(
            f"{weights} is corrupt: its sha256 differs from the one {CARD_FILE} recorded when it was saved (a "
            "partial copy or a flipped bit). Restore it (`dvc pull zoo` / `dvc checkout zoo`) or retrain the model."
        )


def default_zoo_dir() -> Path:
    """``$CLIPLAB_ZOO_DIR``, else ``<project root>/zoo``."""
    if os.environ.get(ZOO_ENV):
        return Path(os.environ[ZOO_ENV])
    from cliplab.core import paths

    return paths.zoo_dir(paths.project_root())


def zoo_models(zoo_dir: str | Path | None = None) -> list[str]:
    """Names of the trained models in the zoo folder (sub-folders with an open_clip config)."""
    root = Path(zoo_dir) if zoo_dir is not None else default_zoo_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / CONFIG_FILE).is_file())


def _load_zoo(name: str, zoo_dir: str | Path | None, device: str | torch.device) -> LoadedModel:
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"zoo model name must be a plain folder name, got {name!r}")
    root = Path(zoo_dir) if zoo_dir is not None else default_zoo_dir()
    folder = root / name
    if not (folder / CONFIG_FILE).is_file():
        available = zoo_models(root)
        close = difflib.get_close_matches(name, available, n=5, cutoff=0.4)
        listing = ", ".join(close or available[:20]) or "none: the zoo has not been trained yet"
        raise UnknownModel(
            f"zoo model {name!r} not found in {root}. {'Close matches' if close else 'Available'}: {listing}. "
            f"Train the zoo (dvc repro zoo), pass zoo_dir=..., or set {ZOO_ENV}."
        )
    return _load_local_dir(folder, device, name=name, source=f"zoo:{name} ({folder.resolve()})")


def _read_weights_into(model: torch.nn.Module, path: Path) -> None:
    """Load a weights file into ``model``; pickled formats only through torch.load(weights_only=True).

    Every way a file can fail to be the model's weights ends in one ValueError naming the file: not a readable
    safetensors file (truncated, corrupt, or a pickle under that name), a pickle holding code, or tensors that
    do not fit the architecture (a config and weights of different models).
    """
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix not in WEIGHT_SUFFIXES:
        raise ValueError(f"unsupported weights file {path.name}: use one of {', '.join(WEIGHT_SUFFIXES)}")
    try:
        open_clip.load_checkpoint(model, str(path), strict=True, weights_only=True, device="cpu")
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{path} holds pickled objects that torch.load(weights_only=True) refuses to load. cliplab never "
            "unpickles untrusted code: re-save the state_dict as .safetensors (safetensors.torch.save_file)."
        ) from err
    except SafetensorError as err:
        raise ValueError(f"{path} is not a readable safetensors file ({err}): it is truncated or corrupt, or not "
                         "safetensors at all. Restore or re-save it (safetensors.torch.save_file).") from err
    except RuntimeError as err:
        if "state_dict" not in str(err):
            raise
        detail = next((ln.strip() for ln in str(err).splitlines()[1:] if ln.strip()), "")[:200]
        raise ValueError(f"{path} does not fit the model's architecture ({detail}): the config and the weights "
                         "come from different models. Use the config the weights were saved with.") from err


def _load_weights_file(path: Path, device: str | torch.device) -> LoadedModel:
    if path.is_dir():
        return _load_local_dir(path, device, name=None)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if not (path.parent / CONFIG_FILE).is_file():
        raise ValueError(
            f"{path} has no {CONFIG_FILE} beside it, so its architecture is unknown: call "
            f"load_model('<architecture, e.g. ViT-B-32>', pretrained='{path}')"
        )
    spec = LOCAL_DIR_PREFIX + str(path.parent.resolve())
    with _quiet_open_clip():
        model, _, preprocess = open_clip.create_model_and_transforms(spec, load_weights=False, device=device)
    _read_weights_into(model, path)
    model.to(device)
    return _finish(model, path.parent.name, f"file:{path.resolve()}", spec, preprocess)


def _load_arch_with_file(name: str, path: Path, device: str | torch.device) -> LoadedModel:
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    with torch.random.fork_rng(devices=[]), _quiet_open_clip():
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=None)
    _read_weights_into(model, path)
    model.to(device)
    return _finish(model, name, f"file:{path.resolve()}", name, preprocess)


# --- real pretrained weights: cache first, then a quick reachability probe -------------------------------


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache as the environment says *now* (HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE (read now, not at import) asks for no network."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in TRUE_WORDS


def host_reachable(url: str, timeout: float = 2.0) -> bool:
    """One TCP connect to ``url``'s host (or the HTTPS proxy) within ``timeout`` seconds."""
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    parsed = urlparse(proxy or url)
    host = parsed.hostname
    if not host:
        return False
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _hf_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def _cached_hf_file(repo_id: str, filenames: tuple[str, ...], cache_dir: Path) -> str | None:
    from huggingface_hub import try_to_load_from_cache

    for filename in filenames:
        found = try_to_load_from_cache(repo_id, filename, cache_dir=str(cache_dir))
        if isinstance(found, str) and os.path.isfile(found):
            return found
    return None


def _hf_filenames(filename: str) -> tuple[str, ...]:
    """The file open_clip would fetch for a hub repo, preceded by its safetensors twin (which it prefers)."""
    if filename.endswith((".bin", ".pth")):
        return (filename[:-4] + ".safetensors", filename)
    return (filename,)


def _unavailable(what: str, where: str, reason: str) -> WeightsUnavailable:
    return WeightsUnavailable(
        f"weights for {what} are not available: {reason}. Looked in {where}. To provide them: "
        f"(1) put a checkpoint file somewhere and call load_model('<architecture>', pretrained='<file>'), "
        f"(2) or copy an open_clip folder (open_clip_config.json + open_clip_model.safetensors) and use "
        f"'local-dir:<folder>', (3) or, on a machine with internet access, unset HF_HUB_OFFLINE "
        f"(HF_HUB_OFFLINE=0) so the weights download into {hf_cache_dir()} and copy that cache here."
    )


def _tag_kwargs(cfg: dict[str, Any]) -> dict[str, Any]:
    """What open_clip would take from a pretrained tag when we hand it the cached file instead of the tag."""
    return {
        "force_quick_gelu": bool(cfg.get("quick_gelu", False)),
        "image_mean": cfg.get("mean"),
        "image_std": cfg.get("std"),
        "image_interpolation": cfg.get("interpolation"),
        "image_resize_mode": cfg.get("resize_mode"),
    }


@dataclass(frozen=True)
class _Download:
    """One fetch into the cache: what it is for, where it lands, the endpoint it comes from, the child's job."""

    what: str
    where: str
    url: str
    job: dict[str, Any]


def _load_cached_tag(name: str, tag: str, cfg: dict[str, Any], cached: str, device: str | torch.device) -> LoadedModel:
    """Build ``name`` from a weights file in the cache, with the preprocessing its pretrained tag prescribes."""
    with _quiet_open_clip():
        model, _, preprocess = open_clip.create_model_and_transforms(
            name, pretrained=cached, device=device, **_tag_kwargs(cfg)
        )
    return _finish(model, f"{name}:{tag}", f"open_clip:{name} pretrained={tag} (cached {cached})", name, preprocess)


def _tag_download(name: str, tag: str, cfg: dict[str, Any], cache_dir: str | Path | None) -> _Download:
    """Where a pretrained tag's weights come from (the hub repo, else the URL) and where they land."""
    what = f"{name} (pretrained={tag!r})"
    hf_id = cfg.get("hf_hub", "") if has_hf_hub() else ""
    if hf_id:
        repo_id, filename = os.path.split(hf_id)
        cache = Path(cache_dir) if cache_dir is not None else hf_cache_dir()
        files = (_hf_filenames(filename or "open_clip_pytorch_model.bin"),)
        job = {"kind": "hf", "repo_id": repo_id, "files": files, "cache_dir": str(cache)}
        return _Download(what, f"the Hugging Face cache {cache} (repo {repo_id})", _hf_endpoint(), job)
    url = cfg.get("url", "")
    cache = Path(cache_dir) if cache_dir is not None else Path("~/.cache/clip").expanduser()
    job = {"kind": "url", "url": url, "cache_dir": str(cache)}
    return _Download(what, str(cache / os.path.basename(url)), url, job)


def _cached_download(download: _Download) -> str | None:
    """The file a tag's download puts in the cache, if it is there."""
    job = download.job
    if job["kind"] == "hf":
        return _cached_hf_file(job["repo_id"], job["files"][0], Path(job["cache_dir"]))
    candidate = Path(job["cache_dir"]) / os.path.basename(job["url"])
    return str(candidate) if job["url"] and candidate.is_file() else None


def _load_tag(
    name: str,
    tag: str,
    device: str | torch.device,
    cache_dir: str | Path | None,
    connect_timeout: float,
    download_timeout: float | None,
) -> LoadedModel:
    """An open_clip architecture with a pretrained tag: from the cache, else downloaded into it first."""
    cfg = _check_tag(name, tag)
    if cfg.get("file"):
        return _load_arch_with_file(name, Path(cfg["file"]), device)
    download = _tag_download(name, tag, cfg, cache_dir)
    cached = _cached_download(download)
    if not cached:
        host = urlparse(download.url).hostname or repr(download.url)
        _download_files(download, host, connect_timeout, download_timeout)
        cached = _cached_download(download)
    if not cached:
        raise _unavailable(download.what, download.where, "the download finished but the file is not in the cache")
    return _load_cached_tag(name, tag, cfg, cached, device)


def _cached_hf_folder(repo_id: str, cache: Path) -> Path | None:
    """The cached snapshot folder of ``repo_id`` holding both its open_clip config and its weights."""
    config = _cached_hf_file(repo_id, (CONFIG_FILE,), cache)
    weights = _cached_hf_file(repo_id, HF_WEIGHT_FILES, cache)
    if config and weights and Path(config).parent == Path(weights).parent:
        return Path(config).parent
    return None


def _load_hf_hub(
    repo_id: str,
    device: str | torch.device,
    cache_dir: str | Path | None,
    connect_timeout: float,
    download_timeout: float | None,
) -> LoadedModel:
    """An ``hf-hub:org/repo`` open_clip folder: its cached snapshot, else downloaded into the cache first."""
    if not repo_id:
        raise ValueError("empty repository after 'hf-hub:'; use hf-hub:org/repo")
    cache = Path(cache_dir) if cache_dir is not None else hf_cache_dir()
    what = f"hf-hub:{repo_id}"
    folder = _cached_hf_folder(repo_id, cache)
    if folder is None:
        job = {"kind": "hf", "repo_id": repo_id, "files": ((CONFIG_FILE,), HF_WEIGHT_FILES), "cache_dir": str(cache)}
        download = _Download(what, f"the Hugging Face cache {cache}", _hf_endpoint(), job)
        _download_files(download, _hf_endpoint(), connect_timeout, download_timeout)
        folder = _cached_hf_folder(repo_id, cache)
    if folder is None:
        raise _unavailable(what, f"the Hugging Face cache {cache}", "the download finished but the files are not "
                           f"together in one snapshot folder ({CONFIG_FILE} + one of {', '.join(HF_WEIGHT_FILES)})")
    return _load_local_dir(folder, device, name=what, source=f"{what} (cached {folder})")


# --- the download: a child process under a hard deadline ---------------------------------------------------

_CHILD_SCRIPT = """
import json, sys


def fetch(job):
    if job["kind"] == "url":
        from open_clip.pretrained import download_pretrained_from_url
        return [download_pretrained_from_url(job["url"], cache_dir=job["cache_dir"])]
    from huggingface_hub import hf_hub_download
    paths = []
    for names in job["files"]:
        for name in names:
            try:
                paths.append(hf_hub_download(job["repo_id"], name, cache_dir=job["cache_dir"]))
                break
            except Exception as err:
                last = err
        else:
            raise last
    return paths


def describe(err):
    chain = []
    while err is not None and len(chain) < 3:
        chain.append(type(err).__name__ + ": " + " ".join(str(err).split())[:240])
        err = err.__cause__ or err.__context__
    return "; ".join(reversed(chain))


try:
    print(json.dumps(fetch(json.loads(sys.argv[1]))), flush=True)
except BaseException as err:
    print("error: " + describe(err), flush=True)
    sys.exit(1)
"""


def _download_deadline(download_timeout: float | None) -> float:
    """The download deadline: ``download_timeout``, else ``$CLIPLAB_DOWNLOAD_TIMEOUT``, else 600 seconds."""
    raw: Any = download_timeout
    origin = "download_timeout"
    if raw is None:
        raw = os.environ.get(DOWNLOAD_TIMEOUT_ENV, "").strip() or DEFAULT_DOWNLOAD_TIMEOUT
        origin = DOWNLOAD_TIMEOUT_ENV
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"{origin} must be a positive number of seconds, got {raw!r}")
    return seconds


def _redacted(url: str) -> str:
    """``url`` without a user name or password."""
    parsed = urlparse(url)
    if "@" not in parsed.netloc:
        return url
    return parsed._replace(netloc=parsed.netloc.rpartition("@")[2]).geturl()


def _endpoint_label(url: str) -> str:
    """The endpoint a download talks to, and the HTTPS proxy in between when one is set."""
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    return _redacted(url) + (f" via the proxy {_redacted(proxy)}" if proxy else "")


def _download_files(download: _Download, host: str, connect_timeout: float, download_timeout: float | None) -> None:
    """Fetch ``download`` into its cache in a child process, or raise WeightsUnavailable saying why not."""
    if hub_offline():
        raise _unavailable(download.what, download.where, "they are not cached and HF_HUB_OFFLINE is set")
    if not download.url or not host_reachable(download.url, connect_timeout):
        raise _unavailable(download.what, download.where, f"they are not cached and {host} is unreachable")
    deadline = _download_deadline(download_timeout)
    returncode, last_line = _run_child(download.job, deadline)
    endpoint = _endpoint_label(download.url)
    if returncode is None:
        raise _unavailable(
            download.what, download.where,
            f"they are not cached and the download from {endpoint} did not finish within {deadline:g} s, so it was "
            f"stopped (a silent server or proxy, or a slow link: allow longer with load_model(..., "
            f"download_timeout=seconds) or {DOWNLOAD_TIMEOUT_ENV}=seconds, or fix HF_ENDPOINT / HTTPS_PROXY)",
        )
    if returncode != 0:
        detail = last_line or f"the download process exited with status {returncode}"
        raise _unavailable(download.what, download.where, f"the download from {endpoint} failed ({detail})")


def _run_child(job: dict[str, Any], timeout: float) -> tuple[int | None, str]:
    """Run the download job in a child; its exit status (None past ``timeout``) and last line of output."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD_SCRIPT, json.dumps(job)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, ""
    finally:
        _stop(proc)
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    return proc.returncode, lines[-1] if lines else ""


def _stop(proc: subprocess.Popen[str]) -> None:
    """Kill ``proc`` and everything it started, if it still runs, and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if hasattr(os, "killpg"):
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
