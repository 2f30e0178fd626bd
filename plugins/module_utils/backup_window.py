# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small maintenance-window guard for the restore test.

Deliberately small: weekly windows such as ``Sun 02:00-04:00`` in UTC, nothing
else (no time zones, no "first Sunday of the month"). ``inside_window`` is the
one function callers use, so a fuller window model can replace this file
without touching them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SPEC = re.compile(
    r"^\s*(?P<days>[A-Za-z*,-]+)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*"
    r"(?P<end>\d{1,2}:\d{2})\s*(?:UTC)?\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Window:
    """Weekly window: the days it starts on, its start and its end, in UTC."""

    spec: str
    days: frozenset
    start: int
    end: int

    def contains(self, moment: datetime) -> bool:
        """Tell whether ``moment`` falls in this window; it may pass midnight."""
        moment = moment.astimezone(timezone.utc)
        minute = moment.hour * 60 + moment.minute
        if self.start < self.end:
            return moment.weekday() in self.days and self.start <= minute < self.end
        yesterday = (moment - timedelta(days=1)).weekday()
        started_today = moment.weekday() in self.days and minute >= self.start
        return started_today or (yesterday in self.days and minute < self.end)


def parse_window(spec: str, *, option: str = "maintenance_windows") -> Window:
    """Read ``Sun 02:00-04:00``, ``Sat,Sun 23:00-01:00`` or ``* 00:00-24:00``."""
    found = SPEC.match(str(spec))
    if found is None:
        raise OptionError(
            option, spec, "must look like 'Sun 02:00-04:00' (days, then UTC times)"
        )
    start = _minutes(found.group("start"), spec, option)
    end = _minutes(found.group("end"), spec, option)
    if start == end:
        raise OptionError(option, spec, "starts and ends at the same time")
    return Window(str(spec), _days(found.group("days"), spec, option), start, end)


def inside_window(specs: list, now: datetime) -> Window | None:
    """Return the window ``now`` is in, or None when it is in none of them."""
    for window in (parse_window(spec) for spec in specs):
        if window.contains(now):
            return window
    return None


def _minutes(text: str, spec: str, option: str) -> int:
    hours, minutes = (int(part) for part in text.split(":"))
    if hours == 24 and minutes == 0:
        return 24 * 60
    try:
        moment = time(hours, minutes)
    except ValueError:
        raise OptionError(option, spec, f"has an impossible time {text}") from None
    return moment.hour * 60 + moment.minute


def _days(text: str, spec: str, option: str) -> frozenset:
    if text == "*":
        return frozenset(range(7))
    days: set = set()
    for part in text.lower().split(","):
        first, _dash, last = part.partition("-")
        if first[:3] not in DAYS or (last and last[:3] not in DAYS):
            raise OptionError(option, spec, f"has an unknown day '{part}'")
        low, high = DAYS.index(first[:3]), DAYS.index((last or first)[:3])
        # A range such as Sat-Mon wraps around the end of the week.
        days.update(day % 7 for day in range(low, high + 1 + (7 if high < low else 0)))
    return frozenset(days)
