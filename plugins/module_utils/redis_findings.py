# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turns what a Redis server said (INFO, CONFIG, SLOWLOG) into findings.

Nothing here talks to a server: the functions take the answers, already
collected, so that every decision can be tested with plain data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ansible_collections.trm.maintenance.plugins.module_utils.checks import (
    CheckResult,
    Finding,
    measured,
    unknown,
)
from ansible_collections.trm.maintenance.plugins.module_utils.redis_client import (
    RedisCallError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    CRITICAL,
    OK,
    WARNING,
    format_value,
)

GROUP_FINDINGS = {
    "memory": ("memory_usage", "fragmentation", "evicted_keys"),
    "hit_rate": ("hit_rate_lifetime", "hit_rate_interval"),
    "clients": ("clients_usage", "blocked_clients", "rejected_connections"),
    "persistence": ("rdb_save_status", "rdb_save_age", "aof_write_status"),
    "replication": ("replication",),
    "slowlog": ("slowlog", "slowlog_lost"),
    "keyspace": ("keyspace",),
}
GROUPS = tuple(GROUP_FINDINGS)

# Every metric the module can report, present (null) when it was not measured,
# so that reports and trends see the same keys on every run.
METRIC_KEYS = (
    "up",
    "connect_ms",
    "ping_ms",
    "uptime_seconds",
    "used_memory_bytes",
    "maxmemory_bytes",
    "total_system_memory_bytes",
    "memory_usage_pct",
    "mem_fragmentation_ratio",
    "evicted_keys",
    "keyspace_hits",
    "keyspace_misses",
    "hit_rate_pct",
    "hit_rate_lifetime_pct",
    "hit_rate_interval_pct",
    "sample_seconds",
    "ops_per_second",
    "evicted_keys_interval",
    "connected_clients",
    "maxclients",
    "blocked_clients",
    "rejected_connections",
    "rdb_last_save_age_seconds",
    "rdb_changes_since_last_save",
    "connected_replicas",
    "replication_lag_bytes",
    "master_last_io_seconds",
    "slowlog_length",
    "slowlog_new_entries",
    "slowlog_last_id",
    "slowlog_lost_entries",
    "keys_total",
    "expires_total",
)

UNKNOWN_CONFIG_ACTION = (
    "Grant the monitoring user CONFIG GET (+config|get), or leave this "
    "check out where the provider forbids CONFIG"
)

ACTIONS = {
    "memory_usage": (
        "Raise maxmemory or the server's memory, or find what fills the cache "
        "(keys without a TTL, large values) before it reaches its limit"
    ),
    "fragmentation_high": (
        "Enable activedefrag, or restart the server in a maintenance window "
        "(a replica first) to give the fragmented memory back"
    ),
    "fragmentation_low": (
        "Redis memory is being swapped out: add memory or lower maxmemory, and "
        "check the host's swap use"
    ),
    "evicted_keys": (
        "Redis drops keys to stay under maxmemory: raise maxmemory or shorten "
        "TTLs, and confirm that the eviction policy suits the data"
    ),
    "hit_rate": (
        "Review the cache keys and TTLs: misses mean the application asks for "
        "keys that expired, were evicted or were never written"
    ),
    "clients_usage": (
        "Find which clients hold connections (CLIENT LIST), fix connection leaks "
        "or pool sizes, or raise maxclients"
    ),
    "blocked_clients": (
        "Check the consumers blocked on lists or streams (BLPOP, XREAD): a "
        "producer may have stopped"
    ),
    "rejected_connections": (
        "Redis turned clients away at maxclients: raise maxclients or reduce the "
        "application's connection pools"
    ),
    "rdb_save_status": (
        "Read the Redis log for the failed background save (disk full, "
        "permissions, fork failure) and run BGSAVE once it is fixed"
    ),
    "rdb_save_age": (
        "Find out why snapshots stopped (failed BGSAVE, save rules) and check "
        "the disk and the Redis log"
    ),
    "aof_write_status": (
        "Read the Redis log for the failed AOF write (disk full, permissions) "
        "and fix it: writes are refused until AOF can be written"
    ),
}


@dataclass(frozen=True)
class StatsOptions:
    """What to check and against which thresholds."""

    groups: tuple
    thresholds: dict
    sample_seconds: float = 0.0
    slowlog_since_id: int | None = None
    top_commands: int = 5
    fragmentation_min_bytes: int = 64 * 1024 * 1024


