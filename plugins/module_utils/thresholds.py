# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One threshold model for every check: upper bounds, lower bounds and ranges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)

OK = "ok"
WARNING = "warning"
CRITICAL = "critical"
UNKNOWN = "unknown"

ABOVE = "above"
BELOW = "below"
RANGE_FORM = "{normal: [low, high], investigate: [low, high]}"

Bounds = Tuple[Optional[float], Optional[float]]


def format_value(value: Any, unit: str = "") -> str:
    """Render a number with its unit the way a person writes it."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    if isinstance(value, float):
        text = f"{value:.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    elif isinstance(value, int) and not isinstance(value, bool):
        text = f"{value:,}" if abs(value) >= 10000 else str(value)
    else:
        text = str(value)
    if not unit:
        return text
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}"


@dataclass(frozen=True)
class Threshold:
    """Warning and critical bounds on one side: above for maxima, below for minima."""

    warning: float | None = None
    critical: float | None = None
    direction: str = ABOVE

    def evaluate(self, value: float) -> str:
        """Return the status of ``value``; a value equal to a bound is inside it."""
        if self.critical is not None and self._beyond(value, self.critical):
            return CRITICAL
        if self.warning is not None and self._beyond(value, self.warning):
            return WARNING
        return OK

    def _beyond(self, value: float, bound: float) -> bool:
        return value > bound if self.direction == ABOVE else value < bound

    def describe(self, unit: str = "") -> str:
        """Say the bounds in words, for messages and reports."""
        parts = [
            f"{label} {self.direction} {format_value(bound, unit)}"
            for label, bound in ((WARNING, self.warning), (CRITICAL, self.critical))
            if bound is not None
        ]
        return ", ".join(parts) or "no thresholds"

    def breach(self, status: str, unit: str = "") -> str:
        """Say which bound a status of ``status`` crossed."""
        bound = self.critical if status == CRITICAL else self.warning
        return f"{self.direction} the {status} threshold of {format_value(bound, unit)}"

    def as_dict(self) -> dict:
        """Return the keys a finding carries for this threshold."""
        return {"warning": self.warning, "critical": self.critical}


@dataclass(frozen=True)
class Range:
    """A normal range and a wider investigate range, as business metrics use."""

    normal: Bounds = (None, None)
    investigate: Bounds = (None, None)

    def evaluate(self, value: float) -> str:
        """Inside normal is ok, inside investigate a warning, outside it critical."""
        if not _inside(value, self.investigate):
            return CRITICAL
        if not _inside(value, self.normal):
            return WARNING
        return OK

    def describe(self, unit: str = "") -> str:
        """Say the ranges in words, for messages and reports."""
        normal = _bounds_text(self.normal, unit)
        investigate = _bounds_text(self.investigate, unit)
        return f"normal {normal}, investigate outside {investigate}"

    def breach(self, status: str, unit: str = "") -> str:
        """Say which range a status of ``status`` left."""
        if status == CRITICAL:
            return (
                f"outside the investigate range {_bounds_text(self.investigate, unit)}"
            )
        return f"outside the normal range {_bounds_text(self.normal, unit)}"

    def as_dict(self) -> dict:
        """Return the keys a finding carries for this range."""
        return {
            "warning": None,
            "critical": None,
            "normal": list(self.normal),
            "investigate": list(self.investigate),
        }


def _inside(value: float, bounds: Bounds) -> bool:
    low, high = bounds
    return (low is None or value >= low) and (high is None or value <= high)


def _bounds_text(bounds: Bounds, unit: str) -> str:
    low, high = bounds
    if low is None and high is None:
        return "unbounded"
    if low is None:
        return f"up to {format_value(high, unit)}"
    if high is None:
        return f"from {format_value(low, unit)}"
    return f"{format_value(low, unit)}-{format_value(high, unit)}"


def parse_threshold(spec: Any, *, option: str, default: Any = None) -> Any:
    """Build a ``Threshold`` or ``Range`` from an option value, or raise OptionError.

    Accepted forms: ``{warning, critical[, direction]}`` for bounds (direction
    ``above`` or ``below``) and ``{normal: [low, high], investigate: [low, high]}``
    for ranges; either end of a range may be null.

    ``default`` is the option's own default, used when ``spec`` is None. It also
    completes a partial ``spec``: bounds that do not state their direction take
    the default's (``above`` without a default), so ``{warning: 90}`` stays a
    lower bound for an option whose default is one, and an option whose default
    is a range accepts only ranges.
    """
    base = _parse(default, option=f"{option} (default)", direction=ABOVE)
    if spec is None:
        return base
    if isinstance(base, Range) and _is_bounds(spec):
        raise OptionError(option, spec, f"takes ranges only: {RANGE_FORM}")
    direction = base.direction if isinstance(base, Threshold) else ABOVE
    return _parse(spec, option=option, direction=direction)


def _parse(spec: Any, *, option: str, direction: str) -> Any:
    if isinstance(spec, (Threshold, Range)) or spec is None:
        return spec
    if not isinstance(spec, dict):
        raise OptionError(option, spec, "must be a mapping of thresholds")
    if "normal" in spec or "investigate" in spec:
        return _parse_range(spec, option)
    return _parse_bounds(spec, option, direction)


def _is_bounds(spec: Any) -> bool:
    """Tell whether ``spec`` is given as bounds rather than as ranges."""
    if isinstance(spec, Threshold):
        return True
    return isinstance(spec, dict) and not {"normal", "investigate"} & set(spec)


def _parse_bounds(spec: dict, option: str, implied: str) -> Threshold:
    _reject_unknown_keys(spec, {"warning", "critical", "direction"}, option)
    direction = spec.get("direction", implied)
    if direction not in (ABOVE, BELOW):
        raise OptionError(
            f"{option}.direction", direction, "must be 'above' or 'below'"
        )
    warning = _number(spec.get("warning"), f"{option}.warning")
    critical = _number(spec.get("critical"), f"{option}.critical")
    if warning is not None and critical is not None:
        reversed_ = critical < warning if direction == ABOVE else critical > warning
        if reversed_:
            word = "at or above" if direction == ABOVE else "at or below"
            whence = "" if "direction" in spec else _implied_text(direction)
            raise OptionError(
                option,
                spec,
                f"critical must be {word} warning for '{direction}'{whence}",
            )
    return Threshold(warning=warning, critical=critical, direction=direction)


def _implied_text(direction: str) -> str:
    if direction == ABOVE:
        return ""
    return " (the direction of its default; set direction: above to change it)"


def _parse_range(spec: dict, option: str) -> Range:
    _reject_unknown_keys(spec, {"normal", "investigate"}, option)
    normal = _pair(spec.get("normal"), f"{option}.normal")
    investigate = _pair(spec.get("investigate"), f"{option}.investigate")
    if not _contains(investigate, normal):
        raise OptionError(
            option, spec, "the investigate range must contain the normal range"
        )
    return Range(normal=normal, investigate=investigate)


def _reject_unknown_keys(spec: dict, allowed: set, option: str) -> None:
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise OptionError(
            option, spec, f"has unknown keys {unknown}; allowed: {sorted(allowed)}"
        )


def _number(value: Any, option: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise OptionError(option, value, "must be a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise OptionError(option, value, "must be a number") from None


def _pair(value: Any, option: str) -> Bounds:
    if value is None:
        return (None, None)
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise OptionError(option, value, "must be a list of two bounds [low, high]")
    low, high = (_number(item, option) for item in value)
    if low is not None and high is not None and low > high:
        raise OptionError(option, value, "has its bounds reversed (low > high)")
    return (low, high)


def _contains(outer: Bounds, inner: Bounds) -> bool:
    low_ok = outer[0] is None or (inner[0] is not None and inner[0] >= outer[0])
    high_ok = outer[1] is None or (inner[1] is not None and inner[1] <= outer[1])
    return low_ok and high_ok
