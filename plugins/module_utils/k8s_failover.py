# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The failover drill: disrupt pods, then time the recovery phase by phase.

Success means what a person would check by hand: the disrupted pods' uids are
gone, as many new pods are scheduled and ready, the workload reports every
replica available and, when asked, the health URL answers as expected. The
state is polled (one pod listing per poll), so every time is as precise as the
poll interval.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ansible_collections.trm.maintenance.plugins.module_utils.checks import (
    CheckResult,
    Finding,
    measured,
    unknown,
)
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.http import (
    check_url,
)
from ansible_collections.trm.maintenance.plugins.module_utils.http_health import (
    check_endpoint,
    parse_endpoints,
)
from ansible_collections.trm.maintenance.plugins.module_utils.k8s import (
    DEPLOYMENT,
    ApiError,
    K8sError,
    KubeClient,
    connection_from_params,
    pod_name,
    pod_ready,
    pod_scheduled,
    pod_uid,
    terminating,
    waiting_reason,
)
from ansible_collections.trm.maintenance.plugins.module_utils.k8s_gates import (
    DELETE,
    EVICT,
    budget_gate,
    choose_victims,
    covering_budgets,
    desired_replicas,
    eviction_gate,
    parse_count,
    parse_drill_window,
    replicas_gate,
    rollout_gate,
    victims_gate,
    window_gate,
    workload_name,
)
from ansible_collections.trm.maintenance.plugins.module_utils.k8s_targets import (
    TargetSpec,
    check_allowed,
    find_workload,
    parse_target,
    workload_selector,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    CRITICAL,
    OK,
    WARNING,
    parse_threshold,
)
from ansible_collections.trm.maintenance.plugins.module_utils.windows import (
    parse_now,
)

SUBJECT = "Failover drill"
DEFAULT_RECOVERY_TIME = {"warning": 120, "critical": 300}
DEFAULT_TIMEOUT = 600.0
DEFAULT_POLL_INTERVAL = 0.5
PHASES = ("disrupt", "deleted", "scheduled", "ready", "available", "healthy")
PHASE_WORDS = {
    "disrupt": "the disruption of every planned pod",
    "deleted": "the disrupted pods to disappear",
    "scheduled": "replacement pods to be scheduled",
    "ready": "the replacement pods to become ready",
    "available": "every replica to be available",
    "healthy": "the health URL to answer as expected",
}


# Settings


@dataclass(frozen=True)
class DrillSettings:
    """How the drill disrupts, what it waits for, and for how long."""

    method: str
    grace: int | None
    one_by_one: bool
    pods: Any
    min_ready: int
    timeout: float
    poll: float
    recovery: Any
    health: Any
    window: Any
    now: datetime
    ignore_window: bool


def parse_settings(params: dict) -> DrillSettings:
    """Check the drill's options."""
    method = params.get("method") or EVICT
    if method not in (EVICT, DELETE):
        raise OptionError("method", method, f"must be one of {[EVICT, DELETE]}")
    grace = params.get("grace_period")
    if grace is not None and grace < 0:
        raise OptionError("grace_period", grace, "must be 0 or more seconds")
    for option in ("timeout", "poll_interval"):
        if (params.get(option) or 0) <= 0:
            raise OptionError(option, params.get(option), "must be a number above zero")
    min_ready = params.get("min_ready_replicas")
    if min_ready is None or min_ready < 1:
        raise OptionError("min_ready_replicas", min_ready, "must be at least 1")
    window_spec = dict(params.get("maintenance_window") or {})
    now_text = window_spec.pop("now", None)
    now = (
        parse_now(now_text, zone=timezone.utc, option="maintenance_window.now")
        if now_text
        else _utcnow()
    )
    return DrillSettings(
        method=method,
        grace=grace,
        one_by_one=bool(params.get("one_by_one")),
        pods=params.get("pods"),
        min_ready=min_ready,
        timeout=float(params["timeout"]),
        poll=float(params["poll_interval"]),
        recovery=parse_threshold(
            params.get("recovery_time"),
            option="recovery_time",
            default=DEFAULT_RECOVERY_TIME,
        ),
        health=_health_endpoint(params.get("health_check")),
        window=parse_drill_window(window_spec, option="maintenance_window"),
        now=now,
        ignore_window=bool(params.get("ignore_window")),
    )


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _health_endpoint(spec: dict | None) -> Any:
    """Build the health URL check with http_health's rules, or None."""
    if not spec:
        return None
    item = {key: value for key, value in spec.items() if value is not None}
    check_url(item.get("url"), "health_check.url")
    item.setdefault("name", "health")
    params = {
        "endpoints": [item],
        "status_code": [200],
        "json": {},
        "response_time": {"warning": 5.0, "critical": 30.0},
        "timeout": 10.0,
        "validate_certs": True,
        "ca_path": None,
        "headers": {},
    }
    try:
        return parse_endpoints(params)[0]
    except OptionError as error:
        raise _as_health_check(error) from None


