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
    the time is outside O(maintenance_window) (unless O(allow_outside_window)) or
    when the server is a replica set primary (unless O(allow_primary)).
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
  maintenance_window:
    description:
      - The weekly window inside which compaction may run, as C(day) (a weekday
        name), C(start) and C(end) (V(HH:MM); an end at or before the start is on
        the next day) and C(timezone) (V(UTC), an offset such as V(+02:00), or a
        zone name such as V(Europe/Berlin)).
      - Keys left out take the guide's window, Sunday 02:00-04:00 UTC.
    type: dict
    default: {day: sunday, start: "02:00", end: "04:00", timezone: UTC}
  allow_outside_window:
    description:
      - Compact even outside O(maintenance_window). The override is stated in the
        result.
    type: bool
    default: false
  allow_primary:
    description:
      - Compact even when the server is the primary of a replica set. Compact the
        secondaries first and step the primary down instead where possible.
    type: bool
    default: false
  compact_timeout:
    description:
      - Seconds to wait for each collection's C(compact), which replaces
        O(socket_timeout) for that command.
    type: float
    default: 3600
  now:
    description:
      - The moment the window is judged at, as an ISO 8601 date and time.
        Defaults to the controller's clock.
    type: str
  fail_on:
    description:
      - Fail the task when the overall RV(status) is at least this bad. A refused
        compaction is a V(warning).
    type: str
    choices: [warning, unknown, critical]
notes:
  - The guard's window is deliberately simple (one weekday, a start, an end and a
    time zone); monthly and quarterly windows are expressed by running the
    playbook on those days.
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

- name: Compact large collections of trm inside the Sunday window (quarterly)
  trm.maintenance.mongo_compact:
    login_host: mongo-2.trm.internal
    direct_connection: true
    login_user: maintenance
    login_password: "{{ vault_mongo_maintenance_password }}"
    databases: [trm]
    min_size: 1GB
    maintenance_window:
      day: sunday
      start: "02:00"
      end: "04:00"
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
      sample: Run it inside the window, or set allow_outside_window to override
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
    outside the maintenance window Sunday 02:00-04:00 UTC
    (next opens at 2025-03-16T02:00:00+00:00)
window:
  description: The maintenance window and whether it was open.
  returned: always
  type: dict
  sample:
    open: true
    window: Sunday 02:00-04:00 UTC
    opens_at: "2025-03-09T02:00:00+00:00"
    closes_at: "2025-03-09T04:00:00+00:00"
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
from ansible_collections.trm.maintenance.plugins.module_utils.mongo_window import (
    DEFAULT_WINDOW,
)
from ansible_collections.trm.maintenance.plugins.module_utils.runner import (
    FAIL_ON_SPEC,
    run_check,
)

ARGUMENT_SPEC = {
    "databases": {"type": "list", "elements": "str", "required": True},
    "collections": {"type": "list", "elements": "str", "default": []},
    "min_size": {"type": "str", "default": "1GB"},
    "maintenance_window": {"type": "dict", "default": dict(DEFAULT_WINDOW)},
    "allow_outside_window": {"type": "bool", "default": False},
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
