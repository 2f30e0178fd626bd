"""Maintenance windows: parsing, openings, the clock at the edges, DST, results."""

from __future__ import annotations

import copy
from datetime import date, datetime, time, timedelta, timezone

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils import windows
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    MaintenanceError,
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.windows import (
    DEFAULT_WINDOWS,
    LAST,
    check_window,
    evaluate,
    load_zone,
    next_opening,
    open_at,
    parse_duration,
    parse_now,
    parse_start,
    parse_window,
    parse_windows,
    refusal,
    span,
)

UTC = timezone.utc
LONDON = "Europe/London"

# Independently known dates (from a printed calendar), not computed here.
FIRST_SUNDAYS_2024 = [
    date(2024, 1, 7),
    date(2024, 2, 4),
    date(2024, 3, 3),
    date(2024, 4, 7),
    date(2024, 5, 5),
    date(2024, 6, 2),
    date(2024, 7, 7),
    date(2024, 8, 4),
    date(2024, 9, 1),
    date(2024, 10, 6),
    date(2024, 11, 3),
    date(2024, 12, 1),
]
LAST_SUNDAYS_2024 = [
    date(2024, 1, 28),
    date(2024, 2, 25),
    date(2024, 3, 31),
    date(2024, 4, 28),
    date(2024, 5, 26),
    date(2024, 6, 30),
    date(2024, 7, 28),
    date(2024, 8, 25),
    date(2024, 9, 29),
    date(2024, 10, 27),
    date(2024, 11, 24),
    date(2024, 12, 29),
]
# The months of 2024 that have five Sundays.
FIFTH_SUNDAYS_2024 = [
    date(2024, 3, 31),
    date(2024, 6, 30),
    date(2024, 9, 29),
    date(2024, 12, 29),
]


def utc(*args: int) -> datetime:
    """A UTC datetime."""
    return datetime(*args, tzinfo=UTC)


def params(**options) -> dict:
    """Module params as AnsibleModule passes them, with its defaults."""
    return {
        "windows": copy.deepcopy(DEFAULT_WINDOWS),
        "timezone": "UTC",
        "now": None,
        "require": [],
        "override": False,
        "override_reason": None,
        "override_by": None,
        "fail_outside": False,
        **options,
    }


def one(spec: dict, *, tz: str = "UTC"):
    """Parse one window."""
    return parse_window(spec, option="windows[0]", default_timezone=tz)


def days_of(window, year: int) -> list:
    """The local dates on which ``window`` opens in ``year``."""
    return [day for month in range(1, 13) for day in window.days_in_month(year, month)]


# Parsing: bad input names the option and shows the value


