"""trm.maintenance.tls_expiry through Ansible, against real TLS servers on loopback.

Every certificate case runs in one module call, as an operator would run the
whole fleet; the expected days are computed here from the certificate files.
"""

from __future__ import annotations

import base64
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from lab import pki
from tests.integration.tls_servers import make_cases, running

pytestmark = pytest.mark.lab

MODULE = "trm.maintenance.tls_expiry"
TIMEOUT = 2.0
STARTTLS = {
    "smtp": "smtp",
    "smtp_plain": "smtp",
    "postgres": "postgres",
    "postgres_plain": "postgres",
}

# case: (status of its expiry finding, {aspect: status} of its other findings)
EXPECTED = {
    "valid": ("ok", {}),
    "expiring_5": ("critical", {}),
    "expiring_20": ("warning", {}),
    "expired": ("critical", {}),
    "not_yet_valid": ("critical", {}),
    "wrong_host": ("ok", {"hostname": "critical"}),
    "self_signed": ("ok", {"chain": "critical"}),
    "missing_intermediate": ("ok", {"chain": "critical"}),
    "expiring_intermediate": ("ok", {"intermediate": "critical"}),
    "rsa1024": ("ok", {"key": "critical"}),
    "sha1": ("ok", {"signature": "critical"}),
    "tls11": ("ok", {"protocol": "critical"}),
    "smtp": ("ok", {}),
    "postgres": ("ok", {}),
    "silent": ("unknown", {}),
    "refused": ("unknown", {}),
    "plain": ("critical", {}),
    "smtp_without_starttls": ("critical", {}),
    "postgres_without_tls": ("critical", {}),
}
ERRORS = {
    "silent": "timeout",
    "refused": "connection_refused",
    "plain": "not_tls",
    "smtp_without_starttls": "starttls",
    "postgres_without_tls": "starttls",
}


def endpoint(case, **extra) -> dict:
    """The module's endpoint mapping for a served case."""
    entry = {
        "name": case.name,
        "host": "127.0.0.1",
        "port": case.port,
        "server_name": "localhost",
    }
    if case.kind in STARTTLS:
        entry["starttls"] = STARTTLS[case.kind]
    return {**entry, **extra}


def days_left(cert: x509.Certificate) -> int:
    """Whole days until ``cert`` expires, rounded down, computed independently."""
    return (cert.not_valid_after_utc - datetime.now(timezone.utc)).days


@pytest.fixture(scope="module")
def lab_cases(tmp_path_factory):
    """Every case served on loopback for this module's tests."""
    folder = tmp_path_factory.mktemp("tls-cases")
    authority, cases = make_cases(folder / "certs")
    with running(folder, cases):
        yield authority, cases


@pytest.fixture(scope="module")
def fleet(ansible, lab_cases) -> dict:
    """One module call over every case, as the weekly check runs it."""
    authority, cases = lab_cases
    return ansible.module(
        MODULE,
        {
            "endpoints": [endpoint(case) for case in cases.values()],
            "ca_path": str(authority.ca_file),
            "timeout": TIMEOUT,
        },
    )


def _expiry(result: dict) -> dict:
    return {c["target"]: c for c in result["checks"] if c["aspect"] == "expiry"}


def _others(result: dict, target: str) -> dict:
    return {
        c["aspect"]: c["status"]
        for c in result["checks"]
        if c["target"] == target and c["aspect"] != "expiry"
    }


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_case_gets_its_status_and_exact_days(fleet, lab_cases, name):
    case = lab_cases[1][name]
    status, others = EXPECTED[name]
    finding = _expiry(fleet)[name]
    assert finding["status"] == status, finding["message"]
    assert _others(fleet, name) == others
    certs = case.certificates()
    expected_days = days_left(certs[0]) if certs else None
    assert finding["value"] == expected_days
    assert finding.get("error") == ERRORS.get(name)


def test_the_fleet_verdict_and_counts(fleet):
    assert fleet["failed"] is False
    assert fleet["changed"] is False
    assert fleet["status"] == "critical"
    assert fleet["metrics"] == {
        "targets_total": 19,
        "targets_ok": 3,
        "targets_unread": 5,
        "certificates_expired": 1,
        # expiring_5, expiring_20 and the intermediate that ends in 4 days
        "certificates_expiring": 3,
        "min_days_remaining": -2,
    }


def test_findings_are_ranked_soonest_expiry_first(fleet, lab_cases):
    cases = lab_cases[1]
    read = [case for case in cases.values() if case.certificates()]
    first = {
        case.name: min(c.not_valid_after_utc for c in case.certificates())
        for case in read
    }
    expected = sorted(first, key=lambda name: (first[name], name))
    expected += sorted(set(cases) - set(first))
    ranking = [record["name"] for record in fleet["certificates"]]
    assert ranking == expected
    assert [record["rank"] for record in fleet["certificates"]] == [
        *range(1, len(read) + 1),
        *[None] * (len(cases) - len(read)),
    ]
    targets = []
    for check in fleet["checks"]:
        if not targets or targets[-1] != check["target"]:
            targets.append(check["target"])
    assert targets == expected


