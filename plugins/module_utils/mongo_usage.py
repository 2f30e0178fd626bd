# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How MongoDB is used: slow operations from the profiler, unused indexes.

Commands are shown as their shape only: field names, operators and sort
orders stay, every value a user could have typed becomes ``"?"``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ansible_collections.trm.maintenance.plugins.module_utils.checks import (
    CheckResult,
    measured,
    unknown,
)
from ansible_collections.trm.maintenance.plugins.module_utils.mongo import (
    aware,
    plain,
)
from ansible_collections.trm.maintenance.plugins.module_utils.mongo_storage import (
    BATCH_SIZE,
    chunks,
    union_pipeline,
)

REDACTED_VALUE = "?"
# Session, cluster and routing fields: noise in a report, and lsid identifies
# a client session.
DROPPED_KEYS = frozenset(
    {
        "lsid",
        "txnNumber",
        "autocommit",
        "startTransaction",
        "$db",
        "$clusterTime",
        "$readPreference",
        "$audit",
        "$client",
        "$configServerState",
        "$topologyTime",
        "shardVersion",
        "databaseVersion",
        "signature",
        "mayBypassWriteBlocking",
    }
)
# Where numbers describe the query's shape (1 / -1), not a user's data.
SHAPE_KEYS = frozenset({"sort", "$sort", "projection", "$project", "hint", "key"})
# Where strings name collections or fields, not values.
NAME_KEYS = frozenset({"from", "coll", "localField", "foreignField", "as", "hint"})
MAX_LISTED = 20

PROFILE_FIELDS = {
    "_id": 0,
    "op": 1,
    "ns": 1,
    "millis": 1,
    "ts": 1,
    "planSummary": 1,
    "keysExamined": 1,
    "docsExamined": 1,
    "nreturned": 1,
    "appName": 1,
    "command": 1,
}
INDEX_PROJECTION = {
    "_id": 0,
    "collection": 1,
    "name": 1,
    "key": 1,
    "shard": 1,
    "building": 1,
    "ops": "$accesses.ops",
    "since": "$accesses.since",
}
PROFILING_ACTION = (
    "Turn on the profiler for slow operations on the databases to review: "
    "db.setProfilingLevel(1, {slowms: 100})"
)


def command_shape(command: Any) -> dict:
    """The command without values: names, operators and sort orders only."""
    if not isinstance(command, dict):
        return {}
    shape: dict = {}
    for position, (key, value) in enumerate(command.items()):
        if key in DROPPED_KEYS:
            continue
        if position == 0 and isinstance(value, str):
            shape[key] = value  # the collection the command runs on
        else:
            shape[key] = _shape(value, key)
    return shape


