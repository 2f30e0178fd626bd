# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The failover drill's preconditions, each a finding that can stop the drill.

Enough ready replicas, a disruption budget that allows the disruption, no
rollout in progress, inside the maintenance window (unless overridden), and for
evictions an API server that accepts a dry-run eviction of the first pod.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

from ansible_collections.trm.maintenance.plugins.module_utils.checks import (
    Finding,
)
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.k8s import (
    DEPLOYMENT,
    ApiError,
    K8sError,
    KubeClient,
    pod_name,
    pod_ready,
    selector_matches,
    terminating,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    CRITICAL,
    OK,
    UNKNOWN,
    WARNING,
)
from ansible_collections.trm.maintenance.plugins.module_utils.windows import (
    WEEKDAYS,
    WEEKLY,
    Window,
    load_zone,
    next_opening,
    open_at,
    parse_start,
    parse_weekday,
)

EVICT = "evict"
DELETE = "delete"
METHODS = [EVICT, DELETE]
ALL = "all"


def workload_name(workload: dict) -> str:
    """Return ``Kind namespace/name``."""
    meta = workload["metadata"]
    return f"{workload.get('kind') or 'Workload'} {meta['namespace']}/{meta['name']}"


def desired_replicas(workload: dict) -> int:
    """Return the replicas the workload asks for (1 when unset, as the API does)."""
    replicas = (workload.get("spec") or {}).get("replicas")
    return 1 if replicas is None else int(replicas)


def template_labels(workload: dict) -> dict:
    """Return the labels of the workload's pod template."""
    template = (workload.get("spec") or {}).get("template") or {}
    return (template.get("metadata") or {}).get("labels") or {}


def parse_count(value: Any, total: int) -> int:
    """Resolve ``pods``: V(all), a number, or a share like V(50%) (rounded up)."""
    text = str(value).strip().lower() if value is not None else "1"
    if text == ALL:
        return total
    try:
        if text.endswith("%"):
            share = float(text[:-1])
            if not 0 < share <= 100:
                raise ValueError(text)
            return max(1, math.ceil(total * share / 100))
        count = int(text)
    except ValueError:
        raise OptionError(
            "pods", value, "must be 'all', a number of pods or a share like '50%'"
        ) from None
    if count < 1:
        raise OptionError("pods", value, "must be at least 1")
    return count


def choose_victims(pods: list, count: int) -> list:
    """Pick the pods to disrupt: ready ones, oldest first, then by name."""
    candidates = [pod for pod in pods if pod_ready(pod)]
    candidates.sort(
        key=lambda pod: (pod["metadata"].get("creationTimestamp") or "", pod_name(pod))
    )
    return candidates[:count]


# The gates


def replicas_gate(workload: dict, pods: list, minimum: int) -> Finding:
    """Enough ready replicas for a drill."""
    desired = desired_replicas(workload)
    ready = sum(pod_ready(pod) for pod in pods)
    name = workload_name(workload)
    details = {"ready_replicas": ready, "desired_replicas": desired}
    if ready >= minimum:
        message = (
            f"{name} has {ready} of {desired} replicas ready (at least {minimum} "
            "needed)"
        )
        return Finding("ready_replicas", OK, message, value=ready, details=details)
    status = CRITICAL if ready < desired else WARNING
    message = (
        f"{name} has {ready} of {desired} replicas ready; a failover drill needs at "
        f"least {minimum}, so it did not run"
    )
    action = (
        "Find out why replicas are not ready before any drill"
        if status == CRITICAL
        else f"Run at least {minimum} replicas so that the application survives the "
        "loss of a pod, then drill"
    )
    return Finding(
        "ready_replicas", status, message, value=ready, action=action, details=details
    )


def rollout_gate(workload: dict) -> Finding:
    """No rollout in progress: the controller has caught up with the spec."""
    problem = (
        _deployment_rollout(workload)
        if workload.get("kind", DEPLOYMENT) == DEPLOYMENT
        else _statefulset_rollout(workload)
    )
    name = workload_name(workload)
    if problem is None:
        return Finding("rollout", OK, f"No rollout of {name} is in progress")
    return Finding(
        "rollout",
        WARNING,
        f"A rollout of {name} is in progress ({problem}), so the drill did not run",
        action="Let the rollout finish (kubectl rollout status), then drill",
        details={"rollout": problem},
    )


def _observed(workload: dict) -> str | None:
    generation = workload["metadata"].get("generation") or 0
    observed = (workload.get("status") or {}).get("observedGeneration") or 0
    if observed < generation:
        return f"generation {generation} not observed yet (observed {observed})"
    return None


