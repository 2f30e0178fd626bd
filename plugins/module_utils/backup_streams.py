# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Streaming readers for mongodump backups: gzip, BSON documents and archives.

Everything here reads from an iterator of byte chunks and keeps at most one
document (or one inflate step) in memory, so a backup of any size streams
through in bounded memory. Its speed is the slower of the download and the
CPU work of hashing and inflating; bench/backup measures both.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Iterable, Iterator

try:
    import bson
    from bson import json_util
    from bson.errors import InvalidBSON

    HAS_BSON = True
except ImportError:  # reported by the caller, which names the package to install
    HAS_BSON = False

GZIP_MAGIC = b"\x1f\x8b"
# mongodump writes the archive's magic number 0x8199e26d little-endian.
ARCHIVE_MAGIC = b"\x6d\xe2\x99\x81"
TERMINATOR = b"\xff\xff\xff\xff"
# A BSON document holds at most 16 MiB; the server allows 16 KiB more for its
# own records. A larger length is damage, and reading it would exhaust memory.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024 + 16 * 1024
MAX_METADATA_BYTES = 16 * 1024 * 1024
# Inflated bytes per step: bounds memory when a small input inflates hugely.
INFLATE_STEP = 1024 * 1024
# zlib's window bits for the gzip container.
GZIP_WBITS = 31


class ContentError(Exception):
    """A backup object's bytes are damaged; the message says what and where."""


class GzipError(ContentError):
    """A gzip stream is corrupt or ends before its end marker."""


class BsonError(ContentError):
    """A BSON document is cut off or does not decode."""


class ArchiveError(ContentError):
    """A mongodump archive does not follow the archive format."""


class ChunkReader:
    """``read``, ``peek`` and ``drain`` over an iterator of byte chunks."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""
        self._pos = 0
        self.offset = 0

    def _fill(self, size: int) -> None:
        available = len(self._buffer) - self._pos
        if available >= size:
            return
        parts = [self._buffer[self._pos :]]
        for chunk in self._chunks:
            parts.append(chunk)
            available += len(chunk)
            if available >= size:
                break
        self._buffer = b"".join(parts)
        self._pos = 0

    def peek(self, size: int) -> bytes:
        """Return up to ``size`` bytes without consuming them."""
        self._fill(size)
        return self._buffer[self._pos : self._pos + size]

    def read(self, size: int) -> bytes:
        """Return up to ``size`` bytes; fewer only at the end of the stream."""
        self._fill(size)
        data = self._buffer[self._pos : self._pos + size]
        self._pos += len(data)
        self.offset += len(data)
        return data

    def chunks(self) -> Iterator[bytes]:
        """Yield the rest of the stream, the buffered bytes first."""
        rest = self._buffer[self._pos :]
        self._buffer, self._pos = b"", 0
        if rest:
            self.offset += len(rest)
            yield rest
        for chunk in self._chunks:
            self.offset += len(chunk)
            yield chunk

    def drain(self) -> int:
        """Read the stream to its end; return how many bytes that was."""
        return sum(len(chunk) for chunk in self.chunks())


def gunzip(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Inflate a gzip stream of one or more members; insist on its last trailer."""
    inflater = zlib.decompressobj(wbits=GZIP_WBITS)
    consumed = 0
    for chunk in chunks:
        data = chunk
        while True:
            if inflater.eof and data:
                inflater = zlib.decompressobj(wbits=GZIP_WBITS)
            out, rest = _inflate(inflater, data, consumed)
            consumed += len(data) - len(rest)
            data = rest
            if out:
                yield out
            # A full step may leave output pending inside zlib, even with no input.
            if not data and len(out) < INFLATE_STEP:
                break
    if consumed == 0:
        raise GzipError("the object is empty: no gzip data at all")
    if not inflater.eof:
        raise GzipError(
            f"the gzip stream ends after {consumed:,} compressed bytes without its "
            "end marker: the object is truncated"
        )


def _inflate(inflater, data: bytes, consumed: int) -> tuple:
    """Inflate one bounded step; return the output and the input left over."""
    try:
        out = inflater.decompress(data, INFLATE_STEP)
    except zlib.error as error:
        raise GzipError(
            f"the gzip data is corrupt near compressed byte {consumed:,} ({error})"
        ) from None
    rest = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
    return out, rest


def read_document(reader: ChunkReader, number: int) -> bytes | None:
    """Read the next BSON document's bytes; None at a clean end of the stream."""
    start = reader.offset
    head = reader.read(4)
    if not head:
        return None
    if len(head) < 4:
        raise BsonError(
            f"document {number:,} is cut off at byte {start:,}: only {len(head)} "
            "of its 4 length bytes are there"
        )
    size = int.from_bytes(head, "little", signed=True)
    if size < 5 or size > MAX_DOCUMENT_BYTES:
        raise BsonError(
            f"document {number:,} at byte {start:,} declares an impossible length "
            f"of {size:,} bytes"
        )
    body = reader.read(size - 4)
    if len(body) < size - 4:
        raise BsonError(
            f"document {number:,} is cut off at byte {start:,}: it declares "
            f"{size:,} bytes, only {len(body) + 4:,} are there"
        )
    return head + body


