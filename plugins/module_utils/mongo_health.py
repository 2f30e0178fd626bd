# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""MongoDB health: one connection, the checks the ``checks`` option names.

This file holds the settings, the shared context (server answers asked once
and reused by every check) and the checks that read ``serverStatus`` and
``currentOp``; replication, storage and usage checks live beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from ansible_collections.trm.maintenance.plugins.module_utils.checks import (
    CheckResult,
    measured,
    unknown,
)
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.mongo import (
    MongoSession,
    Refused,
    ServerProblem,
    plain,
    problem_finding,
    user_databases,
)
from ansible_collections.trm.maintenance.plugins.module_utils.mongo_replication import (
    check_replication,
)
from ansible_collections.trm.maintenance.plugins.module_utils.mongo_storage import (
    all_collection_sizes,
    check_capacity,
    check_collections,
    collection_stats,
    list_collections,
    parse_size,
    sample,
)
from ansible_collections.trm.maintenance.plugins.module_utils.mongo_usage import (
    check_index_usage,
    check_slow_queries,
    command_shape,
)
from ansible_collections.trm.maintenance.plugins.module_utils.report import (
    load_history,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    BELOW,
    parse_threshold,
)

SUBJECT = "MongoDB health"
# How many of the largest collections have their index counters read: one
# aggregate, and the collections that matter most for a review.
DEFAULT_SAMPLE = 100
_UNSIZED = {"data_bytes": 0, "storage_bytes": 0}
# The longest look-back in days (100 years): beyond it a date cannot be computed.
MAX_DAYS = 36500
CHECKS = (
    "connections",
    "replication",
    "capacity",
    "collections",
    "slow_queries",
    "index_usage",
    "current_ops",
    "wiredtiger",
)

DEFAULT_THRESHOLDS = {
    "connections_used": {"warning": 80, "critical": 90},
    "replication_lag": {"warning": 10, "critical": 60},
    "capacity_used": {"warning": 70, "critical": 85},
    "capacity_growth": {"warning": 20, "critical": 50},
    "capacity_projection": {"warning": 90, "critical": 30, "direction": BELOW},
    "slow_query_time": {"warning": 1000, "critical": 10000},
    "unused_indexes": {"warning": 0},
    "operation_time": {"warning": 1, "critical": 60},
    "cache_used": {"warning": 80, "critical": 95},
    "cache_dirty": {"warning": 5, "critical": 20},
    "queued_operations": {"warning": 10, "critical": 50},
}

# WiredTiger's own statistic names in serverStatus.
CACHE_USED = "bytes currently in the cache"
CACHE_MAX = "maximum bytes configured"
CACHE_DIRTY = "tracked dirty bytes in the cache"

# Operations that run long by design: replication, awaitable hello, change streams.
_AWAITING_COMMANDS = frozenset({"hello", "ismaster", "isMaster"})


@dataclass
class HealthSettings:
    """The options of one mongo_health call, checked and parsed."""

    checks: list
    databases: list
    thresholds: dict
    backup_interval: float
    capacity_ceiling: int | None
    capacity_target: float
    history: list
    top_collections: int
    sample_collections: int
    top_slow_queries: int
    slow_query_days: float
    unused_index_days: float

    def threshold(self, name: str) -> Any:
        """The parsed threshold of option ``name``."""
        return self.thresholds[name]


def health_settings(params: dict, *, history: list | None = None) -> HealthSettings:
    """Check and parse the module's options; raise OptionError for bad ones."""
    thresholds = {
        name: parse_threshold(params.get(name), option=name, default=default)
        for name, default in DEFAULT_THRESHOLDS.items()
    }
    backup = _positive(params, "backup_interval", 24.0)
    thresholds["oplog_window"] = parse_threshold(
        params.get("oplog_window"),
        option="oplog_window",
        default={"warning": backup * 2, "critical": backup, "direction": BELOW},
    )
    return HealthSettings(
        checks=_checks(params.get("checks")),
        databases=list(params.get("databases") or []),
        thresholds=thresholds,
        backup_interval=backup,
        capacity_ceiling=parse_size(params.get("capacity_ceiling"), "capacity_ceiling"),
        capacity_target=_percent(params, "capacity_target", 70.0),
        history=history or [],
        top_collections=int(_positive(params, "top_collections", 10)),
        sample_collections=_sample_size(params),
        top_slow_queries=int(_positive(params, "top_slow_queries", 10)),
        slow_query_days=_days(params, "slow_query_days", 7.0),
        unused_index_days=_days(params, "unused_index_days", 7.0),
    )


