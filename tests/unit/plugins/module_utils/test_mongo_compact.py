"""Compaction: check mode plans, the guard refuses, the allow-list holds."""

from __future__ import annotations

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.mongo_compact import (
    run_mongo_compact,
)
from tests.unit.plugins.module_utils.mongo7 import (
    UNAUTHORIZED,
    Collection,
    FakeMongo,
    Server,
    member,
)

MIB = 2**20
INSIDE = "2025-03-09T02:30:00Z"  # a Sunday, inside 02:00-04:00 UTC
OUTSIDE = "2025-03-12T10:00:00Z"  # a Wednesday


def server(**extra) -> Server:
    return Server(
        databases={
            "trm": [
                Collection(
                    "auditlogs",
                    storage_bytes=900 * MIB,
                    free_bytes=300 * MIB,
                    bytes_freed=310 * MIB,
                ),
                Collection("users", storage_bytes=64 * MIB, bytes_freed=2 * MIB),
                Collection("apikeys", storage_bytes=MIB // 4),
            ],
            "analytics": [Collection("events", storage_bytes=4000 * MIB)],
        },
        **extra,
    )


@pytest.fixture(scope="module")
def fake():
    with FakeMongo(Server()) as mongo:
        yield mongo


@pytest.fixture
def compact(fake):
    def run(described: Server, *, check_mode: bool = False, **options) -> dict:
        fake.serve(described)
        params = {
            **fake.params,
            "databases": ["trm"],
            "min_size": "32MB",
            "now": INSIDE,
            **options,
        }
        return run_mongo_compact(params, check_mode=check_mode)

    return run


def compacted_names(fake) -> list:
    return [
        (db, doc["compact"]) for name, db, doc in fake.commands if name == "compact"
    ]


def test_check_mode_plans_and_compacts_nothing(compact, fake):
    result = compact(server(), check_mode=True)

    assert result["changed"] is True
    assert [(p["collection"], p["storage_bytes"]) for p in result["plan"]] == [
        ("auditlogs", 900 * MIB),
        ("users", 64 * MIB),
    ]
    assert result["compacted"] == []
    assert compacted_names(fake) == []
    assert result["checks"][-1]["message"] == (
        "Would compact 2 collections (964.0 MB on disk): trm.auditlogs, trm.users"
    )
    assert set(result["phases"]) == {"preconditions", "plan"}


def test_inside_the_window_compacts_the_plan_and_reports_bytes_freed(compact, fake):
    result = compact(server())

    assert compacted_names(fake) == [("trm", "auditlogs"), ("trm", "users")]
    assert result["changed"] is True
    assert result["bytes_freed"] == 312 * MIB
    assert [c["bytes_freed"] for c in result["compacted"]] == [310 * MIB, 2 * MIB]
    assert result["metrics"]["collections_compacted"] == 2
    assert result["status"] == "ok"
    assert result["checks"][-1]["message"] == (
        "Compacted 2 of 2 collections, freed 312.0 MB"
    )
    assert set(result["phases"]) == {"preconditions", "plan", "compact"}
    assert result["window"]["open"] is True
    assert (result["window"]["window"], result["window"]["allowed_by"]) == (
        "weekly",
        "window",
    )
    assert result["checks"][0]["message"] == (
        "Inside the weekly window (Sun 2025-03-09 02:00-04:00 UTC), 1 h 30 min left"
    )


def test_outside_the_window_is_refused_with_the_next_opening(compact, fake):
    result = compact(server(), now=OUTSIDE)

    assert compacted_names(fake) == []
    assert (result["changed"], result["refused"], result["status"]) == (
        False,
        True,
        "warning",
    )
    assert result["reason"] == (
        "outside the maintenance windows (weekly, monthly, quarterly); the next, "
        "weekly, opens Sun 2025-03-16 02:00 UTC, in 3 d 16 h"
    )
    assert result["window"]["opens_at"] == "2025-03-16T02:00:00+00:00"
    assert result["window"]["allowed_by"] is None
    window = result["checks"][0]
    assert window["name"] == "maintenance_window"
    assert "allow_outside_window" in window["action"]
    assert len(result["plan"]) == 2


def test_the_override_compacts_outside_the_window_and_says_so(compact, fake):
    result = compact(server(), now=OUTSIDE, allow_outside_window=True)

    assert compacted_names(fake) == [("trm", "auditlogs"), ("trm", "users")]
    assert result["checks"][0]["message"].endswith("allowed by allow_outside_window")
    assert result["refused"] is False
    assert result["window"]["allowed_by"] == "allow_outside_window"


def test_a_guard_that_checked_the_window_is_followed_and_named(compact, fake):
    result = compact(server(), now=OUTSIDE, window_checked_by="maintenance_guard")

    assert compacted_names(fake) == [("trm", "auditlogs"), ("trm", "users")]
    assert result["refused"] is False
    assert result["window"]["checked_by"] == "maintenance_guard"
    assert result["window"]["allowed_by"] == "window_checked_by"
    assert result["checks"][0]["message"] == (
        "Allowed by maintenance_guard, which checked the maintenance window "
        "(here: outside the maintenance windows (weekly, monthly, quarterly); the "
        "next, weekly, opens Sun 2025-03-16 02:00 UTC, in 3 d 16 h)"
    )


def test_check_mode_after_the_guard_is_still_only_a_plan(compact, fake):
    result = compact(
        server(), check_mode=True, now=INSIDE, window_checked_by="maintenance_guard"
    )

    assert compacted_names(fake) == []
    assert (result["changed"], result["compacted"]) == (True, [])
    assert result["window"]["allowed_by"] == "window_checked_by"
    assert result["checks"][0]["message"].startswith(
        "Allowed by maintenance_guard, which checked the maintenance window (here: "
        "inside the weekly window"
    )


# The last Saturday of each month, 22:00 Berlin time for three hours. On
# 2025-03-29 Berlin is still on CET (UTC+1): the window is 21:00-00:00 UTC.
LAST_SATURDAY_BERLIN = [
    {
        "name": "month-end",
        "schedule": "monthly",
        "weekday": "saturday",
        "week": "last",
        "start": "22:00",
        "duration": "3h",
        "timezone": "Europe/Berlin",
    }
]


@pytest.mark.parametrize(
    ("now", "compacts"),
    [
        ("2025-03-29T21:30:00Z", True),
        ("2025-03-29T20:30:00Z", False),
        ("2025-03-22T21:30:00Z", False),  # a Saturday, not the last
    ],
)
def test_a_monthly_window_in_its_own_time_zone_decides(compact, fake, now, compacts):
    result = compact(server(), now=now, windows=LAST_SATURDAY_BERLIN)

    assert result["refused"] is (not compacts)
    assert bool(compacted_names(fake)) is compacts
    assert result["window"]["window"] == ("month-end" if compacts else None)


def test_the_next_opening_of_a_monthly_window_is_in_local_time(compact):
    result = compact(server(), now="2025-03-22T21:30:00Z", windows=LAST_SATURDAY_BERLIN)

    assert result["window"]["opens_at"] == "2025-03-29T21:00:00+00:00"
    assert result["reason"] == (
        "outside the maintenance windows (month-end); the next, month-end, opens "
        "Sat 2025-03-29 22:00 CET (2025-03-29T21:00:00Z), in 6 d 23 h"
    )


@pytest.mark.parametrize("timeout", [-1.0, 0, 0.0, 10**9])
def test_a_compact_timeout_out_of_bounds_names_the_option(compact, fake, timeout):
    with pytest.raises(OptionError) as raised:
        compact(server(), compact_timeout=timeout)

    assert (raised.value.option, raised.value.value) == ("compact_timeout", timeout)
    assert "at most 604800" in str(raised.value)
    assert compacted_names(fake) == []


def test_a_replica_set_primary_is_refused_unless_allowed(compact, fake):
    primary = server(
        set_name="rs0",
        members=[member(0, 1, "PRIMARY", 100, is_self=True)],
    )

    refused = compact(primary)
    assert refused["refused"] is True
    assert refused["reason"] == "the server is the primary of replica set rs0"
    assert compacted_names(fake) == []

    allowed = compact(primary, allow_primary=True)
    assert len(allowed["compacted"]) == 2


def test_only_listed_collections_of_listed_databases_are_touched(compact, fake):
    result = compact(server(), collections=["users", "events"], min_size="1MB")

    assert compacted_names(fake) == [("trm", "users")]
    assert all(db == "trm" for _name, db, _doc in fake.commands if db != "admin")
    assert [p["collection"] for p in result["plan"]] == ["users"]


def test_a_refused_compact_is_unknown_for_that_collection(compact):
    described = server()
    described.refuse = {"compact": UNAUTHORIZED}

    result = compact(described)

    names = {check["name"]: check for check in result["checks"]}
    assert names["compact trm.auditlogs"]["status"] == "unknown"
    assert result["compacted"] == []
    assert result["changed"] is False


@pytest.mark.parametrize(
    ("databases", "message"),
    [
        ([], "must list the databases to compact"),
        (["trm", "admin"], "must not name admin, local or config"),
    ],
)
def test_the_allow_list_is_required_and_excludes_system_databases(
    compact, databases, message
):
    with pytest.raises(OptionError) as raised:
        compact(server(), databases=databases)
    assert raised.value.option == "databases"
    assert message in str(raised.value)


def test_a_bad_window_names_the_option(compact):
    with pytest.raises(OptionError) as raised:
        compact(server(), windows=[{"schedule": "weekly", "weekday": "someday"}])
    assert raised.value.option == "windows[0].weekday"
