"""The k8s_checks role and the incident isolation playbook against the lab.

The lab's application writes 48 hours of log history with known counts for the
last 24 hours (the app record's ``log_counts_24h``). The Kubernetes stand-in
serves that one file as the log of each of the application's three pods, so
every pod reports the planted counts and the totals over the pods are three
times them. A real cluster has one log per pod.
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from lab.core import LOOPBACK, free_port
from lab.orchestrator import down, up
from tests.integration.conftest import lab_inventory
from tests.integration.test_k8s_common import Cluster

pytestmark = pytest.mark.lab
PODS = 3


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """TLS, the Kubernetes stand-in and the application, for this module."""
    state_dir = tmp_path_factory.mktemp("k8s-lab")
    try:
        state = up(state_dir, only=["tls", "k8s", "app"], quiet=True)
        state["state_dir"] = str(state_dir)
        yield state
    finally:
        down(state_dir, quiet=True)


def connection(lab: dict) -> dict:
    """The role's connection variables for the lab."""
    k8s = lab["servers"]["k8s"]
    return {"k8s_checks_kubeconfig": k8s["kubeconfig"], "k8s_checks_context": "trm-lab"}


def run_role(ansible, tmp_path: Path, cadence: str, variables: dict) -> dict:
    """Import k8s_checks in a play and return its entries of maintenance_results."""
    out = tmp_path / f"{cadence}-results.json"
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {
                "ansible_python_interpreter": sys.executable,
                "maintenance_cadence": cadence,
                **variables,
            },
            "tasks": [
                {"ansible.builtin.import_role": {"name": "trm.maintenance.k8s_checks"}},
                {
                    "ansible.builtin.copy": {
                        "content": "{{ maintenance_results | to_json }}",
                        "dest": str(out),
                    }
                },
            ],
        }
    ]
    path = tmp_path / f"{cadence}.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    run = ansible.playbook(path, "-i", "localhost,", "-c", "local")
    assert out.exists(), run.stdout + run.stderr
    return {entry["section"]: entry for entry in json.loads(out.read_text())}


def findings(entry: dict) -> dict:
    """The entry's findings by name."""
    return {check["name"]: check for check in entry["result"]["checks"]}


def test_the_daily_review_reports_the_planted_counts(ansible, lab, tmp_path):
    app = lab["servers"]["app"]
    planted = app["log_counts_24h"]
    variables = {
        **connection(lab),
        "k8s_checks_security_logs": False,
        # The window the lab planted its counts for, to the millisecond.
        "k8s_checks_log_review_since": app["log_window_24h"]["start"],
    }
    entries = run_role(ansible, tmp_path, "daily", variables)

    assert list(entries) == ["Application logs"]
    entry = entries["Application logs"]
    assert entry["cadence"] == "daily"
    assert entry["role"] == "k8s_checks"
    result = entry["result"]
    for log in result["logs"]:
        assert log["counts"] == {
            "errors": planted["error"],
            "payment_failures": planted["payment_failed"],
            "cron_daily_digest": planted["cron_daily_digest_completed"],
            "cron_cleanup_sessions": planted["cron_cleanup_sessions_completed"],
            "cron_failures": 0,
        }
    checks = findings(entry)
    assert checks["errors"]["value"] == PODS * planted["error"]
    assert checks["payment_failures"]["value"] == PODS * planted["payment_failed"]
    assert checks["cron_daily_digest"]["value"] == PODS * 1
    assert checks["coverage"]["value"] == 100.0
    assert {name: check["status"] for name, check in checks.items()} == dict.fromkeys(
        checks, "ok"
    )
    kinds = app["log_error_kinds_24h"]
    top = {
        item["pattern"].split(":")[0]: item["count"] for item in result["top_patterns"]
    }
    assert top == {f"ERROR {kind}": PODS * number for kind, number in kinds.items()}


def test_the_weekly_analysis_flags_the_planted_suspicious_activity(
    ansible, lab, tmp_path
):
    app = lab["servers"]["app"]
    planted = app["log_counts_24h"]
    variables = {
        **connection(lab),
        "k8s_checks_log_review": False,
        "k8s_checks_security_logs_since": app["log_window_24h"]["start"],
    }
    entries = run_role(ansible, tmp_path, "weekly", variables)

    checks = findings(entries["Security logs"])
    assert checks["failed_logins"]["value"] == PODS * planted["failed_login"]
    assert checks["rate_limiting"]["value"] == PODS * planted["rate_limit"]
    assert checks["security_events"]["value"] == 0
    suspicious = checks["suspicious_activity"]
    assert suspicious["value"] == PODS * planted["suspicious_activity"]
    assert suspicious["status"] == "warning"
    assert entries["Security logs"]["result"]["status"] == "warning"
    top = entries["Security logs"]["result"]["top_patterns"][0]
    # The lab's password-guessing run against the admin account leads.
    assert top["pattern"] == (
        "WARN Failed login attempt for user admin@example.org from <ip> (attempt <n>)"
    )
    assert top["count"] >= PODS * 12


