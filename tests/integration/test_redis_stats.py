"""redis_stats through ansible-playbook, against real redis-server processes.

Every server is the OS package's redis-server, started here on a loopback port
and stopped by its process id. Expected values come from the test's own actions
(a known pattern of hits and misses, a known number of keys and connections)
or from INFO as redis-cli prints it, parsed by the test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import threading
import time

import pytest

from lab.core import LOOPBACK, LabContext, free_port
from tests.integration.redis_servers import (
    MONITOR_RULES,
    NO_CONFIG_RULES,
    RedisServer,
    SilentServer,
    make_tls,
    start_redis,
    start_sentinel,
    wait_for,
)

MODULE = "trm.maintenance.redis_stats"
PASSWORD = "pw-4f1c9a7e0b"
MAXCLIENTS = 100


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    """A folder for this module's servers; every server started is stopped."""
    context = LabContext(tmp_path_factory.mktemp("redis"))
    context.servers = []
    yield context
    for server in reversed(context.servers):
        server.stop()


def started(ctx, name: str, **options) -> RedisServer:
    """Start a server that the module fixture stops."""
    server = start_redis(ctx, name, **options)
    ctx.servers.append(server)
    return server


@pytest.fixture(scope="module")
def server(ctx) -> RedisServer:
    """A password-protected server with a monitoring user and one without CONFIG."""
    return started(
        ctx,
        "main",
        password=PASSWORD,
        config=(f"maxclients {MAXCLIENTS}",),
        users={"monitor": MONITOR_RULES, "noconfig": NO_CONFIG_RULES},
    )


@pytest.fixture
def fresh(server) -> RedisServer:
    """The shared server with empty data, statistics and slow log."""
    with server.client() as client:
        client.flushall()
        client.config_resetstat()
        client.slowlog_reset()
        client.config_set("slowlog-max-len", 128)
        client.config_set("slowlog-log-slower-than", 10000)
    return server


def args(server: RedisServer, **extra) -> dict:
    """Module arguments for ``server`` with the default user's password."""
    return {
        "login_host": LOOPBACK,
        "login_port": server.port,
        "login_password": server.password,
        "timeout": 5,
        "sample_seconds": 0,
        **extra,
    }


def findings(result: dict) -> dict:
    """The result's findings by name."""
    return {check["name"]: check for check in result["checks"]}


def statuses(result: dict) -> dict:
    """The status of every finding, by name."""
    return {check["name"]: check["status"] for check in result["checks"]}


def in_background(function, *arguments) -> dict:
    """Run ``function`` in a thread; return a dict that gets its ``result``."""
    box: dict = {}

    def target() -> None:
        box["result"] = function(*arguments)

    box["thread"] = threading.Thread(target=target, daemon=True)
    box["thread"].start()
    return box


def wait_for_first_sample(server: RedisServer) -> None:
    """Wait until another client's last command on ``server`` is INFO."""

    def sampled() -> bool:
        with server.client() as client:
            clients = client.client_list()
        return any(c["cmd"] == "info" for c in clients)

    wait_for(sampled, timeout=60, what="the module's first INFO sample")


# A healthy server


def test_healthy_server_values_match_the_test_s_own_counts(ansible, fresh):
    with fresh.client() as client:
        for index in range(10):
            client.set(f"session:{index}", "x", ex=3600 if index < 4 else None)
        client.select(3)
        client.set("a", 1)
        client.set("b", 2)
        client.select(0)
        for index in range(9):
            client.get(f"session:{index}")
        client.get("missing")

    result = ansible.module(MODULE, args(fresh))

    assert result["status"] == "ok", result["summary"]
    assert list(findings(result)) == [
        "ping",
        "memory_usage",
        "fragmentation",
        "evicted_keys",
        "hit_rate_lifetime",
        "clients_usage",
        "blocked_clients",
        "rejected_connections",
        "rdb_save_status",
        "rdb_save_age",
        "aof_write_status",
        "replicas",
        "slowlog",
        "slowlog_lost",
        "keyspace",
    ]
    metrics = result["metrics"]
    assert (metrics["keyspace_hits"], metrics["keyspace_misses"]) == (9, 1)
    assert metrics["hit_rate_lifetime_pct"] == 90.0
    assert metrics["hit_rate_pct"] == 90.0
    assert (metrics["keys_total"], metrics["expires_total"]) == (12, 4)
    assert (metrics["db0_keys"], metrics["db0_expires"], metrics["db3_keys"]) == (
        10,
        4,
        2,
    )
    # The module's own connection is the only one.
    assert (metrics["connected_clients"], metrics["maxclients"]) == (1, MAXCLIENTS)
    assert findings(result)["clients_usage"]["value"] == 1.0
    assert metrics["up"] == 1
    assert metrics["slowlog_new_entries"] == 0
    assert metrics["rdb_changes_since_last_save"] >= 12
    ping = findings(result)["ping"]
    assert (ping["host"], ping["port"], ping["role"]) == (
        LOOPBACK,
        fresh.port,
        "primary",
    )
    assert ping["redis_version"] == fresh.info("server")["redis_version"]
    assert 0 < ping["value"] < 50


