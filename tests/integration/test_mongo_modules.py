"""mongo_health, mongo_metrics and mongo_compact through Ansible against the lab.

The lab's MongoDB is nx-27017; its gaps are listed in mongo_lab.py. What it
cannot answer is tested against the MongoDB 7 stand-in (mockupdb) under
tests/unit, and here only where Ansible itself is part of the behaviour
(rejected credentials, secrets in the output).
"""

from __future__ import annotations

import json
import time

import pytest

from lab import trm_data
from lab.core import free_port
from tests.integration.mongo_lab import (
    NOW,
    new_registrations,
    open_database,
    start_lab,
    stop_lab,
)
from tests.unit.plugins.module_utils.mongo7 import Collection, FakeMongo, Server

DAILY = [
    {
        "name": spec["metric"],
        "collection": name,
        "date_field": "createdAt",
        "window": "24h",
        "range": {"normal": spec["normal"], "investigate": spec["investigate"]},
    }
    for name, spec in trm_data.RANGES.items()
]
# The collections nx-27017 holds: the lab's six.
SIX = sorted(trm_data.COLLECTIONS)


@pytest.fixture(scope="module")
def mongo_lab(tmp_path_factory):
    """The lab's MongoDB, seeded for NOW, for this module."""
    record = start_lab(tmp_path_factory.mktemp("mongodb"))
    try:
        yield record
    finally:
        stop_lab(record)


@pytest.fixture(scope="module")
def trm(mongo_lab):
    """The seeded trm database, read directly."""
    client = open_database(mongo_lab)
    yield client[mongo_lab["database"]]
    client.close()


def by_name(result: dict) -> dict:
    return {check["name"]: check for check in result["checks"]}


# mongo_health


def test_health_reports_connections_capacity_and_collections(ansible, mongo_lab, trm):
    result = ansible.module(
        "trm.maintenance.mongo_health",
        {"uri": mongo_lab["uri"], "databases": ["trm"]},
    )
    found = by_name(result)
    stats = trm.command("dbStats")
    status = trm.client.admin.command("serverStatus")

    connections = found["connections"]
    assert connections["status"] == "ok"
    assert connections["maximum"] == connections["current"] + connections["available"]
    assert connections["available"] == status["connections"]["available"] == 1000
    assert connections["current"] >= 1
    assert found["replication"]["status"] == "ok"
    assert result["server"]["role"] == "standalone"

    metrics = result["metrics"]
    assert metrics["trm_data_bytes"] == stats["dataSize"]
    assert metrics["capacity_used_bytes"] == stats["storageSize"] + stats["indexSize"]
    assert found["capacity_used"]["ceiling_bytes"] == stats["fsTotalSize"]

    sizes = {name: trm.command("collStats", name)["size"] for name in SIX}
    largest = found["collections"]["largest"]
    assert [row["collection"] for row in largest] == sorted(
        sizes, key=sizes.get, reverse=True
    )
    assert {row["collection"]: row["data_bytes"] for row in largest} == sizes
    assert metrics["collections_total"] == 6


def test_health_says_what_nx_27017_cannot_answer(ansible, mongo_lab):
    result = ansible.module(
        "trm.maintenance.mongo_health",
        {
            "uri": mongo_lab["uri"],
            "checks": ["slow_queries", "index_usage", "current_ops", "wiredtiger"],
        },
    )
    found = by_name(result)

    assert result["status"] == "unknown"
    assert result.get("failed") is not True
    assert found["slow_queries"]["message"] == (
        "The server does not report the profiling level of trm"
    )
    assert found["index_usage"]["message"].startswith("$indexStats failed")
    assert found["current_ops"]["message"] == "currentOp answered without inprog"
    assert found["wiredtiger"]["message"].startswith(
        "serverStatus reports no WiredTiger cache statistics"
    )


def test_fail_on_turns_an_unreachable_server_into_a_failed_task(ansible):
    uri = f"mongodb://127.0.0.1:{free_port()}/"
    started = time.monotonic()

    result = ansible.module(
        "trm.maintenance.mongo_health",
        {
            "uri": uri,
            "checks": ["connections"],
            "server_selection_timeout": 1,
            "fail_on": "critical",
        },
    )

    assert time.monotonic() - started < 30
    assert result["failed"] is True
    assert result["status"] == "critical"
    assert result["checks"][0]["name"] == "connection"
    assert result["msg"].startswith(
        "MongoDB health CRITICAL (1 critical): Cannot reach"
    )


def test_invalid_uri_fails_the_task_naming_the_option(ansible):
    result = ansible.module(
        "trm.maintenance.mongo_health",
        {"uri": "mongodb://monitor:hunter2@db1:port/"},
    )

    assert result["failed"] is True
    assert result["option"] == "uri"
    assert result["msg"].startswith("Option 'uri' is not a valid MongoDB URI")
    assert "hunter2" not in json.dumps(result)


