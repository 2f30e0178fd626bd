#!/usr/bin/python
# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: s3_backup_verify
short_description: Verify mongodump backups in S3, from their listing down to a restore
version_added: 1.0.0
author: trm.maintenance contributors (@trm-platform)
description:
  - Verifies one day's mongodump backup in an S3 bucket at the levels chosen in
    O(levels), from cheap to thorough.
  - Level V(1), existence and age. The backup's prefix holds objects and its newest
    object is younger than O(max_age). The age is returned as the backup's recovery
    point (RPO).
  - Level V(2), size. The total size is at least O(min_size_bytes) and within
    O(size_band) of the median of the previous O(history) daily backups; the object
    count is not below theirs, and objects that the newest previous backup had and
    this one lacks are named.
  - Level V(3), integrity. Every object is downloaded once and re-hashed as it
    streams, against the checksum S3 stored for it (SHA-256, SHA-1 or CRC32, whole
    or per part) or, without one, against the MD5 ETag of a single-part or multipart
    upload. Every gzip stream is read to its end marker, which checks its CRC.
  - Level V(4), contents. Every BSON file (and every mongodump archive) is decoded
    document by document, giving document counts per collection; each collection
    must have its metadata, and an archive's blocks must match its header. With
    O(live_uri), the counts are compared with the live database's within
    O(count_tolerance).
  - Level V(5), restore test. The backup is restored into the scratch database
    O(restore_database) on O(restore_uri) as it streams (documents in batches, then
    the indexes the metadata lists), counted and compared with the backup, and the
    scratch database is dropped before and after. The time to restore data and
    indexes is returned as the measured recovery time (RTO). Level V(5) implies
    level V(4).
  - The directory layout (C(<db>/<collection>.bson[.gz]) with
    C(.metadata.json[.gz])) and mongodump's single-file C(--archive) format,
    gzipped or not, are both read. Objects are streamed, never held whole in memory.
  - Every problem names the object it was found in. Wrong credentials, a missing
    bucket and an unreachable endpoint are findings, not task failures.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - trm.maintenance.check
