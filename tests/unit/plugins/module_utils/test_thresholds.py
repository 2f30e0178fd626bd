"""Every decision of the threshold model, as tables."""

from __future__ import annotations

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    Range,
    Threshold,
    format_value,
    parse_threshold,
)


@pytest.mark.parametrize(
    ("warning", "critical", "value", "expected"),
    [
        (1, 2, 0.5, "ok"),
        (1, 2, 1, "ok"),  # equal to the bound is still inside it
        (1, 2, 1.5, "warning"),
        (1, 2, 2, "warning"),
        (1, 2, 2.01, "critical"),
        (None, 2, 1.9, "ok"),
        (None, 2, 3, "critical"),
        (1, None, 5, "warning"),
        (None, None, 1e9, "ok"),
    ],
)
def test_upper_bounds_judge_values_above_them(warning, critical, value, expected):
    assert Threshold(warning, critical).evaluate(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(45, "ok"), (30, "ok"), (29, "warning"), (7, "warning"), (6.9, "critical")],
)
def test_lower_bounds_judge_values_below_them(value, expected):
    # Days until a certificate expires: warning under 30, critical under 7.
    assert Threshold(30, 7, direction="below").evaluate(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (50, "ok"),
        (120, "ok"),
        (200, "ok"),
        (49, "warning"),
        (20, "warning"),
        (201, "warning"),
        (500, "warning"),
        (19, "critical"),
        (501, "critical"),
        (0, "critical"),
    ],
)
def test_ranges_use_normal_then_investigate(value, expected):
    registrations = Range(normal=(50, 200), investigate=(20, 500))
    assert registrations.evaluate(value) == expected


@pytest.mark.parametrize(
    ("rng", "value", "expected"),
    [
        (Range(normal=(10, None), investigate=(2, None)), 1000, "ok"),
        (Range(normal=(10, None), investigate=(2, None)), 5, "warning"),
        (Range(normal=(10, None), investigate=(2, None)), 1, "critical"),
        (Range(normal=(None, 5), investigate=(None, None)), 6, "warning"),
        (Range(normal=(None, 5), investigate=(None, None)), 1e6, "warning"),
    ],
)
def test_one_sided_ranges(rng, value, expected):
    assert rng.evaluate(value) == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"warning": 1, "critical": 2}, Threshold(1.0, 2.0, "above")),
        ({"warning": "80", "critical": 90}, Threshold(80.0, 90.0, "above")),
        (
            {"warning": 30, "critical": 7, "direction": "below"},
            Threshold(30, 7, "below"),
        ),
        ({"critical": 5}, Threshold(None, 5.0, "above")),
        ({"warning": 3, "critical": 3}, Threshold(3.0, 3.0, "above")),
        (
            {"normal": [50, 200], "investigate": [20, 500]},
            Range((50.0, 200.0), (20.0, 500.0)),
        ),
        ({"normal": [10, None]}, Range((10.0, None), (None, None))),
        (None, None),
    ],
)
def test_parse_accepts_every_documented_form(spec, expected):
    assert parse_threshold(spec, option="thresholds") == expected


def test_parse_falls_back_to_the_default():
    default = {"warning": 1, "critical": 5}
    assert parse_threshold(None, option="t", default=default) == Threshold(1, 5)


# The defaults of options that callers pass to parse_threshold, as they are.
HIT_RATE = {"warning": 80, "critical": 50, "direction": "below"}
OPLOG_WINDOW = {"warning": 48, "critical": 24, "direction": "below"}
CAPACITY_PROJECTION = {"warning": 90, "critical": 30, "direction": "below"}
PING_LATENCY = {"warning": 50, "critical": 200}
FRAGMENTATION = {"normal": [1.0, 1.5], "investigate": [0.9, 2.0]}


@pytest.mark.parametrize(
    ("spec", "default", "expected"),
    [
        # A partial override takes the direction of the option's default.
        ({"warning": 90}, HIT_RATE, Threshold(90.0, None, "below")),
        ({"critical": 24}, OPLOG_WINDOW, Threshold(None, 24.0, "below")),
        ({"critical": 30}, CAPACITY_PROJECTION, Threshold(None, 30.0, "below")),
        ({"warning": 90, "critical": 70}, HIT_RATE, Threshold(90.0, 70.0, "below")),
        ({}, HIT_RATE, Threshold(None, None, "below")),
        ({"warning": 10}, PING_LATENCY, Threshold(10.0, None, "above")),
        # A default given as an object completes an override the same way.
        ({"warning": 90}, Threshold(80, 50, "below"), Threshold(90.0, None, "below")),
        # A direction the user states wins over the default's.
        (
            {"warning": 10, "direction": "above"},
            HIT_RATE,
            Threshold(10.0, None, "above"),
        ),
        (
            {"critical": 1, "direction": "below"},
            PING_LATENCY,
            Threshold(None, 1.0, "below"),
        ),
        # Without a default, bounds are upper bounds.
        ({"warning": 90}, None, Threshold(90.0, None, "above")),
        # A range default stays a range; a range may replace bounds.
        (
            {"normal": [1.0, 1.3], "investigate": [0.8, 3.0]},
            FRAGMENTATION,
            Range((1.0, 1.3), (0.8, 3.0)),
        ),
        ({"normal": [1.0, 1.3]}, FRAGMENTATION, Range((1.0, 1.3), (None, None))),
        (
            {"normal": [50, 100], "investigate": [0, 100]},
            HIT_RATE,
            Range((50.0, 100.0), (0.0, 100.0)),
        ),
        # Nothing given: the default, whole.
        (None, HIT_RATE, Threshold(80.0, 50.0, "below")),
        (None, FRAGMENTATION, Range((1.0, 1.5), (0.9, 2.0))),
        (None, None, None),
    ],
)
def test_partial_overrides_keep_the_default_s_direction(spec, default, expected):
    assert parse_threshold(spec, option="t", default=default) == expected