@pytest.mark.parametrize(
    ("specs", "option", "shown"),
    [
        ([{"schedule": "weekly"}, {"schedule": "weekly", "start": "25:00"}],
         "windows[1].start", "'25:00'"),
        ([{"schedule": "weekly", "start": "2am"}], "windows[0].start", "'2am'"),
        ([{"schedule": "weekly", "start": "02:60"}], "windows[0].start", "'02:60'"),
        ([{"schedule": "weekly", "start": 1440}], "windows[0].start", "1440"),
        ([{"schedule": "weekly", "duration": "2 hours"}],
         "windows[0].duration", "'2 hours'"),
        ([{"schedule": "weekly", "duration": 0}], "windows[0].duration", "0"),
        ([{"schedule": "weekly", "duration": "8d"}], "windows[0].duration", "'8d'"),
        ([{"schedule": "weekly", "duration": True}], "windows[0].duration", "True"),
        ([{"schedule": "weekly", "weekday": "sundae"}],
         "windows[0].weekday", "'sundae'"),
        ([{"schedule": "weekly", "weekday": 6}], "windows[0].weekday", "6"),
        ([{"schedule": "monthly", "week": 6}], "windows[0].week", "6"),
        ([{"schedule": "monthly", "week": "first"}], "windows[0].week", "'first'"),
        ([{"schedule": "quarterly", "months": [1, 13]}],
         "windows[0].months[1]", "13"),
        ([{"schedule": "quarterly", "months": []}], "windows[0].months", "[]"),
        ([{"schedule": "quarterly", "months": "1,4"}],
         "windows[0].months", "'1,4'"),
        ([{"schedule": "daily"}], "windows[0].schedule", "'daily'"),
        ([{"start": "02:00"}], "windows[0].schedule", "None"),
        ([{"schedule": "weekly", "timezone": "Europe/Londn"}],
         "windows[0].timezone", "'Europe/Londn'"),
        ([{"schedule": "weekly", "timezone": "europe/london"}],
         "windows[0].timezone", "'europe/london'"),
        ([{"schedule": "weekly", "timezone": "../etc/passwd"}],
         "windows[0].timezone", "'../etc/passwd'"),
        ([{"schedule": "weekly", "name": ""}], "windows[0].name", "''"),
        ([{"schedule": "weekly"}, {"schedule": "weekly"}],
         "windows[1].name", "'weekly'"),
        (["Sun 02:00"], "windows[0]", "'Sun 02:00'"),
        (["Sun 02:00-02:00"], "windows[0]", "'Sun 02:00-02:00'"),
        (["Sundae 02:00-04:00"], "windows[0]", "'Sundae'"),
        (["Sun 02:00-24:00"], "windows[0]", "'24:00'"),
        (["sixth Sun 02:00-04:00"], "windows[0]", "'sixth Sun 02:00-04:00'"),
        (["Sun 02:00-04:00", " Sun  02:00-04:00"], "windows[1].name",
         "'Sun 02:00-04:00'"),
        ([5], "windows[0]", "5"),
        ([], "windows", "[]"),
        ({"schedule": "weekly"}, "windows", "{'schedule': 'weekly'}"),
    ],
)  # fmt: skip
def test_a_bad_window_names_its_option_and_value(specs, option, shown):
    with pytest.raises(OptionError) as caught:
        parse_windows(specs)
    assert caught.value.option == option
    assert str(caught.value).startswith(f"Option '{option}' ")
    assert str(caught.value).endswith(f"; got {shown}")


@pytest.mark.parametrize(
    ("spec", "unknown"),
    [
        ({"schedule": "weekly", "weekdays": "sunday"}, "['weekdays']"),
        ({"schedule": "weekly", "week": 1}, "['week']"),
        ({"schedule": "monthly", "months": [1]}, "['months']"),
    ],
)
def test_keys_a_schedule_does_not_know_are_refused(spec, unknown):
    with pytest.raises(OptionError) as caught:
        one(spec)
    assert caught.value.option == "windows[0]"
    assert f"has unknown keys {unknown}" in str(caught.value)


@pytest.mark.parametrize(
    ("schedule", "weekday", "start", "duration", "week", "months"),
    [
        ("weekly", 6, time(2, 0), timedelta(hours=2), None, tuple(range(1, 13))),
        ("monthly", 6, time(2, 0), timedelta(hours=4), 1, tuple(range(1, 13))),
        ("quarterly", 6, time(2, 0), timedelta(hours=8), 1, (1, 4, 7, 10)),
    ],
)
def test_a_bare_schedule_takes_the_guides_window(
    schedule, weekday, start, duration, week, months
):
    window = one({"schedule": schedule})
    assert (window.name, window.schedule) == (schedule, schedule)
    assert (window.weekday, window.start, window.duration) == (weekday, start, duration)
    assert (window.week, window.months, window.timezone) == (week, months, "UTC")


def test_the_default_windows_are_the_guides():
    assert [window.describe() for window in parse_windows(DEFAULT_WINDOWS)] == [
        "every Sunday at 02:00 for 2 h (UTC)",
        "the first Sunday of every month at 02:00 for 4 h (UTC)",
        "the first Sunday of January, April, July and October at 02:00 for 8 h (UTC)",
    ]


@pytest.mark.parametrize(
    ("value", "minutes"),
    [
        ("2h", 120),
        ("120m", 120),
        ("120min", 120),
        ("1h30m", 90),
        ("1h 30m", 90),
        ("1d", 1440),
        ("7d", 10080),
        ("4H", 240),
        (45, 45),
        ("45", 45),
    ],
)
def test_durations_read_in_every_documented_form(value, minutes):
    assert parse_duration(value, "d") == timedelta(minutes=minutes)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("02:00", time(2, 0)), ("2:00", time(2, 0)), (" 23:59 ", time(23, 59)),
     ("00:00", time(0, 0)), (120, time(2, 0)), (0, time(0, 0))],
)  # fmt: skip
def test_start_times_read_as_hours_and_minutes(value, expected):
    assert parse_start(value, "s") == expected


