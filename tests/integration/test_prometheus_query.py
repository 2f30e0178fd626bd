"""trm.maintenance.prometheus_query through Ansible, against a real Prometheus.

The lab's own components start the application (its request counters hold a 5xx
share of exactly 1.5%), the node exporter and Prometheus; a tiny exporter served
from this process adds gauges with fixed values, so every status is known ahead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from lab.components import app, node_exporter, prometheus, tls
from lab.core import LOOPBACK, LabContext, free_port, stop_pid

pytestmark = pytest.mark.lab

MODULE = "trm.maintenance.prometheus_query"
REPO = Path(__file__).resolve().parents[2]
# Prometheus hands targets to its scrapers on a five-second tick; the rest of the
# start is well under a second.
START_BUDGET = 10.0

GAUGES = """\
# TYPE test_ratio gauge
test_ratio 0.015
# TYPE test_disk_used_pct gauge
test_disk_used_pct{mountpoint="/"} 85
test_disk_used_pct{mountpoint="/data"} 95
test_disk_used_pct{mountpoint="/boot"} 40
# TYPE test_nan gauge
test_nan NaN
# TYPE test_referrals gauge
test_referrals 12
"""

ERROR_RATE = (
    'sum(rate(http_requests_total{status=~"5.."}[5m])) '
    "/ sum(rate(http_requests_total[5m]))"
)
DISK_USAGE = (
    '100 * (1 - node_filesystem_avail_bytes{fstype!~"tmpfs|overlay"} '
    '/ node_filesystem_size_bytes{fstype!~"tmpfs|overlay"})'
)


class Exporter(BaseHTTPRequestHandler):
    """Serves the fixed gauges in Prometheus's text format."""

    def do_GET(self) -> None:
        """Answer every path with the gauges."""
        body = GAUGES.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        """Keep the test output quiet."""


@pytest.fixture(scope="module")
def exporter():
    """The fixed-value exporter, on a free loopback port."""
    server = ThreadingHTTPServer((LOOPBACK, free_port()), Exporter)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"{LOOPBACK}:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory, exporter):
    """The application, the node exporter and Prometheus scraping all three."""
    ctx = LabContext(tmp_path_factory.mktemp("lab"))
    extra = [{"job": "fixture", "targets": [exporter]}]
    state = {"servers": {}, "options": {"prometheus": {"extra_targets": extra}}}
    try:
        for component in (tls, app, node_exporter):
            name = component.__name__.rsplit(".", 1)[1]
            state["servers"][name] = component.start(ctx, state)
        started = time.monotonic()
        state["servers"]["prometheus"] = prometheus.start(ctx, state)
        state["prometheus_seconds"] = time.monotonic() - started
        yield state
    finally:
        for record in reversed(list(state["servers"].values())):
            for pid in reversed(record["pids"]):
                stop_pid(pid)


def test_prometheus_starts_and_scrapes_every_target(lab):
    record = lab["servers"]["prometheus"]
    assert record["url"] == f"http://{LOOPBACK}:{record['port']}"
    assert record["jobs"] == ["app", "node_exporter", "fixture"]
    config = yaml.safe_load(Path(record["config"]).read_text())
    assert config["global"]["scrape_interval"] == "1s"
    app_job = config["scrape_configs"][0]
    assert app_job["scheme"] == "https"
    assert app_job["tls_config"] == {
        "ca_file": lab["servers"]["app"]["ca_file"],
        "server_name": "localhost",
    }


def _query(name: str, promql: str, **options) -> dict:
    return {"name": name, "query": promql, **options}


