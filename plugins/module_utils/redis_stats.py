# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The redis_stats check: one connection, every answer it needs, then a verdict."""

from __future__ import annotations

import time
from typing import Any

from ansible_collections.trm.maintenance.plugins.module_utils.checks import (
    CheckResult,
    Finding,
    measured,
    unknown,
)
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.redis_client import (
    RedisCallError,
    RedisSession,
    RedisSettings,
    SentinelSettings,
    discover_primary,
    sentinel_from_params,
    settings_from_params,
)
from ansible_collections.trm.maintenance.plugins.module_utils.redis_findings import (
    GROUP_FINDINGS,
    GROUPS,
    METRIC_KEYS,
    Observation,
    StatsOptions,
    info_metrics,
    judge_clients,
    judge_hit_rate,
    judge_keyspace,
    judge_memory,
    judge_persistence,
)
from ansible_collections.trm.maintenance.plugins.module_utils.redis_replication import (
    judge_replication,
)
from ansible_collections.trm.maintenance.plugins.module_utils.redis_slowlog import (
    judge_slowlog,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    CRITICAL,
    UNKNOWN,
    parse_threshold,
)

SUBJECT = "Redis"
DEFAULT_SAMPLE_SECONDS = 5.0
MAX_SAMPLE_SECONDS = 300.0
PING_COUNT = 3
MIB = 1024 * 1024

# The thresholds and their defaults; every one is a module option of the same
# name. Percentages for usage, milliseconds for PING, minutes for the RDB save's
# age, seconds for a replica's I/O, bytes for replication lag, counts for the rest.
DEFAULT_THRESHOLDS = {
    "ping_latency": {"warning": 50, "critical": 200},
    "memory_usage": {"warning": 80, "critical": 90},
    "fragmentation_ratio": {"normal": [1.0, 1.5], "investigate": [0.9, 2.0]},
    "evicted_keys": {"warning": 0},
    "hit_rate": {"warning": 80, "critical": 50, "direction": "below"},
    "clients_usage": {"warning": 80, "critical": 90},
    "blocked_clients": {},
    "rejected_connections": {"warning": 0},
    "rdb_save_age": {"warning": 120, "critical": 1440},
    "replica_last_io": {"warning": 30, "critical": 60},
    "replication_lag": {"warning": 1048576, "critical": 67108864},
    "connected_replicas": {},
    "slowlog_entries": {"warning": 20},
}

# The configuration values some findings need; CONFIG may be forbidden (managed
# Redis, a monitoring user without +config|get), which only those findings feel.
CONFIG_NEEDS = {
    "persistence": ("save",),
    "slowlog": ("slowlog-max-len", "slowlog-log-slower-than"),
}

CONNECT_ACTIONS = {
    "connection_refused": (
        "Start Redis or correct login_host and login_port: nothing accepts "
        "connections on {address}"
    ),
    "timeout": (
        "Find out why {address} does not answer within {timeout:g} s (a blocking "
        "command, overload, a firewall that drops packets), or raise timeout"
    ),
    "dns": "Correct login_host or its DNS record",
    "tls": (
        "Set ca_certs to the CA that signed the server's certificate, check the "
        "host name it was issued for, or check that the port speaks TLS"
    ),
    "auth": "Correct login_user and login_password (or the credentials in url)",
    "permission": "Grant the monitoring user the commands listed in the notes",
    "loading": "Wait for Redis to finish loading its dataset, then check again",
    "sentinel": "Check the Sentinels and service_name: no primary is known",
    "misconf": (
        "Fix what makes the RDB save fail (disk space, the permissions of dir) "
        "and run BGSAVE: writes stay refused until a save succeeds"
    ),
    "connection": (
        "Check that {address} is a Redis server and that tls matches the port "
        "(a TLS port closes plain connections)"
    ),
}


def run_redis_stats(params: dict) -> dict:
    """Check one Redis server and return the module result."""
    options = parse_options(params)
    settings = settings_from_params(params)
    sentinel = sentinel_from_params(params)
    result = CheckResult(metrics=dict.fromkeys(METRIC_KEYS))
    target = None if sentinel else settings
    began = time.monotonic()
    try:
        if sentinel is not None:
            target = settings.at(*discover_primary(sentinel, settings))
        obs = observe(target, options)
    except RedisCallError as error:
        result.metrics["up"] = 0
        elapsed = time.monotonic() - began
        result.add(unreachable(error, target, sentinel, elapsed=elapsed))
        return result.to_dict(subject(target, sentinel))
    result.metrics["up"] = 1
    result.metrics["connect_ms"] = round(obs.connect_seconds * 1000, 3)
    result.add(ping_finding(obs, options, target, sentinel, result.metrics))
    judge(obs, options, result)
    return result.to_dict(subject(target, sentinel))


