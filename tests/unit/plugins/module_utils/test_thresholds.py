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
