"""The mongo_checks role end to end, per cadence, against the lab and the stand-in.

The lab's MongoDB is nx-27017 (its gaps are listed in mongo_lab.py): the
daily, monthly and quarterly concerns run against it in full; the weekly
review's profiler, index counters and WiredTiger figures, and the quarterly
long-running operations, run against the MongoDB 7 stand-in as well.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from lab import trm_data
from lab.core import free_port
from tests.integration.mongo_lab import (
    NOW,
    entries,
    new_registrations,
    run_role,
    start_lab,
    stop_lab,
)
from tests.unit.plugins.module_utils.mongo7 import (
    NOW as STAND_IN_NOW,
)
from tests.unit.plugins.module_utils.mongo7 import (
    Collection,
    FakeMongo,
    Index,
    Server,
    encrypted_client_key,
    naive,
)


@pytest.fixture(scope="module")
def mongo_lab(tmp_path_factory):
    """The lab's MongoDB, seeded for NOW, for this module."""
    record = start_lab(tmp_path_factory.mktemp("mongodb"))
    try:
        yield record
    finally:
        stop_lab(record)


def lab_vars(record: dict, **extra) -> dict:
    """The role's variables for the lab: its URI and its data's "now"."""
    return {"mongo_checks_uri": record["uri"], "mongo_checks_now": NOW, **extra}


def test_daily_reports_connections_and_volumes_with_the_planted_one_flagged(
    ansible, mongo_lab, tmp_path
):
    reports = tmp_path / "reports"
    run, results = run_role(
        ansible, tmp_path, "daily", lab_vars(mongo_lab, report_dir=str(reports))
    )
    found = entries(results)
    expected = mongo_lab["expected"]["last_24h"]

    assert run.rc == 0, run.stdout
    assert list(found) == [
        "Check MongoDB connections against their maximum",
        "Count the day's registrations, job postings, referrals and payments",
    ]
    connections = found["Check MongoDB connections against their maximum"]
    assert connections["entry"]["section"] == "MongoDB connections"
    assert connections["entry"]["cadence"] == "daily"
    assert connections["entry"]["role"] == "mongo_checks"
    assert {n: c["status"] for n, c in connections["checks"].items()} == {
        "connections": "ok",
        "replication": "ok",
    }
    volumes = found[
        "Count the day's registrations, job postings, referrals and payments"
    ]
    assert {n: (c["value"], c["status"]) for n, c in volumes["checks"].items()} == {
        "registrations": (expected["users"]["count"], "ok"),
        "job_postings": (expected["jobs"]["count"], "ok"),
        "referrals": (22, "warning"),
        "payments": (expected["payments"]["count"], "ok"),
    }
    (folder,) = reports.glob("*-daily")
    report = json.loads((folder / "maintenance-log.json").read_text())
    assert report["status"] == "warning"
    assert [(i["section"], i["status"]) for i in report["issues"]] == [
        ("Business metrics", "warning")
    ]
    assert report["metrics"]["business_metrics.referrals"] == 22


def test_tags_select_one_concern(ansible, mongo_lab, tmp_path):
    _run, results = run_role(
        ansible, tmp_path, "daily", lab_vars(mongo_lab), "--tags", "business_metrics"
    )

    assert [entry["section"] for entry in results] == ["Business metrics"]


def test_weekly_review_on_the_lab_lists_sizes_and_says_what_is_missing(
    ansible, mongo_lab, tmp_path
):
    _run, results = run_role(ansible, tmp_path, "weekly", lab_vars(mongo_lab))
    (review,) = list(entries(results).values())
    checks = review["checks"]

    assert review["entry"]["section"] == "Database performance"
    assert checks["collections"]["status"] == "ok"
    assert [row["collection"] for row in checks["collections"]["largest"]][:2] == [
        "auditlogs",
        "users",
    ]
    assert {name: checks[name]["status"] for name in checks} == {
        "slow_queries": "unknown",
        "index_usage": "unknown",
        "collections": "ok",
        "wiredtiger": "unknown",
    }


def stand_in() -> Server:
    """A MongoDB 7 server holding a small trm database with a slow query."""
    entry = {
        "op": "query",
        "ns": "trm.referrals",
        "millis": 1840,
        "ts": naive(STAND_IN_NOW - timedelta(hours=3)),
        "planSummary": "COLLSCAN",
        "command": {"find": "referrals", "filter": {"status": "pending"}},
    }
    return Server(
        databases={
            "trm": [
                Collection(
                    "referrals",
                    5121,
                    1590017,
                    1912832,
                    98304,
                    indexes=[
                        Index("_id_", {"_id": 1}, ops=90),
                        Index("jobId_1", {"jobId": 1}, ops=40),
                        Index("status_1", {"status": 1}),
                    ],
                ),
            ]
        },
        profile={"trm": (1, [entry])},
        operations=[
            {
                "desc": "conn31",
                "op": "update",
                "ns": "trm.referrals",
                "opid": 99,
                "secs_running": 75,
                "microsecs_running": 75_000_000,
                "command": {"q": {"status": "pending"}},
            }
        ],
    )