def test_memory_figures_match_info(ansible, fresh):
    with fresh.client() as client:
        client.mset({f"blob:{index}": "x" * 1000 for index in range(4000)})
    info = fresh.info("memory")
    result = ansible.module(MODULE, args(fresh, checks=["memory"]))
    metrics = result["metrics"]
    total = int(info["total_system_memory"])
    assert metrics["total_system_memory_bytes"] == total
    assert metrics["maxmemory_bytes"] == 0
    # Used memory moves with every client buffer; some KiB on several MiB.
    assert metrics["used_memory_bytes"] == pytest.approx(
        int(info["used_memory"]), rel=0.05
    )
    usage = findings(result)["memory_usage"]
    assert usage["limit_source"] == "system_memory"
    assert usage["value"] == round(metrics["used_memory_bytes"] / total * 100, 2)
    # A nearly empty server: the ratio is reported, not judged.
    assert "not judged" in findings(result)["fragmentation"]["message"]


def steady_ratio(server: RedisServer) -> float:
    """The fragmentation ratio once it holds still (the allocator frees pages late).

    After a FLUSHALL, jemalloc hands freed pages back over some seconds, and the
    ratio falls with them; a ratio judged mid-fall would not be the one read.
    """
    seen: list = []

    def steady() -> bool:
        seen.append(float(server.info("memory")["mem_fragmentation_ratio"]))
        time.sleep(0.5)
        return len(seen) > 2 and max(seen[-3:]) <= min(seen[-3:]) * 1.05

    wait_for(steady, timeout=60, what="a steady fragmentation ratio")
    return seen[-1]


def _range_status(value: float, normal: tuple, investigate: tuple) -> str:
    """The guide's rule for ranges, written out here: normal ok, investigate warn."""
    if not investigate[0] <= value <= investigate[1]:
        return "critical"
    return "ok" if normal[0] <= value <= normal[1] else "warning"


def test_fragmentation_is_judged_against_the_server_s_own_ratio(ansible, fresh):
    with fresh.client() as client:
        client.mset({f"blob:{index}": "x" * 1000 for index in range(2000)})
    before = steady_ratio(fresh)
    result = ansible.module(
        MODULE, args(fresh, checks=["memory"], fragmentation_min_used_mb=0)
    )
    info = fresh.info("memory")
    after = float(info["mem_fragmentation_ratio"])

    finding = findings(result)["fragmentation"]
    metric = result["metrics"]["mem_fragmentation_ratio"]
    assert finding["value"] == metric
    # Redis refreshes the ratio in its cron; the module read it between ours.
    assert min(before, after) * 0.9 <= metric <= max(before, after) * 1.1
    assert "not judged" not in finding["message"]
    assert (finding["normal"], finding["investigate"]) == ([1.0, 1.5], [0.9, 2.0])
    assert finding["status"] == _range_status(metric, (1.0, 1.5), (0.9, 2.0))
    assert finding["rss_bytes"] == pytest.approx(int(info["used_memory_rss"]), rel=0.1)
    assert finding["used_memory_bytes"] == pytest.approx(
        int(info["used_memory"]), rel=0.05
    )


@pytest.mark.parametrize(
    ("normal", "investigate", "status", "action"),
    [
        ((0.5, 2), (0.25, 4), "ok", None),
        ((0, 0.5), (0, 4), "warning", "fragmented"),
        ((0, 0.25), (0, 0.5), "critical", "fragmented"),
        ((2, 4), (0.5, 8), "warning", "swap"),
    ],
)
def test_fragmentation_ranges_around_the_server_s_ratio(
    ansible, fresh, normal, investigate, status, action
):
    # Ranges at twice or half the measured ratio, so its drift cannot matter.
    ratio = steady_ratio(fresh)
    spec = {
        "normal": [round(ratio * bound, 3) for bound in normal],
        "investigate": [round(ratio * bound, 3) for bound in investigate],
    }
    result = ansible.module(
        MODULE,
        args(
            fresh,
            checks=["memory"],
            fragmentation_min_used_mb=0,
            fragmentation_ratio=spec,
        ),
    )
    finding = findings(result)["fragmentation"]
    assert finding["value"] == pytest.approx(ratio, rel=0.25)
    assert (finding["normal"], finding["investigate"]) == (
        spec["normal"],
        spec["investigate"],
    )
    assert finding["status"] == status, finding["message"]
    if action is None:
        assert finding["action"] is None
    else:
        assert action in finding["action"].lower()


