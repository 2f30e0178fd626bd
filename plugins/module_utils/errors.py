# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The exceptions of trm.maintenance; the module runner turns them into failures."""

from __future__ import annotations

from typing import Any

# Option values are shown in messages; longer ones are cut to keep messages short.
_MAX_VALUE_CHARS = 120


class MaintenanceError(Exception):
    """Base of every error this collection raises on purpose."""


class OptionError(MaintenanceError):
    """An option has a value that cannot be right; the task fails."""

    def __init__(self, option: str, value: Any, problem: str) -> None:
        self.option = option
        self.value = value
        shown = repr(value)
        if len(shown) > _MAX_VALUE_CHARS:
            shown = f"{shown[:_MAX_VALUE_CHARS]}..."
        super().__init__(f"Option '{option}' {problem}; got {shown}")
