# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The findings of the certificate check, one entry (endpoint or file) at a time.

Each entry yields a finding for its certificate's expiry, then one finding for
each other problem found: an expiring intermediate, a host name the certificate
is not for, a chain that does not verify, a weak key or signature, an old
protocol version, a certificate that differs from the one deployed, a bundle
out of order. ``ranked`` orders the entries by their first expiry.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ansible_collections.trm.maintenance.plugins.module_utils import tls
from ansible_collections.trm.maintenance.plugins.module_utils.checks import (
    Finding,
    worst,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    CRITICAL,
    OK,
    UNKNOWN,
    WARNING,
    Threshold,
)
from ansible_collections.trm.maintenance.plugins.module_utils.tls_certs import (
    SECONDS_PER_DAY,
    CertificateError,
    CertificateFacts,
    hostname_matches,
    iso,
    issued_by,
    parse_bundle,
    shown_time,
    weak_key,
    weak_signature,
)
from ansible_collections.trm.maintenance.plugins.module_utils.tls_options import (
    FileSpec,
    Policy,
)

UNIT = "days"
MAX_FILE_BYTES = 1024 * 1024
EXPIRY_ASPECTS = ("expiry", "intermediate", "root")
VALID, EXPIRED, NOT_YET_VALID = "valid", "expired", "not_yet_valid"

UNREAD_KINDS = (
    "timeout",
    "connection_refused",
    "dns",
    "connection",
    "file",
    "certificate",
    "internal",
)

ACTIONS = {
    "renew": "Renew the certificate of {name} and reload the service that serves it",
    "not_yet_valid": (
        "Serve the previous certificate of {name} until this one becomes valid, "
        "and check the clock of the CA that issued it"
    ),
    "intermediate": (
        "Serve the CA's current intermediate certificate in the chain of {name} "
        "(re-issue the leaf under it if the CA changed keys); renewing the leaf "
        "alone does not fix this"
    ),
    "root": (
        "Move {name} to a chain that ends in a root valid beyond the leaf; "
        "renewing the leaf alone does not fix this"
    ),
    "hostname": (
        "Issue a certificate for {host} to {name}, or correct the server_name "
        "it is checked with"
    ),
    "self_signed": (
        "Replace the self-signed certificate of {name} with one from a trusted "
        "CA, or set ca_path to a bundle that trusts it"
    ),
    "missing_intermediate": (
        "Configure {name} to send its intermediate certificates after its own "
        "(the full chain file)"
    ),
    "untrusted": (
        "Set ca_path to the CA bundle that issued the certificate of {name}, or "
        "replace it with one from a trusted CA"
    ),
    "chain": "Fix the certificate chain of {name}",
    "key": (
        "Re-issue the certificate of {name} with an RSA key of at least 2048 "
        "bits or an EC key of at least 256 bits"
    ),
    "signature": "Re-issue the affected certificates of {name} signed with SHA-256",
    "protocol": "Enable TLS 1.2 and 1.3 on {name} and turn older versions off",
    "reload": (
        "Reload or restart the service behind {name} so that it serves the "
        "certificate in {source}"
    ),
    "different": (
        "Find out why {name} does not serve the certificate in {source} (another "
        "file or secret, or a proxy in front of it)"
    ),
    "expected": "Check {source}, the certificate {name} is compared with",
    "bundle": "Rebuild {name} as the certificate followed by its issuers, in order",
    "file": "Check that {name} exists and holds the deployed certificate",
    "timeout": (
        "Check that {name} is up and reachable from the controller, and that it "
        "speaks TLS{starttls} on that port"
    ),
    "connection_refused": "Check that the service behind {name} runs and listens",
    "dns": "Check the host name of {name} in DNS or in the endpoint list",
    "not_tls": (
        "Check that {name} is the TLS port of the service; set starttls when it "
        "upgrades plain connections"
    ),
    "starttls": "Check that the service behind {name} offers STARTTLS",
    "handshake": "Check the TLS configuration of {name}",
    "connection": "Check that {name} is reachable from the controller",
    "internal": "Report this error with the module's output",
}


WEAKNESSES = (
    ("key", weak_key, "has a weak key,"),
    ("signature", weak_signature, "is"),
)


@dataclass
class Outcome:
    """What one endpoint or file yielded: its findings and its record."""

    spec: Any
    findings: list
    record: dict
    first_expiry: datetime | None = None
    days_to_first_expiry: int | None = None

    @property
    def status(self) -> str:
        """The worst status of the outcome's findings."""
        return worst(finding.status for finding in self.findings)