def test_check_mode_runs_the_same_read_only_checks(ansible, fresh):
    result = ansible.module(MODULE, args(fresh, checks=["keyspace"]), check_mode=True)
    assert result["changed"] is False
    assert statuses(result) == {"ping": "ok", "keyspace": "ok"}


# The hit rate over an interval


def test_interval_hit_rate_counts_only_the_lookups_between_samples(ansible, fresh):
    with fresh.client() as client:
        client.set("hot", 1)
        for _index in range(90):
            client.get("hot")
        for _index in range(10):
            client.get("cold")

    run = in_background(
        ansible.module, MODULE, args(fresh, checks=["hit_rate"], sample_seconds=4)
    )
    wait_for_first_sample(fresh)
    with fresh.client() as client:
        for _index in range(5):
            client.get("hot")
        for _index in range(15):
            client.get("cold")
    run["thread"].join(timeout=120)
    result = run["result"]

    lifetime = findings(result)["hit_rate_lifetime"]
    interval = findings(result)["hit_rate_interval"]
    assert (lifetime["value"], lifetime["status"]) == (90.0, "ok")
    assert (interval["keyspace_hits"], interval["keyspace_misses"]) == (5, 15)
    assert (interval["value"], interval["status"]) == (25.0, "critical")
    assert result["metrics"]["hit_rate_pct"] == 25.0
    assert result["metrics"]["hit_rate_interval_pct"] == 25.0
    assert result["metrics"]["sample_seconds"] >= 4
    # The 20 lookups and the test's polling, not the check's own commands.
    operations = (
        result["metrics"]["ops_per_second"] * result["metrics"]["sample_seconds"]
    )
    assert operations >= 20
    assert result["status"] == "critical"
    assert "Hit rate over 4" in result["summary"]


def test_a_server_stopped_between_the_samples(ansible, ctx):
    doomed = start_redis(ctx, "doomed", password=PASSWORD)
    try:
        run = in_background(
            ansible.module,
            MODULE,
            args(doomed, checks=["memory", "hit_rate"], sample_seconds=4),
        )
        wait_for_first_sample(doomed)
    finally:
        doomed.stop()
    run["thread"].join(timeout=120)
    result = run["result"]

    got = statuses(result)
    assert got == {
        "ping": "ok",
        "memory_usage": "ok",
        "fragmentation": "ok",
        "evicted_keys": "ok",
        "hit_rate_lifetime": "ok",
        "hit_rate_interval": "unknown",
    }
    interval = findings(result)["hit_rate_interval"]
    assert interval["message"].startswith("The second INFO sample failed")
    assert f"127.0.0.1:{doomed.port}" in interval["message"]
    assert result["status"] == "unknown"


# Memory pressure, clients


def test_a_small_maxmemory_forces_evictions(ansible, ctx):
    small = started(
        ctx,
        "small",
        password=PASSWORD,
        config=("maxmemory 2mb", "maxmemory-policy allkeys-lru"),
    )
    with small.client() as client:
        for index in range(400):
            client.set(f"blob:{index}", "x" * 10_000)
    info = small.info("everything")
    before = int(info["evicted_keys"])
    assert before > 0

    result = ansible.module(MODULE, args(small, checks=["memory"]))

    # The server is at its limit: answering INFO itself can evict a few more.
    after = int(small.info("stats")["evicted_keys"])
    evictions = findings(result)["evicted_keys"]
    assert before <= evictions["value"] <= after
    assert evictions["status"] == "warning"
    assert evictions["maxmemory_policy"] == "allkeys-lru"
    assert result["metrics"]["maxmemory_bytes"] == 2 * 1024 * 1024
    usage = findings(result)["memory_usage"]
    expected = int(info["used_memory"]) / (2 * 1024 * 1024) * 100
    assert usage["limit_source"] == "maxmemory"
    assert usage["value"] == pytest.approx(expected, abs=2.0)
    assert usage["status"] == {True: "critical", False: "warning"}[usage["value"] > 90]