def test_weekdays_months_and_weeks_read_as_words():
    window = one(
        {"schedule": "quarterly", "weekday": "Sat", "week": "last",
         "months": ["march", "Sep", 6, "6"]}
    )  # fmt: skip
    assert (window.weekday, window.week, window.months) == (5, LAST, (3, 6, 9))


def test_a_window_without_a_time_zone_takes_the_default():
    windows_ = parse_windows(
        [{"schedule": "weekly"}, {"schedule": "monthly", "timezone": "Asia/Tokyo"}],
        default_timezone=LONDON,
    )
    assert [w.timezone for w in windows_] == [LONDON, "Asia/Tokyo"]


@pytest.mark.parametrize(
    ("options", "option", "shown"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone", "'Mars/Olympus'"),
        ({"now": "next sunday"}, "now", "'next sunday'"),
        ({"now": "2024-13-01T00:00:00"}, "now", "'2024-13-01T00:00:00'"),
        ({"require": ["weekly", "daily"]}, "require", "['weekly', 'daily']"),
        ({"override": True}, "override_reason", "None"),
        ({"override": True, "override_reason": "  "}, "override_reason", "'  '"),
    ],
)
def test_bad_module_options_name_the_option(options, option, shown):
    with pytest.raises(OptionError) as caught:
        check_window(params(**options))
    assert caught.value.option == option
    assert str(caught.value).endswith(f"; got {shown}")


def test_an_unknown_required_window_is_named_with_the_defined_ones():
    with pytest.raises(OptionError) as caught:
        check_window(params(require=["weekly", "daily"]))
    assert "not defined (daily); defined: weekly, monthly, quarterly" in str(
        caught.value
    )


def test_override_without_a_reason_says_what_to_give():
    with pytest.raises(OptionError) as caught:
        check_window(params(override=True, override_reason=""))
    assert (
        "is required when override is true: say who overrides the window and why"
        in (str(caught.value))
    )


def test_without_zoneinfo_utc_works_and_other_zones_name_the_module(monkeypatch):
    monkeypatch.setattr(windows, "ZoneInfo", None)
    assert load_zone("UTC", "timezone") is UTC
    with pytest.raises(MaintenanceError) as caught:
        load_zone(LONDON, "windows[0].timezone")
    assert str(caught.value) == (
        "Time zone 'Europe/London' (windows[0].timezone) needs the zoneinfo module, "
        "which Python 3.9 and later include; on Python 3.8 install "
        "backports.zoneinfo, or use UTC"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-06-02T02:30:00Z", utc(2024, 6, 2, 2, 30)),
        ("2024-06-02T02:30:00+01:00", utc(2024, 6, 2, 1, 30)),
        ("2024-06-02 02:30", utc(2024, 6, 2, 1, 30)),  # read in London (BST)
        ("2024-01-07T02:30", utc(2024, 1, 7, 2, 30)),  # read in London (GMT)
        (datetime(2024, 6, 2, 2, 30, tzinfo=UTC), utc(2024, 6, 2, 2, 30)),
    ],
)
def test_now_reads_iso_8601_and_takes_the_default_zone_when_naive(value, expected):
    assert parse_now(value, zone=load_zone(LONDON, "timezone")) == expected


def test_an_empty_now_is_the_clock():
    before = datetime.now(UTC)
    moment = parse_now("", zone=UTC)
    assert before <= moment <= datetime.now(UTC)


# Openings: which days, which months


def test_monthly_opens_on_the_first_sunday_of_every_month():
    assert days_of(one({"schedule": "monthly"}), 2024) == FIRST_SUNDAYS_2024


def test_monthly_last_opens_on_the_last_sunday():
    assert days_of(one({"schedule": "monthly", "week": "last"}), 2024) == (
        LAST_SUNDAYS_2024
    )


