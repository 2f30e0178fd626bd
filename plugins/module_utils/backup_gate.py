# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The restore test's window gate, on the collection's shared window model.

The gate lets a restore run for one of three reasons, and says which: a window
of ``maintenance_windows`` is open, ``allow_outside_window`` overrides the
windows, or a window check made before (``window_decision``, such as the
``maintenance_guard`` role's) allowed it. Without windows or a decision the
restore runs whenever it is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.windows import (
    UTC_NAME,
    Verdict,
    evaluate,
    inside_text,
    load_zone,
    next_text,
    parse_windows,
)

WINDOWS = "maintenance_windows"
OVERRIDE = "allow_outside_window"
DECISION = "window_decision"


@dataclass(frozen=True)
class Decision:
    """A window check that ran before the module: who decided, and what."""

    by: str
    open: bool
    message: str


@dataclass(frozen=True)
class Passage:
    """The gate's answer: whether the restore may run, who decided, and why."""

    allowed: bool
    decided_by: str | None
    reason: str

    def to_dict(self) -> dict:
        """The answer as the result shows it."""
        return {
            "allowed": self.allowed,
            "decided_by": self.decided_by,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Gate:
    """The windows, the override and a decision made before, checked."""

    windows: list
    override: bool = False
    decision: Decision | None = None

    @classmethod
    def from_params(cls, params: dict) -> Gate:
        """Read the window options; raise OptionError naming a bad one."""
        specs = params.get(WINDOWS) or []
        zone = params.get("maintenance_timezone") or UTC_NAME
        load_zone(zone, "maintenance_timezone")
        windows = (
            parse_windows(specs, default_timezone=zone, option=WINDOWS) if specs else []
        )
        override = bool(params.get(OVERRIDE))
        decision = _decision(params.get(DECISION))
        if decision is not None and (windows or override):
            raise OptionError(
                DECISION,
                params.get(DECISION),
                f"cannot be combined with {WINDOWS} or {OVERRIDE}: the window "
                "check that ran before has decided already",
            )
        return cls(windows, override, decision)

    def judge(self, now: datetime) -> Passage:
        """Tell whether the restore may run at ``now``, and why."""
        if self.decision is not None:
            return _decided(self.decision)
        if not self.windows:
            if self.override:
                return Passage(True, OVERRIDE, f"{OVERRIDE} is set; no window given")
            return Passage(
                True, None, f"No {WINDOWS} are given, so the restore runs when asked"
            )
        verdict = evaluate(self.windows, now)
        if verdict.inside:
            return Passage(True, WINDOWS, inside_text(verdict))
        outside = self._outside(verdict)
        if self.override:
            return Passage(True, OVERRIDE, f"{outside}; {OVERRIDE} overrides them")
        return Passage(False, WINDOWS, outside)

    def _outside(self, verdict: Verdict) -> str:
        names = ", ".join(window.name for window in self.windows)
        return f"Outside the maintenance windows ({names}); {next_text(verdict)}"


def _decision(value: Any) -> Decision | None:
    if value is None or value == {}:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("open"), bool):
        raise OptionError(
            DECISION, value, "must be a mapping with open (true or false) and reason"
        )
    by = str(value.get("by") or "").strip() or "an earlier window check"
    reason = str(value.get("reason") or "").strip()
    return Decision(by, value["open"], reason)


def _decided(decision: Decision) -> Passage:
    verb = "allowed" if decision.open else "refused"
    reason = f"{decision.by} {verb} the restore"
    if decision.message:
        reason = f"{reason}: {decision.message}"
    return Passage(decision.open, decision.by, reason)
