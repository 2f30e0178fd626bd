"""Decisions of the HTTP health check: parsing, JSON matching, status, masking."""

from __future__ import annotations

import json
import socket
import ssl
from urllib.error import URLError

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils import http_health
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.http import (
    ConnectionRefused,
    HostNotFound,
    HTTPStatusError,
    RequestTimeout,
    Response,
    TLSError,
    header_secrets,
    redact_url,
    translate_error,
    url_secrets,
)
from ansible_collections.trm.maintenance.plugins.module_utils.http_health import (
    endpoint_metrics,
    endpoint_secrets,
    failing_dependencies,
    failure_finding,
    judge_response,
    lookup,
    matches,
    metric_key,
    parse_endpoints,
    unmet_expectations,
)

URL = "https://api.example.org/health"
HEALTHY = {"status": "healthy", "checks": {"mongodb": "ok", "redis": "ok"}}


def params(endpoints, **options) -> dict:
    """Module params as AnsibleModule passes them, with its defaults."""
    return {
        "endpoints": endpoints,
        "status_code": [200],
        "json": {},
        "response_time": {"warning": 1.0, "critical": 5.0},
        "validate_certs": True,
        "ca_path": None,
        "timeout": 10.0,
        "headers": {},
        "url_username": None,
        "url_password": None,
        "force_basic_auth": False,
        "max_workers": 16,
        **options,
    }


def endpoint(item=URL, **options):
    return parse_endpoints(params([item], **options))[0]


def answer(status=200, body=b"", elapsed=0.05) -> Response:
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    return Response(URL, status, "", {}, body, elapsed)


# JSON paths and expectations


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("status", "healthy"),
        ("checks.mongodb", "ok"),
        ("checks.redis.latency_ms", 3),
        ("items.1.state", "down"),
        ("dotted.key", "literal"),
        ("checks.kafka", "<missing>"),
        ("items.5.state", "<missing>"),
        ("status.deeper", "<missing>"),
    ],
)
def test_lookup_follows_dotted_paths_and_list_indexes(path, expected):
    document = {
        "status": "healthy",
        "checks": {"mongodb": "ok", "redis": {"latency_ms": 3}},
        "items": [{"state": "up"}, {"state": "down"}],
        "dotted.key": "literal",
    }
    found = lookup(document, path)
    assert (found if found is not http_health._MISSING else "<missing>") == expected


@pytest.mark.parametrize(
    ("actual", "expected", "result"),
    [
        ("ok", "ok", True),
        ("OK", "ok", False),
        (200, 200, True),
        (200, "200", True),
        (1, 1.0, True),
        (True, True, True),
        (True, "true", True),
        (True, 1, False),
        (False, "false", True),
        (None, None, True),
        ("degraded", "healthy", False),
    ],
)
def test_values_match_as_numbers_or_as_text(actual, expected, result):
    assert matches(actual, expected) is result


def test_unmet_expectations_name_the_field_and_both_values():
    document = {"status": "degraded", "checks": {"redis": "ok"}}
    expect = {"status": "healthy", "checks.redis": "ok", "checks.mongodb": "ok"}
    assert unmet_expectations(document, expect) == [
        'status is "degraded", expected "healthy"',
        'checks.mongodb is missing, expected "ok"',
    ]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (HEALTHY, []),
        (
            {"checks": {"mongodb": "ok", "redis": "error: connection refused"}},
            ["redis: error: connection refused"],
        ),
        (
            {"components": {"db": {"status": "DOWN", "details": {"error": "timeout"}}}},
            ["db: DOWN (timeout)"],
        ),
        ({"dependencies": {"s3": {"status": "UP"}, "smtp": False}}, ["smtp: false"]),
        (
            {"checks": {"cache": {"state": "failing", "message": "OOM"}}},
            ["cache: failing (OOM)"],
        ),
        ({"checks": "all fine"}, []),
        (["not", "a", "mapping"], []),
    ],
)
def test_failing_dependencies_are_read_from_common_health_formats(document, expected):
    assert failing_dependencies(document) == expected


# Judging answers


