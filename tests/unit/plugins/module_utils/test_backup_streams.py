"""Streaming readers: gzip to its end, BSON documents, and mongodump archives."""

from __future__ import annotations

import gzip
import os
import zlib

import bson
import pytest

from ansible_collections.trm.maintenance.plugins.module_utils import (
    backup_streams as streams,
)
from ansible_collections.trm.maintenance.plugins.module_utils.backup_streams import (
    ArchiveError,
    ArchiveReader,
    BsonError,
    ChunkReader,
    ContentError,
    GzipError,
    gunzip,
    iter_documents,
    parse_metadata,
)
from tests.unit.plugins.module_utils.backup_builders import (
    Collection,
    crc64,
    gz,
    write_archive,
)

DOCS = [
    bson.encode({"_id": n, "name": f"user-{n}", "pad": "x" * (n % 50)})
    for n in range(300)
]


def pieces(data: bytes, size: int) -> list[bytes]:
    """Cut ``data`` into chunks of ``size`` bytes, as a download delivers it."""
    return [data[start : start + size] for start in range(0, len(data), size)]


def inflate(data: bytes, size: int = 7) -> bytes:
    return b"".join(gunzip(pieces(data, size)))


# ChunkReader


def test_reader_reads_across_chunk_boundaries_and_counts_offset():
    reader = ChunkReader([b"ab", b"", b"cdef", b"g"])

    assert reader.peek(3) == b"abc"
    assert reader.read(5) == b"abcde"
    assert reader.offset == 5
    assert reader.read(10) == b"fg"
    assert reader.read(1) == b""
    assert reader.offset == 7


def test_reader_chunks_hand_out_the_buffered_bytes_first():
    reader = ChunkReader([b"abcd", b"efgh"])
    reader.read(1)
    reader.peek(6)

    assert b"".join(reader.chunks()) == b"bcdefgh"
    assert reader.offset == 8


# gzip


@pytest.mark.parametrize("chunk", [1, 5, 4096, 10**7])
def test_gunzip_inflates_whatever_the_chunk_size(chunk):
    raw = os.urandom(2000) + b"a" * 50000

    assert inflate(gz(raw), chunk) == raw


def test_gunzip_reads_every_member_of_a_concatenated_stream():
    assert inflate(gz(b"first ") + gz(b"second"), 3) == b"first second"


def test_gunzip_bounds_each_step_of_a_highly_compressible_stream():
    raw = b"\0" * (5 * streams.INFLATE_STEP + 17)

    steps = list(gunzip([gz(raw)]))

    assert b"".join(steps) == raw
    assert max(len(step) for step in steps) <= streams.INFLATE_STEP


def test_gunzip_reports_a_truncated_stream_with_its_length():
    data = gz(os.urandom(5000))[:-300]

    with pytest.raises(GzipError, match=rf"ends after {len(data):,} compressed bytes"):
        inflate(data)


def test_gunzip_reports_a_trailer_whose_crc_does_not_match():
    data = bytearray(gz(b"hello world" * 100))
    data[-8] ^= 0xFF  # the CRC32 of the trailer

    with pytest.raises(GzipError, match="corrupt"):
        inflate(bytes(data))


def test_gunzip_reports_an_empty_object():
    with pytest.raises(GzipError, match="empty"):
        inflate(b"")


def test_gunzip_reports_garbage_after_the_last_member():
    with pytest.raises(GzipError, match="corrupt"):
        inflate(gz(b"data") + b"garbage!")


# BSON documents


def test_documents_are_yielded_one_by_one_with_their_bytes():
    reader = ChunkReader(pieces(b"".join(DOCS), 13))

    assert list(iter_documents(reader)) == DOCS


def test_a_document_cut_in_its_body_names_its_number_and_offset():
    data = b"".join(DOCS)
    offset = sum(len(doc) for doc in DOCS[:-1])

    with pytest.raises(BsonError) as caught:
        list(iter_documents(ChunkReader([data[:-10]])))

    assert str(caught.value) == (
        f"document 300 is cut off at byte {offset:,}: it declares "
        f"{len(DOCS[-1])} bytes, only {len(DOCS[-1]) - 10} are there"
    )


def test_a_document_cut_in_its_length_is_reported():
    data = b"".join(DOCS[:2]) + DOCS[2][:3]

    with pytest.raises(BsonError, match=r"document 3 is cut off .* only 3 of its 4"):
        list(iter_documents(ChunkReader([data])))