def _as_health_check(error: OptionError) -> OptionError:
    """Name the drill's own option in an error of the shared endpoint rules.

    The rules speak of ``endpoints[0].timeout``; the user wrote
    ``health_check.timeout``.
    """
    inner = "endpoints[0]"
    option = error.option
    if option.startswith(inner):
        option = f"health_check{option[len(inner) :]}"
    elif option == "endpoints":
        option = "health_check"
    text = str(error)[len(f"Option '{error.option}' ") :]
    value = f"; got {error.value!r}"
    problem = (
        text[: -len(value)] if text.endswith(value) else text.rsplit("; got ", 1)[0]
    )
    return OptionError(option, error.value, problem)


# The drill


@dataclass
class Event:
    """One moment of the timeline."""

    event: str
    seconds: float
    pod: str | None = None
    detail: str | None = None

    def as_dict(self, started: float) -> dict:
        """The event as the result shows it, with its wall-clock time."""
        moment = datetime.fromtimestamp(started + self.seconds, timezone.utc)
        return {
            "event": self.event,
            "pod": self.pod,
            "seconds": round(self.seconds, 3),
            "at": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "detail": self.detail,
        }


@dataclass
class Drill:
    """The disruption and the watch over the recovery."""

    client: KubeClient
    workload: dict
    settings: DrillSettings
    known_uids: set
    started_wall: float = field(default_factory=time.time)
    started: float = field(default_factory=time.monotonic)
    events: list = field(default_factory=list)
    phases: dict = field(default_factory=dict)
    victims: dict = field(default_factory=dict)
    replacements: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)
    stuck: str | None = None
    stuck_detail: str = ""
    last_error: str | None = None

    @property
    def namespace(self) -> str:
        """The workload's namespace."""
        return self.workload["metadata"]["namespace"]

    def elapsed(self) -> float:
        """Seconds since the drill began."""
        return time.monotonic() - self.started

    def note(
        self, event: str, *, pod: str | None = None, detail: str | None = None
    ) -> None:
        """Add an event to the timeline."""
        self.events.append(Event(event, self.elapsed(), pod, detail))

    def run(self, victims: list) -> bool:
        """Disrupt ``victims`` (all at once or one by one); True when recovered."""
        deadline = self.started + self.settings.timeout
        groups = [[pod] for pod in victims] if self.settings.one_by_one else [victims]
        return all(self.step(group, deadline) for group in groups)

    def step(self, group: list, deadline: float) -> bool:
        """Disrupt one group of pods and wait until the workload has recovered."""
        step = Step(self, group)
        while True:
            step.disrupt_pending()
            pods = self.observe()
            if pods is not None and step.advance(pods):
                # The new pods are the baseline of the next step.
                self.known_uids |= {pod_uid(pod) for pod in pods}
                return True
            if time.monotonic() >= deadline:
                self.stuck, self.stuck_detail = step.phase(), step.detail(pods)
                return False
            time.sleep(min(self.settings.poll, max(0.0, deadline - time.monotonic())))

    def observe(self) -> list | None:
        """List the workload's pods; None when the API did not answer."""
        try:
            pods = self.client.list_pods(
                self.namespace, workload_selector(self.workload)
            )
        except K8sError as error:
            self.last_error = str(error)
            return None
        self.last_error = None
        return pods

    def read_workload(self) -> dict | None:
        """Read the workload's current status; None when the API did not answer."""
        meta = self.workload["metadata"]
        kind = self.workload.get("kind") or DEPLOYMENT
        try:
            return self.client.read_workload(kind, meta["namespace"], meta["name"])
        except K8sError as error:
            self.last_error = str(error)
            return None


