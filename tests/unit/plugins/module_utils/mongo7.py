"""A MongoDB 7 stand-in for tests: mockupdb answering from a described server.

mockupdb speaks MongoDB's wire protocol on a loopback port, in this process.
``FakeMongo`` answers every command from a ``Server`` description, in the
shapes MongoDB 7.0 returns (hello, serverStatus, replSetGetStatus, currentOp,
$collStats, $indexStats, $_internalAllCollectionStats, system.profile, the oplog,
compact), and records each command it received. It knows only what these tests
need: an aggregate may use $collStats, $indexStats or (on admin)
$_internalAllCollectionStats, $addFields, $project and $unionWith; a find may sort
and limit. Anything else is answered the way MongoDB answers an unknown
command (CommandNotFound, code 59), so a test never waits on a silent server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from bson import Int64, Timestamp
from mockupdb import MockupDB

from lab.core import LOOPBACK, free_port

NOW = datetime(2025, 3, 9, 14, 30, tzinfo=timezone.utc)
WIRE_VERSION_7_0 = 21
UNAUTHORIZED = (13, "Unauthorized")
COMMAND_NOT_FOUND = (59, "CommandNotFound")
AUTHENTICATION_FAILED = (18, "AuthenticationFailed")
ALL_STATS = "$_internalAllCollectionStats"


def naive(moment: datetime) -> datetime:
    """BSON dates travel without a zone; pymongo hands them back naive UTC."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


@dataclass
class Index:
    """One index and its $indexStats counters."""

    name: str
    key: dict
    ops: int = 0
    since: datetime = NOW - timedelta(days=30)
    building: bool = False


@dataclass
class Collection:
    """One collection's storage statistics and indexes."""

    name: str
    documents: int = 0
    data_bytes: int = 0
    storage_bytes: int = 0
    index_bytes: int = 0
    free_bytes: int = 0
    indexes: list = field(default_factory=list)
    bytes_freed: int = 0


@dataclass
class Server:
    """What the fake server holds and how it is configured."""

    now: datetime = NOW
    set_name: str | None = None
    primary: bool = True
    members: list = field(default_factory=list)
    databases: dict = field(default_factory=dict)
    connections: tuple = (125, 875)
    cache: tuple | None = (6 * 2**30, 4 * 2**30, 100 * 2**20)  # max, used, dirty
    queue: tuple | None = (0, 0)  # readers, writers
    oplog: tuple | None = None  # (first, last) Timestamps
    profile: dict = field(default_factory=dict)  # db -> (level, entries)
    operations: list = field(default_factory=list)
    refuse: dict = field(default_factory=dict)  # command -> (code, codeName)
    counts: dict = field(default_factory=dict)  # collection -> n
    # Whether admin runs $_internalAllCollectionStats (MongoDB 6.0 and later).
    all_collection_stats: bool = True


def collection_stats_doc(database: str, coll: Collection, now: datetime) -> dict:
    """A $collStats {storageStats: {}} document as MongoDB 7.0 returns it."""
    sizes = {
        index.name: coll.index_bytes // max(len(coll.indexes), 1)
        for index in coll.indexes
    }
    return {
        "ns": f"{database}.{coll.name}",
        "host": "mongo-0.trm.internal:27017",
        "localTime": naive(now),
        "storageStats": {
            "size": coll.data_bytes,
            "count": coll.documents,
            "avgObjSize": coll.data_bytes // max(coll.documents, 1),
            "numOrphanDocs": 0,
            "storageSize": coll.storage_bytes,
            "freeStorageSize": coll.free_bytes,
            "capped": False,
            "wiredTiger": {
                "metadata": {"formatVersion": 1},
                "creationString": "access_pattern_hint=none,allocation_size=4KB",
                "type": "file",
                "uri": f"statistics:table:collection-{coll.name}",
            },
            "nindexes": len(coll.indexes),
            "indexDetails": {},
            "indexBuilds": [],
            "totalIndexSize": coll.index_bytes,
            "totalSize": coll.storage_bytes + coll.index_bytes,
            "indexSizes": sizes,
            "scaleFactor": 1,
        },
    }