def test_a_fifth_week_skips_the_months_without_one():
    assert days_of(one({"schedule": "monthly", "week": 5}), 2024) == (
        FIFTH_SUNDAYS_2024
    )


def test_quarterly_opens_in_the_first_month_of_each_quarter():
    assert days_of(one({"schedule": "quarterly"}), 2024) == [
        date(2024, 1, 7),
        date(2024, 4, 7),
        date(2024, 7, 7),
        date(2024, 10, 6),
    ]


def test_quarterly_follows_its_months():
    window = one({"schedule": "quarterly", "months": [11, 2, 8, 5], "week": 2})
    assert days_of(window, 2024) == [
        date(2024, 2, 11),
        date(2024, 5, 12),
        date(2024, 8, 11),
        date(2024, 11, 10),
    ]


def test_weekly_opens_every_sunday():
    found = days_of(one({"schedule": "weekly"}), 2024)
    assert (len(found), found[0], found[-1]) == (
        52,
        date(2024, 1, 7),
        date(2024, 12, 29),
    )


@pytest.mark.parametrize("first_sunday", FIRST_SUNDAYS_2024)
def test_the_monthly_window_is_open_on_the_first_sunday_only(first_sunday):
    monthly = parse_windows([{"schedule": "monthly"}])
    opened = datetime.combine(first_sunday, time(5, 59), tzinfo=UTC)
    week_later = opened + timedelta(days=7)
    assert open_at(monthly, opened).start == opened.replace(hour=2, minute=0)
    assert open_at(monthly, week_later) is None


# The clock at the edges


@pytest.mark.parametrize(
    ("now", "inside"),
    [
        (utc(2024, 6, 9, 1, 59, 59), False),
        (utc(2024, 6, 9, 2, 0), True),
        (utc(2024, 6, 9, 3, 59, 59), True),
        (utc(2024, 6, 9, 4, 0), False),
        (utc(2024, 6, 10, 2, 30), False),
    ],
)
def test_the_start_is_inside_and_the_end_outside(now, inside):
    weekly = parse_windows([{"schedule": "weekly"}])
    assert (open_at(weekly, now) is not None) is inside


def test_a_window_crossing_midnight_is_open_the_next_day():
    late = parse_windows([{"schedule": "weekly", "weekday": "saturday",
                           "start": "23:00", "duration": "3h"}])  # fmt: skip
    opening = open_at(late, utc(2024, 6, 9, 1, 0))
    assert (opening.start, opening.end) == (utc(2024, 6, 8, 23), utc(2024, 6, 9, 2))
    assert open_at(late, utc(2024, 6, 9, 2, 0)) is None


def test_a_window_crossing_the_year_end_is_open_on_new_years_day():
    late = parse_windows([{"schedule": "weekly", "start": "22:00", "duration": "4h"}])
    opening = open_at(late, utc(2024, 1, 1, 1, 0))
    assert opening.start == utc(2023, 12, 31, 22)


def test_of_several_open_windows_the_longest_is_the_window():
    verdict = evaluate(parse_windows(DEFAULT_WINDOWS), utc(2024, 7, 7, 3, 0))
    assert verdict.current.window.name == "quarterly"
    assert verdict.current.end == utc(2024, 7, 7, 10)


# Daylight saving time in London: 2024-03-31 01:00 GMT becomes 02:00 BST;
# 2024-10-27 02:00 BST becomes 01:00 GMT.


