"""The log scan's window, timestamps, one-pass tally and coverage."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.k8s import ApiError
from ansible_collections.trm.maintenance.plugins.module_utils.k8s_logs import (
    ScanWindow,
    Tally,
    Target,
    _no_log_yet,
    coverage_finding,
    coverage_of,
    duration_text,
    line_time,
    parse_since,
    read_stream,
    target_record,
    top_patterns,
)
from ansible_collections.trm.maintenance.plugins.module_utils.k8s_patterns import (
    Redactor,
    parse_groups,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    parse_threshold,
)

NOW = datetime(2024, 5, 6, 9, 0, tzinfo=timezone.utc).timestamp()
HOUR = 3600


@pytest.mark.parametrize(
    ("since", "seconds", "text"),
    [
        ("24h", 86400, "24 h"),
        ("90m", 5400, "90 min"),
        ("1d12h", 129600, "36 h"),
        ("3600", 3600, "1 h"),
        ("7d", 604800, "7 d"),
        ("45s", 45, "45 s"),
        ("2024-05-05T09:00:00Z", 86400, "since 2024-05-05T09:00:00Z"),
        ("2024-05-06T10:00:00+02:00", 3600, "since 2024-05-06T08:00:00Z"),
    ],
)
def test_parse_since(since, seconds, text):
    window = parse_since(since, now=NOW)
    assert (window.seconds, window.text, window.end) == (seconds, text, NOW)


@pytest.mark.parametrize(
    ("since", "message"),
    [
        ("0h", "Option 'since' must be a duration above zero; got '0h'"),
        (
            "yesterday",
            "Option 'since' must be an ISO 8601 date and time such as "
            "'2024-06-02T02:30:00+01:00'; got 'yesterday'",
        ),
        (
            "2024-05-07T00:00:00Z",
            "Option 'since' must be in the past; got '2024-05-07T00:00:00Z'",
        ),
    ],
)
def test_bad_windows(since, message):
    with pytest.raises(OptionError) as caught:
        parse_since(since, now=NOW)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (86400, "24 h"),
        (259200, "3 d"),
        (90000, "25 h"),
        (5400, "90 min"),
        (5430, "1.5 h"),
        (30, "30 s"),
    ],
)
def test_duration_text(seconds, text):
    assert duration_text(seconds) == text


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("2024-05-06T09:00:00.123456789Z INFO x", NOW + 0.123456789),
        ("2024-05-06T09:00:00Z INFO x", NOW),
        ("2024-05-06T11:00:00.5+02:00 INFO x", NOW + 0.5),
        ("2024-05-06T04:00:00-05:00 x", NOW),
        ("INFO no stamp", None),
    ],
)
def test_line_time(line, expected):
    assert line_time(line) == (pytest.approx(expected) if expected else None)


def _stamp(offset: float) -> str:
    moment = datetime.fromtimestamp(NOW + offset, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def _tally(start: float) -> Tally:
    return Tally(
        parse_groups([{"name": "errors", "regex": "ERROR"}], top=["errors"]), start
    )


def test_the_tally_drops_lines_before_the_window_and_notes_first_and_last():
    tally = _tally(NOW - HOUR)
    tally.begin_stream()
    tally.feed(f"{_stamp(-2 * HOUR)} ERROR old\n{_stamp(-HOUR - 1)} ERROR old\n")
    tally.feed(f"{_stamp(-HOUR + 5)} INFO first\n{_stamp(-60)} ERROR 12 new\n")
    tally.feed(f"{_stamp(-30)} ERROR 13 new\n")
    tally.end_stream()

    assert tally.counts == [2]
    assert tally.lines == 3
    assert tally.earliest == pytest.approx(NOW - HOUR + 5)
    assert tally.latest == pytest.approx(NOW - 30)
    assert tally.top == {("errors", "ERROR <n> new"): [2, "ERROR 12 new"]}


class _Response:
    """What read_stream needs of an HTTP response: chunks and a release."""

    def __init__(self, body: bytes, size: int) -> None:
        self.chunks = [body[i : i + size] for i in range(0, len(body), size)]
        self.released = False

    def stream(self, _amount: int):
        yield from self.chunks

    def release_conn(self) -> None:
        self.released = True


@pytest.mark.parametrize("size", [1, 7, 64, 100000])
def test_streams_are_cut_at_line_ends_whatever_the_chunks(size):
    body = "".join(f"{_stamp(-i)} ERROR café {i}\n" for i in range(50, 0, -1)).encode()
    body += f"{_stamp(0)} ERROR without a newline".encode()
    response = _Response(body, size)
    tally = _tally(NOW - HOUR)
    read_stream(response, tally)

    assert tally.counts == [51]
    assert tally.lines == 51
    assert tally.bytes == len(body)
    assert response.released
    assert ("errors", "ERROR café <n>") in tally.top


def _target(started: str | None, earliest: float | None) -> Target:
    pod = {"metadata": {"name": "p"}, "status": {"startTime": started}}
    tally = _tally(NOW - 24 * HOUR)
    tally.earliest = earliest
    return Target(pod, "app", tally)


@pytest.mark.parametrize(
    ("started", "earliest", "coverage", "shortfall"),
    [
        ("2024-05-01T00:00:00Z", NOW - 24 * HOUR + 60, 100.0, None),
        ("2024-05-01T00:00:00Z", NOW - 12 * HOUR, 50.0, "log_starts_late"),
        ("2024-05-01T00:00:00Z", NOW - 6 * HOUR, 25.0, "log_starts_late"),
        # A pod six hours old covers six of the 24 hours, whatever its own log.
        ("2024-05-06T03:00:00Z", NOW - 6 * HOUR + 30, 25.0, "pod_younger_than_window"),
        ("2024-05-06T03:00:00Z", NOW - 3 * HOUR, 12.5, "log_starts_late"),
        ("2024-05-06T08:00:00Z", NOW - HOUR + 60, 4.1, "pod_younger_than_window"),
        (None, NOW - 12 * HOUR, 50.0, "log_starts_late"),
        ("2024-05-01T00:00:00Z", None, None, None),
    ],
)
def test_coverage_counts_from_the_window_asked_for(
    started, earliest, coverage, shortfall
):
    window = ScanWindow(NOW - 24 * HOUR, NOW, "24 h")
    cover = coverage_of(_target(started, earliest), window)
    assert cover.share == coverage
    assert cover.shortfall == shortfall


def _read(name: str, started: str, earliest: float) -> Target:
    pod = {"metadata": {"name": name}, "status": {"startTime": started}}
    tally = _tally(NOW - 24 * HOUR)
    tally.earliest = earliest
    return Target(pod, "app", tally)


WARN_BELOW_95 = parse_threshold({"warning": 95, "direction": "below"}, option="c")


def test_pods_younger_than_the_window_make_a_warning_that_names_them():
    window = ScanWindow(NOW - 24 * HOUR, NOW, "24 h")
    targets = [
        _read("trm-app-old", "2024-05-01T00:00:00Z", NOW - 24 * HOUR + 10),
        _read("trm-app-new1", "2024-05-06T03:00:00Z", NOW - 6 * HOUR + 2),
        _read("trm-app-new2", "2024-05-06T06:00:00Z", NOW - 3 * HOUR + 1),
    ]
    finding = coverage_finding(targets, window, WARN_BELOW_95)

    assert finding.status == "warning"
    assert finding.value == 12.5
    assert finding.message == (
        "Log coverage of the 24 h window is 12.5%: 2 of the pods started after the "
        "window began, so their logs cover only part of its 24 h and the earlier "
        "lines went with the pods they replaced (trm-app-new1/app started "
        "2024-05-06T03:00:00Z, 6 h covered, trm-app-new2/app started "
        "2024-05-06T06:00:00Z, 3 h covered)"
    )
    assert finding.details["younger_pods"] == ["trm-app-new1", "trm-app-new2"]
    assert finding.details["shortest"] == "trm-app-new2/app"
    records = [target_record(t, window, []) for t in targets]
    assert [r["coverage_pct"] for r in records] == [100.0, 25.0, 12.5]
    assert [r["covered_hours"] for r in records] == [24.0, 6.0, 3.0]
    assert [r["shortfall"] for r in records] == [
        None,
        "pod_younger_than_window",
        "pod_younger_than_window",
    ]
    assert {r["expected_start"] for r in records} == {"2024-05-05T09:00:00Z"}


def test_a_young_pod_is_no_worse_than_a_warning_but_a_late_log_keeps_its_status():
    window = ScanWindow(NOW - 24 * HOUR, NOW, "24 h")
    threshold = parse_threshold(
        {"warning": 95, "critical": 50, "direction": "below"}, option="c"
    )
    young = [_read("trm-app-new", "2024-05-06T08:00:00Z", NOW - HOUR + 5)]
    late = [_read("trm-app-old", "2024-05-01T00:00:00Z", NOW - 6 * HOUR)]

    assert coverage_finding(young, window, threshold).status == "warning"
    assert coverage_finding(late, window, threshold).status == "critical"
    both = coverage_finding(young + late, window, threshold)
    assert both.status == "critical"
    assert both.message.endswith(
        "; the logs of trm-app-old/app start late for another reason (rotated, or "
        "a restart whose previous log was not read)"
    )
    # A log that starts late but within the thresholds is not named.
    nearly = [_read("trm-app-full", "2024-05-01T00:00:00Z", NOW - 23 * HOUR)]
    quiet = coverage_finding(young + nearly, window, threshold)
    assert quiet.status == "warning"
    assert "start late" not in quiet.message


def test_a_pod_started_minutes_into_the_window_still_covers_it():
    window = ScanWindow(NOW - 24 * HOUR, NOW, "24 h")
    pod = [_read("trm-app-x", "2024-05-05T09:03:00Z", NOW - 24 * HOUR + 200)]
    finding = coverage_finding(pod, window, WARN_BELOW_95)

    assert (finding.status, finding.value) == ("ok", 100.0)
    assert finding.details["younger_pods"] == []


@pytest.mark.parametrize(
    ("status", "message", "previous", "expected"),
    [
        (400, 'previous terminated container "app" in pod "p" not found', True, True),
        (
            400,
            'container "app" in pod "p" is waiting to start: ContainerCreating',
            False,
            True,
        ),
        (400, "something else", False, False),
        (500, "waiting to start", False, False),
    ],
)
def test_missing_logs_are_not_failures(status, message, previous, expected):
    error = ApiError(status, "Bad Request", message)
    assert _no_log_yet(error, previous=previous) is expected


def test_top_patterns_mask_json_and_dict_secrets_in_pattern_and_example():
    tally = _tally(NOW - HOUR)
    tally.begin_stream()
    tally.feed(
        f'{_stamp(-60)} ERROR login {{"user":"bob","password":"hunter2"}} 12\n'
        f"{_stamp(-50)} ERROR call {{'token': 'tk-998877', 'n': 3}}\n"
        f'{_stamp(-40)} ERROR login {{"user":"bob","password":"hunter2"}} 13\n'
    )
    tally.end_stream()
    pod = {"metadata": {"name": "p"}, "status": {}}

    found = top_patterns([Target(pod, "app", tally)], 5, Redactor())

    assert found == [
        {
            "group": "errors",
            "pattern": 'ERROR login {"user":"bob","password":"***"} <n>',
            "count": 2,
            "example": 'ERROR login {"user":"bob","password":"***"} 12',
            "container": "p/app",
        },
        {
            "group": "errors",
            "pattern": "ERROR call {'token': '***', 'n': <n>}",
            "count": 1,
            "example": "ERROR call {'token': '***', 'n': 3}",
            "container": "p/app",
        },
    ]
    assert "hunter2" not in repr(found) and "998877" not in repr(found)