def check_document(raw: bytes, number: int, offset: int) -> None:
    """Decode ``raw`` completely, or raise BsonError saying which document failed."""
    try:
        bson.decode(raw)
    except (InvalidBSON, ValueError, OverflowError) as error:
        raise BsonError(
            f"document {number:,} at byte {offset:,} does not decode: {error}"
        ) from None


def iter_documents(reader: ChunkReader) -> Iterator[bytes]:
    """Yield every document of a BSON stream, each checked to decode."""
    number = 1
    while True:
        offset = reader.offset
        raw = read_document(reader, number)
        if raw is None:
            return
        check_document(raw, number, offset)
        yield raw
        number += 1


def parse_metadata(reader: ChunkReader) -> dict:
    """Read a mongodump ``.metadata.json`` (extended JSON) into a mapping."""
    text = reader.read(MAX_METADATA_BYTES + 1)
    if len(text) > MAX_METADATA_BYTES:
        raise ContentError(
            f"the metadata is larger than {MAX_METADATA_BYTES:,} bytes; "
            "it cannot be mongodump metadata"
        )
    return metadata_from_text(text)


def metadata_from_text(text: bytes | str) -> dict:
    """Parse collection metadata in extended JSON, or raise ContentError."""
    try:
        document = json_util.loads(text)
    except (ValueError, TypeError) as error:
        raise ContentError(
            f"the metadata is not valid extended JSON: {error}"
        ) from None
    if not isinstance(document, dict):
        raise ContentError("the metadata is not a JSON object")
    return document


@dataclass
class Namespace:
    """One collection of a mongodump archive and what its blocks held."""

    database: str
    collection: str
    metadata: dict | None = None
    declared_bytes: int | None = None
    documents: int = 0
    bytes: int = 0
    eof: bool = False

    @property
    def name(self) -> str:
        """The namespace, ``database.collection``."""
        return f"{self.database}.{self.collection}"


@dataclass
class ArchiveReader:
    """Reads mongodump's ``--archive`` format: prelude, metadata, interleaved blocks.

    The format: the magic number, a prelude document, one document per
    collection (``db``, ``collection``, ``metadata`` as extended JSON, ``size``)
    and a terminator; then blocks, each a namespace header document followed
    by that collection's documents and a terminator, and for every namespace a
    header with ``EOF: true`` followed by a terminator.
    """

    reader: ChunkReader
    prelude: dict = field(default_factory=dict)
    namespaces: dict = field(default_factory=dict)
    _number: int = 0

    def read_header(self) -> None:
        """Read the magic number, the prelude and the collection metadata."""
        magic = self.reader.read(4)
        if magic != ARCHIVE_MAGIC:
            raise ArchiveError(
                f"the object does not start with the mongodump archive magic number "
                f"(found {magic.hex() or 'nothing'})"
            )
        self.prelude = self._document("the prelude")
        while self.reader.peek(4) != TERMINATOR:
            self._declare(self._document("a collection's metadata"))
        self.reader.read(4)

    def _declare(self, document: dict) -> None:
        namespace = Namespace(
            database=str(document.get("db", "")),
            collection=str(document.get("collection", "")),
            declared_bytes=document.get("size"),
        )
        text = document.get("metadata")
        if text:
            namespace.metadata = metadata_from_text(text)
        self.namespaces[namespace.name] = namespace

    def documents(self) -> Iterator[tuple]:
        """Yield ``(namespace, raw document)`` for every document of every block."""
        while self.reader.peek(1):
            header = self._document("a block header")
            namespace = self._namespace(header)
            if header.get("EOF"):
                namespace.eof = True
                self._terminator(namespace.name)
                continue
            yield from self._block(namespace)

    def _block(self, namespace: Namespace) -> Iterator[tuple]:
        while self.reader.peek(4) != TERMINATOR:
            self._number += 1
            offset = self.reader.offset
            raw = read_document(self.reader, self._number)
            if raw is None:
                raise ArchiveError(
                    f"the archive ends inside a block of {namespace.name}: truncated"
                )
            check_document(raw, self._number, offset)
            namespace.documents += 1
            namespace.bytes += len(raw)
            yield namespace.name, raw
        self.reader.read(4)

    def _namespace(self, header: dict) -> Namespace:
        name = f"{header.get('db', '')}.{header.get('collection', '')}"
        if name not in self.namespaces:
            database, _sep, collection = name.partition(".")
            self.namespaces[name] = Namespace(database=database, collection=collection)
        return self.namespaces[name]

    def _terminator(self, name: str) -> None:
        if self.reader.read(4) != TERMINATOR:
            raise ArchiveError(f"the end record of {name} has no terminator")

    def _document(self, what: str) -> dict:
        offset = self.reader.offset
        try:
            raw = read_document(self.reader, self._number + 1)
        except BsonError as error:
            raise ArchiveError(f"{what} is damaged: {error}") from None
        if raw is None:
            raise ArchiveError(f"the archive ends where {what} should be: truncated")
        try:
            return bson.decode(raw)
        except (InvalidBSON, ValueError) as error:
            raise ArchiveError(
                f"{what} at byte {offset:,} does not decode: {error}"
            ) from None

    def unfinished(self) -> list:
        """Name the namespaces whose end record never came."""
        return sorted(name for name, ns in self.namespaces.items() if not ns.eof)