@pytest.mark.parametrize(
    ("status", "body", "expect", "verdict", "error", "words"),
    [
        (
            200,
            HEALTHY,
            {"status": "healthy"},
            "ok",
            None,
            "answered HTTP 200 in 0.05 s",
        ),
        (
            503,
            HEALTHY,
            {},
            "critical",
            "status_code",
            "answered HTTP 503, expected 200",
        ),
        (
            503,
            {"status": "unhealthy", "checks": {"redis": "error: connection refused"}},
            {},
            "critical",
            "status_code",
            "failing dependencies: redis: error: connection refused",
        ),
        (
            200,
            {"status": "degraded"},
            {"status": "healthy"},
            "critical",
            "json",
            'but status is "degraded", expected "healthy"',
        ),
        (
            200,
            b"<html>fine</html>",
            {"status": "healthy"},
            "critical",
            "json",
            "the body is not JSON, so status could not be checked",
        ),
        (200, b"<html>fine</html>", {}, "ok", None, "answered HTTP 200"),
    ],
)
def test_answers_are_judged_by_status_code_then_json(
    status, body, expect, verdict, error, words
):
    finding = judge_response(endpoint(json=expect), answer(status, body))
    assert finding.status == verdict
    assert finding.details["error"] == error
    assert words in finding.message
    assert finding.message.startswith(URL)
    assert finding.details["status_code"] == status
    assert (finding.action is None) == (verdict == "ok")


@pytest.mark.parametrize(
    ("elapsed", "verdict", "words"),
    [
        (0.2, "ok", "in 0.2 s (warning above 1 s, critical above 5 s)"),
        (1.0, "ok", "in 1 s"),
        (1.5, "warning", "in 1.5 s, above the warning threshold of 1 s"),
        (6.25, "critical", "in 6.25 s, above the critical threshold of 5 s"),
    ],
)
def test_healthy_answers_are_judged_by_response_time(elapsed, verdict, words):
    finding = judge_response(endpoint(), answer(200, HEALTHY, elapsed=elapsed))
    assert (finding.status, finding.value, finding.unit) == (verdict, elapsed, "s")
    assert words in finding.message
    assert finding.details["response_seconds"] == elapsed


def test_an_accepted_status_code_list_is_named_when_missed():
    item = {"url": URL, "name": "api", "status_code": [200, 204]}
    finding = judge_response(endpoint(item), answer(500))
    assert finding.message == "api answered HTTP 500, expected one of 200, 204"


def _url_error(reason):
    return translate_error(URLError(reason), URL, timeout=2.0, elapsed=2.01)


@pytest.mark.parametrize(
    ("error", "kind", "words"),
    [
        (
            _url_error(ConnectionRefusedError(111, "Connection refused")),
            ConnectionRefused,
            "connection refused by api.example.org:443",
        ),
        (
            _url_error(socket.gaierror(-2, "Name or service not known")),
            HostNotFound,
            "host name api.example.org could not be resolved (Name or service",
        ),
        (
            _url_error(TimeoutError("timed out")),
            RequestTimeout,
            "no answer from api.example.org:443 within the timeout of 2 s",
        ),
        (
            translate_error(TimeoutError("read"), URL, timeout=2.0),
            RequestTimeout,
            "within the timeout of 2 s",
        ),
        (
            _url_error(ssl.SSLCertVerificationError(1, "certificate verify failed")),
            TLSError,
            "TLS certificate verification failed for api.example.org:443",
        ),
    ],
)
def test_request_errors_are_translated_into_our_types(error, kind, words):
    assert isinstance(error, kind)
    assert words in str(error)


