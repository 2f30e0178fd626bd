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
# The shared windows decide about the disruptive work, not the lab's shortcut.
GUARDED = (
    "-e",
    "maintenance_guard_timezone=UTC",
    "-e",
    "backup_checks_allow_outside_window=false",
    "-e",
    "mongo_checks_allow_outside_window=false",
)
# The platform's commands: npm scripts that leave a line in the file "ran".
NPM_SCRIPTS = ("rotate-api-keys", "cache:clear", "cache:warm", "db:indexes")
NPM_SCRIPTS += ("db:indexes:health",)

# The report entries, as (section, task, kind, status)
TLS = ("TLS certificates", "Check SSL certificate expiry", "check", "critical")
SECURITY_LOGS = (
    "Security logs",
    "Analyse the security logs for failed logins, suspicious activity and rate "
    "limiting",
    "check",
    "warning",
)
DB_PERFORMANCE = (
    "Database performance",
    "Review slow queries, index usage and collection sizes",
    "check",
    "unknown",  # nx-27017 has no profiler and no $indexStats
)
CACHE = (
    "Redis cache performance",
    "Review the cache's memory, hit rate and slow commands",
    "check",
    "ok",
)
DEPENDENCIES = ("Dependencies", "Review the npm dependencies", "skipped", None)
RUNBOOKS = ("Manual reviews", "Review runbooks and dashboards", "manual", None)


def window(work: str, status: str) -> tuple:
    """The guard's entry before ``work``."""
    return (
        "Maintenance window",
        f"Check the maintenance window {work}",
        "check",
        status,
    )


def command(task: str, status: str | None) -> tuple:
    """A platform command's entry; None: skipped."""
    kind = "check" if status else "skipped"
    return ("Platform commands", task, kind, status)


CACHE_CLEAR, CACHE_WARM = "Clear the application cache", "Warm the application cache"
INDEXES, INDEX_HEALTH = "Create the database indexes", "Check the database index health"
ROTATE = "Rotate the API keys"
BEFORE_COMMANDS = "before the platform commands"
RESTORE = (
    "Backups",
    "Restore the latest backup into a test database and compare counts",
)
FAILOVER = (
    "Failover test",
    "Test failover by disrupting the application's pods and timing the recovery",
)
DR_DRILL = (
    "Disaster recovery",
    "Measure RTO (timed restore) and RPO (backup age) in a DR drill",
)
COMPACTION = ("Database optimisation", "Compact large collections")
CAPACITY = (
    "Capacity planning",
    "Review data, storage and index growth",
    "check",
    "ok",
)
USERS = (
    "User activity",
    "Review monthly active, new and churned users",
    "check",
    "ok",
)
ACCESS = (
    "Access review",
    "Review admin accounts and API keys",
    "check",
    "warning",  # three inactive admins, three unused API keys
)
DOCUMENTATION = ("Manual reviews", "Review the documentation", "manual", None)
OPERATIONS = (
    "Database optimisation",
    "Review long-running operations",
    "check",
    "unknown",  # nx-27017 has no currentOp
)
QUARTERLY_REVIEWS = {
    ("Manual reviews", review, "manual", None)
    for review in (
        "Review the architecture",
        "Penetration test and compliance review",
        "Review business continuity",
    )
}


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

    def entries(self) -> list:
        """Each entry as (section, task, kind, status), in the log's order."""
        return [
            (entry["section"], entry["task"], entry["kind"], entry.get("status"))
            for entry in self.report["entries"]
        ]

    def entry(self, task: str) -> dict:
        """The one entry of ``task``."""
        (found,) = [e for e in self.report["entries"] if e["task"] == task]
        return found


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """The application's folder: its npm scripts record that they ran."""
    folder = tmp_path / "app"
    folder.mkdir()
    scripts = {name: f"echo {name} >> ran && echo done {name}" for name in NPM_SCRIPTS}
    manifest = {"name": "trm-api", "version": "1.0.0", "private": True}
    (folder / "package.json").write_text(json.dumps({**manifest, "scripts": scripts}))
    return folder


