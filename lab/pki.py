"""A small certificate authority for the lab: root, intermediate and leaf certs."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

# Leaves outlive nothing in the lab, but a CA that expired would make every
# chain fail for the wrong reason, so CAs span years on both sides of now.
CA_LIFETIME = timedelta(days=3650)
CA_BACKDATE = timedelta(days=365)


@dataclass(frozen=True)
class Issued:
    """A certificate together with its private key."""

    cert: x509.Certificate
    key: PrivateKey


def utc_now() -> datetime:
    """Return the current time in UTC, to the second (certificates hold no more)."""
    return datetime.now(timezone.utc).replace(microsecond=0)


# Key sizes by kind; ``rsa1024`` is too weak for real use and exists so that
# the certificate checks can be tested against a weak key.
RSA_KEY_BITS = {"rsa": 2048, "rsa1024": 1024}


def new_key(*, kind: str = "ec") -> PrivateKey:
    """Make a private key: EC P-256 (``ec``), RSA 2048 (``rsa``) or RSA 1024."""
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if kind in RSA_KEY_BITS:
        return rsa.generate_private_key(
            public_exponent=65537, key_size=RSA_KEY_BITS[kind]
        )
    raise ValueError(f"Unknown key kind {kind!r}: use 'ec', 'rsa' or 'rsa1024'")


def _name(common_name: str) -> x509.Name:
    """Build a subject name in the lab's organisation."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "TRM Lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca_key_usage() -> x509.KeyUsage:
    """Key usage of a certificate authority: sign certificates and CRLs."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf_key_usage(key: PrivateKey) -> x509.KeyUsage:
    """Key usage of a TLS server: RSA keys also encipher, EC keys only sign."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=isinstance(key, rsa.RSAPrivateKey),
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, key: PrivateKey, span: tuple
) -> x509.CertificateBuilder:
    """Start a certificate with the fields every lab certificate shares."""
    not_before, not_after = span
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
    )


def _ca_span(not_before: datetime | None, not_after: datetime | None) -> tuple:
    """Return a CA's validity, defaulting to years around now."""
    now = utc_now()
    return (not_before or now - CA_BACKDATE, not_after or now + CA_LIFETIME)


def make_root_ca(
    *,
    common_name: str = "TRM Lab Root CA",
    key_kind: str = "ec",
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> Issued:
    """Make a self-signed root certificate authority."""
    key = new_key(kind=key_kind)
    name = _name(common_name)
    builder = (
        _builder(name, name, key, _ca_span(not_before, not_after))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
    )
    return Issued(builder.sign(key, hashes.SHA256()), key)


def make_intermediate_ca(
    issuer: Issued,
    *,
    common_name: str = "TRM Lab Intermediate CA",
    key_kind: str = "ec",
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> Issued:
    """Make an intermediate CA signed by ``issuer``, allowed to sign leaves only."""
    key = new_key(kind=key_kind)
    span = _ca_span(not_before, not_after)
    builder = (
        _builder(_name(common_name), issuer.cert.subject, key, span)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(_authority_key_id(issuer), critical=False)
    )
    return Issued(builder.sign(issuer.key, hashes.SHA256()), key)


def _authority_key_id(issuer: Issued) -> x509.AuthorityKeyIdentifier:
    """Point a certificate at the key of the CA that signs it."""
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key())


def _subject_alt_names(
    dns_names: Sequence[str], ip_addresses: Sequence[str]
) -> x509.SubjectAlternativeName:
    """Build the SAN extension from host names and IP addresses."""
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    return x509.SubjectAlternativeName(names)


def make_leaf(
    issuer: Issued,
    *,
    not_before: datetime,
    not_after: datetime,
    dns_names: Sequence[str] = ("localhost",),
    ip_addresses: Sequence[str] = ("127.0.0.1",),
    key_kind: str = "ec",
) -> Issued:
    """Make a TLS server certificate signed by ``issuer`` for the given names."""
    key = new_key(kind=key_kind)
    common_name = dns_names[0] if dns_names else ip_addresses[0]
    builder = (
        _builder(_name(common_name), issuer.cert.subject, key, (not_before, not_after))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(key), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(_subject_alt_names(dns_names, ip_addresses), critical=False)
        .add_extension(_authority_key_id(issuer), critical=False)
    )
    return Issued(builder.sign(issuer.key, hashes.SHA256()), key)


def make_self_signed(
    *,
    not_before: datetime,
    not_after: datetime,
    dns_names: Sequence[str] = ("localhost",),
    ip_addresses: Sequence[str] = ("127.0.0.1",),
    key_kind: str = "ec",
) -> Issued:
    """Make a self-signed TLS server certificate, as a server without a CA has."""
    key = new_key(kind=key_kind)
    name = _name(dns_names[0] if dns_names else ip_addresses[0])
    builder = (
        _builder(name, name, key, (not_before, not_after))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(key), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(_subject_alt_names(dns_names, ip_addresses), critical=False)
    )
    return Issued(builder.sign(key, hashes.SHA256()), key)


def write_certs(path: Path, *certs: x509.Certificate) -> Path:
    """Write certificates to one PEM file, in the order given (leaf first)."""
    pem = b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certs)
    path.write_bytes(pem)
    return path


def write_key(path: Path, key: PrivateKey) -> Path:
    """Write an unencrypted PKCS#8 private key readable by its owner only."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Create with 0600 from the start so the key is never readable by others.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    path.chmod(0o600)
    return path


def write_leaf(
    directory: Path, name: str, leaf: Issued, *chain: x509.Certificate
) -> dict[str, Path]:
    """Write a leaf's certificate, its chain (leaf first) and its key under ``name``."""
    return {
        "cert": write_certs(directory / f"{name}.crt", leaf.cert),
        "chain": write_certs(directory / f"{name}-chain.pem", leaf.cert, *chain),
        "key": write_key(directory / f"{name}.key", leaf.key),
    }