@pytest.mark.parametrize("size", [0, 4, -1, streams.MAX_DOCUMENT_BYTES + 1])
def test_an_impossible_length_is_refused_before_reading_it(size):
    data = DOCS[0] + size.to_bytes(4, "little", signed=True) + b"\0" * 20

    with pytest.raises(BsonError, match=f"document 2 at byte {len(DOCS[0])} declares"):
        list(iter_documents(ChunkReader([data])))


def test_a_document_that_does_not_decode_is_named():
    broken = bytearray(DOCS[1])
    broken[4] = 0x7F  # an element type that does not exist

    with pytest.raises(BsonError, match=r"document 2 at byte .* does not decode"):
        list(iter_documents(ChunkReader([DOCS[0] + bytes(broken)])))


def test_an_empty_bson_file_holds_no_documents():
    assert list(iter_documents(ChunkReader([]))) == []


# metadata


def test_metadata_reads_canonical_extended_json():
    text = b'{"indexes":[{"v":{"$numberInt":"2"},"key":{"_id":{"$numberInt":"1"}}}]}'

    assert parse_metadata(ChunkReader([text])) == {
        "indexes": [{"v": 2, "key": {"_id": 1}}]
    }


@pytest.mark.parametrize("text", [b"{not json", b"[1, 2]"])
def test_metadata_that_is_not_an_object_is_a_content_error(text):
    with pytest.raises(ContentError, match="metadata"):
        parse_metadata(ChunkReader([text]))


# archives


def _collections() -> list[Collection]:
    users = Collection("trm", "users", DOCS[:200], {"indexes": [{"key": {"_id": 1}}]})
    jobs = Collection("trm", "jobs", DOCS[200:], {"indexes": [{"key": {"_id": 1}}]})
    empty = Collection("trm", "empty", [], {"indexes": []})
    return [users, jobs, empty]


def _read(archive: bytes, chunk: int = 101) -> tuple:
    reader = ArchiveReader(ChunkReader(pieces(archive, chunk)))
    reader.read_header()
    return reader, list(reader.documents())


def test_archive_yields_every_document_of_interleaved_blocks():
    reader, found = _read(write_archive(_collections(), block=30))

    assert reader.prelude["version"] == "0.1"
    assert [doc for name, doc in found if name == "trm.users"] == DOCS[:200]
    assert [doc for name, doc in found if name == "trm.jobs"] == DOCS[200:]
    assert [name for name, _doc in found[:31]] == ["trm.users"] * 30 + ["trm.jobs"]
    assert reader.unfinished() == []


def test_archive_namespaces_carry_metadata_counts_and_declared_sizes():
    reader, _found = _read(write_archive(_collections()))
    users = reader.namespaces["trm.users"]

    assert sorted(reader.namespaces) == ["trm.empty", "trm.jobs", "trm.users"]
    assert (users.documents, users.bytes) == (200, sum(map(len, DOCS[:200])))
    assert users.declared_bytes == users.bytes
    assert users.metadata == {"indexes": [{"key": {"_id": 1}}]}
    assert reader.namespaces["trm.empty"].eof is True


def test_archive_without_end_records_names_the_unfinished_collections():
    reader, _found = _read(write_archive(_collections(), end_records=False))

    assert reader.unfinished() == ["trm.empty", "trm.jobs", "trm.users"]


def test_archive_cut_inside_a_block_is_an_archive_error():
    archive = write_archive(_collections(), block=50)

    with pytest.raises(BsonError, match=r"^document \d+ is cut off at byte"):
        _read(archive[: len(archive) // 2])


def test_archive_with_a_wrong_magic_number_is_refused():
    with pytest.raises(ArchiveError, match=r"magic number \(found 00010203\)"):
        _read(b"\x00\x01\x02\x03" + bytes(100))


def test_archive_cut_in_its_header_is_reported():
    archive = write_archive(_collections())

    with pytest.raises(ArchiveError, match=r"metadata is damaged|ends where"):
        _read(archive[:120])


def test_gzipped_archive_streams_through_gunzip():
    archive = write_archive(_collections())
    reader = ArchiveReader(ChunkReader(gunzip(pieces(gzip.compress(archive), 64))))
    reader.read_header()

    assert sum(1 for _item in reader.documents()) == len(DOCS)


def test_the_writer_crc_is_go_crc64_ecma():
    # The check value of CRC-64/XZ (Go's crc64 with the ECMA table).
    assert crc64(b"123456789") == 0x995DC9BBDF1939FA
    assert zlib.crc32(b"123456789") == 0xCBF43926