def test_connections_near_maxclients_and_rejected_ones(ansible, fresh):
    sockets = []
    try:
        # 84 idle connections and the module's own: 85 of 100.
        for _index in range(84):
            sockets.append(socket.create_connection((LOOPBACK, fresh.port), 5))
        wait_for(
            lambda: int(fresh.info("clients")["connected_clients"]) == 85,
            what="84 idle connections",
        )
        result = ansible.module(MODULE, args(fresh, checks=["clients"]))
        usage = findings(result)["clients_usage"]
        assert (usage["value"], usage["status"]) == (85.0, "warning")
        assert usage["connected_clients"] == 85

        # Fill every slot, then knock five more times: Redis answers those
        # with an error and closes them.
        for _index in range(MAXCLIENTS - 84 + 5):
            sockets.append(socket.create_connection((LOOPBACK, fresh.port), 5))
        for sock in sockets[-5:]:
            assert sock.recv(200).startswith(b"-ERR max number of clients reached")
    finally:
        for sock in sockets:
            sock.close()
    wait_for(
        lambda: int(fresh.info("clients")["connected_clients"]) == 1,
        what="the idle connections to close",
    )
    rejected = int(fresh.info("stats")["rejected_connections"])
    assert rejected == 5

    result = ansible.module(MODULE, args(fresh, checks=["clients"]))

    finding = findings(result)["rejected_connections"]
    assert (finding["value"], finding["status"]) == (rejected, "warning")


def test_a_client_blocked_in_blpop(ansible, fresh):
    waiter = fresh.client(socket_timeout=30)
    run = in_background(waiter.blpop, ["jobs"], 20)
    wait_for(
        lambda: fresh.info("clients")["blocked_clients"] == "1",
        what="the BLPOP to block",
    )
    try:
        result = ansible.module(
            MODULE, args(fresh, checks=["clients"], blocked_clients={"warning": 0})
        )
    finally:
        with fresh.client() as client:
            client.rpush("jobs", "done")
        run["thread"].join(timeout=30)
        waiter.close()

    blocked = findings(result)["blocked_clients"]
    assert (blocked["value"], blocked["status"]) == (1, "warning")
    assert run["result"] == (b"jobs", b"done")


# The slow log


def _slow_ids(server: RedisServer) -> list:
    with server.client() as client:
        return [entry["id"] for entry in client.slowlog_get(-1)]


def test_debug_sleep_fills_the_slow_log_and_lost_entries_are_seen(ansible, fresh):
    with fresh.client() as client:
        client.config_set("slowlog-max-len", 4)
        for _index in range(8):
            client.execute_command("DEBUG", "SLEEP", "0.02")
    ids = _slow_ids(fresh)
    assert len(ids) == 4
    newest, oldest = max(ids), min(ids)

    whole = ansible.module(MODULE, args(fresh, checks=["slowlog"]))
    slowlog = findings(whole)["slowlog"]
    assert slowlog["value"] == 4
    assert slowlog["top_by_count"][0]["command"] == "DEBUG SLEEP"
    assert slowlog["top_by_count"][0]["count"] == 4
    assert slowlog["top_by_duration"][0]["total_ms"] >= 80
    lost = findings(whole)["slowlog_lost"]
    assert (lost["value"], lost["status"]) == (oldest, "warning")
    assert whole["metrics"]["slowlog_last_id"] == newest

    # The previous review read up to two before the oldest kept: 2 were lost.
    gap = ansible.module(
        MODULE, args(fresh, checks=["slowlog"], slowlog_since_id=oldest - 3)
    )
    assert findings(gap)["slowlog_lost"]["value"] == 2
    assert findings(gap)["slowlog_lost"]["status"] == "warning"

    # The previous review read everything up to the second newest.
    caught_up = ansible.module(
        MODULE, args(fresh, checks=["slowlog"], slowlog_since_id=newest - 1)
    )
    assert findings(caught_up)["slowlog"]["value"] == 1
    assert findings(caught_up)["slowlog_lost"]["status"] == "ok"
    assert caught_up["metrics"]["slowlog_new_entries"] == 1


def test_slow_log_arguments_never_reach_the_result(ansible, fresh):
    key, value = "session:7d2f-token-abc", "secret-value-9e1"
    with fresh.client() as client:
        client.config_set("slowlog-log-slower-than", 0)
        client.set(key, value)
        client.get(key)
    try:
        result = ansible.module(
            MODULE, args(fresh, checks=["slowlog"], top_commands=20)
        )
    finally:
        with fresh.client() as client:
            client.config_set("slowlog-log-slower-than", 10000)

    text = json.dumps(result)
    assert key not in text
    assert value not in text
    commands = {row["command"] for row in findings(result)["slowlog"]["top_by_count"]}
    assert {"SET", "GET"} <= commands