def ran(folder: Path) -> list:
    """The npm scripts that ran, in order."""
    marker = folder / "ran"
    return marker.read_text().split() if marker.exists() else []


def at(now: str, folder: Path) -> tuple:
    """Extra vars: the guard judges ``now``; the commands run in ``folder``."""
    return (*GUARDED, "-e", f"maintenance_guard_now={now}", "-e",
            f"platform_commands_app_dir={folder}")  # fmt: skip


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
    assert run.sections() == {
        "Database performance",
        "Redis cache performance",
        "Platform commands",
    }
    assert f"Calendar: weekly run for {WEDNESDAY} (Wednesday)" in run.markdown


def test_weekly_with_every_theme_lists_every_task(ansible, full_lab, tmp_path, app):
    run = _run(
        ansible,
        full_lab,
        tmp_path,
        "weekly",
        "-e",
        "maintenance_calendar_all=true",
        *at(OUT_OF_WINDOW, app),
    )
    assert run.entries() == [
        TLS,
        SECURITY_LOGS,
        DB_PERFORMANCE,
        CACHE,
        window(BEFORE_COMMANDS, "warning"),
        command(CACHE_CLEAR, None),
        command(CACHE_WARM, None),
        DEPENDENCIES,
        RUNBOOKS,
    ]
    assert ran(app) == []
    reason = run.entry(CACHE_CLEAR)["message"]
    assert reason.startswith(
        "cache-clear was not run: it changes the platform and waits for a "
        "maintenance window. Outside the maintenance windows"
    )
    assert "opens Sun 2026-12-06 02:00 UTC" in reason
    tasks = run.tasks()
    assert tasks["Check SSL certificate expiry"] == "critical"  # the lab's expired one
    assert tasks["Review the cache's memory, hit rate and slow commands"] == "ok"
    assert tasks["Review runbooks and dashboards"] == "manual"
    assert "- [ ] Review runbooks and dashboards" in run.markdown
    assert "Database performance" in run.sections()
    assert run.rc != 0  # critical reaches maintenance_fail_on


WEEKDAYS = {
    "2026-11-30": [TLS],
    "2026-12-01": [SECURITY_LOGS],
    "2026-12-02": [
        DB_PERFORMANCE,
        CACHE,
        window(BEFORE_COMMANDS, "warning"),
        command(CACHE_CLEAR, None),
        command(CACHE_WARM, None),
    ],
    "2026-12-03": [RUNBOOKS],
    "2026-12-04": [DEPENDENCIES],
}


@pytest.mark.parametrize(
    ("day", "name"),
    [
        ("2026-11-30", "Monday"),
        ("2026-12-01", "Tuesday"),
        ("2026-12-02", "Wednesday"),
        ("2026-12-03", "Thursday"),
        ("2026-12-04", "Friday"),
    ],
)
def test_weekly_runs_the_theme_of_each_weekday(
    ansible, full_lab, tmp_path, app, day, name
):
    run = _run(
        ansible,
        full_lab,
        tmp_path,
        "weekly",
        "-e",
        f"maintenance_calendar_date={day}",
        *at(OUT_OF_WINDOW, app),
    )
    assert run.entries() == WEEKDAYS[day]
    assert f"Calendar: weekly run for {day} ({name})" in run.markdown
    assert ran(app) == []


WEEKS = {
    "2026-12-01": (
        "Week 1",
        [
            window("before the restore test", "warning"),
            (*RESTORE, "skipped", None),
            DOCUMENTATION,
        ],
    ),
    "2026-12-08": (
        "Week 2",
        [
            window("before the failover drill", "warning"),
            (*FAILOVER, "skipped", None),
        ],
    ),
    "2026-12-15": (
        "Week 3",
        [
            CAPACITY,
            window(BEFORE_COMMANDS, "warning"),
            command(INDEXES, None),
            command(INDEX_HEALTH, "ok"),
        ],
    ),
    "2026-12-22": ("Week 4", [USERS, ACCESS]),
}


