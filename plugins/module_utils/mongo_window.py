# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A weekly maintenance window, as MongoDB compaction's guard reads it.

Deliberately small: one weekday, a start and an end time, and a time zone. The
guard calls ``window_state(spec, now, option=...)`` only, so that a fuller
window model (first Sunday of the month, quarters, blackout dates) can replace
this file without touching its callers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone, tzinfo
from typing import Any

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)

try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
except ImportError:  # Python 3.8: fixed offsets and UTC only
    ZoneInfo = None
    ZoneInfoNotFoundError = KeyError

DAYS = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
DEFAULT_WINDOW = {"day": "sunday", "start": "02:00", "end": "04:00", "timezone": "UTC"}
_CLOCK = re.compile(r"^(?P<hour>[01]?\d|2[0-3]):(?P<minute>[0-5]\d)$")
_OFFSET = re.compile(r"^(?:UTC)?(?P<sign>[+-])(?P<hour>\d{1,2}):?(?P<minute>\d{2})$")


@dataclass(frozen=True)
class Window:
    """A weekly window: it opens on ``day`` at ``start`` and lasts until ``end``."""

    day: int
    start: time
    end: time
    zone: tzinfo
    zone_name: str

    @property
    def length(self) -> timedelta:
        """How long the window stays open; an end at or before the start is the
        next day's."""
        start = timedelta(hours=self.start.hour, minutes=self.start.minute)
        end = timedelta(hours=self.end.hour, minutes=self.end.minute)
        return end - start if end > start else end - start + timedelta(days=1)

    def describe(self) -> str:
        """Say the window in words, as in ``Sunday 02:00-04:00 UTC``."""
        span = f"{self.start:%H:%M}-{self.end:%H:%M}"
        return f"{DAYS[self.day].capitalize()} {span} {self.zone_name}"


@dataclass(frozen=True)
class WindowState:
    """Whether the window is open at a moment, and when it next opens."""

    open: bool
    description: str
    opens_at: datetime
    closes_at: datetime

    def as_dict(self) -> dict:
        """Return the state as it appears in a module result."""
        return {
            "open": self.open,
            "window": self.description,
            "opens_at": self.opens_at.isoformat(),
            "closes_at": self.closes_at.isoformat(),
        }


def parse_window(spec: Any, *, option: str) -> Window:
    """Build a ``Window`` from ``{day, start, end, timezone}``, or raise."""
    if not isinstance(spec, dict):
        raise OptionError(
            option, spec, "must be a mapping of day, start, end, timezone"
        )
    unknown = sorted(set(spec) - set(DEFAULT_WINDOW))
    if unknown:
        raise OptionError(option, spec, f"has unknown keys {unknown}")
    merged = {**DEFAULT_WINDOW, **{k: v for k, v in spec.items() if v is not None}}
    day = str(merged["day"]).lower()
    if day not in DAYS:
        raise OptionError(f"{option}.day", merged["day"], f"must be one of {DAYS}")
    start = _clock(merged["start"], f"{option}.start")
    end = _clock(merged["end"], f"{option}.end")
    zone_name = str(merged["timezone"])
    zone = _zone(zone_name, f"{option}.timezone")
    return Window(DAYS.index(day), start, end, zone, zone_name)


def _clock(value: Any, option: str) -> time:
    match = _CLOCK.match(str(value))
    if not match:
        raise OptionError(option, value, "must be a time of day as HH:MM")
    return time(int(match.group("hour")), int(match.group("minute")))


def _zone(name: str, option: str) -> tzinfo:
    if name.upper() in ("UTC", "Z", "GMT"):
        return timezone.utc
    offset = _OFFSET.match(name)
    if offset:
        sign = -1 if offset.group("sign") == "-" else 1
        delta = timedelta(
            hours=int(offset.group("hour")), minutes=int(offset.group("minute"))
        )
        return timezone(sign * delta)
    if ZoneInfo is None:
        raise OptionError(option, name, "needs Python 3.9 or later; use UTC or +HH:MM")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise OptionError(
            option, name, "is not a known time zone such as Europe/Berlin"
        ) from None


def window_state(spec: Any, now: datetime, *, option: str) -> WindowState:
    """Tell whether the window of ``spec`` is open at ``now``."""
    window = parse_window(spec, option=option)
    local = now.astimezone(window.zone)
    # The latest opening at or before now decides; it is at most a week back.
    back = (local.weekday() - window.day) % 7
    opening = _opening(window, local.date() - timedelta(days=back))
    if opening > local:
        opening = _opening(window, opening.date() - timedelta(days=7))
    closes = opening + window.length
    if local < closes:
        return WindowState(True, window.describe(), opening, closes)
    following = _opening(window, opening.date() + timedelta(days=7))
    return WindowState(False, window.describe(), following, following + window.length)


def _opening(window: Window, day: Any) -> datetime:
    return datetime.combine(day, window.start, tzinfo=window.zone)
