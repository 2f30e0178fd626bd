"""s3_backup_verify through Ansible, against moto's S3 and nx-27017 from the lab.

What the stand-ins do not reproduce, so a green test here is no proof of:

- moto keeps the checksum a client states with an upload without checking it
  against the bytes. The "changed content" case relies on that to store bytes
  that do not match their checksum; on AWS only corruption can do that.
- moto's LastModified is the moment of the upload. The lab uploads every day's
  backup at once, so every backup here is seconds old; age is tested with a
  maximum age of one second.
- moto accepts any credentials unless started with authentication on; the
  credential cases use a second moto server with one IAM user.
- nx-27017's listIndexes renames indexes (``createdAt_1`` becomes
  ``idx_users_createdAt``) and reports a descending key as ascending. The restore
  compares index keys, never names; the lab's indexes are all ascending.
- nx-27017 answers aggregates with a date ``$match`` wrongly; every count here
  goes through ``count_documents``, which it answers correctly.
"""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta

import pytest
from pymongo import MongoClient

from lab.core import free_port, stop_pid
from lab.orchestrator import down, up
from tests.integration.backup_cases import (
    archive_collections,
    build_cases,
    case_client,
    read_source,
    stamp,
    start_auth_s3,
    today,
)

MODULE = "trm.maintenance.s3_backup_verify"
SCRATCH = "trm_restore_test"

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """MongoDB and S3 of the lab, with the failure cases written into S3."""
    state_dir = tmp_path_factory.mktemp("backup-lab")
    try:
        state = up(state_dir, only=["mongodb", "s3"], quiet=True)
        record = state["servers"]["s3"]
        source = read_source(case_client(record), record)
        cases = build_cases(case_client(record), source)
        yield {"state": state, "s3": record, "source": source, "cases": cases}
    finally:
        down(state_dir, quiet=True)


@pytest.fixture(scope="module")
def auth_s3(tmp_path_factory, lab):
    """A second moto server that checks credentials."""
    server = start_auth_s3(tmp_path_factory.mktemp("auth-s3"), lab["source"].newest())
    yield server
    stop_pid(server.pid)


@pytest.fixture(scope="module")
def mongo(lab):
    """A client of the lab's MongoDB."""
    client = MongoClient(lab["state"]["servers"]["mongodb"]["uri"], timeoutMS=30000)
    yield client
    client.close()


def connection(lab) -> dict:
    s3 = lab["s3"]
    return {
        "bucket": s3["bucket"],
        "endpoint_url": s3["endpoint_url"],
        "region": s3["region"],
        "access_key": s3["access_key"],
        "secret_key": s3["secret_key"],
        "timeout": 10,
        "retries": 0,
    }


def verify(ansible, lab, case: str, **args) -> dict:
    """Run the module on a case's backup of today."""
    check_mode = args.pop("_check", False)
    params = {
        **connection(lab),
        "prefix": f"cases/{case}/%Y%m%d/",
        "date": today().isoformat(),
        **args,
    }
    return ansible.module(MODULE, params, check_mode=check_mode)


def checks(result: dict) -> dict:
    return {check["name"]: check for check in result["checks"]}


def statuses(result: dict) -> dict:
    return {check["name"]: check["status"] for check in result["checks"]}


def newest_counts(lab) -> dict:
    day = next(iter(lab["s3"]["backups"].values()))
    return {f"trm.{name}": count for name, count in day["documents"].items()}


# A good backup


