"""Caption corpora from parquet, CSV, TSV or webdataset tar shards — local paths or any fsspec URL — in chunks.

A source is planned into ``Part``s (one per file, or per group of parquet row groups) that can be read
independently, in-process or on Dask workers. Each part is streamed in chunks of at most ``chunk_size``
rows, so memory is bounded by the chunk, not the corpus. Rows that cannot yield a caption are malformed:
they are counted in a ``BadRows`` report (with the first few as examples) and skipped, never fatal:

- CSV/TSV lines with the wrong number of fields (pyarrow's ``invalid_row_handler``);
- a missing caption (null, or an empty CSV field), or one that is empty / only whitespace;
- a caption that is not valid UTF-8;
- a webdataset sample without a caption member, and a truncated or corrupt shard (counted once, reading
  of that shard stops there).

Captions of good rows are passed on unchanged, so counts over the good rows are those of the corpus
without the bad rows. CSV/TSV files have a header line, unless ``column`` (and ``key_column``) are given as
0-based field positions: then the file is read header-less (CC-3M's ``caption<TAB>url`` TSV is read with
``column=0``). TSV is read without quoting (as web corpora such as CC-3M write it). ``memory://`` URLs live in
one process: use them in-process or with a threaded Dask cluster.
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Callable, Iterator, Mapping, Sequence

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

FORMATS = ("parquet", "csv", "tsv", "webdataset")
_EXTENSIONS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv", ".tab": "tsv",
               ".tar": "webdataset", ".tgz": "webdataset"}
_COMPRESSION = (".gz", ".bz2", ".xz", ".zst", ".lz4")
_DEFAULT_COLUMN = {"parquet": "caption", "csv": "caption", "tsv": "caption", "webdataset": "txt",
                   "table": "caption"}
_SNIPPET = 200


@dataclass(frozen=True)
class BadRow:
    """One malformed row: where it is, why it was skipped, and (the start of) its text."""

    where: str
    reason: str
    text: str


@dataclass
class BadRows:
    """Malformed rows: total count, count per reason, and the first ``max_examples`` rows as examples."""

    max_examples: int = 5
    count: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    examples: list[BadRow] = field(default_factory=list)

    def add(self, where: str | Callable[[], str], reason: str, text: Any = "") -> None:
        """Record one bad row (``where`` may be a callable, evaluated only if kept as an example)."""
        self.count += 1
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
        if len(self.examples) < self.max_examples:
            if isinstance(text, bytes):
                text = text.decode("utf-8", errors="replace")
            self.examples.append(BadRow(where() if callable(where) else where, reason,
                                        "" if text is None else str(text)[:_SNIPPET]))

    def merge(self, other: "BadRows") -> "BadRows":
        """Add another report's counts and (up to the limit) examples into this one; returns self."""
        self.count += other.count
        for reason, n in other.by_reason.items():
            self.by_reason[reason] = self.by_reason.get(reason, 0) + n
        self.examples.extend(other.examples[: max(0, self.max_examples - len(self.examples))])
        return self

    def __str__(self) -> str:
        if not self.count:
            return "no malformed rows"
        reasons = ", ".join(f"{n} {r}" for r, n in sorted(self.by_reason.items()))
        lines = [f"{self.count} malformed rows skipped ({reasons}); first {len(self.examples)}:"]
        lines += [f"  {e.where}: {e.reason}: {e.text!r}" for e in self.examples]
        return "\n".join(lines)


@dataclass(frozen=True)
class Part:
    """A unit of reading work: one file (or some row groups of a parquet file), or an in-memory table."""

    url: str
    format: str
    column: str
    key_column: str | None = None
    storage_options: tuple[tuple[str, Any], ...] = ()
    row_groups: tuple[int, ...] | None = None
    first_row: int = 0
    table: pa.Table | None = field(default=None, repr=False)
    headerless: bool = False  # CSV/TSV without a header line: columns are pyarrow's generated f0, f1, ...

    @property
    def name(self) -> str:
        return PurePosixPath(self.url).name if self.table is None else "<table>"


