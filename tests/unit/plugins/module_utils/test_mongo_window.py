"""The maintenance window guard of MongoDB compaction."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.mongo_window import (
    window_state,
)

SUNDAY_0200_0400 = {
    "day": "sunday",
    "start": "02:00",
    "end": "04:00",
    "timezone": "UTC",
}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("now", "is_open", "opens_at"),
    [
        ("2025-03-09T02:00:00", True, "2025-03-09T02:00:00+00:00"),  # Sunday, start
        ("2025-03-09T03:59:59", True, "2025-03-09T02:00:00+00:00"),
        ("2025-03-09T04:00:00", False, "2025-03-16T02:00:00+00:00"),  # end excluded
        ("2025-03-09T01:59:59", False, "2025-03-09T02:00:00+00:00"),
        ("2025-03-12T03:00:00", False, "2025-03-16T02:00:00+00:00"),  # Wednesday
        ("2025-03-15T23:00:00", False, "2025-03-16T02:00:00+00:00"),  # Saturday
    ],
)
def test_sunday_window_in_utc(now, is_open, opens_at):
    state = window_state(SUNDAY_0200_0400, utc(now), option="maintenance_window")

    assert state.open is is_open
    assert state.opens_at.isoformat() == opens_at
    assert state.description == "Sunday 02:00-04:00 UTC"


def test_window_in_a_named_zone_uses_local_time():
    spec = {**SUNDAY_0200_0400, "timezone": "Europe/Berlin"}
    # 01:30 UTC on a winter Sunday is 02:30 in Berlin: open.
    inside = window_state(spec, utc("2025-03-09T01:30:00"), option="w")
    outside = window_state(spec, utc("2025-03-09T03:30:00"), option="w")

    assert inside.open is True
    assert inside.closes_at.isoformat() == "2025-03-09T04:00:00+01:00"
    assert outside.open is False


def test_window_crossing_midnight_belongs_to_its_start_day():
    spec = {"day": "saturday", "start": "23:00", "end": "01:00", "timezone": "+02:00"}

    assert window_state(spec, utc("2025-03-08T22:30:00"), option="w").open is True
    assert window_state(spec, utc("2025-03-08T23:30:00"), option="w").open is False
    assert window_state(spec, utc("2025-03-08T20:30:00"), option="w").open is False


def test_missing_keys_take_the_guides_window():
    state = window_state({"timezone": "UTC"}, utc("2025-03-09T02:30:00"), option="w")
    assert (state.open, state.description) == (True, "Sunday 02:00-04:00 UTC")


@pytest.mark.parametrize(
    ("spec", "option"),
    [
        ({"day": "sun"}, "maintenance_window.day"),
        ({"start": "25:00"}, "maintenance_window.start"),
        ({"end": "4pm"}, "maintenance_window.end"),
        ({"timezone": "Mars/Olympus"}, "maintenance_window.timezone"),
        ({"days": ["sunday"]}, "maintenance_window"),
        ("sunday", "maintenance_window"),
    ],
)
def test_bad_window_names_the_option(spec, option):
    with pytest.raises(OptionError) as raised:
        window_state(spec, utc("2025-03-09T02:30:00"), option="maintenance_window")
    assert raised.value.option == option
