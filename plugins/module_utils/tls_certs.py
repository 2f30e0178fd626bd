# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Certificate facts read with ``cryptography``: names, dates, keys and signatures."""

from __future__ import annotations

import functools
import ipaddress
import re
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
    from cryptography.x509.oid import NameOID, SignatureAlgorithmOID
except ImportError:
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None

SECONDS_PER_DAY = 86400
MIN_RSA_BITS = 2048
MIN_EC_BITS = 224
WEAK_HASHES = ("md5", "sha1")
PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----\s.+?-----END CERTIFICATE-----", re.DOTALL
)


class CertificateError(ValueError):
    """Bytes that should hold a certificate do not."""


def _signature_names() -> dict:
    """OpenSSL's names of the usual signature algorithms, keyed by OID."""
    if not HAS_CRYPTOGRAPHY:
        return {}
    oid = SignatureAlgorithmOID
    names = {
        "RSA_WITH_MD5": "md5WithRSAEncryption",
        "RSA_WITH_SHA1": "sha1WithRSAEncryption",
        "RSA_WITH_SHA224": "sha224WithRSAEncryption",
        "RSA_WITH_SHA256": "sha256WithRSAEncryption",
        "RSA_WITH_SHA384": "sha384WithRSAEncryption",
        "RSA_WITH_SHA512": "sha512WithRSAEncryption",
        "RSASSA_PSS": "rsassaPss",
        "ECDSA_WITH_SHA1": "ecdsa-with-SHA1",
        "ECDSA_WITH_SHA224": "ecdsa-with-SHA224",
        "ECDSA_WITH_SHA256": "ecdsa-with-SHA256",
        "ECDSA_WITH_SHA384": "ecdsa-with-SHA384",
        "ECDSA_WITH_SHA512": "ecdsa-with-SHA512",
        "DSA_WITH_SHA1": "dsaWithSHA1",
        "DSA_WITH_SHA256": "dsa_with_SHA256",
        "ED25519": "ED25519",
        "ED448": "ED448",
    }
    return {
        getattr(oid, attribute): name
        for attribute, name in names.items()
        if hasattr(oid, attribute)
    }


SIGNATURE_NAMES = _signature_names()


@dataclass(frozen=True)
class CertificateFacts:
    """What the checks need to know about one certificate."""

    subject: str
    issuer: str
    common_name: str | None
    dns_names: tuple
    ip_addresses: tuple
    serial: str
    fingerprint_sha256: str
    not_before: datetime
    not_after: datetime
    key_type: str
    key_size: int | None
    key_curve: str | None
    signature_algorithm: str
    signature_hash: str | None
    self_issued: bool
    is_ca: bool
    der: bytes = field(repr=False, compare=False)
    certificate: Any = field(repr=False, compare=False)

    @property
    def subject_alt_names(self) -> list:
        """The names the certificate is valid for, as ``DNS:`` and ``IP:`` entries."""
        return [f"DNS:{name}" for name in self.dns_names] + [
            f"IP:{address}" for address in self.ip_addresses
        ]

    @property
    def label(self) -> str:
        """A short name for messages: the common name, else the whole subject."""
        return self.common_name or self.subject or self.fingerprint_sha256[:23]

    def seconds_remaining(self, now: datetime) -> float:
        """Seconds until the certificate expires; negative once it has."""
        return (self.not_after - now).total_seconds()

    def days_remaining(self, now: datetime) -> int:
        """Whole days until the certificate expires, rounded down."""
        return int(self.seconds_remaining(now) // SECONDS_PER_DAY)

    def lifetime_days(self) -> float:
        """The days from not-before to not-after."""
        return (self.not_after - self.not_before).total_seconds() / SECONDS_PER_DAY

    def to_dict(self, now: datetime) -> dict:
        """Describe the certificate for the module result."""
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "common_name": self.common_name,
            "subject_alt_names": self.subject_alt_names,
            "serial": self.serial,
            "fingerprint_sha256": self.fingerprint_sha256,
            "not_before": iso(self.not_before),
            "not_after": iso(self.not_after),
            "days_remaining": self.days_remaining(now),
            "key_type": self.key_type,
            "key_size": self.key_size,
            "key_curve": self.key_curve,
            "signature_algorithm": self.signature_algorithm,
            "signature_hash": self.signature_hash,
            "self_signed": self.self_issued,
            "is_ca": self.is_ca,
        }


