"""Caption tokens as the concept counter sees them: lower-cased, punctuation replaced by spaces, split on
whitespace — Arrow compute kernels over a whole chunk, no per-caption Python (step 1 of ``cliplab.frequency.phrases``).

Both sides use it: ``ConceptSet`` tokenises its concept phrases and ``PhraseMatcher`` the captions, so a phrase
and a caption that say the same words always give the same tokens.
"""

from __future__ import annotations

from typing import Sequence

import pyarrow as pa
import pyarrow.compute as pc

_NON_WORD = r"[^\p{L}\p{N}\s]+"


def as_string_array(texts: pa.Array | pa.ChunkedArray | Sequence[str]) -> pa.Array:
    """Texts as one Arrow (large_)string array; lists of str are converted, other types rejected."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if not isinstance(texts, pa.Array):
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise TypeError(f"texts must be a sequence of str or an Arrow string array, got {type(texts).__name__}")
        texts = pa.array(list(texts), type=pa.string())
    if not (pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type)):
        raise TypeError(f"texts must be Arrow strings, got type {texts.type}; decode binary captions first")
    return texts


def tokenize(texts: pa.Array | pa.ChunkedArray | Sequence[str]) -> pa.Array:
    """Lower-cased word tokens of each text as an Arrow list array (punctuation removed, split on whitespace).

    A text without any word gives [""] (Arrow's split of an empty string); "" is never a concept word.
    """
    arr = as_string_array(texts)
    lower = pc.ascii_lower(arr) if pc.all(pc.string_is_ascii(arr)).as_py() is not False else pc.utf8_lower(arr)
    spaced = pc.utf8_trim_whitespace(pc.replace_substring_regex(lower, _NON_WORD, " "))
    return pc.utf8_split_whitespace(spaced)


def phrase_words(text: str) -> tuple[str, ...]:
    """The lower-cased tokens of one phrase, exactly as captions are tokenised."""
    return tuple(w for w in tokenize([text])[0].as_py() if w)
