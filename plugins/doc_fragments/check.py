# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation shared by every check module: fail_on and the check result."""

from __future__ import annotations


class ModuleDocFragment:
    """The C(fail_on) option and the notes on the check result."""

    DOCUMENTATION = r"""
options:
  fail_on:
    description:
      - Fail the task when the overall RV(status) is at least this bad, in the order
        V(ok) < V(warning) < V(unknown) < V(critical).
      - When not set, findings never fail the task; the task fails only for options
        that cannot be right, and the findings are left to the report.
      - V(unknown) fails on checks that could not be determined (an unreachable
        server, for example) and on critical ones.
    type: str
    choices: [warning, unknown, critical]
notes:
  - The module only reads; it never changes anything, so it returns C(changed=false)
    and runs the same in check mode.
  - The result has the shape every trm.maintenance check returns. C(status) is the
    worst status of the findings in C(checks), C(summary) is one line for a person,
    and C(metrics) is a flat mapping of numbers for reports and trends.
  - A breached threshold or an unreachable server is a finding, not a task failure;
    set O(fail_on) to turn findings into a failure.
"""
