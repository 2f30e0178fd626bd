# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The log scan: every pod's log read once, every pattern group counted in that pass.

Logs are read with the API server's timestamps, which give the earliest line
actually seen: a log that starts later than the window asked for (rotated, or a
restarted container) is reported as a shorter coverage, not as a quiet day.
"""

from __future__ import annotations

import calendar
import math
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ansible_collections.trm.maintenance.plugins.module_utils.checks import (
    CheckResult,
    Finding,
    measured,
    unknown,
    worst,
)
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.k8s import (
    ApiError,
    K8sError,
    KubeClient,
    connection_from_params,
    container_names,
    pod_name,
)
from ansible_collections.trm.maintenance.plugins.module_utils.k8s_patterns import (
    TIMESTAMP,
    Redactor,
    lowered,
    matching_messages,
    normalise,
    parse_groups,
)
from ansible_collections.trm.maintenance.plugins.module_utils.k8s_targets import (
    find_pods,
    parse_target,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    OK,
    UNKNOWN,
    WARNING,
    parse_threshold,
)
from ansible_collections.trm.maintenance.plugins.module_utils.windows import (
    parse_now,
)

SUBJECT = "Log scan"
CHUNK_BYTES = 1 << 20
DEFAULT_SINCE = "24h"
DEFAULT_COVERAGE = {"warning": 95, "direction": "below"}
DEFAULT_TOP_GROUPS = ["errors"]
# The first line of a log may come a little after the window or the pod starts.
COVERAGE_SLACK_SECONDS = 300
# Asked of the API a little earlier than the window, then cut here exactly, so a
# clock difference between the controller and the nodes loses no line.
SKEW_MARGIN_SECONDS = 60
MAX_TOP_PATTERNS = 10000
YOUNGER = "pod_younger_than_window"
LATE = "log_starts_late"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


# The window


@dataclass(frozen=True)
class ScanWindow:
    """The stretch of time the scan covers: from ``start`` to ``end`` (epoch s)."""

    start: float
    end: float
    text: str

    @property
    def seconds(self) -> float:
        """The window's length."""
        return self.end - self.start

    def as_dict(self) -> dict:
        """The window as the result shows it."""
        return {
            "start": iso(self.start),
            "end": iso(self.end),
            "seconds": round(self.seconds, 3),
            "text": self.text,
        }


def parse_since(value: Any, *, now: float) -> ScanWindow:
    """Read ``since``: a duration such as 24h, 90m, 1d12h, 3600, or a date and time."""
    text = str(value).strip() if value is not None else DEFAULT_SINCE
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        text = f"{text}s"
    if re.fullmatch(rf"(?:{_DURATION.pattern})+", text):
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION.findall(text))
        if seconds <= 0:
            raise OptionError("since", value, "must be a duration above zero")
        return ScanWindow(now - seconds, now, duration_text(seconds))
    start = parse_now(value, zone=timezone.utc, option="since").timestamp()
    if start >= now:
        raise OptionError("since", value, "must be in the past")
    return ScanWindow(start, now, f"since {iso(start)}")


def duration_text(seconds: float) -> str:
    """Say a duration the way the guide does: 24 h, 90 min, 7 d."""
    # Up to three days read best in hours, as the guide's "24 h" does.
    for unit, size, least in (
        ("d", 86400, 3 * 86400),
        ("h", 3600, 3600),
        ("min", 60, 60),
    ):
        if seconds >= least and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds:g} s"


def iso(moment: float | None) -> str | None:
    """Format epoch seconds as an RFC 3339 UTC time."""
    if moment is None:
        return None
    shown = datetime.fromtimestamp(moment, timezone.utc)
    return shown.isoformat(timespec="seconds").replace("+00:00", "Z")


def line_time(line: str) -> float | None:
    """Return the epoch seconds of a timestamped log line, or None."""
    found = TIMESTAMP.match(line)
    if not found:
        return None
    parts = [int(found[index]) for index in range(1, 7)]
    seconds = calendar.timegm((*parts, 0, 0, 0))
    fraction = float(f"0.{found[7]}") if found[7] else 0.0
    zone = found[8]
    if zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds + fraction


