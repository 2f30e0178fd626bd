# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""MongoDB storage: database sizes, capacity, growth, and the largest collections.

Per-collection sizes come, where the server runs it, from one
``$_internalAllCollectionStats`` aggregate for every database at once, so their
cost in round trips does not grow with the number of collections. Elsewhere
they come from ``$collStats`` stages joined with ``$unionWith``, a hundred
collections per aggregate.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any, Iterable, Iterator

from ansible.module_utils.common.text.formatters import human_to_bytes

from ansible_collections.trm.maintenance.plugins.module_utils.checks import (
    CheckResult,
    Finding,
    measured,
    unknown,
)
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.mongo import Refused
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import OK

# Collections per aggregate: far under the server's limit of 1000 stages.
BATCH_SIZE = 100
CAPACITY_METRIC = "capacity_used_bytes"
GROWTH_METRICS = ("data_bytes_total", "storage_bytes_total", "index_bytes_total")
DAYS_PER_MONTH = 30
# Powers of 1024, named as human_to_bytes reads them back.
SIZE_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")

# Computed fields rather than dotted inclusions: every server then returns the
# same flat shape (nx-27017, for one, flattens dotted inclusions wrongly).
STATS_PROJECTION = {
    "_id": 0,
    "collection": 1,
    "shard": 1,
    "documents": "$storageStats.count",
    "data_bytes": "$storageStats.size",
    "storage_bytes": "$storageStats.storageSize",
    "index_bytes": "$storageStats.totalIndexSize",
    "free_bytes": "$storageStats.freeStorageSize",
}
SUMMED = ("documents", "data_bytes", "storage_bytes", "index_bytes", "free_bytes")
# One aggregate on admin with the storage statistics of every collection
# (MongoDB 6.0 and later); the same figures as $collStats, keyed by namespace.
ALL_STATS_STAGE = "$_internalAllCollectionStats"
ALL_STATS_PROJECTION = {
    **{key: rule for key, rule in STATS_PROJECTION.items() if key != "collection"},
    "ns": 1,
}


def parse_size(value: Any, option: str) -> int | None:
    """Bytes from a number or a text such as ``500GB``; None stays None."""
    if value is None or value == "":
        return None
    try:
        size = human_to_bytes(value)
    except (TypeError, ValueError):
        raise OptionError(
            option, value, "must be a size such as 500GB or 2TB"
        ) from None
    if size <= 0:
        raise OptionError(option, value, "must be a size above 0")
    return int(size)


def human(size: float) -> str:
    """A size in bytes as a person reads it: ``0 B``, ``2.2 MB``, ``1.5 TB``."""
    value = float(size)
    for unit in SIZE_UNITS[:-1]:
        if abs(value) < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} {SIZE_UNITS[-1]}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def slug(text: str) -> str:
    """``text`` as a metric name part: lower case, underscores."""
    return re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_")


# Listing and batched statistics


def list_collections(session: Any, database: str) -> list:
    """The names of the user collections of ``database`` (no views, no system.*)."""
    answer = session.command(
        database,
        {
            "listCollections": 1,
            "filter": {"type": "collection"},
            "nameOnly": True,
            "authorizedCollections": True,
        },
    )
    cursor = answer.get("cursor") or {}
    entries = list(cursor.get("firstBatch") or [])
    entries += _more(session, database, cursor)
    return sorted(
        entry["name"]
        for entry in entries
        if entry.get("type", "collection") == "collection"
        and not str(entry.get("name", "system.")).startswith("system.")
    )


def _more(session: Any, database: str, cursor: dict) -> list:
    """The rest of a command cursor, for servers that return listings in parts."""
    found: list = []
    cursor_id = cursor.get("id") or 0
    while cursor_id:
        answer = session.command(
            database, {"getMore": cursor_id, "collection": "$cmd.listCollections"}
        )
        part = answer.get("cursor") or {}
        found += part.get("nextBatch") or []
        cursor_id = part.get("id") or 0
    return found