@dataclass
class Judge:
    """Turns certificates into findings for one endpoint or file."""

    name: str
    policy: Policy
    now: datetime
    findings: list = field(default_factory=list)

    def add(self, aspect: str, status: str, message: str, **details: Any) -> None:
        """Add a finding about ``aspect`` of this entry."""
        action = details.pop("action", None)
        value = details.pop("value", None)
        threshold = details.pop("threshold", None)
        suffix = details.pop("suffix", "")
        name = self.name if aspect == "expiry" else f"{self.name} {aspect}{suffix}"
        self.findings.append(
            Finding(
                name=name,
                status=status,
                message=f"{self.name}: {message}",
                value=value,
                unit=UNIT if value is not None else None,
                threshold=threshold,
                action=action if status != OK else None,
                details={"target": self.name, "aspect": aspect, **details},
            )
        )

    def action(self, key: str, **words: Any) -> str:
        """Word the action ``key`` for this entry."""
        return ACTIONS[key].format(name=self.name, **words)

    def expiry(
        self, cert: CertificateFacts, *, role: str = "leaf", position: int = 0
    ) -> None:
        """Judge one certificate's dates; non-leaf certificates only when not ok."""
        threshold = self.policy.threshold(cert)
        days = cert.days_remaining(self.now)
        what = "the certificate" if role == "leaf" else f"the {role} {cert.label!r}"
        validity, status, message = self._dates(cert, threshold, what)
        if role != "leaf" and status == OK:
            return
        if role != "leaf":
            action = role
        else:
            action = "not_yet_valid" if validity == NOT_YET_VALID else "renew"
        self.add(
            "expiry" if role == "leaf" else role,
            status,
            message,
            value=days,
            threshold=threshold,
            action=self.action(action),
            suffix=f" {position}" if position > 1 else "",
            validity=validity,
            days_remaining=days,
            not_after=iso(cert.not_after),
            subject=cert.subject,
        )

    def _dates(self, cert: CertificateFacts, threshold: Threshold, what: str):
        """Return ``(validity, status, message)`` for a certificate's dates."""
        if self.now < cert.not_before:
            when = shown_time(cert.not_before)
            return NOT_YET_VALID, CRITICAL, f"{what} is not valid before {when}"
        exact = cert.seconds_remaining(self.now) / SECONDS_PER_DAY
        if exact < 0:
            when = shown_time(cert.not_after)
            return EXPIRED, CRITICAL, f"{what} expired on {when}"
        status = threshold.evaluate(exact)
        left = f"{what} expires in {_days_text(cert.days_remaining(self.now))}, on "
        left += shown_time(cert.not_after)
        if status == OK:
            return VALID, OK, f"{left} ({threshold.describe(UNIT)})"
        return VALID, status, f"{left}, {threshold.breach(status, UNIT)}"

    def hostname(self, cert: CertificateFacts, host: str | None) -> bool | None:
        """Check that the certificate is for ``host``; None when there is no host."""
        if not host:
            return None
        if hostname_matches(cert, host):
            return True
        names = ", ".join(cert.subject_alt_names) or "no names (no subject alt names)"
        self.add(
            "hostname",
            CRITICAL,
            f"the certificate is not valid for {host}; it is for {names}",
            action=self.action("hostname", host=host),
            hostname=host,
        )
        return False

    def weaknesses(self, certs: list) -> None:
        """Report weak keys and broken signature hashes among ``certs``."""
        for aspect, test, verb in WEAKNESSES:
            found = [f"{who} {verb} {test(cert)}" for who, cert in certs if test(cert)]
            if found:
                self.add(aspect, CRITICAL, "; ".join(found), action=self.action(aspect))

    def protocol(self, version: str) -> None:
        """Report a protocol version older than TLS 1.2."""
        if version in tls.OLD_PROTOCOLS:
            self.add(
                "protocol",
                CRITICAL,
                f"the server negotiated {version}; TLS 1.2 is the oldest to allow",
                action=self.action("protocol"),
                protocol=version,
            )


def _days_text(days: int) -> str:
    if days < 1:
        return "less than a day"
    return "1 day" if days == 1 else f"{days} days"


def judged(leaf: CertificateFacts, path: list) -> list:
    """``(who, cert)`` whose key and signature count: not a self-signed anchor."""
    return [("the certificate", leaf)] + [
        (f"the intermediate {cert.label!r}", cert)
        for cert in path
        if not cert.self_issued
    ]


# Shared by endpoints and files


def judge_path(judge: Judge, path: list) -> None:
    """Judge the dates of the certificates above the leaf, in order."""
    for position, cert in enumerate(path, start=1):
        role = "root" if cert.self_issued else "intermediate"
        judge.expiry(cert, role=role, position=position)


def base_record(spec: Any) -> dict:
    """The keys every record has, from the endpoint's or file's options."""
    target = getattr(spec, "target", None)
    return {
        "name": spec.name,
        "kind": spec.kind,
        "host": target.host if target else None,
        "port": target.port if target else None,
        "server_name": target.server_name if target else spec.hostname,
        "starttls": target.starttls if target else None,
        "path": getattr(spec, "path", None),
        "hostname": spec.hostname,
    }


def read_certificates(path: str) -> list:
    """Read the certificates of a PEM bundle or a DER file, in order."""
    with open(os.path.expanduser(path), "rb") as stream:
        data = stream.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise CertificateError(f"is larger than {MAX_FILE_BYTES} bytes")
    return parse_bundle(data)


