"""The certificate check's options: endpoints, files and thresholds."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.tls_certs import (
    facts,
)
from ansible_collections.trm.maintenance.plugins.module_utils.tls_options import (
    Policy,
    parse_endpoint,
    parse_file,
    parse_options,
    parse_policy,
    split_address,
)
from lab import pki


def _endpoint(raw, **defaults):
    return parse_endpoint(
        raw, "endpoints[0]", timeout=defaults.get("timeout", 10.0), ca_path=None
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("api.example.org:8443", ("api.example.org", "8443")),
        ("api.example.org", ("api.example.org", 443)),
        ("[2001:db8::1]:443", ("2001:db8::1", "443")),
        ("[2001:db8::1]", ("2001:db8::1", 443)),
        ("2001:db8::1", ("2001:db8::1", 443)),
        ("127.0.0.1:25", ("127.0.0.1", "25")),
    ],
)
def test_addresses_split_into_host_and_port(text, expected):
    assert split_address(text, "endpoints[0]") == expected


@pytest.mark.parametrize("text", ["[2001:db8::1", "[::1]x", "a:b:c", "[]:443"])
def test_malformed_addresses_are_refused(text):
    with pytest.raises(OptionError) as raised:
        split_address(text, "endpoints[0]")
    assert raised.value.option == "endpoints[0]"


def test_a_string_endpoint_sends_its_host_as_sni_and_checks_it():
    spec = _endpoint("api.example.org:8443")
    assert spec.name == "api.example.org:8443"
    assert (spec.target.host, spec.target.port) == ("api.example.org", 8443)
    assert spec.target.server_name == "api.example.org"
    assert spec.hostname == "api.example.org"
    assert spec.target.timeout == 10.0


def test_an_ip_endpoint_sends_no_sni_but_checks_the_address():
    spec = _endpoint("10.0.0.5")
    assert spec.target.server_name is None
    assert spec.hostname == "10.0.0.5"
    assert spec.target.port == 443


def test_a_mapping_sets_every_detail():
    spec = _endpoint(
        {
            "name": "mail",
            "host": "10.0.0.7",
            "port": "587",
            "server_name": "smtp.example.org",
            "starttls": "smtp",
            "timeout": 3,
            "expected_pem": "-----BEGIN CERTIFICATE-----",
        }
    )
    assert spec.name == "mail"
    assert spec.target.address == "10.0.0.7:587"
    assert spec.target.server_name == spec.hostname == "smtp.example.org"
    assert spec.target.starttls == "smtp"
    assert spec.timeout == 3.0
    assert spec.expected_pem == "-----BEGIN CERTIFICATE-----"


def test_an_ipv6_endpoint_is_named_with_brackets():
    assert _endpoint({"host": "::1", "port": 8443}).name == "[::1]:8443"


@pytest.mark.parametrize(
    ("raw", "option", "words"),
    [
        ({"host": "a", "port": 0}, "endpoints[0].port", "from 1 to 65535"),
        ({"host": "a", "port": True}, "endpoints[0].port", "from 1 to 65535"),
        ("a:https", "endpoints[0].port", "from 1 to 65535"),
        ({"port": 443}, "endpoints[0].host", "must name a host"),
        ({"host": "a", "starttls": "imap"}, "endpoints[0].starttls", "smtp"),
        ({"host": "a", "timeout": 0}, "endpoints[0].timeout", "above zero"),
        ({"host": "a", "verify": False}, "endpoints[0]", "unknown keys ['verify']"),
        ({"host": "a", "ca_path": "/no/such/file"}, "endpoints[0].ca_path", "exist"),
        (["a"], "endpoints[0]", "host:port"),
    ],
)
def test_bad_endpoints_name_the_option(raw, option, words):
    with pytest.raises(OptionError) as raised:
        _endpoint(raw)
    assert raised.value.option == option
    assert words in str(raised.value)


def test_a_file_pattern_gives_every_match_in_order(tmp_path):
    for name in ("b.pem", "a.pem", "c.key"):
        (tmp_path / name).write_text("x")
    specs = parse_file(str(tmp_path / "*.pem"), "files[0]")
    assert [spec.name for spec in specs] == [
        str(tmp_path / "a.pem"),
        str(tmp_path / "b.pem"),
    ]


def test_a_pattern_without_match_is_kept_as_a_missing_entry(tmp_path):
    (spec,) = parse_file({"path": str(tmp_path / "*.crt"), "name": "certs"}, "f")
    assert (spec.name, spec.missing) == ("certs", "no file matches")


def test_a_plain_path_is_kept_even_when_missing(tmp_path):
    (spec,) = parse_file({"path": str(tmp_path / "x.pem"), "server_name": "a"}, "f")
    assert (spec.path, spec.hostname, spec.missing) == (
        str(tmp_path / "x.pem"),
        "a",
        None,
    )


def test_names_must_be_unique_across_endpoints_and_files():
    with pytest.raises(OptionError) as raised:
        parse_options(
            {
                "endpoints": [{"host": "a", "name": "x"}],
                "files": [{"path": "/p", "name": "x"}],
            }
        )
    assert raised.value.option == "endpoints"
    assert "'x'" in str(raised.value)


def test_something_must_be_checked():
    with pytest.raises(OptionError) as raised:
        parse_options({"endpoints": [], "files": []})
    assert "at least one" in str(raised.value)


@pytest.mark.parametrize(
    ("params", "option"),
    [
        ({"warning_days": 10, "critical_days": 11}, "critical_days"),
        ({"warning_days": -1}, "warning_days"),
        ({"warning_lifetime_pct": 101}, "warning_lifetime_pct"),
        ({"critical_lifetime_pct": "half"}, "critical_lifetime_pct"),
    ],
)
def test_bad_thresholds_name_the_option(params, option):
    with pytest.raises(OptionError) as raised:
        parse_policy(params)
    assert raised.value.option == option


def _lifetime_cert(days: float):
    now = pki.utc_now()
    issued = pki.make_self_signed(not_before=now, not_after=now + timedelta(days=days))
    return facts(issued.cert)


@pytest.mark.parametrize(
    ("policy", "lifetime", "bounds"),
    [
        (Policy(), 90, (30, 7)),
        (Policy(warning_pct=33, critical_pct=10), 90, (29.7, 7)),
        (Policy(warning_pct=33, critical_pct=10), 398, (30, 7)),
        (Policy(warning_pct=50, critical_pct=20), 6, (3, 1.2)),
        # A share for the warning alone keeps the critical bound under it.
        (Policy(warning_pct=50), 6, (3, 3)),
        (Policy(warning_days=14, critical_days=3), 90, (14, 3)),
    ],
)
def test_lifetime_shares_lower_the_bounds_for_short_lived_certificates(
    policy, lifetime, bounds
):
    threshold = policy.threshold(_lifetime_cert(lifetime))
    assert (threshold.warning, threshold.critical) == pytest.approx(bounds)
    assert threshold.direction == "below"