@pytest.mark.parametrize(
    ("reason", "error", "message_words", "action_words"),
    [
        (
            ConnectionRefusedError(111, "Connection refused"),
            "connection_refused",
            "api: connection refused by api.example.org:443",
            "nothing accepts connections on api.example.org:443",
        ),
        (
            socket.gaierror(-2, "Name or service not known"),
            "dns",
            "api: host name api.example.org could not be resolved",
            "Correct the host name in the URL of api",
        ),
        (
            TimeoutError("timed out"),
            "timeout",
            "api: no answer from api.example.org:443 within the timeout of 2 s",
            "does not answer within 2 s",
        ),
        (
            ssl.SSLCertVerificationError(1, "certificate verify failed"),
            "tls",
            "set ca_path to the CA bundle that signed the certificate, or fix the",
            "or set ca_path to the CA bundle",
        ),
    ],
)
def test_failures_are_critical_with_a_reason_and_an_action(
    reason, error, message_words, action_words
):
    finding = failure_finding(endpoint({"url": URL, "name": "api"}), _url_error(reason))
    assert finding.status == "critical"
    assert message_words in finding.message
    assert action_words in finding.action
    assert finding.details["error"] == error
    assert finding.details["status_code"] is None
    assert finding.details["response_seconds"] == 2.01


def test_http_status_error_carries_status_and_body_excerpt():
    error = HTTPStatusError(answer(502, b"upstream   down\n" + b"x" * 300))
    assert error.status == 502
    assert error.body_excerpt.startswith("upstream down x")
    assert error.body_excerpt.endswith("...")
    assert str(error).startswith(f"{URL} answered HTTP 502: upstream down")


# Metrics


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("api", "api"),
        ("API Gateway", "api_gateway"),
        ("https://app.example.org:8443/health", "https_app_example_org_8443_health"),
        ("---", "endpoint"),
    ],
)
def test_metric_keys_are_snake_case(name, key):
    assert metric_key(name) == key


def test_metrics_count_endpoints_and_keep_answers_only():
    findings = [
        judge_response(endpoint({"url": URL, "name": "api"}), answer(200, HEALTHY)),
        judge_response(endpoint({"url": URL, "name": "Web UI"}), answer(503)),
        failure_finding(
            endpoint({"url": URL, "name": "auth"}),
            _url_error(ConnectionRefusedError(111, "refused")),
        ),
    ]
    assert endpoint_metrics(findings) == {
        "endpoints_total": 3,
        "endpoints_ok": 1,
        "api_response_seconds": 0.05,
        "api_status_code": 200,
        "web_ui_response_seconds": 0.05,
        "web_ui_status_code": 503,
    }


# Secrets


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw@host.example/x", "https://host.example/x"),
        ("https://token@host.example/x", "https://host.example/x"),
        ("http://host/h?token=abc&verbose=1", "http://host/h?token=********&verbose=1"),
        (
            "http://host/h?X-Amz-Signature=s&a=b",
            "http://host/h?X-Amz-Signature=********&a=b",
        ),
        ("http://host/h?api_key=k", "http://host/h?api_key=********"),
        ("http://host/h?name=a%20b", "http://host/h?name=a%20b"),
        ("http://[::1]:8080/h", "http://[::1]:8080/h"),
    ],
)
def test_redacted_urls_hide_user_info_and_secret_query_values(url, shown):
    assert redact_url(url) == shown


def test_secrets_are_collected_from_urls_and_credential_headers():
    assert url_secrets("https://u:p%40ss@h/x?token=t1&a=b") == ["p@ss", "p%40ss", "t1"]
    assert header_secrets(
        {"Authorization": "Bearer abc", "X-Api-Key": "k1", "Accept": "json"}
    ) == ["Bearer abc", "abc", "k1", "k1"]
    found = endpoint_secrets(
        params(
            [
                "https://u:one@h/x",
                {"url": "https://h/y", "headers": {"X-Token": "two"}},
            ],
            headers={"Authorization": "Basic three"},
        )
    )
    assert {"one", "two", "three"} <= set(found)


def test_names_default_to_the_url_without_credentials():
    assert endpoint("https://ops:hunter2@api.example.org/health?token=t").name == (
        "https://api.example.org/health?token=********"
    )


# Options


