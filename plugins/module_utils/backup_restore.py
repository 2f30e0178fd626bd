# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The MongoDB side of backup verification: a scratch restore and live counts.

A restore writes only into one scratch database whose name is on an
allow-list; it is dropped before the restore and again afterwards.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from typing import Any, Iterable
from urllib.parse import urlsplit, urlunsplit

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    MaintenanceError,
    OptionError,
)

try:
    from bson.raw_bson import RawBSONDocument
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    HAS_PYMONGO = True
except ImportError:  # reported by the caller, which names the package to install
    HAS_PYMONGO = False

BATCH_DOCUMENTS = 1000
BATCH_BYTES = 8 * 1024 * 1024
# Index builds on large collections answer slowly; connections still time out.
MIN_SOCKET_SECONDS = 300
PROTECTED_DATABASES = {"admin", "config", "local"}
# Index options that describe the index rather than configure it.
INDEX_FIELDS_NOT_OPTIONS = {"v", "key", "ns"}
DATABASE_NAME = re.compile(r'^[^/\\. "$*<>:|?]{1,63}$')


class MongoProblem(MaintenanceError):
    """MongoDB could not be reached or refused an operation."""


def shown_uri(uri: str) -> str:
    """The URI without its password, for messages and results."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    userinfo, _at, hosts = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hosts}"))


def check_scratch_name(name: str, allowed: list, sources: Iterable[str]) -> None:
    """Refuse a scratch database name that is not allow-listed or not safe."""
    if not name or not DATABASE_NAME.match(name):
        raise OptionError("restore_database", name, "is not a valid database name")
    if name in PROTECTED_DATABASES:
        raise OptionError("restore_database", name, "names a system database")
    if not any(fnmatch.fnmatchcase(name, pattern) for pattern in allowed):
        raise OptionError(
            "restore_database",
            name,
            f"matches no pattern of restore_allowed_databases {allowed}",
        )
    if name in set(sources):
        raise OptionError(
            "restore_database", name, "is a database of the backup itself"
        )


def connect(uri: str, timeout: float) -> Any:
    """Open a client with bounded server selection, connect and socket times."""
    try:
        client = MongoClient(
            uri,
            serverSelectionTimeoutMS=int(timeout * 1000),
            connectTimeoutMS=int(timeout * 1000),
            socketTimeoutMS=int(max(timeout, MIN_SOCKET_SECONDS) * 1000),
        )
        client.admin.command("ping")
    except PyMongoError as error:
        raise MongoProblem(
            f"MongoDB at {shown_uri(uri)} cannot be used: {short_error(error)}"
        ) from None
    return client


def short_error(error: Exception) -> str:
    """pymongo's message without the topology description it appends."""
    text = str(error).split(", Timeout:", maxsplit=1)[0]
    return text.split(", Topology Description:", maxsplit=1)[0]


def count_live(client: Any, namespaces: Iterable[str], database: str | None) -> dict:
    """Count the documents of each namespace in the live database."""
    counts = {}
    for namespace in namespaces:
        source, _dot, collection = namespace.partition(".")
        try:
            counts[namespace] = client[database or source][collection].count_documents(
                {}
            )
        except PyMongoError as error:
            raise MongoProblem(
                f"Counting {namespace} failed: {short_error(error)}"
            ) from None
    return counts


def index_key(spec: Any) -> tuple:
    """An index key as a hashable tuple, with 1.0 and 1 the same direction."""
    items = spec.items() if hasattr(spec, "items") else spec
    return tuple(
        (str(name), int(value) if isinstance(value, float) else value)
        for name, value in items
    )


class BatchWriter:
    """Inserts raw documents into one collection in batches; keeps its error."""

    def __init__(self, collection: Any) -> None:
        self.collection = collection
        self.batch: list = []
        self.batch_bytes = 0
        self.inserted = 0
        self.error: str | None = None

    def add(self, raw: bytes) -> None:
        """Queue one document; insert the batch when it is full."""
        if self.error is not None:
            return
        self.batch.append(RawBSONDocument(raw))
        self.batch_bytes += len(raw)
        if len(self.batch) >= BATCH_DOCUMENTS or self.batch_bytes >= BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Insert what is queued."""
        if not self.batch or self.error is not None:
            return
        try:
            self.collection.insert_many(self.batch, ordered=False)
            self.inserted += len(self.batch)
        except PyMongoError as error:
            self.error = short_error(error)
        self.batch, self.batch_bytes = [], 0


class RestoreTarget:
    """The scratch database a backup is restored into."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name
        self.database = client[name]
        self.single_source = True
        self.writers: dict = {}
        self._lock = threading.Lock()

    def drop(self) -> None:
        """Drop the scratch database (it may not exist)."""
        self._run(f"Dropping {self.name}", self.client.drop_database, self.name)

    def declare(self, namespaces: Iterable[str]) -> None:
        """Learn the backup's namespaces: several databases keep their prefix."""
        sources = {namespace.partition(".")[0] for namespace in namespaces}
        self.single_source = len(sources) <= 1

    def collection_name(self, namespace: str) -> str:
        """The scratch collection for ``namespace``."""
        return namespace.partition(".")[2] if self.single_source else namespace

    def prepare(self, namespace: str, metadata: dict | None) -> None:
        """Create the collection with the options the backup recorded, if any."""
        options = dict((metadata or {}).get("options") or {})
        if options:
            self._run(
                f"Creating {namespace}",
                self.database.create_collection,
                self.collection_name(namespace),
                **options,
            )

    def writer(self, namespace: str) -> BatchWriter:
        """The writer of ``namespace``'s documents (one per namespace)."""
        with self._lock:
            if namespace not in self.writers:
                name = self.collection_name(namespace)
                self.writers[namespace] = BatchWriter(self.database[name])
            return self.writers[namespace]

    def create_indexes(self, namespace: str, metadata: dict | None) -> int:
        """Create the indexes the metadata lists, except ``_id``; return how many."""
        specs = [
            spec
            for spec in (metadata or {}).get("indexes") or []
            if index_key(spec.get("key", {})) != (("_id", 1),)
        ]
        collection = self.database[self.collection_name(namespace)]
        for spec in specs:
            options = {
                key: value
                for key, value in spec.items()
                if key not in INDEX_FIELDS_NOT_OPTIONS
            }
            keys = list(index_key(spec["key"]))
            self._run(
                f"Creating index {spec.get('name')} on {namespace}",
                collection.create_index,
                keys,
                **options,
            )
        return len(specs)

    def count(self, namespace: str) -> int:
        """Count the restored documents of ``namespace``."""
        collection = self.database[self.collection_name(namespace)]
        return self._run(f"Counting {namespace}", collection.count_documents, {})

    def index_keys(self, namespace: str) -> list:
        """The keys of the restored indexes of ``namespace``, sorted."""
        collection = self.database[self.collection_name(namespace)]
        indexes = self._run(
            f"Listing the indexes of {namespace}",
            lambda: list(collection.list_indexes()),
        )
        return sorted(index_key(index["key"]) for index in indexes)

    def names(self) -> list:
        """The databases the server has, to confirm the drop."""
        return self._run("Listing databases", self.client.list_database_names)

    def _run(self, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except PyMongoError as error:
            raise MongoProblem(
                f"{what} failed in {self.name}: {short_error(error)}"
            ) from None
