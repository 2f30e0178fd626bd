"""The restore test's small maintenance-window guard."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils.backup_window import (
    inside_window,
    parse_window,
)
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)

# 2025-03-09 is a Sunday.
SUNDAY = datetime(2025, 3, 9, tzinfo=timezone.utc)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in the week of 2025-03-03 (Monday) to 2025-03-09 (Sunday)."""
    return datetime(2025, 3, day, hour, minute, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("spec", "moment", "inside"),
    [
        ("Sun 02:00-04:00", at(9, 2, 0), True),
        ("Sun 02:00-04:00", at(9, 3, 59), True),
        ("Sun 02:00-04:00", at(9, 4, 0), False),
        ("Sun 02:00-04:00", at(9, 1, 59), False),
        ("Sun 02:00-04:00", at(8, 3, 0), False),
        ("sat,sun 23:00-01:00", at(8, 23, 30), True),
        ("sat,sun 23:00-01:00", at(9, 0, 30), True),
        ("sat,sun 23:00-01:00", at(10, 0, 30), True),
        ("sat,sun 23:00-01:00", at(7, 0, 30), False),
        ("Mon-Fri 09:00-17:00 UTC", at(5, 12), True),
        ("Mon-Fri 09:00-17:00", at(8, 12), False),
        ("Sat-Mon 00:00-24:00", at(3, 12), True),
        ("Sat-Mon 00:00-24:00", at(4, 12), False),
        ("* 00:00-24:00", at(6, 23, 59), True),
    ],
)
def test_window_contains(spec, moment, inside):
    assert parse_window(spec).contains(moment) is inside


def test_a_moment_in_another_time_zone_is_judged_in_utc():
    from datetime import timedelta

    plus_two = timezone(timedelta(hours=2))
    moment = datetime(2025, 3, 9, 5, 0, tzinfo=plus_two)  # 03:00 UTC

    assert parse_window("Sun 02:00-04:00").contains(moment)


def test_inside_window_returns_the_matching_window():
    specs = ["Sat 02:00-04:00", "Sun 02:00-04:00"]

    assert inside_window(specs, at(9, 3)).spec == "Sun 02:00-04:00"
    assert inside_window(specs, at(9, 5)) is None
    assert inside_window([], at(9, 3)) is None


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("Sunday", "must look like"),
        ("Funday 02:00-04:00", "unknown day"),
        ("Sun 25:00-26:00", "impossible time 25:00"),
        ("Sun 02:00-02:00", "same time"),
        ("Sun 02:61-03:00", "impossible time"),
    ],
)
def test_bad_windows_name_the_option(spec, problem):
    with pytest.raises(OptionError, match=f"Option 'maintenance_windows' .*{problem}"):
        parse_window(spec)
