"""The failover drill's gates, judged from objects in the API's own shape."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.k8s_gates import (
    budget_gate,
    choose_victims,
    covering_budgets,
    parse_count,
    parse_drill_window,
    replicas_gate,
    rollout_gate,
    window_gate,
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


# The maintenance window gate, on the collection's window model

SUNDAY_WINDOW = {"weekdays": ["sunday"], "start": "02:00", "end": "04:00"}


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize(
    ("spec", "now", "inside", "next_start"),
    [
        # 2024-05-05 is a Sunday.
        (SUNDAY_WINDOW, "2024-05-05T02:00:00Z", True, "2024-05-12T02:00+00:00"),
        (SUNDAY_WINDOW, "2024-05-05T03:59:59Z", True, "2024-05-12T02:00+00:00"),
        (SUNDAY_WINDOW, "2024-05-05T04:00:00Z", False, "2024-05-12T02:00+00:00"),
        (SUNDAY_WINDOW, "2024-05-04T02:30:00Z", False, "2024-05-05T02:00+00:00"),
        # Saturday 23:00 to Sunday 01:00, judged just after midnight.
        (
            {"weekdays": ["sat"], "start": "23:00", "end": "01:00"},
            "2024-05-05T00:30:00Z",
            True,
            "2024-05-11T23:00+00:00",
        ),
        # Berlin is UTC+2 in May: 02:30 there is 00:30 UTC.
        (
            {**SUNDAY_WINDOW, "timezone": "Europe/Berlin"},
            "2024-05-05T00:30:00Z",
            True,
            "2024-05-12T02:00+02:00",
        ),
        (
            {**SUNDAY_WINDOW, "timezone": "-05:00"},
            "2024-05-05T07:30:00Z",
            True,
            "2024-05-12T02:00-05:00",
        ),
        # Two days: Saturday's window is next after Wednesday's.
        (
            {"weekdays": ["wed", "saturday"], "start": "22:00", "end": "23:30"},
            "2024-05-08T23:30:00Z",
            False,
            "2024-05-11T22:00+00:00",
        ),
    ],
)
def test_window_gate_says_where_now_stands(spec, now, inside, next_start):
    window = parse_drill_window(spec, option="maintenance_window")
    finding = window_gate(window, _at(now), ignore=False)

    assert finding.details["inside_window"] is inside
    assert finding.details["next_window"] == next_start
    assert finding.status == ("ok" if inside else "unknown")


def test_the_default_is_the_guides_sunday_window():
    window = parse_drill_window(None, option="maintenance_window")
    inside = window_gate(
        window, datetime(2024, 5, 5, 3, tzinfo=timezone.utc), ignore=False
    )
    outside = window_gate(window, _at("2024-05-06T10:00:00Z"), ignore=True)

    assert window.label == "Sunday 02:00-04:00 UTC"
    assert inside.message == (
        "Inside the maintenance window Sunday 02:00-04:00 UTC (ends "
        "2024-05-05T04:00+00:00)"
    )
    assert (outside.status, outside.message) == (
        "ok",
        "Outside the maintenance window Sunday 02:00-04:00 UTC; the next one starts "
        "2024-05-12T02:00+00:00; overridden with ignore_window",
    )


def test_the_window_lasts_its_duration_across_a_clock_change():
    # London moves to BST at 01:00 UTC on 2024-03-31: 00:30-02:30 local is
    # two hours of elapsed time, so it ends at 03:30 on the wall clock.
    spec = {"weekdays": ["sunday"], "start": "00:30", "end": "02:30"}
    window = parse_drill_window({**spec, "timezone": "Europe/London"}, option="w")
    finding = window_gate(window, _at("2024-03-31T02:15:00Z"), ignore=False)

    assert finding.message == (
        "Inside the maintenance window Sunday 00:30-02:30 Europe/London (ends "
        "2024-03-31T03:30+01:00)"
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"weekdays": ["someday"]},
            "Option 'w.weekdays[0]' must be a day of the week such as 'sunday'; "
            "got 'someday'",
        ),
        (
            {"start": "2am"},
            "Option 'w.start' must be a time of day as \"HH:MM\", in quotes; got '2am'",
        ),
        (
            {"end": "24:00"},
            "Option 'w.end' must be a time of day as \"HH:MM\", in quotes; got '24:00'",
        ),
        (
            {"start": "02:00", "end": "02:00"},
            "Option 'w' must have an end different from its start; got "
            "{'weekdays': ['sunday'], 'start': '02:00', 'end': '02:00', "
            "'timezone': 'UTC'}",
        ),
        (
            {"timezone": "Mars/Olympus"},
            "Option 'w.timezone' is not a known IANA time zone name such as "
            "'Europe/London' (names are case-sensitive; if the name is right, "
            "install the tzdata package); got 'Mars/Olympus'",
        ),
        (
            {"timezone": "+25:00"},
            "Option 'w.timezone' must be an offset under 24 hours; got '+25:00'",
        ),
        ({"weekdays": []}, "Option 'w.weekdays' must name at least one day; got []"),
    ],
)
def test_bad_windows(spec, message):
    with pytest.raises(OptionError) as caught:
        parse_drill_window(spec, option="w")
    assert str(caught.value) == message
