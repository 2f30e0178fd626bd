"""The certificate check's judgement: expiry statuses, chain reasons, ranking."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils.tls_certs import (
    facts,
)
from ansible_collections.trm.maintenance.plugins.module_utils.tls_endpoints import (
    chain_problem,
)
from ansible_collections.trm.maintenance.plugins.module_utils.tls_findings import (
    Judge,
    Outcome,
    failed_outcome,
    ranked,
    tls_metrics,
)
from ansible_collections.trm.maintenance.plugins.module_utils.tls_options import (
    FileSpec,
    Policy,
)
from lab import pki

NOW = pki.utc_now()


def _cert(days_left: float, *, valid_from_days: float = -30, self_signed=True):
    start = NOW + timedelta(days=valid_from_days)
    end = NOW + timedelta(days=days_left)
    if self_signed:
        return facts(pki.make_self_signed(not_before=start, not_after=end).cert)
    root = pki.make_root_ca()
    return facts(pki.make_leaf(root, not_before=start, not_after=end).cert)


@pytest.mark.parametrize(
    ("days_left", "status", "value", "validity"),
    [
        (90.5, "ok", 90, "valid"),
        (30.5, "ok", 30, "valid"),
        (30.0, "warning", 29, "valid"),  # a second short of 30 days when checked
        (29.9, "warning", 29, "valid"),
        (7.5, "warning", 7, "valid"),
        (6.9, "critical", 6, "valid"),
        (0.5, "critical", 0, "valid"),
        (-0.5, "critical", -1, "expired"),
        (-2.5, "critical", -3, "expired"),
    ],
)
def test_the_leaf_expiry_against_the_guide_thresholds(
    days_left, status, value, validity
):
    judge = Judge("api", Policy(), NOW + timedelta(seconds=1))
    judge.expiry(_cert(days_left))
    (finding,) = judge.findings
    assert (finding.status, finding.value, finding.details["validity"]) == (
        status,
        value,
        validity,
    )
    assert finding.name == "api"
    assert finding.unit == "days"
    assert (finding.action is None) is (status == "ok")


def test_the_messages_say_when():
    judge = Judge("api", Policy(), NOW)
    judge.expiry(_cert(20.5))
    judge.expiry(_cert(-1.5))
    judge.expiry(_cert(0.25))
    judge.expiry(_cert(60, valid_from_days=2))
    texts = [finding.message for finding in judge.findings]
    assert texts[0].startswith("api: the certificate expires in 20 days, on ")
    assert texts[0].endswith(", below the warning threshold of 30 days")
    assert texts[1].startswith("api: the certificate expired on ")
    assert texts[2].startswith("api: the certificate expires in less than a day")
    assert texts[3].startswith("api: the certificate is not valid before ")
    assert judge.findings[3].status == "critical"
    assert judge.findings[3].action.startswith("Serve the previous certificate")


def test_a_healthy_intermediate_adds_no_finding_and_an_expiring_one_does():
    judge = Judge("api", Policy(), NOW)
    judge.expiry(_cert(400), role="intermediate", position=1)
    assert judge.findings == []
    judge.expiry(_cert(3.5), role="intermediate", position=2)
    (finding,) = judge.findings
    assert finding.name == "api intermediate 2"
    assert finding.details["aspect"] == "intermediate"
    assert finding.status == "critical"
    assert "renewing the leaf alone does not fix this" in finding.action


@pytest.fixture(scope="module")
def leaves():
    return {"issued": _cert(90, self_signed=False), "self": _cert(90)}


@pytest.mark.parametrize(
    ("code", "leaf", "served", "key", "words"),
    [
        (18, "self", 1, "self_signed", "self-signed, not trusted by the system"),
        (19, "self", 1, "self_signed", "self-signed"),
        (20, "issued", 1, "missing_intermediate", "sends no intermediate"),
        (21, "issued", 1, "missing_intermediate", "sends no intermediate"),
        (20, "issued", 2, "untrusted", "does not lead to a root in the system"),
        (20, "issued", None, "untrusted", "does not lead to a root"),
        (26, "issued", 2, "chain", "does not verify: unsupported certificate purpose"),
    ],
)
def test_a_failed_verification_is_worded_by_its_reason(
    leaves, code, leaf, served, key, words
):
    served_chain = None if served is None else [leaves[leaf]] * served
    found_key, message = chain_problem(
        code,
        "unsupported certificate purpose" if code == 26 else "reason",
        leaf=leaves[leaf],
        served=served_chain,
        trust="system",
    )
    assert found_key == key
    assert words in message


def _outcome(name: str, days: float | None) -> Outcome:
    spec = FileSpec(name=name, path=f"/{name}")
    if days is None:
        return failed_outcome(spec, "file", "cannot read it")
    judge = Judge(name, Policy(), NOW)
    cert = _cert(days)
    judge.expiry(cert)
    first = cert.not_after
    return Outcome(spec, judge.findings, {}, first, cert.days_remaining(NOW))


def test_ranking_puts_the_soonest_first_and_the_unread_last():
    outcomes = [
        _outcome("b", 40.5),
        _outcome("unread-z", None),
        _outcome("a", 5.5),
        _outcome("unread-m", None),
        _outcome("c", -1.5),
    ]
    order = ranked(outcomes)
    assert [o.spec.name for o in order] == ["c", "a", "b", "unread-m", "unread-z"]
    assert [o.record["rank"] for o in order] == [1, 2, 3, None, None]
    assert [o.findings[0].details["rank"] for o in order] == [1, 2, 3, None, None]


def test_metrics_count_the_entries_and_the_fewest_days():
    outcomes = [_outcome("a", 5.5), _outcome("b", 40.5), _outcome("c", -1.5)]
    outcomes.append(_outcome("d", None))
    assert tls_metrics(outcomes) == {
        "targets_total": 4,
        "targets_ok": 1,
        "targets_unread": 1,
        "certificates_expired": 1,
        "certificates_expiring": 1,
        "min_days_remaining": -2,
    }


def test_an_unreachable_endpoint_is_unknown_and_a_non_tls_one_critical():
    spec = FileSpec(name="x", path="/x")
    assert failed_outcome(spec, "timeout", "slow").status == "unknown"
    assert failed_outcome(spec, "not_tls", "plain").status == "critical"
    assert failed_outcome(spec, "starttls", "refused").status == "critical"
