"""The lab's TLS endpoints and application server, against real processes on loopback.

MongoDB is left out of the application tests: no MongoDB server runs here, and a
dependency without a record is reported as ``not configured``, which does not make
the application unhealthy. Redis is the real ``redis-server``.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from lab.components import app, tls
from lab.core import (
    LOOPBACK,
    LabContext,
    LabError,
    free_port,
    pid_alive,
    stop_pid,
    wait_for_port,
)

pytestmark = pytest.mark.lab

REPO_ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (.+)$")
CATEGORY_PATTERNS = {
    "request": r" INFO (GET|POST|PUT|PATCH|DELETE) /\S* \d{3} \d+ms request_id=",
    "error": r" ERROR \w+: ",
    "payment_failed": r" WARN Payment failed for invoice inv-\d+: \w+ ",
    "failed_login": r" WARN Failed login attempt for user \S+ from 203\.0\.113\.\d+ ",
    "suspicious_activity": r" WARN Suspicious activity: ",
    "rate_limit": r" WARN Rate limit exceeded for 203\.0\.113\.\d+ ",
    "cron_daily_digest_started": r" INFO CRON daily-digest started$",
    "cron_daily_digest_completed": r" INFO CRON daily-digest completed ",
    "cron_cleanup_sessions_completed": r" INFO CRON cleanup-sessions completed ",
}


def _stop_all(pids: list[int]) -> None:
    """Stop every process we started, newest first."""
    for pid in reversed(pids):
        stop_pid(pid)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A TLS component shared by the module's tests, and how long it took to start."""
    ctx = LabContext(tmp_path_factory.mktemp("lab"))
    started = time.monotonic()
    record = tls.start(ctx, {"servers": {}})
    elapsed = time.monotonic() - started
    yield ctx, record, elapsed
    _stop_all(record["pids"])


@pytest.fixture
def pids():
    """Processes a test starts; all stopped when it ends, pass or fail."""
    started: list[int] = []
    yield started
    _stop_all(started)


def _start_redis(ctx: LabContext, pids: list[int]) -> dict:
    """Start a real redis-server with a password; return its record."""
    port, password = free_port(), secrets.token_hex(16)
    argv = ["redis-server", "--port", str(port), "--bind", LOOPBACK]
    argv += ["--requirepass", password, "--save", "", "--appendonly", "no"]
    pid = ctx.spawn(f"redis-{port}", argv)
    pids.append(pid)
    wait_for_port(port, pid=pid)
    return {"pids": [pid], "host": LOOPBACK, "port": port, "password": password}


@pytest.fixture
def app_lab(lab, pids):
    """The application with a real Redis and no MongoDB record."""
    ctx, tls_record, _unused = lab
    redis_record = _start_redis(ctx, pids)
    servers = {"tls": tls_record, "redis": redis_record}
    started = time.monotonic()
    record = app.start(ctx, {"servers": servers})
    elapsed = time.monotonic() - started
    pids.extend(record["pids"])
    return record, redis_record, elapsed


def _tls_connect(port: int, context: ssl.SSLContext) -> ssl.SSLSocket:
    """Connect to a lab port and handshake as a client of ``localhost``."""
    raw = socket.create_connection((LOOPBACK, port), timeout=5)
    # The TLS socket owns the connection from here on, and closes it on failure.
    return context.wrap_socket(raw, server_hostname="localhost")