@pytest.fixture(scope="module")
def result(ansible, lab):
    """One module call with every kind of query."""
    queries = [
        _query(
            "error_rate_pct",
            ERROR_RATE,
            label="HTTP 5xx error rate",
            scale=100,
            unit="%",
            warning=1,
            critical=2,
        ),
        _query(
            "disk_usage_pct",
            DISK_USAGE,
            label="Disk usage",
            unit="%",
            warning=80,
            critical=90,
            per_series=True,
        ),
        _query("ratio_pct", "test_ratio", scale=100, unit="%", warning=1, critical=2),
        _query(
            "disk_used",
            "test_disk_used_pct",
            label="Disk used",
            unit="%",
            warning=80,
            critical=90,
            per_series=True,
            action="Free space on the volume",
        ),
        _query("disk_worst", "test_disk_used_pct", unit="%", warning=80, critical=90),
        _query("missing", "test_missing_metric"),
        _query("missing_ok", "test_missing_metric", empty="ok"),
        _query("not_a_number", "test_nan", warning=1),
        _query("scalar_ratio", "scalar(test_ratio)", warning=1),
        _query("bad_promql", "sum(rate(test_ratio[5m]"),
        _query(
            "fixture_up", 'up{job="fixture"}', warning=1, critical=1, direction="below"
        ),
        _query(
            "referrals",
            "test_referrals",
            normal=[20, 100],
            investigate=[10, 200],
        ),
    ]
    url = lab["servers"]["prometheus"]["url"]
    return ansible.module(MODULE, {"url": url, "queries": queries})


def by_name(result: dict) -> dict:
    return {check["name"]: check for check in result["checks"]}


def test_the_guide_error_rate_reads_the_application_counters(result, lab):
    check = by_name(result)["error_rate_pct"]
    expected = lab["servers"]["app"]["expected_error_rate"] * 100
    assert (check["status"], check["value"], check["unit"]) == (
        "warning",
        expected,
        "%",
    )
    assert check["message"] == (
        "HTTP 5xx error rate is 1.5%, above the warning threshold of 1%"
    )
    assert result["metrics"]["error_rate_pct"] == expected


def test_the_guide_disk_usage_judges_each_real_filesystem(result):
    disks = [c for n, c in by_name(result).items() if n.startswith("disk_usage_pct{")]
    assert disks, result["summary"]
    for check in disks:
        value = check["value"]
        assert 0 <= value <= 100
        expected = "critical" if value > 90 else "warning" if value > 80 else "ok"
        assert check["status"] == expected
        assert check["series"]["job"] == "node_exporter"
    root = [c for c in disks if c["series"]["mountpoint"] == "/"]
    if root:
        # The exporter computes from the same statvfs fields; files may change.
        stats = os.statvfs("/")
        used = 100 * (1 - stats.f_bavail / stats.f_blocks)
        assert abs(root[0]["value"] - used) < 1


def test_a_scaled_ratio_is_judged_as_a_percentage(result):
    check = by_name(result)["ratio_pct"]
    assert (check["status"], check["value"], check["value_text"]) == (
        "warning",
        1.5,
        "0.015",
    )
    assert (check["warning"], check["critical"]) == (1.0, 2.0)


def test_per_series_findings_are_named_by_their_labels(result):
    checks = by_name(result)
    assert [
        (checks[name]["status"], checks[name]["value"])
        for name in (
            'disk_used{mountpoint="/"}',
            'disk_used{mountpoint="/boot"}',
            'disk_used{mountpoint="/data"}',
        )
    ] == [("warning", 85.0), ("ok", 40.0), ("critical", 95.0)]
    assert checks['disk_used{mountpoint="/data"}']["message"] == (
        'Disk used {mountpoint="/data"} is 95%, above the critical threshold of 90%'
    )
    assert checks['disk_used{mountpoint="/data"}']["action"] == (
        "Free space on the volume"
    )
    assert result["metrics"]['disk_used{mountpoint="/"}'] == 85.0


def test_without_per_series_the_worst_series_is_named(result):
    check = by_name(result)["disk_worst"]
    assert (check["status"], check["value"]) == ("critical", 95.0)
    assert check["message"] == (
        "disk_worst is 95%, above the critical threshold of 90% "
        '(worst of 3 series: {mountpoint="/data"})'
    )
    assert check["series_count"] == 3


