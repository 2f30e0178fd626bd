# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One streaming pass per backup object: re-hash, inflate, decode, restore.

Each object is downloaded once. Its bytes go through the digest S3 stored for
it, then through gzip when it is gzipped, then through the BSON or archive
reader, and, for a restore test, into the scratch database in batches.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterator
from urllib.parse import unquote

from ansible_collections.trm.maintenance.plugins.module_utils.backup_digest import (
    MATCH,
    MISMATCH,
    UNVERIFIABLE,
    Digester,
    Expected,
    expected_from_head,
)
from ansible_collections.trm.maintenance.plugins.module_utils.backup_restore import (
    PROTECTED_DATABASES,
    MongoProblem,
    RestoreTarget,
)
from ansible_collections.trm.maintenance.plugins.module_utils.backup_s3 import (
    S3Object,
    S3Problem,
    S3Store,
)
from ansible_collections.trm.maintenance.plugins.module_utils.backup_streams import (
    ARCHIVE_MAGIC,
    GZIP_MAGIC,
    ArchiveError,
    ArchiveReader,
    ChunkReader,
    ContentError,
    GzipError,
    Namespace,
    gunzip,
    iter_documents,
    parse_metadata,
)

BSON, METADATA, OPLOG, ARCHIVE, OTHER = "bson", "metadata", "oplog", "archive", "other"
DIRECTORY_FILE = re.compile(
    r"^(?P<db>[^/]+)/(?P<coll>[^/]+?)\.(?P<ext>bson|metadata\.json)(?P<gz>\.gz)?$"
)
OPLOG_FILE = re.compile(r"^oplog\.bson(?P<gz>\.gz)?$")
ARCHIVE_FILE = re.compile(r"\.(archive|archive\.gz|agz|dump|dump\.gz)$")


@dataclass(frozen=True)
class Kind:
    """What a backup object is, by its name within the backup."""

    kind: str
    database: str = ""
    collection: str = ""
    gz: bool = False

    @property
    def namespace(self) -> str:
        """``database.collection`` for the files of one collection."""
        return f"{self.database}.{self.collection}" if self.database else self.kind


def classify(relative: str) -> Kind:
    """Name the kind of a backup object from its path within the backup."""
    found = DIRECTORY_FILE.match(relative)
    if found:
        kind = BSON if found.group("ext") == "bson" else METADATA
        database, collection = unquote(found.group("db")), unquote(found.group("coll"))
        return Kind(kind, database, collection, bool(found.group("gz")))
    found = OPLOG_FILE.match(relative)
    if found:
        return Kind(OPLOG, gz=bool(found.group("gz")))
    if ARCHIVE_FILE.search(relative):
        return Kind(ARCHIVE, gz=relative.endswith((".gz", ".agz")))
    return Kind(OTHER)


def archive_databases(store: S3Store, objects: list) -> dict:
    """The databases each archive's header names, by object; nothing else is read.

    An archive names its databases only inside, so the header of every object
    that may be an archive is streamed until its end, and the download closed.
    A damaged header raises ContentError: what the archive holds is then unknown.
    """
    found = {}
    for obj in objects:
        if classify(obj.relative).kind not in (ARCHIVE, OTHER):
            continue
        try:
            names = _header_databases(store, obj)
        except ContentError as error:
            raise ContentError(f"{obj.relative}: {error}") from None
        if names is not None:
            found[obj.relative] = names
    return found


def _header_databases(store: S3Store, obj: S3Object) -> set | None:
    chunks = store.chunks(obj)
    try:
        reader = ChunkReader(chunks)
        if reader.peek(2) == GZIP_MAGIC:
            reader = ChunkReader(gunzip(reader.chunks()))
        if reader.peek(4) != ARCHIVE_MAGIC:
            return None
        archive = ArchiveReader(reader)
        archive.read_header()
    finally:
        chunks.close()
    return {namespace.database for namespace in archive.namespaces.values()}


def restorable(namespace: str) -> bool:
    """Tell whether a namespace belongs in a scratch restore (no system data)."""
    database, _dot, collection = namespace.partition(".")
    return (
        bool(collection)
        and database not in PROTECTED_DATABASES
        and not collection.startswith("system.")
    )


@dataclass
class ObjectScan:
    """What one pass over one object found."""

    obj: S3Object
    kind: Kind
    read_bytes: int = 0
    checksum: str | None = None
    checksum_note: str = ""
    expected: Expected | None = None
    computed: str | None = None
    gzip: bool = False
    gzip_error: str | None = None
    content_error: str | None = None
    download_error: str | None = None
    metadata: dict | None = None
    archive: bool = False
    namespaces: dict = field(default_factory=dict)
    unfinished: list = field(default_factory=list)
    restore_errors: list = field(default_factory=list)

    @property
    def name(self) -> str:
        """The object's path within the backup, for messages."""
        return self.obj.relative


