"""The maintenance report through Ansible: the module, the webhook and the role."""

from __future__ import annotations

import json
import sys
import threading
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from lab.core import LOOPBACK, free_port

MODULE = "trm.maintenance.maintenance_report"
FAKE_PASSWORD = "Tr0ub4dor-fake-pw"
WEBHOOK_PATH = "/services/T000/B000/not-a-real-webhook-secret"
FILES = [
    "junit.xml",
    "maintenance-log.html",
    "maintenance-log.json",
    "maintenance-log.md",
]


def check(status: str, checks: list, metrics: dict | None = None) -> dict:
    """A registered check module result."""
    return {
        "changed": False,
        "status": status,
        "summary": f"{status.upper()} summary",
        "checks": checks,
        "metrics": metrics or {},
    }


def disk_finding(used: int) -> dict:
    """The disk finding of a storage check at ``used`` percent."""
    status = "critical" if used > 90 else "warning" if used > 80 else "ok"
    return {
        "name": "disk_used",
        "status": status,
        "message": f"Disk used is {used}%",
        "value": used,
        "unit": "%",
        "warning": 80,
        "critical": 90,
        "threshold": "warning above 80%, critical above 90%",
        "action": "Free space on the data volume" if status != "ok" else None,
    }


def results(*, disk: int = 95) -> list:
    """A daily run: an ok, a warning, a critical, a failed, a skipped, a manual."""
    return [
        {
            "section": "Application health",
            "task": "Check the health endpoints",
            "cadence": "daily",
            "role": "platform_health",
            "result": check(
                "ok",
                [{"name": "api", "status": "ok", "message": "api answered 200"}],
                {"p95_ms": 120},
            ),
        },
        {
            "section": "Caches",
            "task": "Check Redis memory",
            "cadence": "daily",
            "role": "redis_health",
            "result": check(
                "warning",
                [
                    {
                        "name": "memory",
                        "status": "warning",
                        "message": "Memory is 85% of maxmemory",
                        "action": "Review the eviction policy",
                    }
                ],
            ),
        },
        {
            "section": "Storage",
            "task": "Check disk usage",
            "cadence": "daily",
            "role": "storage",
            "result": check(
                "critical" if disk > 90 else "ok",
                [disk_finding(disk)],
                {"disk_used_pct": disk},
            ),
        },
        {
            "section": "Backups",
            "task": "Verify the nightly backup",
            "cadence": "daily",
            "role": "backups",
            "result": {
                "failed": True,
                "msg": f"Could not list s3://u:{FAKE_PASSWORD}@bucket (password="
                f"{FAKE_PASSWORD})",
            },
        },
        {
            "section": "Replication",
            "task": "Check the replica set",
            "cadence": "daily",
            "role": "mongodb_health",
            "result": {"skipped": True, "skip_reason": "Conditional result was False"},
        },
        {
            "section": "Security review",
            "task": "Review the access logs",
            "cadence": "daily",
            "kind": "manual",
            "items": ["Look for unusual logins"],
        },
    ]


def report_args(tmp_path: Path, **extra: object) -> dict:
    """The module options for a report into ``tmp_path``."""
    return {
        "results": results(),
        "cadence": "daily",
        "report_dir": str(tmp_path),
        "date": "2024-05-06T02:30:00",
        "performed_by": "alice",
        "redact": [FAKE_PASSWORD],
        **extra,
    }


def written(folder: Path) -> str:
    """Every file under ``folder``, concatenated."""
    return "".join(p.read_text() for p in sorted(folder.rglob("*")) if p.is_file())