def subject(target: RedisSettings | None, sentinel: SentinelSettings | None) -> str:
    """The server's name in the summary line."""
    if sentinel is None:
        return f"{SUBJECT} {target.address}"
    where = target.address if target is not None else "no primary found"
    return f"{SUBJECT} {sentinel.service_name} ({where})"


JUDGES = {
    "memory": judge_memory,
    "hit_rate": judge_hit_rate,
    "clients": judge_clients,
    "persistence": judge_persistence,
    "replication": judge_replication,
    "slowlog": judge_slowlog,
    "keyspace": judge_keyspace,
}


def judge(obs: Observation, options: StatsOptions, result: CheckResult) -> None:
    """Add the findings and metrics of every group the caller asked for."""
    info_metrics(obs, result.metrics)
    for group in options.groups:
        # Every group but the slow log reads INFO; without it they are unknown.
        if group != "slowlog" and obs.info is None:
            reason = f"INFO could not be read: {obs.info_error}"
            for name in GROUP_FINDINGS[group]:
                result.add(unknown(name, reason))
            continue
        JUDGES[group](obs, options, result)


# Options


def parse_options(params: dict) -> StatsOptions:
    """Check the options that say what to check, before anything is sent."""
    groups = params.get("checks")
    groups = list(GROUPS) if groups is None else list(groups)
    wrong = [group for group in groups if group not in GROUPS]
    if wrong:
        raise OptionError("checks", wrong, f"may hold only {', '.join(GROUPS)}")
    thresholds = {
        name: parse_threshold(params.get(name), option=name, default=default)
        for name, default in DEFAULT_THRESHOLDS.items()
    }
    return StatsOptions(
        groups=tuple(group for group in GROUPS if group in groups),
        thresholds=thresholds,
        sample_seconds=_sample_seconds(params.get("sample_seconds")),
        slowlog_since_id=_whole(params.get("slowlog_since_id"), "slowlog_since_id"),
        top_commands=_whole(params.get("top_commands", 5), "top_commands", low=1),
        fragmentation_min_bytes=MIB
        * _whole(
            params.get("fragmentation_min_used_mb", 64), "fragmentation_min_used_mb"
        ),
    )


def _sample_seconds(value: Any) -> float:
    if value is None:
        return DEFAULT_SAMPLE_SECONDS
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OptionError("sample_seconds", value, "must be a number of seconds")
    if not 0 <= value <= MAX_SAMPLE_SECONDS:
        raise OptionError(
            "sample_seconds",
            value,
            f"must be from 0 (no sampling) to {MAX_SAMPLE_SECONDS:g} seconds",
        )
    return float(value)


def _whole(value: Any, option: str, *, low: int = 0) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise OptionError(option, value, f"must be a whole number from {low}")
    return value


# Talking to the server


def observe(settings: RedisSettings, options: StatsOptions) -> Observation:
    """Connect once and collect every answer the checks need.

    Failing to connect, or a PING that shows the server down, raises
    RedisCallError; any other failed command is recorded, so the findings that
    need it say why they are unknown (or, for PING, why it was refused).
    """
    obs = Observation()
    with RedisSession(settings) as session:
        obs.connect_seconds = session.open()
        obs.ping_seconds, obs.ping_error = _attempt(_median_ping, session)
        if obs.ping_error is not None and obs.ping_error.server_down:
            raise obs.ping_error
        before = session.sent
        obs.info, obs.info_error = _attempt(session.info)
        obs.now = _server_time(obs.info)
        _read_config(session, options, obs)
        if "slowlog" in options.groups:
            obs.slowlog, obs.slowlog_error = _attempt(session.slowlog)
        if obs.info is not None and _sampling(options):
            # The server counts what we sent after the first sample began.
            obs.commands_between = session.sent - before
            _second_sample(session, options, obs)
    return obs