def _peer_certificate(port: int) -> x509.Certificate:
    """Fetch the served leaf without verifying it."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with _tls_connect(port, context) as conn:
        return x509.load_der_x509_certificate(conn.getpeercert(binary_form=True))


def _verified_get(port: int, ca_file: str) -> bytes:
    """Send a GET over a connection verified against the lab CA for localhost."""
    context = ssl.create_default_context(cafile=ca_file)
    with _tls_connect(port, context) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        return conn.recv(4096)


def _https_get(record: dict, path: str) -> tuple[int, bytes]:
    """GET a path of the application, verifying its IP SAN against the lab CA."""
    context = ssl.create_default_context(cafile=record["ca_file"])
    conn = http.client.HTTPSConnection(
        record["host"], record["port"], context=context, timeout=5
    )
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("name", "days"), [("valid", 90), ("expiring", 8), ("expired", -2)]
)
def test_tls_endpoint_serves_recorded_certificate(lab, name, days):
    """Each port serves its own leaf, and the record states its expiry."""
    record = lab[1]["endpoints"][name]
    cert = _peer_certificate(record["port"])

    recorded = datetime.fromisoformat(record["not_after"])
    assert abs((cert.not_valid_after_utc - recorded).total_seconds()) < 60
    assert record["days_remaining"] == days
    assert record["server_name"] == "localhost"
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == [LOOPBACK]


@pytest.mark.parametrize("name", ["valid", "expiring"])
def test_tls_endpoint_verifies_against_lab_ca(lab, name):
    """A client trusting only the lab root verifies the chain and gets 200 OK."""
    record = lab[1]
    answer = _verified_get(record["endpoints"][name]["port"], record["ca_file"])
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(f"{name} ok\n".encode())


def test_tls_expired_endpoint_fails_verification(lab):
    """The expired leaf is rejected as expired, not for any other reason."""
    record = lab[1]
    with pytest.raises(ssl.SSLCertVerificationError) as caught:
        _verified_get(record["endpoints"]["expired"]["port"], record["ca_file"])
    assert caught.value.verify_message == "certificate has expired"


def test_tls_silent_client_does_not_block_others(lab):
    """A client that never starts its handshake leaves other clients unaffected."""
    record = lab[1]
    port = record["endpoints"]["valid"]["port"]
    with socket.create_connection((LOOPBACK, port), timeout=5):
        started = time.monotonic()
        answer = _verified_get(port, record["ca_file"])
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert time.monotonic() - started < 1.0


def test_tls_record_files_and_key_modes(lab):
    """The record points at the served leaves; keys are readable by the owner only."""
    _unused, record, _elapsed = lab
    assert record["host"] == LOOPBACK
    assert sorted(record["files"]) == ["expired", "expiring", "valid"]
    leaf = x509.load_pem_x509_certificate(Path(record["files"]["valid"]).read_bytes())
    assert leaf == _peer_certificate(record["endpoints"]["valid"]["port"])
    assert Path(record["app_cert"]["key"]).stat().st_mode & 0o777 == 0o600
    chain = Path(record["app_cert"]["cert"]).read_bytes()
    assert len(x509.load_pem_x509_certificates(chain)) == 2


def _assert_clean_exit(args: list[str], port: int) -> None:
    """Start a lab server module, send SIGTERM, expect exit status 0."""
    proc = subprocess.Popen([sys.executable, "-m", *args], cwd=REPO_ROOT)
    try:
        wait_for_port(port, pid=proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)


def _private_copy(path: Path, config: dict) -> Path:
    """Write a server configuration readable by its owner only (it may hold secrets)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(config, handle)
    return path


def test_tls_server_exits_cleanly_on_sigterm(lab):
    """SIGTERM ends the TLS server with status 0 within a few seconds."""
    ctx = lab[0]
    config = json.loads(ctx.path("tls", "server.json").read_text())
    for endpoint in config["endpoints"]:
        endpoint["port"] = free_port()
    path = _private_copy(ctx.path("tls", "sigterm.json"), config)
    _assert_clean_exit(["lab.tls_server", "--config", str(path)], endpoint["port"])


def test_app_needs_tls_record(tmp_path):
    """Without the tls component there is no certificate to serve."""
    with pytest.raises(LabError, match="tls component"):
        app.start(LabContext(tmp_path), {"servers": {}})


def test_app_health_is_healthy_with_redis_and_no_mongodb(app_lab):
    """Redis answers PING; MongoDB, not configured, does not count against health."""
    record, _unused, _elapsed = app_lab
    status, body = _https_get(record, "/health")
    document = json.loads(body)

    assert status == 200
    assert document["status"] == "healthy"
    assert document["version"] == "2.4.1"
    assert document["checks"] == {"mongodb": "not configured", "redis": "ok"}
    assert isinstance(document["uptime_seconds"], int)
    assert record["health_url"] == f"https://localhost:{record['port']}/health"


def test_app_health_turns_unhealthy_when_redis_stops(app_lab):
    """Once redis-server is gone, /health answers 503 naming Redis, within 2 s."""
    record, redis_record, _unused = app_lab
    stop_pid(redis_record["pids"][0])
    started = time.monotonic()
    status, body = _https_get(record, "/health")
    document = json.loads(body)

    assert time.monotonic() - started < 2.0
    assert status == 503
    assert document["status"] == "unhealthy"
    assert document["checks"]["mongodb"] == "not configured"
    assert document["checks"]["redis"].startswith("ConnectionError: ")
    assert redis_record["password"] not in body.decode()


def test_app_health_reports_wrong_redis_password(lab, pids):
    """A rejected password is a failing check whose text never shows the password."""
    ctx, tls_record, _unused = lab
    redis_record = _start_redis(ctx, pids)
    wrong = {**redis_record, "password": secrets.token_hex(16)}
    record = app.start(ctx, {"servers": {"tls": tls_record, "redis": wrong}})
    pids.extend(record["pids"])
    status, body = _https_get(record, "/health")

    assert status == 503
    assert json.loads(body)["checks"]["redis"].startswith("AuthenticationError: ")
    assert wrong["password"] not in body.decode()


def _request_totals(text: str) -> tuple[float, float]:
    """Sum ``http_requests_total``: (5xx, all)."""
    errors = total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name != "http_requests_total":
                continue
            total += sample.value
            errors += sample.value if sample.labels["status"].startswith("5") else 0
    return errors, total


