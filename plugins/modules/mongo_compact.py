#!/usr/bin/python
# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: mongo_compact
short_description: Compact large MongoDB collections inside the maintenance window
version_added: 1.0.0
author: trm.maintenance contributors (@trm-platform)
description:
  - Runs MongoDB's C(compact) on the collections of the allowed databases whose
    storage size reaches O(min_size), largest first, and reports what was
    compacted, how long each took and the bytes it freed.
  - Compaction is disruptive. The module first checks its preconditions and
    refuses, with the reason as a V(warning) finding and RV(refused=true), when
    the time is outside every window of O(windows) (unless
    O(allow_outside_window) or O(window_checked_by)) or when the server is a
    replica set primary (unless O(allow_primary)).
  - The windows are those of M(trm.maintenance.maintenance_window), weekly,
    monthly (the nth weekday of the month) and quarterly windows, each in its own
    time zone. When a guard such as the C(trm.maintenance.maintenance_guard) role
    has already decided, O(window_checked_by) names it and the module follows
    that decision; the result says why the compaction ran in
    C(window.allowed_by).
  - It never touches a database that O(databases) does not list, and refuses
    C(admin), C(local) and C(config).
  - In check mode it returns the plan (what would be compacted and why) and
    compacts nothing.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - trm.maintenance.mongo
