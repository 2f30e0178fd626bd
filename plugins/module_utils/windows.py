# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Maintenance windows as data: parse them and tell where a moment stands.

A window opens on a local date and time in its own time zone and stays open for
an elapsed duration. On a day when the clocks change, a start time that does not
exist (the hour skipped in spring) moves forward by the length of the change, and
a start time that happens twice (the hour repeated in autumn) is the first of the
two; the window still lasts its full duration, so its end on the wall clock moves
by the change.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import MAXYEAR, date, datetime, time, timedelta, timezone, tzinfo
from typing import Any, Iterator

from ansible_collections.trm.maintenance.plugins.module_utils.checks import (
    CheckResult,
    Finding,
)
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    MaintenanceError,
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    OK,
    WARNING,
)

try:
    from zoneinfo import ZoneInfo
except ImportError:  # Python 3.8 has no zoneinfo; the backport is the same API.
    try:
        from backports.zoneinfo import ZoneInfo
    except ImportError:
        ZoneInfo = None

WEEKLY, MONTHLY, QUARTERLY = "weekly", "monthly", "quarterly"
SCHEDULES = (WEEKLY, MONTHLY, QUARTERLY)
WEEKDAYS = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
ALL_MONTHS = tuple(range(1, 13))
QUARTER_MONTHS = (1, 4, 7, 10)
LAST = -1
ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", LAST: "last"}
UTC_NAME = "UTC"
SUBJECT = "Maintenance window"
FINDING = "maintenance_window"

# The guide's windows: every Sunday 02:00-04:00, the first Sunday of the month
# for four hours, the first Sunday of each quarter for eight.
SCHEDULE_DEFAULTS = {
    WEEKLY: {"weekday": "sunday", "start": "02:00", "duration": "2h"},
    MONTHLY: {"weekday": "sunday", "week": 1, "start": "02:00", "duration": "4h"},
    QUARTERLY: {
        "months": list(QUARTER_MONTHS),
        "weekday": "sunday",
        "week": 1,
        "start": "02:00",
        "duration": "8h",
    },
}
DEFAULT_WINDOWS = [
    {"name": schedule, "schedule": schedule, **SCHEDULE_DEFAULTS[schedule]}
    for schedule in SCHEDULES
]
_COMMON_KEYS = {"name", "schedule", "weekday", "start", "duration", "timezone"}
_KEYS = {
    WEEKLY: _COMMON_KEYS,
    MONTHLY: _COMMON_KEYS | {"week"},
    QUARTERLY: _COMMON_KEYS | {"week", "months"},
}

# A window is at most a week long, so one still open began at most eight local
# days ago (a day more for the time zone's offset).
MAX_DURATION = timedelta(days=7)
_LOOKBACK = timedelta(days=8)
# A fifth Sunday of February comes round once in 28 years; look that far ahead.
_HORIZON_MONTHS = 12 * 29

_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
# The operators' shorthand: "Sun 02:00-04:00", "first Sun 02:00-06:00".
_SHORTHAND_WEEKS = {
    **{word: number for number, word in ORDINALS.items()},
    "1st": 1,
    "2nd": 2,
    "3rd": 3,
    "4th": 4,
    "5th": 5,
}
_SHORTHAND = re.compile(
    rf"^(?:(?P<week>{'|'.join(_SHORTHAND_WEEKS)})\s)?(?P<weekday>[a-z]+)\s"
    r"(?P<start>\d{1,2}:\d{2})\s?-\s?(?P<end>\d{1,2}:\d{2})$",
    re.IGNORECASE,
)
_SHORTHAND_HINT = (
    'a shorthand such as "Sun 02:00-04:00" (every week) or '
    '"first Sun 02:00-06:00" (first to fifth, or last, of the month)'
)
_DURATION = re.compile(
    r"^(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?$", re.IGNORECASE
)


# Parsing


def load_zone(name: Any, option: str) -> tzinfo:
    """Return the time zone called ``name`` (IANA), or raise naming ``option``."""
    if not isinstance(name, str) or not name.strip():
        raise OptionError(option, name, "must be an IANA time zone name")
    if name == UTC_NAME:
        return timezone.utc
    if ZoneInfo is None:
        raise MaintenanceError(
            f"Time zone '{name}' ({option}) needs the zoneinfo module, which Python "
            "3.9 and later include; on Python 3.8 install backports.zoneinfo, or "
            "use UTC"
        )
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):
        raise OptionError(
            option,
            name,
            "is not a known IANA time zone name such as 'Europe/London' (names are "
            "case-sensitive; if the name is right, install the tzdata package)",
        ) from None