def test_weekly_and_quarterly_reviews_on_a_mongodb_7_stand_in(ansible, tmp_path):
    with FakeMongo(stand_in()) as fake:
        _run, weekly = run_role(
            ansible, tmp_path, "weekly", {"mongo_checks_uri": fake.uri}
        )
        _run, quarterly = run_role(
            ansible, tmp_path, "quarterly", {"mongo_checks_uri": fake.uri}
        )

    (review,) = list(entries(weekly).values())
    checks = review["checks"]
    assert (checks["slow_queries"]["status"], checks["slow_queries"]["value"]) == (
        "warning",
        1840,
    )
    assert checks["slow_queries"]["slowest"][0]["command"]["filter"] == {"status": "?"}
    assert [i["index"] for i in checks["index_usage"]["unused"]] == ["status_1"]
    assert checks["cache_used"]["status"] == "ok"
    long_ops, compaction = list(entries(quarterly).values())
    current = long_ops["checks"]["current_ops"]
    assert (current["status"], current["value"]) == ("critical", 75.0)
    assert compaction["entry"]["result"]["skipped"] is True


def test_monthly_growth_user_activity_and_access_review(ansible, mongo_lab, tmp_path):
    history = tmp_path / "reports"
    earlier = date.today() - timedelta(days=30)
    folder = history / f"{earlier.isoformat()}-monthly"
    folder.mkdir(parents=True)
    document = {
        "format": 1,
        "date": earlier.isoformat(),
        "metrics": {"capacity_planning.capacity_used_bytes": 8_000_000},
    }
    (folder / "maintenance-log.json").write_text(json.dumps(document))
    users = mongo_lab["expected"]["users"]

    _run, results = run_role(
        ansible,
        tmp_path,
        "monthly",
        lab_vars(mongo_lab, mongo_checks_history_dir=str(history)),
    )
    capacity, activity, access = list(entries(results).values())

    used = capacity["entry"]["result"]["metrics"]["capacity_used_bytes"]
    growth = capacity["checks"]["capacity_growth"]
    assert growth["since"] == earlier.isoformat()
    assert growth["value"] == round((used / 8_000_000 - 1) * 100, 2)
    assert capacity["checks"]["capacity_projection"]["unit"] == "days"
    # The lab's data grew from 8 MB: the projection is the days until 70% of the
    # ceiling at the growth per day of these 30 days, or 0 when already past.
    ceiling = capacity["checks"]["capacity_used"]["ceiling_bytes"]
    per_day = (used - 8_000_000) / 30
    left = ceiling * 70 / 100 - used
    expected_days = 0.0 if left <= 0 else round(left / per_day, 1)
    projection = capacity["checks"]["capacity_projection"]
    assert per_day > 0
    assert projection["value"] == expected_days
    assert projection["bytes_per_day"] == round(per_day, 1)
    assert projection["target_bytes"] == int(ceiling * 70 / 100)
    assert {n: c["value"] for n, c in activity["checks"].items()} == {
        "monthly_active_users": users["monthly_active"],
        "new_registrations_30d": new_registrations(30),
        "churned_users": users["churned"],
    }
    review = {n: (c["value"], c["status"]) for n, c in access["checks"].items()}
    assert review == {
        "admin_accounts": (9, "ok"),
        "inactive_admin_accounts": (3, "warning"),
        "active_api_keys": (17, "ok"),
        "unused_api_keys": (3, "warning"),
    }
    admins = access["checks"]["admin_accounts"]["documents"]
    assert [doc["email"] for doc in admins] == sorted(doc["email"] for doc in admins)
    keys = access["checks"]["active_api_keys"]["documents"]
    assert len(keys) == 17
    # No _id: the count does not list it, and a key could be keyed by its value.
    assert {field for doc in keys for field in doc} == {
        "name",
        "ownerId",
        "createdAt",
        "lastUsed",
    }
    assert "keyHash" not in json.dumps(results)