def index_stats_doc(index: Index) -> dict:
    """One $indexStats document as MongoDB 7.0 returns it."""
    doc = {
        "name": index.name,
        "key": index.key,
        "host": "mongo-0.trm.internal:27017",
        "accesses": {"ops": Int64(index.ops), "since": naive(index.since)},
        "spec": {"v": 2, "key": index.key, "name": index.name},
    }
    if index.building:
        doc["building"] = True
    return doc


def member(
    number: int,
    state: int,
    state_str: str,
    optime: int | None,
    *,
    health: int = 1,
    is_self: bool = False,
) -> dict:
    """A replSetGetStatus member; ``optime`` is the seconds of its last operation."""
    seconds = optime or 0
    doc = {
        "_id": number,
        "name": f"mongo-{number}.trm.internal:27017",
        "health": float(health),
        "state": state,
        "stateStr": state_str,
        "uptime": 86400 if health else 0,
        "optime": {"ts": Timestamp(seconds, 1), "t": Int64(7 if optime else -1)},
        "optimeDate": datetime.fromtimestamp(seconds, tz=timezone.utc).replace(
            tzinfo=None
        ),
        "lastAppliedWallTime": datetime.fromtimestamp(seconds, tz=timezone.utc).replace(
            tzinfo=None
        ),
        "syncSourceHost": "" if state == 1 else "mongo-0.trm.internal:27017",
        "syncSourceId": -1 if state == 1 else 0,
        "infoMessage": "",
        "configVersion": 5,
        "configTerm": 7,
    }
    if is_self:
        doc["self"] = True
    else:
        doc["pingMs"] = Int64(1)
        doc["lastHeartbeatMessage"] = "" if health else "Error connecting to host"
    return doc


