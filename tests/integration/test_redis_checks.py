"""The redis_checks role end to end: its entries, the report, and the lab.

Playbooks are written into each test's folder and run through ansible-playbook.
The role runs against a redis-server started here, and once against the lab's
Redis as the cadence playbooks use it (inventory from the lab's state).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from lab.core import LOOPBACK, LabContext
from tests.integration.conftest import lab_inventory
from tests.integration.redis_servers import RedisServer, start_redis

PASSWORD = "pw-role-31c7"
ROLE = "trm.maintenance.redis_checks"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One password-protected redis-server for the role's tests."""
    ctx = LabContext(tmp_path_factory.mktemp("redis-role"))
    started = start_redis(ctx, "role", password=PASSWORD)
    yield started
    started.stop()


@pytest.fixture
def fresh(server):
    """The server with known data: 3 keys (1 with a TTL), 3 hits and 1 miss."""
    with server.client() as client:
        client.flushall()
        client.config_resetstat()
        client.set("session:a", 1, ex=600)
        client.set("session:b", 2)
        client.set("session:c", 3)
        for key in ("session:a", "session:b", "session:c", "session:missing"):
            client.get(key)
    return server


def connection(server) -> dict:
    """Role variables pointing at ``server``."""
    return {
        "redis_checks_host": LOOPBACK,
        "redis_checks_port": server.port,
        "redis_checks_password": server.password,
        "redis_checks_sample_seconds": 1,
    }


def write_play(folder: Path, variables: dict, *, report: bool = False) -> Path:
    """A playbook that runs the role (and the report role) and saves the results."""
    out = folder / "results.json"
    tasks = [
        {"name": "Run the Redis checks", "ansible.builtin.import_role": {"name": ROLE}},
        {
            "name": "Save what the role recorded",
            "ansible.builtin.copy": {
                "content": "{{ maintenance_results | default([]) | to_json }}",
                "dest": str(out),
            },
            "delegate_to": "localhost",
            "run_once": True,
            "tags": ["always"],
        },
    ]
    if report:
        tasks.append(
            {
                "name": "Write the report",
                "ansible.builtin.import_role": {"name": "trm.maintenance.report"},
            }
        )
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {
                "ansible_python_interpreter": sys.executable,
                "maintenance_cadence": "weekly",
                **variables,
            },
            "tasks": tasks,
        }
    ]
    path = folder / "play.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    return path


def run_role(ansible, folder: Path, variables: dict, *args: str, **options) -> list:
    """Run the role; return ``maintenance_results`` as the play left it."""
    play = write_play(folder, variables, **options)
    run = ansible.playbook(play, "-i", "localhost,", "-c", "local", *args)
    out = folder / "results.json"
    assert out.exists(), run.stdout + run.stderr
    return json.loads(out.read_text())


def checks(entry: dict) -> dict:
    """The findings of an entry's registered result, by name."""
    return {check["name"]: check for check in entry["result"]["checks"]}


def test_both_concerns_append_their_entries(ansible, fresh, tmp_path):
    results = run_role(ansible, tmp_path, connection(fresh))

    assert [(e["section"], e["task"]) for e in results] == [
        ("Redis", "Check that Redis answers PING and is healthy"),
        (
            "Redis cache performance",
            "Review the cache's memory, hit rate and slow commands",
        ),
    ]
    assert {(e["cadence"], e["role"]) for e in results} == {("weekly", "redis_checks")}
    daily, review = results
    assert list(checks(daily)) == [
        "ping",
        "memory_usage",
        "fragmentation",
        "evicted_keys",
        "clients_usage",
        "blocked_clients",
        "rejected_connections",
        "rdb_save_status",
        "rdb_save_age",
        "aof_write_status",
        "replicas",
    ]
    assert daily["result"]["status"] == "ok", daily["result"]["summary"]
    # The review's first sample comes after the daily check's INFO, which
    # counts no lookups: 3 hits and 1 miss since the statistics were reset.
    assert checks(review)["hit_rate_lifetime"]["value"] == 75.0
    assert checks(review)["hit_rate_lifetime"]["status"] == "warning"
    assert checks(review)["hit_rate_interval"]["value"] is None  # no lookups
    assert review["result"]["metrics"]["sample_seconds"] >= 1
    keyspace = checks(review)["keyspace"]
    assert keyspace["value"] == 3
    assert keyspace["databases"]["db0"]["expires"] == 1
    assert review["result"]["status"] == "warning"


