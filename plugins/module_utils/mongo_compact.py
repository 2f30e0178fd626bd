# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compaction of large MongoDB collections: a disruptive operation, guarded.

The order is always the same: preconditions (the shared maintenance windows of
``windows.py``, or the guard that checked them; the server's role), then the
plan (collections of the allowed databases at or over the size threshold), then,
unless in check mode or refused, ``compact`` on each planned collection, timed,
with the bytes it freed.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
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
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    OK,
    WARNING,
)
from ansible_collections.trm.maintenance.plugins.module_utils.windows import (
    DEFAULT_WINDOWS,
    UTC_NAME,
    Request,
    evaluate,
    inside_text,
    load_zone,
    outside_text,
    parse_now,
    parse_windows,
    utc_text,
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


# compact can run for hours on a large collection; a week is beyond any window.
MAX_COMPACT_TIMEOUT = 7 * 24 * 3600.0
DEFAULT_COMPACT_TIMEOUT = 3600.0


def compact_timeout(value: Any) -> float:
    """Seconds to wait for each ``compact``: above 0, at most a week."""
    seconds = DEFAULT_COMPACT_TIMEOUT if value is None else value
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or not 0 < seconds <= MAX_COMPACT_TIMEOUT
    ):
        raise OptionError(
            "compact_timeout",
            value,
            f"must be a number of seconds above 0, at most {MAX_COMPACT_TIMEOUT:g}",
        )
    return float(seconds)


@dataclass(frozen=True)
class WindowGate:
    """The maintenance windows at the moment of the operation, and who decides."""

    request: Request
    verdict: Any
    checked_by: str | None
    allow_outside: bool

    @property
    def allowed_by(self) -> str | None:
        """Why the operation may run: the window, its checker, or the override."""
        if self.checked_by:
            return "window_checked_by"
        if self.verdict.inside:
            return "window"
        return "allow_outside_window" if self.allow_outside else None

    def as_dict(self) -> dict:
        """The windows as the result shows them."""
        current, following = self.verdict.current, self.verdict.following
        shown = current or following
        return {
            "open": self.verdict.inside,
            "window": current.window.name if current else None,
            "opens_at": shown.start.isoformat() if shown else None,
            "closes_at": shown.end.isoformat() if shown else None,
            "current": current.to_dict() if current else None,
            "next": following.to_dict() if following else None,
            "now": utc_text(self.verdict.now),
            "windows": [window.to_dict() for window in self.request.windows],
            "checked_by": self.checked_by,
            "allowed_by": self.allowed_by,
        }


def window_gate(params: dict) -> WindowGate:
    """Parse the window options and judge the moment of the operation."""
    zone_name = params.get("timezone") or UTC_NAME
    zone = load_zone(zone_name, "timezone")
    specs = params.get("windows")
    windows = parse_windows(
        DEFAULT_WINDOWS if specs is None else specs,
        default_timezone=zone_name,
        option="windows",
    )
    request = Request(windows=windows, now=parse_now(params.get("now"), zone=zone))
    checked_by = params.get("window_checked_by")
    if checked_by is not None and not str(checked_by).strip():
        raise OptionError(
            "window_checked_by", checked_by, "must name what checked the window"
        )
    return WindowGate(
        request=request,
        verdict=evaluate(windows, request.now),
        checked_by=str(checked_by).strip() if checked_by else None,
        allow_outside=bool(params.get("allow_outside_window")),
    )


def run_mongo_compact(params: dict, *, check_mode: bool) -> dict:
    """Plan, guard and (unless in check mode or refused) run the compaction."""
    databases = allowed_databases(params.get("databases"))
    min_size = parse_size(params.get("min_size"), "min_size") or 0
    timeout = compact_timeout(params.get("compact_timeout"))
    window = window_gate(params)
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
                        session, outcome["plan"], timeout, result
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


def _window_guard(window: WindowGate, params: dict, result: CheckResult) -> str | None:
    verdict = window.verdict
    own = (
        inside_text(verdict)
        if verdict.inside
        else outside_text(window.request, verdict)
    )
    if window.checked_by:
        message = (
            f"Allowed by {window.checked_by}, which checked the maintenance window "
            f"(here: {own[0].lower()}{own[1:]})"
        )
    elif verdict.inside:
        message = own
    elif window.allow_outside:
        message = f"{own}; allowed by allow_outside_window"
    else:
        reason = f"{own[0].lower()}{own[1:]}"
        result.add(
            Finding(
                name="maintenance_window",
                status=WARNING,
                message=f"Compaction refused: {reason}",
                action=(
                    "Run it inside a window, or set allow_outside_window to override"
                ),
            )
        )
        return reason
    result.add(Finding(name="maintenance_window", status=OK, message=message))
    return None


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
    session: MongoSession, planned: list, timeout: float, result: CheckResult
) -> list:
    done = []
    for entry in planned:
        try:
            done.append(_compact_one(session, entry, timeout))
        except Refused as refusal:
            name = f"{entry['database']}.{entry['collection']}"
            result.add(
                unknown(f"compact {name}", refusal.reason, action=refusal.action)
            )
    return done


def _compact_one(session: MongoSession, entry: dict, timeout: float) -> dict:
    started, clock = datetime.now(timezone.utc), time.monotonic()
    answer = session.command(
        entry["database"], {"compact": entry["collection"]}, timeout=timeout
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