@dataclass
class Step:
    """The disruption of a group of pods and the phases of its recovery."""

    drill: Drill
    group: list
    done: dict = field(default_factory=dict)
    pending: list = field(default_factory=list)
    gone_uids: set = field(default_factory=set)

    def __post_init__(self) -> None:
        self.pending = list(self.group)
        self.uids = {pod_uid(pod) for pod in self.group}
        self.before = set(self.drill.known_uids)

    def disrupt_pending(self) -> None:
        """Ask to remove every pod not removed yet; refusals are retried later."""
        still = []
        for pod in self.pending:
            if not self._disrupt(pod):
                still.append(pod)
        self.pending = still
        if not self.pending and "disrupt" not in self.done:
            self._complete("disrupt")

    def _disrupt(self, pod: dict) -> bool:
        drill, name = self.drill, pod_name(pod)
        settings = drill.settings
        try:
            if settings.method == EVICT:
                drill.client.evict(drill.namespace, name, grace=settings.grace)
            else:
                drill.client.delete_pod(drill.namespace, name, grace=settings.grace)
        except ApiError as error:
            return self._refused(pod, error)
        except K8sError as error:
            drill.last_error = str(error)
            return False
        drill.note("evicted" if settings.method == EVICT else "deleted", pod=name)
        drill.victims[pod_uid(pod)] = _victim(pod, drill.elapsed())
        return True

    def _refused(self, pod: dict, error: ApiError) -> bool:
        """A budget refusal waits; a vanished pod counts; anything else stops it."""
        drill, name = self.drill, pod_name(pod)
        if error.status == 429:
            if not any(e.event == "refused" and e.pod == name for e in drill.events):
                drill.note("refused", pod=name, detail=error.api_message)
            return False
        if error.status == 404:
            drill.note("vanished", pod=name, detail="the pod was gone already")
            drill.victims[pod_uid(pod)] = _victim(pod, drill.elapsed())
            return True
        verb = "Evicting" if drill.settings.method == EVICT else "Deleting"
        drill.errors.append(f"{verb} {name} failed: {error}")
        drill.note("failed", pod=name, detail=str(error))
        self.uids.discard(pod_uid(pod))
        return True

    def advance(self, pods: list) -> bool:
        """Complete every phase whose condition now holds; True when all hold."""
        self._record(pods)
        checks = self._conditions(pods)
        for phase in PHASES:
            if phase in self.done:
                continue
            condition = checks.get(phase)
            if condition is None or not condition():
                return False
            self._complete(phase)
        return True

    def _conditions(self, pods: list) -> dict:
        disrupted = len(self.uids)
        fresh = self._replacements(pods)
        conditions: dict = {
            "disrupt": lambda: not self.pending,
            "deleted": lambda: not any(pod_uid(p) in self.uids for p in pods),
            "scheduled": lambda: sum(pod_scheduled(p) for p in fresh) >= disrupted,
            "ready": lambda: sum(pod_ready(p) for p in fresh) >= disrupted,
            "available": lambda: self._available(pods),
            "healthy": self._healthy,
        }
        return conditions

    def _replacements(self, pods: list) -> list:
        return [p for p in pods if pod_uid(p) not in self.before and not terminating(p)]

    def _record(self, pods: list) -> None:
        """Note new pods as they are scheduled and become ready, and victims gone."""
        drill = self.drill
        present = {pod_uid(p) for p in pods}
        for uid in self.uids - present - self.gone_uids:
            self.gone_uids.add(uid)
            victim = drill.victims.get(uid)
            if victim is not None:
                victim["gone_seconds"] = round(drill.elapsed(), 3)
                drill.note("gone", pod=victim["name"])
        for pod in self._replacements(pods):
            self._follow(pod)

    def _follow(self, pod: dict) -> None:
        drill, uid, name = self.drill, pod_uid(pod), pod_name(pod)
        entry = drill.replacements.get(uid)
        if entry is None:
            entry = drill.replacements[uid] = _replacement(pod)
            drill.note("created", pod=name)
        if pod_scheduled(pod) and entry["scheduled_seconds"] is None:
            entry["scheduled_seconds"] = round(drill.elapsed(), 3)
            entry["node"] = pod["spec"].get("nodeName")
            drill.note("scheduled", pod=name, detail=entry["node"])
        if pod_ready(pod) and entry["ready_seconds"] is None:
            entry["ready_seconds"] = round(drill.elapsed(), 3)
            drill.note("ready", pod=name)

    def _available(self, pods: list) -> bool:
        workload = self.drill.read_workload()
        if workload is None:
            return False
        desired = desired_replicas(workload)
        ready = sum(pod_ready(p) for p in pods)
        return ready >= desired and _reports_available(workload, desired)

    def _healthy(self) -> bool:
        endpoint = self.drill.settings.health
        if endpoint is None:
            return True
        finding = check_endpoint(endpoint)
        self.drill.last_error = (
            None if finding.status in (OK, WARNING) else finding.message
        )
        return finding.status in (OK, WARNING)

    def _complete(self, phase: str) -> None:
        drill = self.drill
        self.done[phase] = drill.elapsed()
        if phase == "healthy" and drill.settings.health is None:
            return
        drill.phases[phase] = round(self.done[phase], 3)
        if phase != "disrupt":
            drill.note(phase)

    def phase(self) -> str:
        """The first phase not complete."""
        return next(p for p in PHASES if p not in self.done)

    def detail(self, pods: list | None) -> str:
        """Say what the stuck phase is waiting for."""
        drill = self.drill
        if pods is None:
            return drill.last_error or "the API server did not answer"
        phase = self.phase()
        if phase == "disrupt":
            names = ", ".join(pod_name(p) for p in self.pending)
            return f"still refused: {names}"
        if phase == "deleted":
            left = [pod_name(p) for p in pods if pod_uid(p) in self.uids]
            return f"still present: {', '.join(left)}"
        fresh = self._replacements(pods)
        if phase in ("scheduled", "ready"):
            return _replacement_state(fresh, len(self.uids))
        if phase == "available":
            ready = sum(pod_ready(p) for p in pods)
            return f"{ready} pods ready of {desired_replicas(drill.workload)} wanted"
        return drill.last_error or "no answer"


