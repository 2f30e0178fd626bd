"""Unit tests for the report writers: Markdown, JSON, JUnit XML and HTML."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils import report
from ansible_collections.trm.maintenance.plugins.module_utils import (
    report_render as render,
)

WHEN = report.ReportTime(
    "2024-05-06", "2024-05-06 02:00:00", "2024-05-06 02:20:00", "2024-05-06T02:20:00"
)

DISK = {
    "name": "disk_used",
    "status": "critical",
    "message": "Disk used is 95%, above the critical threshold of 90%",
    "value": 95,
    "unit": "%",
    "warning": 80,
    "critical": 90,
    "threshold": "warning above 80%, critical above 90%",
    "action": "Free space on the data volume",
}
INODES = {
    "name": "inodes",
    "status": "warning",
    "message": "Inodes used is 85%",
    "value": 85,
    "unit": "%",
    "warning": 80,
    "critical": 90,
    "action": "Free space on the data volume",
}
RESULTS = [
    {
        "section": "Application health",
        "task": "Check the health endpoints",
        "result": {
            "status": "ok",
            "summary": "Health OK",
            "checks": [
                {"name": "api", "status": "ok", "message": "api answered"},
                {"name": "web", "status": "ok", "message": "web answered"},
            ],
            "metrics": {"p95_ms": 120},
        },
    },
    {
        "section": "Storage",
        "task": "Check disk usage",
        "result": {"status": "critical", "summary": "Disk", "checks": [DISK, INODES]},
    },
    {
        "section": "Backups",
        "task": "Verify the nightly backup",
        "role": "backups",
        "result": {"failed": True, "msg": "Option 'bucket' is required"},
    },
    {
        "section": "Replication",
        "task": "Check the replica set",
        "result": {"skipped": True, "skip_reason": "Conditional result was False"},
    },
    {
        "section": "Security review",
        "task": "Review the access logs",
        "kind": "manual",
        "items": ["Look for unusual logins", "Check new admin accounts"],
        "notes": ["Ask the SOC about last week"],
    },
    {
        "section": "Security review",
        "task": "Review the firewall rules",
        "kind": "manual",
        "items": ["Compare with the baseline"],
        "done": True,
        "done_by": "bob",
        "done_at": "2024-05-05",
    },
]


def build(results: list, **options: object) -> dict:
    """The report of ``results`` on the fixed day."""
    entries = report.parse_entries(results)
    return report.build_report(
        entries, cadence="daily", when=WHEN, performed_by="alice", **options
    )


@pytest.fixture
def full() -> dict:
    """The report of the realistic results, with one note."""
    return build(RESULTS, notes=["Certificates renewed by hand"])


def section(text: str, title: str) -> list:
    """The non-blank lines of one ``## title`` section of the Markdown log."""
    body = text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in body.splitlines() if line.strip()]


def test_markdown_header_follows_the_guide_template(full: dict):
    lines = render.markdown(full).splitlines()
    assert lines[0] == "# Maintenance Log - 2024-05-06"
    header = [line for line in lines[1:14] if line]
    assert header[:5] == [
        "**Performed by:** alice",
        "**Type:** Daily",
        "**Started:** 2024-05-06 02:00:00",
        "**Finished:** 2024-05-06 02:20:00",
        "**Overall status:** CRITICAL",
    ]
    assert header[5].startswith("**Summary:** Daily maintenance CRITICAL (1 critical")


def test_markdown_tasks_completed_is_a_checklist(full: dict):
    assert section(render.markdown(full), "Tasks Completed") == [
        "- [x] Check the health endpoints (Application health): OK",
        "- [x] Check disk usage (Storage): CRITICAL",
        "- [ ] Verify the nightly backup (Backups): task failed: "
        "Option 'bucket' is required",
        "- [ ] Review the access logs (Security review): manual review",
        "  - [ ] Look for unusual logins",
        "  - [ ] Check new admin accounts",
        "  - Notes: Ask the SOC about last week",
        "- [x] Review the firewall rules (Security review): done by bob on 2024-05-05",
        "  - [x] Compare with the baseline",
    ]


def test_markdown_issues_actions_and_notes(full: dict):
    text = render.markdown(full)
    assert section(text, "Issues Found") == [
        "- **CRITICAL** Storage / disk_used: Disk used is 95%, above the critical "
        "threshold of 90% (value 95% against warning above 80%, critical above 90%)",
        "- **UNKNOWN** Backups / Verify the nightly backup: task failed: "
        "Option 'bucket' is required",
        "- **WARNING** Storage / inodes: Inodes used is 85% "
        "(value 85% against warning 80%, critical 90%)",
    ]
    assert section(text, "Next Actions") == [
        "1. **CRITICAL** Storage: Free space on the data volume. Response: "
        "Page the on-call engineer; respond within 15 minutes",
        "2. **UNKNOWN** Backups: Fix the input of the task 'Verify the nightly "
        "backup' in the role backups and run it again. Response: Find out why the "
        "check could not run; respond within 30 minutes (high)",
    ]
    assert section(text, "Notes") == [
        "- Certificates renewed by hand",
        "- Skipped: Check the replica set (Replication): Conditional result was False",
    ]


def test_markdown_details_table_lists_every_finding(full: dict):
    rows = section(render.markdown(full), "Details")
    assert (
        rows[0] == "| Section | Task | Check | Status | Message | Value | Threshold |"
    )
    assert len(rows) == 2 + 5
    assert rows[4] == (
        "| Storage | Check disk usage | disk_used | CRITICAL | Disk used is 95%, "
        "above the critical threshold of 90% | 95% | warning above 80%, "
        "critical above 90% |"
    )