@pytest.mark.parametrize("day", sorted(WEEKS))
def test_monthly_runs_the_theme_of_each_week_of_the_month(
    ansible, full_lab, tmp_path, app, day
):
    theme, expected = WEEKS[day]
    run = _run(
        ansible,
        full_lab,
        tmp_path,
        "monthly",
        "-e",
        f"maintenance_calendar_date={day}",
        *at(OUT_OF_WINDOW, app),
    )
    assert run.entries() == expected
    assert f"Calendar: monthly run for {day} ({theme})" in run.markdown
    # Read-only: the index health runs outside the window too.
    assert ran(app) == (["db:indexes:health"] if day == "2026-12-15" else [])


def test_tags_security_runs_every_security_part_of_the_week(
    ansible, full_lab, tmp_path, app
):
    run = _run(
        ansible,
        full_lab,
        tmp_path,
        "weekly",
        "--tags",
        "security",
        "-e",
        f"maintenance_calendar_date={WEDNESDAY}",
        *at(OUT_OF_WINDOW, app),
    )
    assert run.entries() == [TLS, SECURITY_LOGS, DEPENDENCIES]
    assert ran(app) == []


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


MONTHLY_INSIDE = [
    window("before the restore test", "ok"),
    (*RESTORE, "check", "ok"),
    window("before the failover drill", "ok"),
    (*FAILOVER, "check", "ok"),
    CAPACITY,
    USERS,
    ACCESS,
    window(BEFORE_COMMANDS, "ok"),
    command(INDEXES, "ok"),
    command(INDEX_HEALTH, "ok"),
    DOCUMENTATION,
]
MONTHLY_OUTSIDE = [
    window("before the restore test", "warning"),
    (*RESTORE, "skipped", None),
    window("before the failover drill", "warning"),
    (*FAILOVER, "skipped", None),
    CAPACITY,
    USERS,
    ACCESS,
    window(BEFORE_COMMANDS, "warning"),
    command(INDEXES, None),
    command(INDEX_HEALTH, "ok"),
    DOCUMENTATION,
]


def test_monthly_inside_the_window_runs_the_restore_test_and_failover_drill(
    ansible, full_lab, tmp_path, app
):
    run = _run(
        ansible,
        full_lab,
        tmp_path,
        "monthly",
        "-e",
        "maintenance_calendar_all=true",
        *at(IN_WINDOW, app),
    )
    assert run.entries() == MONTHLY_INSIDE
    assert ran(app) == ["db:indexes", "db:indexes:health"]

    restore = run.entry(RESTORE[1])["metrics"]
    assert restore["restored_documents"] == restore["documents_total"] > 0
    assert restore["rto_seconds"] > 0
    drill = run.entry(FAILOVER[1])["metrics"]
    assert drill["pods_disrupted"] == drill["replicas"] == 3  # the lab's replicas
    assert 0 < drill["disrupt_seconds"] <= drill["recovery_seconds"]
    indexes = run.entry(INDEXES)
    assert indexes["metrics"]["rc"] == 0
    assert indexes["findings"][0]["stdout"].endswith("done db:indexes")


def test_monthly_outside_the_window_skips_the_restore_test_and_failover_drill(
    ansible, full_lab, tmp_path, app
):
    run = _run(
        ansible,
        full_lab,
        tmp_path,
        "monthly",
        "-e",
        "maintenance_calendar_all=true",
        *at(OUT_OF_WINDOW, app),
    )
    assert run.entries() == MONTHLY_OUTSIDE
    assert ran(app) == ["db:indexes:health"]
    assert run.entry(RESTORE[1])["metrics"] == {}
    assert run.entry(FAILOVER[1])["metrics"] == {}


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
    ansible, full_lab, tmp_path, app
):
    run = _run(ansible, full_lab, tmp_path, "quarterly", *at(OUT_OF_WINDOW, app))
    assert run.entries()[:7] == [
        window("before the DR drill", "warning"),
        (*DR_DRILL, "skipped", None),
        OPERATIONS,
        window("before compaction", "warning"),
        (*COMPACTION, "skipped", None),
        window(BEFORE_COMMANDS, "warning"),
        command(ROTATE, None),
    ]
    assert set(run.entries()[7:]) == QUARTERLY_REVIEWS
    assert len(run.entries()) == 10
    assert ran(app) == []
    assert run.entry(DR_DRILL[1])["metrics"] == {}
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