def _replacement_state(fresh: list, wanted: int) -> str:
    ready = [p for p in fresh if pod_ready(p)]
    waiting = [
        f"{pod_name(p)} ({_why_not_ready(p)})" for p in fresh if not pod_ready(p)
    ]
    text = f"{len(ready)} of {wanted} replacement pods ready"
    return f"{text}; waiting: {', '.join(waiting)}" if waiting else text


def _why_not_ready(pod: dict) -> str:
    phase = (pod.get("status") or {}).get("phase")
    return waiting_reason(pod) or phase or "not ready"


def _reports_available(workload: dict, desired: int) -> bool:
    """The controller's own view: observed the spec and every replica available."""
    status = workload.get("status") or {}
    generation = workload["metadata"].get("generation") or 0
    if (status.get("observedGeneration") or 0) < generation:
        return False
    available = status.get("availableReplicas")
    if available is None and workload.get("kind") != DEPLOYMENT:
        available = status.get("readyReplicas")
    return (available or 0) >= desired


def _victim(pod: dict, seconds: float) -> dict:
    return {
        "name": pod_name(pod),
        "uid": pod_uid(pod),
        "node": (pod.get("spec") or {}).get("nodeName"),
        "requested_seconds": round(seconds, 3),
        "gone_seconds": None,
    }


