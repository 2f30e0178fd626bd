#!/usr/bin/python
# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: mongo_metrics
short_description: Count MongoDB documents in time windows and judge the counts
version_added: 1.0.0
author: trm.maintenance contributors (@trm-platform)
description:
  - Counts documents for every entry of O(counts) on one connection and reports
    one finding per count, judged by the count's range or threshold.
  - A count is a collection, an optional filter and, optionally, a date field
    with a window that ends at O(now). With C(date_match=within) it counts
    documents dated within the window (the day's registrations, the month's
    active users); with C(date_match=before) it counts documents dated before the
    window, and with C(include_missing) also those without a date (users with no
    login in 60 days, API keys never used).
  - The definitions live in the inventory, so the module is tied to no schema;
    the C(trm.maintenance.mongo_checks) role holds the TRM platform's.
  - A count can list the matching documents with the fields it names, for an
    access review. Fields whose names look secret (password, token, key, hash,
    secret, salt and the like) are refused in C(list_fields) and removed from
    listed documents at any depth.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - trm.maintenance.check
  - trm.maintenance.mongo
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  counts:
    description:
      - The counts, each a mapping with the keys below.
      - C(name) (required) names the finding and the metric, in snake_case; names
        are unique.
      - C(collection) (required) is the collection to count in, C(database) the
        database (default O(database)).
      - C(filter) is a MongoDB query as a mapping; MongoDB Extended JSON values
        such as a C($date) mapping holding an ISO 8601 time are turned into BSON.
      - C(date_field), C(window) and C(date_match) add a date condition.
        C(window) is a duration such as V(24h), V(30d), V(2w) or V(90m), at most
        V(36500d);
        C(date_match) is V(within) (the default) or V(before); C(include_missing)
        (default V(false)) also counts documents whose date field is null or
        missing when C(date_match=before).
      - C(range) judges the count with C(normal) and C(investigate) ranges, each
        a list of a low and a high bound (for example normal 50 to 200,
        investigate 20 to 500); inside normal is ok, inside investigate a
        warning, outside it critical. C(threshold) judges it
        with C(warning) and C(critical) bounds and an optional C(direction). With
        neither, the count is reported as ok.
      - C(label) is the name a person reads (default from C(name)), C(unit) the
        unit shown after the number, C(action) what to do when the count is out
        of range.
      - C(list_fields) lists the matching documents with these fields only
        (C(_id) only when it is listed, since some collections are keyed by a
        secret), at most C(list_limit) of them (default 20, at most 500), sorted
        by C(list_sort) (a field name, with a leading C(-) for descending).
    type: list
    elements: dict
    required: true
  database:
    description:
      - The database of the counts that do not name their own.
    type: str
  now:
    description:
      - The moment the windows end, as an ISO 8601 date and time. A time without
        an offset is UTC.
      - Defaults to the server's clock, so that the controller's clock never
        shifts a window.
    type: str
notes:
  - Counts use the C(count) command with a query, one round trip per count, with
    the filter and the date window joined by C($and). On a sharded cluster during
    chunk migrations, MongoDB may count orphaned documents.
  - The monitoring user needs C(read) on the counted databases; a refused count
    is V(unknown) with the reason, and the other counts still run.
seealso:
  - module: trm.maintenance.mongo_health
"""

EXAMPLES = r"""
- name: Count the day's business volumes against the guide's ranges (daily)
  trm.maintenance.mongo_metrics:
    uri: "{{ mongo_uri }}"
    database: trm
    counts:
      - name: registrations
        label: New registrations (last 24 hours)
        collection: users
        date_field: createdAt
        window: 24h
        range: {normal: [50, 200], investigate: [20, 500]}
      - name: job_postings
        collection: jobs
        date_field: createdAt
        window: 24h
        range: {normal: [20, 100], investigate: [5, 250]}
      - name: referrals
        collection: referrals
        date_field: createdAt
        window: 24h
        range: {normal: [30, 150], investigate: [10, 400]}
      - name: payments
        collection: payments
        date_field: createdAt
        window: 24h
        range: {normal: [10, 80], investigate: [2, 200]}
  delegate_to: localhost
  run_once: true
  register: maintenance__business_metrics

- name: Count monthly active, new and churned users (monthly)
  trm.maintenance.mongo_metrics:
    uri: "{{ mongo_uri }}"
    database: trm
    counts:
      - name: monthly_active_users
        collection: users
        date_field: lastLogin
        window: 30d
      - name: new_registrations_30d
        collection: users
        date_field: createdAt
        window: 30d
      - name: churned_users
        label: Users without a login in 60 days
        collection: users
        date_field: lastLogin
        window: 60d
        date_match: before
        include_missing: true
  delegate_to: localhost
  run_once: true