def test_report_writes_every_format_with_exact_values(ansible, tmp_path: Path):
    result = ansible.module(MODULE, report_args(tmp_path))
    folder = tmp_path / "2024-05-06-daily"

    assert result.get("failed") is not True, result
    assert result["changed"] is True
    assert result["status"] == "critical"
    assert result["fail_on_reached"] is True
    assert result["counts"] == {
        "ok": 1,
        "warning": 1,
        "unknown": 1,
        "critical": 1,
        "skipped": 1,
        "manual_open": 1,
    }
    assert result["report_dir"] == str(folder)
    assert result["files"] == {
        "markdown": str(folder / "maintenance-log.md"),
        "json": str(folder / "maintenance-log.json"),
        "junit": str(folder / "junit.xml"),
        "html": str(folder / "maintenance-log.html"),
    }
    assert sorted(p.name for p in folder.iterdir()) == FILES
    assert [(i["status"], i["section"], i["check"]) for i in result["issues"]] == [
        ("critical", "Storage", "disk_used"),
        ("unknown", "Backups", "Verify the nightly backup"),
        ("warning", "Caches", "memory"),
    ]
    assert [(a["status"], a["action"]) for a in result["next_actions"]] == [
        ("critical", "Free space on the data volume"),
        (
            "unknown",
            "Fix the input of the task 'Verify the nightly backup' in the role "
            "backups and run it again",
        ),
        ("warning", "Review the eviction policy"),
    ]
    assert result["next_actions"][0]["response"] == (
        "Page the on-call engineer; respond within 15 minutes"
    )
    assert result["webhook"] == {"sent": False, "status_code": None, "error": None}
    assert result["trends"] == {}


def test_report_files_hold_the_log(ansible, tmp_path: Path):
    ansible.module(MODULE, report_args(tmp_path, notes=["Certificates renewed"]))
    folder = tmp_path / "2024-05-06-daily"

    markdown = (folder / "maintenance-log.md").read_text().splitlines()
    assert markdown[0] == "# Maintenance Log - 2024-05-06"
    for line in (
        "**Performed by:** alice",
        "**Type:** Daily",
        "**Finished:** 2024-05-06 02:30:00",
        "**Overall status:** CRITICAL",
        "- [x] Check the health endpoints (Application health): OK",
        "- [x] Check Redis memory (Caches): WARNING",
        "- [ ] Review the access logs (Security review): manual review",
        "  - [ ] Look for unusual logins",
        "- Certificates renewed",
        "- Skipped: Check the replica set (Replication): Conditional result was False",
    ):
        assert line in markdown, line
    failed = [line for line in markdown if line.startswith("- [ ] Verify the nightly")]
    assert failed == [
        "- [ ] Verify the nightly backup (Backups): task failed: Could not list "
        "s3://u:***@bucket (password=***)"
    ]

    data = json.loads((folder / "maintenance-log.json").read_text())
    assert (data["format"], data["status"], data["performed_by"]) == (
        1,
        "critical",
        "alice",
    )
    assert data["metrics"] == {
        "application_health.p95_ms": 120,
        "storage.disk_used_pct": 95,
    }

    junit = ET.parse(folder / "junit.xml").getroot()
    assert [junit.get(k) for k in ("tests", "failures", "errors", "skipped")] == [
        "6",
        "2",
        "1",
        "2",
    ]


def test_redacted_values_never_reach_a_file(ansible, tmp_path: Path):
    result = ansible.module(MODULE, report_args(tmp_path))
    text = written(tmp_path)
    assert text.count("***") >= 8
    assert FAKE_PASSWORD not in text
    assert FAKE_PASSWORD not in json.dumps(result)


def test_trend_against_the_previous_day(ansible, tmp_path: Path):
    first = report_args(tmp_path, results=results(disk=70), date="2024-05-05")
    assert ansible.module(MODULE, first)["trends"] == {}
    second = report_args(tmp_path, results=results(disk=95), date="2024-05-06")
    trends = ansible.module(MODULE, second)["trends"]

    assert trends["storage.disk_used_pct"] == {
        "current": 95,
        "previous": 70,
        "previous_date": "2024-05-05",
        "change": 25,
        "change_pct": 35.7,
        "notable": True,
        "history": [{"date": "2024-05-05", "value": 70}],
    }
    assert trends["application_health.p95_ms"]["change"] == 0
    markdown = (tmp_path / "2024-05-06-daily" / "maintenance-log.md").read_text()
    assert (
        "- Trend: storage.disk_used_pct rose from 70 to 95 (+35.7%) since 2024-05-05"
        in markdown.splitlines()
    )