attributes:
  check_mode:
    support: full
    details:
      - Levels V(1) to V(4) only read and run the same in check mode.
      - In check mode, level V(5) plans the restore (what would be dropped and
        restored, and where) and writes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  bucket:
    description:
      - The bucket that holds the backups.
    type: str
    required: true
  prefix:
    description:
      - Where one day's backup is, as a C(strftime) template formatted with the
        backup's date; V(mongodb/%Y%m%d/) is the folder C(mongodb/20250309/).
      - End it with C(/) for a folder. Without a trailing C(/), it is matched as
        the beginning of key names, which suits a single archive per day such as
        V(mongodb/trm-%Y%m%d.archive.gz).
      - A template without C(%) names the same objects every day; earlier backups
        are then not compared (O(history) and O(deep_ages) do nothing).
    type: str
    default: mongodb/%Y%m%d/
  date:
    description:
      - The backup to verify, by its date in UTC.
      - V(today), V(yesterday), a date such as V(2025-03-09) or V(20250309), or
        V(latest) for the newest backup of the last O(history) days.
    type: str
    default: today
  levels:
    description:
      - The levels to verify; see the description. The backup's existence is always
        reported.
    type: list
    elements: int
    choices: [1, 2, 3, 4, 5]
    default: [1, 2, 3]
  endpoint_url:
    description:
      - The S3 endpoint, for S3-compatible servers or private endpoints. Path-style
        addressing is used with it.
      - When not set, boto3 finds the endpoint (including C(AWS_ENDPOINT_URL)).
    type: str
    aliases: [aws_endpoint_url]
  region:
    description:
      - The bucket's region. When not set, boto3's configuration decides
        (C(AWS_REGION), the profile), and V(us-east-1) is used with O(endpoint_url).
    type: str
    aliases: [aws_region]
  access_key:
    description:
      - The AWS access key ID. When neither it nor O(profile) is set, boto3's usual
        chain applies (C(AWS_ACCESS_KEY_ID), the shared files, instance roles).
    type: str
    aliases: [aws_access_key_id]
  secret_key:
    description:
      - The AWS secret access key.
    type: str
    aliases: [aws_secret_access_key]
  session_token:
    description:
      - The AWS session token, for temporary credentials.
    type: str
    aliases: [aws_session_token]
  profile:
    description:
      - A profile of the AWS configuration files. Cannot be combined with
        O(access_key).
    type: str
    aliases: [aws_profile]
  validate_certs:
    description:
      - Verify the endpoint's TLS certificate.
    type: bool
    default: true
  ca_bundle:
    description:
      - A PEM file of CA certificates to trust for the endpoint.
    type: path
    aliases: [aws_ca_bundle]
  timeout:
    description:
      - Seconds to wait for a connection and for each read, on S3 and on MongoDB.
        It must be above V(0).
    type: float
    default: 30.0
  retries:
    description:
      - How often a failed S3 request is retried; V(0) or more.
    type: int
    default: 2
  max_workers:
    description:
      - How many objects are read at the same time at levels V(3) to V(5).
    type: int
    default: 4
  max_age:
    description:
      - The oldest the backup's newest object may be (level V(1)), as seconds or a
        number with V(s), V(m), V(h), V(d) or V(w), such as V(26h). Older is critical.
      - V(0) reports the age without judging it.
    type: str
    default: 26h
  min_size_bytes:
    description:
      - The smallest total size a backup may have (level V(2)); smaller is critical.
    type: int
    default: 1000000
  history:
    description:
      - How many days before the backup's date to look for previous backups, for
        the size band and object count (level V(2)) and for O(date=latest).
    type: int
    default: 7
  size_band:
    description:
      - The backup's size as a percentage of the median size of the previous
        backups, judged by two ranges. Inside C(normal) is ok, outside it but inside
        C(investigate) is a warning, outside C(investigate) is critical.
    type: dict
    default: {normal: [80, 125], investigate: [50, 200]}
  deep_ages:
    description:
      - Ages in days of earlier backups that also get levels V(3) and V(4) (when
        chosen) in every run. With V([7]), each day's backup is read again when it
        is a week old, so every backup of the retention is verified twice.
      - Their findings carry the backup's date, such as C(checksums_20250302).
    type: list
    elements: int
    default: []
  live_uri:
    description:
      - A MongoDB URI of the live database. With level V(4), its document counts
        are compared with the backup's.
      - A password in the URI is masked in the result and the logs.
    type: str
  live_database:
    description:
      - The live database to count in; by default the database each collection was
        dumped from.
    type: str
  count_tolerance:
    description:
      - The largest difference, in percent, between a collection's count in the
        backup and in the live database, as C(warning) and C(critical) bounds.
    type: dict
    default: {warning: 5, critical: 20}
  restore_uri:
    description:
      - The MongoDB URI of the server to restore into at level V(5).
      - A password in the URI is masked in the result and the logs.
    type: str
    aliases: [uri]
  restore_database:
    description:
      - The scratch database to restore into at level V(5). It must match a pattern
        of O(restore_allowed_databases), must not be a database of the backup
        itself, and must not be V(admin), V(local) or V(config). It is dropped before
        and after the restore.
      - The databases of a directory backup are its folder names; those of an
        C(--archive) backup are read from the archive's header (streamed, in check
        mode too) before anything is dropped.
    type: str
  restore_allowed_databases:
    description:
      - Shell-style patterns that O(restore_database) must match.
    type: list
    elements: str
    default: ['*_restore_test']
  maintenance_windows:
    description:
      - The maintenance windows the restore test may run in, in the collection's
        shared window model (as M(trm.maintenance.maintenance_window) takes them).
        Outside all of them, level V(5) does not run and is reported as V(unknown)
        with the reason and the next opening.
      - Each window is a mapping. C(schedule) is V(weekly), V(monthly) or
        V(quarterly); C(weekday), C(start) (V("HH:MM"), quoted) and C(duration)
        (such as V(2h)) say when it opens and for how long; C(week) (V(1) to V(5)
        or V(last)) picks the nth such weekday of the month, C(months) the months
        of a quarterly window; C(timezone) is an IANA name; C(name) names it.
        Keys not given take the guide's values for the schedule.
      - When empty, the restore runs whenever it is asked for.
    type: list
    elements: raw
    default: []
  maintenance_timezone:
    description:
      - The IANA time zone of the windows of O(maintenance_windows) that name none.
    type: str
    default: UTC
  allow_outside_window:
    description:
      - Run the restore test even outside O(maintenance_windows). The result says
        that the override let it run.
    type: bool
    default: false
  window_decision:
    description:
      - The decision of a maintenance-window check that ran before this task, such
        as the C(maintenance_guard) role's, which replaces this module's own window
        gate. With C(open=false) the restore is refused with C(reason).
      - The result's C(restore_window) finding and C(restore.window) repeat who
        decided and why, so the report says why the restore ran.
      - Cannot be combined with O(maintenance_windows) or O(allow_outside_window).
    type: dict
    suboptions:
      by:
        description:
          - Who decided, such as V(maintenance_guard).
        type: str
        default: an earlier window check
      open:
        description:
          - Whether the check allows disruptive work now.
        type: bool
        required: true
      reason:
        description:
          - The check's reason, such as the window that is open.
        type: str
        default: ""
  max_restore_time:
    description:
      - The recovery time objective for the restore test, as a duration like
        O(max_age). A longer restore is critical. When not set, the time is
        reported without a judgement.
    type: str