def test_password_in_the_uri_never_reaches_the_result(ansible, mongo_lab):
    uri = mongo_lab["uri"].replace("//", "//monitor:pa%24%24word@")

    result = ansible.module(
        "trm.maintenance.mongo_health", {"uri": uri, "checks": ["connections"]}
    )

    text = json.dumps(result)
    assert "pa%24%24word" not in text and "pa$$word" not in text
    assert result["server"]["target"].startswith("mongodb://monitor:********@")
    # nx-27017 has no authentication; the driver cannot read its answer.
    assert result["checks"][0]["name"] == "connection"
    assert result["status"] == "unknown"


def test_rejected_credentials_are_an_unknown_finding_not_a_failure(ansible):
    with FakeMongo(Server()) as fake:
        result = ansible.module(
            "trm.maintenance.mongo_health",
            {
                "uri": fake.uri,
                "login_user": "monitor",
                "login_password": "not-the-password",
                "checks": ["connections"],
            },
        )

    assert result.get("failed") is not True
    assert result["status"] == "unknown"
    (check,) = result["checks"]
    assert check["message"].startswith("MongoDB at mongodb://127.0.0.1:")
    assert "rejected the credentials" in check["message"]
    assert "login_password" in check["action"]
    assert "not-the-password" not in json.dumps(result)


def test_a_module_call_opens_one_connection_for_all_its_commands(ansible):
    collections = [Collection(f"c{n}", storage_bytes=n) for n in range(5)]
    with FakeMongo(Server(databases={"trm": collections})) as fake:
        result = ansible.module("trm.maintenance.mongo_health", {"uri": fake.uri})
        commands = fake.connections(commands_only=True)
        every = fake.connections()

    assert result["metrics"]["collections_total"] == 5
    assert sorted(fake.names()) == [
        "aggregate",  # every collection's size
        "aggregate",  # $indexStats
        "currentOp",
        "dbStats",
        "endSessions",
        "listDatabases",
        "profile",
        "serverStatus",
    ]
    # Every command on one connection; the others are pymongo's monitors, which
    # send only hello (the server monitor and its round-trip-time monitor).
    assert len(commands) == 1
    assert len(every - commands) <= 2


@pytest.mark.parametrize(
    "uri",
    ["mongodb://monitor:Sec/ret99@db1/", "mongodb://monitor:Sec@ret99@db1/"],
)
def test_an_unencoded_password_in_the_uri_is_never_shown(ansible, uri):
    result = ansible.module("trm.maintenance.mongo_health", {"uri": uri})

    assert result["failed"] is True
    assert result["option"] == "uri"
    assert "mongodb://monitor:********@db1/" in result["msg"]
    text = json.dumps(result)
    assert "Sec" not in text and "ret99" not in text


def test_a_missing_ca_file_fails_naming_the_option(ansible, tmp_path):
    missing = str(tmp_path / "absent-ca.pem")

    result = ansible.module(
        "trm.maintenance.mongo_compact",
        {"login_host": "db1", "tls": True, "ca_certs": missing, "databases": ["trm"]},
    )

    assert result["failed"] is True
    assert result["option"] == "ca_certs"
    assert result["msg"] == (
        "Option 'ca_certs' names a file that cannot be read "
        f"(No such file or directory); got '{missing}'"
    )
    # A crash would read "MODULE FAILURE" with the traceback on stderr.
    assert "module_stderr" not in result


# mongo_metrics


def test_daily_volumes_match_the_lab_and_flag_the_planted_referrals(ansible, mongo_lab):
    expected = mongo_lab["expected"]["last_24h"]

    result = ansible.module(
        "trm.maintenance.mongo_metrics",
        {"uri": mongo_lab["uri"], "database": "trm", "counts": DAILY, "now": NOW},
    )
    found = by_name(result)

    assert result["metrics"] == {
        spec["metric"]: expected[name]["count"]
        for name, spec in trm_data.RANGES.items()
    }
    assert {name: check["status"] for name, check in found.items()} == {
        "registrations": "ok",
        "job_postings": "ok",
        "referrals": "warning",
        "payments": "ok",
    }
    assert found["referrals"]["value"] == 22
    assert found["referrals"]["message"] == (
        "Referrals is 22, outside the normal range 30-150"
    )
    assert found["referrals"]["window"]["since"] == "2025-03-08T14:30:00.000Z"
    assert result["status"] == "warning"