def test_good_backup_passes_levels_one_to_four_with_live_counts(ansible, lab):
    mongo_record = lab["state"]["servers"]["mongodb"]
    newest = lab["source"].newest()

    result = verify(
        ansible, lab, "good", levels=[1, 2, 3, 4], live_uri=mongo_record["uri"]
    )

    assert result["status"] == "ok", result["summary"]
    assert list(statuses(result)) == [
        "backup_exists",
        "backup_age",
        "backup_size",
        "backup_size_trend",
        "backup_objects",
        "checksums",
        "gzip_streams",
        "documents",
        "metadata",
        "live_counts",
    ]
    assert result["metrics"]["backup_bytes"] == sum(map(len, newest.values()))
    assert result["metrics"]["backup_objects"] == 12
    assert result["metrics"]["previous_backups"] == 7
    assert checks(result)["checksums"]["message"] == (
        "12 of 12 objects match their stored checksums"
    )
    collections = result["collections"]
    assert {n: e["documents"] for n, e in collections.items()} == newest_counts(lab)
    live = {n: e["live_documents"] for n, e in collections.items()}
    assert live == {
        f"trm.{n}": c for n, c in mongo_record["expected"]["counts"].items()
    }
    assert result["changed"] is False
    assert result["backup"]["url"] == f"s3://trm-backups/cases/good/{stamp(today())}/"


def test_deep_ages_verify_an_older_backup_too(ansible, lab):
    week_ago = today() - timedelta(days=7)

    result = verify(ansible, lab, "good", levels=[1, 3, 4], deep_ages=[7])

    found = checks(result)
    suffix = f"_{stamp(week_ago)}"
    assert found[f"checksums{suffix}"]["status"] == "ok"
    oldest = lab["source"].record["backups"][lab["source"].days[7]]["documents"]
    assert found[f"documents{suffix}"]["value"] == sum(oldest.values())
    assert result["verified_earlier"] == [week_ago.isoformat()]


def test_environment_credentials_work_as_in_boto3(ansible, lab, auth_s3):
    # The authenticating server: a wrong secret in the environment must fail.
    params = {
        "bucket": "trm-backups",
        "prefix": "cases/auth/%Y%m%d/",
        "date": today().isoformat(),
        "endpoint_url": auth_s3.endpoint_url,
        "retries": 0,
    }
    env = {
        "AWS_ACCESS_KEY_ID": auth_s3.access_key,
        "AWS_SECRET_ACCESS_KEY": auth_s3.secret_key,
    }
    wrong = {**env, "AWS_SECRET_ACCESS_KEY": "wrong-env-secret-0123456789"}

    result = ansible.module(MODULE, params, env=env)
    refused = ansible.module(MODULE, params, env=wrong)

    assert statuses(result)["backup_exists"] == "ok"
    assert result["metrics"]["backup_objects"] == len(lab["source"].newest())
    assert refused["status"] == "unknown"
    assert checks(refused)["backup_exists"]["message"].startswith(
        "S3 rejected the credentials (SignatureDoesNotMatch"
    )
    assert "wrong-env-secret" not in json.dumps(refused)


# Level 1 and 2 failures


def test_missing_backup_is_critical_and_names_the_newest_earlier_one(ansible, lab):
    day = today()

    result = verify(ansible, lab, "missing", levels=[1, 2])

    assert result["status"] == "critical"
    assert result["checks"] == [checks(result)["backup_exists"]]
    yesterday = stamp(day - timedelta(days=1))
    assert checks(result)["backup_exists"]["message"] == (
        f"No backup under s3://trm-backups/cases/missing/{stamp(day)}/; the newest "
        f"earlier backup is cases/missing/{yesterday}/ "
        f"({(day - timedelta(days=1)).isoformat()})"
    )
    assert "backup job" in checks(result)["backup_exists"]["action"]


def test_backup_under_the_minimum_size_is_critical(ansible, lab):
    size = lab["cases"]["shrunk_bytes"]

    result = verify(ansible, lab, "shrunk", levels=[1, 2])

    found = checks(result)
    assert found["backup_size"]["status"] == "critical"
    assert found["backup_size"]["value"] == size
    assert (
        f"({size:,} bytes), below the minimum of 1 MB"
        in (found["backup_size"]["message"])
    )
    assert found["backup_objects"]["missing_objects"] == ["trm/auditlogs.bson.gz"]


