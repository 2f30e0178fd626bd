# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The certificate check: many endpoints and files in one call, ranked by expiry."""

from __future__ import annotations

import ssl
from datetime import datetime, timezone
from typing import Any

from ansible_collections.trm.maintenance.plugins.module_utils import tls
from ansible_collections.trm.maintenance.plugins.module_utils.checks import (
    CheckResult,
)
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.tls_endpoints import (
    check_endpoint,
)
from ansible_collections.trm.maintenance.plugins.module_utils.tls_findings import (
    Outcome,
    check_file,
    failed_outcome,
    ranked,
    tls_metrics,
)
from ansible_collections.trm.maintenance.plugins.module_utils.tls_options import (
    parse_options,
)

SUBJECT = "TLS certificates"


def run_tls_expiry(params: dict, *, now: datetime | None = None) -> dict:
    """Check every endpoint and file concurrently and return the module result."""
    options = parse_options(params)
    now = now or datetime.now(timezone.utc)
    contexts = client_contexts(options.targets)

    def inspect(spec: Any) -> Outcome:
        if spec.kind == "file":
            return check_file(spec, options.policy, now)
        return check_endpoint(spec, contexts, options.policy, now)

    outcomes = tls.run_with_deadlines(
        inspect,
        options.targets,
        max_workers=options.max_workers,
        limit=lambda spec: spec.timeout + tls.WATCHDOG_GRACE,
        fallback=_fallback,
    )
    return _result(ranked(outcomes))


def client_contexts(targets: list) -> dict:
    """One pair of TLS client contexts per CA bundle the endpoints use."""
    contexts = {}
    for spec in targets:
        if spec.kind != "endpoint" or spec.ca_path in contexts:
            continue
        try:
            contexts[spec.ca_path] = tls.build_contexts(spec.ca_path)
        except (ssl.SSLError, OSError) as error:
            reason = getattr(error, "reason", None) or error.strerror or str(error)
            raise OptionError(
                "ca_path", spec.ca_path, f"holds no CA certificate to trust ({reason})"
            ) from None
    return contexts


def _fallback(spec: Any, error: Exception | None) -> Outcome:
    if error is None:
        message = f"no answer within the timeout of {spec.timeout:g} s"
        return failed_outcome(spec, "timeout", message, elapsed=spec.timeout)
    message = f"the check failed unexpectedly: {type(error).__name__}: {error}"
    return failed_outcome(spec, "internal", message)


def _result(outcomes: list) -> dict:
    findings = [finding for outcome in outcomes for finding in outcome.findings]
    result = CheckResult(findings=findings, metrics=tls_metrics(outcomes))
    output = result.to_dict(SUBJECT)
    output["certificates"] = [outcome.record for outcome in outcomes]
    warning = chain_warning(output["certificates"])
    if warning:
        output["warnings"] = [warning]
    return output


def chain_warning(records: list) -> str | None:
    """Name the endpoints whose served chain could not be read, if any."""
    names = [r["name"] for r in records if r.get("chain_available") is False]
    if not names:
        return None
    listed = ", ".join(names)
    return f"The chain served by {listed} could not be read: " + (
        tls.chain_unavailable_note()
    )
