"""trm.maintenance.k8s_log_scan through Ansible against the lab's Kubernetes API.

The tests write each pod's log themselves and count what they planted by the
kind of each line, not with the module's expressions.
"""

from __future__ import annotations

import collections
import random
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lab.core import LOOPBACK
from tests.integration.test_k8s_common import (
    APP,
    NS,
    SCAN,
    TIMEOUT,
    Line,
    cluster,
    count,
    create_statefulset,
    now,
    plant,
    replace_pod,
    start_cluster,
    write_lines,
)

pytestmark = pytest.mark.lab
# The shared fixtures, used by name.
FIXTURES = (cluster, start_cluster)

WEIGHTS = {
    "request": 60,
    "error": 6,
    "timeout": 3,
    "payment": 4,
    "login": 3,
    "secret": 1,
    "quiet": 3,
}


@pytest.fixture
def planted(cluster):
    """Three pods with their own logs over the last day, and a few older lines."""
    rng = random.Random(7)
    began = now()
    lines = {}
    for name in cluster.names():
        recent = plant(
            rng,
            start=began - timedelta(hours=23, minutes=58),
            end=began - timedelta(seconds=5),
            count=rng.randint(900, 1200),
            weights=WEIGHTS,
        )
        recent.append(
            Line(began - timedelta(hours=23, minutes=59), "request", "INFO up")
        )
        # Before the window: one well before, one inside the minute of margin.
        older = [
            Line(began - timedelta(hours=30), "error", "ERROR too old to count"),
            Line(
                began - timedelta(hours=24, seconds=20), "error", "ERROR just too old"
            ),
        ]
        write_lines(cluster.logs_dir / f"{name}.log", older + recent)
        lines[name] = recent
    return began, lines


def scan(ansible, cluster, **args) -> dict:
    """Run the module on the application's Deployment."""
    return ansible.module(
        SCAN, {**cluster.connection(), "namespace": NS, "name": APP, **args}
    )


def test_every_group_is_counted_per_container_and_in_total(ansible, cluster, planted):
    _began, lines = planted
    result = scan(ansible, cluster)

    by_pod = {log["pod"]: log for log in result["logs"]}
    for name, planted_lines in lines.items():
        counts = by_pod[name]["counts"]
        assert counts["errors"] == count(planted_lines, "error", "timeout", "secret")
        assert counts["payment_failures"] == count(planted_lines, "payment")
        assert counts["failed_logins"] == count(planted_lines, "login")
        assert counts["suspicious_activity"] == 0
        assert by_pod[name]["lines"] == len(planted_lines)
        assert by_pod[name]["coverage_pct"] == 100.0
    everything = [line for pod_lines in lines.values() for line in pod_lines]
    checks = {check["name"]: check for check in result["checks"]}
    assert checks["errors"]["value"] == count(everything, "error", "timeout", "secret")
    assert checks["errors"]["per_container"] == {
        f"{name}/app": count(pod_lines, "error", "timeout", "secret")
        for name, pod_lines in lines.items()
    }
    assert result["metrics"]["payment_failures"] == count(everything, "payment")
    assert result["metrics"]["lines"] == len(everything)
    assert result["status"] == "ok"
    assert result["summary"] == "Log scan OK (8 ok)"
    assert result["window"]["text"] == "24 h"


def test_top_patterns_are_normalised_and_their_examples_masked(
    ansible, cluster, planted
):
    _began, lines = planted
    everything = [line for pod_lines in lines.values() for line in pod_lines]
    result = scan(ansible, cluster, top_count=3)

    top = {item["pattern"]: item for item in result["top_patterns"]}
    validation = (
        "ERROR ValidationError: referral ref-<n> is missing a field (request_id=<id>)"
    )
    assert next(iter(top)) == validation
    assert top[validation]["count"] == count(everything, "error")
    timeout = "ERROR RedisTimeoutError: GET session:<n> timed out after <n>ms"
    assert top[timeout]["count"] == count(everything, "timeout")
    secret = next(
        item for item in result["top_patterns"] if "Upstream" in item["example"]
    )
    assert secret["example"] == (
        "ERROR Upstream refused: POST https://svc:***@pay.example.org/charge "
        "password=*** token=***"
    )
    assert "hunter2-pw" not in str(result)
    assert "abc123def456" not in str(result)
    assert len(result["top_patterns"]) == 3


