"""Image<->text retrieval recall@k in both directions.

A query counts as a hit at k when any relevant item is among its k most similar candidates. Relevance is
given by ids: image i and text j match when ``image_ids[i] == text_ids[j]``. With the default (row index on
both sides) each image matches its own caption; ``match="caption"`` makes identical caption strings
interchangeable, which templated corpora need (many images share the caption "a red pubike").
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

import numpy as np
import pandas as pd
import torch

from cliplab.eval.data import CaptionCorpus
from cliplab.eval.features import encode_images, encode_texts
from cliplab.models.loading import LoadedModel

DEFAULT_KS: tuple[int, ...] = (1, 5, 10)


def recall_at_k(
    similarity: torch.Tensor | np.ndarray,
    image_ids: Sequence[Any] | None = None,
    text_ids: Sequence[Any] | None = None,
    ks: Sequence[int] = DEFAULT_KS,
) -> pd.DataFrame:
    """Recall@k both ways from an (n_images, n_texts) similarity matrix.

    Returns rows (direction, k, recall, n_queries) with direction ``image_to_text`` (each image queries the
    texts) and ``text_to_image``. Ties are broken by candidate order (torch.topk on CPU is stable in practice,
    but embeddings rarely tie).
    """
    sim = torch.as_tensor(np.asarray(similarity, dtype=np.float64) if isinstance(similarity, np.ndarray) else similarity)
    if sim.ndim != 2 or 0 in sim.shape:
        raise ValueError(f"similarity must be a non-empty (n_images, n_texts) matrix, got shape {tuple(sim.shape)}")
    n_img, n_txt = sim.shape
    img_ids = np.arange(n_img) if image_ids is None else np.asarray(image_ids)
    txt_ids = np.arange(n_txt) if text_ids is None else np.asarray(text_ids)
    if len(img_ids) != n_img or len(txt_ids) != n_txt:
        raise ValueError(f"got {len(img_ids)} image ids and {len(txt_ids)} text ids for a {n_img}x{n_txt} matrix")
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    relevant = torch.as_tensor(img_ids[:, None] == txt_ids[None, :])
    rows = []
    for direction, scores, rel in (("image_to_text", sim, relevant), ("text_to_image", sim.T, relevant.T)):
        has_match = rel.any(dim=1)
        if not bool(has_match.any()):
            raise ValueError(f"no {direction} query has a relevant candidate: check image_ids/text_ids")
        top = torch.topk(scores, k=min(ks[-1], scores.shape[1]), dim=1).indices
        hit_ranks = torch.gather(rel, 1, top)
        for k in ks:
            hits = hit_ranks[:, :k].any(dim=1)[has_match]
            rows.append({"direction": direction, "k": k, "recall": float(hits.float().mean()),
                         "n_queries": int(has_match.sum())})
    return pd.DataFrame(rows)


def retrieval_eval(
    loaded: LoadedModel,
    corpus: CaptionCorpus,
    ks: Sequence[int] = DEFAULT_KS,
    match: Literal["pair", "caption"] = "pair",
    batch_size: int = 256,
) -> pd.DataFrame:
    """Encode a caption corpus with the model and return :func:`recall_at_k` for it.

    ``match="pair"``: row i's image matches only row i's caption; ``"caption"``: an image matches every row
    whose caption text equals its own.
    """
    if not isinstance(corpus, CaptionCorpus):
        raise TypeError(f"expected a CaptionCorpus (see cliplab.eval.data), got {type(corpus).__name__}")
    if match not in ("pair", "caption"):
        raise ValueError(f"match must be 'pair' or 'caption', got {match!r}")
    image_features = encode_images(loaded, corpus.images, batch_size)
    text_features = encode_texts(loaded, corpus.captions)
    ids = np.asarray(corpus.captions, dtype=object) if match == "caption" else np.arange(len(corpus))
    return recall_at_k(image_features @ text_features.T, ids, ids, ks)
