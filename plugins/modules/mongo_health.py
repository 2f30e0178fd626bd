#!/usr/bin/python
# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: mongo_health
short_description: Check MongoDB connections, replication, capacity and usage
version_added: 1.0.0
author: trm.maintenance contributors (@trm-platform)
description:
  - Runs the checks named in O(checks) on one connection and reports one or more
    findings per check, each judged against a threshold.
  - V(connections) compares current connections with the maximum (current plus
    available) in percent, against O(connections_used).
  - V(replication), on a replica set member, reports the members' states (no
    primary or an unhealthy member is critical), the largest replication lag,
    measured between the primary's last applied operation and each secondary's
    (so an idle set shows no lag), and the oplog window (the time between its
    oldest and newest entry) against O(backup_interval). On a standalone server
    or a mongos router it reports that replication does not apply.
  - V(capacity) reports data, storage and index sizes per database and in total,
    and the storage and index size as a share of a ceiling (O(capacity_ceiling),
    else the size of the data filesystem). With O(history_dir), it also reports
    the growth rate since the oldest earlier report and projects the date when
    storage reaches O(capacity_target) percent of the ceiling.
  - V(collections) lists the largest collections by data size, with their storage
    size, index size, document count and free (reclaimable) space.
  - V(slow_queries) lists the slowest operations recorded by the database
    profiler (C(system.profile)) in the last O(slow_query_days), with their
    namespace, plan and command shape (values replaced by C(?)). When the profiler
    is off the finding is V(unknown) and says how to turn it on.
  - V(index_usage) lists indexes that C($indexStats) counts as never used. Its
    counters restart with the server, so an index is reported only when its
    counting started more than O(unused_index_days) ago; C(_id) indexes and
    indexes being built are never reported.
  - V(current_ops) lists client operations running longer than the warning bound
    of O(operation_time) (the guide's one second), longest first; replication,
    awaitable C(hello) and change stream cursors are left out.
  - V(wiredtiger) reports the WiredTiger cache fill and dirty share and, where the
    server reports it, the number of operations queued for a lock.
  - A command that the server refuses (not authorised, not supported) makes that
    check's finding V(unknown) with the reason; the other checks still run.
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
  checks:
    description:
      - The checks to run. Defaults to all of them.
    type: list
    elements: str
    choices:
      - connections
      - replication
      - capacity
      - collections
      - slow_queries
      - index_usage
      - current_ops
      - wiredtiger
  databases:
    description:
      - The databases that V(capacity), V(collections), V(slow_queries) and
        V(index_usage) look at. Defaults to every database but C(admin),
        C(local) and C(config).
      - A listed database that the server does not have is named in the findings'
        C(missing_databases).
    type: list
    elements: str
    default: []
  connections_used:
    description:
      - Thresholds on connections in use, in percent of the maximum.
    type: dict
    default: {warning: 80, critical: 90}
  replication_lag:
    description:
      - Thresholds on the largest replication lag, in seconds.
    type: dict
    default: {warning: 10, critical: 60}
  backup_interval:
    description:
      - Hours between two backups. The oplog must cover at least this span so that
        a point-in-time restore can replay it; by default the oplog window is a
        warning under two backup intervals and critical under one.
    type: float
    default: 24
  oplog_window:
    description:
      - Thresholds on the oplog window in hours, as lower bounds
        (C(direction=below)). Overrides the default derived from
        O(backup_interval).
    type: dict
  capacity_used:
    description:
      - Thresholds on storage and index size in percent of the capacity ceiling.
    type: dict
    default: {warning: 70, critical: 85}
  capacity_ceiling:
    description:
      - The capacity that storage and index sizes are compared with, as a size
        such as V(500GB) or V(2TB) (powers of 1024).
      - Defaults to the size of the filesystem that holds the data, as the server
        reports it in C(dbStats).
    type: str
  capacity_target:
    description:
      - The share of the ceiling, in percent, whose date of reaching is projected.
    type: float
    default: 70
  capacity_growth:
    description:
      - Thresholds on storage growth in percent per 30 days, measured since the
        oldest earlier report in O(history_dir).
    type: dict
    default: {warning: 20, critical: 50}
  capacity_projection:
    description:
      - Thresholds on the projected days until storage reaches O(capacity_target),
        as lower bounds.
    type: dict
    default: {warning: 90, critical: 30, direction: below}
  history_dir:
    description:
      - The folder of earlier maintenance reports (the C(trm.maintenance.report)
        role's C(report_dir)). When set, V(capacity) measures growth against them.
    type: path
  history_cadence:
    description:
      - The cadence of the earlier reports to read from O(history_dir).
    type: str
    default: monthly
  history_limit:
    description:
      - How many earlier reports to read, newest first.
    type: int
    default: 12
  top_collections:
    description:
      - How many of the largest collections to list.
    type: int
    default: 10
  sample_collections:
    description:
      - How many of the largest collections, by data size, have their index
        counters (C($indexStats)) read for V(index_usage), from 1 to 1000. A
        hundred cost one aggregate.
    type: int
    default: 100
  slow_query_time:
    description:
      - Thresholds on the slowest profiled operation, in milliseconds.
    type: dict
    default: {warning: 1000, critical: 10000}
  slow_query_days:
    description:
      - How many days back the profiler's entries are read, above 0 and at most
        36500.
    type: float
    default: 7
  top_slow_queries:
    description:
      - How many of the slowest operations to list.
    type: int
    default: 10
  unused_indexes:
    description:
      - Thresholds on the number of unused indexes.
    type: dict
    default: {warning: 0}
  unused_index_days:
    description:
      - Days that an index's usage counter must have been counting before the
        index may be reported as unused, above 0 and at most 36500.
    type: float
    default: 7
  operation_time:
    description:
      - Thresholds on the longest running client operation, in seconds. Operations
        over the warning bound are listed.
    type: dict
    default: {warning: 1, critical: 60}
  cache_used:
    description:
      - Thresholds on the WiredTiger cache fill, in percent of its maximum.
        WiredTiger starts evicting at 80% and makes application threads help at 95%.
    type: dict
    default: {warning: 80, critical: 95}
  cache_dirty:
    description:
      - Thresholds on the dirty share of the WiredTiger cache, in percent.
    type: dict
    default: {warning: 5, critical: 20}
  queued_operations:
    description:
      - Thresholds on the number of operations waiting for a lock.
    type: dict
    default: {warning: 10, critical: 50}
notes:
  - The sizes of every collection in scope are read with one
    C($_internalAllCollectionStats) aggregate on C(admin) (MongoDB 6.0 and later;
    an internal stage, with the same figures as C($collStats)). Where the server
    does not run it for the monitoring user, they are read with C($collStats)
    stages joined by C($unionWith), a hundred collections per aggregate
    (C($unionWith) needs MongoDB 4.4 or later), and the round trips then grow
    with the number of collections.
  - V(index_usage) is sampled. It reads C($indexStats) for the
    O(sample_collections) largest collections by data size only, so the full
    check costs the same number of commands for a hundred collections as for a
    thousand; an unused index of a smaller collection is not reported. The
    finding gives C(collections_sampled) and C(collections_total), and its
    message says when the sample left collections out.
  - The monitoring user needs the C(clusterMonitor) role, and C(read) on
    C(local) for the oplog window; without them the affected checks are V(unknown).
  - Time windows (profiler entries, index counters) are measured on the server's
    clock, not on the controller's.
seealso:
  - module: trm.maintenance.mongo_metrics
  - module: trm.maintenance.mongo_compact
  - module: community.mongodb.mongodb_info
"""

EXAMPLES = r"""
- name: Check MongoDB connections against their maximum (daily)
  trm.maintenance.mongo_health:
    uri: mongodb://mongo-0.trm.internal,mongo-1.trm.internal/?replicaSet=rs0
    login_user: monitor
    login_password: "{{ vault_mongo_monitor_password }}"
    checks: [connections, replication]
    connections_used:
      warning: 80
      critical: 90
  delegate_to: localhost
  run_once: true
  register: maintenance__mongo_connections

- name: Review slow queries, index usage and collection sizes (weekly)
  trm.maintenance.mongo_health:
    login_host: mongo-0.trm.internal
    login_user: monitor
    login_password: "{{ vault_mongo_monitor_password }}"
    checks: [slow_queries, index_usage, collections, wiredtiger]
    databases: [trm]
    slow_query_days: 7
    top_slow_queries: 10
    unused_index_days: 14
  delegate_to: localhost
  run_once: true

- name: Review data, storage and index growth for capacity planning (monthly)
  trm.maintenance.mongo_health:
    uri: "{{ mongo_uri }}"
    checks: [capacity, collections]
    capacity_ceiling: 500GB
    capacity_target: 70
    history_dir: /var/lib/trm-maintenance/reports
    history_cadence: monthly
  delegate_to: localhost
  run_once: true

- name: Review long-running operations (quarterly)
  trm.maintenance.mongo_health:
    uri: "{{ mongo_uri }}"
    checks: [current_ops]
    operation_time:
      warning: 1
      critical: 60
  delegate_to: localhost
  run_once: true

- name: Check one replica set member over TLS with a client certificate
  trm.maintenance.mongo_health:
    login_host: mongo-2.trm.internal
    direct_connection: true
    tls: true
    ca_certs: /etc/pki/trm/mongo-ca.pem
    client_cert_file: /etc/pki/trm/monitor.pem
    auth_mechanism: MONGODB-X509
    checks: [replication]
    backup_interval: 24
    fail_on: critical
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
status:
  description: The worst status of the findings.
  returned: always
  type: str
  sample: warning
summary:
  description: One line for a person, with the worst findings.
  returned: always
  type: str
  sample: >-
    MongoDB health WARNING (1 warning, 5 ok): Replication lag of mongo-2:27017 is
    14 s, above the warning threshold of 10 s
checks:
  description:
    - The findings, in the order of the checks. A check the server refused, or
      that found nothing to judge, has one finding named after the check.
    - Finding names are C(connections), C(replication), C(replica_set_members),
      C(replication_lag), C(oplog_window), C(capacity_used), C(capacity_growth),
      C(capacity_projection), C(collections), C(slow_queries), C(index_usage),
      C(current_ops), C(wiredtiger), C(cache_used), C(cache_dirty),
      C(queued_operations), and C(connection) when the server could not be
      reached or rejected the credentials.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: What was checked.
      type: str
      sample: connections
    status:
      description: V(ok), V(warning), V(critical) or V(unknown).
      type: str
      sample: ok
    message:
      description: What was found, in one sentence.
      type: str
      sample: Connections in use is 12.5% (warning above 80%, critical above 90%)
    value:
      description: The judged figure, in RV(checks[].unit); null when unknown.
      type: float
      sample: 12.5
    unit:
      description: The unit of RV(checks[].value), such as V(%), V(s), V(h) or V(ms).
      type: str
      sample: "%"
    warning:
      description: The warning bound.
      type: float
      sample: 80
    critical:
      description: The critical bound.
      type: float
      sample: 90
    threshold:
      description: The bounds in words.
      type: str
      sample: warning above 80%, critical above 90%
    action:
      description: What to do next; null when the finding is ok.
      type: str
      sample: Check the lagging secondary's load, disk and network
    members:
      description: For C(replica_set_members), each member's name, state, health,
        status, optime, sync source, ping and uptime.
      type: list
      elements: dict
      sample: [{name: "mongo-0:27017", state: PRIMARY, health: 1, status: ok}]
    lags:
      description: For C(replication_lag), seconds behind the primary per secondary.
      type: dict
      sample: {"mongo-1:27017": 0.0, "mongo-2:27017": 14.0}
    databases:
      description: For C(capacity_used), the sizes of each database in bytes.
      type: list
      elements: dict
      sample:
        - {database: trm, data_bytes: 10035200, storage_bytes: 13176832,
           index_bytes: 3141632, collections: 6, objects: 23516}
    largest:
      description: For C(collections), the largest collections, largest first.
      type: list
      elements: dict
      sample:
        - {database: trm, collection: auditlogs, documents: 4017,
           data_bytes: 2896067, storage_bytes: 3305472, index_bytes: 98304,
           free_bytes: 0}
    slowest:
      description: For C(slow_queries), the slowest operations with their
        namespace, operation, milliseconds, time, plan, documents and keys
        examined, and command shape.
      type: list
      elements: dict
      sample:
        - {namespace: trm.referrals, operation: query, millis: 1840,
           plan: COLLSCAN, docs_examined: 51210, returned: 3,
           command: {find: referrals, filter: {status: "?"}}}
    unused:
      description: For C(index_usage), the unused indexes with their key and the
        time their counter started.
      type: list
      elements: dict
      sample:
        - {database: trm, collection: jobs, index: status_1, key: {status: 1},
           since: "2026-10-01T02:00:00.000Z"}
    operations:
      description: For C(current_ops), the operations over the warning bound.
      type: list
      elements: dict
      sample: [{opid: 4711, operation: command, namespace: trm.jobs, seconds: 3.2}]
metrics:
  description:
    - Numbers for reports and trends, present when their check ran, such as
      C(connections_current), C(connections_used_pct), C(uptime_seconds),
      C(members_total), C(members_healthy), C(replication_lag_seconds),
      C(oplog_window_hours), C(data_bytes_total), C(storage_bytes_total),
      C(index_bytes_total), C(capacity_used_bytes), C(capacity_used_pct),
      C(capacity_days_to_target), C(<database>_data_bytes),
      C(collections_total), C(<database>_<collection>_data_bytes),
      C(slowest_query_ms), C(unused_indexes), C(longest_operation_seconds),
      C(cache_used_pct) and C(cache_dirty_pct).
  returned: always
  type: dict
  sample:
    connections_current: 125
    connections_used_pct: 12.5
    replication_lag_seconds: 0.0
    capacity_used_bytes: 16318464
server:
  description: The server the module talked to.
  returned: always
  type: dict
  contains:
    target:
      description: The URI or host, with any password masked.
      type: str
      sample: mongodb://monitor:********@mongo-0.trm.internal/
    role:
      description: V(primary), V(secondary), V(arbiter), V(standalone) or V(mongos).
      type: str
      sample: primary
    replica_set:
      description: The replica set name; null when not a member.
      type: str
      sample: rs0
  sample:
    target: mongodb://mongo-0.trm.internal:27017/
    role: primary
    replica_set: rs0
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
from ansible_collections.trm.maintenance.plugins.module_utils.mongo_health import (
    CHECKS,
    DEFAULT_THRESHOLDS,
    read_history,
    run_mongo_health,
)
from ansible_collections.trm.maintenance.plugins.module_utils.runner import (
    FAIL_ON_SPEC,
    run_check,
)

ARGUMENT_SPEC = {
    "checks": {"type": "list", "elements": "str", "choices": list(CHECKS)},
    "databases": {"type": "list", "elements": "str", "default": []},
    **{
        name: {"type": "dict", "default": dict(default)}
        for name, default in DEFAULT_THRESHOLDS.items()
    },
    "backup_interval": {"type": "float", "default": 24.0},
    "oplog_window": {"type": "dict"},
    "capacity_ceiling": {"type": "str"},
    "capacity_target": {"type": "float", "default": 70.0},
    "history_dir": {"type": "path"},
    "history_cadence": {"type": "str", "default": "monthly"},
    "history_limit": {"type": "int", "default": 12},
    "top_collections": {"type": "int", "default": 10},
    "sample_collections": {"type": "int", "default": 100},
    "slow_query_days": {"type": "float", "default": 7.0},
    "top_slow_queries": {"type": "int", "default": 10},
    "unused_index_days": {"type": "float", "default": 7.0},
    **MONGO_ARGUMENT_SPEC,
    **FAIL_ON_SPEC,
}


def main() -> None:
    """Check the MongoDB deployment and exit with the check result."""
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
        lambda params: run_mongo_health(
            params, history=read_history(params, warn=module.warn)
        ),
    )


if __name__ == "__main__":
    main()
