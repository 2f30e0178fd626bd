"""Count definitions, their queries, and counts the server refuses."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.mongo_metrics import (
    count_query,
    parse_counts,
    parse_window,
    run_mongo_metrics,
    secret_field,
)
from lab.core import free_port
from tests.unit.plugins.module_utils.mongo7 import (
    NOW,
    UNAUTHORIZED,
    FakeMongo,
    Server,
    naive,
)

REGISTRATIONS = {
    "name": "registrations",
    "collection": "users",
    "date_field": "createdAt",
    "window": "24h",
    "range": {"normal": [50, 200], "investigate": [20, 500]},
}


def spec(**item):
    (parsed,) = parse_counts([{"name": "n", "collection": "c", **item}], database="trm")
    return parsed


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("24h", timedelta(hours=24)),
        ("30d", timedelta(days=30)),
        ("2w", timedelta(weeks=2)),
        ("90m", timedelta(minutes=90)),
        (" 1.5d ", timedelta(hours=36)),
    ],
)
def test_windows(text, delta):
    assert parse_window(text, "w") == delta


@pytest.mark.parametrize("text", ["24", "1y", "-2d", "0d", "", None])
def test_bad_windows(text):
    with pytest.raises(OptionError):
        parse_window(text, "counts[0].window")


def test_window_within_is_joined_to_the_filter_with_and():
    parsed = spec(
        filter={"$or": [{"role": "admin"}, {"role": "owner"}]},
        date_field="createdAt",
        window="24h",
    )

    assert count_query(parsed, NOW) == {
        "$and": [
            {"$or": [{"role": "admin"}, {"role": "owner"}]},
            {"createdAt": {"$gte": NOW - timedelta(hours=24), "$lte": NOW}},
        ]
    }


def test_window_before_with_missing_dates():
    parsed = spec(
        date_field="lastLogin", window="60d", date_match="before", include_missing=True
    )
    cutoff = NOW - timedelta(days=60)

    assert count_query(parsed, NOW) == {
        "$or": [
            {"lastLogin": {"$lt": cutoff}},
            {"lastLogin": {"$type": "null"}},
            {"lastLogin": {"$exists": False}},
        ]
    }
    without = spec(date_field="lastLogin", window="60d", date_match="before")
    assert count_query(without, NOW) == {"lastLogin": {"$lt": cutoff}}


def test_filter_extended_json_dates_become_datetimes():
    parsed = spec(filter={"createdAt": {"$gte": {"$date": "2025-01-01T00:00:00Z"}}})

    (value,) = parsed.query["createdAt"].values()
    # Extended JSON dates are UTC; the driver keeps them naive.
    assert value == datetime(2025, 1, 1)
    assert count_query(spec(), NOW) == {}


@pytest.mark.parametrize(
    ("counts", "option", "problem"),
    [
        (
            [
                {
                    **REGISTRATIONS,
                    "range": {"normal": [200, 50], "investigate": [20, 500]},
                }
            ],
            "counts[0].range.normal",
            "has its bounds reversed",
        ),
        (
            [
                {
                    **REGISTRATIONS,
                    "range": {"normal": [10, 200], "investigate": [20, 500]},
                }
            ],
            "counts[0].range",
            "must contain the normal range",
        ),
        (
            [{**REGISTRATIONS, "threshold": {"warning": 5}}],
            "counts[0]",
            "may set range or threshold, not both",
        ),
        ([REGISTRATIONS, REGISTRATIONS], "counts", "unique name"),
        ([{**REGISTRATIONS, "window": "yesterday"}], "counts[0].window", "duration"),
        ([{**REGISTRATIONS, "name": "New Users"}], "counts[0].name", "snake_case"),
        ([{**REGISTRATIONS, "colection": "users"}], "counts[0]", "unknown keys"),
        (
            [{"name": "x", "collection": "y", "window": "1d"}],
            "counts[0].window",
            "date_field",
        ),
        (
            [{**REGISTRATIONS, "list_fields": ["email", "passwordHash"]}],
            "counts[0].list_fields",
            "look secret",
        ),
        ([{**REGISTRATIONS, "list_limit": 0}], "counts[0].list_limit", "from 1 to 500"),
        ([], "counts", "non-empty list"),
    ],
)
def test_bad_definitions_name_the_option(counts, option, problem):
    with pytest.raises(OptionError) as raised:
        parse_counts(counts, database="trm")
    assert raised.value.option == option
    assert problem in str(raised.value)


def test_a_count_needs_a_database():
    with pytest.raises(OptionError) as raised:
        parse_counts([{"name": "n", "collection": "c"}], database=None)
    assert raised.value.option == "counts[0].database"


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("password", True),
        ("passwordHash", True),
        ("keyHash", True),
        ("api_key", True),
        ("apiKey", True),
        ("resetToken", True),
        ("totpSecret", True),
        ("email", False),
        ("lastLogin", False),
        ("ownerId", False),
        ("name", False),
        ("monkey", False),
    ],
)
def test_secret_field_names(name, secret):
    assert secret_field(name) is secret


# Against the stand-in


@pytest.fixture(scope="module")
def fake():
    with FakeMongo(Server()) as mongo:
        yield mongo


def test_counts_are_judged_and_windows_end_at_now(fake):
    fake.serve(Server(counts={"users": 92, "referrals": 22}))
    counts = [
        REGISTRATIONS,
        {
            **REGISTRATIONS,
            "name": "referrals",
            "collection": "referrals",
            "range": {"normal": [30, 150], "investigate": [10, 400]},
        },
    ]

    result = run_mongo_metrics(
        {
            **fake.params,
            "database": "trm",
            "counts": counts,
            "now": "2025-03-09T14:30:00",
        }
    )

    assert result["metrics"] == {"registrations": 92, "referrals": 22}
    assert [c["status"] for c in result["checks"]] == ["ok", "warning"]
    assert result["status"] == "warning"
    (first, _second) = fake.received("count")
    assert first["query"] == {
        "createdAt": {"$gte": naive(NOW - timedelta(days=1)), "$lte": naive(NOW)}
    }
    assert result["server"]["until"] == "2025-03-09T14:30:00.000Z"


def test_without_now_the_windows_end_at_the_servers_clock(fake):
    fake.serve(Server(counts={"users": 92}))

    result = run_mongo_metrics(
        {**fake.params, "database": "trm", "counts": [REGISTRATIONS]}
    )

    assert result["server"]["until"] == "2025-03-09T14:30:00.000Z"
    assert fake.received("count")[0]["query"]["createdAt"]["$lte"] == naive(NOW)


def test_a_refused_count_is_unknown_and_the_others_still_run(fake):
    described = Server(counts={"users": 92})
    described.refuse = {"count": UNAUTHORIZED}
    fake.serve(described)

    result = run_mongo_metrics(
        {
            **fake.params,
            "database": "trm",
            "counts": [REGISTRATIONS, {**REGISTRATIONS, "name": "again"}],
        }
    )

    assert [c["status"] for c in result["checks"]] == ["unknown", "unknown"]
    assert result["checks"][0]["message"].startswith("Not authorised to run count")
    assert result["checks"][0]["collection"] == "users"


def test_rejected_credentials_are_one_unknown_connection_finding(fake):
    fake.serve(Server())

    result = run_mongo_metrics(
        {
            **fake.params,
            "database": "trm",
            "counts": [REGISTRATIONS],
            "login_user": "monitor",
            "login_password": "wrong-password",
        }
    )

    assert [c["name"] for c in result["checks"]] == ["connection"]
    assert result["status"] == "unknown"
    assert "rejected the credentials" in result["checks"][0]["message"]
    assert "wrong-password" not in str(result)


def test_an_unreachable_server_is_critical_within_the_timeout(fake):
    params = {
        **fake.params,
        "uri": f"mongodb://127.0.0.1:{free_port()}/",
        "server_selection_timeout": 1.0,
        "database": "trm",
        "counts": [REGISTRATIONS],
    }
    started = time.monotonic()

    result = run_mongo_metrics(params)

    assert time.monotonic() - started < 3.0
    assert result["status"] == "critical"
    assert result["checks"][0]["name"] == "connection"
    assert result["checks"][0]["message"].startswith("Cannot reach MongoDB at")


def test_now_must_be_iso_8601(fake):
    fake.serve(Server())
    with pytest.raises(OptionError) as raised:
        run_mongo_metrics(
            {
                **fake.params,
                "database": "trm",
                "counts": [REGISTRATIONS],
                "now": "today",
            }
        )
    assert raised.value.option == "now"