def test_rerun_on_the_same_day_replaces_the_files(ansible, tmp_path: Path):
    ansible.module(MODULE, report_args(tmp_path))
    again = ansible.module(MODULE, report_args(tmp_path, formats=["markdown"]))
    folder = tmp_path / "2024-05-06-daily"
    assert sorted(p.name for p in folder.iterdir()) == ["maintenance-log.md"]
    assert again["files"]["json"] is None
    assert again["trends"] == {}


def test_check_mode_writes_nothing(ansible, tmp_path: Path):
    result = ansible.module(MODULE, report_args(tmp_path), check_mode=True)
    assert list(tmp_path.iterdir()) == []
    assert result["changed"] is True
    assert result["files"]["markdown"] == str(
        tmp_path / "2024-05-06-daily" / "maintenance-log.md"
    )
    assert result["content"]["markdown"].startswith("# Maintenance Log - 2024-05-06\n")


@pytest.mark.parametrize(
    ("fail_on", "reached"),
    [("never", False), ("critical", True), ("warning", True)],
)
def test_fail_on_is_returned_never_raised(ansible, tmp_path, fail_on, reached):
    args = report_args(tmp_path, fail_on=fail_on, formats=["json"])
    result = ansible.module(MODULE, args)
    assert result.get("failed") is not True
    assert result["fail_on_reached"] is reached


def test_bad_cadence_fails_naming_the_option(ansible, tmp_path: Path):
    result = ansible.module(MODULE, report_args(tmp_path, cadence="../daily"))
    assert result["failed"] is True
    assert result["option"] == "cadence"
    assert result["msg"].startswith("Option 'cadence' must be one word")


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.server.posts.append(
            {
                "path": self.path,
                "type": self.headers["Content-Type"],
                "body": json.loads(self.rfile.read(length)),
            }
        )
        code = 404 if self.path.endswith("/gone") else 200
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"ok" if code == 200 else b"no_service")

    def log_message(self, *args: object) -> None:
        """Keep the test output clean."""


@pytest.fixture
def webhook() -> Iterator[ThreadingHTTPServer]:
    """A Slack-like webhook on loopback that records what it is sent."""
    server = ThreadingHTTPServer((LOOPBACK, free_port()), _Hook)
    server.posts = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_webhook_gets_the_verdict_and_top_issues(ansible, tmp_path, webhook):
    url = f"http://{LOOPBACK}:{webhook.server_port}{WEBHOOK_PATH}"
    result = ansible.module(MODULE, report_args(tmp_path, webhook_url=url))

    assert result["webhook"] == {"sent": True, "status_code": 200, "error": None}
    assert len(webhook.posts) == 1
    post = webhook.posts[0]
    assert (post["path"], post["type"]) == (WEBHOOK_PATH, "application/json")
    lines = post["body"]["text"].split("\n")
    assert lines[0] == result["summary"]
    assert lines[0].startswith("Daily maintenance CRITICAL (1 critical, 1 unknown,")
    assert lines[1:] == [
        "- CRITICAL Storage: Disk used is 95%",
        "- UNKNOWN Backups: task failed: Could not list s3://u:***@bucket "
        "(password=***)",
        "- WARNING Caches: Memory is 85% of maxmemory",
    ]
    assert WEBHOOK_PATH not in written(tmp_path)


def test_unreachable_webhook_is_a_warning_not_a_failure(ansible, tmp_path: Path):
    url = f"http://{LOOPBACK}:{free_port()}{WEBHOOK_PATH}"
    result = ansible.module(MODULE, report_args(tmp_path, webhook_url=url))

    assert result.get("failed") is not True
    assert result["webhook"]["sent"] is False
    assert result["webhook"]["status_code"] is None
    assert "Connection refused" in result["webhook"]["error"]
    assert result["warnings"] == [
        "The report summary was not posted to the webhook: "
        f"{result['webhook']['error']}"
    ]
    assert sorted(p.name for p in (tmp_path / "2024-05-06-daily").iterdir()) == FILES
    assert WEBHOOK_PATH not in json.dumps(result)