def _replacement(pod: dict) -> dict:
    return {
        "name": pod_name(pod),
        "uid": pod_uid(pod),
        "node": (pod.get("spec") or {}).get("nodeName"),
        "created": pod["metadata"].get("creationTimestamp"),
        "scheduled_seconds": None,
        "ready_seconds": None,
    }


# The module's work


def run_k8s_failover(params: dict, *, check_mode: bool) -> dict:
    """Check the gates, then run the drill (or plan it in check mode)."""
    spec = parse_target(params)
    check_allowed(spec.namespace, params.get("allowed_namespaces"))
    settings = parse_settings(params)
    conn = connection_from_params(params)
    result, extra = CheckResult(), _empty_extra()
    changed = False
    try:
        client = KubeClient(conn)
        try:
            changed = _prepare_and_drill(
                client, spec, settings, result, extra, check_mode=check_mode
            )
        finally:
            client.close()
    except K8sError as error:
        result.add(
            unknown(
                "api",
                str(error),
                action="Check the API server address, the credentials and the "
                "network path",
            )
        )
    return {**result.to_dict(SUBJECT), **extra, "changed": changed}


def _empty_extra() -> dict:
    return {
        "refused": False,
        "plan": {},
        "deleted_pods": [],
        "replacement_pods": [],
        "recovery_seconds": None,
        "phases": {},
        "timeline": [],
        "stuck_phase": None,
    }


@dataclass(frozen=True)
class Survey:
    """What the drill found before acting: the workload, its pods and budgets."""

    workload: dict
    pods: list
    budgets: list
    victims: list
    count: int


def survey(client: KubeClient, spec: TargetSpec, settings: DrillSettings) -> Survey:
    """Read the workload, its pods and budgets, and choose the pods to disrupt."""
    workload = find_workload(client, spec)
    # Items of a list carry no kind; the drill words its messages with it.
    workload.setdefault("kind", spec.kind)
    pods = client.list_pods(spec.namespace, workload_selector(workload))
    budgets = covering_budgets(client.list_budgets(spec.namespace), workload)
    live = [pod for pod in pods if not terminating(pod)]
    count = parse_count(settings.pods, len(live))
    return Survey(workload, pods, budgets, choose_victims(pods, count), count)


def _prepare_and_drill(
    client: KubeClient,
    spec: TargetSpec,
    settings: DrillSettings,
    result: CheckResult,
    extra: dict,
    *,
    check_mode: bool,
) -> bool:
    """Judge the gates, and drill when they all pass; True when pods went."""
    found = survey(client, spec, settings)
    gates = gate_findings(client, found, settings)
    for finding in gates:
        result.add(finding)
    extra["plan"] = _plan(found, settings, gates)
    if any(finding.status != OK for finding in gates):
        extra["refused"] = True
        return False
    if check_mode:
        return True
    known = {pod_uid(pod) for pod in found.pods}
    drill = Drill(client, found.workload, settings, known_uids=known)
    recovered = drill.run(found.victims)
    for finding in _outcome(drill, found.workload, recovered):
        result.add(finding)
    extra.update(_drill_extra(drill))
    result.metrics.update(_drill_metrics(drill, found.workload))
    return bool(drill.victims)


