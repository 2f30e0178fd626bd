# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replication findings: a replica's link to its primary, or a primary's replicas."""

from __future__ import annotations

from typing import Any

from ansible_collections.trm.maintenance.plugins.module_utils.checks import (
    CheckResult,
    Finding,
    measured,
    unknown,
)
from ansible_collections.trm.maintenance.plugins.module_utils.redis_findings import (
    Observation,
    StatsOptions,
    duration_text,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    CRITICAL,
    OK,
    WARNING,
)

REPLICATION_ACTIONS = {
    "master_link": (
        "Restore the replica's link to its primary: check the primary, the "
        "network and masterauth, then watch master_link_status"
    ),
    "master_last_io": (
        "The replica has not heard from its primary: check the primary's load "
        "and the network between them"
    ),
    "replication_lag": (
        "Replication falls behind: check the replica's load and the network, "
        "and the primary's write volume"
    ),
    "replicas": (
        "Bring the missing replica back (start it, check replicaof and "
        "masterauth) so the primary is not the only copy"
    ),
}


def judge_replication(
    obs: Observation, options: StatsOptions, result: CheckResult
) -> None:
    """Role-aware: a replica's link to its primary, or a primary's replicas."""
    role = obs.value("role")
    if role == "slave":
        for finding in replica_findings(obs, options, result.metrics):
            result.add(finding)
        return
    for finding in primary_findings(obs, options, result.metrics):
        result.add(finding)


def replica_findings(obs: Observation, options: StatsOptions, metrics: dict) -> list:
    """A replica: link status, seconds since the last I/O, and offset lag."""
    primary = f"{obs.value('master_host')}:{obs.value('master_port')}"
    link = obs.value("master_link_status")
    found = [_master_link(obs, link, primary)]
    if link != "up":
        return found
    last_io = obs.number("master_last_io_seconds_ago")
    if last_io is not None:
        metrics["master_last_io_seconds"] = last_io
        found.append(
            measured(
                "master_last_io",
                int(last_io),
                options.thresholds["replica_last_io"],
                label=f"Seconds since the last I/O with the primary {primary}",
                unit="s",
                action=REPLICATION_ACTIONS["master_last_io"],
            )
        )
    found.append(_replica_lag(obs, options, metrics))
    return found


def _master_link(obs: Observation, link: Any, primary: str) -> Finding:
    details = {"role": "replica", "primary": primary, "master_link_status": link}
    if link == "up":
        syncing = bool(obs.number("master_sync_in_progress"))
        status = WARNING if syncing else OK
        note = ", a full sync is in progress" if syncing else ""
        return Finding(
            "master_link",
            status,
            f"This replica's link to its primary {primary} is up{note}",
            value=link,
            action=REPLICATION_ACTIONS["master_link"] if syncing else None,
            details=details,
        )
    down_for = obs.number("master_link_down_since_seconds")
    since = f" for {duration_text(down_for)}" if down_for and down_for > 0 else ""
    return Finding(
        "master_link",
        CRITICAL,
        f"This replica's link to its primary {primary} is {link}{since}",
        value=link,
        action=REPLICATION_ACTIONS["master_link"],
        details={**details, "master_link_down_since_seconds": down_for},
    )


def _replica_lag(obs: Observation, options: StatsOptions, metrics: dict) -> Finding:
    """Bytes the replica received from its primary but has not applied yet."""
    read = obs.number("slave_read_repl_offset")
    applied = obs.number("slave_repl_offset")
    if read is None or applied is None:
        return unknown(
            "replication_lag",
            "This Redis version does not report slave_read_repl_offset (Redis 7 "
            "does), so the replica's lag cannot be measured from the replica",
        )
    lag = max(int(read - applied), 0)
    metrics["replication_lag_bytes"] = lag
    return measured(
        "replication_lag",
        lag,
        options.thresholds["replication_lag"],
        label="Replication bytes received but not applied",
        unit="B",
        action=REPLICATION_ACTIONS["replication_lag"],
        details={"slave_read_repl_offset": read, "slave_repl_offset": applied},
    )


def primary_findings(obs: Observation, options: StatsOptions, metrics: dict) -> list:
    """A primary: the connected replicas, their states and their offset lag."""
    offset = obs.number("master_repl_offset") or 0
    replicas = [
        _replica_entry(value, offset)
        for key, value in sorted((obs.info or {}).items())
        if key.startswith("slave") and key[5:].isdigit() and isinstance(value, dict)
    ]
    count = obs.number("connected_slaves")
    count = len(replicas) if count is None else int(count)
    found = [_replicas_finding(count, replicas, options)]
    if replicas:
        lag = max(entry["offset_lag_bytes"] for entry in replicas)
        metrics["replication_lag_bytes"] = lag
        found.append(
            measured(
                "replication_lag",
                lag,
                options.thresholds["replication_lag"],
                label="Largest replica offset lag",
                unit="B",
                action=REPLICATION_ACTIONS["replication_lag"],
                details={"master_repl_offset": offset},
            )
        )
    return found


def _replica_entry(value: dict, offset: float) -> dict:
    replica_offset = value.get("offset")
    lag = offset - replica_offset if isinstance(replica_offset, int) else 0
    return {
        "address": f"{value.get('ip')}:{value.get('port')}",
        "state": value.get("state"),
        "offset": replica_offset,
        "offset_lag_bytes": max(int(lag), 0),
        "lag_seconds": value.get("lag"),
    }


def _replicas_finding(count: int, replicas: list, options: StatsOptions) -> Finding:
    finding = measured(
        "replicas",
        count,
        options.thresholds["connected_replicas"],
        label="Number of replicas connected",
        action=REPLICATION_ACTIONS["replicas"],
        details={"role": "primary", "replicas": replicas},
    )
    stalled = [r for r in replicas if r["state"] != "online"]
    if stalled and finding.status == OK:
        names = ", ".join(f"{r['address']} ({r['state']})" for r in stalled)
        finding.status = WARNING
        finding.message = f"{finding.message}; not online: {names}"
        finding.action = REPLICATION_ACTIONS["replicas"]
    return finding
