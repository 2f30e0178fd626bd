"""The failover drill's gates, judged from objects in the API's own shape."""

from __future__ import annotations

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.k8s_gates import (
    budget_gate,
    choose_victims,
    covering_budgets,
    parse_count,
    replicas_gate,
    rollout_gate,
)


def pod(
    name: str,
    *,
    ready: bool = True,
    created: str = "2024-05-01T00:00:00Z",
    deleting: bool = False,
) -> dict:
    meta = {
        "name": name,
        "uid": f"uid-{name}",
        "creationTimestamp": created,
        "namespace": "trm",
    }
    if deleting:
        meta["deletionTimestamp"] = "2024-05-05T00:00:00Z"
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    return {
        "metadata": meta,
        "status": {"conditions": [condition]},
        "spec": {"nodeName": "n1"},
    }


def deployment(
    replicas: int = 3, status: dict | None = None, generation: int = 1
) -> dict:
    full = {
        "observedGeneration": 1,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
    }
    return {
        "kind": "Deployment",
        "metadata": {"name": "trm-app", "namespace": "trm", "generation": generation},
        "spec": {
            "replicas": replicas,
            "template": {"metadata": {"labels": {"app": "trm-app", "tier": "api"}}},
        },
        "status": {**full, **(status or {})},
    }


def statefulset(status: dict) -> dict:
    base = {
        "observedGeneration": 1,
        "readyReplicas": 3,
        "updatedReplicas": 3,
        "currentRevision": "r1",
        "updateRevision": "r1",
    }
    return {
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "trm", "generation": 1},
        "spec": {"replicas": 3},
        "status": {**base, **status},
    }


@pytest.mark.parametrize(
    ("value", "total", "count"),
    [
        ("all", 3, 3),
        ("1", 3, 1),
        (2, 3, 2),
        ("50%", 3, 2),
        ("10%", 3, 1),
        ("100%", 4, 4),
        (None, 3, 1),
    ],
)
def test_parse_count(value, total, count):
    assert parse_count(value, total) == count


@pytest.mark.parametrize("value", ["half", "0", "-1", "0%", "150%"])
def test_bad_counts(value):
    with pytest.raises(OptionError):
        parse_count(value, 3)


def test_victims_are_ready_pods_oldest_first():
    pods = [
        pod("c", created="2024-05-03T00:00:00Z"),
        pod("a", created="2024-05-02T00:00:00Z"),
        pod("b", created="2024-05-02T00:00:00Z", ready=False),
        pod("d", created="2024-05-01T00:00:00Z", deleting=True),
    ]
    assert [p["metadata"]["name"] for p in choose_victims(pods, 2)] == ["a", "c"]


@pytest.mark.parametrize(
    ("desired", "ready", "status"),
    [
        (3, 3, "ok"),
        (3, 2, "ok"),
        (3, 1, "critical"),
        (1, 1, "warning"),
        (2, 0, "critical"),
    ],
)
def test_replicas_gate(desired, ready, status):
    pods = [pod(f"p{i}", ready=i < ready) for i in range(desired)]
    assert replicas_gate(deployment(desired), pods, 2).status == status


@pytest.mark.parametrize(
    ("workload", "problem"),
    [
        (deployment(), None),
        (deployment(generation=2), "generation 2 not observed yet (observed 1)"),
        (deployment(status={"updatedReplicas": 1}), "1 of 3 replicas updated"),
        (deployment(status={"replicas": 4}), "1 old replicas still terminating"),
        (
            deployment(status={"availableReplicas": 2}),
            "2 of 3 updated replicas available",
        ),
        (
            deployment(
                status={
                    "conditions": [
                        {"type": "Progressing", "reason": "ProgressDeadlineExceeded"}
                    ]
                }
            ),
            "the rollout exceeded its progress deadline",
        ),
        (statefulset({}), None),
        (statefulset({"updateRevision": "r2"}), "revision r2 is replacing r1"),
        (statefulset({"readyReplicas": 2}), "2 of 3 replicas ready"),
    ],
)
def test_rollout_gate(workload, problem):
    finding = rollout_gate(workload)
    assert finding.status == ("ok" if problem is None else "warning")
    assert finding.details.get("rollout") == problem


def budget(name: str, allowed: int, selector: dict, **spec) -> dict:
    return {
        "metadata": {"name": name, "namespace": "trm"},
        "spec": {"selector": selector, **(spec or {"minAvailable": 2})},
        "status": {"disruptionsAllowed": allowed, "currentHealthy": 3},
    }


def test_covering_budgets_match_the_pod_template():
    budgets = [
        budget("app", 1, {"matchLabels": {"app": "trm-app"}}),
        budget(
            "tier",
            1,
            {
                "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["api", "web"]}
                ]
            },
        ),
        budget("other", 1, {"matchLabels": {"app": "worker"}}),
        budget(
            "none",
            1,
            {"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]},
        ),
    ]
    found = covering_budgets(budgets, deployment())
    assert [b["metadata"]["name"] for b in found] == ["app", "tier"]


@pytest.mark.parametrize(
    ("allowed", "method", "needed", "planned", "status", "end"),
    [
        (
            1,
            "evict",
            1,
            3,
            "ok",
            "allows 1 disruption(s) now; the 3 evictions proceed as it allows",
        ),
        (
            0,
            "evict",
            1,
            1,
            "warning",
            "allows 0 disruption(s) and the drill needs 1, so it did not run",
        ),
        (
            1,
            "delete",
            3,
            3,
            "warning",
            "allows 1 disruption(s) and the drill needs 3, so it did not run",
        ),
        (3, "delete", 3, 3, "ok", "allows 3 disruption(s) now"),
    ],
)
def test_budget_gate(allowed, method, needed, planned, status, end):
    budgets = [budget("trm-app", allowed, {"matchLabels": {"app": "trm-app"}})]
    finding = budget_gate(budgets, method=method, needed=needed, planned=planned)
    assert finding.status == status
    assert finding.message == f"Budget trm-app (minAvailable 2, 3 healthy) {end}"


def test_two_budgets_stop_evictions_and_none_is_fine():
    two = [budget("a", 1, {}), budget("b", 1, {})]
    assert budget_gate(two, method="evict", needed=1, planned=1).status == "warning"
    assert budget_gate(two, method="delete", needed=1, planned=1).status == "ok"
    assert budget_gate([], method="evict", needed=1, planned=1).message == (
        "No PodDisruptionBudget covers the pods, so none limits the drill"
    )