def test_custom_groups_anchor_after_the_timestamp_and_judge_thresholds(
    ansible, cluster, planted
):
    _began, lines = planted
    everything = [line for pod_lines in lines.values() for line in pod_lines]
    patterns = [
        {"name": "warnings", "regex": "^WARN ", "warning": 10, "critical": 100000},
        # No plain string is needed by this one: every line is tested.
        {"name": "slow", "regex": r"\b\d{3}ms\b", "label": "Slow answers"},
        {
            "name": "digest",
            "regex": "CRON daily-digest",
            "critical": 1,
            "direction": "below",
        },
    ]
    result = scan(ansible, cluster, patterns=patterns, top_groups=["warnings"])

    checks = {check["name"]: check for check in result["checks"]}
    warnings = count(everything, "payment", "login")
    slow = sum(1 for line in everything if re.search(r"\b\d{3}ms\b", line.text))
    assert checks["warnings"]["value"] == warnings
    assert checks["warnings"]["status"] == "warning"
    assert checks["warnings"]["message"] == (
        f"warnings count over 24 h is {warnings}, above the warning threshold of 10"
    )
    assert checks["slow"]["value"] == slow > 0
    assert checks["digest"]["status"] == "critical"
    assert checks["digest"]["message"] == (
        "digest count over 24 h is 0, below the critical threshold of 1"
    )
    assert result["status"] == "critical"
    assert {item["group"] for item in result["top_patterns"]} == {"warnings"}