# Users, rights and refused commands


def test_the_recommended_monitoring_user_sees_everything(ansible, fresh):
    user_args = args(fresh, login_user="monitor", login_password=fresh.users["monitor"])
    result = ansible.module(MODULE, user_args)
    assert "unknown" not in statuses(result).values()
    assert result["status"] == "ok", result["summary"]


def test_without_config_only_the_findings_that_need_it_are_unknown(ansible, fresh):
    with fresh.client() as client:
        client.set("unsaved", 1)
    user_args = args(
        fresh, login_user="noconfig", login_password=fresh.users["noconfig"]
    )
    result = ansible.module(MODULE, user_args)
    unknown = {name for name, status in statuses(result).items() if status == "unknown"}
    assert unknown == {"rdb_save_age", "slowlog_lost"}
    assert "no permissions" in findings(result)["rdb_save_age"]["message"]
    # maxclients comes from INFO, so the client check still runs.
    assert findings(result)["clients_usage"]["status"] == "ok"


def test_a_managed_server_without_config(ansible, ctx):
    managed = started(
        ctx, "managed", password=PASSWORD, config=('rename-command CONFIG ""',)
    )
    with managed.client() as client:
        client.set("unsaved", 1)
    result = ansible.module(MODULE, args(managed))
    unknown = {name for name, status in statuses(result).items() if status == "unknown"}
    assert unknown == {"rdb_save_age", "slowlog_lost"}
    assert "unknown command" in findings(result)["slowlog_lost"]["message"]
    assert findings(result)["memory_usage"]["status"] == "ok"


@pytest.mark.parametrize(
    ("extra", "kind"),
    [
        ({"login_password": "wrong-password"}, "auth"),
        ({"login_password": None}, "auth"),
        ({"login_user": "monitor", "login_password": "wrong-password"}, "auth"),
    ],
)
def test_rejected_credentials_are_unknown(ansible, server, extra, kind):
    module_args = {k: v for k, v in args(server, **extra).items() if v is not None}
    result = ansible.module(MODULE, module_args)
    assert statuses(result) == {"ping": "unknown"}
    ping = findings(result)["ping"]
    assert ping["error"] == kind
    assert "refused the credentials" in ping["message"]
    assert "login_password" in ping["action"]
    assert result["metrics"]["up"] == 0
    assert PASSWORD not in json.dumps(result)


# Servers that do not answer


def test_nothing_listening_is_critical(ansible):
    port = free_port()
    result = ansible.module(MODULE, {"login_host": LOOPBACK, "login_port": port})
    ping = findings(result)["ping"]
    assert (result["status"], ping["error"]) == ("critical", "connection_refused")
    assert ping["message"] == (
        f"Redis at 127.0.0.1:{port} refused the connection: nothing listens on "
        "that port"
    )
    assert result["summary"].startswith(f"Redis 127.0.0.1:{port} CRITICAL")


def test_a_port_that_never_answers_times_out(ansible):
    timeout, margin = 1, 0.5
    # The same task against a closed port fails at once: Ansible's own time.
    began = time.monotonic()
    refused = ansible.module(MODULE, {"login_host": LOOPBACK, "login_port": 1})
    baseline = time.monotonic() - began
    silent = SilentServer()
    try:
        began = time.monotonic()
        result = ansible.module(
            MODULE,
            {"login_host": LOOPBACK, "login_port": silent.port, "timeout": timeout},
        )
        wall = time.monotonic() - began
    finally:
        silent.close()
    ping = findings(result)["ping"]
    assert (result["status"], ping["error"]) == ("critical", "timeout")
    assert "within 1 s (the timeout)" in ping["message"]
    assert silent.accepted, "the module never connected"
    # One timeout, no retry: the module gives up once the timeout has passed.
    elapsed = ping["elapsed_seconds"]
    assert timeout <= elapsed < timeout + margin, elapsed
    assert findings(refused)["ping"]["elapsed_seconds"] < margin
    # Around the whole task: Ansible's time plus the timeout, with room for a
    # busy machine, and never less than what the module reported.
    assert elapsed <= wall < baseline + timeout + 3, (wall, baseline, elapsed)


def test_fail_on_turns_an_unreachable_server_into_a_failed_task(ansible):
    result = ansible.module(
        MODULE,
        {"login_host": LOOPBACK, "login_port": free_port(), "fail_on": "critical"},
    )
    assert result["failed"] is True
    assert result["status"] == "critical"
    assert "refused the connection" in result["msg"]


