"""The lab's MongoDB and S3 serve the TRM data and backups the checks rely on.

Gaps of nx-27017 met here, against a real MongoDB: aggregate ``$match`` on dates
is ignored or matches nothing (so counts go through ``count_documents``, whose
pipeline shape it answers correctly), ``dbStats`` names the SQLite file in
``db``, ``collStats`` reports no index sizes and listIndexes renames indexes.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
from datetime import datetime, timedelta

import bson
import pytest
from bson import json_util
from pymongo import MongoClient

from lab import trm_data
from lab.components import mongodb, s3
from lab.core import LabContext, stop_pid

NOW = "2025-03-09T14:30:00.000+00:00"
NOW_DT = datetime.fromisoformat(NOW)
BACKUP_DAYS = [f"202503{day:02d}" for day in range(9, 1, -1)]
FILE_KINDS = (".bson.gz", ".metadata.json.gz")


def _start(component, folder) -> dict:
    """Start ``component`` in ``folder`` with the shared "now"."""
    return component.start(LabContext(folder), {"servers": {}, "now": NOW})


def _stop(record: dict) -> None:
    """Stop every process of ``record``, the last started first."""
    for pid in reversed(record["pids"]):
        stop_pid(pid)


@pytest.fixture(scope="module")
def mongo_record(tmp_path_factory):
    """Start the MongoDB component once for the module."""
    record = _start(mongodb, tmp_path_factory.mktemp("mongodb"))
    yield record
    _stop(record)


@pytest.fixture(scope="module")
def trm(mongo_record):
    """Return the seeded ``trm`` database."""
    client = MongoClient(
        mongo_record["uri"], serverSelectionTimeoutMS=5000, socketTimeoutMS=30000
    )
    yield client[mongo_record["database"]]
    client.close()


@pytest.fixture(scope="module")
def s3_record(tmp_path_factory):
    """Start the S3 component once for the module."""
    record = _start(s3, tmp_path_factory.mktemp("s3"))
    yield record
    _stop(record)


@pytest.fixture(scope="module")
def bucket(s3_record):
    """Return a client and the listing of the backup bucket, key to size."""
    client = s3.client(s3_record["endpoint_url"])
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=s3_record["bucket"])
    sizes = {obj["Key"]: obj["Size"] for page in pages for obj in page["Contents"]}
    return client, sizes


def _get(client, record: dict, key: str) -> bytes:
    """Download one object of the backup bucket."""
    return client.get_object(Bucket=record["bucket"], Key=key)["Body"].read()


def _window(entry: dict) -> dict:
    """Return the createdAt filter of an expected 24-hour window."""
    since = datetime.fromisoformat(entry["since"])
    until = datetime.fromisoformat(entry["until"])
    return {entry["field"]: {"$gte": since, "$lt": until}}


def test_mongodb_record_points_at_the_seeded_server(mongo_record):
    assert mongo_record["database"] == "trm"
    assert mongo_record["uri"] == f"mongodb://127.0.0.1:{mongo_record['port']}/"
    assert [type(pid) for pid in mongo_record["pids"]] == [int]
    assert mongo_record["expected"] == trm_data.generate(NOW_DT).expected


def test_collections_hold_the_expected_numbers_of_documents(trm, mongo_record):
    counts = mongo_record["expected"]["counts"]

    assert sorted(trm.list_collection_names()) == sorted(trm_data.COLLECTIONS)
    assert counts["users"] == 8198
    assert counts["apikeys"] == 24
    for name in trm_data.COLLECTIONS:
        assert trm[name].count_documents({}) == counts[name], name


@pytest.mark.parametrize("name", trm_data.COLLECTIONS)
def test_last_24_hours_match_expected(trm, mongo_record, name):
    entry = mongo_record["expected"]["last_24h"][name]

    assert entry["field"] == "createdAt"
    assert entry["until"] == NOW
    assert trm[name].count_documents(_window(entry)) == entry["count"]


def test_planted_referrals_are_below_normal_but_inside_investigate(mongo_record):
    expected = mongo_record["expected"]
    entry = expected["last_24h"]["referrals"]
    ranges = expected["ranges"]["referrals"]

    assert entry["count"] == 22
    assert entry["count"] < ranges["normal"][0] == 30
    assert ranges["investigate"][0] == 10 <= entry["count"]
    assert entry["status"] == "warning"
    assert expected["planted"] == [
        {
            "collection": "referrals",
            "metric": "referrals",
            "field": "createdAt",
            "count": 22,
            "status": "warning",
        }
    ]


@pytest.mark.parametrize("name", ["users", "jobs", "payments"])
def test_other_daily_volumes_stay_normal(mongo_record, name):
    expected = mongo_record["expected"]
    low, high = expected["ranges"][name]["normal"]

    assert expected["last_24h"][name]["status"] == "ok"
    assert len(expected["daily"][name]) == 60
    assert all(low <= count <= high for count in expected["daily"][name])


def test_referrals_were_normal_before_the_last_day(mongo_record):
    daily = mongo_record["expected"]["daily"]["referrals"]

    assert daily[0] == 22
    assert all(30 <= count <= 150 for count in daily[1:])


def test_registrations_of_earlier_days_match_the_server(trm, mongo_record):
    daily = mongo_record["expected"]["daily"]["users"]
    for day in (1, 2, 30):
        since, until = NOW_DT - (day + 1) * trm_data.DAY, NOW_DT - day * trm_data.DAY
        window = {"createdAt": {"$gte": since, "$lt": until}}
        assert trm.users.count_documents(window) == daily[day]


def test_admins_and_inactive_admins(trm, mongo_record):
    users = mongo_record["expected"]["users"]
    cutoff = NOW_DT - timedelta(days=90)

    assert (users["admins"], users["inactive_admins"]) == (9, 3)
    assert trm.users.count_documents({"role": "admin"}) == 9
    stale = {"role": "admin", "lastLogin": {"$lt": cutoff}}
    assert trm.users.count_documents(stale) == 3


def test_monthly_active_and_churned_users(trm, mongo_record):
    users = mongo_record["expected"]["users"]
    month = {"lastLogin": {"$gte": NOW_DT - timedelta(days=30)}}
    churned = {"lastLogin": {"$lt": NOW_DT - timedelta(days=60)}}

    assert trm.users.count_documents(month) == users["monthly_active"] == 6009
    assert trm.users.count_documents(churned) == users["churned"] == 776


def test_api_keys_are_counted_and_hold_only_hashes(trm, mongo_record):
    keys = mongo_record["expected"]["apikeys"]
    docs = list(trm.apikeys.find({}))

    assert (keys["active"], keys["inactive"], keys["active_unused_90d"]) == (17, 7, 3)
    assert trm.apikeys.count_documents({"active": True}) == 17
    assert all(re.fullmatch(r"[0-9a-f]{64}", doc["keyHash"]) for doc in docs)
    fields = {"_id", "name", "ownerId", "active", "createdAt", "lastUsed", "keyHash"}
    assert {key for doc in docs for key in doc} == fields


def test_failed_payments_match_the_server(trm, mongo_record):
    payments = mongo_record["expected"]["payments"]

    assert payments["failed"] == payments["by_status"]["failed"] > 0
    assert trm.payments.count_documents({"status": "failed"}) == payments["failed"]


def test_dbstats_describes_the_trm_database(trm, mongo_record):
    stats = trm.command("dbStats")
    indexes = sum(len(specs) + 1 for specs in trm_data.INDEXES.values())

    # nx-27017 reports the SQLite file here, MongoDB the database name.
    assert stats["db"].rsplit("/", 1)[-1].removesuffix(".db") == "trm"
    assert stats["collections"] == 6
    assert stats["objects"] == sum(mongo_record["expected"]["counts"].values())
    assert stats["indexes"] == indexes == 17
    assert stats["dataSize"] > 5_000_000


def test_collstats_and_server_status_answer(trm, mongo_record):
    coll = trm.command("collStats", "referrals")
    status = trm.command("serverStatus")

    assert coll["count"] == mongo_record["expected"]["counts"]["referrals"]
    assert coll["size"] > 0
    assert status["connections"]["current"] >= 1
    assert status["connections"]["available"] > 0


def test_generation_is_deterministic_and_relative_to_now():
    first = trm_data.generate(NOW_DT)
    later = trm_data.generate(NOW_DT + trm_data.DAY)

    assert trm_data.generate(NOW_DT).collections == first.collections
    assert later.expected["counts"] == first.expected["counts"]
    assert later.expected["last_24h"]["referrals"]["count"] == 22
    shifted = [doc["createdAt"] - trm_data.DAY for doc in later.collections["jobs"]]
    assert shifted == [doc["createdAt"] for doc in first.collections["jobs"]]


def test_missing_now_is_set_in_state():
    state: dict = {"servers": {}}

    now = trm_data.resolve_now(state)

    assert state["now"] == trm_data.iso(now)
    assert now.tzinfo is not None and now.microsecond % 1000 == 0


def test_backup_moments_skip_a_backup_not_yet_taken():
    moments = s3.backup_moments(datetime.fromisoformat("2025-03-09T01:30:00+00:00"))

    assert trm_data.iso(moments[0]) == "2025-03-08T02:00:00.000+00:00"
    assert len(moments) == 8


def test_s3_record_lists_eight_daily_backups(s3_record):
    backups = s3_record["backups"]

    assert list(backups) == BACKUP_DAYS
    assert backups["20250309"]["timestamp"] == "2025-03-09T02:00:00.000+00:00"
    assert backups["20250302"]["prefix"] == "mongodb/20250302/"
    assert {entry["objects"] for entry in backups.values()} == {12}


def test_bucket_holds_both_files_of_every_collection_per_day(bucket):
    _unused, sizes = bucket
    wanted = {
        f"mongodb/{day}/trm/{name}{kind}"
        for day in BACKUP_DAYS
        for name in trm_data.COLLECTIONS
        for kind in FILE_KINDS
    }

    assert set(sizes) == wanted
    assert len(wanted) == 96


def test_every_backup_is_above_one_megabyte_and_grows(s3_record, bucket):
    _unused, sizes = bucket
    totals = {
        day: sum(size for key, size in sizes.items() if key.split("/")[1] == day)
        for day in BACKUP_DAYS
    }

    for day, total in totals.items():
        assert total == s3_record["backups"][day]["bytes"]
        assert total > 1_000_000, day
    assert list(totals.values()) == sorted(totals.values(), reverse=True)


@pytest.mark.parametrize("day", ["20250309", "20250302"])
def test_bson_dump_decodes_to_the_recorded_documents(s3_record, bucket, day):
    client, _unused = bucket
    backup = s3_record["backups"][day]
    taken = datetime.fromisoformat(backup["timestamp"]).replace(tzinfo=None)
    for name in trm_data.COLLECTIONS:
        raw = gzip.decompress(
            _get(client, s3_record, f"mongodb/{day}/trm/{name}.bson.gz")
        )
        docs = bson.decode_all(raw)
        assert len(docs) == backup["documents"][name], name
        assert max(doc["createdAt"] for doc in docs) <= taken


def test_oldest_backup_lacks_the_last_week(s3_record):
    documents = s3_record["backups"]["20250302"]["documents"]
    latest = s3_record["backups"]["20250309"]["documents"]

    assert documents["apikeys"] == latest["apikeys"] == 24
    assert documents["users"] < latest["users"] < 8198


def test_backup_matches_the_live_collection(trm, s3_record, bucket):
    client, _unused = bucket
    raw = gzip.decompress(_get(client, s3_record, "mongodb/20250305/trm/users.bson.gz"))
    dumped = bson.decode_all(raw)
    taken = datetime.fromisoformat(s3_record["backups"]["20250305"]["timestamp"])
    live = list(trm.users.find({"createdAt": {"$lte": taken}}).sort("createdAt", 1))

    assert len(dumped) == len(live) == 7747
    assert [doc["_id"] for doc in dumped] == [doc["_id"] for doc in live]
    assert dumped[100] == live[100]


def test_metadata_json_describes_the_collection(s3_record, bucket):
    client, _unused = bucket
    for name in trm_data.COLLECTIONS:
        key = f"mongodb/20250309/trm/{name}.metadata.json.gz"
        metadata = json_util.loads(gzip.decompress(_get(client, s3_record, key)))
        assert metadata["collectionName"] == name
        assert metadata["type"] == "collection"
        assert re.fullmatch(r"[0-9a-f]{32}", metadata["uuid"])
        names = [index["name"] for index in metadata["indexes"]]
        assert names[0] == "_id_" and len(names) >= 2
        assert metadata["indexes"][0]["key"] == {"_id": 1}


def test_objects_carry_a_sha256_checksum(s3_record, bucket):
    client, _unused = bucket
    key = "mongodb/20250303/trm/jobs.bson.gz"
    body = _get(client, s3_record, key)

    head = client.head_object(
        Bucket=s3_record["bucket"], Key=key, ChecksumMode="ENABLED"
    )

    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert head["ChecksumSHA256"] == digest
    assert body[:2] == b"\x1f\x8b"