def rfc3339_seconds(text: str | None) -> float | None:
    """Parse the API's RFC 3339 times (``startTime``) into epoch seconds."""
    if not text:
        return None
    return line_time(f"{text} ")


# One log stream


@dataclass
class Tally:
    """What one pass over one or more log streams of a container found."""

    groups: list
    window_start: float
    counts: list = field(default_factory=list)
    lines: int = 0
    bytes: int = 0
    earliest: float | None = None
    latest: float | None = None
    top: dict = field(default_factory=dict)
    top_overflow: int = 0
    _inside: bool = False
    _last_line: str = ""

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * len(self.groups)

    def begin_stream(self) -> None:
        """Start a new stream: its first lines are checked against the window."""
        self._inside = False

    def feed(self, text: str) -> None:
        """Count a block of whole lines, each ending with a newline."""
        if not self._inside:
            text = self._from_window_start(text)
            if not text:
                return
        self.lines += text.count("\n")
        self._last_line = text[text.rfind("\n", 0, len(text) - 1) + 1 :]
        folded = lowered(text) if any(g.insensitive for g in self.groups) else None
        for index, group in enumerate(self.groups):
            for message in matching_messages(group, text, folded):
                self.counts[index] += 1
                if group.top:
                    self._remember(group.name, message)

    def _from_window_start(self, text: str) -> str:
        """Drop the lines before the window; note the first one inside it."""
        start = 0
        while start < len(text):
            end = text.find("\n", start) + 1
            moment = line_time(text[start:end])
            if moment is None or moment >= self.window_start:
                self._inside = True
                if moment is not None and (
                    self.earliest is None or moment < self.earliest
                ):
                    self.earliest = moment
                return text[start:]
            start = end
        return ""

    def _remember(self, group: str, message: str) -> None:
        key = (group, normalise(message))
        entry = self.top.get(key)
        if entry is not None:
            entry[0] += 1
        elif len(self.top) < MAX_TOP_PATTERNS:
            self.top[key] = [1, message]
        else:
            self.top_overflow += 1

    def end_stream(self) -> None:
        """Note the time of the stream's last line."""
        moment = line_time(self._last_line) if self._last_line else None
        if moment is not None and (self.latest is None or moment > self.latest):
            self.latest = moment
        self._last_line = ""


def read_stream(response: Any, tally: Tally) -> None:
    """Feed an HTTP log response to ``tally`` in blocks of whole lines."""
    tally.begin_stream()
    rest = b""
    try:
        for chunk in response.stream(CHUNK_BYTES):
            tally.bytes += len(chunk)
            block = rest + chunk
            cut = block.rfind(b"\n") + 1
            if cut:
                tally.feed(block[:cut].decode("utf-8", "replace"))
            rest = block[cut:]
        if rest:
            tally.feed(rest.decode("utf-8", "replace") + "\n")
    finally:
        response.release_conn()
    tally.end_stream()


# Reading every container


@dataclass
class Target:
    """One container of one pod, and what reading its logs gave."""

    pod: dict
    container: str
    tally: Tally
    previous_read: bool = False
    state: str = "read"
    error: str | None = None

    @property
    def name(self) -> str:
        """``pod/container``."""
        return f"{pod_name(self.pod)}/{self.container}"


@dataclass(frozen=True)
class ScanSettings:
    """The scan's checked options."""

    namespace: str
    window: ScanWindow
    groups: list
    previous: bool
    container: str | None
    coverage: Any
    workers: int
    top_count: int
    redact: Redactor


def scan_settings(params: dict) -> ScanSettings:
    """Check the scan's options (not the connection and the target)."""
    top_groups = params.get("top_groups")
    top_groups = DEFAULT_TOP_GROUPS if top_groups is None else top_groups
    groups = parse_groups(params.get("patterns"), top=top_groups)
    _check_top_groups(top_groups, groups)
    coverage = parse_threshold(
        params.get("coverage"), option="coverage", default=DEFAULT_COVERAGE
    )
    return ScanSettings(
        namespace=params["namespace"],
        window=parse_since(params.get("since"), now=time.time()),
        groups=groups,
        previous=bool(params.get("previous")),
        container=params.get("container"),
        coverage=coverage,
        workers=_positive(params, "max_workers"),
        top_count=params.get("top_count") or 0,
        redact=Redactor(list(params.get("redact") or [])),
    )


