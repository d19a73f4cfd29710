"""Caption corpora from parquet, CSV, TSV or webdataset tar shards — local paths or any fsspec URL — in chunks.

A source is planned into ``Part``s (one per file, or per group of parquet row groups) that can be read
independently, in-process or on Dask workers. Each part is streamed in chunks of at most ``chunk_size``
rows, so memory is bounded by the chunk, not the corpus. CSV/TSV files have a header line, unless ``column``
(and ``key_column``) are given as 0-based field positions: then the file is read header-less (CC-3M's
``caption<TAB>url`` TSV is read with ``column=0``). ``memory://`` URLs live in one process: use them
in-process or with a threaded Dask cluster.

Faults. A bad input is either reported in a ``BadRows`` (a count per reason, the first few as examples) while
the run goes on, or it stops the run with an error naming the file, the place and the fix: no row is merged or
dropped without one or the other. Reported and skipped — never fatal; captions of good rows pass unchanged, so
counts over the good rows are those of the corpus without the bad rows:

- CSV/TSV lines with the wrong number of fields (pyarrow's ``invalid_row_handler``; its "line N" counts
  records, the header being line 1: physical lines unless quoted line breaks or blank lines come before);
- a missing caption (null, or an empty CSV field), or one that is empty / only whitespace;
- a caption, or a CSV/TSV key, that is not valid UTF-8 (e.g. a latin-1 file): each such row;
- a CSV whose last line ends inside a quoted field (a file cut short there): that row;
- a truncated or corrupt compressed CSV/TSV (.gz, .bz2, .xz): counted once; the rows before the damage are
  read, its cut last line is part of the damage, reading of that file stops there;
- a parquet row group that cannot be read or decoded: each of its unread rows (the footer knows how many),
  and reading goes on with the next row group;
- a webdataset sample without a caption member, and a truncated or corrupt shard (counted once, reading of
  that shard stops there).

Stop the run (ValueError naming the file): at planning, before any counting, a missing caption or key
column, a CSV/TSV header line that cannot be read (not UTF-8, or no data), a parquet file whose footer cannot
be read (truncated, corrupt, or not parquet); while reading, a webdataset shard none of whose samples has the
caption member (the wrong ``column``), and a CSV with an unbalanced quote.

Quoted line breaks. CSV (RFC 4180) lets a quoted field span lines, and captions do hold line breaks (pandas
writes them so): such a caption is one caption, passed on unchanged. An unbalanced quote, opened and not
closed where its field ends, makes any CSV parser run the field on over the following lines, merging them
into one row. To tell the two apart, each CSV file's physical lines are counted as it is read; when there are
more lines than records (a field spans lines, or blank lines), the file's quoting is checked in a second,
slower read (about 45 MB/s here) with Python's csv module in strict mode, and a field that spans lines but
does not close properly (its closing quote is followed by something other than a delimiter or line end, or
the file ends inside it) stops the run with an error naming the lines. That check runs at the end of the
file, so ``read_part`` may have yielded the file's earlier chunks; ``count_corpus`` then returns nothing. TSV
is read without quoting (as web corpora such as CC-3M write it): a quote is an ordinary character and a line
is a row, so TSV rows cannot merge.

Not detectable: a CSV/TSV cut at a line end, or inside an unquoted last field that keeps its field count,
reads as a shorter file (parquet files and tar shards are checked by their footer / end-of-archive marker);
and two stray quotes that happen to make valid CSV (one opening a field, a later one closing it right before
a delimiter or line end) read as one legitimate multi-line field.
"""

from __future__ import annotations