def test_an_expired_certificate_says_when(fleet, lab_cases):
    cert = lab_cases[1]["expired"].certificates()[0]
    finding = _expiry(fleet)["expired"]
    when = cert.not_valid_after_utc.strftime("%Y-%m-%d %H:%M UTC")
    assert finding["message"] == f"expired: the certificate expired on {when}"
    assert finding["action"].startswith("Renew the certificate of expired")


def test_an_expiring_intermediate_is_reported_apart_from_the_leaf(fleet, lab_cases):
    intermediate = lab_cases[1]["expiring_intermediate"].certificates()[1]
    finding = next(
        c
        for c in fleet["checks"]
        if c["target"] == "expiring_intermediate" and c["aspect"] == "intermediate"
    )
    assert finding["name"] == "expiring_intermediate intermediate"
    assert finding["value"] == days_left(intermediate) == 4
    assert "'TRM Lab Short Intermediate CA' expires in 4 days" in finding["message"]
    assert "renewing the leaf alone does not fix this" in finding["action"]
    record = _record(fleet, "expiring_intermediate")
    assert record["days_remaining"] == 85
    assert record["days_to_first_expiry"] == 4
    assert [c["common_name"] for c in record["chain"]] == [
        "TRM Lab Short Intermediate CA"
    ]


def _record(result: dict, name: str) -> dict:
    return next(r for r in result["certificates"] if r["name"] == name)


def test_a_valid_endpoint_is_described_in_full(fleet, lab_cases):
    certs = lab_cases[1]["valid"].certificates()
    leaf = certs[0]
    record = _record(fleet, "valid")
    described = record["certificate"]
    assert described["subject"] == "CN=localhost,O=TRM Lab"
    assert described["issuer"] == "CN=TRM Lab Intermediate CA,O=TRM Lab"
    assert described["subject_alt_names"] == ["DNS:localhost", "IP:127.0.0.1"]
    assert described["serial"].replace(":", "") == f"{leaf.serial_number:X}".zfill(
        len(described["serial"].replace(":", ""))
    )
    fingerprint = leaf.fingerprint(hashes.SHA256()).hex().upper()
    assert described["fingerprint_sha256"].replace(":", "") == fingerprint
    assert described["not_after"] == leaf.not_valid_after_utc.isoformat()
    assert (described["key_type"], described["key_size"]) == ("EC", 256)
    assert described["signature_algorithm"] == "sha256WithRSAEncryption"
    assert record["chain_available"] is True
    assert [c["common_name"] for c in record["chain"]] == ["TRM Lab Intermediate CA"]
    assert record["chain"][0]["days_remaining"] == days_left(certs[1])
    assert record["trust_anchor"]["common_name"] == "TRM Lab Root CA"
    assert record["chain_verified"] is True
    assert record["hostname_matches"] is True
    assert record["protocol"] == "TLSv1.3"


def test_chain_failures_say_why(fleet):
    missing = _record(fleet, "missing_intermediate")
    assert missing["chain"] == []
    assert missing["verify_error"] == "unable to get local issuer certificate"
    chain = next(
        c
        for c in fleet["checks"]
        if c["target"] == "missing_intermediate" and c["aspect"] == "chain"
    )
    assert chain["message"].startswith(
        "missing_intermediate: the server sends no intermediate certificate"
    )
    assert _record(fleet, "self_signed")["verify_error"] == "self-signed certificate"


def test_a_silent_port_costs_its_timeout_and_no_more(fleet):
    record = _record(fleet, "silent")
    assert record["error"] == "timeout"
    assert TIMEOUT <= record["seconds"] < TIMEOUT + 1.5
    assert record["message"] == (
        f"silent: no answer from 127.0.0.1:{record['port']} within the timeout of "
        f"{TIMEOUT:g} s"
    )


def test_starttls_endpoints_are_read_after_the_upgrade(fleet, lab_cases):
    for name in ("smtp", "postgres"):
        record = _record(fleet, name)
        assert record["starttls"] == name
        leaf = lab_cases[1][name].certificates()[0]
        assert (
            record["certificate"]["not_after"] == leaf.not_valid_after_utc.isoformat()
        )
    refused = _expiry(fleet)["postgres_without_tls"]
    assert refused["message"].endswith(
        "the PostgreSQL server refuses TLS (it answered N)"
    )