@pytest.mark.parametrize(
    ("extra", "option"),
    [
        ({"sample_seconds": -1}, "sample_seconds"),
        ({"hit_rate": {"warning": "high"}}, "hit_rate.warning"),
        ({"url": "http://cache:6379"}, "url"),
    ],
)
def test_bad_options_fail_the_task_and_name_the_option(ansible, extra, option):
    result = ansible.module(MODULE, {"login_port": free_port(), **extra})
    assert result["failed"] is True
    assert result["option"] == option
    assert f"Option '{option}'" in result["msg"]


def test_url_password_is_masked_everywhere(ansible, fresh):
    url = f"redis://:{PASSWORD}@{LOOPBACK}:{fresh.port}/0"
    result = ansible.module(
        MODULE, {"url": url, "checks": ["keyspace"], "sample_seconds": 0}
    )
    assert result["status"] == "ok"
    assert findings(result)["ping"]["url"] == (
        f"redis://:********@{LOOPBACK}:{fresh.port}/0"
    )
    assert PASSWORD not in json.dumps(result)


# TLS


@pytest.fixture(scope="module")
def tls_server(ctx) -> RedisServer:
    """A TLS-only server that requires a client certificate."""
    tls = make_tls(ctx.path("tls", "pki"))
    return started(
        ctx,
        "tls",
        password=PASSWORD,
        tls=tls,
        config=("tls-auth-clients yes",),
    )


def tls_args(server: RedisServer, **extra) -> dict:
    """Module arguments for the TLS server with the lab CA and client certificate."""
    return args(
        server,
        tls=True,
        ca_certs=str(server.tls.ca),
        client_cert_file=str(server.tls.client_cert),
        client_key_file=str(server.tls.client_key),
        checks=["keyspace"],
        **extra,
    )


def test_tls_with_the_lab_ca_and_a_client_certificate(ansible, tls_server):
    result = ansible.module(MODULE, tls_args(tls_server))
    assert statuses(result) == {"ping": "ok", "keyspace": "ok"}
    assert findings(result)["ping"]["tls"] is True


def test_rediss_url_turns_tls_on_and_hides_the_password(ansible, tls_server):
    url = f"rediss://:{PASSWORD}@{LOOPBACK}:{tls_server.port}/0"
    module_args = tls_args(tls_server, url=url)
    del module_args["tls"], module_args["login_password"]
    result = ansible.module(MODULE, module_args)
    assert result["status"] == "ok", result["summary"]
    assert PASSWORD not in json.dumps(result)


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ({"ca_certs": "other"}, "tls"),  # signed by a CA we do not trust
        # The server requires a client certificate and ends the handshake.
        ({"client_cert_file": None, "client_key_file": None}, "tls"),
        ({"tls": False}, "connection"),  # plain text to a TLS port
    ],
)
def test_tls_failures_say_what_went_wrong(ansible, tls_server, change, kind):
    module_args = tls_args(tls_server)
    for key, value in change.items():
        if value is None:
            del module_args[key]
        elif value == "other":
            module_args[key] = str(tls_server.tls.other_ca)
        else:
            module_args[key] = value
    result = ansible.module(MODULE, module_args)
    ping = findings(result)["ping"]
    assert ping["error"] == kind, ping["message"]
    assert ping["status"] == {"tls": "unknown", "connection": "critical"}[kind]
    if "ca_certs" in change:
        assert "certificate verify failed" in ping["message"]


def test_validate_certs_false_accepts_an_unknown_ca(ansible, tls_server):
    module_args = {
        **tls_args(tls_server),
        "validate_certs": False,
        "ca_certs": str(tls_server.tls.other_ca),
    }
    result = ansible.module(MODULE, module_args)
    assert result["status"] == "ok", result["summary"]


@pytest.mark.parametrize("option", ["ca_certs", "client_cert_file", "client_key_file"])
def test_a_missing_tls_file_fails_the_task_naming_option_and_path(
    ansible, tls_server, tmp_path, option
):
    missing = str(tmp_path / f"missing-{option}.pem")
    result = ansible.module(MODULE, {**tls_args(tls_server), option: missing})
    assert result["failed"] is True
    assert result["option"] == option
    assert result["msg"].startswith(
        f"Option '{option}' names a file that does not exist; set {option} to "
    )
    assert result["msg"].endswith(f"; got '{missing}'")
    # Bad input fails before any connection: no finding blames the server.
    assert not result.get("checks")


# Replication and Sentinel