import csv
import gzip
import io
import lzma
import os
import tarfile
import zlib
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
_TAIL = 1 << 16  # bytes of a CSV/TSV file's end kept to look at its last line
# what a decompressing stream raises on a truncated or corrupt .gz/.bz2/.xz file (not I/O or network errors)
_DECOMPRESSION_ERRORS = (EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile)
_ENCODING_HINT = ("invalid UTF-8: the file may be in another encoding (e.g. latin-1 or cp1252); "
                  "re-encode it as UTF-8, e.g. iconv -f latin1 -t utf-8")


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

    def add(self, where: str | Callable[[], str], reason: str, text: Any = "", n: int = 1) -> None:
        """Record ``n`` bad rows under one example (``where`` may be a callable, evaluated only if kept)."""
        self.count += n
        self.by_reason[reason] = self.by_reason.get(reason, 0) + n
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
        if any(r.startswith("invalid UTF-8") for r in self.by_reason):
            lines.append(f"  ({_ENCODING_HINT})")
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
        try:
            meta = pq.ParquetFile(fh).metadata
        except (OSError, pa.ArrowException) as err:  # no footer: the row count is unknown, so stop here
            raise ValueError(f"{base.url}: cannot read the parquet footer ({err}); the file is truncated, corrupt "
                             "or not parquet: re-download or re-write it, or leave it out of the source") from err
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


@dataclass
class _Skipped:
    """Records pyarrow's invalid-row handler skipped in one CSV/TSV file: how many, and the last one's number."""

    count: int = 0
    last: int = 0


def _csv_options(part: Part, bad: BadRows | None, block_size: int = 1 << 20,
                 skipped: _Skipped | None = None) -> tuple[Any, Any, Any]:
    tsv = part.format == "tsv"

    def on_invalid(row: Any) -> str:
        if bad is not None:
            bad.add(f"{part.name} line {row.number}", f"{row.actual_columns} fields, expected {row.expected_columns}",
                    row.text)
        if skipped is not None:
            skipped.count += 1
            skipped.last = row.number
        return "skip"

    read = pacsv.ReadOptions(block_size=block_size, use_threads=False, autogenerate_column_names=part.headerless)
    parse = pacsv.ParseOptions(delimiter="\t" if tsv else ",", quote_char=False if tsv else '"',
                               newlines_in_values=not tsv, invalid_row_handler=on_invalid)
    types = {part.column: pa.binary()}
    if part.key_column is not None:
        types[part.key_column] = pa.binary()  # decoded by _screen_batches: a non-UTF-8 key is one bad row
    convert = pacsv.ConvertOptions(column_types=types, include_columns=list(types), strings_can_be_null=True,
                                   quoted_strings_can_be_null=False)
    return read, parse, convert


def _check_csv_header(part: Part) -> None:
    read, parse, _ = _csv_options(part, None, block_size=1 << 16)
    with _open(part) as fh:
        stream = _line_counter(part, fh)  # damage after the header is reported when the file is read
        try:
            schema = pacsv.open_csv(stream, read_options=read, parse_options=parse).schema
            schema.names  # column names are decoded on access
        except UnicodeDecodeError as err:
            raise ValueError(f"{part.url}: the header line is not valid UTF-8 ({err}); {_ENCODING_HINT}") from err
        except pa.ArrowInvalid as err:
            if part.format == "csv":
                _check_quoting(part, damaged=stream.damage is not None)  # a quote left open to the end, say
            damage = f" ({stream.damage}: the file is truncated or corrupt)" if stream.damage else ""
            raise ValueError(f"{part.url}: cannot read the header line: {err}{damage}") from err
    if part.headerless:
        missing = [c for c in (part.column, part.key_column) if c is not None and c not in schema.names]
        if missing:
            raise ValueError(f"{part.url} has {len(schema.names)} fields per line; field position(s) "
                             f"{[int(c[1:]) for c in missing]} do not exist (positions are 0-based)")
    _check_columns(schema, part.column, part.key_column, part.url)