@pytest.mark.parametrize(
    ("spec", "default", "value", "expected"),
    [
        # hit_rate: {warning: 90} must warn on a low rate, not on a high one.
        ({"warning": 90}, HIT_RATE, 85, "warning"),
        ({"warning": 90}, HIT_RATE, 95, "ok"),
        ({"warning": 90, "critical": 70}, HIT_RATE, 60, "critical"),
        # oplog_window: {critical: 24} hours: a short window is critical.
        ({"critical": 24}, OPLOG_WINDOW, 12, "critical"),
        ({"critical": 24}, OPLOG_WINDOW, 72, "ok"),
        # capacity_projection: {critical: 30} days until full.
        ({"critical": 30}, CAPACITY_PROJECTION, 10, "critical"),
        ({"critical": 30}, CAPACITY_PROJECTION, 400, "ok"),
        ({"warning": 10}, PING_LATENCY, 11, "warning"),
    ],
)
def test_partial_overrides_judge_the_way_the_default_does(
    spec, default, value, expected
):
    threshold = parse_threshold(spec, option="t", default=default)
    assert threshold.evaluate(value) == expected


@pytest.mark.parametrize(
    ("spec", "default", "message"),
    [
        (
            {"warning": 1.6},
            FRAGMENTATION,
            "Option 'rt' takes ranges only: {normal: [low, high], investigate: "
            "[low, high]}; got {'warning': 1.6}",
        ),
        (
            {"warning": 1.2, "critical": 2, "direction": "above"},
            FRAGMENTATION,
            "Option 'rt' takes ranges only",
        ),
        (
            {"warning": 50, "critical": 80},
            HIT_RATE,
            "Option 'rt' critical must be at or below warning for 'below' (the "
            "direction of its default; set direction: above to change it); got",
        ),
        (
            {"warning": 50, "critical": 80, "direction": "below"},
            HIT_RATE,
            "Option 'rt' critical must be at or below warning for 'below'; got",
        ),
        (
            {"warning": 5, "critical": 1},
            PING_LATENCY,
            "Option 'rt' critical must be at or above warning for 'above'; got",
        ),
        ({"warning": "x"}, HIT_RATE, "Option 'rt.warning' must be a number"),
        ("high", FRAGMENTATION, "Option 'rt' must be a mapping of thresholds"),
    ],
)
def test_overrides_that_contradict_the_default_are_refused(spec, default, message):
    with pytest.raises(OptionError) as caught:
        parse_threshold(spec, option="rt", default=default)
    assert str(caught.value).startswith(message)
    assert caught.value.option.startswith("rt")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("high", "Option 'rt' must be a mapping of thresholds; got 'high'"),
        (
            {"warning": 2, "critical": 1},
            "Option 'rt' critical must be at or above warning for 'above'",
        ),
        (
            {"warning": 7, "critical": 30, "direction": "below"},
            "Option 'rt' critical must be at or below warning for 'below'",
        ),
        ({"warning": "lots"}, "Option 'rt.warning' must be a number; got 'lots'"),
        ({"warning": True}, "Option 'rt.warning' must be a number; got True"),
        ({"direction": "sideways"}, "Option 'rt.direction' must be 'above' or 'below'"),
        ({"warn": 1}, "Option 'rt' has unknown keys ['warn']"),
        ({"normal": [200, 50]}, "Option 'rt.normal' has its bounds reversed"),
        ({"normal": [1, 2, 3]}, "Option 'rt.normal' must be a list of two bounds"),
        (
            {"normal": [10, 100], "investigate": [20, 500]},
            "Option 'rt' the investigate range must contain the normal range",
        ),
        (
            {"normal": [None, 100], "investigate": [0, 500]},
            "Option 'rt' the investigate range must contain the normal range",
        ),
    ],
)
def test_parse_rejects_bad_input_naming_the_option(spec, message):
    with pytest.raises(OptionError) as caught:
        parse_threshold(spec, option="rt")
    assert str(caught.value).startswith(message)
    assert caught.value.option.startswith("rt")


def test_long_option_values_are_cut_in_messages():
    with pytest.raises(OptionError) as caught:
        parse_threshold("x" * 500, option="rt")
    assert str(caught.value).endswith("...")
    assert len(str(caught.value)) < 220


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (1.5, "%", "1.5%"),
        (0.25, "s", "0.25 s"),
        (80, "%", "80%"),
        (12345, "", "12,345"),
        (9999, "bytes", "9999 bytes"),
        (2.0 / 3.0, "", "0.6667"),
        (12345678.9, "B", "12,345,679 B"),
        (86400.0, "s", "86,400 s"),
        (80.0, "%", "80%"),
        ("up", "", "up"),
    ],
)
def test_values_are_formatted_with_their_units(value, unit, text):
    assert format_value(value, unit) == text


@pytest.mark.parametrize(
    ("threshold", "text"),
    [
        (Threshold(1, 2), "warning above 1, critical above 2"),
        (Threshold(30, 7, "below"), "warning below 30, critical below 7"),
        (Threshold(None, 5), "critical above 5"),
        (Threshold(), "no thresholds"),
        (Range((50, 200), (20, 500)), "normal 50-200, investigate outside 20-500"),
        (
            Range((10, None), (None, None)),
            "normal from 10, investigate outside unbounded",
        ),
    ],
)
def test_thresholds_describe_themselves(threshold, text):
    assert threshold.describe() == text
