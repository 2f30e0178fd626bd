"""The failover drill's maintenance window guard."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.k8s_window import (
    parse_moment,
    parse_window,
    window_state,
)

SUNDAY_WINDOW = {"weekdays": ["sunday"], "start": "02:00", "end": "04:00"}


@pytest.mark.parametrize(
    ("spec", "now", "inside", "next_start"),
    [
        # 2024-05-05 is a Sunday.
        (SUNDAY_WINDOW, "2024-05-05T02:00:00Z", True, "2024-05-12T02:00:00+00:00"),
        (SUNDAY_WINDOW, "2024-05-05T03:59:59Z", True, "2024-05-12T02:00:00+00:00"),
        (SUNDAY_WINDOW, "2024-05-05T04:00:00Z", False, "2024-05-12T02:00:00+00:00"),
        (SUNDAY_WINDOW, "2024-05-04T02:30:00Z", False, "2024-05-05T02:00:00+00:00"),
        # Saturday 23:00 to Sunday 01:00, judged just after midnight.
        (
            {"weekdays": ["sat"], "start": "23:00", "end": "01:00"},
            "2024-05-05T00:30:00Z",
            True,
            "2024-05-11T23:00:00+00:00",
        ),
        # Berlin is UTC+2 in May: 02:30 there is 00:30 UTC.
        (
            {**SUNDAY_WINDOW, "timezone": "Europe/Berlin"},
            "2024-05-05T00:30:00Z",
            True,
            "2024-05-12T02:00:00+02:00",
        ),
        (
            {**SUNDAY_WINDOW, "timezone": "-05:00"},
            "2024-05-05T07:30:00Z",
            True,
            "2024-05-12T02:00:00-05:00",
        ),
    ],
)
def test_window_state(spec, now, inside, next_start):
    window = parse_window(spec, option="maintenance_window")
    state = window_state(window, parse_moment(now, "now"))
    assert state.inside is inside
    assert state.next_start.isoformat() == next_start


def test_the_default_is_the_guides_sunday_window():
    window = parse_window(None, option="maintenance_window")
    assert window.label == "Sunday 02:00-04:00 UTC"
    state = window_state(window, datetime(2024, 5, 5, 3, tzinfo=timezone.utc))
    assert state.describe(window) == (
        "Inside the maintenance window Sunday 02:00-04:00 UTC (ends "
        "2024-05-05T04:00+00:00)"
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"weekdays": ["someday"]},
            "Option 'w.weekdays' must be a weekday name, one of ['monday', 'tuesday', "
            "'wednesday', 'thursday', 'friday', 'saturday', 'sunday']; got 'someday'",
        ),
        (
            {"start": "2am"},
            "Option 'w.start' must be a time of day as HH:MM; got '2am'",
        ),
        (
            {"end": "24:00"},
            "Option 'w.end' must be a time of day as HH:MM; got '24:00'",
        ),
        (
            {"start": "02:00", "end": "02:00"},
            "Option 'w' must have an end different from its start; got "
            "{'weekdays': ['sunday'], 'start': '02:00', 'end': '02:00', "
            "'timezone': 'UTC'}",
        ),
        (
            {"timezone": "Mars/Olympus"},
            "Option 'w.timezone' is not a known time zone name; got 'Mars/Olympus'",
        ),
        ({"weekdays": []}, "Option 'w.weekdays' must name at least one day; got []"),
    ],
)
def test_bad_windows(spec, message):
    with pytest.raises(OptionError) as caught:
        parse_window(spec, option="w")
    assert str(caught.value) == message