# ---------------------------------------------------------------------------------------------- reading
def read_part(part: Part, chunk_size: int, bad: BadRows, keys: bool = True) -> Iterator[Chunk]:
    """Chunks of good captions from one part; malformed rows go to ``bad``. ``keys=False`` skips keys.

    Raises ValueError, naming the file, for the faults found only while reading that stop the run (a CSV
    with an unbalanced quote, a shard without caption members; see the module docstring): chunks this part
    yielded before the error come from a file that cannot be trusted. Other errors get a note naming the file.
    """
    try:
        if part.format == "webdataset":
            yield from _read_webdataset(part, chunk_size, bad, keys)
            return
        key_column = part.key_column if keys else None
        if part.format == "table":
            batches: Any = part.table.select([c for c in (part.column, key_column) if c]).to_batches(chunk_size)
            yield from _screen_batches(part, ((None, b) for b in batches), key_column, bad, "row")
        elif part.format == "parquet":
            with _open(part) as fh:
                cols = [c for c in (part.column, key_column) if c]
                yield from _screen_batches(part, _parquet_batches(part, fh, cols, chunk_size, bad), key_column, bad,
                                           "row")
        else:
            block_size = int(min(max(chunk_size * 96, 1 << 20), 1 << 26))
            with _open(part) as fh:
                yield from _screen_batches(part, _csv_batches(part, fh, bad, block_size), key_column, bad,
                                           "data row", decode_keys=True)
    except Exception as err:
        if part.table is None and part.url not in str(err):
            err.add_note(f"while reading {part.url}")
        raise


def _screen_batches(part: Part, batches: Iterator[tuple[int | None, pa.RecordBatch]], key_column: str | None,
                    bad: BadRows, unit: str, decode_keys: bool = False) -> Iterator[Chunk]:
    """Screen (first row or None to go on counting, batch) pairs into chunks of good captions.

    decode_keys: the part's key column holds bytes (CSV/TSV) to decode; a row whose key is not UTF-8 is bad
    whether or not keys are wanted (``key_column`` None), so the good rows do not depend on it.
    """
    row = part.first_row
    for start, batch in batches:
        row = row if start is None else start
        if batch.num_rows == 0:
            continue
        captions = batch.column(part.column)
        key_name = part.key_column if decode_keys else key_column
        raw_keys = key_arr = batch.column(key_name) if key_name else None
        bad_keys = None
        if decode_keys and raw_keys is not None:
            key_arr, bad_keys = _decode(raw_keys)
        chunk = screen(captions, key_arr, bad, _locator(part.name, unit, row, key_arr), bad_keys, raw_keys)
        row += batch.num_rows
        if key_column is None and chunk.keys is not None:
            chunk = Chunk(chunk.captions, None)
        if len(chunk.captions):
            yield chunk


def _locator(name: str, unit: str, start: int, keys: pa.Array | None) -> Callable[[int], str]:
    def where(i: int) -> str:
        key = "" if keys is None else f" (key {keys[i].as_py()!r})"
        return f"{name} {unit} {start + i}{key}"
    return where


def screen(captions: pa.Array, keys: pa.Array | None, bad: BadRows, where: Callable[[int], str],
           bad_keys: np.ndarray | None = None, raw_keys: pa.Array | None = None) -> Chunk:
    """Drop and report null, empty/whitespace-only and non-UTF-8 captions; the rest pass unchanged.

    bad_keys (with raw_keys, the undecoded bytes shown as examples) marks rows whose key is not UTF-8: bad too.
    """
    raw, invalid = captions, None
    if pa.types.is_null(captions.type):
        captions = pa.nulls(len(captions), pa.string())
    elif pa.types.is_binary(captions.type) or pa.types.is_large_binary(captions.type):
        captions, invalid = _decode(captions)
    nulls = pc.is_null(captions)
    blank = pc.or_(pc.equal(pc.binary_length(captions), 0), pc.utf8_is_space(captions))
    drop = pc.or_kleene(nulls, blank).fill_null(True)
    if bad_keys is not None:
        drop = pc.or_(drop, pa.array(bad_keys))
    if not pc.any(drop).as_py():
        return Chunk(captions, keys)
    null_flags = nulls.to_numpy(zero_copy_only=False)
    for i in np.flatnonzero(drop.to_numpy(zero_copy_only=False)).tolist():
        if bad_keys is not None and bad_keys[i]:
            bad.add(lambda i=i: where(i), "invalid UTF-8 key", raw_keys[i].as_py() if raw_keys is not None else "")
        elif invalid is not None and invalid[i]:
            bad.add(lambda i=i: where(i), "invalid UTF-8", raw[i].as_py())
        elif null_flags[i]:
            bad.add(lambda i=i: where(i), "missing caption")
        else:
            bad.add(lambda i=i: where(i), "empty caption", captions[i].as_py())
    keep = pc.invert(drop)
    return Chunk(pc.filter(captions, keep), None if keys is None else pc.filter(keys, keep))