def test_backup_far_smaller_than_the_previous_days_is_critical(ansible, lab):
    size = lab["cases"]["shrunk_bytes"]
    source = lab["source"]
    previous = sorted(sum(map(len, source.files[d].values())) for d in source.days[1:4])
    percent = round(100 * size / previous[1], 1)

    result = verify(ansible, lab, "shrunk", levels=[2], min_size_bytes=100000)

    found = checks(result)
    assert found["backup_size"]["status"] == "ok"
    trend = found["backup_size_trend"]
    assert (trend["status"], trend["value"]) == ("critical", percent)
    assert trend["message"].endswith("outside the investigate range 50%-200%")
    assert trend["median_bytes"] == previous[1]
    assert found["backup_objects"]["status"] == "warning"
    assert found["backup_objects"]["message"].endswith(
        "missing since cases/shrunk/"
        f"{stamp(today() - timedelta(days=1))}/: trm/auditlogs.bson.gz"
    )


def test_an_old_backup_breaches_the_maximum_age(ansible, lab):
    time.sleep(1.1)

    result = verify(ansible, lab, "good", levels=[1], max_age="1s")

    age = checks(result)["backup_age"]
    assert age["status"] == "critical"
    assert age["age_seconds"] > 1
    assert "beyond the maximum age of 1 s" in age["message"]
    assert result["metrics"]["rpo_seconds"] == age["age_seconds"]


# Level 3 and 4 failures


def test_content_that_no_longer_matches_its_checksum_is_critical(ansible, lab):
    expected = lab["cases"]["changed"]

    result = verify(ansible, lab, "changed", levels=[3])

    found = checks(result)
    assert found["checksums"]["status"] == "critical"
    assert found["checksums"]["message"] == (
        "1 of 12 objects differ from their checksums: trm/jobs.bson.gz does not "
        f"match its stored SHA256 checksum (stored {expected['stored']}, computed "
        f"{expected['computed']})"
    )
    assert found["gzip_streams"]["status"] == "ok"


def test_a_truncated_gzip_is_critical_and_named(ansible, lab):
    length = lab["cases"]["truncated"]["length"]

    result = verify(ansible, lab, "truncated", levels=[3, 4])

    found = checks(result)
    assert found["checksums"]["status"] == "ok"
    assert found["gzip_streams"]["status"] == "critical"
    assert found["gzip_streams"]["message"] == (
        "1 of 12 gzip streams are damaged: trm/referrals.bson.gz: the gzip stream "
        f"ends after {length:,} compressed bytes without its end marker: the "
        "object is truncated"
    )
    assert found["documents"]["status"] == "critical"
    assert found["documents"]["broken"][0]["object"] == "trm/referrals.bson.gz"


def test_a_bson_file_cut_mid_document_is_critical_and_named(ansible, lab):
    cut = lab["cases"]["cut"]

    result = verify(ansible, lab, "cut", levels=[3, 4])

    found = checks(result)
    assert found["gzip_streams"]["status"] == "ok"
    assert found["documents"]["status"] == "critical"
    assert found["documents"]["message"] == (
        "1 of 6 backup files do not decode: trm/payments.bson.gz: document "
        f"{cut['number']:,} is cut off at byte {cut['offset']:,}: it declares "
        f"{cut['size']} bytes, only {cut['size'] - 50} are there"
    )
    payments = result["collections"]["trm.payments"]["documents"]
    assert payments == cut["number"] - 1


def test_multipart_uploads_and_plain_etags_are_verified(ansible, lab):
    result = verify(ansible, lab, "multipart", levels=[3], min_size_bytes=0)

    assert checks(result)["checksums"]["status"] == "ok"
    assert checks(result)["checksums"]["message"] == (
        "3 of 3 objects match their stored checksums"
    )


# The archive format


@pytest.mark.parametrize("case", ["archive-gz", "archive-plain"])
def test_archive_format_backups_decode_to_the_recorded_counts(ansible, lab, case):
    result = verify(ansible, lab, case, levels=[1, 3, 4])

    assert result["status"] == "ok", result["summary"]
    found = checks(result)
    expected_gzip = 1 if case == "archive-gz" else 0
    assert found["gzip_streams"]["value"] == expected_gzip
    collections = result["collections"]
    assert {n: e["documents"] for n, e in collections.items()} == newest_counts(lab)
    sizes = {c.name: c.size for c in archive_collections(lab["source"])}
    assert {n: e["declared_bytes"] for n, e in collections.items()} == {
        f"trm.{n}": size for n, size in sizes.items()
    }


