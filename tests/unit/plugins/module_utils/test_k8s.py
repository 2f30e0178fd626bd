"""The k8s client layer: options, configuration, selectors and error words."""

from __future__ import annotations

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.k8s import (
    api_error,
    build_configuration,
    connection_from_params,
    kubeconfig_secrets,
    reason_words,
    selector_matches,
    selector_string,
)
from ansible_collections.trm.maintenance.plugins.module_utils.k8s_targets import (
    check_allowed,
    parse_target,
)

KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [
        {"name": "a", "cluster": {"server": "https://a.example.org:6443"}},
        {
            "name": "b",
            "cluster": {
                "server": "https://b.example.org:6443",
                "insecure-skip-tls-verify": True,
            },
        },
    ],
    "users": [{"name": "u", "user": {"token": "token-of-u"}}],
    "contexts": [
        {"name": "a", "context": {"cluster": "a", "user": "u"}},
        {"name": "b", "context": {"cluster": "b", "user": "u"}},
    ],
    "current-context": "a",
}


def params(**values) -> dict:
    base = dict.fromkeys(
        (
            "kubeconfig",
            "context",
            "host",
            "api_key",
            "validate_certs",
            "ca_cert",
            "client_cert",
            "client_key",
        )
    )
    return {**base, "request_timeout": 10.0, **values}


def token_of(configuration) -> str:
    """The Authorization header the client sends."""
    return configuration.auth_settings()["BearerToken"]["value"]


def test_a_kubeconfig_mapping_and_its_context():
    configuration = build_configuration(
        connection_from_params(params(kubeconfig=KUBECONFIG, context="b"))
    )
    assert configuration.host == "https://b.example.org:6443"
    assert configuration.verify_ssl is False
    assert token_of(configuration) == "Bearer token-of-u"


def test_options_override_the_kubeconfig():
    values = params(
        kubeconfig=KUBECONFIG,
        host="https://c.example.org/",
        api_key="t2",
        validate_certs=True,
    )
    configuration = build_configuration(connection_from_params(values))
    assert configuration.host == "https://c.example.org"
    assert token_of(configuration) == "Bearer t2"
    assert configuration.verify_ssl is True
    assert configuration.retries == 0


def test_host_alone_reads_no_kubeconfig(monkeypatch, tmp_path):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    configuration = build_configuration(
        connection_from_params(params(host="http://127.0.0.1:1"))
    )
    assert configuration.host == "http://127.0.0.1:1"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"request_timeout": 0},
            "Option 'request_timeout' must be a number above zero; got 0",
        ),
        (
            {"kubeconfig": "/nonexistent/kubeconfig"},
            "Option 'kubeconfig' is not a readable file; got '/nonexistent/kubeconfig'",
        ),
        (
            {"kubeconfig": 5},
            "Option 'kubeconfig' must be a path or a mapping; got 'int'",
        ),
        (
            {"ca_cert": "/nonexistent/ca.pem"},
            "Option 'ca_cert' is not a readable file; got '/nonexistent/ca.pem'",
        ),
    ],
)
def test_bad_connection_options(values, message):
    with pytest.raises(OptionError) as caught:
        connection_from_params(params(**values))
    assert str(caught.value) == message


def test_an_unknown_context_names_the_option():
    with pytest.raises(OptionError) as caught:
        build_configuration(
            connection_from_params(params(kubeconfig=KUBECONFIG, context="prod"))
        )
    assert caught.value.option == "context"


@pytest.mark.parametrize(
    ("selector", "text"),
    [
        ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
        (
            {
                "matchExpressions": [
                    {"key": "t", "operator": "In", "values": ["x", "y"]},
                    {"key": "k", "operator": "Exists"},
                ]
            },
            "t in (x,y),k",
        ),
        (
            {
                "matchExpressions": [
                    {"key": "t", "operator": "NotIn", "values": ["x"]},
                    {"key": "d", "operator": "DoesNotExist"},
                ]
            },
            "t notin (x),!d",
        ),
        (None, ""),
    ],
)
def test_selector_string(selector, text):
    assert selector_string(selector) == text


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ({"matchLabels": {"app": "a"}}, {"app": "a", "x": "1"}, True),
        ({"matchLabels": {"app": "a"}}, {"app": "b"}, False),
        (
            {"matchExpressions": [{"key": "x", "operator": "NotIn", "values": ["1"]}]},
            {"x": "2"},
            True,
        ),
        (
            {"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]},
            {"x": "2"},
            False,
        ),
        ({}, {"anything": "1"}, True),
    ],
)
def test_selector_matches(selector, labels, matches):
    assert selector_matches(selector, labels) is matches


