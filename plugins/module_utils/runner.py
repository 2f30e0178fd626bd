# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs a check and turns its result, or our errors, into the module's exit."""

from __future__ import annotations

from typing import Any, Callable

from ansible_collections.trm.maintenance.plugins.module_utils.checks import (
    FAIL_ON_CHOICES,
    reaches,
)
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    MaintenanceError,
)

FAIL_ON_SPEC = {"fail_on": {"type": "str", "choices": FAIL_ON_CHOICES}}


def run_check(module: Any, check: Callable[[dict], dict]) -> None:
    """Call ``check(params)`` and exit; the one place our errors become failures.

    Findings never fail the task unless ``fail_on`` asks for it; bad input does,
    with a message that names the option.
    """
    try:
        result = check(module.params)
    except MaintenanceError as error:
        module.fail_json(msg=str(error), **_error_context(error))
    if reaches(result["status"], module.params.get("fail_on")):
        module.fail_json(msg=result["summary"], **result)
    module.exit_json(**result)


def _error_context(error: MaintenanceError) -> dict:
    option = getattr(error, "option", None)
    return {"option": option} if option else {}