def test_a_window_longer_than_the_log_is_reported_as_short_coverage(ansible, cluster):
    began = now()
    rng = random.Random(11)
    for name in cluster.names():
        lines = plant(
            rng,
            start=began - timedelta(hours=10),
            end=began - timedelta(seconds=5),
            count=200,
            weights=WEIGHTS,
        )
        lines.append(Line(began - timedelta(hours=10), "request", "INFO first line"))
        write_lines(cluster.logs_dir / f"{name}.log", lines)
    result = scan(ansible, cluster, since="20h")

    coverage = next(check for check in result["checks"] if check["name"] == "coverage")
    assert coverage["status"] == "warning"
    # Ten hours of log in a window of twenty, a few seconds either way.
    assert coverage["value"] == pytest.approx(50.0, abs=0.2)
    assert coverage["message"].startswith("Log coverage of the 20 h window (shortest: ")
    assert coverage["message"].endswith("is 50%, below the warning threshold of 95%")
    assert coverage["earliest"] == (began - timedelta(hours=10)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert result["metrics"]["coverage_pct"] == coverage["value"]
    assert result["status"] == "warning"


def test_a_pod_younger_than_the_window_is_a_warning_that_names_it(ansible, cluster):
    began = now()
    started = (began - timedelta(hours=6)).replace(microsecond=0)
    young = replace_pod(cluster, started=started)
    lines = plant(
        random.Random(5),
        start=began - timedelta(hours=23, minutes=50),
        end=began - timedelta(seconds=5),
        count=400,
        weights=WEIGHTS,
    )
    lines += [
        Line(began - timedelta(hours=23, minutes=59), "request", "INFO up"),
        Line(started + timedelta(seconds=1), "request", "INFO replaced pod up"),
    ]
    # No pod has a log of its own: each is served the app's, from its own start.
    write_lines(cluster.logs_dir / f"{APP}.log", lines)
    result = scan(ansible, cluster)

    coverage = next(check for check in result["checks"] if check["name"] == "coverage")
    assert coverage["status"] == "warning"
    assert coverage["value"] == 25.0
    assert coverage["message"] == (
        "Log coverage of the 24 h window is 25%: 1 of the pods started after the "
        "window began, so their logs cover only part of its 24 h and the earlier "
        f"lines went with the pods they replaced ({young}/app started "
        f"{started.strftime('%Y-%m-%dT%H:%M:%SZ')}, 6 h covered)"
    )
    assert coverage["younger_pods"] == [young]
    assert coverage["shortest"] == f"{young}/app"
    by_pod = {log["pod"]: log for log in result["logs"]}
    assert by_pod[young]["shortfall"] == "pod_younger_than_window"
    assert by_pod[young]["covered_hours"] == 6.0
    assert by_pod[young]["counts"]["errors"] == count(
        lines, "error", "timeout", "secret", since=started
    )
    others = [log for name, log in by_pod.items() if name != young]
    assert [(log["coverage_pct"], log["shortfall"]) for log in others] == [
        (100.0, None),
        (100.0, None),
    ]
    assert result["status"] == "warning"


def test_previous_container_logs_count_when_asked(ansible, cluster, planted):
    began, lines = planted
    first = cluster.names()[0]
    crashed = [
        Line(began - timedelta(hours=2, minutes=i), "error", f"ERROR FATAL crash {i}")
        for i in range(4)
    ]
    write_lines(cluster.logs_dir / f"{first}.previous.log", crashed)
    without = scan(ansible, cluster)
    with_previous = scan(ansible, cluster, previous=True)

    errors = count(lines[first], "error", "timeout", "secret")
    assert without["logs"][0]["counts"]["errors"] == errors
    assert with_previous["logs"][0]["counts"]["errors"] == errors + 4
    assert [log["previous_read"] for log in with_previous["logs"]] == [
        True,
        False,
        False,
    ]
    assert with_previous["metrics"]["lines"] == without["metrics"]["lines"] + 4


def test_a_statefulset_is_scanned_by_kind_and_name(ansible, cluster):
    pods = create_statefulset(cluster, "trm-db", replicas=2)
    began = now()
    lines = [
        Line(began + timedelta(milliseconds=10 * i), "error", f"ERROR replica lag {i}")
        for i in range(5)
    ]
    # The stand-in serves <app label>.log to every pod of that app.
    write_lines(cluster.logs_dir / "trm-db.log", lines)
    result = scan(ansible, cluster, kind="StatefulSet", name="trm-db")

    assert result["pods"] == [pod.metadata.name for pod in pods]
    assert result["metrics"]["errors"] == 2 * 5
    # Pods made seconds ago cover next to nothing of the 24 h window.
    assert [log["coverage_pct"] for log in result["logs"]] == [0.0, 0.0]
    assert [log["shortfall"] for log in result["logs"]] == [
        "pod_younger_than_window"
    ] * 2
    coverage = next(check for check in result["checks"] if check["name"] == "coverage")
    assert coverage["status"] == "warning"
    assert coverage["younger_pods"] == result["pods"]


def test_no_matching_pod_is_unknown(ansible, cluster):
    args = {**cluster.connection(), "namespace": NS, "label_selectors": ["app=nothing"]}
    result = ansible.module(SCAN, args)

    assert result["status"] == "unknown"
    assert result["checks"][0]["message"] == "No pod matches the selection"
    assert result["pods"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            {"patterns": [{"name": "bad", "regex": "error("}]},
            "Option 'patterns[0].regex[0]' is not a valid regular expression: "
            "missing ), unterminated subpattern at position 5; got 'error('",
        ),
        (
            {"patterns": [{"name": "all", "regex": ".*"}]},
            "Option 'patterns[0].regex' matches an empty line, so it would count "
            "every line; got '.*'",
        ),
        (
            {"name": "trm-api"},
            "Option 'name' names no Deployment in namespace trm; got 'trm-api'",
        ),
        (
            {"since": "yesterday"},
            "Option 'since' must be an ISO 8601 date and time such as "
            "'2024-06-02T02:30:00+01:00'; got 'yesterday'",
        ),
        (
            {"top_groups": ["logins"]},
            "Option 'top_groups' names no pattern group; groups: ['cron_failures', "
            "'errors', 'failed_logins', 'payment_failures', 'rate_limiting', "
            "'suspicious_activity']; got ['logins']",
        ),
    ],
)
def test_bad_input_fails_the_task_naming_the_option(ansible, cluster, args, message):
    result = scan(ansible, cluster, **args)

    assert result["failed"] is True
    assert result["msg"] == message


