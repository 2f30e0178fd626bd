# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replica set health: member states, replication lag and the oplog window.

Lag is the distance between the primary's last applied operation and each
secondary's, both read from ``replSetGetStatus``. The wall clock never enters
it, so an idle set, whose last write may be hours old, shows no lag.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ansible_collections.trm.maintenance.plugins.module_utils.checks import (
    CheckResult,
    Finding,
    measured,
    unknown,
)
from ansible_collections.trm.maintenance.plugins.module_utils.mongo import (
    aware,
    iso,
    plain,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    CRITICAL,
    OK,
    WARNING,
)

PRIMARY = 1
SECONDARY = 2
ARBITER = 7
# Member states by what they mean for the set (MongoDB's numbering).
HEALTHY_STATES = frozenset({PRIMARY, SECONDARY, ARBITER})
TRANSIENT_STATES = frozenset({0, 3, 5})  # STARTUP, RECOVERING, STARTUP2
OPLOG = ("local", "oplog.rs")


def check_replication(context: Any, result: CheckResult) -> None:
    """Member states, lag and oplog window when the server is a set member."""
    hello = context.session.hello()
    if hello.get("msg") == "isdbgrid":
        result.add(_not_applicable("the server is a mongos router; check the shards"))
        return
    if not hello.get("setName"):
        result.add(_not_applicable("the server is not a replica set member"))
        return
    status = context.session.command("admin", "replSetGetStatus")
    members = status.get("members")
    if not isinstance(members, list) or not members:
        result.add(unknown("replication", "replSetGetStatus listed no members"))
        return
    primary = next((m for m in members if m.get("state") == PRIMARY), None)
    result.add(members_finding(members, primary, status.get("set")))
    result.add(
        lag_finding(members, primary, context.settings.threshold("replication_lag"))
    )
    result.metrics.update(_member_metrics(members, result))
    _oplog(context, result)


def _not_applicable(reason: str) -> Finding:
    return Finding(
        name="replication",
        status=OK,
        message=f"Replication not checked: {reason}",
    )


def members_finding(members: list, primary: dict | None, set_name: Any) -> Finding:
    """One finding for the states of all members; no primary is critical."""
    listed = [_member(member) for member in members]
    troubled = [m for m in listed if m["status"] != OK]
    status = max((m["status"] for m in troubled), key=_rank, default=OK)
    if primary is None:
        status = CRITICAL
    healthy = len(listed) - len(troubled)
    if primary is None:
        message = f"Replica set {set_name} has no primary"
    elif troubled:
        names = ", ".join(f"{m['name']} is {m['state']}" for m in troubled)
        message = f"{healthy} of {len(listed)} members healthy: {names}"
    else:
        message = f"All {len(listed)} members of replica set {set_name} are healthy"
    return Finding(
        name="replica_set_members",
        status=status,
        message=message,
        value=healthy,
        action=None if status == OK else _MEMBER_ACTION,
        details={"replica_set": set_name, "members": listed},
    )


_MEMBER_ACTION = (
    "Check the members that are not healthy (mongod logs, rs.status()); the set "
    "needs a majority of voting members to keep a primary"
)


def _rank(status: str) -> int:
    return (OK, WARNING, CRITICAL).index(status)


def _member(member: dict) -> dict:
    state = member.get("state")
    if member.get("health") == 0 or (
        state not in HEALTHY_STATES and state not in TRANSIENT_STATES
    ):
        status = CRITICAL
    elif state in TRANSIENT_STATES:
        status = WARNING
    else:
        status = OK
    return {
        "name": member.get("name"),
        "state": member.get("stateStr") or str(state),
        "health": member.get("health"),
        "status": status,
        "optime": plain(_optime_moment(member)),
        "sync_source": member.get("syncSourceHost") or None,
        "ping_ms": member.get("pingMs"),
        "uptime_seconds": member.get("uptime"),
        "message": member.get("lastHeartbeatMessage") or member.get("infoMessage"),
    }


def _optime_seconds(member: dict) -> float | None:
    """Seconds of the member's last applied operation, from its optime."""
    optime = member.get("optime")
    ts = optime.get("ts") if isinstance(optime, dict) else optime
    seconds = getattr(ts, "time", None)
    if isinstance(seconds, int) and seconds > 0:
        return float(seconds)
    moment = member.get("optimeDate")
    if isinstance(moment, datetime) and moment.year > 1970:
        return aware(moment).timestamp()
    return None


def _optime_moment(member: dict) -> Any:
    seconds = _optime_seconds(member)
    if seconds is None:
        return None
    return iso(datetime.fromtimestamp(seconds, tz=timezone.utc))


def replication_lags(members: list, primary: dict) -> dict:
    """Lag in seconds of each healthy secondary behind the primary's last write."""
    head = _optime_seconds(primary)
    lags = {}
    for member in members:
        if member.get("state") != SECONDARY or member.get("health") == 0:
            continue
        applied = _optime_seconds(member)
        if head is not None and applied is not None:
            lags[member.get("name")] = max(0.0, head - applied)
    return lags


def lag_finding(members: list, primary: dict | None, threshold: Any) -> Finding:
    """The largest lag among the healthy secondaries, judged by ``threshold``."""
    if primary is None:
        return unknown("replication_lag", "No primary to measure replication lag from")
    lags = replication_lags(members, primary)
    if not lags:
        return Finding(
            name="replication_lag",
            status=OK,
            message="No healthy secondary to measure replication lag on",
            details={"lags": {}},
        )
    worst = max(lags, key=lags.get)
    return measured(
        "replication_lag",
        lags[worst],
        threshold,
        label=f"Replication lag of {worst}",
        unit="s",
        action=(
            "Check the lagging secondary's load, disk and network, and writes "
            "with a weak write concern"
        ),
        details={"lags": lags, "primary": primary.get("name")},
    )


def _member_metrics(members: list, result: CheckResult) -> dict:
    lag = next((f for f in result.findings if f.name == "replication_lag"), None)
    states = [member.get("state") for member in members]
    found = {
        "members_total": len(members),
        "members_healthy": sum(
            state in HEALTHY_STATES and member.get("health") != 0
            for state, member in zip(states, members)
        ),
    }
    if lag is not None and isinstance(lag.value, (int, float)):
        found["replication_lag_seconds"] = lag.value
    return found


def _oplog(context: Any, result: CheckResult) -> None:
    """The time between the oldest and the newest oplog entry."""
    ends = [
        context.session.find(
            *OPLOG,
            {},
            projection={"ts": 1, "_id": 0},
            sort=[("$natural", order)],
            limit=1,
        )
        for order in (1, -1)
    ]
    if not ends[0] or not ends[1]:
        result.add(unknown("oplog_window", "The oplog (local.oplog.rs) is empty"))
        return
    first, last = (getattr(end[0].get("ts"), "time", None) for end in ends)
    if not isinstance(first, int) or not isinstance(last, int):
        result.add(unknown("oplog_window", "The oplog entries carry no timestamps"))
        return
    hours = round((last - first) / 3600, 2)
    result.metrics["oplog_window_hours"] = hours
    result.add(
        measured(
            "oplog_window",
            hours,
            context.settings.threshold("oplog_window"),
            label="Oplog window",
            unit="h",
            action=(
                "Grow the oplog (replSetResizeOplog) so that it covers more than "
                "the backup interval and a member's resync"
            ),
            details={
                "first": plain(ends[0][0]["ts"]),
                "last": plain(ends[1][0]["ts"]),
                "backup_interval_hours": context.settings.backup_interval,
            },
        )
    )