def chunks(items: list, size: int) -> Iterator[list]:
    """``items`` in consecutive lists of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def union_pipeline(names: list, stages: Any) -> list:
    """One pipeline over every collection of ``names``: ``stages(name)`` for each,
    the first run on its own collection, the others joined by $unionWith."""
    head = stages(names[0])
    return head + [
        {"$unionWith": {"coll": name, "pipeline": stages(name)}} for name in names[1:]
    ]


def _stats_stages(name: str) -> list:
    return [
        {"$collStats": {"storageStats": {}}},
        {"$addFields": {"collection": name}},
        {"$project": STATS_PROJECTION},
    ]


def collection_stats(session: Any, database: str, names: list) -> list:
    """Size statistics of the collections ``names``, largest data size first."""
    merged: dict = {}
    for batch in chunks(names, BATCH_SIZE):
        rows = session.aggregate(
            database, batch[0], union_pipeline(batch, _stats_stages)
        )
        for row in rows:
            _merge(merged, database, row)
    return largest_first(merged.values())


def all_collection_sizes(session: Any, databases: list) -> dict | None:
    """Size statistics of every collection of ``databases``, in one command.

    Returns None when the server does not run ``$_internalAllCollectionStats``
    for this user (older servers, stand-ins, a missing privilege); the caller
    then reads the sizes collection by collection.
    """
    pipeline = [
        {ALL_STATS_STAGE: {"stats": {"storageStats": {}}}},
        {"$project": ALL_STATS_PROJECTION},
    ]
    try:
        rows = session.aggregate_database("admin", pipeline)
    except Refused:
        return None
    merged: dict = {name: {} for name in databases}
    for row in rows:
        database, _dot, name = str(row.get("ns") or "").partition(".")
        if database in merged and name and not name.startswith("system."):
            _merge(merged[database], database, {**row, "collection": name})
    return {name: largest_first(rows.values()) for name, rows in merged.items()}


def largest_first(rows: Iterable[dict]) -> list:
    """Statistics rows by data size, then storage size, largest first."""
    return sorted(
        rows, key=lambda row: (row["data_bytes"], row["storage_bytes"]), reverse=True
    )


def sample(stats: dict, size: int) -> dict:
    """The names of the ``size`` largest collections of ``stats`` (rows by
    database), by database."""
    rows = largest_first(row for found in stats.values() for row in found)
    chosen: dict = {name: [] for name in stats}
    for row in rows[:size]:
        chosen[row["database"]].append(row["collection"])
    # By name within a database, the order in which the server lists them.
    return {name: sorted(names) for name, names in chosen.items()}


def _merge(merged: dict, database: str, row: dict) -> None:
    """Add one answer row; a sharded collection answers once per shard."""
    name = row.get("collection")
    if not isinstance(name, str):
        return
    entry = merged.setdefault(
        name,
        {"database": database, "collection": name, **dict.fromkeys(SUMMED, 0)},
    )
    for key in SUMMED:
        value = row.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            entry[key] += int(value)


# Collections


def check_collections(context: Any, result: CheckResult) -> None:
    """The largest collections across the databases in scope."""
    found = [
        row
        for entry in context.databases()
        for row in context.collection_stats(entry["name"])
    ]
    found.sort(key=lambda row: (row["data_bytes"], row["storage_bytes"]), reverse=True)
    largest = found[: context.settings.top_collections]
    result.metrics["collections_total"] = len(found)
    for row in largest:
        key = f"{slug(row['database'])}_{slug(row['collection'])}_data_bytes"
        result.metrics[key] = row["data_bytes"]
    databases = len({row["database"] for row in found})
    if largest:
        top = largest[0]
        message = (
            f"Largest collection is {top['database']}.{top['collection']} "
            f"({human(top['data_bytes'])} of data, {human(top['storage_bytes'])} "
            f"on disk); {_count(len(found), 'collection')} in "
            f"{_count(databases, 'database')}"
        )
    else:
        message = "No user collections found in the databases in scope"
    result.add(
        Finding(
            name="collections",
            status=OK,
            message=message,
            value=len(found),
            details={
                "largest": largest,
                "missing_databases": context.missing_databases(),
            },
        )
    )


# Capacity


def check_capacity(context: Any, result: CheckResult) -> None:
    """Data, storage and index sizes against a ceiling, with growth when known."""
    rows = [_database_row(context, entry["name"]) for entry in context.databases()]
    totals = {
        f"{key}_total": sum(row[key] for row in rows)
        for key in ("data_bytes", "storage_bytes", "index_bytes")
    }
    used = totals["storage_bytes_total"] + totals["index_bytes_total"]
    result.metrics.update(totals)
    result.metrics[CAPACITY_METRIC] = used
    for row in rows:
        for key in ("data_bytes", "storage_bytes", "index_bytes"):
            result.metrics[f"{slug(row['database'])}_{key}"] = row[key]
    ceiling, source = _ceiling(context, rows)
    details = {
        "databases": rows,
        **totals,
        "used_bytes": used,
        "ceiling_bytes": ceiling,
        "ceiling_source": source,
        "missing_databases": context.missing_databases(),
    }
    result.add(_usage_finding(context, used, ceiling, details, result))
    if context.settings.history:
        _growth_findings(context, used, totals, ceiling, result)


def _database_row(context: Any, name: str) -> dict:
    stats = context.session.command(name, {"dbStats": 1, "scale": 1})
    return {
        # The name we asked for: some servers put a file path in dbStats.db.
        "database": name,
        "collections": stats.get("collections"),
        "objects": stats.get("objects"),
        "data_bytes": int(stats.get("dataSize") or 0),
        "storage_bytes": int(stats.get("storageSize") or 0),
        "index_bytes": int(stats.get("indexSize") or 0),
        "fs_total_bytes": stats.get("fsTotalSize"),
        "fs_used_bytes": stats.get("fsUsedSize"),
    }


def _ceiling(context: Any, rows: list) -> tuple:
    if context.settings.capacity_ceiling:
        return context.settings.capacity_ceiling, "capacity_ceiling"
    sizes = [row["fs_total_bytes"] for row in rows if row["fs_total_bytes"]]
    if sizes:
        return int(max(sizes)), "filesystem"
    return None, None


def _usage_finding(
    context: Any, used: int, ceiling: int | None, details: dict, result: CheckResult
) -> Finding:
    if not ceiling:
        return unknown(
            "capacity_used",
            "No capacity ceiling: the server reports no filesystem size",
            action="Set capacity_ceiling to the size of the data volume",
            **details,
        )
    pct = round(used / ceiling * 100, 2)
    result.metrics["capacity_ceiling_bytes"] = ceiling
    result.metrics["capacity_used_pct"] = pct
    return measured(
        "capacity_used",
        pct,
        context.settings.threshold("capacity_used"),
        label=f"Storage and indexes ({human(used)} of {human(ceiling)})",
        unit="%",
        action=(
            "Plan more storage, archive or expire old data (TTL indexes), or "
            "compact collections with much free space"
        ),
        details=details,
    )


# Growth against earlier reports


def history_point(history: list, metric: str) -> tuple | None:
    """The oldest (day, value) of ``metric`` in earlier reports, newest first."""
    for report in reversed(history):
        value = _metric(report.get("metrics") or {}, metric)
        day = _day(report.get("date"))
        if value is not None and day is not None:
            return day, value
    return None


def _metric(metrics: dict, name: str) -> float | None:
    """A report keys metrics as ``<section>.<name>``; any section will do."""
    for key in sorted(metrics):
        if key == name or key.endswith(f".{name}"):
            value = metrics[key]
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
    return None


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _growth_findings(
    context: Any, used: int, totals: dict, ceiling: int | None, result: CheckResult
) -> None:
    today = context.now.date()
    point = history_point(context.settings.history, CAPACITY_METRIC)
    if point is None or (today - point[0]).days < 1:
        result.add(
            Finding(
                name="capacity_growth",
                status=OK,
                message=(
                    "No earlier report holds capacity_used_bytes yet; growth is "
                    "measured from the next report on"
                ),
            )
        )
        return
    days = (today - point[0]).days
    per_day = (used - point[1]) / days
    result.add(_growth_finding(context, used, point, days, totals))
    if ceiling:
        result.add(_projection_finding(context, used, per_day, ceiling, result))


def _growth_finding(
    context: Any, used: int, point: tuple, days: int, totals: dict
) -> Finding:
    since, before = point
    monthly = _monthly_pct(used, before, days)
    others = {}
    for name in GROWTH_METRICS:
        earlier = history_point(context.settings.history, name)
        if earlier is not None and (context.now.date() - earlier[0]).days >= 1:
            span = (context.now.date() - earlier[0]).days
            others[name] = _monthly_pct(totals[name], earlier[1], span)
    return measured(
        "capacity_growth",
        monthly,
        context.settings.threshold("capacity_growth"),
        label=f"Storage growth per {DAYS_PER_MONTH} days (over {days} days)",
        unit="%",
        action="Find the collections that grow fastest and plan capacity for them",
        details={
            "since": since.isoformat(),
            "used_bytes_then": int(before),
            "used_bytes_now": used,
            "growth_pct_per_30_days": others,
        },
    )


def _monthly_pct(now: float, before: float, days: int) -> float:
    if before <= 0:
        return 0.0
    return round((now / before - 1) * 100 * DAYS_PER_MONTH / days, 2)


def _projection_finding(
    context: Any, used: int, per_day: float, ceiling: int, result: CheckResult
) -> Finding:
    target_pct = context.settings.capacity_target
    target = ceiling * target_pct / 100
    label = f"Time until storage reaches {target_pct:g}% of {human(ceiling)}"
    if used >= target:
        days = 0.0
    elif per_day <= 0:
        return Finding(
            name="capacity_projection",
            status=OK,
            message=f"{label}: not projected, storage is not growing",
            details={"bytes_per_day": round(per_day, 1)},
        )
    else:
        days = round((target - used) / per_day, 1)
    result.metrics["capacity_days_to_target"] = days
    reaches = context.now + timedelta(days=days)
    return measured(
        "capacity_projection",
        days,
        context.settings.threshold("capacity_projection"),
        label=label,
        unit="days",
        action="Order storage or archive data before the projected date",
        details={
            "bytes_per_day": round(per_day, 1),
            "target_bytes": int(target),
            "reaches_on": _date_text(reaches),
        },
    )


def _date_text(moment: datetime) -> str:
    return moment.date().isoformat()


def names_of(rows: Iterable[dict]) -> list:
    """The ``database.collection`` names of statistics rows."""
    return [f"{row['database']}.{row['collection']}" for row in rows]
