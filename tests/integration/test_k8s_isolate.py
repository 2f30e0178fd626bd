"""trm.maintenance.k8s_isolate through Ansible against the lab's Kubernetes API."""

from __future__ import annotations

import hashlib
import json
import stat
from datetime import timedelta

import pytest

from tests.integration.test_k8s_common import (
    APP,
    ISOLATE,
    NS,
    TIMEOUT,
    Line,
    cluster,
    now,
    stamp,
    start_cluster,
    write_lines,
)

pytestmark = pytest.mark.lab
# The shared fixtures, used by name.
FIXTURES = (cluster, start_cluster)


def isolate(ansible, cluster, dest, *, check_mode: bool = False, **args) -> dict:
    """Run the module on the application's Deployment."""
    base = {
        **cluster.connection(),
        "namespace": NS,
        "name": APP,
        "allowed_namespaces": [NS],
        "dest": str(dest),
        "poll_interval": 0.1,
    }
    return ansible.module(ISOLATE, {**base, **args}, check_mode=check_mode)


@pytest.fixture
def logs(cluster):
    """Each pod's own log, and a previous container's log for the first pod."""
    began = now()
    written = {}
    for index, name in enumerate(cluster.names()):
        lines = [
            Line(
                began - timedelta(minutes=30 - i),
                "request",
                f"INFO pod {index} line {i}",
            )
            for i in range(20)
        ]
        write_lines(cluster.logs_dir / f"{name}.log", lines)
        written[name] = "".join(f"{stamp(line.when)} {line.text}\n" for line in lines)
    first = cluster.names()[0]
    crash = [Line(began - timedelta(hours=1), "error", "FATAL out of memory")]
    write_lines(cluster.logs_dir / f"{first}.previous.log", crash)
    written[f"{first}.previous"] = f"{stamp(crash[0].when)} FATAL out of memory\n"
    return written


def test_check_mode_plans_and_changes_nothing(ansible, cluster, logs, tmp_path):
    dest = tmp_path / "incident" / "logs"
    names = cluster.names()
    uids = cluster.uids()
    result = isolate(ansible, cluster, dest, check_mode=True)

    assert result["changed"] is True
    assert [pod["name"] for pod in result["plan"]["pods"]] == names
    assert {pod["uid"] for pod in result["plan"]["pods"]} == uids
    assert result["plan"]["dest"] == str(dest)
    assert result["plan"]["replicas_before"] == 3
    assert result["plan"]["replicas_after"] == 0
    assert result["plan"]["logs"] == [
        str(dest / name / file)
        for name in names
        for file in ("app.log", "app.previous.log")
    ]
    assert result["checks"][0]["message"] == (
        f"Would save up to 6 logs of 3 pods to {dest}, then scale Deployment "
        "trm/trm-app from 3 to 0 replicas"
    )
    assert not dest.exists()
    assert cluster.deployment().spec.replicas == 3
    assert cluster.names() == names
    assert cluster.uids() == uids
    assert "trm.maintenance/replicas-before" not in (
        cluster.deployment().metadata.annotations or {}
    )


def test_isolation_saves_every_log_then_scales_to_zero(
    ansible, cluster, logs, tmp_path
):
    dest = tmp_path / "incident" / "logs"
    names = cluster.names()
    result = isolate(ansible, cluster, dest)

    assert result["status"] == "ok", result["summary"]
    assert result["changed"] is True
    for name in names:
        saved = dest / name / "app.log"
        assert saved.read_text() == logs[name]
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert (dest / names[0] / "app.previous.log").read_text() == logs[
        f"{names[0]}.previous"
    ]
    assert not (dest / names[1] / "app.previous.log").exists()
    deployment = cluster.deployment()
    assert deployment.spec.replicas == 0
    assert deployment.metadata.annotations["trm.maintenance/replicas-before"] == "3"
    assert cluster.pods() == []
    manifest = json.loads((dest / "isolation.json").read_text())
    assert result["manifest"] == str(dest / "isolation.json")
    assert manifest["replicas_before"] == 3
    assert manifest["restore"] == "kubectl -n trm scale deployment/trm-app --replicas=3"
    assert [pod["name"] for pod in manifest["pods"]] == names
    by_path = {entry["path"]: entry for entry in manifest["logs"]}
    first = by_path[str(dest / names[0] / "app.log")]
    assert first["sha256"] == hashlib.sha256(logs[names[0]].encode()).hexdigest()
    assert by_path[str(dest / names[1] / "app.previous.log")]["error"] == (
        "no previous container"
    )
    checks = {check["name"]: check["message"] for check in result["checks"]}
    assert (
        checks["logs_saved"]
        == f"Saved 3 of 3 container logs and 1 previous ones to {dest}"
    )
    assert checks["scaled"] == "Scaled Deployment trm/trm-app from 3 to 0 replicas"
    assert result["metrics"]["logs_saved"] == 4


def test_a_second_isolation_changes_nothing(ansible, cluster, logs, tmp_path):
    isolate(ansible, cluster, tmp_path / "first")
    again = isolate(ansible, cluster, tmp_path / "second")

    assert again["changed"] is False
    assert again["status"] == "ok"
    assert again["checks"][0]["message"] == (
        "Deployment trm/trm-app is already at 0 replicas with no pod left; nothing to "
        "isolate"
    )
    assert not (tmp_path / "second").exists()


def test_a_namespace_outside_the_allow_list_is_refused(ansible, cluster, tmp_path):
    result = isolate(ansible, cluster, tmp_path / "x", allowed_namespaces=["staging"])

    assert result["failed"] is True
    assert result["option"] == "namespace"
    assert (
        cluster.apps.read_namespaced_deployment(
            APP, NS, _request_timeout=TIMEOUT
        ).spec.replicas
        == 3
    )