def read_target(client: KubeClient, target: Target, settings: ScanSettings) -> Target:
    """Read a container's previous log (when asked) and its current log."""
    since = math.ceil(settings.window.end - settings.window.start) + SKEW_MARGIN_SECONDS
    streams = [True, False] if settings.previous else [False]
    for previous in streams:
        try:
            response = client.open_log(
                settings.namespace,
                pod_name(target.pod),
                container=target.container,
                since_seconds=since,
                previous=previous,
            )
            read_stream(response, target.tally)
            target.previous_read = target.previous_read or previous
        except ApiError as error:
            if not _no_log_yet(error, previous=previous):
                target.state, target.error = "error", str(error)
            elif not previous:
                target.state = "not_started"
        except K8sError as error:
            target.state, target.error = "error", str(error)
    return target


def _no_log_yet(error: ApiError, *, previous: bool) -> bool:
    """Tell whether a 400 means there is no such log (yet), which is no failure."""
    if error.status != 400:
        return False
    text = error.api_message.lower()
    if previous:
        return "previous terminated container" in text or "not found" in text
    return "waiting to start" in text or "containercreating" in text


def targets_of(pods: list, settings: ScanSettings) -> list:
    """List the containers to read, all of each pod's unless one is named."""
    wanted, start = settings.container, settings.window.start
    targets = []
    for pod in pods:
        names = container_names(pod)
        for name in names if not wanted else [wanted]:
            target = Target(pod, name, Tally(settings.groups, start))
            if name not in names:
                target.state = "absent"
            targets.append(target)
    return targets


def read_all(client: KubeClient, targets: list, settings: ScanSettings) -> None:
    """Read every target, a few at a time."""
    readable = [target for target in targets if target.state == "read"]
    client.preload()
    with ThreadPoolExecutor(max_workers=settings.workers) as pool:
        list(pool.map(lambda target: read_target(client, target, settings), readable))


# Findings


@dataclass(frozen=True)
class Coverage:
    """How much of the window one container's log covers, and why not all of it."""

    share: float | None
    pod_started: float | None
    covered_seconds: float
    shortfall: str | None

    @property
    def covered_hours(self) -> float:
        """The hours the log covers, to a tenth."""
        return round(self.covered_seconds / 3600, 1)


def coverage_of(target: Target, window: ScanWindow) -> Coverage:
    """Measure a container's log against the whole window asked for.

    A pod that started after the window began cannot cover it: the earlier lines
    went with the pods it replaced (a rollout, a drill). That shortfall is named
    ``pod_younger_than_window``; any other is ``log_starts_late`` (a rotated log,
    or a restart whose previous log was not read).
    """
    started = rfc3339_seconds((target.pod.get("status") or {}).get("startTime"))
    earliest = target.tally.earliest
    if earliest is None:
        return Coverage(None, started, 0.0, None)
    covered = max(0.0, window.end - earliest)
    if earliest - window.start <= COVERAGE_SLACK_SECONDS or window.seconds <= 0:
        return Coverage(100.0, started, covered, None)
    share = round(max(0.0, min(100.0, 100 * covered / window.seconds)), 1)
    young = started is not None and started - window.start > COVERAGE_SLACK_SECONDS
    if young and earliest - started <= COVERAGE_SLACK_SECONDS:
        return Coverage(share, started, covered, YOUNGER)
    return Coverage(share, started, covered, LATE)


def group_findings(groups: list, targets: list, window: ScanWindow) -> list:
    """One finding per pattern group: the count over every container read."""
    findings = []
    for index, group in enumerate(groups):
        per_pod: dict = {}
        for target in targets:
            if target.tally.counts[index]:
                per_pod[target.name] = target.tally.counts[index]
        finding = measured(
            group.name,
            sum(per_pod.values()),
            group.threshold,
            label=f"{group.label} over {window.text}",
            action=group.action or _default_action(group),
            details={"per_container": per_pod},
        )
        findings.append(finding)
    return findings


def _default_action(group: Any) -> str:
    what = group.name.replace("_", " ")
    where = " (the top patterns show the commonest)" if group.top else ""
    return f"Review the {what} lines{where} and open an incident if they keep rising"