def test_quarterly_compaction_runs_inside_the_window(ansible, full_lab, tmp_path, app):
    run = _run(
        ansible,
        full_lab,
        tmp_path,
        "quarterly",
        "-e",
        "maintenance_calendar_all=true",
        *at(IN_WINDOW, app),
    )
    assert run.entries()[:7] == [
        window("before the DR drill", "ok"),
        (*DR_DRILL, "check", "ok"),
        OPERATIONS,
        window("before compaction", "ok"),
        (*COMPACTION, "check", "ok"),
        window(BEFORE_COMMANDS, "ok"),
        command(ROTATE, "ok"),
    ]
    assert set(run.entries()[7:]) == QUARTERLY_REVIEWS
    assert len(run.entries()) == 10
    assert ran(app) == ["rotate-api-keys"]
    drill = run.entry(DR_DRILL[1])["metrics"]
    assert drill["restored_documents"] == drill["documents_total"] > 0
    assert drill["rto_seconds"] > 0
    assert drill["rpo_seconds"] == drill["backup_age_seconds"] > 0
    compacted = run.entry(COMPACTION[1])["metrics"]
    assert compacted["collections_compacted"] == compacted["collections_planned"] > 0
    assert compacted["compaction_seconds"] > 0
    rotation = run.entry(ROTATE)["findings"][0]
    assert rotation["stdout"].endswith("done rotate-api-keys")
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


OPERATOR_TASKS = """\
- name: Rebuild the referral search index
  ansible.builtin.set_fact:
    maintenance_results: >-
      {{ maintenance_results | default([]) + [{
           'section': 'Operator tasks',
           'task': 'Rebuild the referral search index',
           'cadence': maintenance_cadence,
           'role': 'operator',
           'result': {'status': 'ok', 'summary': 'Index rebuilt',
                      'checks': [{'name': 'search_index', 'status': 'ok',
                                  'message': 'Rebuilt in 12 s'}],
                      'metrics': {'rebuild_seconds': 12}}}] }}
  run_once: true
"""


def test_the_window_playbook_runs_the_operators_tasks_in_the_checklists_order(
    ansible, full_lab, tmp_path, app
):
    tasks_file = tmp_path / "window-2026-12-06.yml"
    tasks_file.write_text(OPERATOR_TASKS)
    run = _run(
        ansible,
        full_lab,
        tmp_path,
        "maintenance_window",
        *at(IN_WINDOW, app),
        "-e",
        f"maintenance_window_tasks_file={tasks_file}",
    )
    assert run.rc == 0, run.output
    order = [(section, task) for section, task, _kind, _status in run.entries()]
    start = ("Announcements", "Announce the start of the maintenance")
    operator = ("Operator tasks", "Rebuild the referral search index")
    end = ("Announcements", "Announce the end of the maintenance")
    assert order[0] == (
        "Maintenance window",
        "Check that the maintenance window is open",
    )
    assert order[1] == start
    backups = [i for i, (section, _task) in enumerate(order) if section == "Backups"]
    first_health = min(
        i for i, (section, _task) in enumerate(order) if section == "Application health"
    )
    commands = [
        i for i, (section, _task) in enumerate(order) if section == "Platform commands"
    ]
    assert backups and commands
    assert 1 < min(backups) <= max(backups) < order.index(operator)
    assert order.index(operator) < min(commands) <= max(commands) < first_health
    assert order[-1] == end
    assert order.count(start) == order.count(end) == 1
    assert run.entry(operator[1])["metrics"] == {"rebuild_seconds": 12}
    # The night's platform commands, in the list's order, inside the window.
    assert ran(app) == ["cache:clear", "cache:warm", "db:indexes", "db:indexes:health"]
    assert [e for e in run.entries() if e[0] == "Platform commands"] == [
        command(CACHE_CLEAR, "ok"),
        command(CACHE_WARM, "ok"),
        command(INDEXES, "ok"),
        command(INDEX_HEALTH, "ok"),
    ]