def _checks(value: Any) -> list:
    chosen = list(value) if value else list(CHECKS)
    wrong = [name for name in chosen if name not in CHECKS]
    if wrong:
        raise OptionError("checks", wrong, f"must name checks among {list(CHECKS)}")
    # The order of CHECKS, so results read the same whatever order was asked.
    return [name for name in CHECKS if name in chosen]


def _positive(params: dict, option: str, default: float) -> float:
    value = params.get(option)
    value = default if value is None else value
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise OptionError(option, value, "must be a number above 0")
    return float(value)


def _sample_size(params: dict) -> int:
    value = params.get("sample_collections")
    value = DEFAULT_SAMPLE if value is None else value
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise OptionError(
            "sample_collections", value, "must be a whole number from 1 to 1000"
        )
    return value


def _days(params: dict, option: str, default: float) -> float:
    value = _positive(params, option, default)
    if value > MAX_DAYS:
        raise OptionError(option, value, f"must be at most {MAX_DAYS} days")
    return value


def _percent(params: dict, option: str, default: float) -> float:
    value = _positive(params, option, default)
    if value > 100:
        raise OptionError(option, value, "must be a percentage from 0 to 100")
    return value


@dataclass
class HealthContext:
    """What every check needs: the session, the settings, and answers asked once."""

    session: MongoSession
    settings: HealthSettings
    _cache: dict = field(default_factory=dict)

    def once(self, key: str, ask: Callable[[], Any]) -> Any:
        """Return the answer cached under ``key``, asking the server the first time.

        A refusal is cached too, so that two checks needing the same answer
        cost one round trip and report the same reason.
        """
        if key not in self._cache:
            try:
                self._cache[key] = ask()
            except Refused as refusal:
                self._cache[key] = refusal
        answer = self._cache[key]
        if isinstance(answer, Refused):
            raise answer
        return answer

    @property
    def now(self) -> Any:
        """The server's clock."""
        return self.once("now", self.session.server_time)

    def server_status(self) -> dict:
        """The server's serverStatus answer."""
        return self.once(
            "status", lambda: self.session.command("admin", "serverStatus")
        )

    def databases(self) -> list:
        """The databases in scope that exist, with their size on disk."""
        return self.once("databases", self._list_databases)

    def _list_databases(self) -> list:
        answer = self.session.command("admin", "listDatabases")
        listed = [entry for entry in answer.get("databases", []) if "name" in entry]
        wanted = self.settings.databases
        if wanted:
            return [entry for entry in listed if entry["name"] in wanted]
        names = user_databases(entry["name"] for entry in listed)
        return [entry for entry in listed if entry["name"] in names]

    def missing_databases(self) -> list:
        """Databases named in ``databases`` that the server does not list."""
        found = {entry["name"] for entry in self.databases()}
        return [name for name in self.settings.databases if name not in found]

    def collections(self, database: str) -> list:
        """The names of the user collections of ``database``."""
        return self.once(
            f"collections:{database}", lambda: list_collections(self.session, database)
        )

    def all_sizes(self) -> dict | None:
        """Sizes of every collection in scope from one command, or None where the
        server cannot answer that way."""
        return self.once(
            "all_sizes",
            lambda: all_collection_sizes(
                self.session, [entry["name"] for entry in self.databases()]
            ),
        )

    def collection_stats(self, database: str) -> list:
        """Size statistics of every collection of ``database``, largest first."""
        sizes = self.all_sizes()
        if sizes is not None:
            return sizes.get(database, [])
        return self.once(
            f"stats:{database}",
            lambda: collection_stats(
                self.session, database, self.collections(database)
            ),
        )

    def sampled(self) -> dict:
        """The largest ``sample_collections`` collections in scope, by database.

        Where the sizes are refused, the first collections by name stand in.
        """
        names = [entry["name"] for entry in self.databases()]
        try:
            stats = {name: self.collection_stats(name) for name in names}
        except Refused:
            stats = {
                name: [
                    {"database": name, "collection": collection, **_UNSIZED}
                    for collection in self.collections(name)
                ]
                for name in names
            }
        return sample(stats, self.settings.sample_collections)

    def collections_total(self) -> int:
        """How many user collections the databases in scope hold."""
        names = [entry["name"] for entry in self.databases()]
        try:
            return sum(len(self.collection_stats(name)) for name in names)
        except Refused:
            return sum(len(self.collections(name)) for name in names)