def test_tags_run_one_concern(ansible, fresh, tmp_path):
    variables = connection(fresh)
    results = run_role(ansible, tmp_path, variables, "--tags", "cache_review")
    assert [e["section"] for e in results] == ["Redis cache performance"]


def test_thresholds_reach_both_checks(ansible, fresh, tmp_path):
    variables = {
        **connection(fresh),
        "redis_checks_thresholds": {
            "hit_rate": {"warning": 70, "critical": 50, "direction": "below"},
            "ping_latency": {"warning": 0},
        },
    }
    daily, review = run_role(ansible, tmp_path, variables)
    assert checks(daily)["ping"]["status"] == "warning"
    assert checks(review)["hit_rate_lifetime"]["status"] == "ok"
    assert checks(review)["hit_rate_lifetime"]["warning"] == 70.0


def test_nothing_configured_skips_both_checks(ansible, tmp_path):
    results = run_role(ansible, tmp_path, {})
    assert [e["section"] for e in results] == ["Redis", "Redis cache performance"]
    assert all(e["result"].get("skipped") for e in results)


def test_an_unreachable_server_is_a_finding_and_the_play_goes_on(ansible, tmp_path):
    variables = {"redis_checks_host": LOOPBACK, "redis_checks_port": 1}
    daily, review = run_role(ansible, tmp_path, variables)
    for entry in (daily, review):
        assert entry["result"]["status"] == "critical"
        assert checks(entry)["ping"]["error"] == "connection_refused"


def test_the_review_continues_from_the_previous_report(ansible, fresh, tmp_path):
    reports = tmp_path / "reports"
    variables = {
        **connection(fresh),
        "redis_checks_daily": False,
        "report_dir": str(reports),
        "maintenance_fail_on": "never",
    }
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    with fresh.client() as client:
        client.execute_command("DEBUG", "SLEEP", "0.02")
    (first,) = run_role(ansible, first_dir, variables, report=True)
    last_id = first["result"]["metrics"]["slowlog_last_id"]
    assert isinstance(last_id, int)

    with fresh.client() as client:
        for _index in range(3):
            client.execute_command("DEBUG", "SLEEP", "0.02")
    (second,) = run_role(ansible, second_dir, variables, report=True)

    slowlog = checks(second)["slowlog"]
    assert slowlog["since_id"] == last_id
    assert slowlog["value"] == 3
    assert second["result"]["metrics"]["slowlog_last_id"] == last_id + 3


def test_a_given_slowlog_position_wins_over_the_reports(ansible, fresh, tmp_path):
    folder = tmp_path / "reports" / "2026-01-07-weekly"
    folder.mkdir(parents=True)
    (folder / "maintenance-log.json").write_text(
        json.dumps({"metrics": {"redis_cache_performance.slowlog_last_id": 40}})
    )
    variables = {
        **connection(fresh),
        "redis_checks_daily": False,
        "redis_checks_report_dir": str(tmp_path / "reports"),
    }
    (from_report,) = run_role(ansible, tmp_path, variables)
    assert checks(from_report)["slowlog"]["since_id"] == 40

    (given,) = run_role(
        ansible, tmp_path, {**variables, "redis_checks_slowlog_since_id": 0}
    )
    assert checks(given)["slowlog"]["since_id"] == 0


# The cadence playbooks against the lab


LAB_CONNECTION = {
    "redis_checks_host": "{{ lab_redis_host }}",
    "redis_checks_port": "{{ lab_redis_port }}",
    "redis_checks_password": "{{ lab_redis_password }}",
    "redis_checks_sample_seconds": 1,
}


def run_cadence(ansible, full_lab, tmp_path: Path, cadence: str, concern: str):
    """Run playbooks/<cadence>.yml for one Redis concern; return the report."""
    inventory = lab_inventory(full_lab, tmp_path / cadence)
    reports = tmp_path / "reports"
    extra = {
        **LAB_CONNECTION,
        "report_dir": str(reports),
        "maintenance_calendar_only": [concern],
    }
    run = ansible.playbook(
        f"playbooks/{cadence}.yml", "-i", str(inventory), "-e", json.dumps(extra)
    )
    assert run.rc == 0, run.stdout + run.stderr
    (folder,) = reports.glob(f"*-{cadence}")
    return folder, json.loads((folder / "maintenance-log.json").read_text())


def lab_server(record: dict) -> RedisServer:
    """The lab's Redis, for the test's own INFO through redis-cli."""
    pid = record["pids"][0]
    return RedisServer("lab", record["port"], pid, Path(), record["password"])