@pytest.mark.parametrize(
    ("day", "start", "duration", "start_utc", "end_utc"),
    [
        # 02:00 exists on both days: BST in spring, GMT (after the change) in autumn.
        (date(2024, 3, 31), "02:00", "2h", utc(2024, 3, 31, 1), utc(2024, 3, 31, 3)),
        (date(2024, 10, 27), "02:00", "2h", utc(2024, 10, 27, 2), utc(2024, 10, 27, 4)),
        # 01:30 is skipped in spring: the window opens at 02:30 BST.
        (date(2024, 3, 31), "01:30", "1h", utc(2024, 3, 31, 1, 30),
         utc(2024, 3, 31, 2, 30)),
        # 01:30 happens twice in autumn: the first, in BST.
        (date(2024, 10, 27), "01:30", "1h", utc(2024, 10, 27, 0, 30),
         utc(2024, 10, 27, 1, 30)),
        # Two elapsed hours across the change.
        (date(2024, 3, 31), "00:30", "2h", utc(2024, 3, 31, 0, 30),
         utc(2024, 3, 31, 2, 30)),
        (date(2024, 10, 27), "00:30", "2h", utc(2024, 10, 26, 23, 30),
         utc(2024, 10, 27, 1, 30)),
        # The Sundays either side keep their own offsets.
        (date(2024, 3, 24), "02:00", "2h", utc(2024, 3, 24, 2), utc(2024, 3, 24, 4)),
        (date(2024, 10, 20), "02:00", "2h", utc(2024, 10, 20, 1), utc(2024, 10, 20, 3)),
    ],
)  # fmt: skip
def test_london_windows_on_the_dst_change_days(
    day, start, duration, start_utc, end_utc
):
    window = one({"schedule": "weekly", "start": start, "duration": duration},
                 tz=LONDON)  # fmt: skip
    opening = window.opening(day)
    assert (opening.start, opening.end) == (start_utc, end_utc)
    assert open_at([window], start_utc - timedelta(seconds=1)) is None
    assert open_at([window], start_utc) == opening
    assert open_at([window], end_utc - timedelta(seconds=1)) == opening
    assert open_at([window], end_utc) is None


def test_a_london_window_across_the_change_shows_both_offsets():
    window = one({"schedule": "weekly", "start": "00:30", "duration": "2h"}, tz=LONDON)
    assert window.opening(date(2024, 3, 31)).text() == (
        "Sun 2024-03-31 00:30 GMT to Sun 2024-03-31 03:30 BST"
    )
    assert window.opening(date(2024, 6, 2)).text() == "Sun 2024-06-02 00:30-02:30 BST"


def test_the_spring_change_day_result_in_london():
    result = check_window(
        params(timezone=LONDON, now="2024-03-31T03:59:59+01:00", require=["weekly"])
    )
    assert result["window"] == {
        "name": "weekly",
        "schedule": "weekly",
        "timezone": LONDON,
        "description": "every Sunday at 02:00 for 2 h (Europe/London)",
        "start": "2024-03-31T02:00:00+01:00",
        "end": "2024-03-31T04:00:00+01:00",
        "start_utc": "2024-03-31T01:00:00Z",
        "end_utc": "2024-03-31T03:00:00Z",
        "duration_seconds": 7200,
    }
    assert result["seconds_remaining"] == 1


# The next window


@pytest.mark.parametrize(
    ("now", "require", "name", "start"),
    [
        # Inside the weekly window, the next is next Sunday's.
        (utc(2024, 6, 9, 2, 30), [], "weekly", utc(2024, 6, 16, 2)),
        # Across the month end: June's first Sunday is past, July's is next.
        (utc(2024, 6, 2, 4, 0), ["monthly"], "monthly", utc(2024, 7, 7, 2)),
        (utc(2024, 6, 30, 12, 0), ["monthly"], "monthly", utc(2024, 7, 7, 2)),
        # Across the year end.
        (utc(2024, 12, 29, 12, 0), ["weekly"], "weekly", utc(2025, 1, 5, 2)),
        (utc(2024, 12, 1, 6, 0), ["monthly"], "monthly", utc(2025, 1, 5, 2)),
        (utc(2024, 10, 6, 10, 0), ["quarterly"], "quarterly", utc(2025, 1, 5, 2)),
        # Three windows open at the same time: the longest is named.
        (utc(2024, 6, 30, 12, 0), [], "quarterly", utc(2024, 7, 7, 2)),
        (utc(2024, 8, 30, 12, 0), [], "monthly", utc(2024, 9, 1, 2)),
        # A second before the opening, the opening is next.
        (utc(2024, 7, 7, 1, 59, 59), ["quarterly"], "quarterly", utc(2024, 7, 7, 2)),
    ],
)
def test_the_next_window_is_the_first_to_open(now, require, name, start):
    result = check_window(params(now=now.isoformat(), require=require))
    following = next_opening(
        [w for w in parse_windows(DEFAULT_WINDOWS) if not require or w.name in require],
        now,
    )
    assert (following.window.name, following.start) == (name, start)
    assert result["next_window"]["name"] == name
    assert result["next_window"]["start_utc"] == f"{start:%Y-%m-%dT%H:%M:%S}Z"
    assert result["seconds_until_next"] == int((start - now).total_seconds())


