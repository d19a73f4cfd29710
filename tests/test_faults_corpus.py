"""Corpus faults: every caption reader (parquet, CSV, TSV, webdataset shards) and the image-folder reader.

Each fault is written for real into tmp_path — a truncated file, an unbalanced quote, latin-1 bytes read as
UTF-8, a missing caption column, image files that do not decode — and read through what users call
(``count_corpus``, ``plan_parts`` + ``read_part``, ``read_image_folder``). Each test checks what the user
sees (an error naming the file, the place and the fix, or a ``BadRows`` count with examples) and that no row
is merged or dropped unreported: good captions plus bad rows account for every data line written.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from cliplab.eval import read_image_folder
from cliplab.frequency import BadRows, CountResult, count_corpus, plan_parts, read_part

NAMES = ["shark", "cat", "dog"]
CAPTIONS = [f"a {animal} number {i}" for i in range(12) for animal in ("shark", "cat", "dog")][:30]


# ------------------------------------------------------------------------------------------------ helpers
def text_counts(result: CountResult) -> dict[str, int]:
    """Concept name -> text count."""
    return dict(zip(result.counts["name"], result.counts["text_count"].tolist()))


def counts_of(captions: list[str]) -> dict[str, int]:
    """The counts of an in-memory list of captions: what a file holding exactly these good rows must give."""
    return text_counts(count_corpus(pa.array(captions, type=pa.string()), NAMES))


def read_reader(path: Path, **plan: object) -> tuple[list[str], BadRows]:
    """Good captions and bad rows from the reader itself (plan_parts + read_part), without the engine."""
    bad = BadRows()
    captions: list[str] = []
    for part in plan_parts(path, **plan):
        for chunk in read_part(part, 4, bad):
            captions.extend(chunk.captions.to_pylist())
    return captions, bad


def csv_bytes(captions: list[str], sep: str = ",") -> bytes:
    """A caption,id file with one line per caption (captions are written bare, as they are)."""
    return (f"caption{sep}id\n" + "".join(f"{c}{sep}{i}\n" for i, c in enumerate(captions))).encode()


def shard(samples: list[tuple[str, dict[str, bytes]]]) -> bytes:
    """A webdataset tar: one member per (key, extension)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for key, members in samples:
            for ext, data in members.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` (making its folder) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------------------------- unbalanced quotes
def stray_quote_csv(tmp_path: Path) -> Path:
    """The known bug: line 3 opens a quote it never closes; a quoted caption comes three lines later."""
    lines = ["caption,id", "a shark,0", '"a cat swims,1', "a dog,2", "a shark,3", '"a cat, at home",4', "a dog,5"]
    return write(tmp_path / "stray.csv", ("\n".join(lines) + "\n").encode())


def test_csv_unbalanced_quote_stops_naming_file_lines_and_fix(tmp_path: Path) -> None:
    """Before: lines 3-6 were merged into one caption and the report said "no malformed rows"."""
    path = stray_quote_csv(tmp_path)
    with pytest.raises(ValueError) as err:
        count_corpus(path, NAMES, key_column="id")
    message = str(err.value)
    assert str(path) in message and "unbalanced quote" in message
    assert "starting on line 3" in message and "lines 3-6" in message and "'\"a cat swims,1'" in message
    assert 'twice ("")' in message and "remove the stray quote" in message


def test_csv_unbalanced_quote_stops_the_reader_too(tmp_path: Path) -> None:
    """read_part raises as well: the merged row never reaches a caller as a caption."""
    path = stray_quote_csv(tmp_path)
    with pytest.raises(ValueError, match=r"stray\.csv: unbalanced quote.*line 3"):
        read_reader(path)


def test_csv_quote_open_to_the_end_of_the_file(tmp_path: Path) -> None:
    """Before: one bad row "1 fields, expected 2" stood for four lines, three good rows lost unreported."""
    path = write(tmp_path / "open.csv", b'caption,id\na shark,0\n"a cat,1\na dog,2\na shark,3\n')
    with pytest.raises(ValueError, match=r"open\.csv: unbalanced quote.*line 3 is still open at the end"):
        count_corpus(path, NAMES, key_column="id")


def test_one_column_caption_file_with_a_stray_quote(tmp_path: Path) -> None:
    """A caption-only CSV: the field count cannot give the merge away; the line count does."""
    path = write(tmp_path / "one.csv", b'caption\na shark\n"a cat\na dog\n"a shark"\na cat\n')
    with pytest.raises(ValueError, match=r"one\.csv: unbalanced quote.*line 3.*lines 3-5"):
        count_corpus(path, NAMES)


def test_stray_quote_in_a_column_that_is_not_read(tmp_path: Path) -> None:
    """Only caption and id are read, the broken quote is in url: the merge still stops the read."""
    data = b'caption,url,id\na shark,"http://x/0,0\na cat,http://x/1,1\na dog,"http://x/2",2\na cat,u,3\n'
    path = write(tmp_path / "url.csv", data)
    with pytest.raises(ValueError, match=r"url\.csv: unbalanced quote.*line 2.*lines 2-4"):
        count_corpus(path, NAMES, key_column="id")


def test_headerless_csv_with_a_quote_open_to_the_end(tmp_path: Path) -> None:
    """A header-less CSV whose only quote never closes: stopped at planning, not 'cannot infer columns'."""
    path = write(tmp_path / "cc.csv", b'http://a,"a shark\nhttp://b,a cat\nhttp://c,a dog\n')
    with pytest.raises(ValueError, match=r"cc\.csv: unbalanced quote.*line 1"):
        plan_parts(path, column=1, key_column=0)


def test_stray_quote_late_in_a_file_of_several_blocks(tmp_path: Path) -> None:
    """Past pyarrow's first 1 MiB block: the error names the right physical line."""
    captions = [CAPTIONS[i % len(CAPTIONS)] + " and some padding text" for i in range(40_000)]
    lines = csv_bytes(captions).decode().splitlines()
    lines[30_001] = '"' + lines[30_001]  # data row 30000
    path = write(tmp_path / "big.csv", ("\n".join(lines) + "\n").encode())
    assert len("\n".join(lines[:30_001])) > 1 << 20  # the stray quote is past the first block
    with pytest.raises(ValueError, match=r"big\.csv: unbalanced quote.*starting on line 30002 runs on past line"):
        count_corpus(path, NAMES, key_column="id")
    lines[30_001], lines[39_001] = lines[30_001][1:], '"' + lines[39_001]  # open to the end, 1000 lines on
    write(path, ("\n".join(lines) + "\n").encode())
    with pytest.raises(ValueError, match=r"starting on line 39002 is still open at the end of the file"):
        count_corpus(path, NAMES, key_column="id")


def test_quoted_captions_with_line_breaks_are_one_caption_each(tmp_path: Path) -> None:
    """RFC 4180 quoted line breaks (pandas writes them) are legitimate: same counts as the table."""
    captions = list(CAPTIONS)
    captions[3], captions[7], captions[8] = "a shark\nin the sea", "two lines,\r\nwith a cat", "a dog\n\nbarks"
    frame = pd.DataFrame({"caption": captions, "id": [f"k{i}" for i in range(len(captions))]})
    path = write(tmp_path / "multi.csv", frame.to_csv(index=False).encode() + b"\n\n")  # and blank lines at the end
    result = count_corpus(path, NAMES, key_column="id", keep_hits=True)
    assert result.bad_rows.count == 0 and result.n_captions == len(captions)
    assert text_counts(result) == counts_of(captions)
    assert list(result.hits.keys) == frame["id"].tolist()
    read, bad = read_reader(path, key_column="id")
    assert read == captions and bad.count == 0  # passed on unchanged, line breaks included


def test_quote_inside_an_unquoted_csv_field_is_a_character(tmp_path: Path) -> None:
    """``a 12" shark`` merges nothing: read as it is, as before."""
    path = write(tmp_path / "inch.csv", b'caption,id\na 12" shark,0\na cat,1\n"a dog",2\n')
    captions, bad = read_reader(path, key_column="id")
    assert captions == ['a 12" shark', "a cat", "a dog"] and bad.count == 0


def test_tsv_has_no_quoting_so_a_stray_quote_merges_nothing(tmp_path: Path) -> None:
    """TSV is read without quoting (as CC-3M writes it): every line is a row, quotes are kept."""
    captions = ['"a shark', 'a 12" cat', 'a dog"', '"a shark"']
    path = write(tmp_path / "q.tsv", csv_bytes(captions, sep="\t"))
    result = count_corpus(path, NAMES, key_column="id", keep_hits=True)
    assert result.bad_rows.count == 0 and list(result.hits.keys) == ["0", "1", "2", "3"]
    assert read_reader(path, key_column="id")[0] == captions


# ------------------------------------------------------------------------------------------- truncation
def test_truncated_parquet_stops_at_planning_naming_the_file(tmp_path: Path) -> None:
    """No footer, so no row count: stopped before any counting (before: pyarrow's error, no file name)."""
    whole = tmp_path / "whole.parquet"
    pq.write_table(pa.table({"caption": CAPTIONS}), whole)
    cut = write(tmp_path / "cut.parquet", whole.read_bytes()[: whole.stat().st_size // 2])
    for call in (lambda: plan_parts(cut), lambda: count_corpus([whole, cut], NAMES)):
        with pytest.raises(ValueError, match=r"cut\.parquet: cannot read the parquet footer.*truncated, corrupt"):
            call()


def corrupt_row_group(path: Path, group: int) -> None:
    """Overwrite one row group's column chunk with 0xff bytes (its footer entry stays intact)."""
    column = pq.ParquetFile(path).metadata.row_group(group).column(0)
    start = column.dictionary_page_offset if column.has_dictionary_page else column.data_page_offset
    data = bytearray(path.read_bytes())
    data[start:start + column.total_compressed_size] = b"\xff" * column.total_compressed_size
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("chunk_size", [65_536, 7])
def test_corrupt_parquet_row_group_is_counted_row_by_row(tmp_path: Path, chunk_size: int) -> None:
    """Before: an OSError without the file name ended the run. Now: its 10 rows reported, the rest counted."""
    path = tmp_path / "rg.parquet"
    pq.write_table(pa.table({"caption": CAPTIONS, "id": [f"k{i}" for i in range(30)]}), path, row_group_size=10)
    corrupt_row_group(path, 1)
    result = count_corpus(path, NAMES, key_column="id", keep_hits=True, chunk_size=chunk_size)
    assert result.bad_rows.by_reason == {"unreadable parquet data": 10}
    assert "rg.parquet row group 1 (rows 10-19)" in result.bad_rows.examples[0].where
    assert result.n_captions + result.bad_rows.count == len(CAPTIONS)
    assert text_counts(result) == counts_of(CAPTIONS[:10] + CAPTIONS[20:])
    assert list(result.hits.keys) == [f"k{i}" for i in [*range(10), *range(20, 30)]]


@pytest.mark.parametrize("sep", [",", "\t"])
def test_csv_and_tsv_cut_inside_the_last_line(tmp_path: Path, sep: str) -> None:
    """A cut that loses a field is a bad row naming its line (as before); the other rows count."""
    whole = csv_bytes(CAPTIONS, sep)
    name = "cut.csv" if sep == "," else "cut.tsv"
    path = write(tmp_path / name, whole[: whole.rindex(sep.encode())])  # "a dog number 9" without its id
    result = count_corpus(path, NAMES, key_column="id")
    assert result.bad_rows.by_reason == {"1 fields, expected 2": 1}
    assert result.bad_rows.examples[0].where == f"{name} line 31"
    assert result.n_captions + result.bad_rows.count == len(CAPTIONS)
    assert text_counts(result) == counts_of(CAPTIONS[:-1])


@pytest.mark.parametrize("last", ['"a sha', 'a shark,"2'])
def test_csv_cut_inside_a_quoted_last_field(tmp_path: Path, last: str) -> None:
    """Before: the cut caption counted as a good row. Now: reported as a truncated last line."""
    one_column = "," not in last
    head = "caption\na cat\na dog\n" if one_column else "caption,id\na cat,0\na dog,1\n"
    path = write(tmp_path / "q.csv", (head + last).encode())
    result = count_corpus(path, NAMES, key_column=None if one_column else "id")
    assert result.bad_rows.by_reason == {"truncated last line (ends inside a quoted field)": 1}
    assert result.bad_rows.examples[0].where == "q.csv line 4" and result.bad_rows.examples[0].text == last
    assert result.n_captions == 2 and text_counts(result) == counts_of(["a cat", "a dog"])


@pytest.mark.parametrize("sep", [",", "\t"])
def test_truncated_gzip_csv_and_tsv_keep_the_rows_before_the_cut(tmp_path: Path, sep: str) -> None:
    """Before: EOFError, no file name, nothing counted. Now: rows before the cut count, the cut is reported once."""
    captions = [CAPTIONS[i % len(CAPTIONS)] for i in range(3000)]
    packed = gzip.compress(csv_bytes(captions, sep))
    name = "cut.csv.gz" if sep == "," else "cut.tsv.gz"
    path = write(tmp_path / name, packed[: len(packed) // 2])
    result = count_corpus(path, NAMES, key_column="id", keep_hits=True)
    damage = [e for e in result.bad_rows.examples if e.reason == "truncated or corrupt file"]
    assert result.bad_rows.by_reason["truncated or corrupt file"] == 1 and "EOFError" in damage[0].text
    assert damage[0].where.startswith(f"{name} at line ")
    n = result.n_captions
    assert 100 < n < len(captions)  # what was readable was read: the rows before the cut, in order
    assert list(result.hits.keys) == [str(i) for i in range(n)]
    assert text_counts(result) == counts_of(captions[:n])
    assert set(result.bad_rows.by_reason) <= {"truncated or corrupt file", "1 fields, expected 2"}


def test_gzip_cut_before_the_header_stops_at_planning(tmp_path: Path) -> None:
    """Cut so early that not even the header decompresses: an error naming the file, before any counting."""
    path = write(tmp_path / "tiny.csv.gz", gzip.compress(csv_bytes(CAPTIONS))[:12])
    with pytest.raises(ValueError, match=r"tiny\.csv\.gz: cannot read the header line.*truncated or corrupt"):
        count_corpus(path, NAMES)


def test_truncated_shard_through_the_reader(tmp_path: Path) -> None:
    """A shard cut mid-member: counted once, its complete samples read (the engine's test covers the rest)."""
    data = shard([(f"s{i}", {"jpg": b"\xff\xd8fake", "txt": c.encode()}) for i, c in enumerate(CAPTIONS)])
    path = write(tmp_path / "cut.tar", data[: 512 * 9 + 100])
    captions, bad = read_reader(path)
    assert bad.by_reason == {"truncated or corrupt shard": 1}
    assert captions == CAPTIONS[: len(captions)] and 0 < len(captions) < len(CAPTIONS)


# --------------------------------------------------------------------------------------------- encodings
LATIN1 = ["un requin été", "a shark", "un chat à la plage", "a cat", "a dog"]


@pytest.mark.parametrize("sep", [",", "\t"])
def test_latin1_captions_are_bad_rows_with_an_encoding_hint(tmp_path: Path, sep: str) -> None:
    """Each latin-1 caption is one bad row with its text; the UTF-8-compatible rows count."""
    ext = "csv" if sep == "," else "tsv"
    path = write(tmp_path / f"l1.{ext}", csv_bytes(LATIN1, sep).decode().encode("latin-1"))
    result = count_corpus(path, NAMES, key_column="id")
    assert result.bad_rows.by_reason == {"invalid UTF-8": 2}
    assert result.n_captions + result.bad_rows.count == len(LATIN1)
    assert text_counts(result) == counts_of(["a shark", "a cat", "a dog"])
    assert result.bad_rows.examples[0].text == "un requin \ufffdt\ufffd"
    assert "re-encode it as UTF-8" in str(result.bad_rows)


def test_latin1_key_is_a_bad_row_not_a_crash(tmp_path: Path) -> None:
    """Before: ArrowInvalid 'invalid UTF8 data' without the file name stopped the whole file."""
    data = "caption,id\na shark,k0\na cat,clé\na dog,k2\n".encode("latin-1")
    path = write(tmp_path / "key.csv", data)
    for keep_hits in (False, True):  # the same good rows whether or not keys are wanted
        result = count_corpus(path, NAMES, key_column="id", keep_hits=keep_hits)
        assert result.bad_rows.by_reason == {"invalid UTF-8 key": 1} and result.n_captions == 2
        assert text_counts(result) == counts_of(["a shark", "a dog"])
    assert list(result.hits.keys) == ["k0", "k2"]
    assert result.bad_rows.examples[0].where == "key.csv data row 1 (key None)"


def test_latin1_header_stops_at_planning_with_the_fix(tmp_path: Path) -> None:
    """Before: a bare UnicodeDecodeError from pyarrow's column names."""
    path = write(tmp_path / "head.csv", "légende,id\na shark,0\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"head\.csv: the header line is not valid UTF-8.*iconv"):
        count_corpus(path, NAMES, column="légende")


def test_latin1_bytes_in_a_parquet_binary_column(tmp_path: Path) -> None:
    """Latin-1 bytes in a parquet binary caption column: one bad row each, named by row (as before)."""
    path = tmp_path / "b.parquet"
    pq.write_table(pa.table({"caption": pa.array([c.encode("latin-1") for c in LATIN1], pa.binary())}), path)
    result = count_corpus(path, NAMES)
    assert result.bad_rows.by_reason == {"invalid UTF-8": 2} and result.n_captions == 3
    assert [e.where for e in result.bad_rows.examples] == ["b.parquet row 0", "b.parquet row 2"]


def test_latin1_caption_member_in_a_shard(tmp_path: Path) -> None:
    """Latin-1 caption members: one bad row each, named by sample key (as before)."""
    path = write(tmp_path / "l1.tar", shard([(f"s{i}", {"txt": c.encode("latin-1")}) for i, c in enumerate(LATIN1)]))
    result = count_corpus(path, NAMES, keep_hits=True)
    assert result.bad_rows.by_reason == {"invalid UTF-8": 2}
    assert [e.where for e in result.bad_rows.examples] == ["l1.tar key s0", "l1.tar key s2"]
    assert list(result.hits.keys) == ["s1", "s3", "s4"]


# ---------------------------------------------------------------------------------- missing caption column
def test_missing_caption_column_stops_at_planning(tmp_path: Path) -> None:
    """Parquet, CSV and TSV: the error names the file and its columns, before any counting."""
    pq.write_table(pa.table({"text": CAPTIONS}), tmp_path / "t.parquet")
    write(tmp_path / "t.csv", b"text,id\na shark,0\n")
    write(tmp_path / "t.tsv", b"text\tid\na shark\t0\n")
    for name in ("t.parquet", "t.csv", "t.tsv"):
        with pytest.raises(ValueError, match=rf"{name} lacks columns \['caption'\]; it has \['text'.*column="):
            plan_parts(tmp_path / name)
    assert count_corpus(tmp_path / "t.csv", NAMES, column="text").n_captions == 1


def test_shard_without_any_caption_member_stops_naming_its_members(tmp_path: Path) -> None:
    """Before: every sample a 'missing caption' bad row and zero counts. Now: an error with the fix."""
    samples = [(f"s{i}", {"jpg": b"\xff\xd8", "caption": c.encode()}) for i, c in enumerate(CAPTIONS)]
    path = write(tmp_path / "other.tar", shard(samples))
    with pytest.raises(ValueError, match=r"other\.tar: none of its 30 samples has a 'txt' caption member.*"
                                         r"'caption', 'jpg'.*column="):
        count_corpus(path, NAMES)
    result = count_corpus(path, NAMES, column="caption")
    assert result.bad_rows.count == 0 and text_counts(result) == counts_of(CAPTIONS)


def test_some_samples_without_caption_are_bad_rows(tmp_path: Path) -> None:
    """A shard where only some samples lack the caption member: each is a bad row (as before), the run goes on."""
    samples = [(f"s{i}", {"jpg": b"x", **({} if i % 10 == 3 else {"txt": c.encode()})})
               for i, c in enumerate(CAPTIONS)]
    result = count_corpus(write(tmp_path / "some.tar", shard(samples)), NAMES)
    assert result.bad_rows.by_reason == {"missing caption": 3}
    assert result.n_captions + result.bad_rows.count == len(CAPTIONS)


# ------------------------------------------------------------------------------------------ image folders
def image_bytes(fmt: str, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A 32x32 noisy image encoded as ``fmt`` (PNG or JPEG)."""
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    pixels = (rng.random((32, 32, 3)) * 40 + np.array(colour) * 0.8).astype(np.uint8)
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


def image_folder(root: Path) -> list[str]:
    """Two classes of three good images each, plus four files that do not decode (returned, root-relative)."""
    png, jpeg = image_bytes("PNG"), image_bytes("JPEG")
    for i in range(3):
        write(root / "red" / f"ok{i}.png", png)
        write(root / "great_white" / f"ok{i}.jpg", jpeg)
    bad = {"red/empty.png": b"", "red/notes.png": b"not an image at all",
           "great_white/half.jpg": jpeg[: len(jpeg) // 2], "great_white/half.png": png[: len(png) // 2]}
    for name, data in bad.items():
        write(root / name, data)
    write(root / "red" / "readme.txt", b"not an image suffix: ignored, as by torchvision")
    return list(bad)


def test_image_folder_with_undecodable_images_stops_naming_them(tmp_path: Path) -> None:
    """Before: the paths were returned, and encoding failed halfway through an evaluation."""
    bad = image_folder(tmp_path / "imgs")
    with pytest.raises(ValueError) as err:
        read_image_folder(tmp_path / "imgs")
    message = str(err.value)
    assert f"4 of 10 image files under {tmp_path / 'imgs'} do not decode" in message
    assert all(name in message for name in bad) and "truncated" in message
    assert "on_bad_image='skip'" in message


def test_image_folder_skip_leaves_them_out_and_says_so(tmp_path: Path) -> None:
    """on_bad_image='skip': a warning with the count, the good images kept, the bad ones listed."""
    bad = image_folder(tmp_path / "imgs")
    with pytest.warns(UserWarning, match="4 of 10 image files.*do not decode.*left out"):
        data = read_image_folder(tmp_path / "imgs", on_bad_image="skip")
    assert len(data) == 6 and len(data) + len(data.skipped) == 10
    assert sorted(Path(p).relative_to(tmp_path / "imgs").as_posix() for p, _ in data.skipped) == sorted(bad)
    assert data.classnames == ["great white", "red"] and data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert all(Path(p).name.startswith("ok") for p in data.images)


def test_image_folder_unchecked_keeps_every_path(tmp_path: Path) -> None:
    """on_bad_image='unchecked': the old behaviour, no decoding; an unknown mode is refused."""
    image_folder(tmp_path / "imgs")
    data = read_image_folder(tmp_path / "imgs", on_bad_image="unchecked")
    assert len(data) == 10 and data.skipped == []
    with pytest.raises(ValueError, match="on_bad_image must be one of"):
        read_image_folder(tmp_path / "imgs", on_bad_image="ignore")


def test_image_folder_where_nothing_decodes_stops_even_when_skipping(tmp_path: Path) -> None:
    """Skipping every image would leave an empty set: an error naming the file instead."""
    write(tmp_path / "imgs" / "cat" / "a.jpg", b"")
    with pytest.raises(ValueError, match="1 of 1 image files.*cat/a.jpg"):
        read_image_folder(tmp_path / "imgs", on_bad_image="skip")


# --------------------------------------------------------------------------------- well-formed, unchanged
@pytest.mark.parametrize("ext", ["csv", "tsv", "parquet", "tar", "csv.gz"])
def test_well_formed_files_give_the_table_counts_and_no_bad_rows(tmp_path: Path, ext: str) -> None:
    """The fault checks change nothing on good input: counts, keys and bad rows as for the in-memory table."""
    keys = [f"k{i}" for i in range(len(CAPTIONS))]
    path = tmp_path / f"ok.{ext}"
    if ext == "parquet":
        pq.write_table(pa.table({"caption": CAPTIONS, "id": keys}), path, row_group_size=7)
    elif ext == "tar":
        write(path, shard([(k, {"jpg": b"x", "txt": c.encode()}) for k, c in zip(keys, CAPTIONS)]))
    else:
        frame = pd.DataFrame({"caption": CAPTIONS, "id": keys})
        data = frame.to_csv(index=False, sep="\t" if ext == "tsv" else ",").encode()
        write(path, gzip.compress(data) if ext.endswith(".gz") else data)
    result = count_corpus(path, NAMES, key_column=None if ext == "tar" else "id", keep_hits=True, chunk_size=8)
    assert result.bad_rows.count == 0 and str(result.bad_rows) == "no malformed rows"
    assert text_counts(result) == counts_of(CAPTIONS) and list(result.hits.keys) == keys
