"""The paper's text-count pipeline, rebuilt for comparison only (benchmark and agreement tests).

As in ``bethgelab/frequency_determines_performance`` (``src/text_search_*``, card §2): spaCy lemmatises every
caption and an inverted index {lemma → caption ids} is built; a concept name is split on [_ whitespace],
lower-cased and lemmatised piece by piece, and its count is |∩ postings| over its unigrams, with unigrams
missing from the index dropped — no phrase or word-order matching (card §5 #3).

Differences from the original, forced or deliberate: the spaCy pipeline is ``spacy.blank("en")`` plus the
*lookup* lemmatiser from spacy-lookups-data (``en_core_web_lg``/``sm`` cannot be downloaded here), so there is
no POS tagger and every non-punctuation token is indexed, not only NOUN/PROPN; index lemmas are stripped to
[A-Za-z] and lower-cased, so the index/query case mismatch of card §5 #2 is *not* reproduced. spaCy is
imported lazily: it is a benchmark/test dependency, never needed for counting.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any, Sequence

import numpy as np

_STRIP = re.compile(r"[^A-Za-z ]")
_SPLIT = re.compile(r"[_\s]+")


def _lookup_nlp() -> Any:
    try:
        import spacy
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError("the reference pipeline needs spaCy: `uv pip install spacy==3.8.18 "
                                  "spacy-lookups-data==1.0.5`") from err
    nlp = spacy.blank("en")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.initialize()
    return nlp


class ReferenceIndex:
    """Inverted index of spaCy lookup lemmas over captions, queried by unigram intersection (paper style)."""

    def __init__(self, batch_size: int = 1000) -> None:
        self.nlp = _lookup_nlp()
        self.batch_size = batch_size
        self.index: dict[str, list[int]] = defaultdict(list)
        self.n_captions = 0

    def add(self, captions: Sequence[str]) -> None:
        """Index more captions (ids continue from the previous call)."""
        for doc in self.nlp.pipe(captions, batch_size=self.batch_size):
            doc_id = self.n_captions
            for token in doc:
                if token.is_punct or token.is_space:
                    continue
                lemma = _STRIP.sub("", token.lemma_).lower()
                if lemma:
                    self.index[lemma].append(doc_id)
            self.n_captions += 1

    def query(self, name: str) -> int:
        """Captions containing every (lemmatised) unigram of the name that the index knows; 0 if none does."""
        pieces = [p for p in _SPLIT.split(name.lower()) if p]
        lemmas = [_STRIP.sub("", self.nlp(p)[0].lemma_).lower() if p else p for p in pieces]
        postings = [set(self.index[lem]) for lem in lemmas if lem in self.index]
        if not postings:
            return 0
        return len(set.intersection(*postings))

    def counts(self, names: Sequence[str]) -> np.ndarray:
        """Counts for many concept names."""
        return np.array([self.query(n) for n in names], dtype=np.int64)


def reference_counts(captions: Sequence[str], names: Sequence[str], batch_size: int = 1000) -> np.ndarray:
    """Build the paper-style index over ``captions`` and query every name."""
    index = ReferenceIndex(batch_size=batch_size)
    index.add(captions)
    return index.counts(names)
