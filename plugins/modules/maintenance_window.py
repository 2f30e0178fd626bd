#!/usr/bin/python
# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: maintenance_window
short_description: Whether now is inside a maintenance window, and when the next opens
version_added: 1.0.0
author: trm.maintenance contributors (@trm-platform)
description:
  - Judges the current time (or O(now)) against maintenance windows given as data,
    each in its own time zone, and says whether a window is open, which one, how
    long it stays open, and when the next one opens.
  - The default windows are the maintenance guide's. V(weekly) is every Sunday
    02:00-04:00; V(monthly) is the first Sunday of the month, 02:00 for four
    hours; V(quarterly) is the first Sunday of January, April, July and October,
    02:00 for eight hours.
  - Inside a window that counts (see O(require)) the status is V(ok). Outside, it
    is V(warning) with the next opening, or V(ok) with RV(overridden) when the
    operator overrides the window with O(override) and a reason.
  - Roles that change things run it first through the
    P(trm.maintenance.maintenance_guard#role) role, which refuses their work
    outside the window.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  windows:
    description:
      - The maintenance windows, each a mapping or a shorthand string.
      - The shorthand V("Sun 02:00-04:00") is a weekly window, every Sunday from
        02:00 to 04:00; with an ordinal first, such as V("first Sun 02:00-06:00")
        or V("last Sat 23:00-01:00"), it opens on that weekday of every month
        (C(first) to C(fifth), C(1st) to C(5th), or C(last)). The end may be past
        midnight. A shorthand window lies in O(timezone) and is named by its own
        text (with single spaces), which is the name to give in O(require).
      - C(schedule) is V(weekly), V(monthly) or V(quarterly) and is required.
      - C(name) names the window in results and in O(require); it defaults to the
        schedule, and names must be unique.
      - C(weekday) is the day the window opens, a day name such as V(sunday) or its
        first three letters. Default V(sunday).
      - C(start) is the local time it opens, as V("HH:MM") in quotes. Default
        V("02:00").
      - C(duration) is how long it stays open, as V(2h), V(90m), V(1h30m), V(1d) or
        a number of minutes, at most seven days. Defaults V(2h) weekly, V(4h)
        monthly and V(8h) quarterly.
      - C(week) (monthly and quarterly) picks the weekday in the month, V(1) to
        V(5) for the first to the fifth, or V(last). Default V(1). A month without
        a fifth such weekday has no window.
      - C(months) (quarterly) lists the months, as numbers or English names.
        Default V([1, 4, 7, 10]).
      - C(timezone) is the window's IANA time zone, such as V(Europe/London).
        Default O(timezone).
      - A window may cross midnight. The duration is elapsed time, so on the day
        the clocks change the window still lasts its full duration and its end on
        the wall clock moves by the change. A start inside the hour skipped in
        spring moves forward by the change; a start inside the hour repeated in
        autumn is the first of the two.
    type: list
    elements: raw
    default:
      - name: weekly
        schedule: weekly
        weekday: sunday
        start: "02:00"
        duration: 2h
      - name: monthly
        schedule: monthly
        weekday: sunday
        week: 1
        start: "02:00"
        duration: 4h
      - name: quarterly
        schedule: quarterly
        months: [1, 4, 7, 10]
        weekday: sunday
        week: 1
        start: "02:00"
        duration: 8h
  timezone:
    description:
      - The IANA time zone of windows that do not set their own C(timezone), and of
        an O(now) without an offset.
    type: str
    default: UTC
  now:
    description:
      - The time to judge instead of the clock, in ISO 8601, for example
        V(2024-06-02T02:30:00+01:00) or V(2024-06-02T01:30:00Z). Without an offset
        it is read in O(timezone).
      - For rehearsals and tests. When not set, the module reads the controller's
        clock (the host it runs on).
    type: str
  require:
    description:
      - The names of the windows that count, for work that needs a longer window
        than the weekly one, for example V([monthly, quarterly]).
      - When empty, any window counts.
    type: list
    elements: str
    default: []
  override:
    description:
      - Override the windows explicitly. Outside a window the status becomes V(ok)
        with RV(overridden) set, and the reason is recorded.
      - Inside a window the override has no effect.
    type: bool
    default: false
  override_reason:
    description:
      - Why the window is overridden, and on whose authority. Required when
        O(override) is V(true).
    type: str
  override_by:
    description:
      - Who overrides the window, recorded with the reason. The
        P(trm.maintenance.maintenance_guard#role) role sets the AWX user or the
        local user.
    type: str
  fail_outside:
    description:
      - Fail the task outside the windows that count, unless O(override) is V(true).
        The message says which windows count, when the next one opens, and how to
        override.
      - When V(false), being outside is a V(warning) finding and the task succeeds.
    type: bool
    default: false
notes:
  - The module only reads the clock, so it runs the same in check mode and returns
    C(changed=false).
  - The result has the shape of every trm.maintenance check (RV(status),
    RV(summary), RV(checks), RV(metrics)); O(fail_outside) takes the place of the
    C(fail_on) option of the other checks.
  - UTC needs nothing. Other time zones need Python's zoneinfo module (Python 3.9
    and later; on Python 3.8 install C(backports.zoneinfo)) and the time zone
    database of the operating system or of the C(tzdata) Python package.
  - When several windows are open at once (the first Sunday of a quarter opens all
    three default windows), RV(window) is the one that stays open longest.
seealso:
  - module: trm.maintenance.maintenance_report
"""

EXAMPLES = r"""
- name: Check the guide's maintenance windows in London time
  trm.maintenance.maintenance_window:
    timezone: Europe/London
  delegate_to: localhost
  run_once: true
  register: maintenance__window

- name: Refuse to go on outside the monthly or quarterly window
  trm.maintenance.maintenance_window:
    windows:
      - name: weekly
        schedule: weekly
        weekday: sunday
        start: "02:00"
        duration: 2h
        timezone: Europe/London
      - name: monthly
        schedule: monthly
        week: 1
        weekday: sunday
        start: "02:00"
        duration: 4h
        timezone: Europe/London
      - name: year-end
        schedule: quarterly
        months: [december]
        week: last
        weekday: saturday
        start: "22:00"
        duration: 12h
        timezone: Europe/London
    require: [monthly, year-end]
    fail_outside: true
  delegate_to: localhost
  run_once: true

- name: Check the windows written as the operators' shorthand
  trm.maintenance.maintenance_window:
    windows:
      - "Sun 02:00-04:00"
      - "first Sun 02:00-06:00"
    timezone: Europe/London
    require: ["first Sun 02:00-06:00"]
  delegate_to: localhost
  run_once: true

- name: Run an emergency change outside the window, on record
  trm.maintenance.maintenance_window:
    override: true
    override_reason: "INC-2041: emergency security patch, approved by the on-call lead"
    override_by: "{{ awx_user_name | default(lookup('ansible.builtin.env', 'USER')) }}"
  delegate_to: localhost
  run_once: true

- name: Rehearse the quarterly window on a Wednesday
  trm.maintenance.maintenance_window:
    now: "2024-07-07T03:00:00+01:00"
    require: [quarterly]
    timezone: Europe/London
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
status:
  description:
    - V(ok) inside a window that counts, or outside it under an override;
      V(warning) outside it.
  returned: always
  type: str
  sample: warning
summary:
  description: One line for a person.
  returned: always
  type: str
  sample: >-
    Maintenance window WARNING: Outside the maintenance windows (weekly, monthly,
    quarterly); the next, weekly, opens Sun 2024-06-09 02:00 BST
    (2024-06-09T01:00:00Z), in 3 d 13 h
checks:
  description: One finding, named C(maintenance_window).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Always V(maintenance_window).
      type: str
      sample: maintenance_window
    status:
      description: The status of the result.
      type: str
      sample: ok
    message:
      description: Which window is open and for how long, or when the next one opens.
      type: str
      sample: Inside the weekly window (Sun 2024-06-02 02:00-04:00 BST), 1 h 30 min left
    value:
      description: Always null.
      type: raw
      sample: null
    unit:
      description: Always null.
      type: str
      sample: null
    warning:
      description: Always null.
      type: raw
      sample: null
    critical:
      description: Always null.
      type: raw
      sample: null
    threshold:
      description: Always null.
      type: str
      sample: null
    action:
      description: What to do outside a window; null otherwise.
      type: str
      sample: Wait for the next window, or override it with a reason (who and why)
    window:
      description: The name of the open window; null outside.
      type: str
      sample: weekly
metrics:
  description:
    - C(inside) and C(overridden) as 1 or 0; C(seconds_until_next) when a window
      opens later; C(seconds_remaining) inside a window.
  returned: always
  type: dict
  sample:
    inside: 1
    overridden: 0
    seconds_until_next: 603000
    seconds_remaining: 5400
inside:
  description: Whether a window that counts is open.
  returned: always
  type: bool
  sample: true
window:
  description: The open window that counts; null outside.
  returned: always
  type: dict
  contains:
    name:
      description: The window's name.
      type: str
      sample: weekly
    schedule:
      description: V(weekly), V(monthly) or V(quarterly).
      type: str
      sample: weekly
    timezone:
      description: The window's time zone.
      type: str
      sample: Europe/London
    description:
      description: When the window opens, in words.
      type: str
      sample: every Sunday at 02:00 for 2 h (Europe/London)
    start:
      description: When this opening started, in ISO 8601 in the window's time zone.
      type: str
      sample: "2024-06-02T02:00:00+01:00"
    end:
      description: When it ends, in ISO 8601 in the window's time zone.
      type: str
      sample: "2024-06-02T04:00:00+01:00"
    start_utc:
      description: The start in UTC.
      type: str
      sample: "2024-06-02T01:00:00Z"
    end_utc:
      description: The end in UTC.
      type: str
      sample: "2024-06-02T03:00:00Z"
    duration_seconds:
      description: The window's length.
      type: int
      sample: 7200
next_window:
  description:
    - The next window that counts to open after the judged time, in the shape of
      RV(window).
    - Null when none opens in the next 29 years.
  returned: always
  type: dict
  sample:
    name: weekly
    schedule: weekly
    timezone: Europe/London
    description: every Sunday at 02:00 for 2 h (Europe/London)
    start: "2024-06-09T02:00:00+01:00"
    end: "2024-06-09T04:00:00+01:00"
    start_utc: "2024-06-09T01:00:00Z"
    end_utc: "2024-06-09T03:00:00Z"
    duration_seconds: 7200
seconds_until_next:
  description: Seconds until RV(next_window) opens; null when none does.
  returned: always
  type: int
  sample: 603000
seconds_remaining:
  description: Seconds until the open window closes; null outside.
  returned: always
  type: int
  sample: 5400
overridden:
  description: Whether the status is V(ok) only because of O(override).
  returned: always
  type: bool
  sample: false
override_reason:
  description: The value of O(override_reason); null when not given.
  returned: always
  type: str
  sample: "INC-2041: emergency security patch, approved by the on-call lead"
override_by:
  description: The value of O(override_by); null when not given.
  returned: always
  type: str
  sample: alice
now:
  description: The time judged, in UTC.
  returned: always
  type: str
  sample: "2024-06-02T02:30:00Z"
windows:
  description: The windows that count, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The window's name.
      type: str
      sample: weekly
    schedule:
      description: V(weekly), V(monthly) or V(quarterly).
      type: str
      sample: weekly
    timezone:
      description: The window's time zone.
      type: str
      sample: Europe/London
    description:
      description: When the window opens, in words.
      type: str
      sample: every Sunday at 02:00 for 2 h (Europe/London)
"""

# Ansible's layout puts the documentation before the imports.
import copy

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trm.maintenance.plugins.module_utils.runner import run_check
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import OK
from ansible_collections.trm.maintenance.plugins.module_utils.windows import (
    DEFAULT_WINDOWS,
    UTC_NAME,
    check_window,
    refusal,
)

ARGUMENT_SPEC = {
    "windows": {
        "type": "list",
        "elements": "raw",
        "default": copy.deepcopy(DEFAULT_WINDOWS),
    },
    "timezone": {"type": "str", "default": UTC_NAME},
    "now": {"type": "str"},
    "require": {"type": "list", "elements": "str", "default": []},
    "override": {"type": "bool", "default": False},
    "override_reason": {"type": "str"},
    "override_by": {"type": "str"},
    "fail_outside": {"type": "bool", "default": False},
}


def main() -> None:
    """Judge the clock against the windows and exit with the check result."""
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)

    def check(params: dict) -> dict:
        result = check_window(params)
        if params["fail_outside"] and result["status"] != OK:
            module.fail_json(msg=refusal(result), **result)
        return result

    run_check(module, check)


if __name__ == "__main__":
    main()