def gate_findings(client: KubeClient, found: Survey, settings: DrillSettings) -> list:
    """Every gate, in order; the eviction dry run only when the others pass."""
    method, count = settings.method, found.count
    needed = count if method == DELETE and not settings.one_by_one else 1
    gates = [
        victims_gate(found.victims, count, found.pods),
        replicas_gate(found.workload, found.pods, settings.min_ready),
        rollout_gate(found.workload),
        budget_gate(found.budgets, method=method, needed=needed, planned=count),
        window_gate(settings.window, settings.now, ignore=settings.ignore_window),
    ]
    if method == EVICT and found.victims and all(g.status == OK for g in gates):
        gates.append(eviction_gate(client, found.victims[0], grace=settings.grace))
    return gates


def _plan(found: Survey, settings: DrillSettings, gates: list) -> dict:
    workload, victims = found.workload, found.victims
    meta = workload["metadata"]
    return {
        "workload": {
            "kind": workload.get("kind"),
            "namespace": meta["namespace"],
            "name": meta["name"],
            "replicas": desired_replicas(workload),
        },
        "pods": [
            {
                "name": pod_name(p),
                "uid": pod_uid(p),
                "node": (p.get("spec") or {}).get("nodeName"),
            }
            for p in victims
        ],
        "method": settings.method,
        "grace_period": settings.grace,
        "one_by_one": settings.one_by_one,
        "timeout": settings.timeout,
        "health_url": settings.health.shown_url if settings.health else None,
        "gates": {g.name: g.status == OK for g in gates},
    }


def _outcome(drill: Drill, workload: dict, recovered: bool) -> list:
    findings = []
    name = workload_name(workload)
    if drill.errors:
        findings.append(
            Finding(
                "disruption",
                CRITICAL,
                "; ".join(drill.errors),
                action="Check the drill account's permissions and the API server's "
                "answer, then make sure the workload recovered",
            )
        )
    if not recovered:
        words = PHASE_WORDS[drill.stuck]
        findings.append(
            Finding(
                "recovery",
                CRITICAL,
                f"{name} did not recover within {drill.settings.timeout:g} s: stuck "
                f"waiting for {words} ({drill.stuck_detail})",
                action="Investigate the workload now (pod events, scheduling, "
                "readiness probes); the platform may be degraded",
                details={"stuck_phase": drill.stuck},
            )
        )
        return findings
    seconds = recovery_seconds(drill)
    verb = "evicted" if drill.settings.method == EVICT else "deleted"
    findings.append(
        measured(
            "recovery",
            seconds,
            drill.settings.recovery,
            label=f"Recovery of {name} after {len(drill.victims)} pod(s) {verb}",
            unit="s",
            action="Find out what slows the recovery (image pulls, readiness "
            "probes, scheduling) before a real failure needs it",
        )
    )
    return findings


def recovery_seconds(drill: Drill) -> float | None:
    """From the first disruption to the last phase, in seconds."""
    requested = [v["requested_seconds"] for v in drill.victims.values()]
    if not requested or not drill.phases:
        return None
    last = max(drill.phases.values())
    return round(last - min(requested), 3)


def _drill_extra(drill: Drill) -> dict:
    return {
        "deleted_pods": list(drill.victims.values()),
        "replacement_pods": list(drill.replacements.values()),
        "recovery_seconds": recovery_seconds(drill) if drill.stuck is None else None,
        "phases": dict(drill.phases),
        "timeline": [event.as_dict(drill.started_wall) for event in drill.events],
        "stuck_phase": drill.stuck,
    }


def _drill_metrics(drill: Drill, workload: dict) -> dict:
    metrics = {
        "pods_disrupted": len(drill.victims),
        "replicas": desired_replicas(workload),
    }
    if drill.stuck is None:
        metrics["recovery_seconds"] = recovery_seconds(drill)
    for phase, seconds in drill.phases.items():
        metrics[f"{phase}_seconds"] = seconds
    return metrics
