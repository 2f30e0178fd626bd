# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The check result that every check module returns, and its findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    CRITICAL,
    OK,
    UNKNOWN,
    WARNING,
    format_value,
)

# Worst last. An unknown ranks above a warning: a check that could not run may
# hide anything, while a warning is a known, bounded problem.
SEVERITY = (OK, WARNING, UNKNOWN, CRITICAL)
FAIL_ON_CHOICES = [WARNING, UNKNOWN, CRITICAL]


def rank(status: str) -> int:
    """Return the position of ``status`` in the severity order."""
    return SEVERITY.index(status)


def worst(statuses: Iterable[str], *, empty: str = UNKNOWN) -> str:
    """Return the worst of ``statuses``, or ``empty`` when there are none."""
    found = list(statuses)
    return max(found, key=rank) if found else empty


def reaches(status: str, fail_on: str | None) -> bool:
    """Tell whether ``status`` is at least as bad as ``fail_on`` (None: never)."""
    return fail_on is not None and rank(status) >= rank(fail_on)


@dataclass
class Finding:
    """One thing that was checked: its status, a message, and the figures behind it."""

    name: str
    status: str
    message: str
    value: Any = None
    unit: str | None = None
    threshold: Any = None
    action: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Return the finding as it appears in a module result."""
        result = {
            "name": self.name,
            "status": self.status,
            "message": self.message,
            "value": self.value,
            "unit": self.unit,
            "warning": None,
            "critical": None,
            "threshold": None,
            "action": self.action,
        }
        if self.threshold is not None:
            result.update(self.threshold.as_dict())
            result["threshold"] = self.threshold.describe(self.unit or "")
        result.update(self.details)
        return result


def measured(
    name: str,
    value: Any,
    threshold: Any,
    *,
    label: str | None = None,
    unit: str = "",
    action: str | None = None,
    details: dict | None = None,
) -> Finding:
    """Judge ``value`` against ``threshold`` and say so in one sentence."""
    label = label or name
    shown = format_value(value, unit)
    status = threshold.evaluate(value) if threshold is not None else OK
    if status == OK:
        limits = f" ({threshold.describe(unit)})" if threshold is not None else ""
        message = f"{label} is {shown}{limits}"
    else:
        message = f"{label} is {shown}, {threshold.breach(status, unit)}"
    return Finding(
        name=name,
        status=status,
        message=message,
        value=value,
        unit=unit or None,
        threshold=threshold,
        action=action if status != OK else None,
        details=details or {},
    )


def unknown(
    name: str, reason: str, *, action: str | None = None, **details: Any
) -> Finding:
    """A finding for something that could not be determined, with the reason."""
    return Finding(
        name=name, status=UNKNOWN, message=reason, action=action, details=details
    )


@dataclass
class CheckResult:
    """The findings and metrics of one module call."""

    findings: list[Finding] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    def add(self, finding: Finding) -> Finding:
        """Append a finding and return it."""
        self.findings.append(finding)
        return finding

    @property
    def status(self) -> str:
        """The worst status of the findings; unknown when nothing was checked."""
        return worst(finding.status for finding in self.findings)

    def summary(self, subject: str) -> str:
        """One line for a pager: the verdict, counts, and the worst messages."""
        counts = dict.fromkeys(SEVERITY, 0)
        for finding in self.findings:
            counts[finding.status] += 1
        tally = ", ".join(f"{counts[s]} {s}" for s in reversed(SEVERITY) if counts[s])
        if not self.findings:
            return f"{subject}: nothing was checked"
        worst_findings = [f.message for f in self.findings if f.status == self.status]
        headline = "" if self.status == OK else f": {'; '.join(worst_findings[:3])}"
        more = len(worst_findings) - 3
        tail = f" (and {more} more)" if more > 0 and self.status != OK else ""
        return f"{subject} {self.status.upper()} ({tally}){headline}{tail}"

    def to_dict(self, subject: str) -> dict:
        """Return the module result: changed, status, summary, checks, metrics."""
        return {
            "changed": False,
            "status": self.status,
            "summary": self.summary(subject),
            "checks": [finding.to_dict() for finding in self.findings],
            "metrics": dict(self.metrics),
        }
