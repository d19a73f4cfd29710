"""Text-side concept matching: normalise, tokenise, lemmatise and find whole phrases in captions, vectorised.

Pipeline per chunk of captions (an Arrow string array):

1. lower-case, replace every run of characters that are neither letters, digits nor whitespace by a space
   (so "Shark's" → "shark s", "great-white" → "great white", "_" splits words), split on whitespace —
   all Arrow compute kernels, no per-caption Python;
2. dictionary-encode the tokens; only the *distinct* tokens of the chunk go through the lemma table
   (``cliplab.frequency.lemmas``) and become word ids (−1 for words in no concept phrase);
3. walk a trie of the concepts' lemma sequences over all token positions at once: step k extends every
   still-live match by the token k places on (same caption only) with a sorted-key look-up
   (``np.searchsorted``), so a phrase of L words costs L vectorised steps regardless of the number of
   concepts;
4. emit (caption, concept) at phrase ends, deduplicate, so each concept counts at most once per caption.

Matching is whole-phrase and in order: "great white shark" matches "a Great White Sharks' fin" but not
"white shark great" (the reference code's unigram-intersection counts both; card §5 #3). Overlapping
matches all count: "a great white shark" also counts the concept "shark" if it is in the set.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cliplab.frequency.concepts import ConceptSet
from cliplab.frequency.tokens import as_string_array, tokenize

_CACHE_LIMIT = 1_000_000  # distinct surface forms remembered per matcher before the cache is reset


class PhraseMatcher:
    """Finds which concepts of a ConceptSet each caption mentions (whole phrases, lemmatised, case-blind).

    Build once per ConceptSet; ``match`` and ``count`` are pure functions of the captions. The matcher is
    picklable, so Dask workers get one copy each.
    """

    def __init__(self, concepts: ConceptSet) -> None:
        if not isinstance(concepts, ConceptSet):
            raise TypeError(f"PhraseMatcher needs a ConceptSet, got {type(concepts).__name__}")
        self.concepts = concepts
        self.lemmas = concepts.lemmas
        words = sorted({w for words_, _ in concepts.phrases for w in words_})
        self._word_id = {w: i for i, w in enumerate(words)}
        self.n_words = len(words)
        self.max_length = concepts.max_length
        self._build_trie(concepts.phrases)
        self._cache: dict[str, int] = {}

    def _build_trie(self, phrases: Sequence[tuple[tuple[str, ...], int]]) -> None:
        first: dict[int, int] = {}
        children: dict[tuple[int, int], int] = {}
        ends: dict[int, set[int]] = {}
        n_nodes = 0
        for words, concept in phrases:
            ids = [self._word_id[w] for w in words]
            node = first.get(ids[0])
            if node is None:
                node = first[ids[0]] = n_nodes
                n_nodes += 1
            for w in ids[1:]:
                nxt = children.get((node, w))
                if nxt is None:
                    nxt = children[(node, w)] = n_nodes
                    n_nodes += 1
                node = nxt
            ends.setdefault(node, set()).add(concept)
        self._first = np.full(self.n_words, -1, dtype=np.int64)
        for w, node in first.items():
            self._first[w] = node
        keys = np.array([p * self.n_words + w for p, w in children], dtype=np.int64)
        child = np.array(list(children.values()), dtype=np.int64)
        order = np.argsort(keys)
        self._edge_keys, self._edge_child = keys[order], child[order]
        n_ends = np.zeros(n_nodes, dtype=np.int64)
        for node, cs in ends.items():
            n_ends[node] = len(cs)
        self._end_ptr = np.concatenate([[0], np.cumsum(n_ends)])
        self._end_concepts = np.zeros(int(self._end_ptr[-1]), dtype=np.int64)
        for node, cs in ends.items():
            self._end_concepts[self._end_ptr[node]:self._end_ptr[node + 1]] = sorted(cs)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_cache"] = {}
        return state

    def _ids_of(self, tokens: list[str]) -> np.ndarray:
        """Word id (or −1) of each distinct token, through the lemma table."""
        cache, word_id, lemma = self._cache, self._word_id, self.lemmas
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
        out = np.empty(len(tokens), dtype=np.int64)
        for i, tok in enumerate(tokens):
            wid = cache.get(tok)
            if wid is None:
                wid = cache[tok] = word_id.get(lemma(tok), -1)
            out[i] = wid
        return out

    def match(self, captions: pa.Array | pa.ChunkedArray | Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Distinct (caption index, concept index) pairs, sorted by caption then concept."""
        arr = as_string_array(captions)
        if arr.null_count:
            raise ValueError(f"{arr.null_count} captions are null; drop or report them before matching "
                             "(the corpus readers do this)")
        n_rows = len(arr)
        k = len(self.concepts)
        empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        if n_rows == 0:
            return empty
        tokens = tokenize(arr)
        offsets = np.asarray(tokens.offsets, dtype=np.int64)
        flat = tokens.values.slice(offsets[0], offsets[-1] - offsets[0])
        offsets = offsets - offsets[0]
        if len(flat) == 0:
            return empty
        encoded = pc.dictionary_encode(flat)
        wid = self._ids_of(encoded.dictionary.to_pylist())[encoded.indices.to_numpy(zero_copy_only=False)]
        row_of = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(offsets))

        pos = np.flatnonzero(wid >= 0)
        node = self._first[wid[pos]]
        live = node >= 0
        pos, node = pos[live], node[live]
        found_rows, found_concepts = [], []
        n_tok = len(wid)
        for step in range(self.max_length):
            if step:
                nxt = pos + step
                ok = nxt < n_tok
                pos, node, nxt = pos[ok], node[ok], nxt[ok]
                w = wid[nxt]
                ok = (w >= 0) & (row_of[nxt] == row_of[pos])
                pos, node = pos[ok], node[ok]
                key = node * self.n_words + w[ok]
                at = np.searchsorted(self._edge_keys, key)
                at[at == len(self._edge_keys)] = 0
                ok = self._edge_keys[at] == key if len(self._edge_keys) else np.zeros(len(key), dtype=bool)
                pos, node = pos[ok], self._edge_child[at[ok]]
            if len(pos) == 0:
                break
            start, stop = self._end_ptr[node], self._end_ptr[node + 1]
            n_end = stop - start
            if n_end.any():
                hit_rows = np.repeat(row_of[pos], n_end)
                # concept slots: start..stop-1 of each hit node, laid out contiguously
                base = np.repeat(start - np.concatenate([[0], np.cumsum(n_end)[:-1]]), n_end)
                found_rows.append(hit_rows)
                found_concepts.append(self._end_concepts[base + np.arange(len(hit_rows))])
        if not found_rows:
            return empty
        pair = np.sort(np.concatenate(found_rows) * k + np.concatenate(found_concepts))
        if len(pair) > 1:  # sort + adjacent-difference is several times faster than np.unique's hashing here
            pair = pair[np.concatenate([[True], pair[1:] != pair[:-1]])]
        return pair // k, pair % k

    def count(self, captions: pa.Array | pa.ChunkedArray | Sequence[str]) -> np.ndarray:
        """Per-concept number of captions mentioning it (int64, one entry per concept)."""
        _, concepts = self.match(captions)
        return np.bincount(concepts, minlength=len(self.concepts)).astype(np.int64)