@dataclass
class Observation:
    """Everything one call learnt from the server, with the errors on the way."""

    connect_seconds: float = 0.0
    ping_seconds: float | None = None
    ping_error: RedisCallError | None = None
    info: dict | None = None
    info_error: RedisCallError | None = None
    config: dict = field(default_factory=dict)
    config_errors: dict = field(default_factory=dict)
    slowlog: list | None = None
    slowlog_error: RedisCallError | None = None
    second: dict | None = None
    second_error: RedisCallError | None = None
    interval_seconds: float | None = None
    commands_between: int = 0
    now: float = 0.0

    def value(self, key: str) -> Any:
        """A value of the first INFO sample, or None when it is missing."""
        return (self.info or {}).get(key)

    def number(self, key: str) -> float | None:
        """A numeric value of the first INFO sample, or None."""
        value = self.value(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return value

    def config_value(self, name: str) -> str | None:
        """A CONFIG GET answer; None when it could not be read."""
        return self.config.get(name)

    def config_reason(self, name: str) -> str:
        """Why a configuration value is missing, in words."""
        error = self.config_errors.get(name)
        if error is not None:
            return str(error)
        return f"the server did not report {name}"


def bytes_text(value: float) -> str:
    """Render a byte count the way a person reads it (KiB, MiB, GiB)."""
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def pct(part: float, whole: float) -> float:
    """``part`` as a percentage of ``whole``, to two decimals."""
    return round(part / whole * 100, 2)


def ok_finding(name: str, message: str, **details: Any) -> Finding:
    """A finding that is fine and measures nothing against a threshold."""
    value = details.pop("value", None)
    unit = details.pop("unit", None)
    return Finding(name, OK, message, value=value, unit=unit, details=details)


def info_metrics(obs: Observation, metrics: dict) -> None:
    """Copy the counters every group may use, whether or not it runs."""
    pairs = {
        "uptime_seconds": "uptime_in_seconds",
        "used_memory_bytes": "used_memory",
        "maxmemory_bytes": "maxmemory",
        "total_system_memory_bytes": "total_system_memory",
        "mem_fragmentation_ratio": "mem_fragmentation_ratio",
        "evicted_keys": "evicted_keys",
        "keyspace_hits": "keyspace_hits",
        "keyspace_misses": "keyspace_misses",
        "connected_clients": "connected_clients",
        "blocked_clients": "blocked_clients",
        "rejected_connections": "rejected_connections",
        "rdb_changes_since_last_save": "rdb_changes_since_last_save",
    }
    for metric, key in pairs.items():
        metrics[metric] = obs.number(key)
    if obs.info is not None:
        metrics["connected_replicas"] = obs.number("connected_slaves")


# Memory


def judge_memory(obs: Observation, options: StatsOptions, result: CheckResult) -> None:
    """Memory in use against its limit, fragmentation, evicted keys."""
    result.add(memory_usage(obs, options, result.metrics))
    result.add(fragmentation(obs, options))
    result.add(evicted_keys(obs, options))


def memory_usage(obs: Observation, options: StatsOptions, metrics: dict) -> Finding:
    """Used memory as a share of maxmemory, or of the host's memory without one."""
    used = obs.number("used_memory")
    maxmemory = obs.number("maxmemory") or 0
    system = obs.number("total_system_memory") or 0
    if used is None:
        return unknown("memory_usage", "INFO did not report used_memory")
    limit = maxmemory or system
    if not limit:
        return unknown(
            "memory_usage",
            "Neither maxmemory nor the host's memory is known, so memory in use "
            f"({bytes_text(used)}) cannot be judged",
            used_memory_bytes=used,
        )
    share = pct(used, limit)
    metrics["memory_usage_pct"] = share
    return measured(
        "memory_usage",
        share,
        options.thresholds["memory_usage"],
        label=_memory_label(used, limit, maxmemory),
        unit="%",
        action=ACTIONS["memory_usage"],
        details={
            "used_memory_bytes": used,
            "limit_bytes": limit,
            "limit_source": "maxmemory" if maxmemory else "system_memory",
            "maxmemory_policy": obs.value("maxmemory_policy"),
        },
    )


def _memory_label(used: float, limit: float, maxmemory: float) -> str:
    of = "maxmemory" if maxmemory else "host memory, no maxmemory set"
    return f"Memory in use ({bytes_text(used)} of {bytes_text(limit)} {of})"


def fragmentation(obs: Observation, options: StatsOptions) -> Finding:
    """The fragmentation ratio (RSS over used memory), high or low."""
    ratio = obs.number("mem_fragmentation_ratio")
    used = obs.number("used_memory") or 0
    if ratio is None:
        return unknown("fragmentation", "INFO did not report mem_fragmentation_ratio")
    details = {"used_memory_bytes": used, "rss_bytes": obs.number("used_memory_rss")}
    if used < options.fragmentation_min_bytes:
        floor = bytes_text(options.fragmentation_min_bytes)
        return ok_finding(
            "fragmentation",
            f"Fragmentation ratio is {format_value(ratio)}, not judged: only "
            f"{bytes_text(used)} in use, under {floor} (fragmentation_min_used_mb), "
            "where the allocator's overhead dominates",
            value=ratio,
            **details,
        )
    threshold = options.thresholds["fragmentation_ratio"]
    low = _below_normal(ratio, threshold)
    return measured(
        "fragmentation",
        ratio,
        threshold,
        label="Fragmentation ratio",
        action=ACTIONS["fragmentation_low" if low else "fragmentation_high"],
        details=details,
    )


def _below_normal(value: float, threshold: Any) -> bool:
    normal = getattr(threshold, "normal", (None, None))
    return normal[0] is not None and value < normal[0]


def evicted_keys(obs: Observation, options: StatsOptions) -> Finding:
    """Keys evicted since the server started."""
    count = obs.number("evicted_keys")
    if count is None:
        return unknown("evicted_keys", "INFO did not report evicted_keys")
    return measured(
        "evicted_keys",
        int(count),
        options.thresholds["evicted_keys"],
        label=f"Number of keys evicted since start ({uptime_text(obs)})",
        action=ACTIONS["evicted_keys"],
        details={
            "maxmemory_policy": obs.value("maxmemory_policy"),
            "evicted_keys_interval": delta(obs, "evicted_keys"),
        },
    )


def uptime_text(obs: Observation) -> str:
    """How long the server has run, as "up 3.2 d"."""
    seconds = obs.number("uptime_in_seconds")
    return f"up {duration_text(seconds)}" if seconds is not None else "uptime unknown"


def plural(count: int, noun: str) -> str:
    """``count`` and ``noun``, with an s unless the count is one."""
    return f"{format_value(count)} {noun}{'' if count == 1 else 's'}"


def duration_text(seconds: float) -> str:
    """Render seconds as the largest sensible unit: 45 s, 12 min, 5.2 h, 3.1 d."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{format_value(round(seconds / size, 1))} {unit}"
    return f"{format_value(round(seconds, 1))} s"


def delta(obs: Observation, key: str) -> int | None:
    """How much counter ``key`` grew between the two samples; None if unknown."""
    if obs.second is None or obs.info is None:
        return None
    before, after = obs.info.get(key), obs.second.get(key)
    if not isinstance(before, int) or not isinstance(after, int) or after < before:
        return None
    return after - before


# Hit rate


def judge_hit_rate(
    obs: Observation, options: StatsOptions, result: CheckResult
) -> None:
    """The hit rate since start and over the sampling interval."""
    threshold = options.thresholds["hit_rate"]
    hits, misses = obs.number("keyspace_hits"), obs.number("keyspace_misses")
    lifetime = hit_rate_finding(
        "hit_rate_lifetime",
        hits,
        misses,
        threshold,
        label=f"Hit rate since start ({uptime_text(obs)})",
    )
    result.add(lifetime)
    result.metrics["hit_rate_lifetime_pct"] = lifetime.value
    result.metrics["hit_rate_pct"] = lifetime.value
    if options.sample_seconds <= 0:
        return
    interval = interval_finding(obs, threshold, result.metrics)
    result.add(interval)
    if obs.second is not None:
        result.metrics["hit_rate_pct"] = interval.value


def hit_rate_finding(
    name: str, hits: Any, misses: Any, threshold: Any, *, label: str
) -> Finding:
    """Judge hits against hits plus misses; no lookups at all is no verdict."""
    if hits is None or misses is None:
        return unknown(name, "INFO did not report keyspace_hits and keyspace_misses")
    lookups = hits + misses
    details = {"keyspace_hits": hits, "keyspace_misses": misses, "lookups": lookups}
    if lookups == 0:
        return ok_finding(name, f"{label}: no key lookups, so no hit rate", **details)
    return measured(
        name,
        pct(hits, lookups),
        threshold,
        label=label,
        unit="%",
        action=ACTIONS["hit_rate"],
        details=details,
    )


def interval_finding(obs: Observation, threshold: Any, metrics: dict) -> Finding:
    """The hit rate between the two INFO samples."""
    name = "hit_rate_interval"
    if obs.second is None:
        reason = obs.second_error or "the second sample was not taken"
        return unknown(
            name, f"The second INFO sample failed, so no recent hit rate: {reason}"
        )
    hits, misses = delta(obs, "keyspace_hits"), delta(obs, "keyspace_misses")
    if hits is None or misses is None:
        return unknown(
            name,
            "The hit and miss counters went back between the two samples (a "
            "restart or CONFIG RESETSTAT), so no recent hit rate",
        )
    seconds = obs.interval_seconds or 0.0
    _interval_metrics(obs, seconds, metrics)
    finding = hit_rate_finding(
        name, hits, misses, threshold, label=f"Hit rate over {seconds:.1f} s"
    )
    finding.details["interval_seconds"] = round(seconds, 3)
    metrics["hit_rate_interval_pct"] = finding.value
    return finding


def _interval_metrics(obs: Observation, seconds: float, metrics: dict) -> None:
    metrics["sample_seconds"] = round(seconds, 3)
    metrics["evicted_keys_interval"] = delta(obs, "evicted_keys")
    commands = delta(obs, "total_commands_processed")
    if commands is not None and seconds > 0:
        # Leave out the check's own commands, the first sample among them.
        others = max(commands - obs.commands_between, 0)
        metrics["ops_per_second"] = round(others / seconds, 2)


# Clients


def judge_clients(obs: Observation, options: StatsOptions, result: CheckResult) -> None:
    """Connected clients against maxclients, blocked clients, rejected ones."""
    result.add(clients_usage(obs, options, result.metrics))
    blocked = obs.number("blocked_clients")
    result.add(
        _counter(
            "blocked_clients",
            blocked,
            options.thresholds["blocked_clients"],
            "Number of clients blocked in BLPOP, XREAD and the like",
        )
    )
    rejected = _counter(
        "rejected_connections",
        obs.number("rejected_connections"),
        options.thresholds["rejected_connections"],
        f"Number of connections rejected since start ({uptime_text(obs)})",
    )
    rejected.details["rejected_connections_interval"] = delta(
        obs, "rejected_connections"
    )
    result.add(rejected)


def _counter(name: str, value: Any, threshold: Any, label: str) -> Finding:
    if value is None:
        return unknown(name, f"INFO did not report {name}")
    return measured(name, int(value), threshold, label=label, action=ACTIONS[name])


def clients_usage(obs: Observation, options: StatsOptions, metrics: dict) -> Finding:
    """Connected clients as a share of maxclients."""
    connected = obs.number("connected_clients")
    limit = obs.number("maxclients") or to_int(obs.config_value("maxclients"))
    if connected is None:
        return unknown("clients_usage", "INFO did not report connected_clients")
    if not limit:
        return unknown(
            "clients_usage",
            f"maxclients is unknown, so {int(connected)} connected clients cannot be "
            f"judged: {obs.config_reason('maxclients')}",
            action=UNKNOWN_CONFIG_ACTION,
            connected_clients=connected,
        )
    metrics["maxclients"] = limit
    return measured(
        "clients_usage",
        pct(connected, limit),
        options.thresholds["clients_usage"],
        label=f"Connections in use ({int(connected)} of maxclients {int(limit)})",
        unit="%",
        action=ACTIONS["clients_usage"],
        details={"connected_clients": connected, "maxclients": limit},
    )


def to_int(text: Any) -> int | None:
    """``text`` as a whole number, or None when it is not one."""
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


# Persistence


def judge_persistence(
    obs: Observation, options: StatsOptions, result: CheckResult
) -> None:
    """The last RDB save's status and age, and the last AOF write's status."""
    result.add(rdb_save_status(obs))
    result.add(rdb_save_age(obs, options, result.metrics))
    result.add(aof_write_status(obs))


def rdb_save_status(obs: Observation) -> Finding:
    """Whether the last background save succeeded."""
    status = obs.value("rdb_last_bgsave_status")
    if status is None:
        return unknown("rdb_save_status", "INFO did not report rdb_last_bgsave_status")
    running = bool(obs.number("rdb_bgsave_in_progress"))
    details = {"bgsave_in_progress": running, "rdb_saves": obs.number("rdb_saves")}
    if status == "ok":
        note = " (a save is running now)" if running else ""
        return ok_finding(
            "rdb_save_status", f"The last RDB save succeeded{note}", **details
        )
    return Finding(
        "rdb_save_status",
        CRITICAL,
        f"The last RDB background save failed (rdb_last_bgsave_status: {status})",
        value=status,
        action=ACTIONS["rdb_save_status"],
        details=details,
    )


def rdb_save_age(obs: Observation, options: StatsOptions, metrics: dict) -> Finding:
    """Minutes since the last save, judged only where snapshots are due."""
    saved_at = obs.number("rdb_last_save_time")
    changes = obs.number("rdb_changes_since_last_save")
    if saved_at is None or changes is None:
        return unknown("rdb_save_age", "INFO did not report the last RDB save")
    age = max(int(obs.now - saved_at), 0)
    metrics["rdb_last_save_age_seconds"] = age
    minutes = round(age / 60, 1)
    details = {
        "rdb_changes_since_last_save": int(changes),
        "last_save_time": saved_at,
        "age_seconds": age,
    }
    if changes == 0:
        message = f"No changes since the last RDB save {duration_text(age)} ago"
        return ok_finding("rdb_save_age", message, value=minutes, unit="min", **details)
    schedule = obs.config_value("save")
    if schedule is None:
        return unknown(
            "rdb_save_age",
            f"{int(changes)} changes wait for a save, but whether snapshots are "
            f"scheduled is unknown: {obs.config_reason('save')}",
            action=UNKNOWN_CONFIG_ACTION,
            **details,
        )
    if not schedule.strip():
        message = "RDB snapshots are not scheduled (save is empty); age not judged"
        return ok_finding("rdb_save_age", message, value=minutes, unit="min", **details)
    return measured(
        "rdb_save_age",
        minutes,
        options.thresholds["rdb_save_age"],
        label=f"Age of the last RDB save ({plural(int(changes), 'unsaved change')})",
        unit="min",
        action=ACTIONS["rdb_save_age"],
        details={**details, "save": schedule},
    )


def aof_write_status(obs: Observation) -> Finding:
    """Whether the append-only file is written without errors."""
    enabled = obs.number("aof_enabled")
    if enabled is None:
        return unknown("aof_write_status", "INFO did not report aof_enabled")
    if not enabled:
        return ok_finding("aof_write_status", "AOF is off", aof_enabled=False)
    write = obs.value("aof_last_write_status")
    rewrite = obs.value("aof_last_bgrewrite_status")
    details = {"aof_enabled": True, "aof_last_bgrewrite_status": rewrite}
    if write != "ok":
        message = f"The last AOF write failed (aof_last_write_status: {write})"
        return Finding(
            "aof_write_status",
            CRITICAL,
            message,
            value=write,
            action=ACTIONS["aof_write_status"],
            details=details,
        )
    if rewrite not in (None, "ok"):
        return Finding(
            "aof_write_status",
            WARNING,
            f"AOF writes succeed but the last AOF rewrite failed ({rewrite})",
            value=write,
            action=ACTIONS["aof_write_status"],
            details=details,
        )
    return ok_finding("aof_write_status", "AOF is on and its last write succeeded")


# Keyspace


def judge_keyspace(
    obs: Observation, options: StatsOptions, result: CheckResult
) -> None:
    """Keys, keys with a TTL and the average TTL, per database."""
    del options  # every group judge takes the same arguments
    databases = {
        key: value
        for key, value in sorted((obs.info or {}).items(), key=_db_order)
        if key.startswith("db") and key[2:].isdigit() and isinstance(value, dict)
    }
    keys = sum(int(value.get("keys", 0)) for value in databases.values())
    expires = sum(int(value.get("expires", 0)) for value in databases.values())
    result.metrics.update(keys_total=keys, expires_total=expires)
    for name, value in databases.items():
        result.metrics[f"{name}_keys"] = int(value.get("keys", 0))
        result.metrics[f"{name}_expires"] = int(value.get("expires", 0))
    shown = "; ".join(
        f"{name}: {plural(int(v.get('keys', 0)), 'key')}, "
        f"{format_value(int(v.get('expires', 0)))} with a TTL"
        for name, v in databases.items()
    )
    message = f"{plural(keys, 'key')} in {plural(len(databases), 'database')}"
    result.add(
        ok_finding(
            "keyspace",
            f"{message} ({shown})" if shown else message,
            value=keys,
            databases=databases,
        )
    )


def _db_order(item: tuple) -> tuple:
    key = item[0]
    digits = key[2:]
    return (0, int(digits)) if key.startswith("db") and digits.isdigit() else (1, 0)
