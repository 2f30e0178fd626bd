"""The full mongo_health costs a bounded number of round trips.

Counted with pymongo's command monitoring (every command the driver sends,
getMore included; connection handshakes and heartbeats are not commands).
The server is the MongoDB 7 stand-in holding one database of 1,000
collections, a replica set primary with the profiler on: asking each
collection for its statistics and index counters would take 2,000 commands.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from bson import Timestamp
from pymongo import monitoring

from ansible_collections.trm.maintenance.plugins.module_utils.mongo_health import (
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

COLLECTIONS = 1000
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


def thousand_collections() -> Server:
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
        for number in range(COLLECTIONS)
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
    )


@pytest.fixture(scope="module")
def counted():
    """Run the full check once and return its result and the commands it sent."""
    with FakeMongo(thousand_collections()) as fake:
        LOG.names.clear()
        LOG.recording = True
        try:
            result = run_mongo_health(fake.params)
        finally:
            LOG.recording = False
    return result, Counter(LOG.names)


def test_full_check_of_a_thousand_collections_is_a_few_dozen_commands(counted):
    result, commands = counted
    batches = COLLECTIONS // BATCH_SIZE

    assert BATCH_SIZE == 100
    assert commands == {
        "hello": 1,
        "serverStatus": 1,
        "replSetGetStatus": 1,
        "find": 3,  # the oplog's two ends, system.profile
        "listDatabases": 1,
        "dbStats": 1,
        "listCollections": 1,
        "aggregate": 2 * batches,  # $collStats and $indexStats, 100 a time
        "profile": 1,
        "currentOp": 1,
        "endSessions": 1,
    }
    assert sum(commands.values()) == 32
    assert result["metrics"]["collections_total"] == COLLECTIONS


def test_the_bounded_check_still_sees_every_collection(counted):
    result, _commands = counted
    found = {check["name"]: check for check in result["checks"]}

    largest = [row["collection"] for row in found["collections"]["largest"]]
    assert largest == [f"c{number:04d}" for number in range(999, 989, -1)]
    # Every hundredth collection has an unused index: c0000, c0100, ... c0900.
    unused = [entry["collection"] for entry in found["index_usage"]["unused"]]
    assert unused == [f"c{number:04d}" for number in range(0, 1000, 100)]
    assert found["index_usage"]["indexes_total"] == 2 * COLLECTIONS
    assert found["slow_queries"]["value"] == 1250
    assert found["oplog_window"]["value"] == pytest.approx(96, abs=0.01)
    assert result["metrics"]["replication_lag_seconds"] == 1.0
    assert timedelta(seconds=result["metrics"]["uptime_seconds"]).days == 14
