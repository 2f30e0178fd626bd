"""trm.maintenance.http_health through Ansible, against HTTP and HTTPS servers.

The servers run in this process, in threads, on loopback: a healthy endpoint, one
answering 503 with dependency details, one with the wrong JSON, a slow one, one
behind basic authentication, and the same handler over HTTPS with a certificate
from a CA made here. A port with nothing listening stands for a stopped service.
"""

from __future__ import annotations

import base64
import json
import ssl
import sys
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lab import pki
from lab.core import LOOPBACK, free_port

MODULE = "trm.maintenance.http_health"
USER = "monitor"
OPTION_PASSWORD = "opt-Secret-4711"
URL_PASSWORD = "url-Secret-0815"
HEADER_TOKEN = "hdr-Secret-2342"
QUERY_TOKEN = "qs-Secret-1234"
TIMEOUT = 1.0
# Ansible hands the module to a fresh interpreter; the margin covers the thread
# pool and a busy machine, not a second request.
HANG_SECONDS = 30
SLOW_ANSWER = 0.6

HEALTHY = {"status": "healthy", "checks": {"mongodb": "ok", "redis": "ok"}}
DEGRADED = {
    "status": "unhealthy",
    "checks": {"mongodb": "ok", "redis": "error: connection refused"},
}
WRONG = {"status": "degraded", "checks": {"mongodb": "timeout", "redis": "ok"}}


class Handler(BaseHTTPRequestHandler):
    """Answers by path; the server holds the stop event and the accepted logins."""

    server: HealthServer

    def do_GET(self) -> None:
        """Answer the path's canned response."""
        route = {
            "/health": lambda: self._json(200, HEALTHY),
            "/degraded": lambda: self._json(503, DEGRADED),
            "/wrong": lambda: self._json(200, WRONG),
            "/text": lambda: self._send(200, b"fine\n", "text/plain"),
            "/sluggish": self._sluggish,
            "/hang": self._hang,
            "/auth": self._auth,
        }.get(self.path.split("?")[0], lambda: self._send(404, b"", "text/plain"))
        route()

    def do_HEAD(self) -> None:
        """Answer HEAD like GET, without a body."""
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _json(self, status: int, document: dict) -> None:
        self._send(status, json.dumps(document).encode(), "application/json")

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _sluggish(self) -> None:
        time.sleep(SLOW_ANSWER)
        self._json(200, HEALTHY)

    def _hang(self) -> None:
        # Longer than any timeout a test uses; teardown ends the wait at once.
        self.server.stop.wait(HANG_SECONDS)

    def _auth(self) -> None:
        sent = self.headers.get("Authorization", "")
        if sent in self.server.logins:
            self._json(200, HEALTHY)
            return
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="lab"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args) -> None:
        """Keep the test output quiet."""


class HealthServer(ThreadingHTTPServer):
    """A threaded HTTP server on a free loopback port."""

    daemon_threads = True

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        super().__init__((LOOPBACK, free_port()), Handler)
        self.stop = threading.Event()
        self.logins = {
            f"Basic {base64.b64encode(f'{USER}:{pw}'.encode()).decode()}"
            for pw in (OPTION_PASSWORD, URL_PASSWORD)
        }
        if context is not None:
            self.socket = context.wrap_socket(self.socket, server_side=True)

    def url(self, path: str, *, scheme: str = "http") -> str:
        return f"{scheme}://{LOOPBACK}:{self.server_address[1]}{path}"


def _tls_context(folder) -> tuple[ssl.SSLContext, str]:
    """Make a CA and a localhost certificate; return a server context and the CA."""
    ca = pki.make_root_ca()
    now = pki.utc_now()
    leaf = pki.make_leaf(
        ca, not_before=now - timedelta(days=1), not_after=now + timedelta(days=30)
    )
    paths = pki.write_leaf(folder, "server", leaf, ca.cert)
    ca_file = pki.write_certs(folder / "ca.pem", ca.cert)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(paths["chain"], paths["key"])
    return context, str(ca_file)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """An HTTP and an HTTPS server, serving until the module's tests are done."""
    context, ca_file = _tls_context(tmp_path_factory.mktemp("pki"))
    plain, secure = HealthServer(), HealthServer(context)
    threads = [
        threading.Thread(target=s.serve_forever, daemon=True) for s in (plain, secure)
    ]
    for thread in threads:
        thread.start()
    yield {"http": plain, "https": secure, "ca_file": ca_file}
    for server in (plain, secure):
        server.stop.set()
        server.shutdown()
        server.server_close()


def by_name(result: dict) -> dict:
    return {check["name"]: check for check in result["checks"]}