def _deployment_rollout(workload: dict) -> str | None:
    behind = _observed(workload)
    if behind:
        return behind
    status = workload.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("reason") == "ProgressDeadlineExceeded":
            return "the rollout exceeded its progress deadline"
    desired = desired_replicas(workload)
    updated = status.get("updatedReplicas") or 0
    if updated < desired:
        return f"{updated} of {desired} replicas updated"
    total = status.get("replicas") or 0
    if total > updated:
        return f"{total - updated} old replicas still terminating"
    available = status.get("availableReplicas") or 0
    if available < updated:
        return f"{available} of {updated} updated replicas available"
    return None


def _statefulset_rollout(workload: dict) -> str | None:
    behind = _observed(workload)
    if behind:
        return behind
    status = workload.get("status") or {}
    desired = desired_replicas(workload)
    current, update = status.get("currentRevision"), status.get("updateRevision")
    if update and current != update:
        return f"revision {update} is replacing {current}"
    updated = status.get("updatedReplicas")
    if updated is not None and updated < desired:
        return f"{updated} of {desired} replicas updated"
    ready = status.get("readyReplicas") or 0
    if ready < desired:
        return f"{ready} of {desired} replicas ready"
    return None


def covering_budgets(budgets: list, workload: dict) -> list:
    """Return the budgets whose selector matches the workload's pods."""
    labels = template_labels(workload)
    namespace = workload["metadata"]["namespace"]
    return [
        budget
        for budget in budgets
        if budget["metadata"].get("namespace", namespace) == namespace
        and (budget.get("spec") or {}).get("selector") is not None
        and selector_matches(budget["spec"]["selector"], labels)
    ]


def budget_gate(budgets: list, *, method: str, needed: int, planned: int) -> Finding:
    """A disruption budget that allows the disruption the drill plans."""
    if not budgets:
        return Finding(
            "disruption_budget",
            OK,
            "No PodDisruptionBudget covers the pods, so none limits the drill",
        )
    names = sorted(b["metadata"]["name"] for b in budgets)
    if method == EVICT and len(budgets) > 1:
        return Finding(
            "disruption_budget",
            WARNING,
            f"{len(budgets)} PodDisruptionBudgets cover the pods ({', '.join(names)}); "
            "the Eviction API refuses to evict such pods, so the drill did not run",
            action="Keep one PodDisruptionBudget per workload",
            details={"budgets": names},
        )
    allowed = min(_allowed(b) for b in budgets)
    details = {"budgets": names, "disruptions_allowed": allowed}
    described = _budget_text(budgets[0]) if len(budgets) == 1 else ", ".join(names)
    if allowed >= needed:
        message = f"Budget {described} allows {allowed} disruption(s) now"
        if method == EVICT and planned > allowed:
            message += f"; the {planned} evictions proceed as it allows"
        return Finding("disruption_budget", OK, message, value=allowed, details=details)
    return Finding(
        "disruption_budget",
        WARNING,
        f"Budget {described} allows {allowed} disruption(s) and the drill needs "
        f"{needed}, so it did not run",
        value=allowed,
        action="Bring the pods the budget counts back to health, or plan fewer pods "
        "at once (pods, one_by_one), then drill",
        details=details,
    )


def _allowed(budget: dict) -> int:
    return int((budget.get("status") or {}).get("disruptionsAllowed") or 0)


def _budget_text(budget: dict) -> str:
    spec, status = budget.get("spec") or {}, budget.get("status") or {}
    rule = (
        f"minAvailable {spec['minAvailable']}"
        if "minAvailable" in spec
        else f"maxUnavailable {spec.get('maxUnavailable')}"
    )
    healthy = status.get("currentHealthy")
    return f"{budget['metadata']['name']} ({rule}, {healthy} healthy)"


# The maintenance window: weekdays, a start and an end in one time zone, the
# guide's Sunday 02:00-04:00 UTC by default. Each weekday is one weekly window of
# the collection's window model, which also decides how clock changes count.

DEFAULT_WINDOW = {
    "weekdays": ["sunday"],
    "start": "02:00",
    "end": "04:00",
    "timezone": "UTC",
}
_OFFSET = re.compile(r"^([+-])(\d\d):?(\d\d)$")


@dataclass(frozen=True)
class DrillWindow:
    """The drill's window: one weekly window per weekday, and its name."""

    windows: tuple
    label: str
    zone: tzinfo


