#!/usr/bin/python
# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: redis_stats
short_description: Check a Redis server's health and cache performance in one call
version_added: 1.0.0
author: trm.maintenance contributors (@trm-platform)
description:
  - Connects once to a Redis server, sends PING, reads C(INFO), C(SLOWLOG GET) and
    a few C(CONFIG GET) values on that one connection, and judges what it learns
    against thresholds.
  - The PING check always runs. O(checks) chooses the others, in groups.
  - V(memory) judges memory in use against C(maxmemory), or against the host's
    memory when no maximum is set, the fragmentation ratio (too high and too low)
    and the keys evicted since the server started.
  - V(hit_rate) judges the keyspace hit rate over the server's lifetime and, when
    O(sample_seconds) is above zero, over an interval of that many seconds
    between two C(INFO) samples, so that a weekly review sees the current rate
    and not a months-old average.
  - V(clients) judges connected clients against C(maxclients), blocked clients and
    connections rejected since start.
  - V(persistence) judges the last RDB save (its status, and its age when changes
    wait to be saved and snapshots are scheduled) and the last AOF write.
  - V(replication) depends on the server's role. On a replica, the link to its
    primary, the seconds since the last I/O with it, and the bytes received but
    not yet applied. On a primary, the connected replicas, their states and
    their offset lag.
  - V(slowlog) counts the slow log entries since O(slowlog_since_id), lists the
    commands with most entries and with most time (without their arguments, which
    hold keys and values), and warns when the slow log is full and entries were
    lost before they were read.
  - V(keyspace) reports keys and keys with a TTL per database.
  - Where the server forbids a command (C(CONFIG) on a managed Redis, a monitoring
    user without the right), only the findings that need it are V(unknown), with
    the reason; the others still run.
  - An unreachable server is one critical finding (refused, timed out, unknown
    host, primary not found by Sentinel); rejected credentials and failed TLS
    verification are V(unknown), since the server's state could not be seen.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - trm.maintenance.check
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
requirements:
  - redis (the Python library) 5.0 or later, on the host that runs the module