# Counting the log reads where the API server sees them


class CountingProxy:
    """An HTTP proxy in front of the stand-in that counts every pod log request.

    The count is of requests as they arrive, by pod, container and kind (current
    or previous), whatever the module does with the answers.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.reads: collections.Counter = collections.Counter()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer((LOOPBACK, 0), self._handler())
        self.url = f"http://{LOOPBACK}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                proxy.count(self.path)
                request = urllib.request.Request(
                    proxy.upstream + self.path,
                    headers={"Authorization": self.headers.get("Authorization", "")},
                )
                try:
                    with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
                        status, body = answer.status, answer.read()
                        kind = answer.headers.get("Content-Type", "text/plain")
                except urllib.error.HTTPError as error:
                    status, body = error.code, error.read()
                    kind = error.headers.get("Content-Type", "application/json")
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args):
                pass

        return Handler

    def count(self, path: str) -> None:
        """Count a request when it is for a pod's log."""
        url = urllib.parse.urlsplit(path)
        parts = url.path.strip("/").split("/")
        if parts[-1:] != ["log"]:
            return
        query = urllib.parse.parse_qs(url.query)
        previous = query.get("previous", ["false"])[0].lower() in ("true", "1")
        key = (parts[-2], query.get("container", [""])[0], previous)
        with self.lock:
            self.reads[key] += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(TIMEOUT)


MANY_GROUPS = [
    {"name": "errors", "regex": r"\bERROR\b"},
    {"name": "timeouts", "regex": "timed out"},
    {"name": "payments", "regex": "payment failed", "ignore_case": True},
    {"name": "logins", "regex": "failed login", "ignore_case": True},
    {"name": "requests", "regex": "^INFO GET "},
    {"name": "slow", "regex": r"\b\d{3}ms\b"},
    {"name": "quiet", "regex": "error_count=0"},
    {"name": "nothing", "regex": "never written anywhere"},
]


@pytest.mark.parametrize("previous", [False, True])
def test_each_log_is_read_once_whatever_the_number_of_groups(
    ansible, cluster, planted, previous
):
    _began, lines = planted
    first = cluster.names()[0]
    crashed = [Line(now() - timedelta(hours=1), "error", "ERROR FATAL crash")]
    write_lines(cluster.logs_dir / f"{first}.previous.log", crashed)
    everything = [line for pod_lines in lines.values() for line in pod_lines]
    args = {
        "host": None,
        "api_key": "lab-token",
        "namespace": NS,
        "name": APP,
        "previous": previous,
    }
    reads = {}
    results = {}
    for groups in (MANY_GROUPS[:1], MANY_GROUPS):
        with CountingProxy(cluster.record["url"]) as proxy:
            args["host"] = proxy.url
            results[len(groups)] = ansible.module(SCAN, {**args, "patterns": groups})
        reads[len(groups)] = dict(proxy.reads)

    kinds = [False, True] if previous else [False]
    expected = {(name, "app", kind): 1 for name in lines for kind in kinds}
    assert reads == {1: expected, 8: expected}
    metrics = results[8]["metrics"]
    assert metrics["errors"] == count(everything, "error", "timeout", "secret") + (
        1 if previous else 0
    )
    assert metrics["timeouts"] == count(everything, "timeout")
    assert metrics["payments"] == count(everything, "payment")
    assert metrics["logins"] == count(everything, "login")
    assert metrics["requests"] == count(everything, "request") - len(lines)
    assert metrics["quiet"] == count(everything, "quiet")
    assert metrics["nothing"] == 0
    assert results[1]["metrics"]["errors"] == metrics["errors"]