def test_a_fifth_sunday_of_february_is_years_away():
    rare = parse_windows([{"schedule": "quarterly", "months": [2], "week": 5}])
    # February 2026 starts on a Sunday but has 28 days; 2032 is the next leap
    # February that has five Sundays (1, 8, 15, 22, 29).
    assert next_opening(rare, utc(2024, 3, 1)).start == utc(2032, 2, 29, 2)


# Results


def test_inside_a_window_the_status_is_ok():
    result = check_window(params(now="2024-06-09T03:30:00+01:00", timezone=LONDON))
    assert result["status"] == "ok"
    assert result["inside"] is True
    assert result["window"]["name"] == "weekly"
    assert result["seconds_remaining"] == 30 * 60
    assert result["summary"] == (
        "Maintenance window OK: Inside the weekly window "
        "(Sun 2024-06-09 02:00-04:00 BST), 30 min left"
    )
    assert result["metrics"] == {
        "inside": 1,
        "overridden": 0,
        "seconds_until_next": 7 * 86400 - 90 * 60,
        "seconds_remaining": 1800,
    }
    assert (result["overridden"], result["override_reason"]) == (False, None)


def test_outside_a_window_the_status_is_a_warning_with_the_next():
    result = check_window(
        params(
            now="2024-06-05T12:00:00Z", timezone=LONDON, require=["weekly", "monthly"]
        )
    )
    assert result["status"] == "warning"
    assert (result["inside"], result["window"], result["seconds_remaining"]) == (
        False,
        None,
        None,
    )
    assert result["checks"][0]["message"] == (
        "Outside the maintenance windows (weekly, monthly); the next, weekly, opens "
        "Sun 2024-06-09 02:00 BST (2024-06-09T01:00:00Z), in 3 d 13 h"
    )
    assert result["checks"][0]["action"] == (
        "Wait for the next window, or override it with a reason (who and why)"
    )
    assert result["seconds_until_next"] == (3 * 24 + 13) * 3600
    assert [w["name"] for w in result["windows"]] == ["weekly", "monthly"]


def test_an_override_outside_is_ok_and_on_record():
    result = check_window(
        params(
            now="2024-06-05T12:00:00Z",
            override=True,
            override_reason="INC-2041 emergency patch",
            override_by="alice",
        )
    )
    assert (result["status"], result["overridden"]) == ("ok", True)
    assert (result["override_reason"], result["override_by"]) == (
        "INC-2041 emergency patch",
        "alice",
    )
    assert result["checks"][0]["message"].endswith(
        "in 3 d 14 h; overridden by alice: INC-2041 emergency patch"
    )
    assert result["metrics"]["overridden"] == 1


def test_an_override_inside_a_window_is_not_needed():
    result = check_window(
        params(now="2024-06-09T02:00:00Z", override=True, override_reason="planned")
    )
    assert (result["status"], result["overridden"]) == ("ok", False)
    assert result["checks"][0]["message"].endswith("; the override was not needed")


def test_the_refusal_says_what_counts_when_and_how_to_override():
    result = check_window(params(now="2024-06-09T04:00:00Z", require=["monthly"]))
    assert refusal(result) == (
        "Outside the maintenance windows (monthly); the next, monthly, opens "
        "Sun 2024-07-07 02:00 UTC, in 27 d 22 h. Disruptive work must wait for a "
        "window; to run it now, set override to true and override_reason to who "
        "overrides the window and why"
    )