def _median_ping(session: RedisSession) -> float:
    return sorted(session.ping() for _count in range(PING_COUNT))[PING_COUNT // 2]


def _attempt(call: Any, *args: Any) -> tuple:
    """Run one command; return (answer, None) or (None, the error)."""
    try:
        return call(*args), None
    except RedisCallError as error:
        return None, error


def _read_config(session: RedisSession, options: StatsOptions, obs: Observation):
    """Read the configuration values the chosen groups need, in one command."""
    names = [name for group in options.groups for name in CONFIG_NEEDS.get(group, ())]
    if "clients" in options.groups and obs.number("maxclients") is None:
        # Redis 7 reports maxclients in INFO; older servers only through CONFIG.
        names.append("maxclients")
    if not names:
        return
    answer, error = _attempt(session.config_get, *names)
    if error is not None:
        obs.config_errors.update(dict.fromkeys(names, error))
        return
    obs.config.update(answer)


def _server_time(info: dict | None) -> float:
    """The server's clock (INFO server_time_usec), else this host's."""
    usec = (info or {}).get("server_time_usec")
    return usec / 1e6 if isinstance(usec, int) else time.time()


def _sampling(options: StatsOptions) -> bool:
    return "hit_rate" in options.groups and options.sample_seconds > 0


def _second_sample(session: RedisSession, options: StatsOptions, obs: Observation):
    """Wait, then read the counters again: the only deliberate wait of a call."""
    began = time.monotonic()
    time.sleep(options.sample_seconds)
    obs.second, obs.second_error = _attempt(session.info, "stats")
    obs.interval_seconds = time.monotonic() - began


# Findings about the connection


def ping_finding(
    obs: Observation,
    options: StatsOptions,
    settings: RedisSettings,
    sentinel: SentinelSettings | None,
    metrics: dict,
) -> Finding:
    """PING answered PONG; its latency against the threshold."""
    details = {
        **server_details(settings, sentinel),
        "connect_ms": round(obs.connect_seconds * 1000, 3),
        "role": _role(obs.value("role")),
        "redis_version": obs.value("redis_version"),
    }
    if obs.ping_error is not None:
        return refused_ping(obs.ping_error, details)
    latency = round((obs.ping_seconds or 0.0) * 1000, 3)
    metrics["ping_ms"] = latency
    return measured(
        "ping",
        latency,
        options.thresholds["ping_latency"],
        label=f"PING latency (median of {PING_COUNT}, PONG received)",
        unit="ms",
        action=(
            "Find out why Redis answers slowly: slow commands (the slow log), "
            "CPU saturation, swapping or the network path"
        ),
        details=details,
    )


def refused_ping(error: RedisCallError, details: dict) -> Finding:
    """PING answered with an error: a server refusing writes, or a missing right."""
    # Redis fails PING on purpose while it cannot persist, so that monitoring
    # notices before the application's writes do.
    status = CRITICAL if error.kind == "misconf" else UNKNOWN
    template = CONNECT_ACTIONS.get(error.kind, CONNECT_ACTIONS["connection"])
    action = template.format(address=f"{details['host']}:{details['port']}", timeout=0)
    return Finding(
        "ping",
        status,
        str(error),
        action=action,
        details={**details, "error": error.kind},
    )


def _role(role: Any) -> Any:
    return {"master": "primary", "slave": "replica"}.get(role, role)


def server_details(
    target: RedisSettings | None, sentinel: SentinelSettings | None
) -> dict:
    """Where the check connected (nowhere yet: None), without credentials."""
    return {
        "host": target.host if target else None,
        "port": target.port if target else None,
        "db": target.db if target else None,
        "tls": target.tls if target else None,
        "url": target.shown_url if target else None,
        "service_name": sentinel.service_name if sentinel else None,
        "sentinels": sentinel.shown if sentinel else None,
    }


def unreachable(
    error: RedisCallError,
    target: RedisSettings | None,
    sentinel: SentinelSettings | None,
    *,
    elapsed: float | None = None,
) -> Finding:
    """The one finding of a call that could not talk to Redis.

    ``elapsed`` is how long the call tried, which shows that a timeout was kept.
    """
    template = CONNECT_ACTIONS.get(error.kind, CONNECT_ACTIONS["connection"])
    address = target.address if target else sentinel.shown
    timeout = target.timeout if target else 0
    details = {
        **server_details(target, sentinel),
        "error": error.kind,
        "elapsed_seconds": None if elapsed is None else round(elapsed, 3),
    }
    return Finding(
        "ping",
        CRITICAL if error.server_down else UNKNOWN,
        str(error),
        action=template.format(address=address, timeout=timeout),
        details=details,
    )