@dataclass(frozen=True)
class Chunk:
    """Good captions (Arrow strings, no nulls) and their keys (None when the source has no key column)."""

    captions: pa.Array
    keys: pa.Array | None


# ---------------------------------------------------------------------------------------------- planning
def plan_parts(source: Any, format: str | None = None, column: str | int | None = None,
               key_column: str | int | None = None, storage_options: Mapping[str, Any] | None = None,
               rows_per_part: int = 2_000_000) -> list[Part]:
    """Split a source into readable parts, validating files, formats and columns before any counting.

    source: a path or fsspec URL (file, directory or glob), a list of them, or an in-memory pyarrow Table,
    pandas DataFrame, Series or Arrow array of captions. ``column`` is the caption column (tables) or
    member extension (webdataset); by default "caption" and "txt". For CSV/TSV files without a header line,
    give ``column`` (and ``key_column``) as 0-based field positions.
    """
    headerless = _positional(column, key_column)
    if format is not None and format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS} or None (from the file extension), got {format!r}")
    if isinstance(rows_per_part, bool) or not isinstance(rows_per_part, int) or rows_per_part < 1:
        raise ValueError(f"rows_per_part must be a positive int, got {rows_per_part!r}")
    options = dict(storage_options or {})
    if isinstance(source, (pa.Table, pd.DataFrame, pd.Series, pa.Array, pa.ChunkedArray)):
        if headerless:
            raise ValueError("field positions (int column=) are for header-less CSV/TSV files; name a table's columns")
        return [_table_part(source, column, key_column)]
    if isinstance(source, (str, os.PathLike)):
        urls = [os.fspath(source)]
    elif isinstance(source, Sequence) and source and all(isinstance(s, (str, os.PathLike)) for s in source):
        urls = [os.fspath(s) for s in source]
    else:
        raise TypeError("source must be a path/URL (file, directory or glob), a non-empty list of them, or a "
                        f"pyarrow Table / pandas DataFrame of captions; got {type(source).__name__}")
    parts: list[Part] = []
    for url in urls:
        for file_url in _expand(url, options):
            fmt = format or _format_of(file_url)
            if headerless and fmt not in ("csv", "tsv"):
                raise ValueError(f"{file_url}: field positions (int column=) are for header-less CSV/TSV files; "
                                 f"{fmt} columns are named")
            col = _field_name(column) if headerless else (column or _DEFAULT_COLUMN[fmt])
            if fmt == "webdataset" and key_column is not None:
                raise ValueError("key_column does not apply to webdataset shards: their keys are the samples' "
                                 "__key__ and are always used")
            key = _field_name(key_column) if headerless and key_column is not None else key_column
            base = Part(file_url, fmt, col, key, tuple(sorted(options.items())), headerless=headerless)
            if fmt == "parquet":
                parts.extend(_parquet_parts(base, rows_per_part))
            elif fmt in ("csv", "tsv"):
                _check_csv_header(base)
                parts.append(base)
            else:
                parts.append(base)
    return parts


def _positional(column: Any, key_column: Any) -> bool:
    """True when columns are 0-based field positions (a header-less CSV/TSV); both must be of one kind."""
    given = [c for c in (column, key_column) if c is not None]
    ints = [isinstance(c, int) and not isinstance(c, bool) for c in given]
    if any(ints) and not all(ints):
        raise ValueError(f"column={column!r} and key_column={key_column!r} mix a name and a position: give both "
                         "as names (file with a header line) or both as 0-based positions (header-less file)")
    for c in given:
        if isinstance(c, int) and not isinstance(c, bool) and c < 0:
            raise ValueError(f"field positions are 0-based and >= 0, got {c}")
    return bool(given) and all(ints)


def _field_name(position: int) -> str:
    return f"f{position}"  # pyarrow's autogenerate_column_names


