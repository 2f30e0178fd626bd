# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compaction of large MongoDB collections: a disruptive operation, guarded.

The order is always the same: preconditions (the maintenance window, the
server's role), then the plan (collections of the allowed databases at or over
the size threshold), then, unless in check mode or refused, ``compact`` on each
planned collection, timed, with the bytes it freed.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterator

from ansible_collections.trm.maintenance.plugins.module_utils.checks import (
    CheckResult,
    Finding,
    unknown,
)
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.mongo import (
    SYSTEM_DATABASES,
    MongoSession,
    Refused,
    ServerProblem,
    iso,
    problem_finding,
)
from ansible_collections.trm.maintenance.plugins.module_utils.mongo_storage import (
    collection_stats,
    human,
    list_collections,
    parse_size,
)
from ansible_collections.trm.maintenance.plugins.module_utils.mongo_window import (
    window_state,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    OK,
    WARNING,
)

SUBJECT = "MongoDB compaction"


class Phases:
    """Start, end and duration of each phase of the operation."""

    def __init__(self) -> None:
        self.record: dict = {}

    @contextmanager
    def measure(self, name: str) -> Iterator[None]:
        """Time the block as phase ``name``."""
        started, clock = datetime.now(timezone.utc), time.monotonic()
        try:
            yield
        finally:
            self.record[name] = {
                "started": iso(started),
                "finished": iso(datetime.now(timezone.utc)),
                "seconds": round(time.monotonic() - clock, 3),
            }


def allowed_databases(value: Any) -> list:
    """The allow-list: at least one database, none of MongoDB's own."""
    if not value:
        raise OptionError("databases", value, "must list the databases to compact")
    system = sorted(set(value) & SYSTEM_DATABASES)
    if system:
        raise OptionError("databases", system, "must not name admin, local or config")
    return list(dict.fromkeys(value))