def coverage_finding(targets: list, window: ScanWindow, threshold: Any) -> Finding:
    """The shortest coverage of any container, against the whole window."""
    measured_targets = []
    for target in targets:
        if target.state != "read":
            continue
        cover = coverage_of(target, window)
        if cover.share is not None:
            measured_targets.append((cover, target))
    if not measured_targets:
        return unknown(
            "coverage",
            f"No log line at all in the {window.text} window, so the counts cover "
            "nothing",
            action="Check that the application logs to stdout and that the pods run",
        )
    cover, target = min(measured_targets, key=lambda item: item[0].share)
    finding = measured(
        "coverage",
        cover.share,
        threshold,
        label=f"Log coverage of the {window.text} window (shortest: {target.name}, "
        f"first line {iso(target.tally.earliest)})",
        unit="%",
        action="The log starts later than the window: it was rotated or the "
        "container restarted; read the earlier lines elsewhere (previous: true, "
        "the log store) before trusting the counts",
        details={
            "shortest": target.name,
            "earliest": iso(target.tally.earliest),
            "expected_start": iso(window.start),
            "younger_pods": [],
        },
    )
    young = [
        (c, t)
        for c, t in measured_targets
        if c.shortfall == YOUNGER and _judge(threshold, c.share) != OK
    ]
    if young:
        _say_younger(finding, young, measured_targets, window, threshold)
    return finding


def _judge(threshold: Any, share: float) -> str:
    return threshold.evaluate(share) if threshold is not None else OK


def _say_younger(
    finding: Finding,
    young: list,
    measured_targets: list,
    window: ScanWindow,
    threshold: Any,
) -> None:
    """Make a shortfall of pods younger than the window a warning that names them.

    Such a gap is expected after a rollout or a drill, so it is no worse than a
    warning; a log that starts late for another reason keeps its own status.
    """
    others = [
        _judge(threshold, c.share)
        for c, _t in measured_targets
        if c.shortfall != YOUNGER
    ]
    finding.status = worst([WARNING, *others], empty=WARNING)
    pods = sorted({pod_name(t.pod) for _c, t in young})
    listed = ", ".join(
        f"{t.name} started {iso(c.pod_started)}, {c.covered_hours:g} h covered"
        for c, t in sorted(young, key=lambda item: item[1].name)
    )
    hours = round(window.seconds / 3600, 1)
    finding.message = (
        f"Log coverage of the {window.text} window is {finding.value:g}%: "
        f"{len(pods)} of the pods started after the window began, so their logs "
        f"cover only part of its {hours:g} h and the earlier lines went with the "
        f"pods they replaced ({listed})"
    )
    late = [
        t.name
        for c, t in measured_targets
        if c.shortfall == LATE and _judge(threshold, c.share) != OK
    ]
    if late:
        finding.message += (
            f"; the logs of {', '.join(sorted(late))} start late for another "
            "reason (rotated, or a restart whose previous log was not read)"
        )
    finding.action = (
        "Read the earlier lines of the replaced pods in the log store, or scan a "
        "window that starts after the rollout, before trusting the counts"
    )
    finding.details["younger_pods"] = pods


def reading_finding(targets: list) -> Finding:
    """Which containers were read, not started yet, or failed."""
    failed = [t for t in targets if t.state == "error"]
    read = [t for t in targets if t.state == "read"]
    waiting = [t for t in targets if t.state == "not_started"]
    absent = [t for t in targets if t.state == "absent"]
    pods = {pod_name(t.pod) for t in targets}
    message = f"Read {len(read)} of {len(targets)} container logs in {len(pods)} pods"
    if waiting:
        message += f"; {len(waiting)} not started yet"
    if absent:
        message += f"; {len(absent)} pods have no such container"
    if not failed:
        return Finding("logs_read", OK, message, value=len(read))
    reasons = "; ".join(f"{t.name}: {t.error}" for t in failed[:3])
    return Finding(
        "logs_read",
        UNKNOWN,
        f"{message}; could not read {len(failed)}: {reasons}",
        value=len(read),
        action="Check the API server's access to the nodes (kubelet) and the "
        "pods' state",
    )