def read_history(params: dict, *, warn: Callable[[str], None]) -> list:
    """Earlier maintenance reports, newest first, when ``history_dir`` is set.

    They are the JSON reports that the report role writes; capacity growth is
    measured against the oldest of them that holds ``capacity_used_bytes``.
    """
    folder = params.get("history_dir")
    if not folder:
        return []
    limit = params.get("history_limit")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise OptionError("history_limit", limit, "must be a whole number from 1")
    return load_history(
        folder,
        params.get("history_cadence") or "monthly",
        before=datetime.now(timezone.utc).date().isoformat(),
        limit=limit,
        warn=warn,
    )


def run_mongo_health(params: dict, *, history: list | None = None) -> dict:
    """Run the chosen checks on one connection and return the check result."""
    settings = health_settings(params, history=history)
    result = CheckResult()
    server: dict = {}
    with MongoSession(params) as session:
        server["target"] = session.target
        context = HealthContext(session, settings)
        try:
            server.update(_describe_server(session.hello()))
            for name in settings.checks:
                _run_one(CHECKERS[name], name, context, result)
        except ServerProblem as problem:
            result.add(problem_finding(problem))
    answer = result.to_dict(SUBJECT)
    answer["server"] = server
    return answer


def _run_one(
    checker: Callable, name: str, context: HealthContext, result: CheckResult
) -> None:
    """Run one check; a refused command makes its finding unknown, not the call."""
    try:
        checker(context, result)
    except Refused as refusal:
        result.add(unknown(name, refusal.reason, action=refusal.action))


def _describe_server(hello: dict) -> dict:
    if hello.get("msg") == "isdbgrid":
        role = "mongos"
    elif hello.get("setName"):
        role = "primary" if hello.get("isWritablePrimary") else "secondary"
        if hello.get("arbiterOnly"):
            role = "arbiter"
    else:
        role = "standalone"
    return {
        "role": role,
        "replica_set": hello.get("setName"),
        "max_wire_version": hello.get("maxWireVersion"),
    }


# Connections


def check_connections(context: HealthContext, result: CheckResult) -> None:
    """Current connections as a share of the maximum (current + available)."""
    status = context.server_status()
    connections = status.get("connections") or {}
    current, available = connections.get("current"), connections.get("available")
    if not isinstance(current, int) or not isinstance(available, int):
        result.add(unknown("connections", "serverStatus reports no connection counts"))
        return
    used = round(current / (current + available) * 100, 2) if current else 0.0
    result.metrics.update(
        connections_current=current,
        connections_available=available,
        connections_used_pct=used,
    )
    _uptime(status, result)
    result.add(
        measured(
            "connections",
            used,
            context.settings.threshold("connections_used"),
            label="Connections in use",
            unit="%",
            action=(
                "Find the clients holding connections (db.currentOp(), application "
                "pool sizes) and raise net.maxIncomingConnections only if needed"
            ),
            details={
                "current": current,
                "available": available,
                "maximum": current + available,
                "version": status.get("version"),
            },
        )
    )


def _uptime(status: dict, result: CheckResult) -> None:
    uptime = status.get("uptime")
    if isinstance(uptime, (int, float)):
        result.metrics["uptime_seconds"] = int(uptime)


# WiredTiger


def check_wiredtiger(context: HealthContext, result: CheckResult) -> None:
    """WiredTiger cache fill and dirty share, and the global lock queue."""
    status = context.server_status()
    cache = (status.get("wiredTiger") or {}).get("cache") or {}
    maximum = cache.get(CACHE_MAX)
    if not maximum:
        engine = (status.get("storageEngine") or {}).get("name") or "not reported"
        result.add(
            unknown(
                "wiredtiger",
                f"serverStatus reports no WiredTiger cache statistics "
                f"(storage engine: {engine})",
            )
        )
    else:
        _cache_findings(context, cache, maximum, result)
    _queue_finding(context, status, result)


