# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The maintenance window guard of the disruptive k8s modules.

A window is a set of weekdays, a start and an end time of day (an end at or
before the start runs past midnight) in a time zone: the guide's Sunday
02:00-04:00 by default. Times compare as wall-clock times of that zone, as an
operator reads a schedule. This is deliberately small: the collection's general
maintenance window module can take its place, since the drill only needs
``window_state`` to say whether now is inside a window.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)

try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
except ImportError:  # Python 3.8: offsets and UTC only
    ZoneInfo = None
    ZoneInfoNotFoundError = KeyError

WEEKDAYS = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
DEFAULT_WINDOW = {
    "weekdays": ["sunday"],
    "start": "02:00",
    "end": "04:00",
    "timezone": "UTC",
}
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_OFFSET = re.compile(r"^([+-])(\d\d):?(\d\d)$")


@dataclass(frozen=True)
class Window:
    """Weekly recurring window: weekdays, start, length, time zone."""

    weekdays: tuple
    start: time
    length: timedelta
    zone: tzinfo
    label: str


@dataclass(frozen=True)
class WindowState:
    """Where a moment stands against a window."""

    inside: bool
    now: datetime
    ends: datetime | None
    next_start: datetime

    def describe(self, window: Window) -> str:
        """Say it in one sentence."""
        if self.inside:
            ends = _shown(self.ends)
            return f"Inside the maintenance window {window.label} (ends {ends})"
        return (
            f"Outside the maintenance window {window.label}; the next one starts "
            f"{_shown(self.next_start)}"
        )


def _shown(moment: datetime | None) -> str:
    return moment.isoformat(timespec="minutes") if moment else "?"


def parse_window(spec: Any, *, option: str) -> Window:
    """Build a ``Window`` from an option mapping, or raise OptionError."""
    spec = {
        **DEFAULT_WINDOW,
        **{k: v for k, v in (spec or {}).items() if v is not None},
    }
    days = spec["weekdays"]
    if isinstance(days, str):
        days = [days]
    weekdays = tuple(sorted({_weekday(day, f"{option}.weekdays") for day in days}))
    if not weekdays:
        raise OptionError(f"{option}.weekdays", days, "must name at least one day")
    start = _clock(spec["start"], f"{option}.start")
    end = _clock(spec["end"], f"{option}.end")
    length = _length(start, end)
    if not length:
        raise OptionError(option, spec, "must have an end different from its start")
    zone = parse_zone(spec["timezone"], f"{option}.timezone")
    names = ", ".join(WEEKDAYS[day].capitalize() for day in weekdays)
    label = f"{names} {spec['start']}-{spec['end']} {spec['timezone']}"
    return Window(weekdays, start, length, zone, label)


def _weekday(value: Any, option: str) -> int:
    text = str(value).strip().lower()
    for index, name in enumerate(WEEKDAYS):
        if text in (name, name[:3]):
            return index
    raise OptionError(option, value, f"must be a weekday name, one of {list(WEEKDAYS)}")


def _clock(value: Any, option: str) -> time:
    found = _CLOCK.match(str(value).strip())
    if not found:
        raise OptionError(option, value, "must be a time of day as HH:MM")
    return time(int(found[1]), int(found[2]))


def _length(start: time, end: time) -> timedelta:
    minutes = (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)
    return timedelta(minutes=minutes % (24 * 60))


def parse_zone(value: Any, option: str) -> tzinfo:
    """Accept UTC, an offset such as +02:00, or an IANA name such as Europe/Berlin."""
    text = str(value or "UTC").strip()
    if text.upper() in ("UTC", "Z", "GMT"):
        return timezone.utc
    found = _OFFSET.match(text)
    if found:
        sign = -1 if found[1] == "-" else 1
        offset = timedelta(hours=int(found[2]), minutes=int(found[3]))
        return timezone(sign * offset)
    if ZoneInfo is None:
        raise OptionError(
            option, value, "needs Python 3.9 or later; use UTC or an offset like +02:00"
        )
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise OptionError(option, value, "is not a known time zone name") from None


def parse_moment(value: Any, option: str) -> datetime:
    """Parse an ISO 8601 date and time; a time without zone is UTC."""
    text = re.sub(r"Z$", "+00:00", str(value).strip())
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise OptionError(option, value, "must be an ISO 8601 date and time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def window_state(window: Window, now: datetime) -> WindowState:
    """Tell whether ``now`` is inside the window, when it ends and the next starts."""
    local = now.astimezone(window.zone)
    for start in _starts(window, local.date() - timedelta(days=1), days=2):
        if start <= local < start + window.length:
            nxt = _next_start(window, local)
            return WindowState(True, local, start + window.length, nxt)
    return WindowState(False, local, None, _next_start(window, local))


def _starts(window: Window, first: date, *, days: int) -> list:
    candidates = (first + timedelta(days=offset) for offset in range(days))
    return [
        datetime.combine(day, window.start, tzinfo=window.zone)
        for day in candidates
        if day.weekday() in window.weekdays
    ]


def _next_start(window: Window, local: datetime) -> datetime:
    return next(s for s in _starts(window, local.date(), days=8) if s > local)
