"""Every decision of redis_stats, from INFO, CONFIG and SLOWLOG answers as data."""

from __future__ import annotations

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils.checks import (
    CheckResult,
)
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.redis_client import (
    RedisCallError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.redis_findings import (
    METRIC_KEYS,
    Observation,
    bytes_text,
    duration_text,
)
from ansible_collections.trm.maintenance.plugins.module_utils.redis_slowlog import (
    SlowlogReview,
    command_name,
    top_commands,
)
from ansible_collections.trm.maintenance.plugins.module_utils.redis_stats import (
    judge,
    parse_options,
)

MIB = 1024 * 1024
NOPERM = RedisCallError(
    "permission", "Redis at cache:6379 refused CONFIG GET save: NOPERM"
)

BASE_INFO = {
    "redis_version": "7.0.15",
    "uptime_in_seconds": 7200,
    "role": "master",
    "used_memory": 100 * MIB,
    "used_memory_rss": 110 * MIB,
    "maxmemory": 0,
    "total_system_memory": 8192 * MIB,
    "maxmemory_policy": "allkeys-lru",
    "mem_fragmentation_ratio": 1.1,
    "evicted_keys": 0,
    "keyspace_hits": 900,
    "keyspace_misses": 100,
    "total_commands_processed": 5000,
    "connected_clients": 10,
    "maxclients": 10000,
    "blocked_clients": 0,
    "rejected_connections": 0,
    "rdb_last_bgsave_status": "ok",
    "rdb_bgsave_in_progress": 0,
    "rdb_last_save_time": 1_000_000,
    "rdb_changes_since_last_save": 0,
    "rdb_saves": 3,
    "aof_enabled": 0,
    "aof_last_write_status": "ok",
    "aof_last_bgrewrite_status": "ok",
    "connected_slaves": 0,
    "master_repl_offset": 0,
}


def options(**params):
    """The checked options, with the module's defaults for what is not given."""
    return parse_options({"sample_seconds": 0, **params})


def observation(info=None, **fields) -> Observation:
    """An observation of a server answering ``BASE_INFO`` updated with ``info``."""
    merged = {**BASE_INFO, **(info or {})}
    fields.setdefault("config", {"save": "3600 1", "slowlog-max-len": "128"})
    fields.setdefault("now", 1_000_000 + 60)
    fields.setdefault("slowlog", [])
    return Observation(info=merged, **fields)


def run(obs: Observation, groups: list, **params) -> dict:
    """Judge ``obs`` for ``groups``; return the findings by name and the metrics."""
    result = CheckResult(metrics=dict.fromkeys(METRIC_KEYS))
    judge(obs, options(checks=groups, **params), result)
    return {
        "checks": {f.name: f for f in result.findings},
        "metrics": result.metrics,
    }


# Options


@pytest.mark.parametrize(
    ("params", "option"),
    [
        ({"checks": ["memory", "disk"]}, "checks"),
        ({"sample_seconds": -1}, "sample_seconds"),
        ({"sample_seconds": 301}, "sample_seconds"),
        ({"slowlog_since_id": -2}, "slowlog_since_id"),
        ({"top_commands": 0}, "top_commands"),
        (
            {"hit_rate": {"warning": 50, "critical": 80, "direction": "below"}},
            "hit_rate",
        ),
        ({"memory_usage": {"warn": 80}}, "memory_usage"),
        ({"fragmentation_ratio": {"normal": [1.5, 1.0]}}, "fragmentation_ratio.normal"),
    ],
)
def test_bad_options_are_refused_before_connecting(params, option):
    with pytest.raises(OptionError) as raised:
        parse_options(params)
    assert raised.value.option == option


def test_groups_run_in_a_fixed_order_whatever_the_order_given():
    assert options(checks=["keyspace", "memory"]).groups == ("memory", "keyspace")


# Memory


@pytest.mark.parametrize(
    ("info", "value", "status"),
    [
        ({"used_memory": 50 * MIB, "maxmemory": 100 * MIB}, 50.0, "ok"),
        ({"used_memory": 80 * MIB, "maxmemory": 100 * MIB}, 80.0, "ok"),
        ({"used_memory": 85 * MIB, "maxmemory": 100 * MIB}, 85.0, "warning"),
        ({"used_memory": 95 * MIB, "maxmemory": 100 * MIB}, 95.0, "critical"),
        # No maxmemory: judged against the host's memory.
        ({"used_memory": 7168 * MIB, "maxmemory": 0}, 87.5, "warning"),
        ({"used_memory": 1024 * MIB, "maxmemory": 0}, 12.5, "ok"),
    ],
)
def test_memory_usage_is_judged_against_maxmemory_or_host_memory(info, value, status):
    found = run(observation(info), ["memory"])
    finding = found["checks"]["memory_usage"]
    assert (finding.value, finding.status) == (value, status)
    assert found["metrics"]["memory_usage_pct"] == value
    source = "maxmemory" if info["maxmemory"] else "system_memory"
    assert finding.details["limit_source"] == source


def test_memory_usage_without_any_limit_is_unknown():
    found = run(observation({"maxmemory": 0, "total_system_memory": 0}), ["memory"])
    assert found["checks"]["memory_usage"].status == "unknown"


@pytest.mark.parametrize(
    ("ratio", "used", "status", "action_word"),
    [
        (1.2, 100 * MIB, "ok", None),
        (1.7, 100 * MIB, "warning", "activedefrag"),
        (2.5, 100 * MIB, "critical", "activedefrag"),
        (0.95, 100 * MIB, "warning", "swapped"),
        (0.5, 100 * MIB, "critical", "swapped"),
        # Too little in use to mean anything: reported, not judged.
        (12.0, 1 * MIB, "ok", None),
    ],
)
def test_fragmentation_is_judged_high_and_low(ratio, used, status, action_word):
    info = {"mem_fragmentation_ratio": ratio, "used_memory": used}
    finding = run(observation(info), ["memory"])["checks"]["fragmentation"]
    assert (finding.value, finding.status) == (ratio, status)
    if action_word:
        assert action_word in finding.action
    else:
        assert finding.action is None


def test_small_servers_say_why_fragmentation_is_not_judged():
    info = {"mem_fragmentation_ratio": 12.0, "used_memory": MIB}
    finding = run(observation(info), ["memory"])["checks"]["fragmentation"]
    assert "not judged" in finding.message
    assert "fragmentation_min_used_mb" in finding.message


@pytest.mark.parametrize(
    ("evicted", "threshold", "status"),
    [
        (0, None, "ok"),
        (1, None, "warning"),
        (500, {}, "ok"),
        (500, {"critical": 100}, "critical"),
    ],
)
def test_evicted_keys_warn_on_any_eviction_by_default(evicted, threshold, status):
    extra = {} if threshold is None else {"evicted_keys": threshold}
    found = run(observation({"evicted_keys": evicted}), ["memory"], **extra)
    assert found["checks"]["evicted_keys"].status == status
    assert found["metrics"]["evicted_keys"] == evicted


# Hit rate


@pytest.mark.parametrize(
    ("hits", "misses", "value", "status"),
    [
        (900, 100, 90.0, "ok"),
        (800, 200, 80.0, "ok"),
        (700, 300, 70.0, "warning"),
        (400, 600, 40.0, "critical"),
        (2, 1, 66.67, "warning"),
    ],
)
def test_lifetime_hit_rate(hits, misses, value, status):
    info = {"keyspace_hits": hits, "keyspace_misses": misses}
    found = run(observation(info), ["hit_rate"])
    finding = found["checks"]["hit_rate_lifetime"]
    assert (finding.value, finding.status) == (value, status)
    assert found["metrics"]["hit_rate_pct"] == value
    assert "hit_rate_interval" not in found["checks"]


@pytest.mark.parametrize(
    ("override", "hits", "misses", "status", "message"),
    [
        # A partial override keeps the default's direction: a lower bound.
        ({"warning": 90}, 85, 15, "warning", "85%, below the warning threshold"),
        ({"warning": 90}, 95, 5, "ok", "95% (warning below 90%)"),
        ({"warning": 90, "critical": 70}, 60, 40, "critical", "below the critical"),
        ({"critical": 70}, 75, 25, "ok", "75% (critical below 70%)"),
    ],
)
def test_a_partial_hit_rate_override_is_still_a_lower_bound(
    override, hits, misses, status, message
):
    info = {"keyspace_hits": hits, "keyspace_misses": misses}
    found = run(observation(info), ["hit_rate"], hit_rate=override)
    finding = found["checks"]["hit_rate_lifetime"]
    assert finding.status == status
    assert finding.threshold.direction == "below"
    assert message in finding.message


def test_bounds_for_the_fragmentation_range_are_refused():
    with pytest.raises(OptionError) as raised:
        options(fragmentation_ratio={"warning": 1.6})
    assert raised.value.option == "fragmentation_ratio"
    assert "takes ranges only" in str(raised.value)


def test_no_lookups_is_no_hit_rate_and_no_verdict():
    info = {"keyspace_hits": 0, "keyspace_misses": 0}
    finding = run(observation(info), ["hit_rate"])["checks"]["hit_rate_lifetime"]
    assert (finding.status, finding.value) == ("ok", None)
    assert "no key lookups" in finding.message


def test_interval_hit_rate_uses_only_the_lookups_between_the_samples():
    # A months-old average of 90% hides a current rate of 25%.
    second = {
        "keyspace_hits": 900 + 25,
        "keyspace_misses": 100 + 75,
        "evicted_keys": 4,
        "total_commands_processed": 5000 + 1 + 100,
    }
    obs = observation(second=second, interval_seconds=2.0, commands_between=1)
    found = run(obs, ["hit_rate"], sample_seconds=2)
    interval = found["checks"]["hit_rate_interval"]
    assert (interval.value, interval.status) == (25.0, "critical")
    assert (interval.details["keyspace_hits"], interval.details["lookups"]) == (25, 100)
    assert found["checks"]["hit_rate_lifetime"].value == 90.0
    metrics = found["metrics"]
    assert metrics["hit_rate_pct"] == 25.0
    assert metrics["hit_rate_lifetime_pct"] == 90.0
    assert metrics["hit_rate_interval_pct"] == 25.0
    assert metrics["evicted_keys_interval"] == 4
    assert metrics["ops_per_second"] == 50.0


def test_counters_that_go_back_make_the_interval_unknown():
    second = {"keyspace_hits": 3, "keyspace_misses": 1}
    obs = observation(second=second, interval_seconds=1.0)
    found = run(obs, ["hit_rate"], sample_seconds=1)
    interval = found["checks"]["hit_rate_interval"]
    assert interval.status == "unknown"
    assert "CONFIG RESETSTAT" in interval.message
    assert found["metrics"]["hit_rate_pct"] is None


def test_a_failed_second_sample_makes_only_the_interval_unknown():
    lost = RedisCallError("connection_refused", "Redis at cache:6379 refused")
    obs = observation(second_error=lost)
    found = run(obs, ["hit_rate"], sample_seconds=1)
    assert found["checks"]["hit_rate_interval"].status == "unknown"
    assert "refused" in found["checks"]["hit_rate_interval"].message
    assert found["checks"]["hit_rate_lifetime"].status == "ok"


# Clients


@pytest.mark.parametrize(
    ("connected", "maxclients", "value", "status"),
    [(10, 10000, 0.1, "ok"), (85, 100, 85.0, "warning"), (95, 100, 95.0, "critical")],
)
def test_clients_usage(connected, maxclients, value, status):
    info = {"connected_clients": connected, "maxclients": maxclients}
    found = run(observation(info), ["clients"])
    finding = found["checks"]["clients_usage"]
    assert (finding.value, finding.status) == (value, status)
    assert found["metrics"]["maxclients"] == maxclients


def test_maxclients_comes_from_config_when_info_lacks_it():
    info = {**BASE_INFO, "connected_clients": 50}
    del info["maxclients"]
    obs = Observation(info=info, config={"maxclients": "100"}, now=1)
    result = CheckResult(metrics={})
    judge(obs, options(checks=["clients"]), result)
    assert result.findings[0].value == 50.0


def test_maxclients_unknown_when_info_lacks_it_and_config_is_refused():
    info = dict(BASE_INFO)
    del info["maxclients"]
    obs = Observation(info=info, config_errors={"maxclients": NOPERM}, now=1)
    result = CheckResult(metrics={})
    judge(obs, options(checks=["clients"]), result)
    usage = result.findings[0]
    assert usage.status == "unknown"
    assert "NOPERM" in usage.message
    assert [f.status for f in result.findings[1:]] == ["ok", "ok"]


@pytest.mark.parametrize(
    ("blocked", "rejected", "threshold", "statuses"),
    [
        (0, 0, None, ("ok", "ok")),
        (40, 0, None, ("ok", "ok")),  # queue consumers block by design
        (40, 0, {"warning": 10}, ("warning", "ok")),
        (0, 3, None, ("ok", "warning")),
    ],
)
def test_blocked_and_rejected_clients(blocked, rejected, threshold, statuses):
    extra = {} if threshold is None else {"blocked_clients": threshold}
    info = {"blocked_clients": blocked, "rejected_connections": rejected}
    found = run(observation(info), ["clients"], **extra)["checks"]
    assert (found["blocked_clients"].status, found["rejected_connections"].status) == (
        statuses
    )


# Persistence


def test_a_failed_background_save_is_critical():
    found = run(observation({"rdb_last_bgsave_status": "err"}), ["persistence"])
    assert found["checks"]["rdb_save_status"].status == "critical"


@pytest.mark.parametrize(
    ("changes", "age", "config", "status"),
    [
        (0, 90000, {"save": "3600 1"}, "ok"),  # nothing to save
        (5, 600, {"save": "3600 1"}, "ok"),
        (5, 7300, {"save": "3600 1"}, "warning"),
        (5, 90000, {"save": "3600 1"}, "critical"),
        (5, 90000, {"save": ""}, "ok"),  # snapshots off by design
        (5, 90000, {}, "unknown"),  # CONFIG refused: schedule unknown
    ],
)
def test_rdb_save_age_is_judged_only_where_snapshots_are_due(
    changes, age, config, status
):
    info = {"rdb_changes_since_last_save": changes}
    errors = {} if config else {"save": NOPERM}
    obs = observation(info, config=config, config_errors=errors, now=1_000_000 + age)
    found = run(obs, ["persistence"])
    finding = found["checks"]["rdb_save_age"]
    assert finding.status == status
    assert finding.details["age_seconds"] == age
    assert found["metrics"]["rdb_last_save_age_seconds"] == age
    if status != "unknown":
        assert (finding.value, finding.unit) == (round(age / 60, 1), "min")


@pytest.mark.parametrize(
    ("info", "status"),
    [
        ({"aof_enabled": 0, "aof_last_write_status": "err"}, "ok"),
        ({"aof_enabled": 1}, "ok"),
        ({"aof_enabled": 1, "aof_last_write_status": "err"}, "critical"),
        ({"aof_enabled": 1, "aof_last_bgrewrite_status": "err"}, "warning"),
    ],
)
def test_aof_write_status(info, status):
    found = run(observation(info), ["persistence"])
    assert found["checks"]["aof_write_status"].status == status


# Replication


REPLICA = {
    "role": "slave",
    "master_host": "10.0.0.1",
    "master_port": 6379,
    "master_link_status": "up",
    "master_last_io_seconds_ago": 2,
    "master_sync_in_progress": 0,
    "slave_read_repl_offset": 5000,
    "slave_repl_offset": 5000,
}


ALL_OK = {"master_link": "ok", "master_last_io": "ok", "replication_lag": "ok"}


@pytest.mark.parametrize(
    ("changes", "statuses"),
    [
        ({}, ALL_OK),
        ({"master_last_io_seconds_ago": 45}, {**ALL_OK, "master_last_io": "warning"}),
        ({"master_last_io_seconds_ago": 61}, {**ALL_OK, "master_last_io": "critical"}),
        (
            {"slave_read_repl_offset": 5000 + 2 * MIB},
            {**ALL_OK, "replication_lag": "warning"},
        ),
        ({"master_sync_in_progress": 1}, {**ALL_OK, "master_link": "warning"}),
        # A link that is down has no I/O age or lag worth reporting.
        (
            {"master_link_status": "down", "master_link_down_since_seconds": 120},
            {"master_link": "critical"},
        ),
    ],
)
def test_replica_findings(changes, statuses):
    found = run(observation({**REPLICA, **changes}), ["replication"])
    assert {name: f.status for name, f in found["checks"].items()} == statuses


def test_replica_lag_is_received_minus_applied_bytes():
    info = {**REPLICA, "slave_read_repl_offset": 9000, "slave_repl_offset": 8000}
    found = run(observation(info), ["replication"])
    assert found["checks"]["replication_lag"].value == 1000
    assert found["metrics"]["replication_lag_bytes"] == 1000
    assert found["metrics"]["master_last_io_seconds"] == 2


def test_a_down_link_says_for_how_long():
    info = {
        **REPLICA,
        "master_link_status": "down",
        "master_link_down_since_seconds": 120,
    }
    finding = run(observation(info), ["replication"])["checks"]["master_link"]
    assert finding.message == (
        "This replica's link to its primary 10.0.0.1:6379 is down for 2 min"
    )


def _primary(*replicas) -> dict:
    info = {
        "role": "master",
        "connected_slaves": len(replicas),
        "master_repl_offset": 10000,
    }
    for index, (state, offset) in enumerate(replicas):
        info[f"slave{index}"] = {
            "ip": "10.0.0.2",
            "port": 6380 + index,
            "state": state,
            "offset": offset,
            "lag": 0,
        }
    return info


@pytest.mark.parametrize(
    ("replicas", "threshold", "status", "lag"),
    [
        ((), None, "ok", None),
        ((), {"critical": 1, "direction": "below"}, "critical", None),
        ((("online", 10000),), {"critical": 1, "direction": "below"}, "ok", 0),
        ((("online", 10000), ("wait_bgsave", 0)), None, "warning", 10000),
    ],
)
def test_primary_findings(replicas, threshold, status, lag):
    extra = {} if threshold is None else {"connected_replicas": threshold}
    found = run(observation(_primary(*replicas)), ["replication"], **extra)
    finding = found["checks"]["replicas"]
    assert (finding.value, finding.status) == (len(replicas), status)
    assert found["metrics"]["replication_lag_bytes"] == lag
    assert found["metrics"]["connected_replicas"] == len(replicas)


def test_a_replica_not_online_is_named():
    info = _primary(("online", 10000), ("wait_bgsave", 0))
    finding = run(observation(info), ["replication"])["checks"]["replicas"]
    assert finding.message.endswith("not online: 10.0.0.2:6381 (wait_bgsave)")
    assert [r["offset_lag_bytes"] for r in finding.details["replicas"]] == [0, 10000]


# Slow log


def _entry(entry_id: int, command: bytes, micros: int) -> dict:
    return {"id": entry_id, "command": command, "duration": micros, "start_time": 1}


@pytest.mark.parametrize(
    ("command", "name"),
    [
        (b"GET session:4f1c secret-ish", "GET"),
        (b"config get maxmemory", "CONFIG GET"),
        (b"DEBUG SLEEP 0.2", "DEBUG SLEEP"),
        (b"KEYS *", "KEYS"),
        (b"", "?"),
        (b"\xff\xfe binary", "\ufffd\ufffd"),
    ],
)
def test_command_names_keep_no_arguments(command, name):
    assert command_name({"command": command}) == name


def test_top_commands_by_count_and_by_time():
    entries = [
        _entry(4, b"GET a", 11000),
        _entry(3, b"GET b", 12000),
        _entry(2, b"GET c", 13000),
        _entry(1, b"DEBUG SLEEP 0.2", 200000),
        _entry(0, b"KEYS *", 50000),
    ]
    top = top_commands(entries, 2)
    assert top["by_count"] == [
        {"command": "GET", "count": 3, "total_ms": 36.0, "max_ms": 13.0},
        {"command": "DEBUG SLEEP", "count": 1, "total_ms": 200.0, "max_ms": 200.0},
    ]
    assert [row["command"] for row in top["by_duration"]] == ["DEBUG SLEEP", "KEYS"]


@pytest.mark.parametrize(
    ("ids", "since", "new", "last", "restarted"),
    [
        ([5, 4, 3], None, 3, 5, False),
        ([5, 4, 3], 3, 2, 5, False),
        ([5, 4, 3], 5, 0, 5, False),
        ([2, 1, 0], 40, 3, 2, True),  # ids restart with the server
        ([], 7, 0, 7, False),  # an empty log keeps the position
    ],
)
def test_slowlog_review_selects_entries_after_the_last_seen(
    ids, since, new, last, restarted
):
    review = SlowlogReview.of([_entry(i, b"GET k", 20000) for i in ids], since)
    assert (len(review.new), review.last_id, review.restarted) == (new, last, restarted)


@pytest.mark.parametrize(
    ("ids", "since", "max_len", "status", "lost"),
    [
        (range(9, 1, -1), None, 128, "ok", 0),  # not full: older ones were read
        (range(9, 1, -1), None, 8, "warning", 2),  # full, ids 0 and 1 are gone
        (range(9, 1, -1), 1, 8, "ok", 0),  # full, but nothing unread was lost
        (range(9, 1, -1), 0, 8, "warning", 1),
        (range(9, 1, -1), 0, None, "warning", 1),  # a gap says enough
        (range(9, 1, -1), None, None, "unknown", None),
    ],
)
def test_slowlog_lost_entries(ids, since, max_len, status, lost):
    entries = [_entry(i, b"GET k", 20000) for i in ids]
    config = {} if max_len is None else {"slowlog-max-len": str(max_len)}
    errors = {} if max_len is not None else {"slowlog-max-len": NOPERM}
    obs = observation(slowlog=entries, config=config, config_errors=errors)
    found = run(obs, ["slowlog"], slowlog_since_id=since)
    finding = found["checks"]["slowlog_lost"]
    assert (finding.status, finding.value) == (status, lost)
    assert found["metrics"]["slowlog_lost_entries"] == lost


def test_slowlog_counts_new_entries_against_the_threshold():
    entries = [_entry(i, b"KEYS *", 20000) for i in range(30, 0, -1)]
    found = run(observation(slowlog=entries), ["slowlog"], slowlog_since_id=5)
    finding = found["checks"]["slowlog"]
    assert (finding.value, finding.status) == (25, "warning")
    assert finding.message.startswith("Number of slow log entries since #5 is 25")
    metrics = found["metrics"]
    assert (metrics["slowlog_new_entries"], metrics["slowlog_last_id"]) == (25, 30)


def test_an_unreadable_slowlog_is_unknown_and_the_rest_still_runs():
    refused = RedisCallError("permission", "NOPERM slowlog")
    obs = observation(slowlog=None, slowlog_error=refused)
    found = run(obs, ["memory", "slowlog"])
    assert found["checks"]["slowlog"].status == "unknown"
    assert found["checks"]["memory_usage"].status == "ok"


# Keyspace and INFO as a whole


def test_keyspace_per_database():
    info = {
        "db0": {"keys": 1200, "expires": 1150, "avg_ttl": 84000},
        "db10": {"keys": 3, "expires": 0, "avg_ttl": 0},
        "db2": {"keys": 1, "expires": 1, "avg_ttl": 5},
    }
    found = run(observation(info), ["keyspace"])
    finding = found["checks"]["keyspace"]
    assert finding.value == 1204
    assert list(finding.details["databases"]) == ["db0", "db2", "db10"]
    assert finding.message == (
        "1204 keys in 3 databases (db0: 1200 keys, 1150 with a TTL; "
        "db2: 1 key, 1 with a TTL; db10: 3 keys, 0 with a TTL)"
    )
    metrics = found["metrics"]
    assert (metrics["keys_total"], metrics["expires_total"]) == (1204, 1151)
    assert (metrics["db10_keys"], metrics["db2_expires"]) == (3, 1)


def test_without_info_every_group_but_the_slowlog_is_unknown():
    refused = RedisCallError("permission", "Redis at cache:6379 refused INFO: NOPERM")
    obs = Observation(info=None, info_error=refused, slowlog=[], config={})
    result = CheckResult(metrics={})
    judge(obs, options(slowlog_since_id=3), result)
    statuses = {f.name: f.status for f in result.findings}
    assert statuses["slowlog"] == "ok"
    unknown = {name for name, status in statuses.items() if status == "unknown"}
    assert unknown == set(statuses) - {"slowlog", "slowlog_lost"}
    assert "refused INFO" in result.findings[0].message


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (512, "512 B"),
        (1536, "1.5 KiB"),
        (100 * MIB, "100.0 MiB"),
        (3 * 1024 * MIB, "3.0 GiB"),
    ],
)
def test_bytes_text(value, text):
    assert bytes_text(value) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(45, "45 s"), (120, "2 min"), (5400, "1.5 h"), (3 * 86400, "3 d")],
)
def test_duration_text(seconds, text):
    assert duration_text(seconds) == text