def _cache_findings(
    context: HealthContext, cache: dict, maximum: int, result: CheckResult
) -> None:
    used_pct = round(cache.get(CACHE_USED, 0) / maximum * 100, 2)
    dirty_pct = round(cache.get(CACHE_DIRTY, 0) / maximum * 100, 2)
    result.metrics.update(
        cache_bytes=cache.get(CACHE_USED, 0),
        cache_max_bytes=maximum,
        cache_used_pct=used_pct,
        cache_dirty_pct=dirty_pct,
    )
    figures = {"cache_bytes": cache.get(CACHE_USED, 0), "cache_max_bytes": maximum}
    result.add(
        measured(
            "cache_used",
            used_pct,
            context.settings.threshold("cache_used"),
            label="WiredTiger cache fill",
            unit="%",
            action=(
                "The working set outgrows the cache: review slow queries and "
                "indexes, or give mongod more memory"
            ),
            details=figures,
        )
    )
    result.add(
        measured(
            "cache_dirty",
            dirty_pct,
            context.settings.threshold("cache_dirty"),
            label="WiredTiger dirty cache share",
            unit="%",
            action="Writes outpace checkpoints: check disk latency and write load",
            details={"dirty_bytes": cache.get(CACHE_DIRTY, 0)},
        )
    )


def _queue_finding(context: HealthContext, status: dict, result: CheckResult) -> None:
    queue = (status.get("globalLock") or {}).get("currentQueue")
    if not isinstance(queue, dict) or not isinstance(queue.get("total"), int):
        return
    result.metrics.update(
        queued_readers=queue.get("readers", 0), queued_writers=queue.get("writers", 0)
    )
    result.add(
        measured(
            "queued_operations",
            queue["total"],
            context.settings.threshold("queued_operations"),
            label="Operations waiting for a lock",
            action="Look for long-running operations and lock contention",
            details={"readers": queue.get("readers"), "writers": queue.get("writers")},
        )
    )


# Current operations


def check_current_ops(context: HealthContext, result: CheckResult) -> None:
    """Client operations running longer than the warning bound, longest first."""
    threshold = context.settings.threshold("operation_time")
    floor = threshold.warning if threshold.warning is not None else threshold.critical
    answer = context.session.command(
        "admin",
        {"currentOp": 1, "active": True, "secs_running": {"$gte": int(floor or 0)}},
    )
    if "inprog" not in answer:
        result.add(unknown("current_ops", "currentOp answered without inprog"))
        return
    ops = sorted(
        (_operation(op) for op in answer["inprog"] if _is_client_operation(op)),
        key=lambda op: op["seconds"],
        reverse=True,
    )
    slow = [op for op in ops if op["seconds"] > (floor or 0)]
    longest = ops[0]["seconds"] if ops else 0.0
    result.metrics.update(long_operations=len(slow), longest_operation_seconds=longest)
    result.add(
        measured(
            "current_ops",
            longest,
            threshold,
            label="Longest running operation",
            unit="s",
            action=(
                "Review the operations listed; stop a runaway one with "
                "db.killOp(<opid>) after checking what it is"
            ),
            details={"operations": slow[:20], "count": len(slow)},
        )
    )


def _is_client_operation(op: dict) -> bool:
    """Leave out internal threads, replication, awaitable hello and tailing cursors."""
    if not str(op.get("desc", "")).startswith("conn") or op.get("op") == "none":
        return False
    if str(op.get("ns", "")).startswith("local."):
        return False
    command = op.get("command") or {}
    if _AWAITING_COMMANDS & set(command):
        return False
    origin = op.get("cursor", {}).get("originatingCommand") or {}
    origin = origin or op.get("originatingCommand") or {}
    if origin.get("tailable") or origin.get("awaitData"):
        return False
    stages = origin.get("pipeline") or []
    return not any(isinstance(s, dict) and "$changeStream" in s for s in stages)


def _operation(op: dict) -> dict:
    micros = op.get("microsecs_running")
    seconds = (
        micros / 1e6 if isinstance(micros, (int, float)) else op.get("secs_running", 0)
    )
    return {
        "opid": plain(op.get("opid")),
        "operation": op.get("op"),
        "namespace": op.get("ns"),
        "seconds": round(float(seconds), 3),
        "client_app": op.get("appName"),
        "plan": op.get("planSummary"),
        "waiting_for_lock": bool(op.get("waitingForLock")),
        "command": command_shape(op.get("command") or {}),
    }


CHECKERS: dict = {
    "connections": check_connections,
    "replication": check_replication,
    "capacity": check_capacity,
    "collections": check_collections,
    "slow_queries": check_slow_queries,
    "index_usage": check_index_usage,
    "current_ops": check_current_ops,
    "wiredtiger": check_wiredtiger,
}