def test_quarterly_compaction_runs_inside_the_window_only(ansible, mongo_lab, tmp_path):
    common = lab_vars(
        mongo_lab,
        mongo_checks_compact_databases=["trm"],
        mongo_checks_compact_min_size="1MB",
        maintenance_guard_timezone="UTC",
    )

    _run, closed = run_role(
        ansible,
        tmp_path,
        "quarterly",
        {
            **common,
            # A Thursday: outside the shared Sunday windows.
            "maintenance_guard_now": "2026-12-03T11:00:00+00:00",
        },
    )
    _run, planned = run_role(
        ansible,
        tmp_path,
        "quarterly",
        {
            **common,
            # The first Sunday of December 2026, 02:30: inside the windows.
            "maintenance_guard_now": "2026-12-06T02:30:00+00:00",
        },
        "--check",
    )
    _run, done = run_role(
        ansible,
        tmp_path,
        "quarterly",
        {
            **common,
            # The first Sunday of December 2026, 02:30: inside the windows.
            "maintenance_guard_now": "2026-12-06T02:30:00+00:00",
        },
    )

    # The shared windows (maintenance_guard) decide; outside them the
    # compaction is skipped and the guard's finding says why.
    refused = entries(closed)["Compact large collections"]["entry"]["result"]
    assert refused.get("skipped") is True
    guard = entries(closed)["Check the maintenance window before compaction"]
    assert guard["entry"]["result"]["status"] == "warning"
    assert guard["entry"]["result"]["inside"] is False
    plan = entries(planned)["Compact large collections"]["entry"]["result"]
    assert plan["changed"] is True and plan["compacted"] == []
    names = [entry["collection"] for entry in plan["plan"]]
    assert names == ["auditlogs", "users", "referrals", "jobs"]
    compacted = entries(done)["Compact large collections"]["entry"]["result"]
    assert [entry["collection"] for entry in compacted["compacted"]] == names
    assert set(compacted["phases"]) == {"preconditions", "plan", "compact"}
    # The module follows the guard, judged at the guard's moment, and says so.
    assert compacted["window"]["checked_by"] == "maintenance_guard"
    assert compacted["window"]["allowed_by"] == "window_checked_by"
    assert compacted["window"]["now"] == "2026-12-06T02:30:00Z"
    # December is no quarter month: the first Sunday opens the monthly window.
    assert compacted["window"]["window"] == "monthly"
    assert compacted["checks"][0]["message"] == (
        "Allowed by maintenance_guard, which checked the maintenance window (here: "
        "inside the monthly window (Sun 2026-12-06 02:00-06:00 UTC), 3 h 30 min "
        "left)"
    )
    operations = entries(done)["Review long-running operations"]["checks"]
    assert operations["current_ops"]["status"] == "unknown"  # nx-27017 has no currentOp
    assert trm_data.DATABASE == "trm"


def test_the_review_reads_the_look_back_days_it_is_given(ansible, tmp_path):
    variables = {
        "mongo_checks_slow_query_days": 0.1,  # 2 h 24 min: the 3 h old entry is out
        "mongo_checks_unused_index_days": 45,  # status_1 has counted for 30 days
        "mongo_checks_sample_collections": 1,  # referrals, not the smaller jobs
    }
    server = stand_in()
    server.databases["trm"].append(
        Collection("jobs", 10, 4096, 8192, 4096, indexes=[Index("type_1", {"t": 1})])
    )
    with FakeMongo(server) as fake:
        _run, weekly = run_role(
            ansible, tmp_path, "weekly", {"mongo_checks_uri": fake.uri, **variables}
        )
        profile = [d for d in fake.received("find") if d["find"] == "system.profile"]

    (review,) = list(entries(weekly).values())
    checks = review["checks"]
    (query,) = profile
    since = query["filter"]["ts"]["$gte"]
    assert since == naive(STAND_IN_NOW - timedelta(days=0.1))
    assert checks["slow_queries"]["status"] == "ok"
    assert checks["slow_queries"]["slowest"] == []
    assert checks["index_usage"]["status"] == "ok"
    assert checks["index_usage"]["unused"] == []
    sampled = checks["index_usage"]
    assert (sampled["collections_sampled"], sampled["collections_total"]) == (1, 2)
    assert sampled["indexes_total"] == 3  # the three indexes of referrals


@pytest.mark.parametrize(
    ("password", "fails_on"),
    [("right-pass", None), ("wrong-pass", "client_cert_password")],
)
def test_the_role_passes_the_client_key_passphrase(
    ansible, tmp_path, password, fails_on
):
    # Nothing listens on the port: with the key decrypted the module gets as far
    # as the server and reports it unreachable; with a wrong passphrase it fails
    # on the option before connecting.
    variables = {
        "mongo_checks_uri": f"mongodb://127.0.0.1:{free_port()}/",
        "mongo_checks_tls": True,
        "mongo_checks_client_cert_file": encrypted_client_key(tmp_path),
        "mongo_checks_client_cert_password": password,
        "mongo_checks_server_selection_timeout": 1,
    }
    _run, results = run_role(
        ansible, tmp_path, "daily", variables, "--tags", "connections"
    )

    (connections,) = list(entries(results).values())
    result = connections["entry"]["result"]
    assert result.get("option") == fails_on
    if fails_on:
        assert result["failed"] is True
        assert result["msg"].startswith(
            "Option 'client_cert_password' does not decrypt the key"
        )
    else:
        assert connections["checks"]["connection"]["status"] == "critical"
    assert password not in json.dumps(results)