def iso(moment: datetime) -> str:
    """An ISO 8601 UTC time to the second."""
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def shown_time(moment: datetime) -> str:
    """A UTC time as a person reads it in a message."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def colon_hex(data: bytes) -> str:
    """Bytes as upper-case hexadecimal pairs joined by colons, as OpenSSL shows."""
    return ":".join(f"{byte:02X}" for byte in data)


# Endpoints of one platform share intermediates and roots, and every handshake
# returns the leaf in three lists; each distinct certificate is read once.
@functools.lru_cache(maxsize=4096)
def parse_der(der: bytes) -> CertificateFacts:
    """Read one DER certificate, or raise ``CertificateError``."""
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError as error:
        raise CertificateError(f"not a DER certificate: {error}") from None
    return facts(certificate)


def parse_bundle(data: bytes) -> list:
    """Read every certificate of a PEM bundle (or one DER certificate), in order."""
    blocks = PEM_CERTIFICATE.findall(data)
    if not blocks:
        if b"-----BEGIN" in data:
            raise CertificateError("holds no PEM certificate")
        return [parse_der(data)]
    found = []
    for block in blocks:
        try:
            found.append(facts(x509.load_pem_x509_certificate(block)))
        except ValueError as error:
            raise CertificateError(f"holds a broken PEM certificate: {error}") from None
    return found


def facts(certificate: Any) -> CertificateFacts:
    """Turn a ``cryptography`` certificate into ``CertificateFacts``."""
    key_type, key_size, key_curve = describe_key(certificate.public_key())
    dns_names, ip_addresses = _alt_names(certificate)
    return CertificateFacts(
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        common_name=_common_name(certificate.subject),
        dns_names=tuple(dns_names),
        ip_addresses=tuple(ip_addresses),
        serial=colon_hex(_serial_bytes(certificate.serial_number)),
        fingerprint_sha256=colon_hex(certificate.fingerprint(hashes.SHA256())),
        not_before=_utc(certificate, "not_valid_before"),
        not_after=_utc(certificate, "not_valid_after"),
        key_type=key_type,
        key_size=key_size,
        key_curve=key_curve,
        signature_algorithm=_signature_name(certificate),
        signature_hash=_signature_hash(certificate),
        self_issued=certificate.subject == certificate.issuer,
        is_ca=_is_ca(certificate),
        der=certificate.public_bytes(serialization.Encoding.DER),
        certificate=certificate,
    )


def _serial_bytes(serial: int) -> bytes:
    return serial.to_bytes(max(1, (serial.bit_length() + 7) // 8), "big")


def _utc(certificate: Any, name: str) -> datetime:
    # cryptography 42 added the timezone-aware properties; older releases only
    # have the naive ones, which hold UTC.
    aware = getattr(certificate, f"{name}_utc", None)
    if aware is not None:
        return aware
    return getattr(certificate, name).replace(tzinfo=timezone.utc)


def _common_name(name: Any) -> str | None:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else None


def _alt_names(certificate: Any) -> tuple:
    try:
        extension = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        )
    except x509.ExtensionNotFound:
        return [], []
    names = extension.value
    dns_names = names.get_values_for_type(x509.DNSName)
    addresses = [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]
    return dns_names, addresses


def _is_ca(certificate: Any) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(
            x509.BasicConstraints
        )
    except x509.ExtensionNotFound:
        return False
    return bool(constraints.value.ca)


def describe_key(key: Any) -> tuple:
    """Return ``(type, bits, curve)`` of a public key."""
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size, None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size, key.curve.name
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256, None
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456, None
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size, None
    return type(key).__name__, None, None


def _signature_name(certificate: Any) -> str:
    oid = certificate.signature_algorithm_oid
    return SIGNATURE_NAMES.get(oid, oid.dotted_string)


def _signature_hash(certificate: Any) -> str | None:
    try:
        algorithm = certificate.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return None
    return algorithm.name if algorithm is not None else None


def weak_key(cert: CertificateFacts) -> str | None:
    """Say why the certificate's key is too weak, or return None."""
    size = cert.key_size
    if cert.key_type in ("RSA", "DSA") and size is not None and size < MIN_RSA_BITS:
        return f"{cert.key_type} {size} bits (at least {MIN_RSA_BITS} needed)"
    if cert.key_type == "EC" and size is not None and size < MIN_EC_BITS:
        return f"EC {cert.key_curve} {size} bits (at least {MIN_EC_BITS} needed)"
    return None


def weak_signature(cert: CertificateFacts) -> str | None:
    """Say which broken hash the certificate is signed with, or return None."""
    name = cert.signature_algorithm.lower()
    for weak in WEAK_HASHES:
        if cert.signature_hash == weak or weak in name:
            return f"signed with {cert.signature_algorithm} ({weak.upper()})"
    return None


def issued_by(child: CertificateFacts, parent: CertificateFacts) -> bool | None:
    """Tell whether ``parent`` signed ``child``; None when this cannot be checked."""
    verify = getattr(child.certificate, "verify_directly_issued_by", None)
    if verify is None:
        # cryptography before 40 cannot check a signature between two
        # certificates; only the names can be compared.
        return child.issuer == parent.subject
    try:
        verify(parent.certificate)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def hostname_matches(cert: CertificateFacts, name: str) -> bool:
    """Tell whether ``name`` (a host name or IP address) is one the cert is for.

    As current TLS clients do, only the subject alternative names count, and a
    wildcard stands for exactly one whole left-most label.
    """
    address = _ip(name)
    if address is not None:
        return any(_ip(listed) == address for listed in cert.ip_addresses)
    wanted = _ascii_name(name)
    if wanted is None:
        return False
    return any(_dns_match(_ascii_name(p) or "", wanted) for p in cert.dns_names)


def _ip(text: str) -> Any:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def _ascii_name(name: str) -> str | None:
    try:
        return name.encode("idna").decode("ascii").lower().rstrip(".")
    except UnicodeError:
        return None


def _dns_match(pattern: str, name: str) -> bool:
    if pattern == name:
        return True
    if not pattern.startswith("*."):
        return False
    suffix = pattern[1:]
    # A wildcard over a single label (*.com) would match a whole top-level domain.
    if suffix.count(".") < 2:
        return False
    head, _dot, rest = name.partition(".")
    return bool(head) and f".{rest}" == suffix
