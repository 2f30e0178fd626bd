"""The check result: statuses, findings, summaries and fail_on."""

from __future__ import annotations

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils.checks import (
    CheckResult,
    Finding,
    measured,
    reaches,
    unknown,
    worst,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    Range,
    Threshold,
)


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["ok", "ok"], "ok"),
        (["ok", "warning"], "warning"),
        (["warning", "unknown"], "unknown"),
        (["unknown", "critical", "ok"], "critical"),
        (["critical", "warning"], "critical"),
        ([], "unknown"),
    ],
)
def test_worst_ranks_ok_warning_unknown_critical(statuses, expected):
    assert worst(statuses) == expected


@pytest.mark.parametrize(
    ("status", "fail_on", "expected"),
    [
        ("critical", None, False),
        ("critical", "critical", True),
        ("unknown", "critical", False),
        ("unknown", "unknown", True),
        ("warning", "unknown", False),
        ("warning", "warning", True),
        ("critical", "warning", True),
        ("ok", "warning", False),
    ],
)
def test_fail_on_is_reached_at_or_above_its_status(status, fail_on, expected):
    assert reaches(status, fail_on) is expected


def test_measured_ok_finding_states_the_limits():
    finding = measured(
        "error_rate", 0.4, Threshold(1, 2), label="Error rate", unit="%", action="x"
    )
    assert finding.to_dict() == {
        "name": "error_rate",
        "status": "ok",
        "message": "Error rate is 0.4% (warning above 1%, critical above 2%)",
        "value": 0.4,
        "unit": "%",
        "warning": 1,
        "critical": 2,
        "threshold": "warning above 1%, critical above 2%",
        "action": None,
    }


@pytest.mark.parametrize(
    ("value", "status", "message"),
    [
        (1.5, "warning", "Error rate is 1.5%, above the warning threshold of 1%"),
        (2.5, "critical", "Error rate is 2.5%, above the critical threshold of 2%"),
    ],
)
def test_measured_breach_names_the_threshold_and_keeps_the_action(
    value, status, message
):
    finding = measured(
        "error_rate",
        value,
        Threshold(1, 2),
        label="Error rate",
        unit="%",
        action="Read the logs",
    )
    assert (finding.status, finding.message, finding.action) == (
        status,
        message,
        "Read the logs",
    )


def test_measured_range_finding_carries_both_ranges():
    finding = measured(
        "registrations", 22, Range((50, 200), (20, 500)), label="Registrations"
    ).to_dict()
    assert finding["status"] == "warning"
    assert finding["message"] == (
        "Registrations is 22, outside the normal range 50-200"
    )
    assert (finding["normal"], finding["investigate"]) == ([50, 200], [20, 500])
    assert (finding["warning"], finding["critical"]) == (None, None)


def test_measured_without_threshold_is_informational():
    finding = measured("uptime", 12, None, unit="s")
    assert (finding.status, finding.message) == ("ok", "uptime is 12 s")


def test_unknown_finding_keeps_reason_and_details():
    finding = unknown("redis", "Connection refused", url="redis://127.0.0.1:1")
    assert finding.to_dict()["status"] == "unknown"
    assert finding.to_dict()["url"] == "redis://127.0.0.1:1"
    assert finding.to_dict()["message"] == "Connection refused"


def _result(*statuses: str) -> CheckResult:
    result = CheckResult()
    for index, status in enumerate(statuses):
        result.add(Finding(f"c{index}", status, f"c{index} is {status}"))
    return result


def test_result_status_is_the_worst_finding():
    assert _result("ok", "warning", "ok").status == "warning"


def test_empty_result_is_unknown_and_says_so():
    result = CheckResult().to_dict("Redis")
    assert (result["status"], result["summary"]) == (
        "unknown",
        "Redis: nothing was checked",
    )


@pytest.mark.parametrize(
    ("statuses", "summary"),
    [
        (("ok", "ok"), "Health OK (2 ok)"),
        (
            ("ok", "warning"),
            "Health WARNING (1 warning, 1 ok): c1 is warning",
        ),
        (
            ("critical", "unknown", "critical", "ok"),
            "Health CRITICAL (2 critical, 1 unknown, 1 ok): c0 is critical; "
            "c2 is critical",
        ),
        (
            ("critical",) * 5,
            "Health CRITICAL (5 critical): c0 is critical; c1 is critical; "
            "c2 is critical (and 2 more)",
        ),
    ],
)
def test_summary_is_one_line_with_verdict_counts_and_worst_messages(statuses, summary):
    assert _result(*statuses).summary("Health") == summary


def test_result_dict_has_every_key_even_when_empty():
    result = _result("ok").to_dict("X")
    assert sorted(result) == ["changed", "checks", "metrics", "status", "summary"]
    assert result["changed"] is False
    assert result["metrics"] == {}