def test_a_truncated_archive_names_the_unfinished_collections(ansible, lab):
    result = verify(ansible, lab, "archive-cut", levels=[4])

    documents = checks(result)["documents"]
    assert documents["status"] == "critical"
    assert re.fullmatch(
        r"1 of 1 backup files do not decode: trm\.archive: document [\d,]+ is cut "
        r"off at byte [\d,]+: it declares \d+ bytes, only \d+ are there",
        documents["message"],
    )


# S3 problems are findings


def test_wrong_credentials_are_unknown_and_leak_no_secret(ansible, lab, auth_s3):
    params = {
        "bucket": "trm-backups",
        "prefix": "cases/auth/%Y%m%d/",
        "date": today().isoformat(),
        "endpoint_url": auth_s3.endpoint_url,
        "access_key": auth_s3.access_key,
        "secret_key": "wrong-secret-0123456789",
        "retries": 0,
    }

    result = ansible.module(MODULE, params)
    good = ansible.module(MODULE, {**params, "secret_key": auth_s3.secret_key})

    assert result["status"] == "unknown"
    message = checks(result)["backup_exists"]["message"]
    assert message.startswith("S3 rejected the credentials (SignatureDoesNotMatch")
    assert checks(result)["backup_exists"]["error"] == "credentials"
    assert "wrong-secret" not in json.dumps(result)
    assert statuses(good)["backup_exists"] == "ok"


def test_an_unknown_access_key_is_unknown(ansible, lab, auth_s3):
    params = {
        "bucket": "trm-backups",
        "prefix": "cases/auth/%Y%m%d/",
        "endpoint_url": auth_s3.endpoint_url,
        "access_key": "AKIANOSUCHKEY0000000",
        "secret_key": "whatever-secret",
        "retries": 0,
    }

    result = ansible.module(MODULE, params)

    assert checks(result)["backup_exists"]["message"].startswith(
        "S3 rejected the credentials (InvalidAccessKeyId"
    )


def test_a_missing_bucket_is_critical(ansible, lab):
    result = ansible.module(MODULE, {**connection(lab), "bucket": "no-such-bucket"})

    assert result["status"] == "critical"
    found = checks(result)["backup_exists"]
    assert found["message"] == (
        f"Bucket no-such-bucket does not exist at {lab['s3']['endpoint_url']}"
    )
    assert found["error"] == "missing_bucket"


def test_an_unreachable_endpoint_is_unknown(ansible, lab):
    endpoint = f"http://127.0.0.1:{free_port()}"

    result = ansible.module(
        MODULE, {**connection(lab), "endpoint_url": endpoint, "timeout": 2}
    )

    assert result["status"] == "unknown"
    found = checks(result)["backup_exists"]
    assert found["message"].startswith(f"S3 at {endpoint} cannot be reached")
    assert found["error"] == "unreachable"
    assert not result.get("failed")


def test_fail_on_critical_turns_a_missing_backup_into_a_failed_task(ansible, lab):
    result = verify(ansible, lab, "missing", levels=[1], fail_on="critical")

    assert result["failed"] is True
    assert result["msg"].startswith(
        f"S3 backup s3://trm-backups/cases/missing/{stamp(today())}/ CRITICAL"
    )


def test_a_bad_option_fails_the_task_and_names_it(ansible, lab):
    result = verify(ansible, lab, "good", max_age="a while")

    assert result["failed"] is True
    assert result["msg"].startswith("Option 'max_age' must be a number of seconds")


# Level 5: the restore test


def restore_args(lab, **extra) -> dict:
    return {
        "levels": [4, 5],
        "restore_uri": lab["state"]["servers"]["mongodb"]["uri"],
        "restore_database": SCRATCH,
        **extra,
    }


