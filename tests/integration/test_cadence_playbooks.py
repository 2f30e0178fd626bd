"""The weekly, monthly, quarterly and maintenance window playbooks on the lab.

Each run asserts that the report lists every task of its cadence, automated or
manual, with a status. The lab's own planted problems show up as they are: an
expired and an expiring certificate, three inactive admins and three unused API
keys; nx-27017 has no profiler, $indexStats or WiredTiger statistics, so those
findings are unknown here (against a real MongoDB they are not).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.integration.conftest import lab_inventory

# 2026-12-02 is a Wednesday: the database and cache performance day.
WEDNESDAY = "2026-12-02"
# The first Sunday of December 2026, inside the weekly and monthly windows.
IN_WINDOW = "2026-12-06T02:30:00+00:00"
OUT_OF_WINDOW = "2026-12-03T11:00:00+00:00"


@dataclass
class Run:
    """One playbook run and the report it wrote."""

    rc: int
    output: str
    report: dict
    markdown: str

    def tasks(self) -> dict:
        """Map each entry's task to its status (manual entries: open or done)."""
        return {
            entry["task"]: entry.get("status") or entry.get("kind")
            for entry in self.report["entries"]
        }

    def sections(self) -> set:
        """The report's sections."""
        return {entry["section"] for entry in self.report["entries"]}


def _run(ansible, full_lab, tmp_path: Path, cadence: str, *extra: str) -> Run:
    inventory = lab_inventory(full_lab, tmp_path)
    reports = tmp_path / "reports"
    run = ansible.playbook(
        f"playbooks/{cadence}.yml",
        "-i",
        str(inventory),
        "-e",
        f"report_dir={reports}",
        *extra,
    )
    cadence_name = "window" if cadence == "maintenance_window" else cadence
    folders = sorted(reports.glob(f"*-{cadence_name}"))
    assert len(folders) == 1, run.stdout + run.stderr
    return Run(
        run.rc,
        run.stdout + run.stderr,
        json.loads((folders[0] / "maintenance-log.json").read_text()),
        (folders[0] / "maintenance-log.md").read_text(),
    )


def test_weekly_on_a_wednesday_runs_the_performance_theme(ansible, full_lab, tmp_path):
    run = _run(
        ansible,
        full_lab,
        tmp_path,
        "weekly",
        "-e",
        f"maintenance_calendar_date={WEDNESDAY}",
    )
    assert run.sections() == {"Database performance", "Redis cache performance"}
    assert f"Calendar: weekly run for {WEDNESDAY} (Wednesday)" in run.markdown


def test_weekly_with_every_theme_lists_every_task(ansible, full_lab, tmp_path):
    run = _run(
        ansible, full_lab, tmp_path, "weekly", "-e", "maintenance_calendar_all=true"
    )
    tasks = run.tasks()
    assert tasks["Check SSL certificate expiry"] == "critical"  # the lab's expired one
    assert tasks["Review the cache's memory, hit rate and slow commands"] == "ok"
    assert tasks["Review runbooks and dashboards"] == "manual"
    assert "- [ ] Review runbooks and dashboards" in run.markdown
    assert "Database performance" in run.sections()
    assert run.rc != 0  # critical reaches maintenance_fail_on


def test_tags_select_one_part_whatever_the_day(ansible, full_lab, tmp_path):
    run = _run(
        ansible,
        full_lab,
        tmp_path,
        "weekly",
        "--tags",
        "certificates",
        "-e",
        f"maintenance_calendar_date={WEDNESDAY}",
    )
    assert run.sections() == {"TLS certificates"}


def test_monthly_lists_capacity_users_access_restore_and_documentation(
    ansible, full_lab, tmp_path
):
    run = _run(
        ansible, full_lab, tmp_path, "monthly", "-e", "maintenance_calendar_all=true"
    )
    assert {
        "Capacity planning",
        "User activity",
        "Access review",
        "Backups",
        "Manual reviews",
    } <= run.sections()
    assert run.tasks()["Review the documentation"] == "manual"
    assert run.report["status"] == "warning"  # inactive admins, unused API keys


def test_quarterly_lists_the_reviews_to_tick_and_refuses_compaction(
    ansible, full_lab, tmp_path
):
    run = _run(ansible, full_lab, tmp_path, "quarterly")
    tasks = run.tasks()
    for review in (
        "Review the architecture",
        "Penetration test and compliance review",
        "Review business continuity",
    ):
        assert tasks[review] == "manual"
        assert f"- [ ] {review}" in run.markdown
    # The shared windows decide: outside them the compaction does not run.
    assert tasks["Check the maintenance window before compaction"] == "warning"
    assert tasks["Compact large collections"] == "skipped"


def test_quarterly_compaction_runs_inside_the_window(ansible, full_lab, tmp_path):
    run = _run(
        ansible,
        full_lab,
        tmp_path,
        "quarterly",
        "-e",
        f"maintenance_guard_now={IN_WINDOW}",
        "-e",
        "maintenance_guard_timezone=UTC",
    )
    tasks = run.tasks()
    assert tasks["Check the maintenance window before compaction"] == "ok"
    assert tasks["Compact large collections"] in {"ok", "warning"}
    compaction = next(
        e for e in run.report["entries"] if e["task"] == "Compact large collections"
    )
    assert compaction["findings"], compaction


def test_a_manual_review_recorded_as_done_is_ticked(ansible, full_lab, tmp_path):
    done = {"review_architecture": {"by": "alice", "at": "2026-12-01"}}
    run = _run(
        ansible,
        full_lab,
        tmp_path,
        "quarterly",
        "-e",
        json.dumps({"manual_reviews_done": done}),
    )
    assert "- [x] Review the architecture" in run.markdown
    assert "alice" in run.markdown


class _Webhook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.server.posts.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def webhook():
    """A Slack-compatible webhook on loopback that keeps what it receives."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    server.posts = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_the_window_playbook_refuses_outside_the_window(
    ansible, full_lab, tmp_path, webhook
):
    url = f"http://127.0.0.1:{webhook.server_port}/hook"
    run = _run(
        ansible,
        full_lab,
        tmp_path,
        "maintenance_window",
        "-e",
        f"maintenance_guard_now={OUT_OF_WINDOW}",
        "-e",
        "maintenance_guard_timezone=UTC",
        "-e",
        f"report_webhook_url={url}",
    )
    assert run.rc != 0
    assert "Outside the maintenance windows" in run.output
    assert "Announcements" not in run.sections()
    # Only the report's own summary reaches the webhook: no start, no end.
    assert not [p for p in webhook.posts if "window started" in p["text"]]


def test_the_window_playbook_follows_the_checklist_inside_the_window(
    ansible, full_lab, tmp_path, webhook
):
    url = f"http://127.0.0.1:{webhook.server_port}/hook"
    run = _run(
        ansible,
        full_lab,
        tmp_path,
        "maintenance_window",
        "-e",
        f"maintenance_guard_now={IN_WINDOW}",
        "-e",
        "maintenance_guard_timezone=UTC",
        "-e",
        f"report_webhook_url={url}",
    )
    assert run.rc == 0, run.output
    order = [entry["section"] for entry in run.report["entries"]]
    assert order[:3] == ["Maintenance window", "Announcements", "Backups"]
    assert order[-1] == "Announcements"
    assert {"Application health", "MongoDB connections", "Redis"} <= set(order)
    texts = [post["text"] for post in webhook.posts]
    assert any("maintenance window started" in text for text in texts)
    assert any("maintenance window finished" in text for text in texts)
    assert url not in run.markdown