@pytest.fixture(scope="module")
def pair(ctx) -> tuple:
    """A primary and its replica, both with the password, the link up."""
    primary = started(ctx, "primary", password=PASSWORD)
    replica = started(
        ctx,
        "replica",
        password=PASSWORD,
        config=(f"replicaof {LOOPBACK} {primary.port}", f"masterauth {PASSWORD}"),
    )
    wait_for(
        lambda: replica.info("replication")["master_link_status"] == "up",
        timeout=30,
        what="the replica's link",
    )
    wait_for(
        lambda: "state=online" in primary.info("replication").get("slave0", ""),
        timeout=30,
        what="the replica to be online",
    )
    return primary, replica


def test_a_replica_reports_its_link_and_lag(ansible, pair):
    primary, replica = pair
    with primary.client() as client:
        client.set("replicated", 1)
    result = ansible.module(MODULE, args(replica, checks=["replication"]))
    found = findings(result)
    assert list(found) == ["ping", "master_link", "master_last_io", "replication_lag"]
    assert found["ping"]["role"] == "replica"
    link = found["master_link"]
    assert (link["status"], link["value"]) == ("ok", "up")
    assert link["primary"] == f"{LOOPBACK}:{primary.port}"
    assert 0 <= found["master_last_io"]["value"] <= 30
    info = replica.info("replication")
    expected = int(info["slave_read_repl_offset"]) - int(info["slave_repl_offset"])
    assert found["replication_lag"]["value"] == expected == 0


def test_a_primary_reports_its_replicas(ansible, pair, quiet_pings):
    primary, replica = pair
    offsets = settle(primary, replica)
    result = ansible.module(
        MODULE,
        args(
            primary,
            checks=["replication"],
            connected_replicas={"critical": 1, "direction": "below"},
        ),
    )
    replicas = findings(result)["replicas"]
    assert (replicas["value"], replicas["status"]) == (1, "ok")
    (entry,) = replicas["replicas"]
    assert (entry["address"], entry["state"]) == (
        f"{LOOPBACK}:{replica.port}",
        "online",
    )
    # Nothing moved the primary's offset between the test's reads and the module's.
    offset = int(primary.info("replication")["master_repl_offset"])
    assert offset == offsets["primary"]
    # Settled: the replica applied and acknowledged every byte.
    expected = offsets["primary"] - offsets["replica"]
    lag = findings(result)["replication_lag"]
    assert (lag["value"], lag["master_repl_offset"]) == (expected, offset)
    assert entry["offset"] == offsets["replica"]
    assert entry["offset_lag_bytes"] == expected
    assert result["metrics"]["replication_lag_bytes"] == expected
    assert result["metrics"]["connected_replicas"] == 1


def _replica_offset(info: dict) -> int:
    """The offset a primary's INFO gives for its first replica (``slave0``)."""
    fields = dict(item.split("=", 1) for item in info["slave0"].split(","))
    return int(fields["offset"])


def settle(primary: RedisServer, replica: RedisServer) -> dict:
    """Wait until the replica applied and acknowledged everything; the offsets."""
    seen: dict = {}

    def caught_up() -> bool:
        ours = primary.info("replication")
        theirs = replica.info("replication")
        seen["primary"] = int(ours["master_repl_offset"])
        seen["acknowledged"] = _replica_offset(ours)
        seen["replica"] = int(theirs["slave_repl_offset"])
        return seen["primary"] == seen["acknowledged"] == seen["replica"]

    wait_for(caught_up, timeout=30, what="the replica to catch up")
    return seen


@pytest.fixture
def quiet_pings(pair):
    """No PINGs from the primary to its replicas: only writes move the offset."""
    primary, _replica = pair
    with primary.client() as client:
        client.config_set("repl-ping-replica-period", 3600)
    yield
    with primary.client() as client:
        client.config_set("repl-ping-replica-period", 10)