- name: Review admin accounts and API keys (monthly access review)
  trm.maintenance.mongo_metrics:
    uri: "{{ mongo_uri }}"
    database: trm
    counts:
      - name: admin_accounts
        collection: users
        filter: {role: admin}
        list_fields: [email, name, lastLogin, createdAt]
      - name: inactive_admin_accounts
        label: Admin accounts without a login in 90 days
        collection: users
        filter: {role: admin}
        date_field: lastLogin
        window: 90d
        date_match: before
        include_missing: true
        threshold: {warning: 0}
        action: Confirm each account with its owner, then disable the unused ones
        list_fields: [email, name, lastLogin]
        list_sort: lastLogin
      - name: active_api_keys
        collection: apikeys
        filter: {active: true}
        list_fields: [name, ownerId, createdAt, lastUsed]
  delegate_to: localhost
  run_once: true

- name: Count failed payments since a fixed date, failing the task when out of range
  trm.maintenance.mongo_metrics:
    login_host: mongo-0.trm.internal
    login_user: monitor
    login_password: "{{ vault_mongo_monitor_password }}"
    counts:
      - name: failed_payments
        database: trm
        collection: payments
        filter:
          status: failed
          createdAt: {"$gte": {"$date": "2025-01-01T00:00:00Z"}}
        threshold: {warning: 50, critical: 200}
    fail_on: critical
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
status:
  description: The worst status of the counts.
  returned: always
  type: str
  sample: warning
summary:
  description: One line for a person, with the worst findings.
  returned: always
  type: str
  sample: >-
    MongoDB metrics WARNING (1 warning, 3 ok): Referrals is 22, outside the normal
    range 30-150
checks:
  description:
    - One finding per count, in the order of O(counts); a finding named
      C(connection) instead when the server could not be reached or rejected the
      credentials.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The count's name.
      type: str
      sample: referrals
    status:
      description: V(ok), V(warning), V(critical) or V(unknown).
      type: str
      sample: warning
    message:
      description: What was found, in one sentence.
      type: str
      sample: Referrals is 22, outside the normal range 30-150
    value:
      description: The count; null when it could not be made.
      type: int
      sample: 22
    unit:
      description: The count's unit, if it set one.
      type: str
      sample: null
    warning:
      description: The warning bound of a C(threshold).
      type: float
      sample: 0
    critical:
      description: The critical bound of a C(threshold).
      type: float
      sample: null
    normal:
      description: The normal range of a C(range).
      type: list
      elements: float
      sample: [30, 150]
    investigate:
      description: The investigate range of a C(range).
      type: list
      elements: float
      sample: [10, 400]
    threshold:
      description: The range or the bounds in words.
      type: str
      sample: normal 30-150, investigate outside 10-400
    action:
      description: What to do next; null when the count is ok.
      type: str
      sample: Check the referral flow and the application's logs
    database:
      description: The database counted in.
      type: str
      sample: trm
    collection:
      description: The collection counted in.
      type: str
      sample: referrals
    query:
      description: The query sent, dates in ISO 8601.
      type: dict
      sample:
        createdAt:
          $gte: "2025-03-08T14:30:00.000Z"
          $lte: "2025-03-09T14:30:00.000Z"
    window:
      description: The date condition, when the count has one.
      type: dict
      sample: {field: createdAt, length: 24h, match: within,
               since: "2025-03-08T14:30:00.000Z", until: "2025-03-09T14:30:00.000Z",
               include_missing: false}
    documents:
      description: The listed documents, when the count has C(list_fields).
      type: list
      elements: dict
      sample: [{email: ops.admin@example.com,
                lastLogin: "2024-11-02T08:12:00.000Z"}]
metrics:
  description: Each count by its name.
  returned: always
  type: dict
  sample: {registrations: 92, job_postings: 46, referrals: 22, payments: 35}
server:
  description: The server the module talked to and the moment the windows ended.
  returned: always
  type: dict
  contains:
    target:
      description: The URI or host, with any password masked.
      type: str
      sample: mongodb://127.0.0.1:27017/
    until:
      description: The moment the windows ended; absent when the server was not reached.
      type: str
      sample: "2025-03-09T14:30:00.000Z"
  sample: {target: "mongodb://127.0.0.1:27017/", until: "2025-03-09T14:30:00.000Z"}
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
from ansible_collections.trm.maintenance.plugins.module_utils.mongo_metrics import (
    run_mongo_metrics,
)
from ansible_collections.trm.maintenance.plugins.module_utils.runner import (
    FAIL_ON_SPEC,
    run_check,
)

ARGUMENT_SPEC = {
    "counts": {"type": "list", "elements": "dict", "required": True},
    "database": {"type": "str"},
    "now": {"type": "str"},
    **MONGO_ARGUMENT_SPEC,
    **FAIL_ON_SPEC,
}


def main() -> None:
    """Make the counts and exit with the check result."""
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=MONGO_MUTUALLY_EXCLUSIVE,
        required_together=MONGO_REQUIRED_TOGETHER,
        supports_check_mode=True,
    )
    require_pymongo(module)
    hide_secrets(module, module.params)
    run_check(module, run_mongo_metrics)


if __name__ == "__main__":
    main()
