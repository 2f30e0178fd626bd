"""Findings of each verification level, judged from listings and scans."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils import (
    backup_levels as levels,
)
from ansible_collections.trm.maintenance.plugins.module_utils.backup import (
    Summary,
)
from ansible_collections.trm.maintenance.plugins.module_utils.backup_digest import (
    MATCH,
    MISMATCH,
    UNVERIFIABLE,
    Expected,
)
from ansible_collections.trm.maintenance.plugins.module_utils.backup_s3 import (
    S3Object,
)
from ansible_collections.trm.maintenance.plugins.module_utils.backup_scan import (
    BackupScan,
    ObjectScan,
    RestoreRun,
    classify,
)
from ansible_collections.trm.maintenance.plugins.module_utils.backup_streams import (
    Namespace,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    Range,
    Threshold,
)

WHEN = datetime(2025, 3, 9, 2, 10, tzinfo=timezone.utc)
BAND = Range(normal=(80, 125), investigate=(50, 200))


def obj(relative: str, size: int = 1000) -> S3Object:
    return S3Object(f"mongodb/20250309/{relative}", relative, size, WHEN, "e" * 32)


def backup(day: int, sizes: dict) -> Summary:
    prefix = f"mongodb/202503{day:02d}/"
    return Summary(date(2025, 3, day), prefix, [obj(k, v) for k, v in sizes.items()])


def scan(relative: str, **fields) -> ObjectScan:
    result = ObjectScan(obj(relative), classify(relative))
    for key, value in fields.items():
        setattr(result, key, value)
    return result


FULL = {"trm/users.bson.gz": 600_000, "trm/jobs.bson.gz": 400_000}


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (999, "999 B"),
        (1_000, "1 kB"),
        (1_988_103, "1.99 MB"),
        (2_500_000_000, "2.5 GB"),
    ],
)
def test_human_bytes_uses_decimal_units(count, text):
    assert levels.human_bytes(count) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(40, "40 s"), (720, "12 min"), (18720, "5.2 h"), (267840, "3.1 days")],
)
def test_human_durations(seconds, text):
    assert levels.human_duration(seconds) == text


@pytest.mark.parametrize(
    ("age_hours", "status"), [(18.5, "ok"), (26.0, "ok"), (26.1, "critical")]
)
def test_age_is_critical_beyond_the_maximum(age_hours, status):
    finding = levels.age_finding(age_hours * 3600, 26 * 3600)

    assert finding.status == status
    assert finding.value == age_hours
    assert finding.to_dict()["critical"] == 26.0


def test_age_without_a_maximum_is_reported_only():
    finding = levels.age_finding(7200, None)

    assert (finding.status, finding.message) == (
        "ok",
        "The backup is 2.0 h old (RPO, newest object)",
    )


@pytest.mark.parametrize(
    ("total", "status"), [(999_999, "critical"), (1_000_000, "ok"), (1_400_000, "ok")]
)
def test_size_against_the_minimum(total, status):
    finding = levels.size_finding(total, 1_000_000)

    assert finding.status == status
    assert "the minimum of 1 MB" in finding.message


@pytest.mark.parametrize(
    ("size", "status"),
    [
        (1_000_000, "ok"),
        (800_000, "ok"),
        (790_000, "warning"),
        (500_000, "warning"),
        (490_000, "critical"),
        (2_100_000, "critical"),
    ],
)
def test_size_trend_against_the_median_of_previous_backups(size, status):
    previous = [backup(8, FULL), backup(7, FULL), backup(6, {"a": 10})]
    current = [obj("trm/users.bson.gz", size)]

    finding = levels.band_finding(current, previous, BAND)

    assert finding.status == status
    assert finding.value == round(size / 10_000, 1)
    assert finding.details["median_bytes"] == 1_000_000


def test_a_shrunk_backup_names_the_objects_that_shrank():
    previous = [backup(8, FULL)]
    current = [obj("trm/users.bson.gz", 100_000), obj("trm/jobs.bson.gz", 390_000)]

    finding = levels.band_finding(current, previous, BAND)

    assert finding.status == "critical"
    assert "49% of the median of the previous 1 backups (1 MB)" in finding.message
    assert finding.details["shrunk_objects"] == [
        {"object": "trm/users.bson.gz", "before": 600_000, "now": 100_000},
        {"object": "trm/jobs.bson.gz", "before": 400_000, "now": 390_000},
    ]


def test_no_previous_backups_is_ok_and_says_so():
    finding = levels.band_finding([obj("a")], [], BAND)

    assert (finding.status, finding.message) == (
        "ok",
        "No previous backups to compare the size with",
    )


def test_missing_objects_are_named_against_the_newest_previous_backup():
    previous = [backup(8, FULL), backup(7, FULL)]

    finding = levels.count_finding([obj("trm/users.bson.gz")], previous)

    assert finding.status == "warning"
    assert finding.message == (
        "1 objects where the previous backups have 2; missing since "
        "mongodb/20250308/: trm/jobs.bson.gz"
    )
    assert finding.details["missing_objects"] == ["trm/jobs.bson.gz"]


def test_same_objects_as_before_are_ok():
    previous = [backup(8, FULL)]
    current = [obj(name) for name in FULL]

    assert levels.count_finding(current, previous).status == "ok"


def _expected() -> Expected:
    return Expected("checksum", "SHA256", "c3RvcmVk")


def test_checksum_mismatch_names_object_and_both_values():
    scans = [
        scan("trm/users.bson.gz", checksum=MATCH),
        scan(
            "trm/jobs.bson.gz", checksum=MISMATCH, expected=_expected(), computed="bmV3"
        ),
    ]

    finding = levels.checksum_finding(scans)

    assert finding.status == "critical"
    assert finding.message == (
        "1 of 2 objects differ from their checksums: trm/jobs.bson.gz does not "
        "match its stored SHA256 checksum (stored c3RvcmVk, computed bmV3)"
    )
    assert finding.details["mismatched"][0]["object"] == "trm/jobs.bson.gz"


def test_unverifiable_objects_are_a_warning_with_the_reason():
    scans = [
        scan("trm/users.bson.gz", checksum=MATCH),
        scan("trm/jobs.bson.gz", checksum=UNVERIFIABLE, checksum_note="no checksum"),
    ]

    finding = levels.checksum_finding(scans, "_20250302")

    assert (finding.name, finding.status) == ("checksums_20250302", "warning")
    assert "1 of 2 objects match" in finding.message
    assert "trm/jobs.bson.gz (no checksum)" in finding.message


def test_unreadable_objects_make_checksums_unknown():
    scans = [scan("trm/users.bson.gz", download_error="S3 at x cannot be reached")]

    finding = levels.checksum_finding(scans)

    assert finding.status == "unknown"
    assert "trm/users.bson.gz: S3 at x cannot be reached" in finding.message


def test_gzip_finding_names_the_broken_stream():
    scans = [
        scan("trm/users.bson.gz", gzip=True),
        scan("trm/jobs.bson.gz", gzip=True, gzip_error="the stream ends early"),
        scan("trm/users.bson"),
    ]

    finding = levels.gzip_finding(scans)

    assert finding.status == "critical"
    assert finding.message == (
        "1 of 2 gzip streams are damaged: trm/jobs.bson.gz: the stream ends early"
    )


def _decoded(relative: str, documents: int, **fields) -> ObjectScan:
    result = scan(relative, **fields)
    kind = result.kind
    result.namespaces = {
        kind.namespace: Namespace(kind.database, kind.collection, documents=documents)
    }
    return result


def _meta(relative: str) -> ObjectScan:
    return scan(relative, metadata={"indexes": [{"key": {"_id": 1}}]})


def _backup_scan(scans: list) -> BackupScan:
    return BackupScan(scans=scans)


def test_documents_are_counted_per_collection():
    scans = [
        _decoded("trm/users.bson.gz", 8126),
        _decoded("trm/jobs.bson.gz", 3738),
        _meta("trm/users.metadata.json.gz"),
        _meta("trm/jobs.metadata.json.gz"),
    ]
    collections = levels.collections_of(scans, _backup_scan(scans).metadata())

    finding = levels.documents_finding(scans, collections)

    assert finding.status == "ok"
    assert finding.message == (
        "11,864 documents in 2 collections decode: jobs 3,738, users 8,126"
    )
    assert levels.metadata_finding(scans, collections).status == "ok"


def test_a_cut_document_and_a_broken_gzip_both_stop_decoding():
    scans = [
        _decoded("trm/users.bson.gz", 10, content_error="document 11 is cut off"),
        _decoded("trm/jobs.bson.gz", 5, gzip_error="the gzip stream ends"),
    ]
    collections = levels.collections_of(scans, {})

    finding = levels.documents_finding(scans, collections)

    assert finding.status == "critical"
    assert finding.message == (
        "2 of 2 backup files do not decode: trm/users.bson.gz: document 11 is cut "
        "off; trm/jobs.bson.gz: decoding stopped early: the gzip stream ends"
    )


def test_metadata_problems_name_each_collection():
    scans = [
        _decoded("trm/users.bson.gz", 3),
        _meta("trm/jobs.metadata.json.gz"),
        scan("trm/payments.metadata.json.gz", content_error="not valid JSON"),
    ]
    collections = levels.collections_of(scans, _backup_scan(scans).metadata())

    finding = levels.metadata_finding(scans, collections)

    assert finding.status == "critical"
    assert finding.details["problems"] == [
        "trm/payments.metadata.json.gz: not valid JSON",
        "trm.jobs has metadata but no BSON data file",
        "trm.users has documents but no metadata (no indexes)",
    ]


@pytest.mark.parametrize(
    ("live", "status", "value"),
    [
        (1000, "ok", 0.0),
        (1040, "ok", 3.85),
        (1100, "warning", 9.09),
        (1500, "critical", 33.33),
        (900, "warning", 10.0),
    ],
)
def test_live_counts_within_a_tolerance(live, status, value):
    collections = {"trm.users": {"documents": 1000}, "trm.jobs": {"documents": 50}}

    finding = levels.live_finding(
        collections,
        {"trm.users": live, "trm.jobs": 50},
        Threshold(warning=5, critical=20),
    )

    assert (finding.status, finding.value) == (status, value)
    assert finding.details["live"]["trm.jobs"] == {
        "backup": 50,
        "live": 50,
        "diff_pct": 0.0,
    }


def _run(**fields) -> RestoreRun:
    run = RestoreRun(database="trm_restore_test", dropped=True)
    run.phases = {"metadata": 0.5, "prepare": 0.0, "data": 3.0, "indexes": 1.0}
    for key, value in fields.items():
        setattr(run, key, value)
    return run


def _restore_scan() -> BackupScan:
    return _backup_scan(
        [
            _decoded("trm/users.bson.gz", 100),
            scan(
                "trm/users.metadata.json.gz",
                metadata={"indexes": [{"key": {"_id": 1}}, {"key": {"email": 1}}]},
            ),
        ]
    )


def test_a_restore_with_matching_counts_and_indexes_is_ok_and_timed():
    backup_scan = _restore_scan()
    collections = levels.collections_of(backup_scan.scans, backup_scan.metadata())
    run = _run(
        counts={"trm.users": 100},
        index_keys={"trm.users": [(("_id", 1),), (("email", 1),)]},
    )

    found = levels.restore_findings(run, backup_scan, collections, 4 * 3600)

    assert [(f.name, f.status) for f in found] == [
        ("restore", "ok"),
        ("restore_indexes", "ok"),
        ("restore_time", "ok"),
    ]
    assert found[2].value == 4.5
    assert found[2].to_dict()["critical"] == 14400


def test_a_restore_with_wrong_counts_and_keys_says_which():
    backup_scan = _restore_scan()
    collections = levels.collections_of(backup_scan.scans, backup_scan.metadata())
    run = _run(
        counts={"trm.users": 90},
        index_keys={"trm.users": [(("_id", 1),), (("email", -1),)]},
        dropped=False,
    )

    found = {
        f.name: f for f in levels.restore_findings(run, backup_scan, collections, 3)
    }

    assert found["restore"].message == (
        "The restore into trm_restore_test failed: trm.users: 100 in the backup, "
        "90 restored"
    )
    assert found["restore_indexes"].message == (
        "Restored indexes differ from the backup's metadata: trm.users: missing "
        "email_1; not in the metadata email_-1"
    )
    assert found["restore_time"].status == "critical"
    assert found["restore_cleanup"].status == "warning"


def test_plan_finding_says_what_would_happen():
    plan = {
        "database": "trm_restore_test",
        "server": "mongodb://db:27017/",
        "objects": 12,
        "bytes": 1_988_103,
        "collections": 6,
    }

    finding = levels.plan_finding(plan)

    assert finding.message == (
        "Check mode: would drop trm_restore_test on mongodb://db:27017/, restore 6 "
        "collections from 12 objects (1.99 MB), create their indexes, count, and "
        "drop trm_restore_test again"
    )
