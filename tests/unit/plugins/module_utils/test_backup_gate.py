"""The restore test's window gate on the shared window model."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils.backup_gate import (
    Gate,
    Passage,
)
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)

WEEKLY_LONDON = {
    "name": "weekly",
    "schedule": "weekly",
    "weekday": "sunday",
    "start": "02:00",
    "duration": "2h",
    "timezone": "Europe/London",
}
MONTHLY = {"name": "monthly", "schedule": "monthly"}
GUIDE = [{"schedule": "weekly"}, {"schedule": "monthly"}, {"schedule": "quarterly"}]


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("params", "now", "passage"),
    [
        # 2025-03-09 is a Sunday in GMT, 2025-06-01 one in BST.
        (
            {"maintenance_windows": [WEEKLY_LONDON]},
            utc(2025, 3, 9, 2, 30),
            Passage(
                True,
                "maintenance_windows",
                "Inside the weekly window (Sun 2025-03-09 02:00-04:00 GMT), "
                "1 h 30 min left",
            ),
        ),
        (
            {"maintenance_windows": [WEEKLY_LONDON]},
            utc(2025, 6, 1, 1, 30),
            Passage(
                True,
                "maintenance_windows",
                "Inside the weekly window (Sun 2025-06-01 02:00-04:00 BST), "
                "1 h 30 min left",
            ),
        ),
        (
            {"maintenance_windows": [WEEKLY_LONDON]},
            utc(2025, 6, 1, 3, 30),
            Passage(
                False,
                "maintenance_windows",
                "Outside the maintenance windows (weekly); the next, weekly, opens "
                "Sun 2025-06-08 02:00 BST (2025-06-08T01:00:00Z), in 6 d 21 h",
            ),
        ),
        # The first Sunday of April 2025 is the 6th: the quarterly window
        # (02:00 for 8 h) outlasts the weekly and the monthly ones.
        (
            {"maintenance_windows": GUIDE},
            utc(2025, 4, 6, 7, 0),
            Passage(
                True,
                "maintenance_windows",
                "Inside the quarterly window (Sun 2025-04-06 02:00-10:00 UTC), "
                "3 h left",
            ),
        ),
        (
            {"maintenance_windows": [MONTHLY]},
            utc(2025, 3, 9, 5, 0),
            Passage(
                False,
                "maintenance_windows",
                "Outside the maintenance windows (monthly); the next, monthly, "
                "opens Sun 2025-04-06 02:00 UTC, in 27 d 21 h",
            ),
        ),
        (
            {"maintenance_windows": [MONTHLY], "allow_outside_window": True},
            utc(2025, 3, 9, 5, 0),
            Passage(
                True,
                "allow_outside_window",
                "Outside the maintenance windows (monthly); the next, monthly, "
                "opens Sun 2025-04-06 02:00 UTC, in 27 d 21 h; allow_outside_window "
                "overrides them",
            ),
        ),
        # A time zone for the windows that name none.
        (
            {
                "maintenance_windows": [{"schedule": "weekly"}],
                "maintenance_timezone": "America/New_York",
            },
            utc(2025, 3, 2, 7, 15),
            Passage(
                True,
                "maintenance_windows",
                "Inside the weekly window (Sun 2025-03-02 02:00-04:00 EST), "
                "1 h 45 min left",
            ),
        ),
        (
            {"allow_outside_window": True},
            utc(2025, 3, 9, 5, 0),
            Passage(
                True,
                "allow_outside_window",
                "allow_outside_window is set; no window given",
            ),
        ),
        (
            {},
            utc(2025, 3, 9, 5, 0),
            Passage(
                True,
                None,
                "No maintenance_windows are given, so the restore runs when asked",
            ),
        ),
        (
            {
                "window_decision": {
                    "by": "maintenance_guard",
                    "open": True,
                    "reason": "Inside the monthly window",
                }
            },
            utc(2025, 3, 9, 5, 0),
            Passage(
                True,
                "maintenance_guard",
                "maintenance_guard allowed the restore: Inside the monthly window",
            ),
        ),
        (
            {"window_decision": {"by": "maintenance_guard", "open": False}},
            utc(2025, 3, 2, 2, 30),
            Passage(
                False, "maintenance_guard", "maintenance_guard refused the restore"
            ),
        ),
    ],
)
def test_the_gate_says_whether_and_why(params, now, passage):
    assert Gate.from_params(params).judge(now) == passage


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"maintenance_windows": [42]},
            "Option 'maintenance_windows[0]' must be a mapping with a schedule",
        ),
        (
            {"maintenance_windows": [{"schedule": "weekly", "timezone": "Mars/Base"}]},
            "Option 'maintenance_windows[0].timezone' is not a known IANA time zone",
        ),
        (
            {"maintenance_windows": [{"schedule": "daily"}]},
            "Option 'maintenance_windows[0].schedule' must be one of weekly, "
            "monthly, quarterly; got 'daily'",
        ),
        (
            {"maintenance_timezone": "Nowhere"},
            "Option 'maintenance_timezone' is not a known IANA time zone",
        ),
        (
            {"window_decision": {"open": "yes"}},
            "Option 'window_decision' must be a mapping with open (true or false) "
            "and reason; got {'open': 'yes'}",
        ),
        (
            {
                "window_decision": {"open": True},
                "maintenance_windows": [MONTHLY],
            },
            "Option 'window_decision' cannot be combined with maintenance_windows "
            "or allow_outside_window",
        ),
        (
            {"window_decision": {"open": True}, "allow_outside_window": True},
            "Option 'window_decision' cannot be combined with maintenance_windows "
            "or allow_outside_window",
        ),
    ],
)
def test_bad_window_options_name_the_option(params, message):
    with pytest.raises(OptionError) as raised:
        Gate.from_params(params)

    assert str(raised.value).startswith(message)
