"""mongo_health against a MongoDB 7 stand-in (mockupdb) for what nx-27017 lacks.

The stand-in answers replSetGetStatus, the oplog, the profiler, $indexStats,
currentOp and WiredTiger statistics in MongoDB 7.0's shapes (see mongo7.py);
these tests prove the checks read those shapes, not that a real server sends
them in every version.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from bson import Timestamp

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.mongo_health import (
    run_mongo_health,
)
from ansible_collections.trm.maintenance.plugins.module_utils.mongo_usage import (
    command_shape,
)
from tests.unit.plugins.module_utils.mongo7 import (
    COMMAND_NOT_FOUND,
    NOW,
    UNAUTHORIZED,
    Collection,
    FakeMongo,
    Index,
    Server,
    member,
    naive,
)

T0 = int(NOW.timestamp())
HOUR = 3600


@pytest.fixture(scope="module")
def fake():
    """One stand-in for the module; each test gives it the server it describes."""
    with FakeMongo(Server()) as server:
        yield server


@pytest.fixture
def run(fake):
    """Run mongo_health against a described server; return the result and fake."""

    def run_against(server: Server, **options) -> tuple[dict, FakeMongo]:
        fake.serve(server)
        return run_mongo_health({**fake.params, **options}), fake

    return run_against


def findings(result: dict) -> dict:
    return {check["name"]: check for check in result["checks"]}


def replica_set(*members: dict, oplog_hours: float = 72) -> Server:
    last = max(m["optime"]["ts"].time for m in members)
    first = last - int(oplog_hours * HOUR)
    return Server(
        set_name="rs0",
        members=list(members),
        oplog=(Timestamp(first, 1), Timestamp(last, 1)),
    )


# Replication


def test_lag_is_the_distance_to_the_primarys_last_write(run):
    server = replica_set(
        member(0, 1, "PRIMARY", T0 - 5, is_self=True),
        member(1, 2, "SECONDARY", T0 - 5),
        member(2, 2, "SECONDARY", T0 - 19),
    )

    result, _fake = run(server, checks=["replication"])
    found = findings(result)

    assert found["replica_set_members"]["status"] == "ok"
    assert found["replica_set_members"]["value"] == 3
    lag = found["replication_lag"]
    assert (lag["status"], lag["value"], lag["unit"]) == ("warning", 14.0, "s")
    assert lag["lags"] == {
        "mongo-1.trm.internal:27017": 0.0,
        "mongo-2.trm.internal:27017": 14.0,
    }
    assert lag["message"] == (
        "Replication lag of mongo-2.trm.internal:27017 is 14 s, "
        "above the warning threshold of 10 s"
    )
    assert result["metrics"]["replication_lag_seconds"] == 14.0
    assert result["metrics"]["members_healthy"] == 3


def test_an_idle_set_shows_no_lag_however_old_its_last_write(run):
    # Nothing was written for six hours: every optime is six hours old.
    last_write = T0 - 6 * HOUR
    server = replica_set(
        member(0, 1, "PRIMARY", last_write, is_self=True),
        member(1, 2, "SECONDARY", last_write),
        member(2, 2, "SECONDARY", last_write),
    )

    result, _fake = run(server, checks=["replication"])
    lag = findings(result)["replication_lag"]

    assert (lag["status"], lag["value"]) == ("ok", 0.0)
    assert result["status"] == "ok"


def test_a_set_without_primary_is_critical_and_lag_unknown(run):
    server = replica_set(
        member(0, 2, "SECONDARY", T0 - 5, is_self=True),
        member(1, 2, "SECONDARY", T0 - 5),
        member(2, 8, "(not reachable/healthy)", None, health=0),
    )

    result, _fake = run(server, checks=["replication"])
    found = findings(result)

    assert found["replica_set_members"]["status"] == "critical"
    assert found["replica_set_members"]["message"] == "Replica set rs0 has no primary"
    assert found["replication_lag"]["status"] == "unknown"
    assert result["status"] == "critical"


@pytest.mark.parametrize(
    ("state", "state_str", "health", "status"),
    [
        (8, "(not reachable/healthy)", 0, "critical"),
        (9, "ROLLBACK", 1, "critical"),
        (3, "RECOVERING", 1, "warning"),
        (5, "STARTUP2", 1, "warning"),
        (7, "ARBITER", 1, "ok"),
    ],
)
def test_member_states_decide_the_members_finding(
    run, state, state_str, health, status
):
    server = replica_set(
        member(0, 1, "PRIMARY", T0 - 5, is_self=True),
        member(1, 2, "SECONDARY", T0 - 5),
        member(2, state, state_str, T0 - 900 if state != 7 else None, health=health),
    )

    result, _fake = run(server, checks=["replication"])
    found = findings(result)

    assert found["replica_set_members"]["status"] == status
    # Only healthy secondaries count for lag; a RECOVERING member is far behind.
    assert found["replication_lag"]["lags"] == {"mongo-1.trm.internal:27017": 0.0}
    if status != "ok":
        assert (
            f"mongo-2.trm.internal:27017 is {state_str}"
            in (found["replica_set_members"]["message"])
        )


@pytest.mark.parametrize(
    ("hours", "backup", "status"),
    [(72, 24, "ok"), (47, 24, "warning"), (20, 24, "critical"), (20, 8, "ok")],
)
def test_oplog_window_is_judged_against_the_backup_interval(run, hours, backup, status):
    server = replica_set(
        member(0, 1, "PRIMARY", T0 - 5, is_self=True),
        member(1, 2, "SECONDARY", T0 - 5),
        oplog_hours=hours,
    )

    result, fake = run(server, checks=["replication"], backup_interval=backup)
    window = findings(result)["oplog_window"]

    assert (window["value"], window["status"]) == (float(hours), status)
    assert (window["critical"], window["warning"]) == (backup, 2 * backup)
    sorts = [doc["sort"] for doc in fake.received("find")]
    assert sorts == [{"$natural": 1}, {"$natural": -1}]


def test_oplog_refused_makes_only_the_window_unknown(run):
    server = replica_set(
        member(0, 1, "PRIMARY", T0 - 5, is_self=True),
        member(1, 2, "SECONDARY", T0 - 5),
    )
    server.refuse = {"find": UNAUTHORIZED}

    result, _fake = run(server, checks=["replication"])
    found = findings(result)

    assert found["replica_set_members"]["status"] == "ok"
    assert found["replication"]["status"] == "unknown"
    assert found["replication"]["message"].startswith("Not authorised to run find")


def test_standalone_server_has_no_replication_to_check(run):
    result, fake = run(Server(), checks=["replication"])

    assert findings(result)["replication"]["status"] == "ok"
    assert "not a replica set member" in findings(result)["replication"]["message"]
    assert "replSetGetStatus" not in fake.names()
    assert result["server"]["role"] == "standalone"


def test_unsupported_repl_status_is_unknown_with_the_reason(run):
    server = replica_set(member(0, 1, "PRIMARY", T0, is_self=True))
    server.refuse = {"replSetGetStatus": COMMAND_NOT_FOUND}

    result, _fake = run(server, checks=["replication"])

    check = findings(result)["replication"]
    assert check["status"] == "unknown"
    assert check["message"].startswith(
        "The server does not support replSetGetStatus: no such command"
    )


# Profiler


def profile_entry(millis: int, *, ago: timedelta, email: str = "ada@example.com"):
    return {
        "op": "query",
        "ns": "trm.users",
        "command": {
            "find": "users",
            "filter": {"email": email, "status": {"$in": ["active", "pending"]}},
            "sort": {"createdAt": -1},
            "lsid": {"id": "session"},
            "$db": "trm",
        },
        "keysExamined": 0,
        "docsExamined": 8198,
        "nreturned": 1,
        "millis": millis,
        "planSummary": "COLLSCAN",
        "ts": naive(NOW - ago),
        "client": "10.1.2.3",
        "appName": "trm-api",
    }


def trm_with(*collections: Collection) -> Server:
    return Server(databases={"trm": list(collections)})


def test_profiling_off_is_unknown_and_says_how_to_turn_it_on(run):
    server = trm_with(Collection("users"))
    server.profile = {"trm": (0, [])}

    result, _fake = run(server, checks=["slow_queries"])
    check = findings(result)["slow_queries"]

    assert check["status"] == "unknown"
    assert check["message"] == (
        "Profiling is off on trm, so no slow operations are recorded"
    )
    assert "db.setProfilingLevel(1" in check["action"]
    assert check["profiling"] == {"trm": {"level": 0, "slow_ms": 100}}


def test_slowest_profiled_operations_are_listed_without_values(run):
    server = trm_with(Collection("users"))
    entries = [
        profile_entry(150, ago=timedelta(hours=1)),
        profile_entry(2400, ago=timedelta(days=2), email="secret@example.com"),
        profile_entry(900, ago=timedelta(hours=5)),
        profile_entry(9000, ago=timedelta(days=9)),  # before the review period
    ]
    server.profile = {"trm": (1, entries)}

    result, fake = run(server, checks=["slow_queries"], top_slow_queries=2)
    check = findings(result)["slow_queries"]

    assert (check["status"], check["value"], check["unit"]) == ("warning", 2400, "ms")
    assert [entry["millis"] for entry in check["slowest"]] == [2400, 900]
    assert check["slowest"][0]["command"] == {
        "find": "users",
        "filter": {"email": "?", "status": {"$in": ["?"]}},
        "sort": {"createdAt": -1},
    }
    assert "secret@example.com" not in str(result)
    (query,) = fake.received("find")
    assert query["filter"] == {"ts": {"$gte": naive(NOW - timedelta(days=7))}}
    assert (query["sort"], query["limit"]) == ({"millis": -1}, 2)


# Index usage


def test_unused_indexes_respect_the_counters_restart(run):
    users = Collection(
        "users",
        indexes=[
            Index("_id_", {"_id": 1}, ops=0),
            Index("email_1", {"email": 1}, ops=5400),
            Index("legacy_1", {"legacy": 1}, ops=0, since=NOW - timedelta(days=30)),
            Index("fresh_1", {"fresh": 1}, ops=0, since=NOW - timedelta(days=2)),
            Index("new_1", {"new": 1}, ops=0, building=True),
        ],
    )
    jobs = Collection("jobs", indexes=[Index("status_1", {"status": 1}, ops=0)])

    result, fake = run(trm_with(users, jobs), checks=["index_usage"])
    check = findings(result)["index_usage"]

    assert (check["status"], check["value"]) == ("warning", 2)
    assert [(i["collection"], i["index"]) for i in check["unused"]] == [
        ("jobs", "status_1"),
        ("users", "legacy_1"),
    ]
    assert check["unused"][1]["key"] == {"legacy": 1}
    assert [i["index"] for i in check["not_judged"]] == ["fresh_1"]
    assert check["message"].endswith(
        "; 1 more unused since their counters restarted less than 7 days ago, "
        "not judged yet"
    )
    # Both collections in one aggregate: jobs, then users through $unionWith.
    (command,) = [
        doc for doc in fake.received("aggregate") if "$indexStats" in doc["pipeline"][0]
    ]
    assert command["aggregate"] == "jobs"
    assert command["pipeline"][0] == {"$indexStats": {}}
    assert command["pipeline"][3]["$unionWith"]["coll"] == "users"


def test_index_stats_not_authorised_is_unknown(run):
    server = trm_with(Collection("users", indexes=[Index("_id_", {"_id": 1})]))
    server.refuse = {"aggregate": UNAUTHORIZED}

    result, _fake = run(server, checks=["index_usage"])
    check = findings(result)["index_usage"]

    assert check["status"] == "unknown"
    assert check["message"].startswith("Not authorised to run $indexStats")
    assert "clusterMonitor" in check["action"]


# Current operations


def operation(desc: str, seconds: float, **extra) -> dict:
    return {
        "type": "op",
        "desc": desc,
        "active": True,
        "opid": 4711,
        "op": "query",
        "ns": "trm.jobs",
        "secs_running": int(seconds),
        "microsecs_running": int(seconds * 1e6),
        "command": {"find": "jobs", "filter": {"status": "open"}},
        "planSummary": "COLLSCAN",
        "appName": "trm-api",
        **extra,
    }


def test_long_client_operations_are_listed_and_system_ones_left_out(run):
    server = Server(
        operations=[
            operation("conn12", 3.25),
            operation("conn13", 1.5, opid=4712),
            operation("ReplBatcher", 900, op="none"),
            operation("conn5", 600, ns="local.oplog.rs", op="getmore"),
            operation("conn6", 120, command={"hello": 1, "maxAwaitTimeMS": 10000}),
            operation(
                "conn7",
                300,
                op="getmore",
                cursor={
                    "originatingCommand": {
                        "aggregate": "jobs",
                        "pipeline": [{"$changeStream": {}}],
                    }
                },
            ),
        ]
    )

    result, fake = run(server, checks=["current_ops"])
    check = findings(result)["current_ops"]

    assert (check["status"], check["value"], check["unit"]) == ("warning", 3.25, "s")
    assert [op["opid"] for op in check["operations"]] == [4711, 4712]
    assert check["operations"][0]["command"] == {
        "find": "jobs",
        "filter": {"status": "?"},
    }
    (command,) = fake.received("currentOp")
    assert (command["active"], command["secs_running"]) == (True, {"$gte": 1})
    assert result["metrics"]["long_operations"] == 2


# WiredTiger and serverStatus


def test_cache_fill_dirty_share_and_queue_are_judged(run):
    gib = 2**30
    server = Server(cache=(10 * gib, int(9.6 * gib), int(0.6 * gib)), queue=(8, 4))

    result, _fake = run(server, checks=["wiredtiger", "connections"])
    found = findings(result)

    assert (found["cache_used"]["value"], found["cache_used"]["status"]) == (
        96.0,
        "critical",
    )
    assert (found["cache_dirty"]["value"], found["cache_dirty"]["status"]) == (
        6.0,
        "warning",
    )
    assert (
        found["queued_operations"]["value"],
        found["queued_operations"]["status"],
    ) == (
        12,
        "warning",
    )
    assert found["connections"]["value"] == 12.5
    assert found["connections"]["maximum"] == 1000


def test_server_without_wiredtiger_reports_unknown_with_the_engine(run):
    result, _fake = run(Server(cache=None, queue=None), checks=["wiredtiger"])

    check = findings(result)["wiredtiger"]
    assert check["status"] == "unknown"
    assert check["message"] == (
        "serverStatus reports no WiredTiger cache statistics "
        "(storage engine: wiredTiger)"
    )


def test_refused_server_status_is_asked_once_and_reported_by_each_check(run):
    server = Server()
    server.refuse = {"serverStatus": UNAUTHORIZED}

    result, fake = run(server, checks=["connections", "wiredtiger"])
    found = findings(result)

    assert fake.names().count("serverStatus") == 1
    for name in ("connections", "wiredtiger"):
        assert found[name]["status"] == "unknown"
        assert found[name]["message"].startswith("Not authorised to run serverStatus")
        assert "clusterMonitor" in found[name]["action"]


def test_rejected_credentials_are_one_unknown_connection_finding(run):
    result, _fake = run(
        Server(), checks=["connections"], login_user="monitor", login_password="wrong"
    )

    assert [check["name"] for check in result["checks"]] == ["connection"]
    check = result["checks"][0]
    assert check["status"] == "unknown"
    assert "rejected the credentials" in check["message"]
    assert "wrong" not in str(result)


# Options


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"checks": ["connections", "disk"]}, "checks"),
        ({"connections_used": {"warning": 90, "critical": 80}}, "connections_used"),
        ({"capacity_target": 120}, "capacity_target"),
        ({"top_collections": 0}, "top_collections"),
        ({"capacity_ceiling": "lots"}, "capacity_ceiling"),
    ],
)
def test_bad_options_name_the_option(options, option):
    with pytest.raises(OptionError) as raised:
        run_mongo_health({"uri": "mongodb://127.0.0.1:1/", **options})
    assert raised.value.option == option


@pytest.mark.parametrize(
    ("command", "shape"),
    [
        (
            {
                "aggregate": "jobs",
                "pipeline": [
                    {"$match": {"companyId": "abc", "n": {"$gt": 5}}},
                    {
                        "$lookup": {
                            "from": "companies",
                            "localField": "companyId",
                            "foreignField": "_id",
                            "as": "company",
                        }
                    },
                    {"$sort": {"createdAt": -1}},
                ],
                "cursor": {},
                "$db": "trm",
            },
            {
                "aggregate": "jobs",
                "pipeline": [
                    {"$match": {"companyId": "?", "n": {"$gt": "?"}}},
                    {
                        "$lookup": {
                            "from": "companies",
                            "localField": "companyId",
                            "foreignField": "_id",
                            "as": "company",
                        }
                    },
                    {"$sort": {"createdAt": -1}},
                ],
                "cursor": {},
            },
        ),
        (
            {
                "update": "users",
                "updates": [{"q": {"_id": 7}, "u": {"$set": {"pw": "x"}}}],
                "txnNumber": 3,
            },
            {
                "update": "users",
                "updates": [{"q": {"_id": "?"}, "u": {"$set": {"pw": "?"}}}],
            },
        ),
        (
            {"find": "users", "filter": {"tags": []}},
            {"find": "users", "filter": {"tags": []}},
        ),
        ("not a command", {}),
    ],
)
def test_command_shape_keeps_names_and_drops_values(command, shape):
    assert command_shape(command) == shape
