"""ConceptSet: concept names (plus optional synonyms) turned into the lemma phrases that captions are matched on.

Concept names and captions go through the same tokeniser (``text.tokenize``) and the same lemma table, so
"Great_White Sharks" as a name and "a great white shark" in a caption meet as ("great", "white", "shark").
A concept is hit by a caption when *any* of its phrases (its name or a synonym) occurs there.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

import pandas as pd

from cliplab.frequency.lemmas import LemmaSpec, LemmaTable, resolve_lemmas
from cliplab.frequency.tokens import tokenize


class ConceptSet:
    """An ordered set of concepts; concept i is column i of every count and hit matrix.

    names:    unique concept names (any case, underscores or spaces between words).
    synonyms: optional {name: [other phrases]} that count as the same concept.
    lemmas:   "english" (default: spaCy's lookup table, see ``lemmas``), "none", or a word → lemma mapping.
    """

    def __init__(self, names: Sequence[str], synonyms: Mapping[str, Sequence[str]] | None = None,
                 lemmas: LemmaSpec = None) -> None:
        if isinstance(names, str) or not isinstance(names, Sequence) or len(names) == 0:
            raise ValueError("names must be a non-empty list of concept names, e.g. ['shark', 'great white shark']")
        bad = [n for n in names if not isinstance(n, str) or not n.strip()]
        if bad:
            raise ValueError(f"concept names must be non-empty strings; bad entries: {bad[:5]}")
        dupes = sorted({n for n in names if list(names).count(n) > 1}) if len(set(names)) != len(names) else []
        if dupes:
            raise ValueError(f"concept names must be unique; duplicated: {dupes[:5]} (merge them with synonyms)")
        synonyms = dict(synonyms or {})
        unknown = [k for k in synonyms if k not in set(names)]
        if unknown:
            raise ValueError(f"synonyms given for names not in the set: {unknown[:5]}")
        for key, alts in synonyms.items():
            if isinstance(alts, str) or not all(isinstance(a, str) and a.strip() for a in alts):
                raise ValueError(f"synonyms[{key!r}] must be a list of non-empty strings, got {alts!r}")
        self.names: tuple[str, ...] = tuple(names)
        self.synonyms: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in synonyms.items()}
        self.lemmas: LemmaTable = resolve_lemmas(lemmas)
        self._index = {n: i for i, n in enumerate(self.names)}

        texts = [(n, i) for i, n in enumerate(self.names)]
        texts += [(alt, self._index[k]) for k, alts in self.synonyms.items() for alt in alts]
        token_lists = tokenize([t for t, _ in texts]).to_pylist()
        phrases: dict[tuple[tuple[str, ...], int], None] = {}
        for (text, concept), words in zip(texts, token_lists):
            words = [w for w in words if w]  # a text with no words at all splits into [""]
            if not words:
                raise ValueError(f"phrase {text!r} has no words after removing punctuation; give a wordy name")
            phrases[(tuple(self.lemmas(w) for w in words), concept)] = None
        self.phrases: tuple[tuple[tuple[str, ...], int], ...] = tuple(phrases)
        self.max_length = max(len(words) for words, _ in self.phrases)

    @classmethod
    def from_world(cls, world: Any, lemmas: LemmaSpec = None) -> "ConceptSet":
        """The concepts of a ``cliplab.world.World``, in concept-id order (column i = world concept i)."""
        concepts = getattr(world, "concepts", None)
        if concepts is None:
            raise TypeError(f"from_world needs a cliplab.world.World, got {type(world).__name__}")
        return cls([c.name for c in concepts], lemmas=lemmas)

    def index(self, name: str) -> int:
        """Column of a concept name."""
        if name not in self._index:
            raise ValueError(f"no concept named {name!r} in this ConceptSet")
        return self._index[name]

    def table(self) -> pd.DataFrame:
        """One row per matched phrase: concept index, concept name, the lemma phrase it is matched as."""
        return pd.DataFrame({
            "concept": [c for _, c in self.phrases],
            "name": [self.names[c] for _, c in self.phrases],
            "phrase": [" ".join(words) for words, _ in self.phrases],
        })

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __repr__(self) -> str:
        return f"ConceptSet({len(self)} concepts, {len(self.phrases)} phrases, longest {self.max_length} words)"