def operation_time(value: Any) -> datetime:
    """The moment the window is judged at: ``now``, else this host's clock."""
    if not value:
        return datetime.now(timezone.utc)
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise OptionError("now", value, "must be an ISO 8601 date and time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def run_mongo_compact(params: dict, *, check_mode: bool) -> dict:
    """Plan, guard and (unless in check mode or refused) run the compaction."""
    databases = allowed_databases(params.get("databases"))
    min_size = parse_size(params.get("min_size"), "min_size") or 0
    window = window_state(
        params.get("maintenance_window") or {},
        operation_time(params.get("now")),
        option="maintenance_window",
    )
    result, phases = CheckResult(), Phases()
    outcome: dict = {"plan": [], "compacted": [], "refused": False, "reason": None}
    with MongoSession(params) as session:
        try:
            with phases.measure("preconditions"):
                reason = _refusal(session, window, params, result)
            with phases.measure("plan"):
                outcome["plan"] = plan(session, databases, params, min_size)
            outcome.update(refused=reason is not None, reason=reason)
            if reason is None and not check_mode and outcome["plan"]:
                with phases.measure("compact"):
                    outcome["compacted"] = _compact_all(
                        session, outcome["plan"], params, result
                    )
        except ServerProblem as problem:
            result.add(problem_finding(problem))
    result.add(_summary_finding(outcome, check_mode))
    return _answer(result, outcome, window, phases, check_mode)


def _refusal(
    session: MongoSession, window: Any, params: dict, result: CheckResult
) -> str | None:
    """Check the preconditions; return why the operation is refused, or None."""
    reasons = [
        _window_guard(window, params, result),
        _primary_guard(session.hello(), params, result),
    ]
    found = [reason for reason in reasons if reason]
    return "; ".join(found) or None


def _window_guard(window: Any, params: dict, result: CheckResult) -> str | None:
    if window.open:
        result.add(
            Finding(
                name="maintenance_window",
                status=OK,
                message=f"Inside the maintenance window {window.description}, "
                f"which closes at {window.closes_at.isoformat()}",
            )
        )
        return None
    if params.get("allow_outside_window"):
        result.add(
            Finding(
                name="maintenance_window",
                status=OK,
                message=f"Outside the maintenance window {window.description}; "
                "allowed by allow_outside_window",
            )
        )
        return None
    reason = (
        f"outside the maintenance window {window.description} "
        f"(next opens at {window.opens_at.isoformat()})"
    )
    result.add(
        Finding(
            name="maintenance_window",
            status=WARNING,
            message=f"Compaction refused: {reason}",
            action="Run it inside the window, or set allow_outside_window to override",
        )
    )
    return reason


def _primary_guard(hello: dict, params: dict, result: CheckResult) -> str | None:
    if not (hello.get("setName") and hello.get("isWritablePrimary")):
        return None
    if params.get("allow_primary"):
        return None
    reason = f"the server is the primary of replica set {hello['setName']}"
    result.add(
        Finding(
            name="primary",
            status=WARNING,
            message=f"Compaction refused: {reason}",
            action=(
                "Compact each secondary first, then step the primary down and "
                "compact it as a secondary, or set allow_primary"
            ),
        )
    )
    return reason


def plan(session: MongoSession, databases: list, params: dict, min_size: int) -> list:
    """The collections to compact: allowed databases, at or over ``min_size``."""
    wanted = set(params.get("collections") or [])
    found = []
    for database in databases:
        names = list_collections(session, database)
        if wanted:
            names = [name for name in names if name in wanted]
        if not names:
            continue
        found += [
            _planned(row)
            for row in collection_stats(session, database, names)
            if row["storage_bytes"] >= min_size
        ]
    return sorted(found, key=lambda row: row["storage_bytes"], reverse=True)


def _planned(row: dict) -> dict:
    return {
        "database": row["database"],
        "collection": row["collection"],
        "storage_bytes": row["storage_bytes"],
        "free_bytes": row["free_bytes"],
        "data_bytes": row["data_bytes"],
    }


def _compact_all(
    session: MongoSession, planned: list, params: dict, result: CheckResult
) -> list:
    done = []
    for entry in planned:
        try:
            done.append(_compact_one(session, entry, params))
        except Refused as refusal:
            name = f"{entry['database']}.{entry['collection']}"
            result.add(
                unknown(f"compact {name}", refusal.reason, action=refusal.action)
            )
    return done


def _compact_one(session: MongoSession, entry: dict, params: dict) -> dict:
    started, clock = datetime.now(timezone.utc), time.monotonic()
    answer = session.command(
        entry["database"],
        {"compact": entry["collection"]},
        timeout=params.get("compact_timeout") or 3600.0,
    )
    freed = answer.get("bytesFreed")
    return {
        **entry,
        "bytes_freed": int(freed) if isinstance(freed, (int, float)) else None,
        "started": iso(started),
        "seconds": round(time.monotonic() - clock, 3),
    }


def _summary_finding(outcome: dict, check_mode: bool) -> Finding:
    planned, compacted = outcome["plan"], outcome["compacted"]
    size = human(sum(entry["storage_bytes"] for entry in planned))
    names = ", ".join(f"{e['database']}.{e['collection']}" for e in planned[:10])
    if not planned:
        message = "No collection reaches the size threshold; nothing to compact"
    elif outcome["refused"]:
        message = (
            f"Not compacted (refused): {len(planned)} collections planned, {names}"
        )
    elif check_mode:
        message = f"Would compact {len(planned)} collections ({size} on disk): {names}"
    else:
        freed = human(sum(entry["bytes_freed"] or 0 for entry in compacted))
        message = (
            f"Compacted {len(compacted)} of {len(planned)} collections, freed {freed}"
        )
    return Finding(name="compaction", status=OK, message=message, value=len(compacted))


def _answer(
    result: CheckResult, outcome: dict, window: Any, phases: Phases, check_mode: bool
) -> dict:
    compacted = outcome["compacted"]
    freed = sum(entry["bytes_freed"] or 0 for entry in compacted)
    result.metrics.update(
        collections_planned=len(outcome["plan"]),
        collections_compacted=len(compacted),
        bytes_freed=freed,
    )
    if "compact" in phases.record:
        result.metrics["compaction_seconds"] = phases.record["compact"]["seconds"]
    answer = result.to_dict(SUBJECT)
    would = check_mode and not outcome["refused"] and bool(outcome["plan"])
    answer.update(
        changed=bool(compacted) or would,
        plan=outcome["plan"],
        compacted=compacted,
        bytes_freed=freed,
        refused=outcome["refused"],
        reason=outcome["reason"],
        window=window.as_dict(),
        phases=phases.record,
    )
    return answer