def test_a_served_certificate_is_compared_with_the_deployed_one(
    ansible, lab_cases, tmp_path
):
    authority, cases = lab_cases
    valid = cases["valid"]
    renewed = pki.make_leaf(
        authority.intermediate,
        not_before=pki.utc_now() - timedelta(days=1),
        not_after=pki.utc_now() + timedelta(days=180),
    )
    renewed_file = pki.write_certs(tmp_path / "renewed.pem", renewed.cert)
    secret_data = base64.b64encode(Path(valid.chain).read_bytes()).decode()
    result = ansible.module(
        MODULE,
        {
            "endpoints": [
                endpoint(valid, name="stale", expected_file=str(renewed_file)),
                endpoint(valid, name="current", expected_pem=secret_data),
                endpoint(valid, name="lost", expected_file=str(tmp_path / "none.pem")),
            ],
            "ca_path": str(authority.ca_file),
        },
    )
    reload = {c["target"]: c for c in result["checks"] if c["aspect"] == "reload"}
    assert set(reload) == {"stale", "lost"}
    assert reload["stale"]["status"] == "critical"
    assert "renewed but not reloaded" in reload["stale"]["message"]
    assert reload["stale"]["action"].startswith("Reload or restart the service")
    assert reload["lost"]["status"] == "unknown"
    assert _record(result, "current")["expected"]["matches"] is True
    assert _record(result, "stale")["expected"]["matches"] is False


def test_files_and_bundles_are_judged_too(ansible, lab_cases, tmp_path):
    cases = lab_cases[1]
    folder = tmp_path / "deployed"
    folder.mkdir()
    for name in ("valid", "expiring_5"):
        shutil.copy(cases[name].chain, folder / f"{name}.pem")
    leaf, intermediate = cases["valid"].certificates()
    pki.write_certs(tmp_path / "reversed.pem", intermediate, leaf)
    result = ansible.module(
        MODULE,
        {
            "files": [
                str(folder / "*.pem"),
                {"path": str(tmp_path / "reversed.pem"), "name": "reversed"},
                {"path": cases["wrong_host"].chain, "server_name": "localhost"},
                str(tmp_path / "missing.pem"),
            ]
        },
    )
    expiry = _expiry(result)
    assert expiry[str(folder / "valid.pem")]["status"] == "ok"
    assert expiry[str(folder / "valid.pem")]["value"] == days_left(leaf)
    assert expiry[str(folder / "expiring_5.pem")]["status"] == "critical"
    assert expiry[str(folder / "expiring_5.pem")]["value"] == 5
    assert _others(result, "reversed") == {"bundle": "critical"}
    assert _others(result, cases["wrong_host"].chain) == {"hostname": "critical"}
    assert expiry[str(tmp_path / "missing.pem")]["status"] == "unknown"
    assert result["certificates"][0]["name"] == str(folder / "expiring_5.pem")


def test_short_lived_certificates_can_be_judged_by_lifetime_share(
    ansible, lab_cases, tmp_path
):
    now = pki.utc_now()
    short = pki.make_leaf(
        lab_cases[0].intermediate,
        not_before=now - timedelta(hours=12),
        not_after=now + timedelta(days=5, hours=12),
    )
    path = str(pki.write_certs(tmp_path / "short.pem", short.cert))
    by_days = ansible.module(MODULE, {"files": [path]})
    by_share = ansible.module(
        MODULE,
        {"files": [path], "warning_lifetime_pct": 50, "critical_lifetime_pct": 20},
    )
    assert by_days["checks"][0]["status"] == "critical"
    finding = by_share["checks"][0]
    assert (finding["status"], finding["value"]) == ("ok", 5)
    assert (finding["warning"], finding["critical"]) == (3.0, 1.2)


def test_fail_on_turns_findings_into_a_failure_and_check_mode_reads_the_same(
    ansible, lab_cases
):
    authority, cases = lab_cases
    args = {
        "endpoints": [endpoint(cases["expiring_5"])],
        "ca_path": str(authority.ca_file),
    }
    failed = ansible.module(MODULE, {**args, "fail_on": "critical"})
    assert failed["failed"] is True
    assert failed["msg"].startswith("TLS certificates CRITICAL")
    planned = ansible.module(MODULE, args, check_mode=True)
    assert planned["status"] == "critical"
    assert planned["checks"][0]["value"] == 5


@pytest.mark.parametrize(
    ("args", "option", "message"),
    [
        ({"endpoints": ["localhost:70000"]}, "endpoints[0].port", "65535"),
        ({"endpoints": [{"host": "a", "sni": "b"}]}, "endpoints[0]", "unknown keys"),
        ({"endpoints": ["a:1", {"host": "a", "port": 1}]}, "endpoints", "twice"),
        ({"endpoints": []}, "endpoints", "at least one"),
        ({"endpoints": ["a:1"], "critical_days": 40}, "critical_days", "warning_days"),
        (
            {"endpoints": [{"host": "a", "starttls": "imap"}]},
            "endpoints[0].starttls",
            "",
        ),
    ],
)
def test_bad_options_fail_the_task_and_name_the_option(ansible, args, option, message):
    result = ansible.module(MODULE, args)
    assert result["failed"] is True
    assert result["option"] == option
    assert message in result["msg"]