@pytest.fixture(scope="module")
def mixed(ansible, servers):
    """One module call over every kind of endpoint, as the daily check makes it."""
    http, https = servers["http"], servers["https"]
    closed = free_port()
    endpoints = [
        {"name": "api", "url": http.url("/health"), "json": {"checks.redis": "ok"}},
        {"name": "degraded", "url": http.url("/degraded")},
        {"name": "wrong", "url": http.url("/wrong"), "json": {"status": "healthy"}},
        {"name": "stopped", "url": f"http://{LOOPBACK}:{closed}/health"},
        {"name": "hung", "url": http.url("/hang"), "timeout": TIMEOUT},
        {
            "name": "sluggish",
            "url": http.url("/sluggish"),
            "response_time": {"warning": 0.3, "critical": 5},
        },
        {"name": "untrusted", "url": https.url("/health", scheme="https")},
        {
            "name": "trusted",
            "url": https.url("/health", scheme="https"),
            "ca_path": servers["ca_file"],
        },
        {
            "name": "unverified",
            "url": https.url("/text", scheme="https"),
            "validate_certs": False,
        },
        {"name": "head", "url": http.url("/health"), "method": "HEAD"},
        http.url("/text?token=abc"),
    ]
    started = time.monotonic()
    result = ansible.module(MODULE, {"endpoints": endpoints})
    return {"result": result, "elapsed": time.monotonic() - started, "closed": closed}


def test_the_result_has_one_finding_per_endpoint_in_order(mixed):
    result = mixed["result"]
    assert result["changed"] is False
    assert result["failed"] is False
    assert result["status"] == "critical"
    assert [check["name"] for check in result["checks"]] == [
        "api",
        "degraded",
        "wrong",
        "stopped",
        "hung",
        "sluggish",
        "untrusted",
        "trusted",
        "unverified",
        "head",
        result["checks"][-1]["url"],
    ]
    statuses = {name: check["status"] for name, check in by_name(result).items()}
    assert list(statuses.values()) == [
        "ok",
        "critical",
        "critical",
        "critical",
        "critical",
        "warning",
        "critical",
        "ok",
        "ok",
        "ok",
        "ok",
    ]
    assert result["summary"].startswith(
        "HTTP health CRITICAL (5 critical, 1 warning, 5 ok)"
    )


def test_healthy_endpoints_report_code_and_time(mixed, servers):
    checks = by_name(mixed["result"])
    api = checks["api"]
    assert api["status_code"] == 200
    assert api["url"] == servers["http"].url("/health")
    assert api["message"].startswith("api answered HTTP 200 in ")
    # Judged ok against the critical bound; the figure itself depends on load.
    assert 0 < api["response_seconds"] < api["critical"]
    assert api["status"] == "ok"
    assert api["value"] == api["response_seconds"]
    assert (api["unit"], api["warning"], api["critical"]) == ("s", 1.0, 5.0)
    assert api["action"] is None
    assert (checks["head"]["method"], checks["head"]["status_code"]) == ("HEAD", 200)


def test_a_503_names_the_failing_dependency(mixed):
    degraded = by_name(mixed["result"])["degraded"]
    assert degraded["message"] == (
        "degraded answered HTTP 503, expected 200; "
        "failing dependencies: redis: error: connection refused"
    )
    assert degraded["status_code"] == 503
    assert degraded["error"] == "status_code"
    assert degraded["failing_dependencies"] == ["redis: error: connection refused"]
    assert degraded["action"].startswith("Investigate degraded")


def test_unmet_json_expectations_name_the_field(mixed):
    wrong = by_name(mixed["result"])["wrong"]
    assert wrong["message"] == (
        'wrong answered HTTP 200 but status is "degraded", expected "healthy"; '
        "failing dependencies: mongodb: timeout"
    )
    assert wrong["error"] == "json"


def test_a_closed_port_is_a_refused_connection(mixed):
    result, closed = mixed["result"], mixed["closed"]
    stopped = by_name(result)["stopped"]
    assert stopped["message"] == f"stopped: connection refused by 127.0.0.1:{closed}"
    assert (stopped["status_code"], stopped["error"]) == (None, "connection_refused")
    assert f"nothing accepts connections on 127.0.0.1:{closed}" in stopped["action"]


def test_a_timeout_arrives_within_the_timeout_and_says_it(mixed):
    result = mixed["result"]
    hung = by_name(result)["hung"]
    assert hung["message"].endswith("within the timeout of 1 s")
    assert hung["error"] == "timeout"
    # The hanging handler waits 30 s; an answer well before that means the
    # timeout ended the request, whatever the load on the machine.
    assert TIMEOUT <= hung["response_seconds"] < HANG_SECONDS / 2


def test_a_slow_answer_is_a_warning(mixed):
    sluggish = by_name(mixed["result"])["sluggish"]
    assert SLOW_ANSWER <= sluggish["response_seconds"] < 5
    assert "above the warning threshold of 0.3 s" in sluggish["message"]
    assert sluggish["error"] == "slow"
    assert sluggish["action"].startswith("Find out why sluggish answers slowly")