def _parquet_batches(part: Part, fh: Any, columns: list[str], chunk_size: int,
                     bad: BadRows) -> Iterator[tuple[int | None, pa.RecordBatch]]:
    """(first file row, batch) of the part's row groups, read together as long as they decode.

    A row group that cannot be read or decoded is re-read alone; if it fails again, its unread rows (the footer
    knows how many) are reported and skipped, and reading goes on with the next row group.
    """
    pf = pq.ParquetFile(fh)
    groups = list(part.row_groups)
    ends = part.first_row + np.cumsum([pf.metadata.row_group(g).num_rows for g in groups], dtype=np.int64)
    row, at, alone = part.first_row, 0, False  # next file row to yield; first unfinished group; retrying it alone
    while at < len(groups):
        todo = groups[at:at + 1] if alone else groups[at:]
        skip = row - (int(ends[at - 1]) if at else part.first_row)  # rows of groups[at] yielded before a failure
        try:
            for batch in pf.iter_batches(batch_size=chunk_size, row_groups=todo, columns=columns, use_threads=False):
                if skip:
                    drop, skip = min(skip, batch.num_rows), skip - min(skip, batch.num_rows)
                    batch = batch.slice(drop)
                if batch.num_rows:
                    yield row, batch
                    row += batch.num_rows
            at, alone = at + len(todo), False
        except (OSError, pa.ArrowException) as err:
            at = int(np.searchsorted(ends, row, side="right"))  # the group holding the first unread row
            if at < len(groups) and alone:
                end = int(ends[at])
                bad.add(f"{part.name} row group {groups[at]} (rows {row}-{end - 1})", "unreadable parquet data",
                        f"{type(err).__name__}: {err}", n=end - row)
                row, at, alone = end, at + 1, False
            else:
                alone = True


def _breaks(data: bytes) -> int:
    """Line breaks in ``data``: \\n, \\r\\n and a lone \\r, as pyarrow's CSV parser ends lines."""
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


class _LineCounter:
    """A read-only stream wrapper for CSV/TSV files: counts physical lines and keeps the file's last bytes.

    A decompression error (a cut or corrupt .gz/.bz2/.xz file) becomes the end of the stream, remembered in
    ``damage``, so that pyarrow still parses the rows before it; I/O and network errors pass through.
    """

    def __init__(self, raw: Any, piece: int | None = None) -> None:
        self.raw, self.piece, self.breaks, self.size, self.tail = raw, piece, 0, 0, b""
        self.damage: str | None = None
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        if self.damage is not None:
            return b""
        data = self._read(size) if self.piece is None else b"".join(self._pieces(size))
        if data:
            self.breaks += _breaks(data) - int(self.tail[-1:] == b"\r" and data[:1] == b"\n")
            self.size += len(data)
            self.tail = (self.tail + data[-_TAIL:])[-_TAIL:]
        return data

    read1 = read

    def _read(self, size: int, once: bool = False) -> bytes:
        try:
            return self.raw.read1(size) if once else self.raw.read(size)
        except _DECOMPRESSION_ERRORS as err:
            self.damage = f"{type(err).__name__}: {err}"
            return b""

    def _pieces(self, size: int) -> Iterator[bytes]:
        """Read in pieces, one decompression step each: a failing read() would discard what it decompressed."""
        left = size if size is not None and size >= 0 else float("inf")
        once = hasattr(self.raw, "read1")
        while left > 0 and self.damage is None:
            data = self._read(int(min(left, self.piece)), once)
            if not data:
                return
            left -= len(data)
            yield data

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    @property
    def ends_with_break(self) -> bool:
        return self.tail[-1:] in (b"\n", b"\r")

    @property
    def lines(self) -> int:
        """Physical lines read: line breaks, plus an unterminated last line."""
        return self.breaks + int(self.size > 0 and not self.ends_with_break)

    @property
    def trailing_blank_lines(self) -> int:
        """Empty lines at the end of the file (pyarrow skips them), when they fit in the tail (else 0)."""
        body = self.tail.rstrip(b"\r\n")
        if not body and self.size > len(self.tail):
            return 0
        return max(0, _breaks(self.tail[len(body):]) - 1)

    @property
    def last_line(self) -> str | None:
        """The file's last line (without its break), if it fits in the tail."""
        body = self.tail[:-1] if self.tail.endswith(b"\n") else self.tail
        body = body[:-1] if body.endswith(b"\r") else body
        start = max(body.rfind(b"\n"), body.rfind(b"\r")) + 1
        if start == 0 and self.size > len(self.tail):
            return None
        return body[start:].decode("utf-8", errors="replace")