options:
  login_host:
    description:
      - The host name or address of the Redis server.
      - Ignored when O(url) or O(sentinel_hosts) is set.
    type: str
    default: localhost
  login_port:
    description:
      - The port of the Redis server.
      - Ignored when O(url) or O(sentinel_hosts) is set.
    type: int
    default: 6379
  login_user:
    description:
      - The ACL user to authenticate as. Without it, the password is checked
        against the C(default) user (C(requirepass)).
    type: str
  login_password:
    description:
      - The password to authenticate with.
    type: str
  db:
    description:
      - The database the connection selects. The checks are about the whole
        server; this matters only where a user may not select database 0.
    type: int
    default: 0
  url:
    description:
      - The server as a URL, V(redis://[user[:password]@]host[:port][/db]) or
        V(rediss://...) for TLS, instead of O(login_host), O(login_port) and
        O(db).
      - Credentials in the URL fill O(login_user) and O(login_password); giving a
        different value in both places is an error. The password is masked
        wherever the URL is shown.
      - Query parameters are not accepted; use the module's options.
    type: str
  tls:
    description:
      - Connect with TLS. A V(rediss://) O(url) turns it on too.
    type: bool
    default: false
  validate_certs:
    description:
      - Verify the server's certificate and that it was issued for the host
        connected to.
      - Turn this off only for a server whose certificate cannot be trusted yet;
        prefer O(ca_certs).
    type: bool
    default: true
  ca_certs:
    description:
      - A PEM file of CA certificates to trust instead of the system's.
      - The file must exist and be readable; otherwise the task fails naming
        the option and the path, before any connection is made. The same holds
        for O(client_cert_file) and O(client_key_file).
    type: path
  client_cert_file:
    description:
      - A PEM client certificate, for servers that require one
        (C(tls-auth-clients yes)).
    type: path
  client_key_file:
    description:
      - The private key of O(client_cert_file), when the certificate file does not
        hold it. Requires O(client_cert_file).
    type: path
  timeout:
    description:
      - Seconds to wait for the connection and for each answer. A server that
        accepts connections but does not answer within it is critical.
    type: float
    default: 5.0
  sentinel_hosts:
    description:
      - Redis Sentinels, as V(host) or V(host:port) (default port 26379), to ask
        for the current primary of O(service_name). The checks then run on that
        primary with the login options.
      - The Sentinels are asked with the same O(timeout) and TLS settings.
    type: list
    elements: str
  service_name:
    description:
      - The name the Sentinels monitor the primary under (C(sentinel monitor
        <name> ...)). Required with O(sentinel_hosts).
    type: str
  sentinel_password:
    description:
      - The password of the Sentinels, when they have one of their own.
    type: str
  checks:
    description:
      - The groups of checks to run besides PING.
    type: list
    elements: str
    choices: [memory, hit_rate, clients, persistence, replication, slowlog, keyspace]
    default: [memory, hit_rate, clients, persistence, replication, slowlog, keyspace]
  sample_seconds:
    description:
      - Seconds between the two C(INFO) samples of the recent hit rate, the only
        deliberate wait of the module. V(0) skips the interval sample.
      - Used only when O(checks) holds V(hit_rate). At most 300.
    type: float
    default: 5.0
  slowlog_since_id:
    description:
      - The id of the newest slow log entry seen by the previous review (the
        C(slowlog_last_id) in the RV(metrics) it returned). Only newer entries
        count, and a gap between it and the oldest entry kept means entries were
        lost.
      - When not set, every entry in the slow log counts.
    type: int
  top_commands:
    description:
      - How many commands to list by count and by time from the slow log.
    type: int
    default: 5
  fragmentation_min_used_mb:
    description:
      - The fragmentation ratio is judged only when at least this many mebibytes
        are in use; for a nearly empty server the allocator's own overhead makes
        the ratio meaningless.
    type: int
    default: 64
  ping_latency:
    description:
      - PING latency thresholds in milliseconds (the median of three PINGs).
    type: dict
    default: {warning: 50, critical: 200}
  memory_usage:
    description:
      - Thresholds for memory in use, in percent of C(maxmemory) (or of the host's
        memory when C(maxmemory) is 0).
    type: dict
    default: {warning: 80, critical: 90}
  fragmentation_ratio:
    description:
      - The normal and investigate ranges of the fragmentation ratio (resident
        memory over used memory). Above the range, memory is fragmented; below
        1, part of Redis is swapped out.
    type: dict
    default: {normal: [1.0, 1.5], investigate: [0.9, 2.0]}
  evicted_keys:
    description:
      - Thresholds for the keys evicted since the server started. The default
        warns on any eviction; a cache that evicts by design can set V({}).
    type: dict
    default: {warning: 0}
  hit_rate:
    description:
      - Lower thresholds for the hit rate in percent, over the lifetime and over
        the interval.
    type: dict
    default: {warning: 80, critical: 50, direction: below}
  clients_usage:
    description:
      - Thresholds for connected clients, in percent of C(maxclients).
    type: dict
    default: {warning: 80, critical: 90}
  blocked_clients:
    description:
      - Thresholds for clients blocked in C(BLPOP), C(XREAD) and similar commands.
        None by default, since queue consumers block by design.
    type: dict
    default: {}
  rejected_connections:
    description:
      - Thresholds for connections rejected at C(maxclients) since start.
    type: dict
    default: {warning: 0}
  rdb_save_age:
    description:
      - Thresholds in minutes for the time since the last RDB save, judged only
        when changes wait to be saved and snapshots are scheduled (C(save) is not
        empty).
    type: dict
    default: {warning: 120, critical: 1440}
  replica_last_io:
    description:
      - Thresholds in seconds since a replica last heard from its primary.
    type: dict
    default: {warning: 30, critical: 60}
  replication_lag:
    description:
      - Thresholds in bytes of replication lag. On a primary, the largest gap
        between its offset and a replica's; on a replica, the bytes received but
        not yet applied.
    type: dict
    default: {warning: 1048576, critical: 67108864}
  connected_replicas:
    description:
      - >-
        Thresholds for the number of replicas connected to a primary, usually a
        lower bound such as V({critical: 1, direction: below}). None by default.
      - Replicas that are connected but not V(online) are a warning in any case.
    type: dict
    default: {}
  slowlog_entries:
    description:
      - Thresholds for the number of new slow log entries.
    type: dict
    default: {warning: 20}
notes:
  - >-
    Thresholds take the forms C({warning, critical}) for upper bounds,
    C({warning, critical, direction: below}) for lower bounds and
    C({normal: [low, high], investigate: [low, high]}) for ranges. A value equal
    to a bound is inside it. V({}) judges nothing and only reports the value.
  - >-
    An override replaces the default thresholds of its option. When it leaves
    out C(direction), it keeps the direction of the default, so
    V(hit_rate: {warning: 90}) warns below 90%. O(fragmentation_ratio) takes
    ranges only.
  - The module opens one connection, with no retries, and the O(sample_seconds)
    wait is its only pause. PING, INFO, SLOWLOG and CONFIG GET do not touch the
    keyspace, so the hit rate is not changed by the check itself.
  - A monitoring user needs C(+ping +info +slowlog|get +config|get), for example
    C(ACL SETUSER monitor on >secret +ping +info +slowlog|get +config|get).
    Without C(+config|get) the snapshot schedule and the slow log's capacity are
    unknown, and those findings say so. With O(db) other than 0 it also needs
    C(+select).
  - The replica's offset lag is measured on the replica (bytes received but not
    applied, Redis 7 and later); the lag behind the primary's latest write is
    seen by checking the primary, whose replicas' offsets it reports.
  - Hit rates are computed from C(keyspace_hits) and C(keyspace_misses). A server
    with no key lookups has no hit rate; the finding is ok and says so.
seealso:
  - module: community.general.redis_info
"""

EXAMPLES = r"""
- name: Check that Redis answers and is healthy (the daily check)
  trm.maintenance.redis_stats:
    login_host: redis.internal.example.org
    login_password: "{{ vault_redis_password }}"
    tls: true
    ca_certs: /etc/pki/trm/internal-ca.pem
    checks: [memory, clients, persistence, replication]
  delegate_to: localhost
  run_once: true
  register: maintenance__redis

- name: Review the cache's performance over ten seconds (the weekly review)
  trm.maintenance.redis_stats:
    url: "rediss://monitor:{{ vault_redis_password }}@redis.example.org:6380/0"
    checks: [memory, hit_rate, clients, slowlog, keyspace]
    sample_seconds: 10
    slowlog_since_id: "{{ previous_slowlog_last_id | default(omit) }}"
    hit_rate:
      warning: 90
      critical: 70
      direction: below
    evicted_keys: {}
  delegate_to: localhost
  run_once: true

- name: Find the current primary through Sentinel and check its replicas
  trm.maintenance.redis_stats:
    sentinel_hosts:
      - sentinel-0.internal.example.org
      - sentinel-1.internal.example.org:26379
    service_name: trm-cache
    login_password: "{{ vault_redis_password }}"
    checks: [replication]
    connected_replicas:
      critical: 1
      direction: below
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
    Redis 10.0.3.7:6379 WARNING (1 warning, 11 ok): Hit rate over 5.0 s is 71.4%,
    below the warning threshold of 80%
checks:
  description:
    - One finding per check, PING first, then the groups in the order of
      O(checks).
    - Names are V(ping); V(memory_usage), V(fragmentation), V(evicted_keys);
      V(hit_rate_lifetime), V(hit_rate_interval); V(clients_usage),
      V(blocked_clients), V(rejected_connections); V(rdb_save_status),
      V(rdb_save_age), V(aof_write_status); V(master_link), V(master_last_io),
      V(replication_lag) on a replica or V(replicas), V(replication_lag) on a
      primary; V(slowlog), V(slowlog_lost); V(keyspace).
    - When the server cannot be reached, the only finding is V(ping). When C(INFO)
      cannot be read, every finding that needs it is V(unknown) with the reason.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The finding's name.
      type: str
      sample: hit_rate_interval
    status:
      description: V(ok), V(warning), V(critical) or V(unknown).
      type: str
      sample: warning
    message:
      description: What was found, in one sentence.
      type: str
      sample: Hit rate over 5.0 s is 71.4%, below the warning threshold of 80%
    value:
      description: The measured value; null when nothing could be measured.
      type: raw
      sample: 71.43
    unit:
      description: The unit of RV(checks[].value) (V(%), V(ms), V(s), V(B)), or null.
      type: str
      sample: "%"
    warning:
      description: The warning bound, or null.
      type: float
      sample: 80.0
    critical:
      description: The critical bound, or null.
      type: float
      sample: 50.0
    threshold:
      description: The thresholds in words, or null.
      type: str
      sample: warning below 80%, critical below 50%
    action:
      description: What to do next; null when the finding is ok.
      type: str
      sample: >-
        Review the cache keys and TTLs: misses mean the application asks for keys
        that expired, were evicted or were never written
    host:
      description: On V(ping), the server connected to; null when a Sentinel named none.
      type: str
      sample: 10.0.3.7
    port:
      description: On V(ping), the server's port.
      type: int
      sample: 6379
    url:
      description: On V(ping), the O(url) with its password masked, or null.
      type: str
      sample: "rediss://monitor:********@redis.example.org:6380/0"
    role:
      description: On V(ping), V(primary) or V(replica).
      type: str
      sample: primary
    redis_version:
      description: On V(ping), the server's version.
      type: str
      sample: 7.0.15
    error:
      description:
        - On V(ping) when the server could not be reached, what went wrong.
        - One of V(connection_refused), V(timeout), V(dns), V(tls), V(auth),
          V(permission), V(loading), V(sentinel), V(connection), V(response).
      type: str
      sample: timeout
    elapsed_seconds:
      description:
        - On V(ping) when the server could not be reached, the seconds spent
          trying, from the first connection attempt to the failure. A server
          that does not answer is given up after about O(timeout) seconds.
      type: float
      sample: 5.004
    keyspace_hits:
      description:
        - On the hit rate findings, the hits counted (over the interval for
          V(hit_rate_interval)).
      type: int
      sample: 500
    keyspace_misses:
      description: On the hit rate findings, the misses counted.
      type: int
      sample: 200
    top_by_count:
      description:
        - On V(slowlog), the commands with most new entries, each with
          C(command) (the name, and the subcommand of commands such as
          C(CONFIG GET); never the arguments), C(count), C(total_ms) and C(max_ms).
      type: list
      elements: dict
      sample: [{command: KEYS, count: 12, total_ms: 340.5, max_ms: 61.2}]
    top_by_duration:
      description: On V(slowlog), the same rows ordered by total time.
      type: list
      elements: dict
      sample: [{command: DEBUG SLEEP, count: 2, total_ms: 400.1, max_ms: 200.1}]
    replicas:
      description:
        - On V(replicas), each replica with C(address), C(state), C(offset),
          C(offset_lag_bytes) and C(lag_seconds).
      type: list
      elements: dict
      sample:
        - address: "10.0.3.8:6379"
          state: online
          offset: 1800
          offset_lag_bytes: 0
          lag_seconds: 0
    databases:
      description: On V(keyspace), C(keys), C(expires) and C(avg_ttl) per database.
      type: dict
      sample: {db0: {keys: 1200, expires: 1150, avg_ttl: 84000}}
metrics:
  description:
    - Numbers for reports and trends. Every key below is present; it is null when
      it was not measured (its group was not asked for, or the server did not
      say). Per database, C(db<N>_keys) and C(db<N>_expires) are added.
    - C(hit_rate_pct) is the interval's hit rate when one was sampled, else the
      lifetime's. C(slowlog_last_id) is the value to pass as O(slowlog_since_id)
      next time.
  returned: always
  type: dict
  sample:
    up: 1
    connect_ms: 1.2
    ping_ms: 0.21
    uptime_seconds: 864000
    used_memory_bytes: 104857600
    maxmemory_bytes: 268435456
    total_system_memory_bytes: 8589934592
    memory_usage_pct: 39.06
    mem_fragmentation_ratio: 1.12
    evicted_keys: 0
    keyspace_hits: 950000
    keyspace_misses: 50000
    hit_rate_pct: 71.43
    hit_rate_lifetime_pct: 95.0
    hit_rate_interval_pct: 71.43
    sample_seconds: 5.001
    ops_per_second: 142.2
    evicted_keys_interval: 0
    connected_clients: 42
    maxclients: 10000
    blocked_clients: 0
    rejected_connections: 0
    rdb_last_save_age_seconds: 310
    rdb_changes_since_last_save: 12
    connected_replicas: 1
    replication_lag_bytes: 0
    master_last_io_seconds: null
    slowlog_length: 14
    slowlog_new_entries: 3
    slowlog_last_id: 211
    slowlog_lost_entries: 0
    keys_total: 1200
    expires_total: 1150
    db0_keys: 1200
    db0_expires: 1150
"""

# Ansible's layout puts the documentation before the imports.
from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.trm.maintenance.plugins.module_utils.redis_client import (
    HAS_REDIS,
    REDIS_ARGUMENT_SPEC,
    REDIS_IMPORT_ERROR,
    REDIS_MUTUALLY_EXCLUSIVE,
    REDIS_REQUIRED_TOGETHER,
    url_secrets,
)
from ansible_collections.trm.maintenance.plugins.module_utils.redis_findings import (
    GROUPS,
)
from ansible_collections.trm.maintenance.plugins.module_utils.redis_stats import (
    DEFAULT_SAMPLE_SECONDS,
    DEFAULT_THRESHOLDS,
    run_redis_stats,
)
from ansible_collections.trm.maintenance.plugins.module_utils.runner import (
    FAIL_ON_SPEC,
    run_check,
)

ARGUMENT_SPEC = {
    **REDIS_ARGUMENT_SPEC,
    "checks": {
        "type": "list",
        "elements": "str",
        "choices": list(GROUPS),
        "default": list(GROUPS),
    },
    "sample_seconds": {"type": "float", "default": DEFAULT_SAMPLE_SECONDS},
    "slowlog_since_id": {"type": "int"},
    "top_commands": {"type": "int", "default": 5},
    "fragmentation_min_used_mb": {"type": "int", "default": 64},
    # Threshold names such as evicted_keys hold no secret, whatever their words.
    **{
        name: {"type": "dict", "default": dict(default), "no_log": False}
        for name, default in DEFAULT_THRESHOLDS.items()
    },
    **FAIL_ON_SPEC,
}


def main() -> None:
    """Check the Redis server and exit with the check result."""
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=REDIS_MUTUALLY_EXCLUSIVE,
        required_together=REDIS_REQUIRED_TOGETHER,
        supports_check_mode=True,
    )
    if not HAS_REDIS:
        module.fail_json(
            msg=missing_required_lib("redis"), exception=REDIS_IMPORT_ERROR
        )
    # A password written into the URL is not covered by no_log; mask it too.
    module.no_log_values.update(url_secrets(module.params.get("url")))
    run_check(module, run_redis_stats)


if __name__ == "__main__":
    main()
