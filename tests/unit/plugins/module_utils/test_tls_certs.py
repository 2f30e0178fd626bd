"""Certificate facts read with cryptography, host names, keys and signatures."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization

from ansible_collections.trm.maintenance.plugins.module_utils.tls_certs import (
    CertificateError,
    facts,
    hostname_matches,
    issued_by,
    parse_bundle,
    parse_der,
    weak_key,
    weak_signature,
)
from lab import pki

NOW = pki.utc_now()


@pytest.fixture(scope="module")
def authority():
    root = pki.make_root_ca()
    return root, pki.make_intermediate_ca(root, key_kind="rsa")


def _leaf(issuer, **options):
    return pki.make_leaf(
        issuer,
        not_before=NOW - timedelta(days=1),
        not_after=NOW + timedelta(days=20, hours=12),
        **options,
    )


def _pem(*certs) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def test_facts_describe_the_certificate(authority):
    leaf = _leaf(authority[1])
    described = facts(leaf.cert)
    assert described.subject == "CN=localhost,O=TRM Lab"
    assert described.issuer == "CN=TRM Lab Intermediate CA,O=TRM Lab"
    assert described.common_name == "localhost"
    assert described.subject_alt_names == ["DNS:localhost", "IP:127.0.0.1"]
    assert int(described.serial.replace(":", ""), 16) == leaf.cert.serial_number
    assert (described.key_type, described.key_size, described.key_curve) == (
        "EC",
        256,
        "secp256r1",
    )
    assert described.signature_algorithm == "sha256WithRSAEncryption"
    assert described.signature_hash == "sha256"
    assert (described.self_issued, described.is_ca) == (False, False)
    assert described.days_remaining(NOW) == 20
    assert (
        described.to_dict(NOW)["not_after"] == leaf.cert.not_valid_after_utc.isoformat()
    )


def test_days_remaining_round_down_and_go_negative(authority):
    expired = pki.make_leaf(
        authority[1],
        not_before=NOW - timedelta(days=30),
        not_after=NOW - timedelta(days=1, hours=12),
    )
    assert facts(expired.cert).days_remaining(NOW) == -2


def test_a_bundle_is_read_in_order_and_a_der_file_alone(authority):
    leaf = _leaf(authority[1])
    bundle = parse_bundle(b"junk\n" + _pem(leaf.cert, authority[1].cert) + b"\nkey")
    assert [cert.common_name for cert in bundle] == [
        "localhost",
        "TRM Lab Intermediate CA",
    ]
    der = leaf.cert.public_bytes(serialization.Encoding.DER)
    assert parse_bundle(der)[0].fingerprint_sha256 == bundle[0].fingerprint_sha256
    assert parse_der(der) == bundle[0]


@pytest.mark.parametrize(
    "data",
    [b"-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n", b"not der"],
)
def test_something_else_is_not_a_certificate(data):
    with pytest.raises(CertificateError):
        parse_bundle(data)


@pytest.mark.parametrize(
    ("names", "addresses", "wanted", "matches"),
    [
        (["api.example.org"], [], "api.example.org", True),
        (["API.Example.org"], [], "api.example.ORG.", True),
        (["*.example.org"], [], "api.example.org", True),
        (["*.example.org"], [], "example.org", False),
        (["*.example.org"], [], "a.b.example.org", False),
        (["*.org"], [], "example.org", False),
        (["api.example.org"], [], "web.example.org", False),
        (["xn--bcher-kva.example"], [], "bücher.example", True),
        ([], ["127.0.0.1"], "127.0.0.1", True),
        ([], ["2001:db8::1"], "2001:db8:0::1", True),
        (["127.0.0.1"], [], "127.0.0.1", False),
        ([], ["127.0.0.1"], "localhost", False),
    ],
)
def test_host_names_follow_current_clients(
    authority, names, addresses, wanted, matches
):
    cert = facts(_leaf(authority[1], dns_names=names, ip_addresses=addresses).cert)
    assert hostname_matches(cert, wanted) is matches


def test_a_weak_rsa_key_is_named(authority):
    weak = facts(_leaf(authority[1], key_kind="rsa1024").cert)
    assert weak_key(weak) == "RSA 1024 bits (at least 2048 needed)"
    assert weak_key(facts(_leaf(authority[1], key_kind="rsa").cert)) is None
    assert weak_key(facts(_leaf(authority[1]).cert)) is None


@pytest.mark.parametrize(
    ("algorithm", "hash_name", "expected"),
    [
        ("sha1WithRSAEncryption", "sha1", "signed with sha1WithRSAEncryption (SHA1)"),
        ("ecdsa-with-SHA1", "sha1", "signed with ecdsa-with-SHA1 (SHA1)"),
        ("md5WithRSAEncryption", "md5", "signed with md5WithRSAEncryption (MD5)"),
        ("sha256WithRSAEncryption", "sha256", None),
        ("ED25519", None, None),
    ],
)
def test_broken_signature_hashes_are_named(authority, algorithm, hash_name, expected):
    cert = dataclasses.replace(
        facts(_leaf(authority[1]).cert),
        signature_algorithm=algorithm,
        signature_hash=hash_name,
    )
    assert weak_signature(cert) == expected


def test_issued_by_checks_the_signature_not_only_the_names(authority):
    root, intermediate = authority
    impostor = pki.make_intermediate_ca(pki.make_root_ca())
    leaf = facts(_leaf(intermediate).cert)
    assert issued_by(leaf, facts(intermediate.cert)) is True
    assert issued_by(facts(intermediate.cert), facts(root.cert)) is True
    assert issued_by(leaf, facts(impostor.cert)) is False
    assert issued_by(facts(intermediate.cert), leaf) is False
