"""Capacity, growth against earlier reports, and the largest collections."""

from __future__ import annotations

import json

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.mongo_health import (
    read_history,
    run_mongo_health,
)
from ansible_collections.trm.maintenance.plugins.module_utils.mongo_storage import (
    human,
    parse_size,
    union_pipeline,
)
from tests.unit.plugins.module_utils.mongo7 import Collection, FakeMongo, Server

MIB = 2**20


@pytest.fixture(scope="module")
def fake():
    with FakeMongo(Server()) as server:
        yield server


def trm_server() -> Server:
    """trm uses 4 MiB: 3 MiB of storage and 1 MiB of indexes."""
    return Server(
        databases={
            "trm": [
                Collection("users", 8000, 2 * MIB, 2 * MIB, MIB // 2, 64 * 1024),
                Collection("jobs", 3000, MIB, MIB, MIB // 2),
                Collection("empty"),
            ],
            "analytics": [Collection("events", 10, 5 * MIB, 6 * MIB, MIB)],
        }
    )


def report(day: str, used: float, **more: float) -> dict:
    metrics = {"capacity_planning.capacity_used_bytes": used}
    metrics.update({f"capacity_planning.{k}": v for k, v in more.items()})
    return {"date": day, "metrics": metrics}


def capacity(fake, history=None, **options) -> dict:
    fake.serve(trm_server())
    params = {
        **fake.params,
        "checks": ["capacity"],
        "databases": ["trm"],
        "capacity_ceiling": "10MB",
        **options,
    }
    result = run_mongo_health(params, history=history)
    return {check["name"]: check for check in result["checks"]} | {"": result}


def test_capacity_is_storage_and_indexes_against_the_ceiling(fake):
    found = capacity(fake)

    used = found["capacity_used"]
    assert (used["value"], used["status"], used["unit"]) == (40.0, "ok", "%")
    assert used["message"].startswith("Storage and indexes (4.0 MB of 10.0 MB) is 40%")
    assert used["ceiling_source"] == "capacity_ceiling"
    assert [row["database"] for row in used["databases"]] == ["trm"]
    metrics = found[""]["metrics"]
    assert metrics["capacity_used_bytes"] == 4 * MIB
    assert metrics["trm_storage_bytes"] == 3 * MIB
    assert metrics["trm_index_bytes"] == MIB
    assert "capacity_growth" not in found


def test_ceiling_defaults_to_the_filesystem_size(fake):
    found = capacity(fake, capacity_ceiling=None)

    assert found["capacity_used"]["ceiling_source"] == "filesystem"
    assert found["capacity_used"]["ceiling_bytes"] == 500 * 2**30


def test_growth_and_projection_against_the_oldest_earlier_report(fake):
    history = [
        report("2025-02-23", 3 * MIB),
        report("2025-02-07", 2 * MIB, storage_bytes_total=1.5 * MIB),
    ]

    found = capacity(fake, history)

    growth = found["capacity_growth"]
    # 2 MiB to 4 MiB in 30 days: 100% a month.
    assert (growth["value"], growth["status"]) == (100.0, "critical")
    assert growth["since"] == "2025-02-07"
    assert growth["growth_pct_per_30_days"] == {"storage_bytes_total": 100.0}
    projection = found["capacity_projection"]
    # 7 MiB (70% of 10 MiB) minus 4 MiB, at 2/30 MiB a day: 45 days.
    assert (projection["value"], projection["status"]) == (45.0, "warning")
    assert projection["reaches_on"] == "2025-04-23"
    assert found[""]["metrics"]["capacity_days_to_target"] == 45.0


def test_storage_over_the_target_projects_zero_days(fake):
    found = capacity(fake, [report("2025-02-07", 2 * MIB)], capacity_ceiling="5MB")

    assert found["capacity_used"]["status"] == "warning"  # 80% of 5 MiB
    assert found["capacity_projection"]["value"] == 0.0
    assert found["capacity_projection"]["status"] == "critical"


def test_shrinking_storage_is_not_projected(fake):
    found = capacity(fake, [report("2025-02-07", 6 * MIB)])

    assert found["capacity_growth"]["value"] == -33.33
    assert found["capacity_projection"]["status"] == "ok"
    assert "not growing" in found["capacity_projection"]["message"]


def test_history_without_the_metric_waits_for_the_next_report(fake):
    found = capacity(fake, [{"date": "2025-02-07", "metrics": {"other.x": 1}}])

    assert found["capacity_growth"]["status"] == "ok"
    assert found["capacity_growth"]["message"].startswith(
        "No earlier report holds capacity_used_bytes yet"
    )
    assert "capacity_projection" not in found


def test_listed_database_that_does_not_exist_is_named(fake):
    found = capacity(fake, databases=["trm", "billing"])

    assert found["capacity_used"]["missing_databases"] == ["billing"]


def test_largest_collections_across_databases(fake):
    fake.serve(trm_server())
    result = run_mongo_health(
        {**fake.params, "checks": ["collections"], "top_collections": 2}
    )
    (check,) = result["checks"]

    assert [(r["database"], r["collection"]) for r in check["largest"]] == [
        ("analytics", "events"),
        ("trm", "users"),
    ]
    assert check["largest"][1] == {
        "database": "trm",
        "collection": "users",
        "documents": 8000,
        "data_bytes": 2 * MIB,
        "storage_bytes": 2 * MIB,
        "index_bytes": MIB // 2,
        "free_bytes": 64 * 1024,
    }
    assert check["message"] == (
        "Largest collection is analytics.events (5.0 MB of data, 6.0 MB on disk); "
        "4 collections in 2 databases"
    )
    assert result["metrics"]["collections_total"] == 4
    assert result["metrics"]["trm_users_data_bytes"] == 2 * MIB


def test_read_history_reads_the_report_roles_json(tmp_path):
    for day, used in (("2025-02-07", 2), ("2025-01-08", 1)):
        folder = tmp_path / f"{day}-monthly"
        folder.mkdir()
        document = {"format": 1, "date": day, "metrics": report(day, used)["metrics"]}
        (folder / "maintenance-log.json").write_text(json.dumps(document))
    (tmp_path / "2025-02-08-daily").mkdir()
    params = {"history_dir": str(tmp_path), "history_cadence": "monthly"}

    history = read_history({**params, "history_limit": 12}, warn=print)

    assert [entry["date"] for entry in history] == ["2025-02-07", "2025-01-08"]
    assert history[0]["metrics"]["capacity_planning.capacity_used_bytes"] == 2
    assert read_history({"history_dir": None}, warn=print) == []
    with pytest.raises(OptionError):
        read_history({**params, "history_limit": 0}, warn=print)


@pytest.mark.parametrize(
    ("value", "size"),
    [("500GB", 500 * 2**30), ("1.5TB", int(1.5 * 2**40)), ("10", 10), (None, None)],
)
def test_parse_size(value, size):
    assert parse_size(value, "capacity_ceiling") == size


@pytest.mark.parametrize("value", ["lots", "-1GB", "0"])
def test_parse_size_rejects_nonsense(value):
    with pytest.raises(OptionError) as raised:
        parse_size(value, "min_size")
    assert raised.value.option == "min_size"


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KB"), (5 * 2**40, "5.0 TB")],
)
def test_human_sizes(size, text):
    assert human(size) == text


def test_union_pipeline_runs_the_first_collection_and_joins_the_rest():
    pipeline = union_pipeline(["a", "b", "c"], lambda name: [{"$stage": name}])

    assert pipeline == [
        {"$stage": "a"},
        {"$unionWith": {"coll": "b", "pipeline": [{"$stage": "b"}]}},
        {"$unionWith": {"coll": "c", "pipeline": [{"$stage": "c"}]}},
    ]
