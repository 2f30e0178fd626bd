"""Builders of mongodump backups for tests: directory files and --archive streams.

The archive writer follows mongodump's published archive format: the magic
number 0x8199e26d (little-endian), a prelude document, one metadata document
per collection, a terminator, then namespace blocks (a header document, the
collection's documents, a terminator), interleaved across collections, and for
each collection an EOF header carrying the CRC-64 (ECMA) of its documents,
followed by a terminator.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import struct
from dataclasses import dataclass, field

import bson
from bson import json_util
from bson.int64 import Int64

MAGIC = struct.pack("<I", 0x8199E26D)
TERMINATOR = b"\xff\xff\xff\xff"
CRC64_ECMA = 0xC96C5795D7870F42
MASK64 = (1 << 64) - 1


def _crc64_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _bit in range(8):
            crc = (crc >> 1) ^ CRC64_ECMA if crc & 1 else crc >> 1
        table.append(crc)
    return table


CRC_TABLE = _crc64_table()


def crc64(data: bytes, crc: int = 0) -> int:
    """CRC-64 with the ECMA polynomial, as Go's hash/crc64 computes it."""
    crc = ~crc & MASK64
    for byte in data:
        crc = CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return ~crc & MASK64


@dataclass
class Collection:
    """One collection to dump: its raw documents and its metadata."""

    database: str
    name: str
    documents: list[bytes]
    metadata: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        """The total size of its documents."""
        return sum(len(doc) for doc in self.documents)


def metadata_text(metadata: dict) -> str:
    """Metadata as canonical extended JSON, as mongodump writes it."""
    return json_util.dumps(
        metadata, json_options=json_util.CANONICAL_JSON_OPTIONS, separators=(",", ":")
    )


def write_archive(
    collections: list[Collection],
    *,
    block: int = 250,
    end_records: bool = True,
) -> bytes:
    """Return a mongodump archive of ``collections`` with interleaved blocks."""
    parts = [MAGIC, _prelude()]
    for coll in collections:
        parts.append(
            bson.encode(
                {
                    "db": coll.database,
                    "collection": coll.name,
                    "metadata": metadata_text(coll.metadata),
                    "size": coll.size,
                    "type": "collection",
                }
            )
        )
    parts.append(TERMINATOR)
    parts += _blocks(collections, block)
    if end_records:
        parts += [_end_record(coll) for coll in collections]
    return b"".join(parts)


def _prelude() -> bytes:
    return bson.encode(
        {
            "concurrent_collections": 4,
            "version": "0.1",
            "server_version": "7.0.14",
            "tool_version": "100.10.0",
        }
    )


def _blocks(collections: list[Collection], block: int) -> list[bytes]:
    """Round-robin blocks of ``block`` documents, as concurrent dumps write them."""
    parts, start = [], 0
    while any(start < len(coll.documents) for coll in collections):
        for coll in collections:
            docs = coll.documents[start : start + block]
            if docs:
                parts += [_header(coll, eof=False, crc=0), *docs, TERMINATOR]
        start += block
    return parts


def _end_record(coll: Collection) -> bytes:
    crc = 0
    for doc in coll.documents:
        crc = crc64(doc, crc)
    return _header(coll, eof=True, crc=crc) + TERMINATOR


def _header(coll: Collection, *, eof: bool, crc: int) -> bytes:
    signed = crc - (1 << 64) if crc >= 1 << 63 else crc
    return bson.encode(
        {"db": coll.database, "collection": coll.name, "EOF": eof, "CRC": Int64(signed)}
    )


def split_documents(raw: bytes) -> list[bytes]:
    """Split a BSON file's bytes into its documents."""
    docs, offset = [], 0
    while offset < len(raw):
        size = struct.unpack_from("<i", raw, offset)[0]
        docs.append(raw[offset : offset + size])
        offset += size
    return docs


def gz(raw: bytes, *, level: int = 6) -> bytes:
    """Gzip ``raw`` the way mongodump does (no file name, no time)."""
    return gzip.compress(raw, compresslevel=level, mtime=0)


def sha256_b64(data: bytes) -> str:
    """The SHA-256 of ``data`` as S3 stores it (base64)."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()
