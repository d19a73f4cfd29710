"""Concept frequencies of caption corpora: text counts, image-tagger counts, matched counts, misalignment.

    from cliplab.frequency import ConceptSet, count_corpus, GroundTruthTagger, matched_counts
    concepts = ConceptSet(["shark", "great white shark"], synonyms={"shark": ["sharks"]})
    result = count_corpus("data/captions/*.parquet", concepts, keep_hits=True)   # or scheduler="local"
    result.counts                    # concept, name, text_count
    print(result.bad_rows)           # malformed rows: counted, with examples

Text matching is whole-phrase, case-insensitive and lemmatised (spaCy's English lookup table, read without
spaCy); ``reference`` holds the paper-style spaCy pipeline used only by the benchmark and agreement tests.
"""

from cliplab.frequency.concepts import ConceptSet
from cliplab.frequency.engine import CountResult, PartCounts, count_captions, count_corpus, count_part
from cliplab.frequency.hits import Hits
from cliplab.frequency.image import ClipTagger, GroundTruthTagger, Scorer, Tagger, clip_scorer
from cliplab.frequency.lemmas import IdentityLemmas, LemmaTable, english_lookup
from cliplab.frequency.matched import Misalignment, matched_counts, matched_hits, misaligned, misalignment_degree
from cliplab.frequency.readers import FORMATS, BadRow, BadRows, Part, plan_parts, read_part
from cliplab.frequency.phrases import PhraseMatcher
from cliplab.frequency.tokens import tokenize

__all__ = [
    "FORMATS", "BadRow", "BadRows", "ClipTagger", "ConceptSet", "CountResult", "GroundTruthTagger", "Hits",
    "IdentityLemmas", "LemmaTable", "Misalignment", "Part", "PartCounts", "PhraseMatcher", "Scorer", "Tagger",
    "clip_scorer", "count_captions", "count_corpus", "count_part", "english_lookup", "matched_counts",
    "matched_hits", "misaligned", "misalignment_degree", "plan_parts", "read_part", "tokenize",
]