class FakeMongo:
    """mockupdb on a loopback port, answering from a ``Server``."""

    def __init__(self, server: Server) -> None:
        self.state = server
        self.commands: list = []
        # The client port of each request: one port is one connection.
        self.ports: list = []
        self.mock = MockupDB(port=free_port(), auto_ismaster=None)
        self.mock.autoresponds(self._answer)
        self.handlers = {
            "saslStart": self._sasl_start,
            "serverStatus": self._server_status,
            "listDatabases": self._list_databases,
            "dbStats": self._db_stats,
            "listCollections": self._list_collections,
            "replSetGetStatus": self._repl_set_get_status,
            "currentOp": self._current_op,
            "profile": self._profile,
            "count": self._count,
            "compact": self._compact,
            "usersInfo": self._users_info,
            "rolesInfo": self._roles_info,
            "getParameter": self._get_parameter,
            "buildInfo": self._build_info,
            "endSessions": self._end_sessions,
            "aggregate": self._aggregate,
            "find": self._find,
            "buildinfo": self._build_info,
        }

    def __enter__(self) -> FakeMongo:
        self.mock.run()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.mock.stop()

    def serve(self, server: Server) -> None:
        """Answer from ``server`` from now on, with an empty command log."""
        self.state = server
        self.commands.clear()
        self.ports.clear()

    @property
    def uri(self) -> str:
        """A URI that talks to this server alone."""
        return f"mongodb://{LOOPBACK}:{self.mock.port}/?directConnection=true"

    @property
    def params(self) -> dict:
        """Module parameters with the defaults of the connection options."""
        return {
            "uri": self.uri,
            "login_port": 27017,
            "login_database": "admin",
            "direct_connection": False,
            "tls": False,
            "validate_certs": True,
            "server_selection_timeout": 3.0,
            "connect_timeout": 3.0,
            "socket_timeout": 10.0,
        }

    def names(self) -> list:
        """The names of the commands received, hello excluded."""
        return [name for name, _db, _doc in self.commands]

    def connections(self, *, commands_only: bool = False) -> set:
        """The client ports seen; with ``commands_only``, those that ran more
        than the handshake and monitoring (``hello``)."""
        return {
            port
            for port, name in self.ports
            if not commands_only or name.lower() not in ("hello", "ismaster")
        }

    def received(self, name: str) -> list:
        """The documents of the ``name`` commands received."""
        return [doc for command, _db, doc in self.commands if command == name]

    # Dispatch

    def _answer(self, request: Any) -> bool:
        doc = dict(request.doc)
        name = request.command_name or ""
        database = doc.get("$db") or request.namespace.split(".")[0]
        self.ports.append((request.client_port, name))
        if name.lower() in ("hello", "ismaster"):
            return request.replies(self._hello())
        self.commands.append((name, database, doc))
        if name in self.state.refuse:
            code, code_name = self.state.refuse[name]
            return request.command_err(
                code=code,
                errmsg=_refusal_text(code, name, database),
                codeName=code_name,
            )
        handler = self.handlers.get(name)
        if handler is None:
            return request.command_err(
                code=59, errmsg=f"no such command: '{name}'", codeName="CommandNotFound"
            )
        return request.replies(handler(database, doc))

    def _hello(self) -> dict:
        state = self.state
        doc = {
            "isWritablePrimary": state.primary,
            "helloOk": True,
            "topologyVersion": {"processId": Timestamp(1, 1), "counter": Int64(0)},
            "maxBsonObjectSize": 16777216,
            "maxMessageSizeBytes": 48000000,
            "maxWriteBatchSize": 100000,
            "localTime": naive(state.now),
            "logicalSessionTimeoutMinutes": 30,
            "connectionId": 17,
            "minWireVersion": 0,
            "maxWireVersion": WIRE_VERSION_7_0,
            "readOnly": False,
            "saslSupportedMechs": ["SCRAM-SHA-1", "SCRAM-SHA-256"],
            "ok": 1.0,
        }
        if state.set_name:
            hosts = [m["name"] for m in state.members] or ["mongo-0.trm.internal:27017"]
            doc.update(
                setName=state.set_name,
                setVersion=5,
                hosts=hosts,
                secondary=not state.primary,
                me=hosts[0] if state.primary else hosts[-1],
            )
            if state.primary:
                doc["primary"] = hosts[0]
        return doc

    # Commands

    def _sasl_start(self, _database: str, _doc: dict) -> dict:
        return {
            "ok": 0.0,
            "errmsg": "Authentication failed.",
            "code": 18,
            "codeName": "AuthenticationFailed",
        }

    def _server_status(self, _database: str, _doc: dict) -> dict:
        state = self.state
        current, available = state.connections
        doc: dict = {
            "host": "mongo-0.trm.internal",
            "version": "7.0.12",
            "process": "mongod",
            "pid": Int64(4242),
            "uptime": 1209600.0,
            "uptimeMillis": Int64(1209600000),
            "localTime": naive(state.now),
            "connections": {
                "current": current,
                "available": available,
                "totalCreated": 5012,
                "active": 12,
            },
            "storageEngine": {"name": "wiredTiger", "supportsCommittedReads": True},
            "ok": 1.0,
        }
        if state.queue is not None:
            readers, writers = state.queue
            doc["globalLock"] = {
                "totalTime": Int64(1209600000000),
                "currentQueue": {
                    "total": readers + writers,
                    "readers": readers,
                    "writers": writers,
                },
                "activeClients": {"total": 3, "readers": 2, "writers": 1},
            }
        if state.cache is not None:
            maximum, used, dirty = state.cache
            doc["wiredTiger"] = {
                "cache": {
                    "maximum bytes configured": maximum,
                    "bytes currently in the cache": used,
                    "tracked dirty bytes in the cache": dirty,
                    "pages evicted by application threads": 0,
                }
            }
        return doc

    def _list_databases(self, _database: str, _doc: dict) -> dict:
        listed = ["admin", "config", "local", *self.state.databases]
        entries = [
            {
                "name": name,
                "sizeOnDisk": Int64(self._db_bytes(name)),
                "empty": False,
            }
            for name in listed
        ]
        total = sum(entry["sizeOnDisk"] for entry in entries)
        return {"databases": entries, "totalSize": Int64(total), "ok": 1.0}

    def _db_bytes(self, name: str) -> int:
        colls = self.state.databases.get(name, [])
        return sum(c.storage_bytes + c.index_bytes for c in colls) or 40960

    def _db_stats(self, database: str, _doc: dict) -> dict:
        colls = self.state.databases.get(database, [])
        return {
            "db": database,
            "collections": len(colls),
            "views": 0,
            "objects": sum(c.documents for c in colls),
            "avgObjSize": 300.0,
            "dataSize": float(sum(c.data_bytes for c in colls)),
            "storageSize": float(sum(c.storage_bytes for c in colls)),
            "indexes": sum(len(c.indexes) for c in colls),
            "indexSize": float(sum(c.index_bytes for c in colls)),
            "totalSize": float(sum(c.storage_bytes + c.index_bytes for c in colls)),
            "scaleFactor": 1.0,
            "fsUsedSize": 120 * 2**30,
            "fsTotalSize": 500 * 2**30,
            "ok": 1.0,
        }

    def _list_collections(self, database: str, _doc: dict) -> dict:
        colls = self.state.databases.get(database, [])
        batch = [{"name": c.name, "type": "collection"} for c in colls]
        return {
            "cursor": {
                "id": Int64(0),
                "ns": f"{database}.$cmd.listCollections",
                "firstBatch": batch,
            },
            "ok": 1.0,
        }

    def _repl_set_get_status(self, _database: str, _doc: dict) -> dict:
        state = self.state
        if not state.set_name:
            return {
                "ok": 0.0,
                "errmsg": "not running with --replSet",
                "code": 76,
                "codeName": "NoReplicationEnabled",
            }
        heads = [m["optime"]["ts"] for m in state.members if m["state"] == 1]
        head = heads[0] if heads else Timestamp(0, 0)
        return {
            "set": state.set_name,
            "date": naive(state.now),
            "myState": 1 if state.primary else 2,
            "term": Int64(7),
            "heartbeatIntervalMillis": Int64(2000),
            "majorityVoteCount": 2,
            "writeMajorityCount": 2,
            "votingMembersCount": len(state.members),
            "optimes": {
                "lastCommittedOpTime": {"ts": head, "t": Int64(7)},
                "appliedOpTime": {"ts": head, "t": Int64(7)},
                "durableOpTime": {"ts": head, "t": Int64(7)},
            },
            "members": state.members,
            "ok": 1.0,
        }

    def _current_op(self, _database: str, _doc: dict) -> dict:
        return {"inprog": self.state.operations, "ok": 1.0}

    def _profile(self, database: str, _doc: dict) -> dict:
        level, _entries = self.state.profile.get(database, (0, []))
        return {"was": level, "slowms": 100, "sampleRate": 1.0, "ok": 1.0}

    def _count(self, _database: str, doc: dict) -> dict:
        return {"n": self.state.counts.get(doc["count"], 0), "ok": 1.0}

    def _compact(self, database: str, doc: dict) -> dict:
        coll = self._collection(database, doc["compact"])
        return {"bytesFreed": coll.bytes_freed, "ok": 1.0}

    def _users_info(self, database: str, _doc: dict) -> dict:
        user = {
            "_id": f"{database}.monitor",
            "userId": Timestamp(1, 1),
            "user": "monitor",
            "db": database,
            "roles": [{"role": "clusterMonitor", "db": "admin"}],
            "mechanisms": ["SCRAM-SHA-1", "SCRAM-SHA-256"],
        }
        return {"users": [user] if database == "admin" else [], "ok": 1.0}

    def _roles_info(self, database: str, _doc: dict) -> dict:
        role = {
            "role": "read",
            "db": database,
            "isBuiltin": True,
            "roles": [],
            "inheritedRoles": [],
        }
        return {"roles": [role], "ok": 1.0}

    def _get_parameter(self, _database: str, _doc: dict) -> dict:
        return {
            "featureCompatibilityVersion": {"version": "7.0"},
            "maxSessions": 1000000,
            "ok": 1.0,
        }

    def _build_info(self, _database: str, _doc: dict) -> dict:
        return {
            "version": "7.0.12",
            "gitVersion": "b6c6a2a8d2c0b1e4d1a1f3d8f4a2b1c0d9e8f7a6",
            "versionArray": [7, 0, 12, 0],
            "bits": 64,
            "maxBsonObjectSize": 16777216,
            "storageEngines": ["devnull", "wiredTiger"],
            "ok": 1.0,
        }

    def _end_sessions(self, _database: str, _doc: dict) -> dict:
        return {"ok": 1.0}

    # Queries

    def _collection(self, database: str, name: str) -> Collection:
        for coll in self.state.databases.get(database, []):
            if coll.name == name:
                return coll
        raise KeyError(f"{database}.{name}")

    def _aggregate(self, database: str, doc: dict) -> dict:
        first = next(iter(doc["pipeline"][0])) if doc["pipeline"] else None
        if first == ALL_STATS and not self.state.all_collection_stats:
            return {
                "ok": 0.0,
                "errmsg": f"Unrecognized pipeline stage name: '{ALL_STATS}'",
                "code": 40324,
                "codeName": "Location40324",
            }
        rows = self._pipeline(database, doc["aggregate"], doc["pipeline"])
        return {
            "cursor": {
                "id": Int64(0),
                "ns": f"{database}.{doc['aggregate']}",
                "firstBatch": rows,
            },
            "ok": 1.0,
        }

    def _pipeline(self, database: str, name: str, stages: list) -> list:
        rows: list = []
        for stage in stages:
            ((operator, spec),) = stage.items()
            if operator == "$collStats":
                rows = [
                    collection_stats_doc(
                        database, self._collection(database, name), self.state.now
                    )
                ]
            elif operator == ALL_STATS and database == "admin" and name == 1:
                rows = [
                    collection_stats_doc(db, coll, self.state.now)
                    for db, collections in self.state.databases.items()
                    for coll in collections
                ]
            elif operator == "$indexStats":
                rows = [
                    index_stats_doc(i) for i in self._collection(database, name).indexes
                ]
            elif operator == "$addFields":
                rows = [{**row, **spec} for row in rows]
            elif operator == "$project":
                rows = [_project(row, spec) for row in rows]
            elif operator == "$unionWith":
                rows += self._pipeline(database, spec["coll"], spec["pipeline"])
            else:
                raise ValueError(f"the fake server does not run {operator}")
        return rows

    def _find(self, database: str, doc: dict) -> dict:
        rows = self._documents(database, doc["find"], doc.get("filter") or {})
        for key, order in reversed(list((doc.get("sort") or {}).items())):
            if key != "$natural":
                rows.sort(key=lambda row, key=key: row.get(key), reverse=order < 0)
            elif order < 0:
                rows.reverse()
        if doc.get("limit"):
            rows = rows[: doc["limit"]]
        if doc.get("projection"):
            rows = [_project(row, doc["projection"]) for row in rows]
        return {
            "cursor": {
                "id": Int64(0),
                "ns": f"{database}.{doc['find']}",
                "firstBatch": rows,
            },
            "ok": 1.0,
        }

    def _documents(self, database: str, name: str, query: dict) -> list:
        if (database, name) == ("local", "oplog.rs"):
            if not self.state.oplog:
                return []
            first, last = self.state.oplog
            return [
                {"ts": first, "op": "n", "o": {"msg": "initiating set"}},
                {"ts": last, "op": "n", "o": {"msg": "periodic noop"}},
            ]
        if name == "system.profile":
            _level, entries = self.state.profile.get(database, (0, []))
            since = (query.get("ts") or {}).get("$gte")
            return [dict(e) for e in entries if since is None or e["ts"] >= since]
        return []


def _refusal_text(code: int, name: str, database: str) -> str:
    """MongoDB's own wording for a refused command."""
    if code == UNAUTHORIZED[0]:
        return (
            f"not authorized on {database} to execute command "
            f'{{ {name}: 1, $db: "{database}" }}'
        )
    return f"no such command: '{name}'"


def _project(row: dict, spec: dict) -> dict:
    """$project with inclusions, exclusion of _id and computed field paths."""
    shown: dict = {}
    for key, rule in spec.items():
        if isinstance(rule, str) and rule.startswith("$"):
            value = _path(row, rule[1:])
            if value is not None:
                shown[key] = value
        elif rule and key in row:
            shown[key] = row[key]
    if spec.get("_id", 1) and "_id" in row:
        shown["_id"] = row["_id"]
    return shown


def _path(row: dict, dotted: str) -> Any:
    value: Any = row
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def encrypted_client_key(folder) -> str:
    """A client certificate and its key, encrypted with ``right-pass``, in PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "monitor")])
    start = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path = folder / "client.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"right-pass"),
        )
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    return str(path)