def test_the_result_keys_are_present_when_empty():
    result = check_window(params(now="2024-06-05T12:00:00Z"))
    assert set(result) == {
        "changed", "status", "summary", "checks", "metrics", "inside", "window",
        "next_window", "seconds_until_next", "seconds_remaining", "overridden",
        "override_reason", "override_by", "now", "windows",
    }  # fmt: skip
    assert result["now"] == "2024-06-05T12:00:00Z"
    assert result["changed"] is False


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=0), "0 s"),
        (timedelta(seconds=59), "59 s"),
        (timedelta(minutes=1), "1 min"),
        (timedelta(hours=2), "2 h"),
        (timedelta(hours=1, minutes=30), "1 h 30 min"),
        (timedelta(days=5, hours=18, minutes=7), "5 d 18 h"),
        (timedelta(days=3, minutes=5), "3 d"),
        (timedelta(seconds=-5), "0 s"),
    ],
)
def test_spans_are_said_in_two_units(delta, text):
    assert span(delta) == text


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        ({"schedule": "monthly", "week": "last", "weekday": "saturday",
          "start": "22:00", "duration": "1d"},
         "the last Saturday of every month at 22:00 for 1 d (UTC)"),
        ({"schedule": "quarterly", "months": [12]},
         "the first Sunday of December at 02:00 for 8 h (UTC)"),
        ({"schedule": "weekly", "weekday": "wed", "duration": 90},
         "every Wednesday at 02:00 for 1 h 30 min (UTC)"),
    ],
)  # fmt: skip
def test_windows_describe_themselves(spec, text):
    assert one(spec).describe() == text


# The operators' shorthand


@pytest.mark.parametrize(
    ("text", "name", "schedule", "weekday", "start", "minutes", "week"),
    [
        ("Sun 02:00-04:00", "Sun 02:00-04:00", "weekly", 6, time(2), 120, None),
        ("  sunday   2:00 - 4:30 ", "sunday 2:00 - 4:30", "weekly", 6, time(2), 150,
         None),
        ("first Sun 02:00-06:00", "first Sun 02:00-06:00", "monthly", 6, time(2),
         240, 1),
        ("2nd SAT 22:00-01:00", "2nd SAT 22:00-01:00", "monthly", 5, time(22), 180,
         2),
        ("last Fri 23:30-00:00", "last Fri 23:30-00:00", "monthly", 4,
         time(23, 30), 30, LAST),
    ],
)  # fmt: skip
def test_the_shorthand_reads_as_a_weekly_or_monthly_window(
    text, name, schedule, weekday, start, minutes, week
):
    window = parse_window(text, option="windows[0]", default_timezone=LONDON)

    assert (window.name, window.schedule, window.weekday) == (name, schedule, weekday)
    assert (window.start, window.duration) == (start, timedelta(minutes=minutes))
    assert (window.week, window.timezone) == (week, LONDON)


def test_the_shorthand_equals_the_mapping_it_stands_for():
    short = parse_window("first Sun 02:00-06:00", option="w")
    full = parse_window({"schedule": "monthly", "name": "first Sun 02:00-06:00"},
                        option="w")  # fmt: skip

    assert short == full
    assert short.describe() == "the first Sunday of every month at 02:00 for 4 h (UTC)"


def test_a_shorthand_window_opens_and_closes_on_the_clock():
    windows_ = parse_windows(["Sun 02:00-04:00", "last Sat 23:00-01:00"])

    # 2024-06-02 is a Sunday; 2024-06-29 the last Saturday of June.
    assert open_at(windows_, datetime(2024, 6, 2, 2, 0, tzinfo=UTC)).window.name == (
        "Sun 02:00-04:00"
    )
    assert open_at(windows_, datetime(2024, 6, 2, 4, 0, tzinfo=UTC)) is None
    assert open_at(windows_, datetime(2024, 6, 22, 23, 30, tzinfo=UTC)) is None
    late = open_at(windows_, datetime(2024, 6, 30, 0, 59, tzinfo=UTC))
    assert late.window.name == "last Sat 23:00-01:00"
    assert late.start == datetime(2024, 6, 29, 23, 0, tzinfo=UTC)


def test_the_module_takes_shorthand_and_mappings_together():
    result = check_window(
        params(
            windows=["Sun 02:00-04:00", {"schedule": "quarterly"}],
            now="2024-06-02T03:00:00+00:00",
            require=["Sun 02:00-04:00"],
        )
    )

    assert result["status"] == "ok"
    assert result["inside"] is True
    assert result["window"]["name"] == "Sun 02:00-04:00"
