"""Corpora on disk: webdataset tar shards (image + txt + json per sample) and a parquet index.

The shards are what ``open_clip_train --dataset-type webdataset`` reads; the index (one row per sample,
pyarrow) is what analyses read to count concepts without opening images. Both are written streaming, one
shard at a time, so a corpus never has to fit in memory.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import webdataset as wds
from PIL import Image

from cliplab.world.corpus import MIXED, World

INDEX_NAME = "index.parquet"
CONFIG_NAME = "world.json"

_INDEX_SCHEMA = pa.schema([
    ("key", pa.string()), ("shard", pa.string()), ("index", pa.int64()), ("split", pa.string()),
    ("domain", pa.string()), ("background", pa.string()), ("caption", pa.string()), ("aligned", pa.bool_()),
    ("caption_source", pa.int64()), ("colour_omitted", pa.bool_()), ("n_objects", pa.int8()),
    ("concepts", pa.list_(pa.int32())), ("names", pa.list_(pa.string())), ("colours", pa.list_(pa.string())),
    ("boxes", pa.list_(pa.list_(pa.int16(), 4))), ("sizes", pa.list_(pa.string())),
    ("size_px", pa.list_(pa.int16())), ("rotations", pa.list_(pa.int16())), ("positions", pa.list_(pa.string())),
    ("caption_concepts", pa.list_(pa.int32())), ("caption_colours", pa.list_(pa.string())),
])


def encode_image(image: np.ndarray, image_format: Literal["png", "jpg"]) -> bytes:
    """PNG (lossless, fast compression) or JPEG (quality 95) bytes of a uint8 H×W×3 array."""
    buf = io.BytesIO()
    if image_format == "png":
        Image.fromarray(image).save(buf, format="PNG", compress_level=1)
    else:
        Image.fromarray(image).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def write_shards(world: World, n: int, out_dir: str | Path, split: str = "train", shard_size: int = 10_000,
                 image_format: Literal["png", "jpg"] = "png", domain: str = "clean", start: int = 0,
                 progress: bool = False) -> list[Path]:
    """Write samples start..start+n−1 of ``split`` as ``{split}-%06d.tar`` shards plus ``index.parquet``.

    Each tar member set is ``KEY.png|jpg``, ``KEY.txt`` (caption) and ``KEY.json`` (metadata), as
    ``webdataset.ShardWriter`` writes them. ``world.json`` records the config. Returns the shard paths.
    Use one directory per split: the index and config names are fixed.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(f"shard_size must be a positive int, got {shard_size!r}")
    if image_format not in ("png", "jpg"):
        raise ValueError(f"image_format must be 'png' or 'jpg', got {image_format!r}")
    if domain != MIXED and domain not in world.config.domains:
        raise ValueError(f"domain {domain!r} is not one of {world.config.domains} or {MIXED!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_NAME).write_text(json.dumps(world.config.to_dict(), indent=2))
    samples: Iterable = world.iter_samples(n, split=split, start=start, domain=domain)
    if progress:
        from tqdm.auto import tqdm
        samples = tqdm(samples, total=n, desc=f"world {split} shards")
    pattern = str(out / f"{split}-%06d.tar")
    written: list[Path] = []
    rows: list[dict[str, Any]] = []
    with pq.ParquetWriter(out / INDEX_NAME, _INDEX_SCHEMA) as index_writer:
        def flush() -> None:
            if rows:
                index_writer.write_table(pa.Table.from_pylist(rows, schema=_INDEX_SCHEMA))
                rows.clear()

        # mtime=0 makes shards byte-reproducible (and spares tarfile a pax header per member)
        with wds.ShardWriter(pattern, maxcount=shard_size, verbose=0, mtime=0,
                             post=lambda fname: written.append(Path(fname))) as sink:
            for sample in samples:
                key = f"{split}-{sample.meta['index']:010d}"
                sink.write({"__key__": key, image_format: encode_image(sample.image, image_format),
                            "txt": sample.caption, "json": json.dumps(sample.meta).encode("utf-8")})
                rows.append(_index_row(key, Path(sink.fname).name, sample.caption, sample.meta))
                if len(rows) >= shard_size:
                    flush()
            flush()
    return written


def _index_row(key: str, shard: str, caption: str, meta: dict[str, Any]) -> dict[str, Any]:
    objs = meta["objects"]
    return {
        "key": key, "shard": shard, "index": meta["index"], "split": meta["split"], "domain": meta["domain"],
        "background": meta["background"], "caption": caption, "aligned": meta["aligned"],
        "caption_source": meta["caption_source"], "colour_omitted": meta["colour_omitted"],
        "n_objects": meta["n_objects"],
        "concepts": [o["concept"] for o in objs], "names": [o["name"] for o in objs],
        "colours": [o["colour"] for o in objs], "boxes": [o["box"] for o in objs],
        "sizes": [o["size"] for o in objs], "size_px": [o["size_px"] for o in objs],
        "rotations": [o["rotation"] for o in objs], "positions": [o["position"] for o in objs],
        "caption_concepts": meta["caption_concepts"], "caption_colours": meta["caption_colours"],
    }


def read_index(path: str | Path) -> pd.DataFrame:
    """The parquet index as a DataFrame (pass the file or the shard directory)."""
    p = Path(path)
    if p.is_dir():
        p = p / INDEX_NAME
    if not p.is_file():
        raise FileNotFoundError(f"no shard index at {p}; write one with write_shards(...)")
    return pd.read_parquet(p)


def iter_shards(paths: Iterable[str | Path]) -> Iterator[tuple[np.ndarray, str, dict[str, Any]]]:
    """Read samples back from shards, in order: (uint8 H×W×3 image, caption, metadata dict)."""
    urls = [str(p) for p in paths]
    if not urls:
        raise ValueError("iter_shards needs at least one shard path")
    missing = [u for u in urls if not Path(u).is_file()]
    if missing:
        raise FileNotFoundError(f"shards not found: {missing[:3]}")
    dataset = (wds.WebDataset(urls, shardshuffle=False)
               .decode("rgb8").to_tuple("png;jpg", "txt", "json"))
    for image, caption, meta in dataset:
        yield np.asarray(image, dtype=np.uint8), caption, meta