def test_a_stalled_replica_s_lag_is_the_bytes_it_has_not_acknowledged(
    ansible, pair, quiet_pings
):
    primary, replica = pair
    with primary.client() as client:
        # A first write after the sync also sends SELECT; get it out of the way.
        client.set("before-the-stall", 1)
    applied = settle(primary, replica)["replica"]
    payload = "x" * 5000
    os.kill(replica.pid, signal.SIGSTOP)
    try:
        with primary.client() as client:
            client.set("written-while-stalled", payload)
        before = primary.info("replication")
        result = ansible.module(
            MODULE,
            args(primary, checks=["replication"], replication_lag={"warning": 4096}),
        )
        after = primary.info("replication")
    finally:
        os.kill(replica.pid, signal.SIGCONT)

    offset = int(before["master_repl_offset"])
    assert int(after["master_repl_offset"]) == offset, "something else wrote"
    assert _replica_offset(before) == applied
    expected = offset - applied
    # The SET as the replication stream carries it, and nothing else.
    assert expected == len(
        f"*3\r\n$3\r\nSET\r\n$21\r\nwritten-while-stalled\r\n$5000\r\n{payload}\r\n"
    )
    lag = findings(result)["replication_lag"]
    assert (lag["value"], lag["master_repl_offset"]) == (expected, offset)
    assert lag["status"] == "warning"
    assert lag["message"] == (
        f"Largest replica offset lag is {expected} B, above the warning threshold "
        "of 4096 B"
    )
    (entry,) = findings(result)["replicas"]["replicas"]
    assert (entry["offset"], entry["offset_lag_bytes"]) == (applied, expected)
    settle(primary, replica)


def test_sentinel_names_the_primary_to_check(ansible, ctx, pair):
    primary, _replica = pair
    sentinel = start_sentinel(ctx, "sentinel", primary, "trm-cache")
    ctx.servers.append(sentinel)
    wait_for(
        lambda: (
            sentinel.client(password=None).sentinel_get_master_addr_by_name("trm-cache")
            is not None
        ),
        what="Sentinel to know the primary",
    )
    base = {"login_password": PASSWORD, "checks": ["replication"], "sample_seconds": 0}
    where = {"sentinel_hosts": [f"{LOOPBACK}:{sentinel.port}"], "timeout": 3}

    found = ansible.module(MODULE, {**base, **where, "service_name": "trm-cache"})
    ping = findings(found)["ping"]
    assert (ping["host"], ping["port"]) == (LOOPBACK, primary.port)
    assert ping["service_name"] == "trm-cache"
    assert findings(found)["replicas"]["value"] == 1
    assert found["summary"].startswith(f"Redis trm-cache (127.0.0.1:{primary.port}) OK")

    missing = ansible.module(MODULE, {**base, **where, "service_name": "nope"})
    ping = findings(missing)["ping"]
    assert (ping["status"], ping["error"]) == ("critical", "sentinel")
    assert "No Sentinel of" in ping["message"]
    assert ping["host"] is None


def test_a_replica_whose_primary_stopped_is_critical(ansible, pair):
    # Last in the module: it stops the shared primary.
    primary, replica = pair
    primary.stop()
    wait_for(
        lambda: replica.info("replication")["master_link_status"] == "down",
        timeout=30,
        what="the replica to lose its link",
    )
    result = ansible.module(MODULE, args(replica, checks=["replication"]))
    link = findings(result)["master_link"]
    assert (link["status"], link["value"]) == ("critical", "down")
    assert link["message"].startswith(
        f"This replica's link to its primary {LOOPBACK}:{primary.port} is down"
    )
    assert "master_last_io" not in findings(result)


# Persistence


def test_a_failed_background_save_is_critical(ansible, ctx):
    saving = started(
        ctx, "saving", password=PASSWORD, config=('save "3600 1"', "appendonly yes")
    )
    with saving.client() as client:
        client.set("unsaved", 1)
        # Without its folder the save cannot write its temporary file.
        shutil.rmtree(saving.folder)
        client.bgsave()
    wait_for(
        lambda: saving.info("persistence")["rdb_last_bgsave_status"] == "err",
        what="the background save to fail",
    )
    before = saving.info("everything")

    result = ansible.module(MODULE, args(saving, checks=["persistence"]))

    after = saving.info("everything")
    found = findings(result)
    # Redis refuses PING on purpose while it cannot save.
    ping = found["ping"]
    assert (ping["status"], ping["error"]) == ("critical", "misconf")
    assert (found["rdb_save_status"]["status"], found["rdb_save_status"]["value"]) == (
        "critical",
        "err",
    )
    # The module reads the age at some moment of the task: between the
    # server's clock before and after it.
    saved = int(before["rdb_last_save_time"])
    assert int(after["rdb_last_save_time"]) == saved
    oldest = int(after["server_time_usec"]) // 1_000_000 - saved
    youngest = int(before["server_time_usec"]) // 1_000_000 - saved
    assert youngest <= found["rdb_save_age"]["age_seconds"] <= oldest
    assert found["rdb_save_age"]["status"] == "ok"
    assert found["rdb_save_age"]["save"] == "3600 1"
    assert found["aof_write_status"]["message"] == (
        "AOF is on and its last write succeeded"
    )
    assert result["status"] == "critical"