def test_an_untrusted_certificate_suggests_ca_path(mixed):
    checks = by_name(mixed["result"])
    untrusted = checks["untrusted"]
    assert untrusted["message"].startswith(
        "untrusted: TLS certificate verification failed for 127.0.0.1:"
    )
    assert (
        "set ca_path to the CA bundle that signed the certificate"
        in untrusted["message"]
    )
    assert untrusted["error"] == "tls"
    assert checks["trusted"]["status_code"] == 200
    assert checks["unverified"]["status_code"] == 200


def test_metrics_have_counts_codes_and_times(mixed):
    metrics = mixed["result"]["metrics"]
    assert (metrics["endpoints_total"], metrics["endpoints_ok"]) == (11, 5)
    assert metrics["api_status_code"] == 200
    assert metrics["degraded_status_code"] == 503
    assert metrics["sluggish_response_seconds"] >= SLOW_ANSWER
    assert "stopped_status_code" not in metrics
    assert "hung_response_seconds" not in metrics


def test_secret_query_values_are_masked_in_names(mixed, servers):
    last = mixed["result"]["checks"][-1]
    assert last["name"] == servers["http"].url("/text?token=********")
    assert "abc" not in json.dumps(mixed["result"]["checks"])


def test_credentials_never_appear_in_the_result_or_the_log(ansible, servers, tmp_path):
    http = servers["http"]
    netloc = f"{USER}:{URL_PASSWORD}@{LOOPBACK}:{http.server_address[1]}"
    task = {
        "name": "Check an endpoint with credentials in its URL and headers",
        MODULE: {
            "endpoints": [
                {
                    "name": "userinfo",
                    "url": f"http://{netloc}/auth?token={QUERY_TOKEN}",
                    "headers": {"X-Api-Token": HEADER_TOKEN},
                }
            ],
            "fail_on": "warning",
        },
        "register": "health",
    }
    saved = tmp_path / "result.json"
    save = {
        "ansible.builtin.copy": {
            "content": "{{ health | to_json }}",
            "dest": str(saved),
        }
    }
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps([_play([task, save])]))
    # At -vvv Ansible prints the module's arguments too.
    run = ansible.playbook(playbook, "-i", "localhost,", "-c", "local", "-vvv")
    result = json.loads(saved.read_text())
    assert result["status"] == "ok", result["summary"]
    assert result["checks"][0]["url"] == http.url("/auth?token=********")
    for secret in (URL_PASSWORD, HEADER_TOKEN, QUERY_TOKEN):
        assert secret not in run.stdout
        assert secret not in json.dumps(result)
    assert "userinfo answered HTTP 200" in run.stdout


def _play(tasks: list) -> dict:
    return {
        "hosts": "localhost",
        "gather_facts": False,
        "vars": {"ansible_python_interpreter": sys.executable},
        "tasks": tasks,
    }


def test_basic_auth_options_authenticate_and_stay_hidden(ansible, servers):
    url = servers["http"].url("/auth")
    result = ansible.module(
        MODULE,
        {
            "endpoints": [{"name": "right", "url": url}],
            "url_username": USER,
            "url_password": OPTION_PASSWORD,
            "force_basic_auth": True,
        },
    )
    assert by_name(result)["right"]["status_code"] == 200
    assert OPTION_PASSWORD not in json.dumps(result)

    wrong = ansible.module(
        MODULE,
        {"endpoints": [url], "url_username": USER, "url_password": "not-it"},
    )
    assert wrong["checks"][0]["message"] == f"{url} answered HTTP 401, expected 200"


def test_fail_on_turns_a_finding_into_a_failure(ansible, servers):
    result = ansible.module(
        MODULE,
        {"endpoints": [servers["http"].url("/degraded")], "fail_on": "critical"},
    )
    assert result["failed"] is True
    assert result["msg"].startswith("HTTP health CRITICAL (1 critical)")
    assert result["checks"][0]["status_code"] == 503


@pytest.mark.parametrize(
    ("args", "option", "words"),
    [
        ({"endpoints": []}, "endpoints", "must list at least one URL or mapping"),
        (
            {
                "endpoints": [
                    "http://127.0.0.1:1/a",
                    "http://127.0.0.1:1/b",
                    {"name": "c"},
                ]
            },
            "endpoints[2].url",
            "Option 'endpoints[2].url' is required",
        ),
        (
            {"endpoints": ["gopher://127.0.0.1/x"]},
            "endpoints[0].url",
            "must be an http:// or https:// URL; got 'gopher://127.0.0.1/x'",
        ),
        (
            {
                "endpoints": ["http://127.0.0.1:1/"],
                "response_time": {"warning": 5, "critical": 1},
            },
            "response_time",
            "critical must be at or above warning",
        ),
    ],
)
def test_bad_input_fails_with_the_option_named(ansible, args, option, words):
    result = ansible.module(MODULE, args)
    assert result["failed"] is True
    assert result["option"] == option
    assert words in result["msg"]
    assert "Traceback" not in json.dumps(result)