def parse_drill_window(spec: Any, *, option: str) -> DrillWindow:
    """Build the drill's window from its option mapping, or raise OptionError."""
    spec = {
        **DEFAULT_WINDOW,
        **{k: v for k, v in (spec or {}).items() if v is not None},
    }
    days = [spec["weekdays"]] if isinstance(spec["weekdays"], str) else spec["weekdays"]
    if not days:
        raise OptionError(f"{option}.weekdays", days, "must name at least one day")
    weekdays = sorted(
        {parse_weekday(day, f"{option}.weekdays[{i}]") for i, day in enumerate(days)}
    )
    start = parse_start(spec["start"], f"{option}.start")
    end = parse_start(spec["end"], f"{option}.end")
    minutes = (end.hour - start.hour) * 60 + end.minute - start.minute
    if minutes % 1440 == 0:
        raise OptionError(option, spec, "must have an end different from its start")
    zone_name = str(spec["timezone"]).strip()
    zone = _zone(zone_name, f"{option}.timezone")
    names = ", ".join(WEEKDAYS[day].capitalize() for day in weekdays)
    label = f"{names} {start:%H:%M}-{end:%H:%M} {zone_name}"
    windows = tuple(
        Window(
            name=label,
            schedule=WEEKLY,
            weekday=day,
            start=start,
            duration=timedelta(minutes=minutes % 1440),
            timezone=zone_name,
            zone=zone,
        )
        for day in weekdays
    )
    return DrillWindow(windows, label, zone)


def _zone(name: str, option: str) -> tzinfo:
    """UTC, a fixed offset such as +02:00, or an IANA name such as Europe/Berlin."""
    found = _OFFSET.match(name)
    if not found:
        return load_zone(name, option)
    offset = timedelta(hours=int(found[2]), minutes=int(found[3]))
    if offset >= timedelta(hours=24):
        raise OptionError(option, name, "must be an offset under 24 hours")
    return timezone(-offset if found[1] == "-" else offset)


def window_gate(window: DrillWindow, now: datetime, *, ignore: bool) -> Finding:
    """Inside the maintenance window, unless the operator overrides it."""
    opening = open_at(list(window.windows), now)
    upcoming = next_opening(list(window.windows), now)
    next_start = upcoming.local(upcoming.start) if upcoming else None
    details = {
        "window": window.label,
        "inside_window": opening is not None,
        "next_window": _minutes(next_start),
    }
    if opening is not None:
        ends = _minutes(opening.local(opening.end))
        message = f"Inside the maintenance window {window.label} (ends {ends})"
        return Finding("maintenance_window", OK, message, details=details)
    outside = (
        f"Outside the maintenance window {window.label}; the next one starts "
        f"{_minutes(next_start)}"
    )
    if ignore:
        message = f"{outside}; overridden with ignore_window"
        return Finding("maintenance_window", OK, message, details=details)
    return Finding(
        "maintenance_window",
        UNKNOWN,
        f"{outside}, so the drill did not run",
        action="Run the drill inside the maintenance window, or set ignore_window "
        "when the operator decides otherwise",
        details=details,
    )


def _minutes(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="minutes") if moment else None


def eviction_gate(client: KubeClient, pod: dict, *, grace: int | None) -> Finding:
    """The API server accepts a dry-run eviction of the first planned pod."""
    namespace, name = pod["metadata"]["namespace"], pod_name(pod)
    try:
        client.evict(namespace, name, grace=grace, dry_run=True)
    except ApiError as error:
        status = WARNING if error.status in (403, 429) else UNKNOWN
        hint = {
            403: "Grant the drill's account create on pods/eviction",
            429: "Wait until the disruption budget allows an eviction",
        }.get(error.status, "Check the API server's answer")
        return Finding(
            "eviction",
            status,
            f"A dry-run eviction of {name} was refused ({error}), so the drill did "
            "not run",
            action=hint,
        )
    except K8sError as error:
        return Finding(
            "eviction", UNKNOWN, f"A dry-run eviction of {name} failed: {error}"
        )
    return Finding("eviction", OK, f"A dry-run eviction of {name} was accepted")


def victims_gate(victims: list, count: int, pods: list) -> Finding:
    """Pods to disrupt were found."""
    live = [pod for pod in pods if not terminating(pod)]
    if len(victims) >= count:
        names = ", ".join(pod_name(pod) for pod in victims)
        return Finding(
            "plan",
            OK,
            f"The drill disrupts {len(victims)} of {len(live)} pods: {names}",
            value=len(victims),
        )
    return Finding(
        "plan",
        WARNING,
        f"The drill asks for {count} ready pods and only {len(victims)} of "
        f"{len(live)} are ready, so it did not run",
        value=len(victims),
        action="Lower pods, or bring the pods back to readiness first",
    )