def test_webhook_error_status_is_reported(ansible, tmp_path, webhook):
    url = f"http://{LOOPBACK}:{webhook.server_port}{WEBHOOK_PATH}/gone"
    result = ansible.module(MODULE, report_args(tmp_path, webhook_url=url))

    assert result.get("failed") is not True
    assert result["webhook"] == {
        "sent": False,
        "status_code": 404,
        "error": "HTTP 404 Not Found",
    }
    assert len(webhook.posts) == 1


def test_ftp_webhook_fails_the_task_without_showing_its_path(ansible, tmp_path):
    url = f"ftp://hooks.example.com{WEBHOOK_PATH}"
    result = ansible.module(MODULE, report_args(tmp_path, webhook_url=url))

    assert result["failed"] is True
    assert result["option"] == "webhook_url"
    assert result["msg"] == (
        "Option 'webhook_url' must be an http or https URL; "
        "got 'ftp://hooks.example.com/***'"
    )
    assert WEBHOOK_PATH not in json.dumps(result)
    assert list(tmp_path.iterdir()) == []


def test_manual_items_given_as_text_are_one_checklist_line(ansible, tmp_path):
    manual = {
        "kind": "manual",
        "section": "Manual reviews",
        "task": "Runbooks",
        "items": "Check the runbooks",
    }
    args = report_args(tmp_path, results=[manual], formats=["json"])
    result = ansible.module(MODULE, args)

    assert result.get("failed") is not True
    assert result["counts"]["manual_open"] == 1
    log = tmp_path / "2024-05-06-daily" / "maintenance-log.json"
    data = json.loads(log.read_text())
    assert data["entries"][0]["items"] == ["Check the runbooks"]


def write_playbook(tmp_path: Path, entries: list) -> Path:
    """A playbook that sets maintenance_results and includes the report role."""
    play = {
        "hosts": "localhost",
        "gather_facts": False,
        "vars": {
            "ansible_python_interpreter": sys.executable,
            "maintenance_cadence": "daily",
            "maintenance_fail_on": "critical",
            "maintenance_results": entries,
            "report_performed_by": "alice",
            "report_redact": [FAKE_PASSWORD],
        },
        "tasks": [
            {
                "name": "Write the report",
                "ansible.builtin.include_role": {"name": "trm.maintenance.report"},
            }
        ],
    }
    # The role's default report_dir is <playbook_dir>/../reports.
    path = tmp_path / "playbooks" / "daily.yml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump([play], sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("disk", "fails"),
    [(95, True), (85, False)],
)
def test_role_fails_the_play_on_critical_only(ansible, tmp_path, disk, fails):
    entries = [e for e in results(disk=disk) if e["section"] != "Backups"]
    leak = {"name": "login", "status": "warning", "message": f"pw {FAKE_PASSWORD}"}
    entries.append({"section": "Backups", "result": check("warning", [leak])})
    run = ansible.playbook(
        write_playbook(tmp_path, entries), "-i", "localhost,", "-c", "local"
    )

    assert (run.rc != 0) is fails, run.stdout + run.stderr
    folders = list((tmp_path / "reports").iterdir())
    assert len(folders) == 1
    assert folders[0].name.endswith("-daily")
    assert sorted(p.name for p in folders[0].iterdir()) == FILES
    status = "CRITICAL" if fails else "WARNING"
    assert f"Daily maintenance {status} (" in run.stdout
    log = (folders[0] / "maintenance-log.md").read_text()
    assert "**Performed by:** alice" in log.splitlines()
    assert FAKE_PASSWORD not in written(tmp_path / "reports")