def _table_part(source: Any, column: str | None, key_column: str | None) -> Part:
    col = column or "caption"
    if isinstance(source, (pd.Series, pa.Array, pa.ChunkedArray)):
        if key_column is not None:
            raise ValueError("key_column needs a table source (DataFrame or pyarrow Table), not a single column")
        arr = pa.array(source, from_pandas=True) if isinstance(source, pd.Series) else source
        source = pa.table({col: arr})
    if isinstance(source, pd.DataFrame):
        missing = [c for c in (col, key_column) if c is not None and c not in source.columns]
        if missing:
            raise ValueError(f"DataFrame lacks columns {missing}; it has {list(source.columns)[:20]}")
        source = pa.Table.from_pandas(source[[c for c in (col, key_column) if c is not None]], preserve_index=False)
    _check_columns(source.schema, col, key_column, "<table>")
    return Part("<table>", "table", col, key_column, table=source)


def _expand(url: str, options: dict[str, Any]) -> list[str]:
    fs, path = fsspec.core.url_to_fs(url, **options)
    if any(ch in path for ch in "*?["):
        found = sorted(fs.glob(path))
        if not found:
            raise FileNotFoundError(f"no files match {url!r}")
    elif fs.isdir(path):
        found = sorted(p for p in fs.find(path) if _maybe_format(p) is not None)
        if not found:
            raise FileNotFoundError(f"directory {url!r} holds no {'/'.join(_EXTENSIONS)} files")
    elif fs.exists(path):
        found = [path]
    else:
        raise FileNotFoundError(f"caption source {url!r} does not exist")
    return [fs.unstrip_protocol(p) if "://" in url else p for p in found]


def _maybe_format(url: str) -> str | None:
    name = PurePosixPath(url).name.lower()
    for comp in _COMPRESSION:
        if name.endswith(comp):
            name = name[: -len(comp)]
    return _EXTENSIONS.get(PurePosixPath(name).suffix)


def _format_of(url: str) -> str:
    fmt = _maybe_format(url)
    if fmt is None:
        raise ValueError(f"cannot tell the format of {url!r} from its extension; pass format= one of {FORMATS}")
    return fmt


def _open(part: Part) -> Any:
    return fsspec.open(part.url, "rb", compression="infer", **dict(part.storage_options))


def _check_columns(schema: pa.Schema, column: str, key_column: str | None, name: str) -> None:
    missing = [c for c in (column, key_column) if c is not None and c not in schema.names]
    if missing:
        raise ValueError(f"{name} lacks columns {missing}; it has {schema.names[:20]} "
                         "(pass column= / key_column=)")
    kind = schema.field(column).type
    if not any(check(kind) for check in (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary,
                                          pa.types.is_large_binary, pa.types.is_null)):
        raise TypeError(f"{name}: caption column {column!r} has type {kind}, expected strings")


def _parquet_parts(base: Part, rows_per_part: int) -> list[Part]:
    with _open(base) as fh:
        meta = pq.ParquetFile(fh).metadata
        schema = meta.schema.to_arrow_schema()
    _check_columns(schema, base.column, base.key_column, base.url)
    parts, groups, rows, first = [], [], 0, 0
    for g in range(meta.num_row_groups):
        groups.append(g)
        rows += meta.row_group(g).num_rows
        if rows >= rows_per_part or g == meta.num_row_groups - 1:
            parts.append(Part(base.url, "parquet", base.column, base.key_column, base.storage_options,
                              tuple(groups), first))
            first += rows
            groups, rows = [], 0
    return parts or [Part(base.url, "parquet", base.column, base.key_column, base.storage_options, (), 0)]