def test_no_series_is_unknown_unless_empty_is_ok(result):
    checks = by_name(result)
    assert checks["missing"]["status"] == "unknown"
    assert checks["missing"]["message"] == "missing: no series matched the query"
    assert checks["missing_ok"]["status"] == "ok"
    assert "missing" not in result["metrics"]


def test_nan_is_unknown_with_the_reason(result):
    check = by_name(result)["not_a_number"]
    assert (check["status"], check["value"]) == ("unknown", None)
    assert check["message"].startswith("not_a_number is NaN, which cannot be judged")
    assert "not_a_number" not in result["metrics"]


def test_a_scalar_result_is_judged(result):
    check = by_name(result)["scalar_ratio"]
    assert (check["status"], check["value"], check["series"]) == ("ok", 0.015, {})


def test_bad_promql_is_unknown_with_prometheus_error(result):
    check = by_name(result)["bad_promql"]
    assert check["status"] == "unknown"
    assert check["message"].startswith(
        "bad_promql: Prometheus rejected the query: bad_data: "
    )
    assert "parse error" in check["message"]
    assert check["action"] == "Fix queries[9].query: sum(rate(test_ratio[5m]"


def test_lower_bounds_and_ranges_are_judged(result):
    checks = by_name(result)
    assert (checks["fixture_up"]["status"], checks["fixture_up"]["value"]) == (
        "ok",
        1.0,
    )
    referrals = checks["referrals"]
    assert (referrals["status"], referrals["normal"], referrals["investigate"]) == (
        "warning",
        [20.0, 100.0],
        [10.0, 200.0],
    )
    assert referrals["message"] == "referrals is 12, outside the normal range 20-100"


def test_the_overall_status_is_the_worst(result):
    assert result["status"] == "critical"
    assert result["failed"] is False
    assert result["summary"].startswith("Prometheus queries CRITICAL (")


def test_a_stopped_prometheus_makes_every_query_unknown(ansible, tmp_path):
    record = prometheus.start(LabContext(tmp_path), {"servers": {}})
    stop_pid(record["pids"][0])
    queries = [_query("ratio", "test_ratio"), _query("up", "up", empty="ok")]
    result = ansible.module(MODULE, {"url": record["url"], "queries": queries})
    assert result["failed"] is False
    assert result["status"] == "unknown"
    where = f"{LOOPBACK}:{record['port']}"
    assert [(c["status"], c["message"]) for c in result["checks"]] == [
        (
            "unknown",
            f"{name}: Prometheus at {record['url']} could not be queried: "
            f"connection refused by {where}",
        )
        for name in ("ratio", "up")
    ]
    assert result["checks"][0]["action"] == (
        f"Check that Prometheus runs and answers at {record['url']}"
    )
    assert result["metrics"] == {}


@pytest.mark.parametrize(
    ("queries", "option", "words"),
    [
        (
            [_query("Error Rate", "x")],
            "queries[0].name",
            "must be snake_case",
        ),
        (
            [_query("a", "x", warning=5, critical=1)],
            "queries[0]",
            "critical must be at or above warning",
        ),
    ],
)
def test_bad_queries_fail_with_the_option_named(ansible, queries, option, words):
    url = f"http://{LOOPBACK}:{free_port()}"
    result = ansible.module(MODULE, {"url": url, "queries": queries})
    assert result["failed"] is True
    assert result["option"] == option
    assert words in result["msg"]


@pytest.mark.parametrize("module", ["http_health", "prometheus_query"])
def test_the_documentation_renders(module):
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections")}
    doc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-doc"), f"trm.maintenance.{module}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert doc.returncode == 0, doc.stderr
    assert "ERROR" not in doc.stderr
    assert "WARNING" not in doc.stderr
    assert "fail_on" in doc.stdout
    assert "EXAMPLES" in doc.stdout