@pytest.mark.parametrize(
    ("endpoints", "options", "words"),
    [
        ([], {}, "Option 'endpoints' must list at least one URL or mapping; got []"),
        (
            [URL, URL.replace("api", "web"), {"name": "db", "method": "GET"}],
            {},
            "Option 'endpoints[2].url' is required; the endpoint mapping has only "
            "['method', 'name']",
        ),
        (
            ["ftp://files.example.org/x"],
            {},
            "Option 'endpoints[0].url' must be an http:// or https:// URL; "
            "got 'ftp://files.example.org/x'",
        ),
        (
            ["https://u:secret@:99999/x"],
            {},
            "Option 'endpoints[0].url' is not a valid URL; got 'https://:99999/x'",
        ),
        (
            [42],
            {},
            "Option 'endpoints[0]' must be a URL or a mapping with a url; got 42",
        ),
        (
            [{"url": URL, "verb": "GET"}],
            {},
            "Option 'endpoints[0]' has unknown keys ['verb']",
        ),
        (
            [{"url": URL, "method": "POST"}],
            {},
            "Option 'endpoints[0].method' must be one of ['GET', 'HEAD']; got 'POST'",
        ),
        (
            [{"url": URL, "method": "HEAD", "json": {"status": "ok"}}],
            {},
            "Option 'endpoints[0].json' cannot be checked with method HEAD",
        ),
        (
            [{"url": URL, "status_code": [200, 700]}],
            {},
            "Option 'endpoints[0].status_code' must hold HTTP status codes (100-599)",
        ),
        (
            [{"url": URL, "response_time": {"warning": 5, "critical": 1}}],
            {},
            "Option 'endpoints[0].response_time' critical must be at or above warning",
        ),
        (
            [URL],
            {"response_time": {"normal": [0, 1], "investigate": [0, 2]}},
            "Option 'response_time' must give warning and critical response times",
        ),
        (
            [URL],
            {"response_time": {"warning": "fast"}},
            "Option 'response_time.warning' must be a number; got 'fast'",
        ),
        (
            [{"url": URL, "timeout": 0}],
            {},
            "Option 'endpoints[0].timeout' must be a number of seconds above zero",
        ),
        (
            [{"url": URL, "validate_certs": "perhaps"}],
            {},
            "Option 'endpoints[0].validate_certs' must be a boolean; got 'perhaps'",
        ),
        (
            [{"url": URL, "name": "API"}, {"url": URL, "name": "api"}],
            {},
            "Option 'endpoints[1].name' repeats the name of endpoints[0]",
        ),
        (
            [URL],
            {"ca_path": "/nonexistent/ca.pem"},
            "Option 'ca_path' is not a readable",
        ),
    ],
)
def test_bad_options_name_the_option_and_the_value(endpoints, options, words):
    with pytest.raises(OptionError) as caught:
        parse_endpoints(params(endpoints, **options))
    assert words in str(caught.value)


def test_error_messages_never_show_endpoint_headers():
    item = {"url": URL, "headers": {"Authorization": "Bearer s3cr3t"}, "bogus": 1}
    with pytest.raises(OptionError) as caught:
        parse_endpoints(params([item]))
    assert "s3cr3t" not in str(caught.value)


def test_endpoints_inherit_the_top_level_options_and_override_them():
    first, second, third = parse_endpoints(
        params(
            [
                URL,
                {
                    "url": URL,
                    "name": "own",
                    "status_code": 204,
                    "json": {"ok": True},
                    "timeout": "2.5",
                    "validate_certs": "no",
                    "headers": {"X-B": "2"},
                    "response_time": {"warning": 0.2},
                },
                {"url": URL, "name": "head", "method": "head"},
            ],
            status_code=[200, 202],
            json={"status": "healthy"},
            headers={"X-A": "1"},
        )
    )
    assert (first.status_codes, first.expect, first.settings.timeout) == (
        (200, 202),
        {"status": "healthy"},
        10.0,
    )
    assert (second.status_codes, second.expect, second.settings.timeout) == (
        (204,),
        {"ok": True},
        2.5,
    )
    assert second.settings.validate_certs is False
    assert second.settings.headers == {"X-A": "1", "X-B": "2"}
    assert (second.threshold.warning, second.threshold.critical) == (0.2, None)
    assert (third.method, third.expect) == ("HEAD", {})
