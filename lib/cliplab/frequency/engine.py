"""count_corpus: per-concept caption counts over a whole corpus, in-process or on a Dask cluster.

The corpus is planned into parts (``readers.plan_parts``); each part is streamed in chunks through one
``PhraseMatcher`` and reduced to an int64 count vector (plus its hit pairs when ``keep_hits``). Parts are
independent, so they run sequentially in this process (``scheduler=None``) or as one Dask task each
(``"local"`` starts a throw-away ``distributed.LocalCluster`` of ``n_workers`` single-threaded processes on
127.0.0.1; ``"tcp://host:port"`` or a ``distributed.Client`` uses an existing cluster). Results are combined
in part order, so the same input gives identical counts, hits and keys either way. Memory per worker is
bounded by ``chunk_size``, except for ``keep_hits=True``, whose hit pairs grow with the corpus by design.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from cliplab.frequency.concepts import ConceptSet
from cliplab.frequency.hits import Hits, concat_keys
from cliplab.frequency.readers import BadRows, Part, plan_parts, read_part
from cliplab.frequency.phrases import PhraseMatcher


@dataclass(frozen=True)
class CountResult:
    """Counts table (concept, name, text_count), good captions counted, malformed rows, optional hits.

    seconds is the wall time of the counting (planning excluded); part_seconds / part_cpu_seconds are the
    summed wall and CPU time of the parts where they ran (CPU < wall means the workers waited for a core).
    """

    counts: pd.DataFrame
    n_captions: int
    bad_rows: BadRows
    hits: Hits | None
    n_parts: int
    seconds: float
    part_seconds: float = 0.0
    part_cpu_seconds: float = 0.0

    @property
    def n_rows(self) -> int:
        """Rows seen: good captions plus malformed rows."""
        return self.n_captions + self.bad_rows.count

    def summary(self) -> str:
        rate = self.n_captions / self.seconds if self.seconds > 0 else float("nan")
        return (f"{self.n_captions:,} captions in {self.n_parts} parts, {self.seconds:.2f} s ({rate:,.0f}/s); "
                f"{self.bad_rows}")


@dataclass
class PartCounts:
    """What one part contributes: counts, good/bad rows, timings, and hit pairs (local row, concept) with keys."""

    counts: np.ndarray
    n_captions: int
    bad_rows: BadRows
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    rows: np.ndarray | None = None
    columns: np.ndarray | None = None
    keys: np.ndarray | None = None


def count_part(part: Part, matcher: PhraseMatcher, chunk_size: int = 65_536, keep_hits: bool = False,
               max_examples: int = 5) -> PartCounts:
    """Count one part chunk by chunk (the unit of work for every scheduler)."""
    wall, cpu = time.perf_counter(), time.process_time()
    k = len(matcher.concepts)
    counts = np.zeros(k, dtype=np.int64)
    bad = BadRows(max_examples=max_examples)
    rows, columns, keys = [], [], []
    n = 0
    has_keys = part.key_column is not None or part.format == "webdataset"
    for chunk in read_part(part, chunk_size, bad, keys=keep_hits and has_keys):
        r, c = matcher.match(chunk.captions)
        counts += np.bincount(c, minlength=k)
        if keep_hits:
            rows.append(r + n)
            columns.append(c)
            if chunk.keys is not None:
                keys.append(chunk.keys.to_numpy(zero_copy_only=False))
        n += len(chunk.captions)
    out = PartCounts(counts, n, bad, time.perf_counter() - wall, time.process_time() - cpu)
    if keep_hits:
        out.rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        out.columns = np.concatenate(columns) if columns else np.zeros(0, dtype=np.int64)
        out.keys = (np.concatenate(keys) if keys else np.zeros(0, dtype=object)) if has_keys else None
    return out


def count_corpus(source: Any, concepts: ConceptSet | Sequence[str], *, format: str | None = None,
                 column: str | int | None = None, key_column: str | int | None = None, scheduler: Any = None,
                 n_workers: int = 2, chunk_size: int = 65_536, keep_hits: bool = False,
                 storage_options: Mapping[str, Any] | None = None, rows_per_part: int = 2_000_000,
                 max_examples: int = 5, progress: bool = False) -> CountResult:
    """Per-concept number of captions mentioning each concept, over a whole corpus.

    source:     path / fsspec URL / glob / directory, a list of them, or an in-memory table (see readers).
    concepts:   a ConceptSet, or a list of names (English lookup lemmas, no synonyms).
    column:     caption column (tables) or member extension (webdataset); key_column: sample ids (tables).
                For CSV/TSV without a header line, both as 0-based field positions (CC-3M's TSV: column=0).
    scheduler:  None (in-process), "local" (LocalCluster of n_workers processes), "tcp://host:port", or a
                distributed.Client.
    keep_hits:  also return the per-caption Hits (keys: key_column / webdataset keys, else good-row ordinals).

    scheduler="local" starts worker processes: in a script, call it under ``if __name__ == "__main__":``.
    """
    if not isinstance(concepts, ConceptSet):
        concepts = ConceptSet(concepts)
    for name, value in (("chunk_size", chunk_size), ("n_workers", n_workers), ("max_examples", max_examples)):
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "max_examples" else 1):
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not (scheduler is None or scheduler == "local" or (isinstance(scheduler, str) and "://" in scheduler)
            or _is_client(scheduler)):
        raise ValueError("scheduler must be None, 'local', 'tcp://host:port' or a distributed.Client, "
                         f"got {scheduler!r}")
    parts = plan_parts(source, format=format, column=column, key_column=key_column,
                       storage_options=storage_options, rows_per_part=rows_per_part)
    matcher = PhraseMatcher(concepts)
    start = time.perf_counter()
    kwargs = dict(chunk_size=chunk_size, keep_hits=keep_hits, max_examples=max_examples)
    if scheduler is None:
        iterator: Any = parts
        if progress:
            from tqdm.auto import tqdm
            iterator = tqdm(parts, desc="counting parts")
        results = [count_part(p, matcher, **kwargs) for p in iterator]
    else:
        results = _run_dask(parts, matcher, scheduler, n_workers, kwargs, progress)
    return _combine(results, concepts, keep_hits, max_examples, len(parts), time.perf_counter() - start)


def _is_client(obj: Any) -> bool:
    return type(obj).__name__ == "Client" and type(obj).__module__.startswith("distributed")


def _run_dask(parts: list[Part], matcher: PhraseMatcher, scheduler: Any, n_workers: int,
              kwargs: dict[str, Any], progress: bool) -> list[PartCounts]:
    from distributed import Client, LocalCluster, progress as dask_progress

    cluster = None
    if _is_client(scheduler):
        client, own = scheduler, False
    elif scheduler == "local":
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, silence_logs=logging.ERROR)
        client, own = Client(cluster), True
    else:
        client, own = Client(scheduler, timeout="30s"), True
    try:
        shared = client.scatter(matcher, broadcast=True)
        futures = client.map(count_part, parts, matcher=shared, pure=False, **kwargs)
        if progress:
            dask_progress(futures)
        return client.gather(futures)
    finally:
        if own:
            client.close()
        if cluster is not None:
            cluster.close()


def _combine(results: list[PartCounts], concepts: ConceptSet, keep_hits: bool, max_examples: int,
             n_parts: int, seconds: float) -> CountResult:
    counts = np.zeros(len(concepts), dtype=np.int64)
    bad = BadRows(max_examples=max_examples)
    for r in results:
        counts += r.counts
        bad.merge(r.bad_rows)
    n = sum(r.n_captions for r in results)
    hits = None
    if keep_hits:
        offsets = np.cumsum([0] + [r.n_captions for r in results])
        rows = np.concatenate([r.rows + o for r, o in zip(results, offsets)]) if results else np.zeros(0, np.int64)
        cols = np.concatenate([r.columns for r in results]) if results else np.zeros(0, np.int64)
        if results and all(r.keys is not None for r in results):
            keys = concat_keys([r.keys for r in results])
        else:
            keys = np.arange(n)
        hits = Hits.from_pairs(rows, cols, n, concepts.names, keys)
    table = pd.DataFrame({"concept": np.arange(len(concepts)), "name": list(concepts.names), "text_count": counts})
    return CountResult(table, n, bad, hits, n_parts, seconds, sum(r.seconds for r in results),
                       sum(r.cpu_seconds for r in results))


def count_captions(captions: Sequence[str], concepts: ConceptSet | Sequence[str]) -> pd.DataFrame:
    """Counts for an in-memory list of captions (convenience wrapper over ``count_corpus``)."""
    if isinstance(captions, str) or not isinstance(captions, Sequence):
        raise TypeError(f"captions must be a list of str, got {type(captions).__name__}")
    import pyarrow as pa
    return count_corpus(pa.array(list(captions), type=pa.string()), concepts).counts
