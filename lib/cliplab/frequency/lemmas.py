"""Lemmatisation by table lookup: the same word → lemma map for concept names and captions.

Why a lookup table: counting must be fast (one dictionary look-up per distinct token of a chunk, no parser)
and identical for concept names and captions, which fixes the reference code's index/query mismatch
(spaCy ``lg`` for the index, ``sm`` for queries; card §5 #2). The default table is spaCy's own English
lookup lemmatiser data (``en_lemma_lookup`` from the ``spacy-lookups-data`` package, ~41k inflected forms →
lemma), read as gzipped JSON **without importing spaCy**. It is part-of-speech blind, exactly like spaCy's
``lemmatizer`` in ``mode="lookup"``: "sharks" → "shark", "mice" → "mouse", but also "leaves" → "leave".
Words missing from the table are their own lemma; no suffix rules are guessed, so invented words ("blicks")
stay as they are. Keys are lower-cased (a lower-case entry wins over a capitalised one), because
tokens are lower-cased before lookup.
"""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from importlib import resources
from typing import Mapping

ENGLISH_TABLE = "en_lemma_lookup.json.gz"


class LemmaTable:
    """A lower-case word → lemma map; words not in the table are their own lemma.

    ``name`` says where the table came from (for reports and provenance).
    """

    def __init__(self, table: Mapping[str, str], name: str = "custom") -> None:
        if not isinstance(table, Mapping):
            raise TypeError(f"a lemma table must be a mapping word → lemma, got {type(table).__name__}")
        lowered: dict[str, str] = {}
        for word, lemma in table.items():
            if not isinstance(word, str) or not isinstance(lemma, str):
                raise TypeError(f"lemma table entries must be str → str, got {word!r} → {lemma!r}")
            key = word.lower()
            if key not in lowered or word == key:  # the lower-case spelling's own entry takes precedence
                lowered[key] = lemma.lower()
        self._table = lowered
        self.name = name

    def __call__(self, word: str) -> str:
        """The lemma of a lower-case word."""
        return self._table.get(word, word)

    def __len__(self) -> int:
        return len(self._table)

    def __repr__(self) -> str:
        return f"LemmaTable({self.name!r}, {len(self)} entries)"


class IdentityLemmas(LemmaTable):
    """No lemmatisation: every word is its own lemma (exact-word matching)."""

    def __init__(self) -> None:
        super().__init__({}, name="none")


@lru_cache(maxsize=1)
def english_lookup() -> LemmaTable:
    """spaCy's English lookup-lemmatiser table from ``spacy-lookups-data`` (loaded once per process)."""
    try:
        data = resources.files("spacy_lookups_data").joinpath("data", ENGLISH_TABLE).read_bytes()
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            "the default lemmatiser needs the data package spacy-lookups-data (spaCy itself is not needed): "
            "install it with `uv pip install spacy-lookups-data==1.0.5`, or pass lemmas='none' or your own "
            "word → lemma mapping") from err
    from spacy_lookups_data import __version__ as version
    return LemmaTable(json.loads(gzip.decompress(data)), name=f"spacy-lookups-data {version} {ENGLISH_TABLE}")


LemmaSpec = LemmaTable | Mapping[str, str] | str | None


def resolve_lemmas(spec: LemmaSpec) -> LemmaTable:
    """A LemmaTable from ``"english"`` / None (the default table), ``"none"``, a mapping or a LemmaTable."""
    if spec is None or (isinstance(spec, str) and spec == "english"):
        return english_lookup()
    if isinstance(spec, LemmaTable):
        return spec
    if isinstance(spec, str):
        if spec == "none":
            return IdentityLemmas()
        raise ValueError(f"lemmas must be 'english', 'none', a word → lemma mapping or a LemmaTable, got {spec!r}")
    if isinstance(spec, Mapping):
        return LemmaTable(spec)
    raise TypeError(f"lemmas must be 'english', 'none', a mapping or a LemmaTable, got {type(spec).__name__}")
