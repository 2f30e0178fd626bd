"""trm.maintenance.k8s_failover through Ansible against the lab's Kubernetes API.

The stand-in deletes evicted pods at once (no Terminating phase) and turns new
pods Ready after a fixed delay, so these tests prove the drill's logic and its
bookkeeping, not how a real cluster's kubelet and scheduler behave.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lab.core import LOOPBACK, free_port
from tests.integration.test_k8s_common import (
    APP,
    DRILL,
    NS,
    TIMEOUT,
    cluster,
    create_statefulset,
    start_cluster,
)

pytestmark = pytest.mark.lab
# The shared fixtures, used by name.
FIXTURES = (cluster, start_cluster)
PHASES = ["disrupt", "deleted", "scheduled", "ready", "available"]


def drill(ansible, cluster, *, check_mode: bool = False, **args) -> dict:
    """Run the module on the application's Deployment, outside any window."""
    base = {
        **cluster.connection(),
        "namespace": NS,
        "name": APP,
        "allowed_namespaces": [NS],
        "ignore_window": True,
        "poll_interval": 0.1,
        "timeout": 30,
    }
    merged = {
        key: value for key, value in {**base, **args}.items() if value is not None
    }
    return ansible.module(DRILL, merged, check_mode=check_mode)


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"status": self.server.state}).encode()
        self.send_response(200 if self.server.state == "healthy" else 503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.hits += 1

    def log_message(self, *args: object) -> None:
        """Keep the test output clean."""


@pytest.fixture
def health():
    """A health URL whose answer the test chooses."""
    server = ThreadingHTTPServer((LOOPBACK, free_port()), _Health)
    server.state, server.hits = "healthy", 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://{LOOPBACK}:{server.server_port}/health"
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_a_drill_of_every_pod_recovers_and_is_timed(ansible, cluster, health):
    before = {pod.metadata.name: pod.metadata.uid for pod in cluster.pods()}
    result = drill(
        ansible,
        cluster,
        pods="all",
        health_check={"url": health.url, "json": {"status": "healthy"}},
    )

    assert result["changed"] is True
    assert result["status"] == "ok", result["summary"]
    assert sorted(pod["name"] for pod in result["deleted_pods"]) == sorted(before)
    assert {pod["uid"] for pod in result["deleted_pods"]} == set(before.values())
    replacements = {pod["uid"] for pod in result["replacement_pods"]}
    assert len(replacements) == 3
    assert replacements.isdisjoint(before.values())
    assert cluster.uids() == replacements
    assert list(result["phases"]) == [*PHASES, "healthy"]
    assert result["recovery_seconds"] == pytest.approx(
        result["phases"]["healthy"] - result["deleted_pods"][0]["requested_seconds"],
        abs=0.002,
    )
    # The budget (minAvailable 2) lets one pod go at a time: each later eviction
    # waited for a replacement to be ready (0.3 s in this lab).
    assert result["recovery_seconds"] >= 0.6
    events = [event["event"] for event in result["timeline"]]
    assert events.count("evicted") == 3
    assert "refused" in events
    assert events[-1] == "healthy"
    assert health.hits >= 1
    recovery = result["checks"][-1]
    assert recovery["name"] == "recovery"
    assert recovery["message"].startswith(
        "Recovery of Deployment trm/trm-app after 3 pod(s) evicted is "
    )
    assert result["metrics"]["recovery_seconds"] == result["recovery_seconds"]
    assert result["stuck_phase"] is None


def test_check_mode_plans_and_disrupts_nothing(ansible, cluster):
    before = cluster.uids()
    result = drill(
        ansible,
        cluster,
        check_mode=True,
        name=None,
        label_selectors=[f"app={APP}"],
        pods="50%",
    )

    assert result["changed"] is True
    assert result["refused"] is False
    assert len(result["plan"]["pods"]) == 2
    assert result["plan"]["gates"] == {
        "plan": True,
        "ready_replicas": True,
        "rollout": True,
        "disruption_budget": True,
        "maintenance_window": True,
        "eviction": True,
    }
    assert result["timeline"] == []
    assert result["deleted_pods"] == []
    time.sleep(0.3)
    assert cluster.uids() == before


def test_a_deployment_with_one_replica_is_refused(ansible, start_cluster):
    single = start_cluster(ready_delay=0.3, replicas=1)
    before = single.uids()
    result = drill(ansible, single)

    assert result["changed"] is False
    assert result["refused"] is True
    assert result["status"] == "warning"
    replicas = next(c for c in result["checks"] if c["name"] == "ready_replicas")
    assert replicas["message"] == (
        "Deployment trm/trm-app has 1 of 1 replicas ready; a failover drill needs at "
        "least 2, so it did not run"
    )
    assert single.uids() == before


def test_a_budget_that_allows_nothing_is_refused(ansible, cluster):
    cluster.policy.patch_namespaced_pod_disruption_budget(
        APP, NS, {"spec": {"minAvailable": 3}}, _request_timeout=TIMEOUT
    )
    _wait_for_budget(cluster, allowed=0)
    before = cluster.uids()
    result = drill(ansible, cluster)

    assert result["refused"] is True
    assert result["status"] == "warning"
    budget = next(c for c in result["checks"] if c["name"] == "disruption_budget")
    assert budget["message"] == (
        "Budget trm-app (minAvailable 3, 3 healthy) allows 0 disruption(s) and the "
        "drill needs 1, so it did not run"
    )
    assert "eviction" not in result["plan"]["gates"]
    assert cluster.uids() == before


def test_forced_deletion_of_every_pod_at_once_needs_a_budget_that_allows_it(
    ansible, cluster
):
    result = drill(ansible, cluster, pods="all", method="delete", grace_period=0)

    budget = next(c for c in result["checks"] if c["name"] == "disruption_budget")
    assert result["refused"] is True
    assert budget["message"].endswith(
        "allows 1 disruption(s) and the drill needs 3, so it did not run"
    )


def test_forced_deletion_one_by_one_recovers(ansible, cluster):
    before = cluster.uids()
    result = drill(
        ansible, cluster, pods="2", method="delete", grace_period=0, one_by_one=True
    )

    assert result["status"] == "ok", result["summary"]
    events = [event["event"] for event in result["timeline"]]
    assert events.count("deleted") == 2 + 2
    assert events.count("available") == 2
    assert len(result["replacement_pods"]) == 2
    assert len(before & cluster.uids()) == 1


def test_a_statefulset_drill_brings_back_the_same_names_with_new_uids(ansible, cluster):
    before = create_statefulset(cluster, "trm-db")
    result = drill(ansible, cluster, kind="StatefulSet", name="trm-db", pods="all")

    assert result["status"] == "ok", result["summary"]
    assert result["plan"]["workload"]["kind"] == "StatefulSet"
    assert "No PodDisruptionBudget covers the pods" in result["checks"][3]["message"]
    names = [pod.metadata.name for pod in before]
    assert sorted(p["name"] for p in result["replacement_pods"]) == names
    old = {pod.metadata.uid for pod in before}
    assert old.isdisjoint(p["uid"] for p in result["replacement_pods"])
    # One pod at a time, in order: each replacement waited for the one before.
    ready = [p["ready_seconds"] for p in result["replacement_pods"]]
    assert ready == sorted(ready)
    assert result["recovery_seconds"] >= 0.6


def test_pods_that_never_become_ready_stop_the_drill_critical(ansible, start_cluster):
    stuck = start_cluster(never_ready=True, ready_delay=0.1)
    result = drill(ansible, stuck, timeout=3)

    assert result["changed"] is True
    assert result["status"] == "critical"
    assert result["stuck_phase"] == "ready"
    assert result["recovery_seconds"] is None
    replacement = result["replacement_pods"][0]
    recovery = result["checks"][-1]
    assert recovery["message"] == (
        "Deployment trm/trm-app did not recover within 3 s: stuck waiting for the "
        "replacement pods to become ready (0 of 1 replacement pods ready; waiting: "
        f"{replacement['name']} (ContainerCreating))"
    )
    assert recovery["stuck_phase"] == "ready"
    assert list(result["phases"]) == ["disrupt", "deleted", "scheduled"]


def test_an_unhealthy_application_stops_the_drill_in_the_health_phase(
    ansible, cluster, health
):
    health.state = "degraded"
    result = drill(ansible, cluster, timeout=3, health_check={"url": health.url})

    assert result["status"] == "critical"
    assert result["stuck_phase"] == "healthy"
    message = result["checks"][-1]["message"]
    assert "stuck waiting for the health URL to answer as expected (health " in message
    assert "answered HTTP 503" in message


@pytest.mark.parametrize(
    ("now", "status", "changed"),
    [
        ("2024-05-06T10:00:00+00:00", "unknown", False),
        ("2024-05-05T03:00:00Z", "ok", True),
    ],
)
def test_the_maintenance_window_gates_the_drill(ansible, cluster, now, status, changed):
    window = {"weekdays": ["sunday"], "start": "02:00", "end": "04:00", "now": now}
    result = drill(ansible, cluster, ignore_window=False, maintenance_window=window)

    gate = next(c for c in result["checks"] if c["name"] == "maintenance_window")
    assert result["status"] == status
    assert result["changed"] is changed
    if changed:
        assert gate["message"] == (
            "Inside the maintenance window Sunday 02:00-04:00 UTC (ends "
            "2024-05-05T04:00+00:00)"
        )
    else:
        assert gate["message"] == (
            "Outside the maintenance window Sunday 02:00-04:00 UTC; the next one "
            "starts 2024-05-12T02:00+00:00, so the drill did not run"
        )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            {"allowed_namespaces": ["staging"]},
            "Option 'namespace' is not in allowed_namespaces ['staging']; add it there "
            "to allow disruptive work in it; got 'trm'",
        ),
        (
            {"name": "trm-api"},
            "Option 'name' names no Deployment in namespace trm; got 'trm-api'",
        ),
        (
            {"pods": "half"},
            "Option 'pods' must be 'all', a number of pods or a share like '50%'; "
            "got 'half'",
        ),
        (
            {"health_check": {"url": "ftp://example.org/"}},
            "Option 'health_check.url' must be an http:// or https:// URL; "
            "got 'ftp://example.org/'",
        ),
        (
            {"health_check": {"url": "http://example.org/", "timeout": 0}},
            "Option 'health_check.timeout' must be a number of seconds above zero; "
            "got 0.0",
        ),
    ],
)
def test_bad_input_fails_the_task(ansible, cluster, args, message):
    before = cluster.uids()
    result = drill(ansible, cluster, **args)

    assert result["failed"] is True
    assert result["msg"] == message
    assert cluster.uids() == before


def _wait_for_budget(cluster, *, allowed: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        budget = cluster.policy.read_namespaced_pod_disruption_budget(
            APP, NS, _request_timeout=TIMEOUT
        )
        if budget.status.disruptions_allowed == allowed:
            return
        time.sleep(0.05)
    raise AssertionError(f"the budget never allowed {allowed}")
