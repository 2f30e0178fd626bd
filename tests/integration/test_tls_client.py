"""The certificate check's TLS client in-process, against real servers on loopback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ansible_collections.trm.maintenance.plugins.module_utils import tls
from ansible_collections.trm.maintenance.plugins.module_utils.tls_expiry import (
    run_tls_expiry,
)
from tests.integration.tls_servers import make_cases, running

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls-client")
    authority, cases = make_cases(folder / "certs")
    with running(folder, cases):
        yield authority, cases


def _target(case, **options) -> tls.Target:
    return tls.Target("127.0.0.1", case.port, server_name="localhost", **options)


def _ders(path: str) -> list:
    certs = x509.load_pem_x509_certificates(Path(path).read_bytes())
    return [cert.public_bytes(serialization.Encoding.DER) for cert in certs]


def test_a_verified_handshake_returns_the_served_and_the_verified_chain(served):
    authority, cases = served
    handshake = tls.fetch(
        _target(cases["valid"]), tls.build_contexts(str(authority.ca_file))
    )
    served_ders = _ders(cases["valid"].chain)
    root = authority.root.cert.public_bytes(serialization.Encoding.DER)
    assert handshake.verified is True
    assert handshake.leaf == served_ders[0]
    assert handshake.served_chain == served_ders
    assert handshake.verified_chain == [*served_ders, root]
    assert handshake.protocol == "TLSv1.3"


def test_a_failed_verification_still_reads_the_certificate(served):
    authority, cases = served
    case = cases["missing_intermediate"]
    handshake = tls.fetch(_target(case), tls.build_contexts(str(authority.ca_file)))
    assert handshake.verified is False
    assert handshake.verify_code == 20
    assert handshake.served_chain == _ders(case.chain)
    assert handshake.verified_chain is None


def test_an_expired_leaf_still_verifies_because_dates_are_judged_apart(served):
    authority, cases = served
    handshake = tls.fetch(
        _target(cases["expired"]), tls.build_contexts(str(authority.ca_file))
    )
    assert handshake.verified is True


@pytest.mark.parametrize(
    ("name", "starttls"), [("smtp", "smtp"), ("postgres", "postgres")]
)
def test_starttls_upgrades_before_the_handshake(served, name, starttls):
    authority, cases = served
    case = cases[name]
    handshake = tls.fetch(
        _target(case, starttls=starttls), tls.build_contexts(str(authority.ca_file))
    )
    assert handshake.leaf == _ders(case.chain)[0]


@pytest.mark.parametrize(
    ("name", "starttls", "error"),
    [
        ("refused", None, tls.ConnectionRefused),
        ("plain", None, tls.NotTLS),
        ("smtp_without_starttls", "smtp", tls.StartTLSError),
        ("postgres_without_tls", "postgres", tls.StartTLSError),
        ("smtp", None, tls.NotTLS),
    ],
)
def test_endpoints_without_a_certificate_raise_our_errors(
    served, name, starttls, error
):
    case = served[1][name]
    with pytest.raises(error):
        tls.fetch(_target(case, starttls=starttls, timeout=2), tls.build_contexts())


def test_a_silent_port_times_out_at_its_deadline(served):
    started = time.monotonic()
    with pytest.raises(tls.Timeout) as raised:
        tls.fetch(_target(served[1]["silent"], timeout=0.5), tls.build_contexts())
    elapsed = time.monotonic() - started
    # Bounds with room for a busy machine: the deadline, not a second handshake.
    assert 0.5 <= raised.value.elapsed <= elapsed < 1.5


def test_hanging_endpoints_never_delay_the_others_past_their_timeout(served):
    authority, cases = served
    silent = cases["silent"]
    endpoints = [
        {"name": f"silent-{n}", "host": "127.0.0.1", "port": silent.port}
        for n in range(4)
    ]
    endpoints += [
        {
            "name": f"valid-{n}",
            "host": "127.0.0.1",
            "port": cases["valid"].port,
            "server_name": "localhost",
        }
        for n in range(4)
    ]
    started = time.monotonic()
    result = run_tls_expiry(
        {
            "endpoints": endpoints,
            "ca_path": str(authority.ca_file),
            "timeout": 2.0,
            "max_workers": 8,
        }
    )
    # Every silent endpoint costs its own timeout, side by side: the whole call
    # ends near one timeout, far from the four that a queue behind them would take.
    assert time.monotonic() - started < 2.0 + tls.WATCHDOG_GRACE + 1.0
    by_name = {record["name"]: record for record in result["certificates"]}
    for n in range(4):
        assert by_name[f"valid-{n}"]["status"] == "ok"
        assert by_name[f"valid-{n}"]["handshake_seconds"] < 2.0
        assert by_name[f"silent-{n}"]["error"] == "timeout"