def assert_lab_health(found: dict, info: dict) -> None:
    """The daily findings of the lab's Redis against INFO read by the test.

    The lab's Redis has no maxmemory, no keys, no snapshots and no AOF, and
    only the check itself is connected while it runs (as redis-cli is now).
    """
    total, used = int(info["total_system_memory"]), int(info["used_memory"])
    memory = found["memory_usage"]
    assert (memory["status"], memory["limit_source"]) == ("ok", "system_memory")
    assert memory["limit_bytes"] == total
    assert memory["used_memory_bytes"] == pytest.approx(used, rel=0.1)
    # A percentage to two decimals: a few MiB of a host's memory rounds to 0.0.
    assert memory["value"] == round(memory["used_memory_bytes"] / total * 100, 2)
    assert memory["value"] == pytest.approx(used / total * 100, abs=0.01)
    assert memory["warning"] == 80.0
    fragmentation = found["fragmentation"]
    assert fragmentation["status"] == "ok"
    # Under 64 MiB in use the ratio is reported, not judged.
    assert used < 64 * 1024 * 1024
    assert "not judged" in fragmentation["message"]
    assert fragmentation["value"] > 0
    assert fragmentation["rss_bytes"] == pytest.approx(
        int(info["used_memory_rss"]), rel=0.25
    )
    for name in ("evicted_keys", "blocked_clients", "rejected_connections"):
        assert (found[name]["value"], found[name]["status"]) == (int(info[name]), "ok")
    assert int(info["evicted_keys"]) == 0
    clients = found["clients_usage"]
    connected, limit = int(info["connected_clients"]), int(info["maxclients"])
    assert (clients["connected_clients"], clients["maxclients"]) == (connected, limit)
    assert clients["value"] == round(connected / limit * 100, 2)
    assert clients["status"] == "ok"
    saved = found["rdb_save_status"]
    assert info["rdb_last_bgsave_status"] == "ok"
    assert (saved["status"], saved["message"]) == ("ok", "The last RDB save succeeded")
    assert saved["rdb_saves"] == int(info["rdb_saves"])
    age = found["rdb_save_age"]
    changes = int(info["rdb_changes_since_last_save"])
    assert (age["status"], age["rdb_changes_since_last_save"]) == ("ok", changes)
    assert age["last_save_time"] == int(info["rdb_last_save_time"])
    now = int(info["server_time_usec"]) // 1_000_000
    assert age["age_seconds"] == pytest.approx(now - age["last_save_time"], abs=60)
    if changes:
        assert "save is empty" in age["message"]
    else:
        assert age["message"].startswith("No changes since the last RDB save")
    aof = found["aof_write_status"]
    assert info["aof_enabled"] == "0"
    assert (aof["status"], aof["message"], aof["aof_enabled"]) == (
        "ok",
        "AOF is off",
        False,
    )


def test_the_cadence_playbooks_show_the_redis_sections(ansible, full_lab, tmp_path):
    record = full_lab["servers"]["redis"]
    folder, daily = run_cadence(
        ansible, full_lab, tmp_path, "daily", "redis_checks_daily"
    )
    (entry,) = [e for e in daily["entries"] if e["section"] == "Redis"]
    found = {f["name"]: f for f in entry["findings"]}
    assert entry["status"] == "ok", entry["summary"]
    assert (found["ping"]["port"], found["ping"]["role"]) == (record["port"], "primary")
    assert daily["metrics"]["redis.up"] == 1
    assert_lab_health(found, lab_server(record).info("everything"))
    markdown = (folder / "maintenance-log.md").read_text()
    assert "Check that Redis answers PING and is healthy" in markdown
    assert record["password"] not in markdown

    _folder, weekly = run_cadence(
        ansible, full_lab, tmp_path, "weekly", "redis_checks_cache_review"
    )
    (review,) = [
        e for e in weekly["entries"] if e["section"] == "Redis cache performance"
    ]
    found = {f["name"]: f for f in review["findings"]}
    assert review["status"] == "ok", review["summary"]
    # The lab's Redis holds no keys, and the application only sends PING.
    assert found["keyspace"]["value"] == 0
    assert found["hit_rate_lifetime"]["value"] is None
    assert (found["slowlog"]["value"], found["slowlog"]["status"]) == (0, "ok")
    assert weekly["metrics"]["redis_cache_performance.keys_total"] == 0