def parse_weekday(value: Any, option: str) -> int:
    """Return Monday=0 .. Sunday=6 for a day name or its three-letter form."""
    text = value.strip().lower() if isinstance(value, str) else None
    for index, name in enumerate(WEEKDAYS):
        if text in (name, name[:3]):
            return index
    raise OptionError(option, value, "must be a day of the week such as 'sunday'")


def parse_start(value: Any, option: str) -> time:
    """Return the local start time of ``"HH:MM"`` (or minutes after midnight)."""
    # YAML 1.1 reads an unquoted 02:00 as the number 120, minutes after midnight.
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1440:
        return time(value // 60, value % 60)
    match = _CLOCK.match(value.strip()) if isinstance(value, str) else None
    if match and int(match.group(1)) < 24 and int(match.group(2)) < 60:
        return time(int(match.group(1)), int(match.group(2)))
    raise OptionError(option, value, 'must be a time of day as "HH:MM", in quotes')


def parse_duration(value: Any, option: str) -> timedelta:
    """Return the duration of ``"2h"``, ``"90m"``, ``"1h30m"``, ``"1d"`` or minutes."""
    minutes = _duration_minutes(value)
    if minutes is None:
        raise OptionError(
            option, value, "must be a duration such as '2h', '90m' or '1h30m'"
        )
    if not 0 < minutes <= MAX_DURATION.total_seconds() // 60:
        raise OptionError(option, value, "must be longer than zero, at most 7 days")
    return timedelta(minutes=minutes)


def _duration_minutes(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = value.strip() if isinstance(value, str) else ""
    if text.isdigit():
        return int(text)
    match = _DURATION.match(text)
    if not text or not match:
        return None
    days, hours, minutes = (int(group or 0) for group in match.groups())
    return days * 1440 + hours * 60 + minutes


def parse_week(value: Any, option: str) -> int:
    """Return 1..5 for the nth such weekday of the month, or LAST."""
    if isinstance(value, str) and value.strip().lower() == "last":
        return LAST
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5:
        return value
    raise OptionError(
        option, value, "must be 1 to 5 (the nth such weekday of the month) or 'last'"
    )


def parse_months(value: Any, option: str) -> tuple:
    """Return the sorted month numbers of a list of numbers or English names."""
    if not isinstance(value, list) or not value:
        raise OptionError(option, value, "must be a list of months, such as [1, 4]")
    return tuple(
        sorted({_month(item, f"{option}[{index}]") for index, item in enumerate(value)})
    )


def _month(value: Any, option: str) -> int:
    if isinstance(value, str):
        text = value.strip().lower()
        if text.isdigit():
            value = int(text)
        for index, name in enumerate(MONTHS, start=1):
            if text in (name, name[:3]):
                return index
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 12:
        return value
    raise OptionError(option, value, "must be a month, 1 to 12 or a name")


def parse_windows(
    specs: Any, *, default_timezone: str = UTC_NAME, option: str = "windows"
) -> list:
    """Return the windows of ``specs``; names must be unique."""
    if not isinstance(specs, list) or not specs:
        raise OptionError(option, specs, "must be a non-empty list of windows")
    windows = [
        parse_window(
            spec, option=f"{option}[{index}]", default_timezone=default_timezone
        )
        for index, spec in enumerate(specs)
    ]
    seen = set()
    for index, window in enumerate(windows):
        if window.name in seen:
            raise OptionError(
                f"{option}[{index}].name", window.name, "is used by another window"
            )
        seen.add(window.name)
    return windows


def parse_window(spec: Any, *, option: str, default_timezone: str = UTC_NAME) -> Window:
    """Return the window of one mapping; unset keys take the guide's defaults.

    A string is the operators' shorthand, see ``parse_shorthand``.
    """
    if isinstance(spec, str):
        return parse_shorthand(spec, option=option, default_timezone=default_timezone)
    if not isinstance(spec, dict):
        raise OptionError(
            option, spec, f"must be a mapping with a schedule, or {_SHORTHAND_HINT}"
        )
    schedule = spec.get("schedule")
    if schedule not in SCHEDULES:
        raise OptionError(
            f"{option}.schedule", schedule, f"must be one of {', '.join(SCHEDULES)}"
        )
    unknown = sorted(set(spec) - _KEYS[schedule])
    if unknown:
        raise OptionError(
            option,
            spec,
            f"has unknown keys {unknown}; a {schedule} window takes "
            f"{sorted(_KEYS[schedule])}",
        )
    given = {key: value for key, value in spec.items() if value is not None}
    return _build_window(
        {**SCHEDULE_DEFAULTS[schedule], **given}, option, default_timezone
    )


def parse_shorthand(
    text: str, *, option: str, default_timezone: str = UTC_NAME
) -> Window:
    """Return the window of ``"Sun 02:00-04:00"`` or ``"first Sun 02:00-06:00"``.

    Without an ordinal the window is weekly; with one (``first`` to ``fifth``,
    ``1st`` to ``5th`` or ``last``) it opens on that weekday of every month. The
    end may be past midnight; the window is named by its normalised text and
    lies in ``default_timezone``.
    """
    words = " ".join(text.split())
    match = _SHORTHAND.match(words)
    if not match:
        raise OptionError(option, text, f"must be {_SHORTHAND_HINT}")
    weekday = parse_weekday(match["weekday"], option)
    start = parse_start(match["start"], option)
    end = parse_start(match["end"], option)
    minutes = (end.hour - start.hour) * 60 + end.minute - start.minute
    if minutes % 1440 == 0:
        raise OptionError(option, text, "must end at another time than it starts")
    week = match["week"]
    return Window(
        name=words,
        schedule=MONTHLY if week else WEEKLY,
        weekday=weekday,
        start=start,
        duration=timedelta(minutes=minutes % 1440),
        timezone=default_timezone,
        zone=load_zone(default_timezone, option),
        week=_SHORTHAND_WEEKS[week.lower()] if week else None,
    )


def _build_window(values: dict, option: str, default_timezone: str) -> Window:
    schedule = values["schedule"]
    zone_name = values.get("timezone") or default_timezone
    week = values.get("week")
    return Window(
        name=_name(values.get("name", schedule), f"{option}.name"),
        schedule=schedule,
        weekday=parse_weekday(values["weekday"], f"{option}.weekday"),
        start=parse_start(values["start"], f"{option}.start"),
        duration=parse_duration(values["duration"], f"{option}.duration"),
        timezone=zone_name,
        zone=load_zone(zone_name, f"{option}.timezone"),
        week=None if week is None else parse_week(week, f"{option}.week"),
        months=parse_months(values["months"], f"{option}.months")
        if "months" in values
        else ALL_MONTHS,
    )


def _name(value: Any, option: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise OptionError(option, value, "must be a non-empty name")
    return value.strip()


def parse_now(value: Any, *, zone: tzinfo, option: str = "now") -> datetime:
    """Return the moment to judge, in UTC: ``value`` (ISO 8601) or the clock."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return datetime.now(timezone.utc)
    moment = value if isinstance(value, datetime) else _iso(value, option)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(timezone.utc)


def _iso(value: Any, option: str) -> datetime:
    text = str(value).strip()
    # Python before 3.11 does not read the Z suffix.
    if text.endswith(("Z", "z")):
        text = f"{text[:-1]}+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise OptionError(
            option,
            value,
            "must be an ISO 8601 date and time such as '2024-06-02T02:30:00+01:00'",
        ) from None


# Windows and their openings


@dataclass(frozen=True)
class Window:
    """A recurring maintenance window in its own time zone."""

    name: str
    schedule: str
    weekday: int
    start: time
    duration: timedelta
    timezone: str
    zone: tzinfo
    week: int | None = None
    months: tuple = ALL_MONTHS

    def days_in_month(self, year: int, month: int) -> list:
        """The local dates of ``year``-``month`` on which the window opens."""
        if month not in self.months:
            return []
        last_day = calendar.monthrange(year, month)[1]
        days = [date(year, month, day) for day in range(1, last_day + 1)]
        days = [day for day in days if day.weekday() == self.weekday]
        if self.week is None:
            return days
        return days[-1:] if self.week == LAST else days[self.week - 1 : self.week]

    def opening(self, day: date) -> Opening:
        """The opening of the window on the local date ``day``."""
        # fold=0: the first of a repeated hour; a skipped hour moves forward.
        local = datetime.combine(day, self.start, tzinfo=self.zone)
        start = local.astimezone(timezone.utc)
        return Opening(self, start, start + self.duration)

    def openings(self, since: date) -> Iterator[Opening]:
        """The openings on or after the local date ``since``, in order."""
        year, month = since.year, since.month
        for _unused in range(_HORIZON_MONTHS):
            for day in self.days_in_month(year, month):
                if day >= since:
                    yield self.opening(day)
            if year == MAXYEAR and month == 12:
                return
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)

    def describe(self) -> str:
        """Say when the window opens, in words."""
        weekday = WEEKDAYS[self.weekday].title()
        when = f"at {self.start:%H:%M} for {span(self.duration)} ({self.timezone})"
        if self.week is None:
            return f"every {weekday} {when}"
        months = "every month"
        if self.months != ALL_MONTHS:
            months = _join([MONTHS[month - 1].title() for month in self.months])
        return f"the {ORDINALS[self.week]} {weekday} of {months} {when}"

    def to_dict(self) -> dict:
        """The window as the result shows it."""
        return {
            "name": self.name,
            "schedule": self.schedule,
            "timezone": self.timezone,
            "description": self.describe(),
        }


@dataclass(frozen=True)
class Opening:
    """One occurrence of a window: its start and end in UTC."""

    window: Window
    start: datetime
    end: datetime

    def contains(self, moment: datetime) -> bool:
        """The start belongs to the window, the end does not."""
        return self.start <= moment < self.end

    def local(self, moment: datetime) -> datetime:
        """``moment`` on the wall clock of the window's time zone."""
        return moment.astimezone(self.window.zone)

    def text(self) -> str:
        """Say the opening in local time, e.g. ``Sun 2024-06-02 02:00-04:00 BST``."""
        start, end = self.local(self.start), self.local(self.end)
        if start.date() == end.date() and start.tzname() == end.tzname():
            return f"{_day(start)} {start:%H:%M}-{end:%H:%M} {end.tzname()}"
        return f"{wall_clock(start)} to {wall_clock(end)}"

    def to_dict(self) -> dict:
        """The opening as the result shows it, in local time and in UTC."""
        return {
            **self.window.to_dict(),
            "start": self.local(self.start).isoformat(timespec="seconds"),
            "end": self.local(self.end).isoformat(timespec="seconds"),
            "start_utc": utc_text(self.start),
            "end_utc": utc_text(self.end),
            "duration_seconds": int(self.window.duration.total_seconds()),
        }


def open_at(windows: list, now: datetime) -> Opening | None:
    """The window open at ``now``; of several, the one that stays open longest."""
    found = [_open(window, now) for window in windows]
    return max((o for o in found if o), key=lambda o: o.end, default=None)


def _open(window: Window, now: datetime) -> Opening | None:
    since = (now - _LOOKBACK).astimezone(window.zone).date()
    for opening in window.openings(since):
        if opening.start > now:
            return None
        if opening.contains(now):
            return opening
    return None


def next_opening(windows: list, now: datetime) -> Opening | None:
    """The next window to open after ``now``; of a tie, the longest."""
    found = [_next(window, now) for window in windows]
    return min(
        (o for o in found if o),
        key=lambda o: (o.start, -o.end.timestamp()),
        default=None,
    )


def _next(window: Window, now: datetime) -> Opening | None:
    # A day back: a start in a skipped hour near midnight moves into today.
    since = now.astimezone(window.zone).date() - timedelta(days=1)
    return next((o for o in window.openings(since) if o.start > now), None)


def select(windows: list, names: list) -> list:
    """The windows named in ``names`` (the option ``require``); empty: all."""
    defined = [window.name for window in windows]
    unknown = [name for name in names if name not in defined]
    if unknown:
        raise OptionError(
            "require",
            names,
            f"names windows that are not defined ({', '.join(map(str, unknown))}); "
            f"defined: {', '.join(defined)}",
        )
    return [window for window in windows if not names or window.name in names]


# Words and times


def span(delta: timedelta) -> str:
    """Say a duration in its two largest units, e.g. ``5 d 18 h`` or ``1 h 30 min``."""
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} s"
    days, rest = divmod(seconds // 60, 1440)
    hours, minutes = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min")]
    while parts[0][0] == 0:
        parts.pop(0)
    return " ".join(f"{count} {unit}" for count, unit in parts[:2] if count)


def utc_text(moment: datetime) -> str:
    """ISO 8601 in UTC with the Z suffix."""
    return f"{moment.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%S}Z"


def wall_clock(moment: datetime) -> str:
    """A local time for people, e.g. ``Sun 2024-06-09 02:00 BST``."""
    return f"{_day(moment)} {moment:%H:%M} {moment.tzname()}"


def _day(moment: datetime) -> str:
    # Day names by hand: strftime's %a follows the locale.
    return f"{WEEKDAYS[moment.weekday()][:3].title()} {moment:%Y-%m-%d}"


def _join(words: list) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


# The check


@dataclass(frozen=True)
class Request:
    """What the module was asked: the windows that count, the moment, the override."""

    windows: list
    now: datetime
    override: bool = False
    reason: str | None = None
    by: str | None = None


@dataclass(frozen=True)
class Verdict:
    """Where ``now`` stands: the open window and the next one to open."""

    now: datetime
    current: Opening | None
    following: Opening | None

    @property
    def inside(self) -> bool:
        """Whether a window that counts is open."""
        return self.current is not None


def parse_request(params: dict) -> Request:
    """Validate the module's options; raise OptionError naming the bad one."""
    zone_name = params.get("timezone") or UTC_NAME
    zone = load_zone(zone_name, "timezone")
    windows = parse_windows(params.get("windows"), default_timezone=zone_name)
    reason = (params.get("override_reason") or "").strip()
    if params.get("override") and not reason:
        raise OptionError(
            "override_reason",
            params.get("override_reason"),
            "is required when override is true: say who overrides the window and why",
        )
    return Request(
        windows=select(windows, params.get("require") or []),
        now=parse_now(params.get("now"), zone=zone),
        override=bool(params.get("override")),
        reason=reason or None,
        by=(params.get("override_by") or "").strip() or None,
    )


def evaluate(windows: list, now: datetime) -> Verdict:
    """Judge ``now`` against ``windows``."""
    return Verdict(now, open_at(windows, now), next_opening(windows, now))


def check_window(params: dict) -> dict:
    """The module's result for its options: the check result and the window keys."""
    request = parse_request(params)
    verdict = evaluate(request.windows, request.now)
    return window_result(request, verdict)


def window_result(request: Request, verdict: Verdict) -> dict:
    """Build the check result and the keys that say where the clock stands."""
    overridden = request.override and not verdict.inside
    finding = _finding(request, verdict, overridden)
    check = CheckResult(findings=[finding], metrics=_metrics(verdict, overridden))
    result = check.to_dict(SUBJECT)
    result.update(
        summary=f"{SUBJECT} {finding.status.upper()}: {finding.message}",
        inside=verdict.inside,
        window=verdict.current.to_dict() if verdict.current else None,
        next_window=verdict.following.to_dict() if verdict.following else None,
        seconds_until_next=_seconds(verdict.now, verdict.following, "start"),
        seconds_remaining=_seconds(verdict.now, verdict.current, "end"),
        overridden=overridden,
        override_reason=request.reason,
        override_by=request.by,
        now=utc_text(verdict.now),
        windows=[window.to_dict() for window in request.windows],
    )
    return result


def _seconds(now: datetime, opening: Opening | None, edge: str) -> int | None:
    if opening is None:
        return None
    return int((getattr(opening, edge) - now).total_seconds())


def _metrics(verdict: Verdict, overridden: bool) -> dict:
    metrics = {"inside": int(verdict.inside), "overridden": int(overridden)}
    if verdict.following:
        metrics["seconds_until_next"] = _seconds(
            verdict.now, verdict.following, "start"
        )
    if verdict.current:
        metrics["seconds_remaining"] = _seconds(verdict.now, verdict.current, "end")
    return metrics


def _finding(request: Request, verdict: Verdict, overridden: bool) -> Finding:
    details = {"window": verdict.current.window.name if verdict.current else None}
    if verdict.inside:
        message = inside_text(verdict)
        if request.override:
            message = f"{message}; the override was not needed"
        return Finding(FINDING, OK, message, details=details)
    outside = outside_text(request, verdict)
    if overridden:
        who = f" by {request.by}" if request.by else ""
        message = f"{outside}; overridden{who}: {request.reason}"
        return Finding(FINDING, OK, message, details=details)
    action = "Wait for the next window, or override it with a reason (who and why)"
    return Finding(FINDING, WARNING, outside, action=action, details=details)


def inside_text(verdict: Verdict) -> str:
    """Say which window is open and how long it stays open."""
    current = verdict.current
    left = span(current.end - verdict.now)
    return f"Inside the {current.window.name} window ({current.text()}), {left} left"


def outside_text(request: Request, verdict: Verdict) -> str:
    """Say that no window that counts is open, and when the next one opens."""
    names = ", ".join(window.name for window in request.windows)
    return f"Outside the maintenance windows ({names}); {next_text(verdict)}"


def next_text(verdict: Verdict) -> str:
    """Say when the next window opens, in local time, in UTC and from now."""
    following = verdict.following
    if following is None:
        return "none of them opens in the next 29 years"
    start = wall_clock(following.local(following.start))
    if following.window.timezone != UTC_NAME:
        start = f"{start} ({utc_text(following.start)})"
    return (
        f"the next, {following.window.name}, opens {start}, "
        f"in {span(following.start - verdict.now)}"
    )


def refusal(result: dict) -> str:
    """The failure message of ``fail_outside``: what counts, when, how to override."""
    message = result["checks"][0]["message"]
    return (
        f"{message}. Disruptive work must wait for a window; to run it now, set "
        "override to true and override_reason to who overrides the window and why"
    )