def test_restore_counts_match_and_the_scratch_database_is_dropped(ansible, lab, mongo):
    trm_before = mongo.trm.users.count_documents({})

    result = verify(
        ansible,
        lab,
        "good",
        **restore_args(lab, live_uri=lab["state"]["servers"]["mongodb"]["uri"]),
    )

    assert result["status"] == "ok", result["summary"]
    assert result["changed"] is True
    found = checks(result)
    counts = newest_counts(lab)
    assert found["restore"]["message"] == (
        f"Restored {sum(counts.values()):,} documents of 6 collections into "
        f"{SCRATCH}; every count matches the backup"
    )
    restored = {n: e["restored_documents"] for n, e in result["collections"].items()}
    assert restored == counts
    # 6 _id indexes and the 11 the lab's metadata lists.
    assert found["restore_indexes"]["value"] == 17
    assert result["metrics"]["restored_indexes"] == 17
    restore = result["restore"]
    assert restore["status"] == "done" and restore["dropped"] is True
    assert 0 < restore["rto_seconds"] == result["metrics"]["rto_seconds"]
    assert set(restore["phases"]) == {
        "drop_before",
        "metadata",
        "prepare",
        "data",
        "indexes",
        "verify",
        "drop_after",
    }
    assert SCRATCH not in mongo.list_database_names()
    assert mongo.trm.users.count_documents({}) == trm_before


def test_an_archive_restores_to_the_recorded_counts(ansible, lab, mongo):
    result = verify(ansible, lab, "archive-gz", **restore_args(lab))

    assert checks(result)["restore"]["status"] == "ok", result["summary"]
    restored = {n: e["restored_documents"] for n, e in result["collections"].items()}
    assert restored == newest_counts(lab)
    assert checks(result)["restore_indexes"]["value"] == 17
    assert SCRATCH not in mongo.list_database_names()


def test_a_restore_of_a_cut_backup_is_critical(ansible, lab):
    result = verify(ansible, lab, "cut", **restore_args(lab))

    restore = checks(result)["restore"]
    assert restore["status"] == "critical"
    assert restore["message"].startswith(
        f"The restore into {SCRATCH} failed: trm/payments.bson.gz could not be "
        "restored completely: document"
    )


def test_check_mode_plans_the_restore_and_writes_nothing(ansible, lab, mongo):
    uri = lab["state"]["servers"]["mongodb"]["uri"]
    total = sum(map(len, lab["source"].newest().values()))

    result = verify(ansible, lab, "good", _check=True, **restore_args(lab))

    restore = checks(result)["restore"]
    assert restore["status"] == "ok"
    assert restore["message"] == (
        f"Check mode: would drop {SCRATCH} on {uri}, restore 6 collections from 12 "
        f"objects ({total / 1e6:.3g} MB), create their indexes, count, and drop "
        f"{SCRATCH} again"
    )
    assert result["restore"]["status"] == "planned"
    assert result["changed"] is True
    assert checks(result)["documents"]["status"] == "ok"
    assert SCRATCH not in mongo.list_database_names()


def restore_window(day) -> dict:
    """A weekly window in the shared model that opens on ``day``'s weekday."""
    weekdays = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
    return {
        "name": "restore",
        "schedule": "weekly",
        "weekday": [*weekdays, "sunday"][day.weekday()],
        "start": "02:00",
        "duration": "2h",
    }


def test_outside_the_maintenance_window_the_restore_is_refused(ansible, lab):
    # Three days ahead: the window last opened four days ago, next in three.
    opens = today() + timedelta(days=3)

    result = verify(
        ansible,
        lab,
        "good",
        **restore_args(lab, maintenance_windows=[restore_window(opens)]),
    )

    restore = checks(result)["restore"]
    assert restore["status"] == "unknown"
    assert re.fullmatch(
        "The restore test did not run: outside the maintenance windows "
        f"\\(restore\\); the next, restore, opens {opens:%a} {opens.isoformat()} "
        "02:00 UTC, in (2 d [0-9]+ h|3 d( [0-9]+ h)?)",
        restore["message"],
    ), restore["message"]
    assert restore["action"] == (
        "Run it inside a maintenance window, or set allow_outside_window"
    )
    assert result["restore"] == {"status": "refused"}
    assert "restore_time" not in checks(result)
    assert "restore_window" not in checks(result)


