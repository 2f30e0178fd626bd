# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Slow log findings: new entries, the top commands without arguments, lost entries."""

from __future__ import annotations

from dataclasses import dataclass

from ansible_collections.trm.maintenance.plugins.module_utils.checks import (
    CheckResult,
    Finding,
    measured,
    unknown,
)
from ansible_collections.trm.maintenance.plugins.module_utils.redis_findings import (
    UNKNOWN_CONFIG_ACTION,
    Observation,
    StatsOptions,
    ok_finding,
    to_int,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    WARNING,
)

# Commands whose first argument names what they do; the slow log shows them
# as "CONFIG GET" rather than "CONFIG", and drops every other argument.
CONTAINER_COMMANDS = frozenset(
    {
        "ACL",
        "CLIENT",
        "CLUSTER",
        "COMMAND",
        "CONFIG",
        "DEBUG",
        "FUNCTION",
        "LATENCY",
        "MEMORY",
        "MODULE",
        "OBJECT",
        "PUBSUB",
        "SCRIPT",
        "SLOWLOG",
        "XGROUP",
        "XINFO",
    }
)


SLOWLOG_ACTIONS = {
    "slowlog": (
        "Review the slow commands below: replace KEYS and large range reads "
        "with SCAN or smaller pages, and split large values"
    ),
    "slowlog_lost": (
        "Slow commands are logged faster than the slow log keeps them: raise "
        "slowlog-max-len or run the review more often"
    ),
}


def judge_slowlog(obs: Observation, options: StatsOptions, result: CheckResult) -> None:
    """New slow log entries, the top commands, and entries that were lost."""
    if obs.slowlog is None:
        reason = f"The slow log could not be read: {obs.slowlog_error}"
        result.add(unknown("slowlog", reason))
        result.add(unknown("slowlog_lost", reason))
        return
    review = SlowlogReview.of(obs.slowlog, options.slowlog_since_id)
    max_len = to_int(obs.config_value("slowlog-max-len"))
    result.metrics.update(
        slowlog_length=len(obs.slowlog),
        slowlog_new_entries=len(review.new),
        slowlog_last_id=review.last_id,
    )
    result.add(slowlog_finding(review, obs, options))
    lost = slowlog_lost_finding(review, len(obs.slowlog), max_len, obs)
    result.metrics["slowlog_lost_entries"] = lost.value
    result.add(lost)


@dataclass(frozen=True)
class SlowlogReview:
    """The slow log entries newer than the last one seen, and the ids around them."""

    new: list
    since_id: int | None
    last_id: int | None
    oldest_id: int | None
    restarted: bool

    @classmethod
    def of(cls, entries: list, since_id: int | None) -> SlowlogReview:
        """Select the entries after ``since_id`` (all of them when it is None)."""
        ids = [entry["id"] for entry in entries]
        newest = max(ids) if ids else None
        # Ids restart at zero with the server; a previous id above every id
        # kept means the server restarted since the previous review.
        restarted = since_id is not None and newest is not None and since_id > newest
        new = [
            entry
            for entry in entries
            if since_id is None or restarted or entry["id"] > since_id
        ]
        # An empty log keeps the previous position for the next review.
        last_id = newest if newest is not None else since_id
        oldest = min(ids) if ids else None
        return cls(new, since_id, last_id, oldest, restarted)


def command_name(entry: dict) -> str:
    """The command of a slow log entry without its arguments (keys are data too)."""
    raw = entry.get("command") or b""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    words = text.split()
    if not words:
        return "?"
    name = words[0].upper()
    if name in CONTAINER_COMMANDS and len(words) > 1:
        return f"{name} {words[1].upper()}"
    return name


def top_commands(entries: list, limit: int) -> dict:
    """The commands with most entries and with most time, arguments left out."""
    table: dict = {}
    for entry in entries:
        name = command_name(entry)
        row = table.setdefault(
            name, {"command": name, "count": 0, "total_ms": 0.0, "max_ms": 0.0}
        )
        duration_ms = entry.get("duration", 0) / 1000
        row["count"] += 1
        row["total_ms"] += duration_ms
        row["max_ms"] = max(row["max_ms"], duration_ms)
    rows = [_rounded(row) for row in table.values()]
    by_count = sorted(rows, key=lambda row: (-row["count"], -row["total_ms"]))
    by_duration = sorted(rows, key=lambda row: (-row["total_ms"], -row["count"]))
    return {"by_count": by_count[:limit], "by_duration": by_duration[:limit]}


def _rounded(row: dict) -> dict:
    return {
        **row,
        "total_ms": round(row["total_ms"], 3),
        "max_ms": round(row["max_ms"], 3),
    }


def slowlog_finding(
    review: SlowlogReview, obs: Observation, options: StatsOptions
) -> Finding:
    """The number of new slow entries, with the top commands in the details."""
    top = top_commands(review.new, options.top_commands)
    since = review.since_id
    if since is None:
        label = "Number of slow log entries (no earlier review given)"
    elif review.restarted:
        label = f"Number of slow log entries (the server restarted since #{since})"
    else:
        label = f"Number of slow log entries since #{since}"
    finding = measured(
        "slowlog",
        len(review.new),
        options.thresholds["slowlog_entries"],
        label=label,
        action=SLOWLOG_ACTIONS["slowlog"],
        details={
            "since_id": since,
            "last_id": review.last_id,
            "restarted": review.restarted,
            "slower_than_us": to_int(obs.config_value("slowlog-log-slower-than")),
            "top_by_count": top["by_count"],
            "top_by_duration": top["by_duration"],
        },
    )
    if top["by_duration"]:
        worst = top["by_duration"][0]
        finding.message += f"; most time in {worst['command']} ({worst['count']}x)"
    return finding


def slowlog_lost_finding(
    review: SlowlogReview, length: int, max_len: int | None, obs: Observation
) -> Finding:
    """Warn when the slow log is full and entries fell out before anyone read them."""
    name = "slowlog_lost"
    gap = _lost(review)
    details = {"length": length, "max_len": max_len, "oldest_id": review.oldest_id}
    if max_len is None and review.since_id is None:
        return unknown(
            name,
            "Whether slow log entries were lost is unknown: slowlog-max-len could "
            f"not be read ({obs.config_reason('slowlog-max-len')}) and no "
            "slowlog_since_id was given",
            action=UNKNOWN_CONFIG_ACTION,
            **details,
        )
    full = max_len is not None and 0 < max_len <= length
    if gap and (full or max_len is None):
        where = f"full at {max_len} entries" if full else "length unknown"
        return Finding(
            name,
            WARNING,
            f"{gap} slow log entries were lost before this review (the log is {where})",
            value=gap,
            action=SLOWLOG_ACTIONS["slowlog_lost"],
            details=details,
        )
    state = f"{length} of {max_len} entries" if max_len is not None else "no gap"
    return ok_finding(
        name, f"No slow log entries were lost ({state})", value=0, **details
    )


def _lost(review: SlowlogReview) -> int:
    """How many entry ids between the last review and the oldest entry are gone."""
    if review.oldest_id is None:
        return 0
    if review.since_id is None or review.restarted:
        return review.oldest_id
    return max(review.oldest_id - review.since_id - 1, 0)