attributes:
  check_mode:
    support: full
    details: Checks the preconditions and returns the plan; compacts nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  databases:
    description:
      - The allow-list of databases whose collections may be compacted.
    type: list
    elements: str
    required: true
  collections:
    description:
      - Compact only these collections of the allowed databases. Defaults to every
        collection that reaches O(min_size).
    type: list
    elements: str
    default: []
  min_size:
    description:
      - The storage size from which a collection is compacted, such as V(1GB) or
        V(500MB) (powers of 1024).
    type: str
    default: 1GB
  windows:
    description:
      - The maintenance windows inside which compaction may run, in the format of
        the O(trm.maintenance.maintenance_window#module:windows) option, each a
        mapping with C(schedule) (V(weekly), V(monthly) or V(quarterly)),
        C(weekday), C(start) (V("HH:MM")), C(duration) (such as V(2h)), and
        optionally C(name), C(week) (V(1) to V(5) or V(last)), C(months) and
        C(timezone).
      - Defaults to the guide's windows, every Sunday 02:00 for two hours, the
        first Sunday of the month for four and the first Sunday of each quarter
        for eight.
    type: list
    elements: dict
  timezone:
    description:
      - The IANA time zone of the windows that do not name their own, and of
        O(now) when it has no offset.
    type: str
    default: UTC
  allow_outside_window:
    description:
      - Compact even outside O(windows). The override is stated in the result.
    type: bool
    default: false
  window_checked_by:
    description:
      - The name of the guard that has already checked the maintenance windows
        and allowed this work, such as V(maintenance_guard). The module then does
        not refuse on its own windows; it still reports where O(now) stands in
        them, and the result names the guard.
      - Set it only right after such a guard allowed the work.
    type: str
  allow_primary:
    description:
      - Compact even when the server is the primary of a replica set. Compact the
        secondaries first and step the primary down instead where possible.
    type: bool
    default: false
  compact_timeout:
    description:
      - Seconds to wait for each collection's C(compact), which replaces
        O(socket_timeout) for that command; above 0 and at most 604800 (a week).
    type: float
    default: 3600
  now:
    description:
      - The moment the windows are judged at, as an ISO 8601 date and time.
        Defaults to the controller's clock.
    type: str
  fail_on:
    description:
      - Fail the task when the overall RV(status) is at least this bad. A refused
        compaction is a V(warning).
    type: str
    choices: [warning, unknown, critical]
notes:
  - On MongoDB 7, C(compact) does not block reads and writes but costs I/O; the
    C(bytesFreed) it reports is returned per collection.
seealso:
  - module: trm.maintenance.mongo_health
"""

EXAMPLES = r"""
- name: Plan the quarterly compaction (check mode shows what would be done)
  trm.maintenance.mongo_compact:
    uri: "{{ mongo_uri }}"
    databases: [trm]
    min_size: 1GB
  check_mode: true
  delegate_to: localhost
  run_once: true
  register: maintenance__compact_plan

- name: Compact large collections of trm inside the quarterly window
  trm.maintenance.mongo_compact:
    login_host: mongo-2.trm.internal
    direct_connection: true
    login_user: maintenance
    login_password: "{{ vault_mongo_maintenance_password }}"
    databases: [trm]
    min_size: 1GB
    windows:
      - name: quarterly
        schedule: quarterly
        months: [1, 4, 7, 10]
        weekday: sunday
        week: 1
        start: "02:00"
        duration: 8h
    timezone: Europe/Berlin
  delegate_to: localhost
  run_once: true

- name: Compact the audit log now, outside the window, on the operator's decision
  trm.maintenance.mongo_compact:
    uri: "{{ mongo_uri }}"
    databases: [trm]
    collections: [auditlogs]
    min_size: 100MB
    allow_outside_window: true
  delegate_to: localhost
  run_once: true

- name: Compact after the shared guard allowed it
  trm.maintenance.mongo_compact:
    uri: "{{ mongo_uri }}"
    databases: [trm]
    window_checked_by: maintenance_guard
    now: "{{ maintenance_guard__window.now }}"
  when: maintenance_guard_open | bool
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
changed:
  description: Whether a collection was compacted (in check mode, would be).
  returned: always
  type: bool
  sample: true
status:
  description: The worst status of the findings; a refusal is a V(warning).
  returned: always
  type: str
  sample: ok
summary:
  description: One line for a person.
  returned: always
  type: str
  sample: MongoDB compaction OK (2 ok)
checks:
  description:
    - The findings C(maintenance_window), C(primary) (only when it refuses),
      C(compaction), one named C(compact <database>.<collection>) per collection
      the server refused to compact, and C(connection) when the server could not
      be reached.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: What was checked or done.
      type: str
      sample: compaction
    status:
      description: V(ok), V(warning), V(critical) or V(unknown).
      type: str
      sample: ok
    message:
      description: What was found or done, in one sentence.
      type: str
      sample: Compacted 2 of 2 collections, freed 1.2 GB
    value:
      description: For C(compaction), the number of collections compacted.
      type: int
      sample: 2
    action:
      description: What to do next; null when nothing is needed.
      type: str
      sample: Run it inside a window, or set allow_outside_window to override
metrics:
  description: C(collections_planned), C(collections_compacted), C(bytes_freed)
    and, when compaction ran, C(compaction_seconds).
  returned: always
  type: dict
  sample: {collections_planned: 2, collections_compacted: 2, bytes_freed: 1288490188}
plan:
  description: The collections that reach O(min_size), largest first, with their
    storage, data and free (reclaimable) sizes in bytes.
  returned: always
  type: list
  elements: dict
  sample: [{database: trm, collection: auditlogs, storage_bytes: 3221225472,
            data_bytes: 2147483648, free_bytes: 1073741824}]
compacted:
  description: The collections compacted, with C(bytes_freed) as the server
    reported it (null when it did not), C(started) and C(seconds).
  returned: always
  type: list
  elements: dict
  sample: [{database: trm, collection: auditlogs, storage_bytes: 3221225472,
            bytes_freed: 1073741824, started: "2025-03-09T02:00:04.120Z",
            seconds: 412.8}]
bytes_freed:
  description: The bytes freed by all compactions.
  returned: always
  type: int
  sample: 1073741824
refused:
  description: Whether a precondition refused the operation.
  returned: always
  type: bool
  sample: false
reason:
  description: Why the operation was refused; null when it was not.
  returned: always
  type: str
  sample: >-
    outside the maintenance windows (weekly, monthly, quarterly); the next,
    weekly, opens Sun 2025-03-16 02:00 UTC, in 3 d 16 h
window:
  description:
    - Where O(now) stands in O(windows) and why the compaction may run.
    - C(open) tells whether a window is open; C(window) names it; C(opens_at) and
      C(closes_at) are the open window's ends, else the next one's; C(current)
      and C(next) are those openings in local time and UTC; C(now) is the moment
      judged; C(windows) describes each window.
    - C(checked_by) is O(window_checked_by). C(allowed_by) is V(window) (a window
      is open), V(window_checked_by) (the named guard decided),
      V(allow_outside_window) (the override), or null when refused.
  returned: always
  type: dict
  sample:
    open: true
    window: weekly
    opens_at: "2025-03-09T02:00:00+00:00"
    closes_at: "2025-03-09T04:00:00+00:00"
    now: "2025-03-09T02:30:00Z"
    checked_by: null
    allowed_by: window
phases:
  description: Start, end and seconds of each phase (C(preconditions), C(plan),
    C(compact)).
  returned: always
  type: dict
  sample:
    plan:
      started: "2025-03-09T02:00:03.410Z"
      finished: "2025-03-09T02:00:04.118Z"
      seconds: 0.708
"""

# Ansible's layout puts the documentation before the imports.
from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trm.maintenance.plugins.module_utils.mongo import (
    MONGO_ARGUMENT_SPEC,
    MONGO_MUTUALLY_EXCLUSIVE,
    MONGO_REQUIRED_TOGETHER,
    hide_secrets,
    require_pymongo,
)
from ansible_collections.trm.maintenance.plugins.module_utils.mongo_compact import (
    run_mongo_compact,
)
from ansible_collections.trm.maintenance.plugins.module_utils.runner import (
    FAIL_ON_SPEC,
    run_check,
)

ARGUMENT_SPEC = {
    "databases": {"type": "list", "elements": "str", "required": True},
    "collections": {"type": "list", "elements": "str", "default": []},
    "min_size": {"type": "str", "default": "1GB"},
    "windows": {"type": "list", "elements": "dict"},
    "timezone": {"type": "str", "default": "UTC"},
    "allow_outside_window": {"type": "bool", "default": False},
    "window_checked_by": {"type": "str"},
    "allow_primary": {"type": "bool", "default": False},
    "compact_timeout": {"type": "float", "default": 3600.0},
    "now": {"type": "str"},
    **MONGO_ARGUMENT_SPEC,
    **FAIL_ON_SPEC,
}


def main() -> None:
    """Plan, guard and run the compaction, then exit with its result."""
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=MONGO_MUTUALLY_EXCLUSIVE,
        required_together=MONGO_REQUIRED_TOGETHER,
        supports_check_mode=True,
    )
    require_pymongo(module)
    hide_secrets(module, module.params)
    run_check(
        module,
        lambda params: run_mongo_compact(params, check_mode=module.check_mode),
    )


if __name__ == "__main__":
    main()