def top_patterns(targets: list, count: int, redact: Redactor) -> list:
    """The commonest normalised lines of the top groups, with a redacted example."""
    merged: dict = {}
    for target in targets:
        for key, (hits, message) in target.tally.top.items():
            entry = merged.setdefault(key, [0, message, target.name])
            entry[0] += hits
    ranked = sorted(merged.items(), key=lambda item: (-item[1][0], item[0]))
    return [
        {
            "group": group,
            "pattern": redact.pattern(message),
            "count": hits,
            "example": redact(message),
            "container": where,
        }
        for (group, _pattern), (hits, message, where) in ranked[:count]
    ]


def target_record(target: Target, window: ScanWindow, groups: list) -> dict:
    """One container's figures for the result."""
    cover = coverage_of(target, window)
    tally = target.tally
    return {
        "pod": pod_name(target.pod),
        "container": target.container,
        "state": target.state,
        "error": target.error,
        "previous_read": target.previous_read,
        "lines": tally.lines,
        "bytes": tally.bytes,
        "earliest": iso(tally.earliest),
        "latest": iso(tally.latest),
        "expected_start": iso(window.start),
        "pod_started": iso(cover.pod_started),
        "coverage_pct": cover.share if target.state == "read" else None,
        "covered_hours": cover.covered_hours if cover.share is not None else None,
        "shortfall": cover.shortfall,
        "counts": {group.name: tally.counts[i] for i, group in enumerate(groups)},
    }


# The module's work


def run_k8s_log_scan(params: dict) -> dict:
    """Scan the logs of the selected pods and return the check result."""
    began = time.monotonic()
    settings = scan_settings(params)
    target = parse_target(params)
    conn = connection_from_params(params)
    result = CheckResult()
    extra = {
        "window": settings.window.as_dict(),
        "logs": [],
        "top_patterns": [],
        "pods": [],
    }
    try:
        client = KubeClient(conn)
        try:
            pods = find_pods(client, target)
            _scan(client, pods, settings, result, extra)
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
    result.metrics["scan_seconds"] = round(time.monotonic() - began, 3)
    return {**result.to_dict(SUBJECT), **extra}


def _scan(
    client: KubeClient,
    pods: list,
    settings: ScanSettings,
    result: CheckResult,
    extra: dict,
) -> None:
    """Read the pods' logs, add the findings and fill in the extra keys."""
    extra["pods"] = [pod_name(pod) for pod in pods]
    if not pods:
        result.add(
            unknown(
                "pods",
                "No pod matches the selection",
                action="Check the workload name or the label selectors, and the "
                "namespace",
            )
        )
        return
    targets = targets_of(pods, settings)
    read_all(client, targets, settings)
    window, groups = settings.window, settings.groups
    for finding in group_findings(groups, targets, window):
        result.add(finding)
    result.add(coverage_finding(targets, window, settings.coverage))
    result.add(reading_finding(targets))
    extra["top_patterns"] = top_patterns(targets, settings.top_count, settings.redact)
    extra["logs"] = [target_record(t, window, groups) for t in targets]
    result.metrics.update(_metrics(groups, targets, result))


def _metrics(groups: list, targets: list, result: CheckResult) -> dict:
    metrics = {
        group.name: sum(t.tally.counts[i] for t in targets)
        for i, group in enumerate(groups)
    }
    coverage = next((f.value for f in result.findings if f.name == "coverage"), None)
    metrics.update(
        pods=len({pod_name(t.pod) for t in targets}),
        containers=len(targets),
        lines=sum(t.tally.lines for t in targets),
        bytes=sum(t.tally.bytes for t in targets),
        coverage_pct=coverage,
    )
    return metrics


def _check_top_groups(names: Any, groups: list) -> None:
    known = {group.name for group in groups}
    missing = [name for name in names or [] if name not in known]
    # The default names the default errors group; custom patterns may not have it.
    if missing and list(names) != DEFAULT_TOP_GROUPS:
        raise OptionError(
            "top_groups", missing, f"names no pattern group; groups: {sorted(known)}"
        )


def _positive(params: dict, option: str) -> int:
    value = params.get(option)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise OptionError(option, value, "must be a whole number from 1")
    return value