class _ClientError:
    def __init__(self, status, reason, body):
        self.status, self.reason, self.body = status, reason, body


def test_api_errors_carry_the_servers_message():
    error = api_error(
        _ClientError(404, "Not Found", '{"message": "pods \\"x\\" not found"}')
    )
    assert (error.status, str(error)) == (404, 'HTTP 404 Not Found: pods "x" not found')
    plain = api_error(_ClientError(502, "Bad Gateway", "<html>proxy</html>"))
    assert str(plain) == "HTTP 502 Bad Gateway: <html>proxy</html>"
    raw = api_error(
        _ClientError(429, "Too Many Requests", b'{"message": "Cannot evict"}')
    )
    assert str(raw) == "HTTP 429 Too Many Requests: Cannot evict"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"namespace": "Trm"},
            "Option 'namespace' must be a Kubernetes namespace name; got 'Trm'",
        ),
        (
            {"namespace": "trm"},
            "Option 'name' or label_selectors must be set, and not both; got None",
        ),
        (
            {"namespace": "trm", "name": "a", "label_selectors": ["x=1"]},
            "Option 'name' or label_selectors must be set, and not both; got 'a'",
        ),
        (
            {"namespace": "trm", "name": "a", "kind": "Pod"},
            "Option 'kind' must be one of ['Deployment', 'StatefulSet']; got 'Pod'",
        ),
    ],
)
def test_bad_targets(values, message):
    with pytest.raises(OptionError) as caught:
        parse_target(values)
    assert str(caught.value) == message


def test_the_allow_list():
    check_allowed("trm", ["trm", "staging"])
    with pytest.raises(OptionError) as caught:
        check_allowed("prod", ["trm"])
    assert str(caught.value) == (
        "Option 'namespace' is not in allowed_namespaces ['trm']; add it there to "
        "allow disruptive work in it; got 'prod'"
    )


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "HTTPConnection(host='127.0.0.1', port=1): Failed to establish a new "
            "connection: [Errno 111] Connection refused",
            "connection refused",
        ),
        ("[Errno -2] Name or service not known", "unknown host name"),
        (
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed",
            "the TLS certificate could not be verified",
        ),
        ("something new", "something new"),
    ],
)
def test_reason_words(text, words):
    assert reason_words(text) == words


def test_the_credentials_of_a_kubeconfig_mapping_are_found_for_masking():
    document = {
        "clusters": [{"name": "a", "cluster": {"server": "https://a:6443"}}],
        "users": [
            {"name": "t", "user": {"token": "tok-1"}},
            {"name": "p", "user": {"username": "ops", "password": "pw-2"}},
            {
                "name": "k",
                "user": {
                    "client-certificate-data": "Y2VydA==",
                    "client-key-data": "a2V5",
                },
            },
            {
                "name": "o",
                "user": {
                    "auth-provider": {
                        "name": "oidc",
                        "config": {
                            "id-token": "id-3",
                            "refresh-token": "re-4",
                            "client-secret": "cs-5",
                            "client-id": "trm",
                        },
                    }
                },
            },
        ],
        "contexts": [{"name": "a", "context": {"cluster": "a", "user": "t"}}],
    }

    assert kubeconfig_secrets(document) == [
        "tok-1",
        "pw-2",
        "Y2VydA==",
        "a2V5",
        "id-3",
        "re-4",
        "cs-5",
    ]
    assert kubeconfig_secrets("/home/ops/.kube/config") == []
    assert kubeconfig_secrets(None) == []