def _csv_options(part: Part, bad: BadRows | None, block_size: int = 1 << 20) -> tuple[Any, Any, Any]:
    tsv = part.format == "tsv"

    def on_invalid(row: Any) -> str:
        if bad is not None:
            bad.add(f"{part.name} line {row.number}", f"{row.actual_columns} fields, expected {row.expected_columns}",
                    row.text)
        return "skip"

    read = pacsv.ReadOptions(block_size=block_size, use_threads=False, autogenerate_column_names=part.headerless)
    parse = pacsv.ParseOptions(delimiter="\t" if tsv else ",", quote_char=False if tsv else '"',
                               newlines_in_values=not tsv, invalid_row_handler=on_invalid)
    types = {part.column: pa.binary()}
    if part.key_column is not None:
        types[part.key_column] = pa.string()
    convert = pacsv.ConvertOptions(column_types=types, include_columns=list(types), strings_can_be_null=True,
                                   quoted_strings_can_be_null=False)
    return read, parse, convert


def _check_csv_header(part: Part) -> None:
    read, parse, _ = _csv_options(part, None, block_size=1 << 16)
    with _open(part) as fh:
        schema = pacsv.open_csv(fh, read_options=read, parse_options=parse).schema
    if part.headerless:
        missing = [c for c in (part.column, part.key_column) if c is not None and c not in schema.names]
        if missing:
            raise ValueError(f"{part.url} has {len(schema.names)} fields per line; field position(s) "
                             f"{[int(c[1:]) for c in missing]} do not exist (positions are 0-based)")
    _check_columns(schema, part.column, part.key_column, part.url)


# ---------------------------------------------------------------------------------------------- reading
def read_part(part: Part, chunk_size: int, bad: BadRows, keys: bool = True) -> Iterator[Chunk]:
    """Chunks of good captions from one part; malformed rows go to ``bad``. ``keys=False`` skips keys."""
    if part.format == "webdataset":
        yield from _read_webdataset(part, chunk_size, bad, keys)
        return
    key_column = part.key_column if keys else None
    if part.format == "table":
        batches: Any = part.table.select([c for c in (part.column, key_column) if c]).to_batches(chunk_size)
        yield from _screen_batches(part, batches, key_column, bad, "row")
    elif part.format == "parquet":
        with _open(part) as fh:
            cols = [c for c in (part.column, key_column) if c]
            batches = pq.ParquetFile(fh).iter_batches(batch_size=chunk_size, row_groups=list(part.row_groups),
                                                      columns=cols, use_threads=False)
            yield from _screen_batches(part, batches, key_column, bad, "row")
    else:
        read, parse, convert = _csv_options(part, bad, block_size=int(min(max(chunk_size * 96, 1 << 20), 1 << 26)))
        with _open(part) as fh:
            yield from _screen_batches(part, pacsv.open_csv(fh, read, parse, convert), key_column, bad, "data row")


def _screen_batches(part: Part, batches: Any, key_column: str | None, bad: BadRows, unit: str) -> Iterator[Chunk]:
    row = part.first_row
    for batch in batches:
        if batch.num_rows == 0:
            continue
        captions = batch.column(part.column)
        key_arr = batch.column(key_column) if key_column else None
        chunk = screen(captions, key_arr, bad, _locator(part.name, unit, row, key_arr))
        row += batch.num_rows
        if len(chunk.captions):
            yield chunk


def _locator(name: str, unit: str, start: int, keys: pa.Array | None) -> Callable[[int], str]:
    def where(i: int) -> str:
        key = "" if keys is None else f" (key {keys[i].as_py()!r})"
        return f"{name} {unit} {start + i}{key}"
    return where


def screen(captions: pa.Array, keys: pa.Array | None, bad: BadRows, where: Callable[[int], str]) -> Chunk:
    """Drop and report null, empty/whitespace-only and non-UTF-8 captions; the rest pass unchanged."""
    raw, invalid = captions, None
    if pa.types.is_null(captions.type):
        captions = pa.nulls(len(captions), pa.string())
    elif pa.types.is_binary(captions.type) or pa.types.is_large_binary(captions.type):
        captions, invalid = _decode(captions)
    nulls = pc.is_null(captions)
    blank = pc.or_(pc.equal(pc.binary_length(captions), 0), pc.utf8_is_space(captions))
    drop = pc.or_kleene(nulls, blank).fill_null(True)
    if not pc.any(drop).as_py():
        return Chunk(captions, keys)
    null_flags = nulls.to_numpy(zero_copy_only=False)
    for i in np.flatnonzero(drop.to_numpy(zero_copy_only=False)).tolist():
        if invalid is not None and invalid[i]:
            bad.add(lambda i=i: where(i), "invalid UTF-8", raw[i].as_py())
        elif null_flags[i]:
            bad.add(lambda i=i: where(i), "missing caption")
        else:
            bad.add(lambda i=i: where(i), "empty caption", captions[i].as_py())
    keep = pc.invert(drop)
    return Chunk(pc.filter(captions, keep), None if keys is None else pc.filter(keys, keep))


