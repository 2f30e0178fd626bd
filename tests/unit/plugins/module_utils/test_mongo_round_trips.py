"""The full mongo_health costs a number of round trips bounded by a constant.

Counted with pymongo's command monitoring (every command the driver sends,
getMore included; connection handshakes and heartbeats are not commands).
The server is the MongoDB 7 stand-in holding one database of 100 or 1,000
collections, a replica set primary with the profiler on. The sizes of every
collection come from one $_internalAllCollectionStats aggregate; the index
counters are read for the largest ``sample_collections`` (100) only, so the
count is the same for 100 collections as for 1,000. A server without that
stage is read 100 collections per aggregate, and its count grows.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from bson import Timestamp
from pymongo import monitoring

from ansible_collections.trm.maintenance.plugins.module_utils.mongo_health import (
    DEFAULT_SAMPLE,
    run_mongo_health,
)
from ansible_collections.trm.maintenance.plugins.module_utils.mongo_storage import (
    BATCH_SIZE,
)
from tests.unit.plugins.module_utils.mongo7 import (
    NOW,
    Collection,
    FakeMongo,
    Index,
    Server,
    member,
    naive,
)

T0 = int(NOW.timestamp())


class CommandLog(monitoring.CommandListener):
    """Records the name of every command started while it is recording."""

    def __init__(self) -> None:
        self.recording = False
        self.names: list = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.recording:
            self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Nothing to record."""

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Nothing to record."""


# pymongo has no way to unregister a listener; one for the whole session.
LOG = CommandLog()
monitoring.register(LOG)


def many_collections(count: int, *, all_stats: bool = True) -> Server:
    collections = [
        Collection(
            f"c{number:04d}",
            documents=number,
            data_bytes=number * 1000,
            storage_bytes=number * 1200,
            index_bytes=8192,
            indexes=[
                Index("_id_", {"_id": 1}, ops=number),
                Index("key_1", {"key": 1}, ops=0 if number % 100 == 0 else 5),
            ],
        )
        for number in range(count)
    ]
    entries = [
        {"op": "query", "ns": "trm.c0001", "millis": 250, "ts": naive(NOW)},
        {"op": "query", "ns": "trm.c0002", "millis": 1250, "ts": naive(NOW)},
    ]
    return Server(
        set_name="rs0",
        members=[
            member(0, 1, "PRIMARY", T0 - 2, is_self=True),
            member(1, 2, "SECONDARY", T0 - 2),
            member(2, 2, "SECONDARY", T0 - 3),
        ],
        oplog=(Timestamp(T0 - 96 * 3600, 1), Timestamp(T0 - 2, 1)),
        databases={"trm": collections},
        profile={"trm": (1, entries)},
        all_collection_stats=all_stats,
    )


def run_counted(server: Server) -> tuple:
    """Run the full check once; return its result and the commands it sent."""
    with FakeMongo(server) as fake:
        LOG.names.clear()
        LOG.recording = True
        try:
            result = run_mongo_health(fake.params)
        finally:
            LOG.recording = False
    return result, Counter(LOG.names)


@pytest.fixture(scope="module", params=[100, 1000])
def counted(request):
    """The full check of a database of ``request.param`` collections."""
    return (request.param, *run_counted(many_collections(request.param)))


# The commands of the full check, whatever the number of collections.
BOUNDED = {
    "hello": 1,
    "serverStatus": 1,
    "replSetGetStatus": 1,
    "find": 3,  # the oplog's two ends, system.profile
    "listDatabases": 1,
    "dbStats": 1,
    "aggregate": 2,  # every size at once, $indexStats of the 100 largest
    "profile": 1,
    "currentOp": 1,
    "endSessions": 1,
}


def test_the_full_check_costs_the_same_commands_for_100_and_1000(counted):
    collections, result, commands = counted

    assert DEFAULT_SAMPLE == BATCH_SIZE == 100
    assert commands == BOUNDED
    assert sum(commands.values()) == 13
    assert result["metrics"]["collections_total"] == collections


def test_the_sample_holds_the_largest_collections_and_says_so(counted):
    collections, result, _commands = counted
    found = {check["name"]: check for check in result["checks"]}

    largest = [row["collection"] for row in found["collections"]["largest"]]
    top = collections - 1
    assert largest == [f"c{number:04d}" for number in range(top, top - 10, -1)]
    usage = found["index_usage"]
    # Every hundredth collection has an unused index; of the 100 largest, only
    # the smallest of them (c0900 of 1,000, c0000 of 100) is one.
    unused = [entry["collection"] for entry in usage["unused"]]
    assert unused == [f"c{collections - 100:04d}"]
    assert usage["indexes_total"] == 2 * 100
    assert (usage["collections_sampled"], usage["collections_total"]) == (
        100,
        collections,
    )
    sampled_note = f"; index counters read for the 100 largest of {collections}"
    assert usage["message"].endswith(f"{sampled_note} collections") is (
        collections > 100
    )
    assert found["slow_queries"]["value"] == 1250
    assert found["oplog_window"]["value"] == pytest.approx(96, abs=0.01)
    assert result["metrics"]["replication_lag_seconds"] == 1.0
    assert timedelta(seconds=result["metrics"]["uptime_seconds"]).days == 14


def test_without_the_all_collections_stage_sizes_are_read_100_at_a_time():
    result, commands = run_counted(many_collections(1000, all_stats=False))

    # The refused stage, ten $collStats batches, one $indexStats batch.
    assert commands["aggregate"] == 1 + 1000 // BATCH_SIZE + 1
    assert commands["listCollections"] == 1
    assert result["metrics"]["collections_total"] == 1000
    usage = {check["name"]: check for check in result["checks"]}["index_usage"]
    assert usage["collections_sampled"] == 100


def test_a_smaller_sample_reads_the_counters_of_that_many_collections():
    with FakeMongo(many_collections(1000)) as fake:
        result = run_mongo_health(
            {**fake.params, "checks": ["index_usage"], "sample_collections": 10}
        )
        (index_stats,) = [
            doc
            for doc in fake.received("aggregate")
            if "$indexStats" in doc["pipeline"][0]
        ]

    usage = result["checks"][0]
    assert (usage["collections_sampled"], usage["indexes_total"]) == (10, 20)
    assert index_stats["aggregate"] == "c0990"
    assert len(index_stats["pipeline"]) == 3 + 9  # c0990 and nine $unionWith