def test_user_activity_counts_match_the_lab(ansible, mongo_lab):
    users = mongo_lab["expected"]["users"]
    counts = [
        {
            "name": "mau",
            "collection": "users",
            "date_field": "lastLogin",
            "window": "30d",
        },
        {
            "name": "new",
            "collection": "users",
            "date_field": "createdAt",
            "window": "30d",
        },
        {
            "name": "churned",
            "collection": "users",
            "date_field": "lastLogin",
            "window": "60d",
            "date_match": "before",
            "include_missing": True,
        },
    ]

    result = ansible.module(
        "trm.maintenance.mongo_metrics",
        {"uri": mongo_lab["uri"], "database": "trm", "counts": counts, "now": NOW},
    )

    assert result["metrics"] == {
        "mau": users["monthly_active"],
        "new": new_registrations(30),
        "churned": users["churned"],
    }
    assert (users["monthly_active"], users["churned"]) == (6009, 776)


def test_access_review_lists_accounts_and_keys_without_secrets(ansible, mongo_lab):
    keys = mongo_lab["expected"]["apikeys"]
    counts = [
        {
            "name": "inactive_admins",
            "collection": "users",
            "filter": {"role": "admin"},
            "date_field": "lastLogin",
            "window": "90d",
            "date_match": "before",
            "include_missing": True,
            "threshold": {"warning": 0},
            "list_fields": ["email", "lastLogin"],
            "list_sort": "lastLogin",
        },
        {
            "name": "unused_keys",
            "collection": "apikeys",
            "filter": {"active": True},
            "date_field": "lastUsed",
            "window": "90d",
            "date_match": "before",
            "include_missing": True,
            "list_fields": ["name", "ownerId", "lastUsed"],
        },
    ]

    result = ansible.module(
        "trm.maintenance.mongo_metrics",
        {"uri": mongo_lab["uri"], "database": "trm", "counts": counts, "now": NOW},
    )
    found = by_name(result)

    admins = found["inactive_admins"]
    assert (admins["value"], admins["status"]) == (3, "warning")
    assert len(admins["documents"]) == 3
    # _id is listed only when the count names it.
    assert {key for doc in admins["documents"] for key in doc} == {
        "email",
        "lastLogin",
    }
    dates = [doc["lastLogin"] for doc in admins["documents"]]
    assert dates == sorted(dates) and dates[-1] < "2024-12-09"
    unused = found["unused_keys"]
    assert unused["value"] == keys["active_unused_90d"] == 3
    assert {key for doc in unused["documents"] for key in doc} <= {
        "name",
        "ownerId",
        "lastUsed",
    }
    assert "keyHash" not in json.dumps(result)


def test_reversed_range_fails_the_task_naming_the_option(ansible, mongo_lab):
    counts = [{**DAILY[0], "range": {"normal": [200, 50], "investigate": [20, 500]}}]

    result = ansible.module(
        "trm.maintenance.mongo_metrics",
        {"uri": mongo_lab["uri"], "database": "trm", "counts": counts},
    )

    assert result["failed"] is True
    assert result["option"] == "counts[0].range.normal"
    assert result["msg"] == (
        "Option 'counts[0].range.normal' has its bounds reversed (low > high); "
        "got [200, 50]"
    )


# mongo_compact


def test_compact_check_mode_plans_the_large_collections(ansible, mongo_lab, trm):
    result = ansible.module(
        "trm.maintenance.mongo_compact",
        {
            "uri": mongo_lab["uri"],
            "databases": ["trm"],
            "min_size": "1MB",
            "now": "2025-03-09T02:30:00Z",
        },
        check_mode=True,
    )
    storage = {name: trm.command("collStats", name)["storageSize"] for name in SIX}
    large = [name for name in SIX if storage[name] >= 2**20]

    assert result["changed"] is True
    assert [p["collection"] for p in result["plan"]] == sorted(
        large, key=storage.get, reverse=True
    )
    assert result["compacted"] == []
    assert result["window"]["open"] is True


def test_compact_outside_the_window_is_refused_then_overridden(ansible, mongo_lab):
    args = {
        "uri": mongo_lab["uri"],
        "databases": ["trm"],
        "collections": ["apikeys", "payments"],
        "min_size": "1KB",
        "now": "2025-03-12T10:00:00Z",
    }

    refused = ansible.module("trm.maintenance.mongo_compact", args)
    done = ansible.module(
        "trm.maintenance.mongo_compact", {**args, "allow_outside_window": True}
    )

    assert (refused["changed"], refused["refused"], refused["status"]) == (
        False,
        True,
        "warning",
    )
    assert refused["compacted"] == []
    assert done["changed"] is True
    assert sorted(c["collection"] for c in done["compacted"]) == ["apikeys", "payments"]
    # nx-27017 compacts nothing and says so.
    assert done["bytes_freed"] == 0


def test_compact_refuses_mongodbs_own_databases(ansible, mongo_lab):
    result = ansible.module(
        "trm.maintenance.mongo_compact",
        {"uri": mongo_lab["uri"], "databases": ["trm", "local"]},
    )

    assert result["failed"] is True
    assert result["option"] == "databases"
    assert result["msg"] == (
        "Option 'databases' must not name admin, local or config; got ['local']"
    )