def _decode(raw: pa.Array) -> tuple[pa.Array, np.ndarray | None]:
    """Binary → string, and a mask of rows that are not valid UTF-8 (those become null)."""
    target = pa.large_string() if pa.types.is_large_binary(raw.type) else pa.string()
    try:
        return pc.cast(raw, target), None
    except pa.ArrowInvalid:
        pass
    texts: list[str | None] = []
    invalid = np.zeros(len(raw), dtype=bool)
    for i, value in enumerate(raw.to_pylist()):  # slow path, only for chunks that hold invalid bytes
        try:
            texts.append(None if value is None else value.decode("utf-8"))
        except UnicodeDecodeError:
            invalid[i] = True
            texts.append(None)
    return pa.array(texts, type=target), invalid


def _split_member(name: str) -> tuple[str, str]:
    """webdataset's key/extension split: the key ends at the first dot of the file name."""
    slash = name.rfind("/") + 1
    dot = name.find(".", slash)
    return (name, "") if dot < 0 else (name[:dot], name[dot + 1:])


class _Tracked:
    """A read-only stream wrapper remembering how many bytes were read and the last 512 of them.

    tarfile's streaming mode stops silently when a shard is cut at a header; a complete tar ends on a
    512-byte boundary with zero blocks (the end-of-archive marker), which is what ``complete`` checks.
    """

    def __init__(self, raw: Any) -> None:
        self.raw, self.total, self.tail = raw, 0, b""

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.total += len(data)
        self.tail = (self.tail + data)[-512:]
        return data

    def drain(self) -> None:
        while self.read(1 << 16):
            pass

    @property
    def complete(self) -> bool:
        return self.total > 0 and self.total % 512 == 0 and not self.tail.strip(b"\0")


def _read_webdataset(part: Part, chunk_size: int, bad: BadRows, want_keys: bool) -> Iterator[Chunk]:
    ext = part.column.lower()
    captions: list[bytes | None] = []
    keys: list[str] = []

    def flush() -> Chunk:
        chunk = screen(pa.array(captions, type=pa.binary()), pa.array(keys, type=pa.string()), bad,
                       lambda i, ks=keys: f"{part.name} key {ks[i]}")
        captions.clear()
        keys.clear()
        return chunk if want_keys else Chunk(chunk.captions, None)

    current: str | None = None
    text: bytes | None = None
    with _open(part) as fh:
        stream = _Tracked(fh)
        try:
            with tarfile.open(fileobj=stream, mode="r|*") as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    key, member_ext = _split_member(member.name)
                    if key != current:
                        if current is not None:
                            captions.append(text)
                            keys.append(current)
                            if len(captions) >= chunk_size:
                                yield flush()
                        current, text = key, None
                    if member_ext.lower() == ext:
                        extracted = tar.extractfile(member)
                        text = extracted.read() if extracted is not None else None
            stream.drain()
            damage = None if stream.complete else "no end-of-archive marker (cut short)"
        except (tarfile.TarError, EOFError) as err:
            damage = str(err) or type(err).__name__
        if damage is None and current is not None:
            captions.append(text)
            keys.append(current)
        elif damage is not None:  # the interrupted sample is part of the damage, not a row of its own
            bad.add(f"{part.name} at key {current}", "truncated or corrupt shard", damage)
    if captions:
        yield flush()
