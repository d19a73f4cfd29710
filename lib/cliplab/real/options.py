"""The real-path options every CLIP notebook takes under the same names, and their check before any work.

``model`` is anything :func:`cliplab.models.load_model` takes (an open_clip name with ``pretrained``, a
weights file, ``local-dir:`` or ``hf-hub:``); the data options are folders and files on disk:

- ``images``: an image folder with one sub-folder per class (``<class>/<image>``, ``_`` reads as a space);
- ``test_images``: a second such folder, held out (empty: notebooks that need one split ``images``);
- ``ood_images``: shifted folders with the same classes (e.g. sketches of the same objects);
- ``corpus``: a caption corpus (parquet, CSV, TSV, JSONL or webdataset shards), with ``caption_column`` and,
  to count images too, ``image_column``;
- ``colour_images``: single-object photos as ``<object>/<colour>/<image>`` (the concept-association probes).

:func:`validate` checks every option a notebook needs, then loads the model (which also proves the weights are
there: an uncached tag offline, or a silent hub, fails within seconds), so a typo costs seconds, not a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cliplab.models import LoadedModel

DATA_OPTIONS = ("images", "test_images", "ood_images", "corpus", "colour_images")
DEVICES = ("auto", "cpu", "cuda", "mps")


class RealPathError(ValueError):
    """A real-path option is missing, names nothing on disk, or the model cannot be loaded."""


@dataclass(frozen=True)
class RealOptions:
    """The real-path parameters of a CLIP notebook (empty ``model``: the notebook uses the zoo)."""

    model: str = ""
    pretrained: str = ""
    images: str = ""
    test_images: str = ""
    ood_images: tuple[str, ...] = field(default_factory=tuple)
    corpus: str = ""
    caption_column: str = "caption"
    image_column: str = ""
    colour_images: str = ""
    device: str = "auto"
    batch_size: int = 32

    @property
    def active(self) -> bool:
        """True when a real model was named (the notebook then runs its real path)."""
        return bool(self.model.strip())

    @property
    def caption_key(self) -> str | int:
        """The caption column: a name, or (all digits) the 0-based field of a header-less CSV/TSV."""
        return int(self.caption_column) if self.caption_column.strip().isdigit() else self.caption_column

    @property
    def resolved_device(self) -> str:
        return resolve_device(self.device)

    def data(self) -> dict[str, str]:
        """The data options that were given, for the run's scope record."""
        given = {name: getattr(self, name) for name in DATA_OPTIONS}
        given["ood_images"] = ", ".join(self.ood_images)
        return {k: str(v) for k, v in given.items() if v}


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when torch sees a GPU, else ``cpu``; an unknown or absent device is an error."""
    import torch

    if device not in DEVICES:
        raise RealPathError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RealPathError("device='cuda' but torch sees no CUDA GPU here; use device='auto' or 'cpu'")
    if device == "mps" and not torch.backends.mps.is_available():
        raise RealPathError("device='mps' but torch sees no Apple GPU here; use device='auto' or 'cpu'")
    return device


def _folder_problem(name: str, value: str, nested: bool) -> str | None:
    """Why ``value`` is not a class folder (``<class>/<image>``, or ``<object>/<colour>/<image>``), or None."""
    path = Path(value).expanduser()
    if not path.is_dir():
        return f"{name}={value!r}: no such folder"
    subs = [p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if not subs:
        layout = "<object>/<colour>/<image>" if nested else "<class>/<image>"
        return f"{name}={value!r} has no sub-folders; expected {layout}"
    return None


def _corpus_problem(value: str) -> str | None:
    if "://" in value:  # fsspec URLs (s3://, http://) are opened by the reader; their errors name the URL
        return None
    path = Path(value).expanduser()
    if not path.exists():
        return f"corpus={value!r}: no such file or folder"
    return None


def problems(options: RealOptions, needs: Sequence[str], optional: Sequence[str] = ()) -> list[str]:
    """Every problem with the data options a notebook ``needs`` (must be given) or takes when given."""
    found = []
    if options.batch_size < 1:
        found.append(f"batch_size must be ≥ 1, got {options.batch_size}")
    for name in [*needs, *optional]:
        value = getattr(options, name)
        if not value:
            if name in needs:
                found.append(f"{name} is empty; this notebook's real path needs it ({_LAYOUTS[name]})")
            continue
        if name == "corpus":
            problem = _corpus_problem(value)
            found += [problem] if problem else []
        elif name == "ood_images":
            found += [p for v in value if (p := _folder_problem(name, v, nested=False))]
        else:
            problem = _folder_problem(name, value, nested=name == "colour_images")
            found += [problem] if problem else []
    for name in DATA_OPTIONS:
        if getattr(options, name) and name not in [*needs, *optional]:
            found.append(f"{name} is not used by this notebook (it takes {', '.join([*needs, *optional])})")
    return found


_LAYOUTS = {
    "images": "a folder <class>/<image>",
    "test_images": "a folder <class>/<image> with the classes of images",
    "ood_images": "folders <class>/<image> with the classes of images",
    "corpus": "a caption file or shard folder",
    "colour_images": "a folder <object>/<colour>/<image>",
}


def validate(options: RealOptions, needs: Sequence[str], optional: Sequence[str] = ()) -> LoadedModel:
    """Check every option, then load the model on its device; raise RealPathError naming every problem.

    Runs before any work, so a wrong path or an unavailable model costs seconds and leaves outputs untouched.
    """
    from cliplab.models import load_model
    from cliplab.models.loading import UnknownModel, WeightsUnavailable

    found = problems(options, needs, optional)
    try:
        device = resolve_device(options.device)
    except RealPathError as err:
        found.append(str(err))
        device = "cpu"
    if found:
        raise RealPathError("the real path cannot start:\n  - " + "\n  - ".join(found))
    try:
        return load_model(options.model, options.pretrained or None, device=device)
    except (UnknownModel, WeightsUnavailable, FileNotFoundError, ValueError) as err:
        raise RealPathError(f"model={options.model!r} pretrained={options.pretrained!r}: {err}") from None


CORPUS_NAMES = ("corpus.parquet", "corpus.csv", "corpus.tsv", "corpus.jsonl", "corpus")


def options_from_folder(folder: str | Path) -> dict[str, object]:
    """The data options a folder provides by its layout (what ``--data DIR`` sets):

    ``images/`` → images, ``test_images/`` → test_images, ``ood/<shift>/`` → ood_images, ``corpus.parquet|csv|
    tsv|jsonl`` or a ``corpus/`` shard folder → corpus, ``colour_images/`` → colour_images. Nothing else is read.
    """
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise RealPathError(f"--data {folder!r}: no such folder")
    found: dict[str, object] = {}
    for name in ("images", "test_images", "colour_images"):
        if (root / name).is_dir():
            found[name] = str(root / name)
    shifts = sorted(p for p in (root / "ood").glob("*") if p.is_dir()) if (root / "ood").is_dir() else []
    if shifts:
        found["ood_images"] = [str(p) for p in shifts]
    corpus = next((root / n for n in CORPUS_NAMES if (root / n).exists()), None)
    if corpus is not None:
        found["corpus"] = str(corpus)
    if not found:
        raise RealPathError(f"--data {folder!r} holds none of images/, test_images/, ood/<shift>/, colour_images/, "
                            f"{', '.join(CORPUS_NAMES[:-1])} or corpus/")
    return found