notes:
  - The backup's age is the age of its newest object in S3, the moment the upload
    finished; a backup that took long to upload looks younger than its data.
  - S3 gives no checksum of objects encrypted with KMS or customer keys other than
    a stored checksum; without one, such an object is reported as not verifiable.
    CRC32C and CRC64NVME checksums need the C(awscrt) package.
  - A multipart checksum or ETag is re-computed with the part size that S3 reports
    for the first part, assuming equal parts, as the AWS tools upload them. A SHA
    checksum of a multipart upload is taken as composite when the server shows it
    without its C(-<parts>) suffix.
  - The CRC-64 that mongodump writes at the end of each collection in an archive is
    not re-computed; the gzip CRC and the S3 checksum cover the archive's bytes.
  - "mongodump's C(.metadata.json) holds no document count: level V(4) checks that
    each collection has its metadata and that an archive's blocks hold the bytes
    its header declares. Counts are compared with the live database and, at level
    V(5), with the restored collections."
  - The restore creates collections with the options the metadata records and the
    indexes it lists; users, roles and the C(admin), C(config) and C(local)
    databases are never restored.
  - A window check run before the task (O(window_decision)) is trusted as given;
    the module does not look at the clock again.
  - The result sets C(changed=true) when a restore ran or, in check mode, would run.
requirements:
  - boto3
  - pymongo (levels 4 and 5, and O(live_uri))
seealso:
  - module: amazon.aws.s3_object_info
  - module: community.mongodb.mongodb_info
"""

EXAMPLES = r"""
- name: Verify this morning's backup every evening (the guide's daily check)
  trm.maintenance.s3_backup_verify:
    bucket: trm-backups
    prefix: mongodb/%Y%m%d/
    levels: [1, 2, 3]
    min_size_bytes: 1000000
    max_age: 26h
    deep_ages: [7]
  delegate_to: localhost
  run_once: true
  register: backup_checks__verify

- name: Restore the latest backup into a scratch database (monthly)
  trm.maintenance.s3_backup_verify:
    bucket: trm-backups
    date: latest
    levels: [4, 5]
    live_uri: "{{ vault_mongodb_uri }}"
    restore_uri: mongodb://restore-test.internal.example.org:27017/
    restore_database: trm_restore_test
    maintenance_windows:
      - name: monthly
        schedule: monthly
        weekday: sunday
        week: 1
        start: "02:00"
        duration: 4h
        timezone: Europe/London
    max_restore_time: 4h
  delegate_to: localhost
  run_once: true

- name: Verify a MinIO copy of an archive-format backup with a profile
  trm.maintenance.s3_backup_verify:
    bucket: offsite-backups
    prefix: trm/trm-%Y%m%d.archive.gz
    endpoint_url: https://minio.internal.example.org:9000
    ca_bundle: /etc/pki/trm/internal-ca.pem
    profile: offsite
    date: yesterday
    levels: [1, 3, 4]
    max_age: 2d
    fail_on: critical
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
changed:
  description: True when a restore ran, or in check mode would run.
  returned: always
  type: bool
  sample: false
status:
  description: The worst status of the findings.
  returned: always
  type: str
  sample: critical
summary:
  description: One line for a person, with the worst findings.
  returned: always
  type: str
  sample: >-
    S3 backup s3://trm-backups/mongodb/20250309/ CRITICAL (1 critical, 6 ok):
    1 of 12 gzip streams are damaged: trm/referrals.bson.gz: the gzip stream ends
    after 61,440 compressed bytes without its end marker: the object is truncated