def test_app_metrics_error_share_is_planted_rate(app_lab):
    """Between two scrapes the 5xx share of new requests is 1.5%."""
    record = app_lab[0]
    status, first = _https_get(record, "/metrics")
    time.sleep(1.1)
    _unused, second = _https_get(record, "/metrics")

    errors_before, total_before = _request_totals(first.decode())
    errors_after, total_after = _request_totals(second.decode())
    share = (errors_after - errors_before) / (total_after - total_before)
    assert status == 200
    assert share == pytest.approx(0.015, abs=0.001)
    assert record["expected_error_rate"] == 0.015
    assert errors_after / total_after == pytest.approx(0.015, abs=0.001)


def test_app_metrics_expose_histogram_and_payment_failures(app_lab):
    """The duration histogram and the payment failure counter are exposed."""
    _unused, body = _https_get(app_lab[0], "/metrics")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}

    assert families["http_request_duration_seconds"].type == "histogram"
    assert families["trm_payment_failures"].type == "counter"
    reasons = {s.labels["reason"] for s in families["trm_payment_failures"].samples}
    assert reasons == {"card_declined", "insufficient_funds"}


def _parse_log(path: Path) -> list[tuple[datetime, str]]:
    """Read the log; every line must have the timestamp format."""
    entries = []
    for line in path.read_text().splitlines():
        match = LINE.match(line)
        assert match, f"malformed log line: {line!r}"
        when = datetime.strptime(match[1], "%Y-%m-%dT%H:%M:%S.%fZ")
        entries.append((when.replace(tzinfo=timezone.utc), line))
    return entries


def _classify(line: str) -> str:
    """Name the one category a line belongs to."""
    found = [name for name, rx in CATEGORY_PATTERNS.items() if re.search(rx, line)]
    assert len(found) == 1, f"{line!r} matches {found}"
    return found[0]


def test_app_log_counts_match_record(app_lab):
    """Counting the log's last 24 hours of history gives the recorded numbers."""
    record = app_lab[0]
    since = datetime.fromisoformat(record["log_window_24h"]["start"])
    until = datetime.fromisoformat(record["log_window_24h"]["end"])
    entries = _parse_log(Path(record["log_file"]))
    inside = [line for when, line in entries if since <= when < until]

    counts = Counter(_classify(line) for line in inside)
    expected = {k: v for k, v in record["log_counts_24h"].items() if k != "total"}
    assert {name: counts.get(name, 0) for name in expected} == expected
    assert record["log_counts_24h"]["total"] == len(inside)
    assert record["log_counts_24h"]["cron_cleanup_sessions_completed"] == 24
    assert [when for when, _unused in entries] == sorted(
        when for when, _unused in entries
    )
    assert entries[0][0] >= until - app.HISTORY


def test_app_log_anchored_on_state_now(lab, pids, tmp_path):
    """``state["now"]`` anchors the history; logs go to the k8s stand-in's folder."""
    ctx, tls_record, _unused = lab
    logs_dir = tmp_path / "pod-logs"
    state = {
        "now": "2025-03-04T12:00:00Z",
        "servers": {"tls": tls_record, "k8s": {"logs_dir": str(logs_dir)}},
    }
    record = app.start(ctx, state)
    pids.extend(record["pids"])
    entries = _parse_log(logs_dir / "trm-app.log")

    assert record["log_file"] == str(logs_dir / "trm-app.log")
    assert record["log_window_24h"]["end"] == "2025-03-04T12:00:00+00:00"
    assert entries[0][0] >= datetime(2025, 3, 2, 12, tzinfo=timezone.utc)
    assert record["log_counts_24h"]["cron_daily_digest_started"] == 1


def test_app_log_is_deterministic_and_free_of_secrets(app_lab, tmp_path):
    """The same anchor gives the same history; no password appears in the log."""
    record, redis_record, _unused = app_lab
    anchor = datetime(2025, 3, 4, 12, 0, tzinfo=timezone.utc)
    first = app.write_history(tmp_path / "a.log", anchor)
    second = app.write_history(tmp_path / "b.log", anchor)

    assert (tmp_path / "a.log").read_text() == (tmp_path / "b.log").read_text()
    assert first == second
    assert first["counts"]["error"] == sum(first["error_kinds"].values())
    assert redis_record["password"] not in Path(record["log_file"]).read_text()


def test_app_log_grows_while_running(app_lab):
    """The server appends request lines after the history, every few seconds."""
    record = app_lab[0]
    path = Path(record["log_file"])
    before = len(path.read_text().splitlines())
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline and len(path.read_text().splitlines()) == before:
        time.sleep(0.2)
    newest = _parse_log(path)[-1]

    assert len(path.read_text().splitlines()) > before
    assert _classify(newest[1]) == "request"
    assert newest[0] >= datetime.fromisoformat(record["log_window_24h"]["end"])


def test_app_server_exits_cleanly_on_sigterm(app_lab, lab):
    """SIGTERM stops the application server and its log writer with status 0."""
    ctx = lab[0]
    config = json.loads(ctx.path("app", "server.json").read_text())
    config["port"] = free_port()
    path = _private_copy(ctx.path("app", "sigterm.json"), config)
    _assert_clean_exit(["lab.app_server", "--config", str(path)], config["port"])
    assert all(pid_alive(pid) for pid in app_lab[0]["pids"])