def _line_counter(part: Part, fh: Any) -> _LineCounter:
    """A _LineCounter for a part's stream, reading compressed files in small pieces."""
    compressed = PurePosixPath(part.url).name.lower().endswith(_COMPRESSION)
    return _LineCounter(fh, piece=io.DEFAULT_BUFFER_SIZE if compressed else None)


def _csv_batches(part: Part, fh: Any, bad: BadRows, block_size: int) -> Iterator[tuple[int | None, pa.RecordBatch]]:
    """pyarrow's batches of one CSV/TSV file, held back by one so that the file's end is checked first.

    At the end of the file: a decompression error is reported once, the cut last line being part of it; a CSV
    whose unterminated last line ends inside a quoted field loses that row, reported; and a CSV with more
    physical lines than records gets its quoting checked (``_check_quoting`` raises on an unbalanced quote).
    """
    skipped = _Skipped()
    read, parse, convert = _csv_options(part, bad, block_size, skipped)
    stream = _line_counter(part, fh)
    held, rows = None, 0
    try:
        reader: Any = pacsv.open_csv(stream, read, parse, convert)
    except pa.ArrowInvalid:
        if stream.damage is None:
            raise
        reader = ()  # damaged before the first record
    for batch in reader:
        if batch.num_rows:
            rows += batch.num_rows
            if held is not None:
                yield None, held
            held = batch
    records = int(not part.headerless) + rows + skipped.count
    last_is_good = held is not None and skipped.last != records  # pyarrow numbers records from 1, header included
    if stream.damage is not None:
        bad.add(f"{part.name} at line {stream.lines}", "truncated or corrupt file",
                f"{stream.damage} (reading stops there)")
    if part.format == "csv":
        if stream.lines - stream.trailing_blank_lines != records:  # a field spans lines, or blank lines
            _check_quoting(part, damaged=stream.damage is not None)
        last = None if stream.ends_with_break or stream.damage else stream.last_line
        if last_is_good and last is not None and _ends_in_open_quote(last):
            held = held.slice(0, held.num_rows - 1)
            last_is_good = False
            bad.add(f"{part.name} line {stream.lines}", "truncated last line (ends inside a quoted field)", last)
    if stream.damage is not None and not stream.ends_with_break and last_is_good:
        held = held.slice(0, held.num_rows - 1)  # the cut last line is part of the damage, not a row of its own
    if held is not None:
        yield None, held


def _ends_in_open_quote(line: str) -> bool:
    """Whether one CSV line ends inside a quoted field (Python's csv module, strict mode)."""
    try:
        next(csv.reader([line], strict=True), None)
    except csv.Error as err:
        return "unexpected end of data" in str(err)
    return False