# Files


def check_file(spec: FileSpec, policy: Policy, now: datetime) -> Outcome:
    """Judge the certificate (and the rest of the bundle) in one file."""
    if spec.missing:
        return failed_outcome(spec, "file", f"{spec.path}: {spec.missing}")
    try:
        certs = read_certificates(spec.path)
    except OSError as error:
        reason = error.strerror or str(error)
        return failed_outcome(spec, "file", f"cannot read {spec.path}: {reason}")
    except CertificateError as error:
        return failed_outcome(spec, "file", f"{spec.path} {error}")
    leaf, bundle = certs[0], certs[1:]
    judge = Judge(spec.name, policy, now)
    judge.expiry(leaf)
    judge_path(judge, bundle)
    matches = judge.hostname(leaf, spec.hostname)
    judge.weaknesses(judged(leaf, bundle))
    _judge_order(judge, certs)
    record = {
        **base_record(spec),
        "certificate": leaf.to_dict(now),
        "chain": [cert.to_dict(now) for cert in bundle],
        "chain_available": True,
        "hostname_matches": matches,
    }
    return make_outcome(spec, judge, record, certs, now)


def _judge_order(judge: Judge, certs: list) -> None:
    for position in range(1, len(certs)):
        child, parent = certs[position - 1], certs[position]
        if issued_by(child, parent) is False:
            message = f"certificate {position + 1} ({parent.label!r}) did not issue "
            message += f"certificate {position} ({child.label!r}): the bundle is "
            message += "out of order or mixes chains"
            judge.add("bundle", CRITICAL, message, action=judge.action("bundle"))
            return


# Outcomes and ranking


def make_outcome(
    spec: Any, judge: Judge, record: dict, certs: list, now: datetime
) -> Outcome:
    """Close an entry: its findings, and its record with the dates that rank it."""
    first = min(certs, key=lambda cert: cert.not_after)
    days = first.days_remaining(now)
    outcome = Outcome(spec, judge.findings, record, first.not_after, days)
    record.update(
        status=outcome.status,
        error=None,
        message=judge.findings[0].message,
        days_remaining=certs[0].days_remaining(now),
        not_after=iso(certs[0].not_after),
        first_expiry=iso(first.not_after),
        days_to_first_expiry=days,
    )
    return outcome


def failed_outcome(spec, kind: str, message: str, *, elapsed=None) -> Outcome:
    """An entry whose certificate could not be read at all.

    Unreachable endpoints and unreadable files are unknown: nothing says what
    their certificate is. An endpoint that answers but gives no certificate
    (plain text, a failed handshake or STARTTLS) is critical: clients fail too.
    """
    status = UNKNOWN if kind in UNREAD_KINDS else CRITICAL
    starttls = getattr(getattr(spec, "target", None), "starttls", None)
    words = {"starttls": f" (after {starttls.upper()} STARTTLS)" if starttls else ""}
    action = ACTIONS.get(kind, ACTIONS["connection"]).format(name=spec.name, **words)
    finding = Finding(
        name=spec.name,
        status=status,
        message=f"{spec.name}: {message}",
        action=action,
        details={"target": spec.name, "aspect": "expiry", "error": kind},
    )
    record = {
        **base_record(spec),
        "status": status,
        "error": kind,
        "message": finding.message,
        "seconds": elapsed,
    }
    return Outcome(spec, [finding], record)


def ranked(outcomes: list) -> list:
    """Sort outcomes by their first expiry, soonest first; unread ones last."""
    order = sorted(
        outcomes,
        key=lambda o: (o.first_expiry is None, o.first_expiry or 0, o.spec.name),
    )
    for position, outcome in enumerate(order, start=1):
        rank = position if outcome.first_expiry is not None else None
        outcome.record["rank"] = rank
        for finding in outcome.findings:
            finding.details["rank"] = rank
    return order


def _validity(finding: Finding) -> str | None:
    return finding.details.get("validity")


def tls_metrics(outcomes: list) -> dict:
    """Counts for the report and for trends, and the fewest days left."""
    expiry = [
        finding
        for outcome in outcomes
        for finding in outcome.findings
        if finding.details.get("aspect") in EXPIRY_ASPECTS
    ]
    metrics = {
        "targets_total": len(outcomes),
        "targets_ok": sum(outcome.status == OK for outcome in outcomes),
        "targets_unread": sum(outcome.first_expiry is None for outcome in outcomes),
        "certificates_expired": sum(_validity(f) == EXPIRED for f in expiry),
        "certificates_expiring": sum(
            _validity(f) == VALID and f.status in (WARNING, CRITICAL) for f in expiry
        ),
    }
    days = [o.days_to_first_expiry for o in outcomes if o.first_expiry is not None]
    if days:
        metrics["min_days_remaining"] = min(days)
    return metrics