@dataclass
class ScanRequest:
    """What the pass does: which levels, and where a restore goes."""

    hash: bool = False
    decode: bool = False
    target: RestoreTarget | None = None
    workers: int = 4


def scan_object(store: S3Store, obj: S3Object, request: ScanRequest) -> ObjectScan:
    """Download ``obj`` once and judge everything the request asks for."""
    scan = ObjectScan(obj, classify(obj.relative))
    digester = None
    try:
        digester, etag = _digester(store, obj, scan) if request.hash else (None, None)
        chunks = _hashed(store.chunks(obj, etag=etag), digester, scan)
        _read(ChunkReader(chunks), scan, request)
    except S3Problem as problem:
        scan.download_error = str(problem)
    if digester is not None and scan.download_error is None:
        scan.computed = digester.computed()
        scan.checksum = MATCH if digester.matches() else MISMATCH
    return scan


def _digester(store: S3Store, obj: S3Object, scan: ObjectScan) -> tuple:
    """Read the stored checksum (or MD5 ETag) and prepare to re-hash against it."""
    head = store.head(obj)
    etag = str(head.get("ETag") or obj.etag).strip('"') or None
    expected = expected_from_head(head)
    scan.expected = expected
    if expected is None:
        _unverifiable(scan, "S3 stores no checksum for it and its ETag is not an MD5")
        return None, etag
    if not expected.supported:
        _unverifiable(scan, f"computing {expected.algorithm} needs the awscrt package")
        return None, etag
    if expected.parts:
        part = store.head(obj, part_number=1)
        if int(part.get("PartsCount") or 0) != expected.parts:
            _unverifiable(scan, "S3 does not say how its parts were cut")
            return None, etag
        expected = Expected(
            expected.source,
            expected.algorithm,
            expected.value,
            expected.parts,
            int(part["ContentLength"]),
        )
        scan.expected = expected
    return Digester(expected), etag


def _unverifiable(scan: ObjectScan, note: str) -> None:
    scan.checksum = UNVERIFIABLE
    scan.checksum_note = note


def _hashed(chunks: Iterator[bytes], digester: Any, scan: ObjectScan) -> Iterator:
    for chunk in chunks:
        if digester is not None:
            digester.update(chunk)
        scan.read_bytes += len(chunk)
        yield chunk


def _read(reader: ChunkReader, scan: ObjectScan, request: ScanRequest) -> None:
    """Inflate and decode as far as the request asks; record where it broke."""
    scan.gzip = reader.peek(2) == GZIP_MAGIC
    if scan.kind.gz and not scan.gzip:
        scan.gzip_error = "its name ends in .gz but it is not gzip data"
    elif scan.gzip or request.decode:
        plain = ChunkReader(gunzip(reader.chunks())) if scan.gzip else reader
        _decode_or_drain(plain, scan, request)
    # The rest of the bytes still count for the checksum.
    reader.drain()


def _decode_or_drain(
    plain: ChunkReader, scan: ObjectScan, request: ScanRequest
) -> None:
    try:
        if request.decode:
            _decode(plain, scan, request.target)
        plain.drain()
    except GzipError as error:
        scan.gzip_error = str(error)
    except ContentError as error:
        scan.content_error = str(error)
        try:
            plain.drain()
        except GzipError as gzip_error:
            scan.gzip_error = str(gzip_error)


def _decode(plain: ChunkReader, scan: ObjectScan, target: Any) -> None:
    kind = scan.kind.kind
    if kind == METADATA:
        scan.metadata = parse_metadata(plain)
    elif kind in (BSON, OPLOG):
        _decode_bson(plain, scan, target)
    elif plain.peek(4) == ARCHIVE_MAGIC:
        _decode_archive(plain, scan, target)
    elif kind == ARCHIVE:
        raise ArchiveError(
            "it does not start with the mongodump archive magic number, so it is "
            "not an archive"
        )


def _decode_bson(plain: ChunkReader, scan: ObjectScan, target: Any) -> None:
    name = scan.kind.namespace
    namespace = Namespace(scan.kind.database, scan.kind.collection)
    scan.namespaces[name] = namespace
    writer = target.writer(name) if target and restorable(name) else None
    for raw in iter_documents(plain):
        namespace.documents += 1
        namespace.bytes += len(raw)
        if writer is not None:
            writer.add(raw)
    _flush(scan, [writer] if writer else [])