def _shape(value: Any, key: str, *, keep_numbers: bool = False) -> Any:
    keep_numbers = keep_numbers or key in SHAPE_KEYS
    if isinstance(value, dict):
        return {
            name: _shape(item, name, keep_numbers=keep_numbers)
            for name, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        if not any(isinstance(item, (dict, list, tuple)) for item in value):
            return [REDACTED_VALUE] if value else []
        return [
            _shape(item, key, keep_numbers=keep_numbers) for item in value[:MAX_LISTED]
        ]
    if keep_numbers and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if key in NAME_KEYS and isinstance(value, str):
        return value
    return REDACTED_VALUE


# Slow queries


def check_slow_queries(context: Any, result: CheckResult) -> None:
    """The slowest profiled operations of the review period, slowest first."""
    settings = context.settings
    levels = {
        entry["name"]: _profiling(context, entry["name"])
        for entry in context.databases()
    }
    profiled = [name for name, level in levels.items() if (level["level"] or 0) > 0]
    if not profiled:
        result.add(_no_profile(levels))
        return
    since = context.now - timedelta(days=settings.slow_query_days)
    found = []
    for name in profiled:
        docs = context.session.find(
            name,
            "system.profile",
            {"ts": {"$gte": since}},
            projection=PROFILE_FIELDS,
            sort=[("millis", -1)],
            limit=settings.top_slow_queries,
        )
        found += [_slow_entry(doc) for doc in docs]
    found.sort(key=lambda entry: entry["millis"], reverse=True)
    _slow_finding(context, found[: settings.top_slow_queries], levels, since, result)


def _profiling(context: Any, database: str) -> dict:
    answer = context.session.command(database, {"profile": -1})
    level = answer.get("was")
    return {
        "level": level if isinstance(level, int) else None,
        "slow_ms": answer.get("slowms"),
    }


def _no_profile(levels: dict) -> Any:
    if not levels:
        reason = "No user databases to review"
    elif all(level["level"] is None for level in levels.values()):
        names = ", ".join(sorted(levels))
        reason = f"The server does not report the profiling level of {names}"
    else:
        names = ", ".join(sorted(levels))
        reason = f"Profiling is off on {names}, so no slow operations are recorded"
    return unknown("slow_queries", reason, action=PROFILING_ACTION, profiling=levels)


def _slow_entry(doc: dict) -> dict:
    return {
        "namespace": doc.get("ns"),
        "operation": doc.get("op"),
        "millis": int(doc.get("millis") or 0),
        "at": plain(doc.get("ts")),
        "plan": doc.get("planSummary"),
        "keys_examined": doc.get("keysExamined"),
        "docs_examined": doc.get("docsExamined"),
        "returned": doc.get("nreturned"),
        "client_app": doc.get("appName"),
        "command": command_shape(doc.get("command")),
    }


def _slow_finding(
    context: Any, top: list, levels: dict, since: datetime, result: CheckResult
) -> None:
    slowest = top[0]["millis"] if top else 0
    result.metrics.update(slow_queries_listed=len(top), slowest_query_ms=slowest)
    days = f"{context.settings.slow_query_days:g}"
    finding = measured(
        "slow_queries",
        slowest,
        context.settings.threshold("slow_query_time"),
        label=f"Slowest profiled operation of the last {days} days",
        unit="ms",
        action=(
            "Explain the slowest operations (COLLSCAN plans, many documents "
            "examined per result) and add or fix the indexes they need"
        ),
        details={
            "slowest": top,
            "since": plain(since),
            "profiling": levels,
        },
    )
    result.add(finding)


# Index usage


def index_stats(session: Any, database: str, names: list) -> list:
    """``$indexStats`` of every collection of ``names``, one row per index."""
    merged: dict = {}
    for batch in chunks(names, BATCH_SIZE):
        rows = session.aggregate(
            database, batch[0], union_pipeline(batch, _index_stages)
        )
        for row in rows:
            _merge_index(merged, database, row)
    return list(merged.values())


def _index_stages(name: str) -> list:
    return [
        {"$indexStats": {}},
        {"$addFields": {"collection": name}},
        {"$project": INDEX_PROJECTION},
    ]


def _merge_index(merged: dict, database: str, row: dict) -> None:
    """Add one row; on a sharded cluster each shard reports its own counters."""
    key = (row.get("collection"), row.get("name"))
    entry = merged.setdefault(
        key,
        {
            "database": database,
            "collection": key[0],
            "index": key[1],
            "key": plain(row.get("key")),
            "ops": 0,
            "since": None,
            "building": False,
        },
    )
    entry["ops"] += int(row.get("ops") or 0)
    entry["building"] = entry["building"] or bool(row.get("building"))
    since = row.get("since")
    if isinstance(since, datetime) and (
        entry["since"] is None or since < entry["since"]
    ):
        entry["since"] = since


def check_index_usage(context: Any, result: CheckResult) -> None:
    """Indexes with no use since their counters started, long enough ago."""
    days = context.settings.unused_index_days
    cutoff = context.now - timedelta(days=days)
    sampled = context.sampled()
    rows = [
        row
        for database, names in sampled.items()
        for row in index_stats(context.session, database, names)
    ]
    read, total = sum(len(n) for n in sampled.values()), context.collections_total()
    judged = [row for row in rows if row["index"] != "_id_" and not row["building"]]
    unused, recent = [], []
    for row in judged:
        if row["ops"] == 0:
            counted_long = row["since"] and aware(row["since"]) <= cutoff
            (unused if counted_long else recent).append(row)
    result.metrics.update(indexes_total=len(rows), unused_indexes=len(unused))
    finding = measured(
        "index_usage",
        len(unused),
        context.settings.threshold("unused_indexes"),
        label=f"Indexes unused for {days:g} days",
        action=(
            "Confirm with the application team, hide each index (collMod "
            "hidden: true) for a release, then drop it"
        ),
        details={
            "unused": [_index_entry(row) for row in unused[:50]],
            "not_judged": [_index_entry(row) for row in recent[:50]],
            "indexes_total": len(rows),
            "cutoff": plain(cutoff),
            "collections_sampled": read,
            "collections_total": total,
        },
    )
    if read < total:
        finding.message += (
            f"; index counters read for the {read} largest of {total} collections"
        )
    if recent:
        finding.message += (
            f"; {len(recent)} more unused since their counters restarted less "
            f"than {days:g} days ago, not judged yet"
        )
    result.add(finding)


def _index_entry(row: dict) -> dict:
    return {
        "database": row["database"],
        "collection": row["collection"],
        "index": row["index"],
        "key": row["key"],
        "since": plain(row["since"]),
    }
