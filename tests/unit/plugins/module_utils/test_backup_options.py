"""Options of s3_backup_verify: durations, dates, levels, the scratch allow-list."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils.backup import (
    Options,
    metric_name,
    parse_duration,
    prefix_for,
    resolve_day,
)
from ansible_collections.trm.maintenance.plugins.module_utils.backup_restore import (
    check_scratch_name,
    shown_uri,
)
from ansible_collections.trm.maintenance.plugins.module_utils.backup_scan import (
    Kind,
    classify,
    restorable,
)
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)

NOW = datetime(2025, 3, 9, 20, 15, tzinfo=timezone.utc)
BASE = {"bucket": "trm-backups", "prefix": "mongodb/%Y%m%d/"}


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("90", 90.0),
        (90, 90.0),
        ("45m", 2700.0),
        ("26h", 93600.0),
        ("1.5h", 5400.0),
        ("2d", 172800.0),
        ("1w", 604800.0),
        (" 30 s ", 30.0),
        ("0", None),
        ("", None),
        (None, None),
    ],
)
def test_durations(value, seconds):
    assert parse_duration(value, option="max_age") == seconds


@pytest.mark.parametrize("value", ["26 hours", "-1h", "h", "1y"])
def test_bad_durations_name_the_option(value):
    with pytest.raises(OptionError, match="Option 'max_age' must be a number"):
        parse_duration(value, option="max_age")


@pytest.mark.parametrize(
    ("spec", "day"),
    [
        ("today", date(2025, 3, 9)),
        ("TODAY", date(2025, 3, 9)),
        (None, date(2025, 3, 9)),
        ("yesterday", date(2025, 3, 8)),
        ("latest", None),
        ("2025-02-28", date(2025, 2, 28)),
        ("20250228", date(2025, 2, 28)),
    ],
)
def test_dates(spec, day):
    assert resolve_day(spec, NOW) == day


def test_today_is_the_utc_date():
    from datetime import timedelta

    late_in_new_york = datetime(2025, 3, 9, 22, 0, tzinfo=timezone(timedelta(hours=-5)))

    assert resolve_day("today", late_in_new_york) == date(2025, 3, 10)


@pytest.mark.parametrize("spec", ["tomorrow", "2025-13-01", "09/03/2025"])
def test_bad_dates_name_the_option(spec):
    with pytest.raises(OptionError, match="Option 'date' must be today"):
        resolve_day(spec, NOW)


@pytest.mark.parametrize(
    ("template", "prefix"),
    [
        ("mongodb/%Y%m%d/", "mongodb/20250309/"),
        ("dumps/%Y/%m/%d/trm-", "dumps/2025/03/09/trm-"),
        ("trm/trm-%Y%m%d.archive.gz", "trm/trm-20250309.archive.gz"),
        ("latest/", "latest/"),
    ],
)
def test_prefix_templates(template, prefix):
    assert prefix_for(template, date(2025, 3, 9)) == prefix


def test_level_five_implies_level_four_and_needs_a_target():
    with pytest.raises(OptionError, match="Option 'restore_uri' is required"):
        Options.from_params({**BASE, "levels": [5]})

    options = Options.from_params(
        {
            **BASE,
            "levels": [5],
            "restore_uri": "mongodb://127.0.0.1:1/",
            "restore_database": "trm_restore_test",
            "restore_allowed_databases": ["*_restore_test"],
        }
    )

    assert options.levels == frozenset({4, 5})
    assert options.max_age is None


@pytest.mark.parametrize(
    ("params", "option"),
    [
        ({"min_size_bytes": -1}, "min_size_bytes"),
        ({"history": -2}, "history"),
        ({"deep_ages": [0]}, "deep_ages"),
        ({"size_band": {"warning": 1, "critical": 2}}, "size_band"),
        ({"count_tolerance": {"normal": [0, 5]}}, "count_tolerance"),
        ({"maintenance_windows": ["whenever"]}, "maintenance_windows"),
        ({"max_restore_time": "soon"}, "max_restore_time"),
    ],
)
def test_bad_options_name_the_option(params, option):
    with pytest.raises(OptionError, match=f"Option '{option}"):
        Options.from_params({**BASE, **params})


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("trm", "matches no pattern"),
        ("admin", "system database"),
        ("trm.restore_test", "not a valid database name"),
        ("", "not a valid database name"),
        ("x" * 64, "not a valid database name"),
    ],
)
def test_scratch_database_refusals(name, problem):
    with pytest.raises(OptionError, match=f"Option 'restore_database' .*{problem}"):
        check_scratch_name(name, ["*_restore_test", "adm*"], [])


def test_scratch_database_may_not_be_a_source_of_the_backup():
    with pytest.raises(OptionError, match="is a database of the backup itself"):
        check_scratch_name("trm_restore_test", ["*"], ["trm_restore_test"])

    check_scratch_name("trm_restore_test", ["*_restore_test"], ["trm"])


@pytest.mark.parametrize(
    ("relative", "kind"),
    [
        ("trm/users.bson.gz", Kind("bson", "trm", "users", True)),
        ("trm/users.bson", Kind("bson", "trm", "users", False)),
        ("trm/users.metadata.json.gz", Kind("metadata", "trm", "users", True)),
        ("trm/a%2Fb.bson", Kind("bson", "trm", "a/b", False)),
        ("trm/system.views.metadata.json", Kind("metadata", "trm", "system.views")),
        ("oplog.bson", Kind("oplog")),
        ("trm.archive.gz", Kind("archive", gz=True)),
        ("trm-20250309.agz", Kind("archive", gz=True)),
        ("trm.archive", Kind("archive")),
        ("README.txt", Kind("other")),
        ("a/b/c.bson", Kind("other")),
    ],
)
def test_classify_backup_files(relative, kind):
    assert classify(relative) == kind


@pytest.mark.parametrize(
    ("namespace", "expected"),
    [
        ("trm.users", True),
        ("trm.system.views", False),
        ("admin.system.users", False),
        ("config.settings", False),
        ("oplog", False),
    ],
)
def test_only_application_collections_are_restored(namespace, expected):
    assert restorable(namespace) is expected


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("mongodb://u:secret@db:27017/?tls=true", "mongodb://u:***@db:27017/?tls=true"),
        ("mongodb://127.0.0.1:27017/", "mongodb://127.0.0.1:27017/"),
        (
            "mongodb+srv://u:p%40ss@cluster.example.org/",
            "mongodb+srv://u:***@cluster.example.org/",
        ),
    ],
)
def test_uris_are_shown_without_passwords(uri, shown):
    assert shown_uri(uri) == shown


def test_metric_names():
    assert metric_name("trm.users") == "trm_users"
    assert metric_name("Trm.API-keys") == "trm_api_keys"


def test_an_unusable_endpoint_fails_and_names_the_option():
    from ansible_collections.trm.maintenance.plugins.module_utils.backup import (
        run_s3_backup_verify,
    )

    with pytest.raises(OptionError, match="Option 'endpoint_url' is not usable"):
        run_s3_backup_verify({**BASE, "endpoint_url": "not a url"})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"retries": -1}, "Option 'retries' must be 0 or more; got -1"),
        (
            {"timeout": -1.0},
            "Option 'timeout' must be a number of seconds above 0; got -1.0",
        ),
        ({"timeout": 0}, "Option 'timeout' must be a number of seconds above 0; got 0"),
    ],
)
def test_bad_s3_settings_fail_naming_the_option_not_the_endpoint(params, message):
    from ansible_collections.trm.maintenance.plugins.module_utils.backup import (
        run_s3_backup_verify,
    )

    with pytest.raises(OptionError) as raised:
        run_s3_backup_verify({**BASE, "endpoint_url": "http://127.0.0.1:9", **params})

    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("params", "attempts", "seconds"),
    [({}, 3, 30.0), ({"retries": 0, "timeout": 2.5}, 1, 2.5)],
)
def test_s3_settings_reach_botocore(params, attempts, seconds):
    from ansible_collections.trm.maintenance.plugins.module_utils.backup_s3 import (
        S3Settings,
        make_client,
    )

    config = make_client(S3Settings.from_params({**BASE, **params})).meta.config

    assert config.retries["total_max_attempts"] == attempts
    assert (config.connect_timeout, config.read_timeout) == (seconds, seconds)