def _decode_archive(plain: ChunkReader, scan: ObjectScan, target: Any) -> None:
    scan.archive = True
    archive = ArchiveReader(plain)
    archive.read_header()
    scan.namespaces = archive.namespaces
    if target is not None:
        _prepare(target, {n: ns.metadata for n, ns in archive.namespaces.items()})
    writers: dict = {}
    for name, raw in archive.documents():
        if target is not None and restorable(name):
            if name not in writers:
                writers[name] = target.writer(name)
            writers[name].add(raw)
    scan.unfinished = archive.unfinished()
    _flush(scan, list(writers.values()))


def _flush(scan: ObjectScan, writers: list) -> None:
    for writer in writers:
        writer.flush()
        if writer.error:
            scan.restore_errors.append(writer.error)


def _prepare(target: RestoreTarget, metadata: dict) -> None:
    """Declare the namespaces and create the collections that carry options."""
    target.declare(metadata)
    for name, document in metadata.items():
        if restorable(name):
            target.prepare(name, document)


@dataclass
class RestoreRun:
    """What the restore did: phases with their seconds, counts, and errors."""

    database: str
    phases: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    index_keys: dict = field(default_factory=dict)
    indexes_created: int = 0
    error: str | None = None
    dropped: bool = False

    @property
    def seconds(self) -> float:
        """The measured recovery time: from the empty database to data and indexes."""
        phases = ("metadata", "prepare", "data", "indexes")
        return round(sum(self.phases.get(phase, 0.0) for phase in phases), 3)


@dataclass
class BackupScan:
    """Every object's scan, and the restore when one ran."""

    scans: list = field(default_factory=list)
    seconds: float = 0.0
    restore: RestoreRun | None = None

    def metadata(self) -> dict:
        """The collection metadata found, by namespace."""
        found = {
            scan.kind.namespace: scan.metadata
            for scan in self.scans
            if scan.kind.kind == METADATA and scan.metadata is not None
        }
        for scan in self.scans:
            for name, namespace in scan.namespaces.items():
                if namespace.metadata is not None:
                    found[name] = namespace.metadata
        return found


def scan_backup(store: S3Store, objects: list, request: ScanRequest) -> BackupScan:
    """Scan every object: metadata first, so a restore can create collections."""
    started = time.monotonic()
    first = [obj for obj in objects if classify(obj.relative).kind == METADATA]
    second = [obj for obj in objects if classify(obj.relative).kind != METADATA]
    result = BackupScan()
    if request.target is None:
        result.scans = _pool(store, first + second, request)
    else:
        result.restore = _restore(store, first, second, request, result)
    result.seconds = round(time.monotonic() - started, 3)
    return result


def _pool(store: S3Store, objects: list, request: ScanRequest) -> list:
    if len(objects) <= 1 or request.workers <= 1:
        return [scan_object(store, obj, request) for obj in objects]
    with ThreadPoolExecutor(max_workers=request.workers) as pool:
        return list(pool.map(lambda obj: scan_object(store, obj, request), objects))


def _restore(store, first, second, request, result: BackupScan) -> RestoreRun:
    """Drop, restore, index, count, drop again; time each phase."""
    target = request.target
    run = RestoreRun(database=target.name)
    try:
        _phase(run, "drop_before", target.drop)
        result.scans = _phase(run, "metadata", _pool, store, first, request)
        namespaces = {classify(obj.relative).namespace: None for obj in second}
        _phase(run, "prepare", _prepare, target, {**namespaces, **result.metadata()})
        result.scans += _phase(run, "data", _pool, store, second, request)
        _phase(run, "indexes", _create_indexes, target, result, run)
        _phase(run, "verify", _count, target, result, run)
    except MongoProblem as error:
        run.error = str(error)
    finally:
        _drop_after(target, run)
    return run


def _phase(run: RestoreRun, name: str, function: Any, *args: Any) -> Any:
    started = time.monotonic()
    try:
        return function(*args)
    finally:
        run.phases[name] = round(time.monotonic() - started, 3)


def _create_indexes(target: RestoreTarget, result: BackupScan, run: RestoreRun) -> None:
    metadata = result.metadata()
    for name in sorted(_restored(result)):
        run.indexes_created += target.create_indexes(name, metadata.get(name))


def _count(target: RestoreTarget, result: BackupScan, run: RestoreRun) -> None:
    for name in sorted(_restored(result)):
        run.counts[name] = target.count(name)
        run.index_keys[name] = target.index_keys(name)


def _restored(result: BackupScan) -> set:
    return {
        name for scan in result.scans for name in scan.namespaces if restorable(name)
    }


def _drop_after(target: RestoreTarget, run: RestoreRun) -> None:
    started = time.monotonic()
    try:
        target.drop()
        run.dropped = target.name not in target.names()
    except MongoProblem as error:
        run.error = run.error or str(error)
    run.phases["drop_after"] = round(time.monotonic() - started, 3)