def test_markdown_says_none_for_empty_sections():
    text = render.markdown(build([]))
    for title in (
        "Tasks Completed",
        "Issues Found",
        "Next Actions",
        "Notes",
        "Details",
    ):
        assert section(text, title) == ["None."], title


def test_markdown_escapes_pipes_in_table_cells():
    result = {"status": "warning", "checks": [{"name": "a|b", "status": "warning"}]}
    rows = section(
        render.markdown(build([{"section": "S", "result": result}])), "Details"
    )
    assert rows[2].startswith("| S | S | a\\|b | WARNING |")


def test_notable_trends_are_named_in_the_notes():
    trend = {
        "current": 150,
        "previous": 100,
        "previous_date": "2024-05-05",
        "change": 50,
        "change_pct": 50.0,
        "notable": True,
        "history": [],
    }
    built = {**build([]), "trends": {"web.p95_ms": trend}}
    assert section(render.markdown(built), "Notes") == [
        "- Trend: web.p95_ms rose from 100 to 150 (+50.0%) since 2024-05-05"
    ]


def parse_junit(text: str) -> ET.Element:
    """Parse JUnit text back, as a CI server would."""
    return ET.fromstring(text.encode("utf-8"))


def test_junit_parses_back_with_exact_counts(full: dict):
    root = parse_junit(render.junit(full))
    assert root.tag == "testsuites"
    assert {k: root.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "9",
        "failures": "2",
        "errors": "1",
        "skipped": "4",
    }
    assert len(root.findall(".//testcase")) == 9
    assert [s.get("name") for s in root.findall("testsuite")] == [
        "Application health",
        "Storage",
        "Backups",
        "Replication",
        "Security review",
    ]


def test_junit_testcases_carry_status_as_failure_error_or_skipped(full: dict):
    root = parse_junit(render.junit(full))
    storage = root.find("testsuite[@name='Storage']")
    cases = storage.findall("testcase")
    assert [c.get("name") for c in cases] == ["disk_used", "inodes"]
    assert {c.get("classname") for c in cases} == {"trm.maintenance.storage"}
    assert [c.find("failure").get("type") for c in cases] == ["critical", "warning"]
    assert cases[0].find("failure").get("message") == DISK["message"]
    error = root.find("testsuite[@name='Backups']/testcase/error")
    assert error.get("message") == "task failed: Option 'bucket' is required"
    review = root.findall("testsuite[@name='Security review']/testcase/skipped")
    assert [s.get("message") for s in review] == [
        "manual review pending",
        "manual review pending",
        "manual review done",
    ]
    health = root.find("testsuite[@name='Application health']")
    assert health.get("tests") == "2"
    assert health.find("testcase").findall("*")[0].tag == "system-out"


def test_junit_drops_characters_xml_cannot_carry():
    result = {"status": "unknown", "checks": [{"name": "x\x00y", "status": "unknown"}]}
    root = parse_junit(render.junit(build([{"section": "S", "result": result}])))
    assert root.find(".//testcase").get("name") == "xy"


HOSTILE = "<script>alert('x')</script>"


def test_html_escapes_every_text():
    results = [
        {
            "section": f"Sec {HOSTILE}",
            "task": f"Task {HOSTILE}",
            "result": {
                "status": "critical",
                "checks": [{"name": HOSTILE, "status": "critical", "message": HOSTILE}],
            },
        },
        {"section": "R", "task": "T", "kind": "manual", "items": [HOSTILE]},
    ]
    page = render.to_html(build(results, notes=[HOSTILE], title=f"Log {HOSTILE}"))
    assert "<script" not in page
    assert page.count("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;") >= 8


def test_html_is_standalone_with_status_colours(full: dict):
    page = render.to_html(full)
    assert page.startswith("<!DOCTYPE html>")
    for external in ("http://", "https://", "src=", "<link", "<script"):
        assert external not in page
    assert '<span class="status status-critical">CRITICAL</span>' in page
    assert ".status-critical {" in page
    assert page.count("<li>") >= 12


def test_json_round_trips_and_replaces_non_finite_numbers(full: dict):
    data = json.loads(render.to_json({**full, "metrics": {"a": float("nan")}}))
    assert data["metrics"] == {"a": "nan"}
    assert data["counts"] == full["counts"]
    assert data["format"] == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Application health", "application_health"),
        ("TLS / Certificates!", "tls_certificates"),
        ("  ", "general"),
    ],
)
def test_slug(text: str, expected: str):
    assert render.slug(text) == expected


def test_write_documents_replaces_files_and_drops_stale_formats(tmp_path: Path):
    folder = tmp_path / "2024-05-06-daily"
    render.write_documents(str(folder), {"markdown": "old", "html": "old"})
    paths = render.write_documents(str(folder), {"markdown": "new"})
    assert paths == {"markdown": str(folder / "maintenance-log.md")}
    assert sorted(os.listdir(folder)) == ["maintenance-log.md"]
    assert (folder / "maintenance-log.md").read_text() == "new"


def test_write_documents_reports_an_unwritable_folder(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(render.ReportWriteError) as raised:
        render.write_documents(str(blocker / "sub"), {"markdown": "x"})
    assert str(blocker / "sub") in str(raised.value)