class _LineTap:
    """Lines for csv.reader, keeping the text of line number ``want`` (the first line of the next record)."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines, self.number, self.want, self.kept = lines, 0, 1, ""

    def __iter__(self) -> "_LineTap":
        return self

    def __next__(self) -> str:
        line = next(self.lines)
        self.number += 1
        if self.number == self.want:
            self.kept = line
        return line


def _check_quoting(part: Part, damaged: bool = False) -> None:
    """Raise ValueError if a CSV field runs on over lines without closing properly: an unbalanced quote.

    A second read of the file through Python's csv module in strict mode, which rejects a quoted field whose
    closing quote is followed by anything but a delimiter or line end, or that the file ends inside — what an
    unbalanced quote turns into — while quoted line breaks in a properly closed field pass. Errors within one
    line merge nothing (pyarrow reads such a line leniently, as one row) and are left alone; so is a field left
    open by a cut ``damaged`` (compressed) file, already reported as damage.
    """
    count, first = 0, None
    with _open(part) as fh:
        tap = _LineTap(io.TextIOWrapper(_line_counter(part, fh), encoding="latin-1", newline=""))  # ASCII structure
        reader = csv.reader(tap, delimiter=",", quotechar='"', doublequote=True, strict=True)
        done = 0  # lines consumed by the records so far
        while True:
            tap.want = done + 1
            try:
                next(reader)
            except StopIteration:
                break
            except csv.Error as err:
                at_end = "unexpected end of data" in str(err)
                if reader.line_num > done + 1 and not (damaged and at_end):
                    count += 1
                    first = first or (done + 1, reader.line_num, str(err), at_end, tap.kept)
            done = reader.line_num
    if first is None:
        return
    start, end, why, at_end, text = first
    text = text.rstrip("\r\n").encode("latin-1").decode("utf-8", errors="replace")[:_SNIPPET]
    if at_end:
        closes, span = "is still open at the end of the file", f"{start}-{end}"
    elif "field larger than field limit" in why:  # csv gives up on it there, so this is as far as we know
        closes, span = f"runs on past line {end} ({why})", f"{start}-{end} and more"
    else:
        closes, span = f"only closes on line {end} ({why})", f"{start}-{end}"
    raise ValueError(
        f"{part.url}: unbalanced quote: a quoted field in the row starting on line {start} {closes}, so lines "
        f"{span} would be read as one row ({count} such row{'s' * (count > 1)} found). Line "
        f"{start}: {text!r}. Fix the file: close the quote where the field ends, write a quote inside a quoted "
        "field twice (\"\"), or remove the stray quote (a quoted caption may span lines only when its quote is "
        "closed); if the file was cut short there, restore it.")


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
    """Samples of one tar shard: a sample without the caption member is a bad row, damage is counted once.

    A complete shard none of whose samples has the caption member raises ValueError: the caption member is
    named otherwise (``column``), and counting it as all-bad would hide that.
    """
    ext = part.column.lower()
    captions: list[bytes | None] = []
    keys: list[str] = []
    samples, captioned, seen = 0, False, set()  # complete samples; a caption member met; extensions met

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
                            samples += 1
                            if len(captions) >= chunk_size:
                                yield flush()
                        current, text = key, None
                    if len(seen) < 50:
                        seen.add(member_ext.lower())
                    if member_ext.lower() == ext:
                        captioned = True
                        extracted = tar.extractfile(member)
                        text = extracted.read() if extracted is not None else None
            stream.drain()
            damage = None if stream.complete else "no end-of-archive marker (cut short)"
        except (tarfile.TarError, EOFError) as err:
            damage = str(err) or type(err).__name__
        if damage is None and current is not None:
            captions.append(text)
            keys.append(current)
            samples += 1
        elif damage is not None:  # the interrupted sample is part of the damage, not a row of its own
            bad.add(f"{part.name} at key {current}", "truncated or corrupt shard", damage)
    if damage is None and samples and not captioned:
        raise ValueError(f"{part.url}: none of its {samples} samples has a {ext!r} caption member (its members are "
                         f"{', '.join(repr(e) for e in sorted(seen)[:12])}); pass column= the caption member's "
                         "extension")
    if captions:
        yield flush()
