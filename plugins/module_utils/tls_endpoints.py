# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The certificate check of one endpoint: handshake, chain, host name, reload."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from ansible_collections.trm.maintenance.plugins.module_utils import tls
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    CRITICAL,
    UNKNOWN,
)
from ansible_collections.trm.maintenance.plugins.module_utils.tls_certs import (
    CertificateError,
    CertificateFacts,
    iso,
    parse_bundle,
    parse_der,
    shown_time,
)
from ansible_collections.trm.maintenance.plugins.module_utils.tls_findings import (
    Judge,
    Outcome,
    base_record,
    failed_outcome,
    judge_path,
    judged,
    make_outcome,
    read_certificates,
)
from ansible_collections.trm.maintenance.plugins.module_utils.tls_options import (
    EndpointSpec,
    Policy,
)

# OpenSSL verification errors that mean "no path to a trusted root".
UNTRUSTED_CODES = (2, 19, 20, 21)
SELF_SIGNED_LEAF_CODE = 18


@dataclass(frozen=True)
class Presented:
    """A handshake and its certificates, read."""

    handshake: tls.Handshake
    leaf: CertificateFacts
    served: list | None
    verified: list | None
    trust: str

    @property
    def path(self) -> list:
        """The certificates above the leaf that clients rely on, leaf excluded.

        The verified path when the chain verified, else the chain as served.
        """
        return (self.verified or self.served or [self.leaf])[1:]


def check_endpoint(
    spec: EndpointSpec, contexts: dict, policy: Policy, now: datetime
) -> Outcome:
    """Connect to one endpoint and judge what it presents."""
    context = contexts[spec.ca_path]
    try:
        handshake = tls.fetch(spec.target, context)
        presented = Presented(
            handshake=handshake,
            leaf=parse_der(handshake.leaf),
            served=_parse_all(handshake.served_chain),
            verified=_parse_all(handshake.verified_chain),
            trust=context.trust,
        )
    except tls.TLSCheckError as error:
        return failed_outcome(spec, error.kind, str(error), elapsed=error.elapsed)
    except CertificateError as error:
        message = f"the server sent a certificate that cannot be read: {error}"
        return failed_outcome(spec, "certificate", message)
    return judge_endpoint(spec, presented, policy, now)


def _parse_all(chain: list | None) -> list | None:
    return None if chain is None else [parse_der(der) for der in chain]


def judge_endpoint(
    spec: EndpointSpec, presented: Presented, policy: Policy, now: datetime
) -> Outcome:
    """Turn one handshake into findings and a record."""
    judge = Judge(spec.name, policy, now)
    leaf, path = presented.leaf, presented.path
    judge.expiry(leaf)
    judge_path(judge, path)
    matches = judge.hostname(leaf, spec.hostname)
    if not presented.handshake.verified:
        judge_chain(judge, presented)
    judge.weaknesses(judged(leaf, path))
    judge.protocol(presented.handshake.protocol)
    expected = compare_expected(judge, spec, leaf)
    record = endpoint_record(spec, presented, now)
    record.update(hostname_matches=matches, expected=expected)
    return make_outcome(spec, judge, record, [leaf, *path], now)


def judge_chain(judge: Judge, presented: Presented) -> None:
    """Report a chain that did not verify, worded by OpenSSL's reason."""
    handshake = presented.handshake
    key, message = chain_problem(
        handshake.verify_code,
        handshake.verify_error,
        leaf=presented.leaf,
        served=presented.served,
        trust=presented.trust,
    )
    judge.add(
        "chain",
        CRITICAL,
        message,
        action=judge.action(key),
        verify_code=handshake.verify_code,
        verify_error=handshake.verify_error,
    )


def chain_problem(
    code: int | None,
    error: str | None,
    *,
    leaf: CertificateFacts,
    served: list | None,
    trust: str,
) -> tuple:
    """Return ``(action key, message)`` for a failed verification."""
    store = "the system trust store" if trust == "system" else f"the CA file {trust}"
    untrusted = code in UNTRUSTED_CODES
    if code == SELF_SIGNED_LEAF_CODE or (untrusted and leaf.self_issued):
        return "self_signed", f"the certificate is self-signed, not trusted by {store}"
    if untrusted and served is not None and len(served) <= 1:
        message = "the server sends no intermediate certificate, so no chain to a "
        return "missing_intermediate", f"{message}trusted root can be built ({error})"
    if untrusted:
        return "untrusted", f"the chain does not lead to a root in {store} ({error})"
    return "chain", f"the chain does not verify: {error}"


def endpoint_record(spec: EndpointSpec, presented: Presented, now: datetime) -> dict:
    """Describe what one endpoint presented, for the module result."""
    served, verified = presented.served, presented.verified
    served_ders = {cert.der for cert in served or []}
    anchor = verified[-1] if verified and verified[-1].der not in served_ders else None
    handshake = presented.handshake
    return {
        **base_record(spec),
        "certificate": presented.leaf.to_dict(now),
        "chain": [cert.to_dict(now) for cert in (served or [])[1:]],
        "chain_available": served is not None,
        "chain_note": None if served is not None else tls.chain_unavailable_note(),
        "trust_anchor": anchor.to_dict(now) if anchor else None,
        "trust": presented.trust,
        "chain_verified": handshake.verified,
        "verify_error": handshake.verify_error,
        "protocol": handshake.protocol,
        "cipher": handshake.cipher,
        "handshake_seconds": handshake.seconds,
    }


def compare_expected(
    judge: Judge, spec: EndpointSpec, leaf: CertificateFacts
) -> dict | None:
    """Compare the served certificate with the deployed one, if one is given."""
    source = spec.expected_file or ("expected_pem" if spec.expected_pem else None)
    if source is None:
        return None
    try:
        expected = load_expected(spec)
    except (OSError, CertificateError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        judge.add(
            "reload",
            UNKNOWN,
            f"the expected certificate in {source} could not be read: {reason}",
            action=judge.action("expected", source=source),
        )
        return {"source": source, "matches": None, "error": reason}
    matches = expected.fingerprint_sha256 == leaf.fingerprint_sha256
    if not matches:
        _report_mismatch(judge, leaf, expected, source)
    return {
        "source": source,
        "matches": matches,
        "fingerprint_sha256": expected.fingerprint_sha256,
        "not_after": iso(expected.not_after),
    }


def _report_mismatch(
    judge: Judge, leaf: CertificateFacts, expected: CertificateFacts, source: str
) -> None:
    served_until = shown_time(leaf.not_after)
    if expected.not_after > leaf.not_after:
        message = f"the endpoint serves a certificate that expires on {served_until}, "
        message += f"while {source} holds a newer one that expires on "
        message += f"{shown_time(expected.not_after)}: renewed but not reloaded"
        action = judge.action("reload", source=source)
    else:
        message = f"the endpoint serves a certificate other than the one in {source} "
        message += f"(served {leaf.fingerprint_sha256[:23]}..., expected "
        message += f"{expected.fingerprint_sha256[:23]}...)"
        action = judge.action("different", source=source)
    judge.add("reload", CRITICAL, message, action=action, expected_source=source)


def load_expected(spec: EndpointSpec) -> CertificateFacts:
    """The certificate the endpoint should serve, from a file or PEM text."""
    if spec.expected_file:
        return read_certificates(spec.expected_file)[0]
    text = spec.expected_pem or ""
    if "-----BEGIN" in text:
        return parse_bundle(text.encode())[0]
    # A Kubernetes secret's data holds the PEM encoded once more in base64.
    try:
        decoded = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise CertificateError("is neither PEM nor base64-encoded PEM") from None
    return parse_bundle(decoded)[0]