def test_the_override_runs_the_restore_outside_the_window(ansible, lab):
    opens = today() + timedelta(days=3)
    args = restore_args(
        lab,
        maintenance_windows=[restore_window(opens)],
        allow_outside_window=True,
    )

    result = verify(ansible, lab, "good", **args)

    assert checks(result)["restore"]["status"] == "ok"
    window = checks(result)["restore_window"]
    assert window["status"] == "ok"
    assert window["message"].startswith(
        "Outside the maintenance windows (restore); the next, restore, opens "
        f"{opens:%a} {opens.isoformat()} 02:00 UTC, in "
    )
    assert window["message"].endswith("; allow_outside_window overrides them")
    assert result["restore"]["window"] == {
        "allowed": True,
        "decided_by": "allow_outside_window",
        "reason": window["message"],
    }


def test_a_window_decided_before_is_stated_in_the_result(ansible, lab):
    decision = {"by": "maintenance_guard", "open": True, "reason": "Inside weekly"}

    result = verify(
        ansible, lab, "good", _check=True, **restore_args(lab, window_decision=decision)
    )

    assert checks(result)["restore_window"]["message"] == (
        "maintenance_guard allowed the restore: Inside weekly"
    )
    assert result["restore"]["status"] == "planned"
    assert result["restore"]["window"]["decided_by"] == "maintenance_guard"


def test_a_scratch_name_off_the_allow_list_fails_before_anything(ansible, lab, mongo):
    result = verify(ansible, lab, "good", **restore_args(lab, restore_database="trm"))

    assert result["failed"] is True
    assert result["msg"] == (
        "Option 'restore_database' matches no pattern of restore_allowed_databases "
        "['*_restore_test']; got 'trm'"
    )
    assert mongo.trm.users.count_documents({}) > 0


def test_the_backup_own_database_is_refused_even_when_allowed(ansible, lab, mongo):
    args = restore_args(lab, restore_database="trm", restore_allowed_databases=["trm"])

    result = verify(ansible, lab, "good", **args)

    assert result["failed"] is True
    assert "is a database of the backup itself" in result["msg"]
    assert mongo.trm.users.count_documents({}) > 0


@pytest.mark.parametrize("check_mode", [False, True])
def test_an_archive_of_the_scratch_database_is_refused_before_any_drop(
    ansible, lab, mongo, check_mode
):
    # The archive's object name says nothing of its databases; only its header
    # names trm.
    users = mongo.trm.users.count_documents({})
    collections = sorted(mongo.trm.list_collection_names())
    args = restore_args(lab, restore_database="trm", restore_allowed_databases=["trm"])

    result = verify(ansible, lab, "archive-gz", _check=check_mode, **args)

    assert result["failed"] is True
    assert result["msg"] == (
        "Option 'restore_database' is a database of the backup itself (the archive "
        "trm.archive.gz holds trm); restoring would drop it; got 'trm'"
    )
    assert mongo.trm.users.count_documents({}) == users
    assert sorted(mongo.trm.list_collection_names()) == collections


def test_an_unreachable_restore_target_is_unknown(ansible, lab):
    args = restore_args(lab, restore_uri=f"mongodb://127.0.0.1:{free_port()}/")

    result = verify(ansible, lab, "good", timeout=2, **args)

    restore = checks(result)["restore"]
    assert restore["status"] == "unknown"
    assert restore["message"].startswith("MongoDB at mongodb://127.0.0.1:")


def test_credentials_do_not_appear_in_results(ansible, lab):
    uri = lab["state"]["servers"]["mongodb"]["uri"]
    secret_uri = uri.replace("mongodb://", "mongodb://ops:hunter2-secret@")

    result = verify(
        ansible, lab, "good", _check=True, **restore_args(lab, restore_uri=secret_uri)
    )

    text = json.dumps(result)
    assert "hunter2" not in text
    assert lab["s3"]["secret_key"] not in text