checks:
  description:
    - The findings, by level. C(backup_exists) always; C(backup_age) (level 1);
      C(backup_size), C(backup_size_trend), C(backup_objects) (level 2);
      C(checksums), C(gzip_streams) (level 3); C(documents), C(metadata),
      C(live_counts) (level 4); C(restore_window), C(restore), C(restore_indexes),
      C(restore_time), C(restore_cleanup) (level 5).
    - C(restore_window) says why the restore was allowed to run (the open window,
      O(allow_outside_window), or O(window_decision)).
    - Findings about an earlier backup of O(deep_ages) end in its date, such as
      C(checksums_20250302).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: What was checked.
      type: str
      sample: gzip_streams
    status:
      description: V(ok), V(warning), V(critical) or V(unknown).
      type: str
      sample: critical
    message:
      description: What was found, naming the objects concerned.
      type: str
      sample: "1 of 12 gzip streams are damaged: trm/referrals.bson.gz: ..."
    value:
      description: The figure judged (a count, bytes, a percentage, hours, seconds).
      type: raw
      sample: 1
    unit:
      description: The unit of RV(checks[].value), when it has one.
      type: str
      sample: h
    warning:
      description: The warning threshold, when one applies.
      type: float
      sample: 5.0
    critical:
      description: The critical threshold, when one applies.
      type: float
      sample: 26.0
    threshold:
      description: The thresholds in words.
      type: str
      sample: critical above 26 h
    action:
      description: What to do next; null when the finding is ok.
      type: str
      sample: Check the backup job's last run (its logs and exit status) ...
    mismatched:
      description: For C(checksums), the objects whose bytes differ, with the
        stored and the computed value.
      type: list
      elements: dict
      sample: [{"object": "trm/jobs.bson.gz", "kind": "stored SHA256 checksum",
                "stored": "mPiJ...14I=", "computed": "F/Fl...q9o="}]
    broken:
      description: For C(gzip_streams) and C(documents), the damaged objects and
        what is wrong with each.
      type: list
      elements: dict
      sample: [{"object": "trm/referrals.bson.gz", "error": "the gzip stream ends
                ..."}]
    missing_objects:
      description: For C(backup_objects), objects of the newest previous backup
        that this one lacks.
      type: list
      elements: str
      sample: ["trm/payments.bson.gz"]
    phases:
      description: For C(restore_time), the seconds of each restore phase.
      type: dict
      sample: {"drop_before": 0.01, "metadata": 0.02, "prepare": 0.0, "data": 3.1,
               "indexes": 0.06, "verify": 0.7, "drop_after": 0.02}
metrics:
  description:
    - Numbers for reports and trends. C(backup_objects), C(backup_bytes);
      C(backup_age_seconds) and C(rpo_seconds) (level 1); C(previous_backups)
      (level 2); C(objects_read), C(bytes_read), C(read_seconds) (levels 3 to 5);
      C(documents_total) and C(documents_<database>_<collection>) (level 4);
      C(rto_seconds), C(restored_documents), C(restored_indexes) (level 5).
  returned: always
  type: dict
  sample:
    backup_objects: 12
    backup_bytes: 1988103
    backup_age_seconds: 63012.4
    rpo_seconds: 63012.4
    documents_total: 23267
    documents_trm_users: 8126
    rto_seconds: 3.17
backup:
  description: The backup that was verified.
  returned: always
  type: dict
  contains:
    bucket:
      description: The bucket.
      type: str
      sample: trm-backups
    levels:
      description: The levels verified (level 5 adds level 4).
      type: list
      elements: int
      sample: [1, 2, 3]
    prefix:
      description: The backup's prefix.
      type: str
      sample: mongodb/20250309/
    url:
      description: The backup's C(s3://) URL.
      type: str
      sample: s3://trm-backups/mongodb/20250309/
    date:
      description: The backup's date.
      type: str
      sample: "2025-03-09"
    objects:
      description: How many objects it has.
      type: int
      sample: 12
    bytes:
      description: Its total size.
      type: int
      sample: 1988103
    newest:
      description: When its newest object was written.
      type: str
      sample: "2025-03-09T02:14:31+00:00"
    previous:
      description: The previous backups compared with (level 2).
      type: list
      elements: dict
      sample: [{"date": "2025-03-08", "objects": 12, "bytes": 1961234}]
  sample: {"bucket": "trm-backups", "prefix": "mongodb/20250309/", "objects": 12}
collections:
  description:
    - Per collection (C(database.collection)), what levels 4 and 5 found.
      C(documents) and C(bytes) decoded, C(metadata) present, C(indexes) listed in
      it, C(type), C(data) (a data file or archive block exists), C(declared_bytes)
      (archives), C(live_documents) (with O(live_uri)) and C(restored_documents)
      (level 5).
  returned: always
  type: dict
  sample: {"trm.users": {"documents": 8126, "bytes": 1502331, "metadata": true,
           "indexes": 3, "type": "collection", "data": true,
           "declared_bytes": null, "live_documents": 8198}}
restore:
  description:
    - The restore test (level 5); null when it was not asked for.
    - C(status) is V(done), V(failed), V(planned) (check mode) or V(refused)
      (outside the maintenance windows, or an archive whose header cannot be read).
    - C(window) says why the restore ran or was planned. C(decided_by) is
      V(maintenance_windows), V(allow_outside_window), the C(by) of
      O(window_decision), or null when no window applies; C(reason) says it in
      words.
  returned: always
  type: dict
  sample: {"status": "done", "database": "trm_restore_test",
           "server": "mongodb://restore-test:27017/", "rto_seconds": 3.17,
           "phases": {"data": 3.1, "indexes": 0.06}, "dropped": true,
           "error": null, "window": {"allowed": true,
           "decided_by": "maintenance_guard", "reason": "maintenance_guard allowed
           the restore: Inside the monthly window (Sun 2025-03-02 02:00-06:00 UTC),
           3 h 30 min left"}}
verified_earlier:
  description: The dates of the earlier backups verified for O(deep_ages).
  returned: when O(deep_ages) found backups
  type: list
  elements: str
  sample: ["2025-03-02"]
"""

# Ansible's layout puts the documentation before the imports.
from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trm.maintenance.plugins.module_utils.backup import (
    DEFAULT_ALLOWED_DATABASES,
    DEFAULT_COUNT_TOLERANCE,
    DEFAULT_SIZE_BAND,
    run_s3_backup_verify,
)
from ansible_collections.trm.maintenance.plugins.module_utils.http import (
    hide_secrets,
    url_secrets,
)
from ansible_collections.trm.maintenance.plugins.module_utils.runner import (
    FAIL_ON_SPEC,
    run_check,
)

ARGUMENT_SPEC = {
    "bucket": {"type": "str", "required": True},
    "prefix": {"type": "str", "default": "mongodb/%Y%m%d/"},
    "date": {"type": "str", "default": "today"},
    "levels": {
        "type": "list",
        "elements": "int",
        "choices": [1, 2, 3, 4, 5],
        "default": [1, 2, 3],
    },
    "endpoint_url": {"type": "str", "aliases": ["aws_endpoint_url"]},
    "region": {"type": "str", "aliases": ["aws_region"]},
    "access_key": {"type": "str", "aliases": ["aws_access_key_id"], "no_log": False},
    "secret_key": {"type": "str", "aliases": ["aws_secret_access_key"], "no_log": True},
    "session_token": {"type": "str", "aliases": ["aws_session_token"], "no_log": True},
    "profile": {"type": "str", "aliases": ["aws_profile"]},
    "validate_certs": {"type": "bool", "default": True},
    "ca_bundle": {"type": "path", "aliases": ["aws_ca_bundle"]},
    "timeout": {"type": "float", "default": 30.0},
    "retries": {"type": "int", "default": 2},
    "max_workers": {"type": "int", "default": 4},
    "max_age": {"type": "str", "default": "26h"},
    "min_size_bytes": {"type": "int", "default": 1000000},
    "history": {"type": "int", "default": 7},
    "size_band": {"type": "dict", "default": dict(DEFAULT_SIZE_BAND)},
    "deep_ages": {"type": "list", "elements": "int", "default": []},
    "live_uri": {"type": "str"},
    "live_database": {"type": "str"},
    "count_tolerance": {"type": "dict", "default": dict(DEFAULT_COUNT_TOLERANCE)},
    "restore_uri": {"type": "str", "aliases": ["uri"]},
    "restore_database": {"type": "str"},
    "restore_allowed_databases": {
        "type": "list",
        "elements": "str",
        "default": list(DEFAULT_ALLOWED_DATABASES),
    },
    "maintenance_windows": {"type": "list", "elements": "raw", "default": []},
    "maintenance_timezone": {"type": "str", "default": "UTC"},
    "allow_outside_window": {"type": "bool", "default": False},
    "window_decision": {
        "type": "dict",
        "options": {
            "by": {"type": "str", "default": "an earlier window check"},
            "open": {"type": "bool", "required": True},
            "reason": {"type": "str", "default": ""},
        },
    },
    "max_restore_time": {"type": "str"},
    **FAIL_ON_SPEC,
}


def main() -> None:
    """Verify the backup and exit with the check result."""
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=[["profile", "access_key"]],
        supports_check_mode=True,
    )
    uris = [module.params["restore_uri"], module.params["live_uri"]]
    hide_secrets(module, [s for uri in uris if uri for s in url_secrets(uri)])
    run_check(
        module,
        lambda params: run_s3_backup_verify(params, check_mode=module.check_mode),
    )


if __name__ == "__main__":
    main()