def test_the_monthly_failover_test_measures_the_recovery(ansible, lab, tmp_path):
    app, tls = lab["servers"]["app"], lab["servers"]["tls"]
    cluster = Cluster(lab["servers"]["k8s"])
    before = cluster.uids()
    variables = {
        **connection(lab),
        "k8s_checks_log_review": False,
        "k8s_checks_security_logs": False,
        "k8s_checks_failover_test": True,
        "k8s_checks_failover_allowed_namespaces": ["trm"],
        "k8s_checks_failover_ignore_window": True,
        "k8s_checks_failover_health_url": app["health_url"],
        "k8s_checks_failover_health_ca_path": tls["ca_file"],
        "k8s_checks_failover_timeout": 60,
        "k8s_checks_failover_poll_interval": 0.2,
    }
    entries = run_role(ansible, tmp_path, "monthly", variables)

    entry = entries["Failover test"]
    result = entry["result"]
    assert result["status"] == "ok", result["summary"]
    assert result["changed"] is True
    assert {pod["uid"] for pod in result["deleted_pods"]} == before
    assert cluster.uids() == {pod["uid"] for pod in result["replacement_pods"]}
    assert result["recovery_seconds"] == result["metrics"]["recovery_seconds"] > 0
    assert list(result["phases"])[-1] == "healthy"
    assert findings(entry)["recovery"]["unit"] == "s"


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.server.posts.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        """Keep the test output clean."""


@pytest.fixture
def webhook():
    """The security team's webhook on loopback, recording its posts."""
    server = ThreadingHTTPServer((LOOPBACK, free_port()), _Hook)
    server.posts = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://{LOOPBACK}:{server.server_port}/services/T0/B0/fake-secret"
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def run_incident(ansible, lab, tmp_path, webhook, *extra: str, env=None):
    """Run the isolation playbook with the lab inventory."""
    k8s = lab["servers"]["k8s"]
    inventory = lab_inventory(lab, tmp_path)
    variables = {
        "report_dir": str(tmp_path / "reports"),
        "k8s_incident_kubeconfig": k8s["kubeconfig"],
        "k8s_incident_context": "trm-lab",
        "k8s_incident_allowed_namespaces": ["trm"],
        "k8s_incident_webhook_url": webhook.url,
        "k8s_incident_reason": "Leaked API key in use",
    }
    extra_vars = tmp_path / "incident-vars.json"
    extra_vars.write_text(json.dumps(variables))
    return ansible.playbook(
        "playbooks/incident_isolation.yml",
        "-i",
        str(inventory),
        "-e",
        f"@{extra_vars}",
        *extra,
        env=env,
    )


ISOLATE_TASK = (
    "TASK [trm.maintenance.k8s_incident : "
    "Save the application's logs and scale it to zero]"
)


def task_result(stdout: str, task: str) -> dict:
    """The result the default callback showed (at -v, as JSON) for one task."""
    start = stdout.index(task)
    brace = stdout.index("=> {", start) + len("=> ")
    result, _end = json.JSONDecoder().raw_decode(stdout, brace)
    return result


def test_the_isolation_playbook_plans_in_check_mode(ansible, lab, tmp_path, webhook):
    cluster = Cluster(lab["servers"]["k8s"])
    before = cluster.uids()
    pods = cluster.pods()
    names = [pod.metadata.name for pod in pods]
    day = datetime.now().strftime("%Y-%m-%d")
    dest = tmp_path / "reports" / f"{day}-incident" / "logs"
    json_output = {"ANSIBLE_CALLBACK_RESULT_FORMAT": "json"}
    run = run_incident(
        ansible, lab, tmp_path, webhook, "--check", "-v", env=json_output
    )

    assert run.rc == 0, run.stdout + run.stderr
    result = task_result(run.stdout, ISOLATE_TASK)
    plan = result["plan"]
    assert plan["workload"] == {
        "kind": "Deployment",
        "namespace": "trm",
        "name": "trm-app",
    }
    assert [pod["name"] for pod in plan["pods"]] == names
    assert {pod["uid"] for pod in plan["pods"]} == before
    assert [pod["ready"] for pod in plan["pods"]] == [True] * PODS
    assert plan["replicas_before"] == PODS
    assert plan["replicas_after"] == 0
    assert plan["dest"] == str(dest)
    assert plan["logs"] == [
        str(dest / name / file)
        for name in names
        for file in ("app.log", "app.previous.log")
    ]
    assert result["checks"][0]["message"] == (
        f"Would save up to {2 * PODS} logs of {PODS} pods to {dest}, then scale "
        f"Deployment trm/trm-app from {PODS} to 0 replicas"
    )
    assert result["changed"] is True
    assert result["manifest"] is None
    # Nothing was scaled, stopped or written.
    assert "scaled" not in {check["name"] for check in result["checks"]}
    assert not dest.exists()
    assert "Incident maintenance OK (2 ok)" in run.stdout
    assert webhook.posts == []
    assert cluster.uids() == before
    assert cluster.deployment().spec.replicas == PODS
    # Check mode writes neither the logs nor the report.
    assert not (tmp_path / "reports").exists()
    assert "fake-secret" not in run.stdout + run.stderr


def test_the_isolation_playbook_isolates_and_alerts(ansible, lab, tmp_path, webhook):
    cluster = Cluster(lab["servers"]["k8s"])
    names = cluster.names()
    run = run_incident(ansible, lab, tmp_path, webhook)

    assert run.rc == 0, run.stdout + run.stderr
    (folder,) = sorted((tmp_path / "reports").glob("*-incident"))
    report = json.loads((folder / "maintenance-log.json").read_text())
    assert cluster.deployment().spec.replicas == 0
    assert cluster.pods() == []
    for name in names:
        assert (folder / "logs" / name / "app.log").stat().st_size > 0
    assert (folder / "logs" / "isolation.json").exists()
    assert len(webhook.posts) == 1
    text = webhook.posts[0]["text"]
    lines = text.split("\n")
    assert lines[0].startswith("SECURITY INCIDENT: Deployment trm/trm-app isolated by ")
    assert lines[1] == "Incident isolation OK (3 ok)"
    assert lines[2] == f"Replicas 3 -> 0; 3 logs saved to {folder / 'logs'}"
    assert lines[3] == "Reason: Leaked API key in use"
    assert report["status"] == "ok"
    assert report["cadence"] == "incident"
    assert "fake-secret" not in json.dumps(report)
