#!/usr/bin/python
# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_log_scan
short_description: Count named patterns in pod logs in one pass, with thresholds and coverage
version_added: 1.0.0
author: trm.maintenance contributors (@trm-platform)
description:
  - Reads the log of every container of the selected pods once, over a window
    (O(since), 24 hours by default), and counts the lines that match each pattern
    group of O(patterns) in that one pass, whatever the number of groups.
  - Each group's total over all containers is judged against the group's
    thresholds, one finding per group.
  - Lists the commonest lines of the O(top_groups) groups, normalised so that ids,
    addresses and numbers do not split them, each with an example line whose
    secrets are masked.
  - Reports coverage, the earliest line actually seen in each container against
    the whole window asked for. A log that was rotated, or a container that
    restarted, shows as a shorter coverage rather than as a quiet day.
  - A pod that started after the window began (a rollout or a drill replaced the
    pods) covers only part of it, since the earlier lines went with the pods it
    replaced; the coverage finding is then a warning that names those pods and
    the hours their logs cover.
  - An unreachable API server, or logs that cannot be read, are V(unknown)
    findings; the task fails only for options that cannot be right, such as an
    invalid regular expression or a workload that does not exist.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - trm.maintenance.check
  - trm.maintenance.k8s
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  label_selectors:
    description:
      - Select the pods by labels instead of by workload, as C(key=value),
        C(key!=value), C(key in (a,b)) or C(key) terms; all must hold.
      - Exactly one of O(name) and O(label_selectors) is required.
    type: list
    elements: str
  container:
    description:
      - Read only this container of each pod. By default every container and init
        container of each pod is read.
    type: str
  previous:
    description:
      - Also read the log of each container's previous instance, when it restarted,
        so that the lines before a restart count too.
    type: bool
    default: false
  since:
    description:
      - The window, as a duration back from now (V(24h), V(90m), V(7d), V(1d12h),
        or seconds) or as an ISO 8601 date and time.
    type: str
    default: 24h
  patterns:
    description:
      - The pattern groups to count. Each line counts at most once per group.
      - Expressions are Python regular expressions, matched anywhere in the line
        (C(re.search)) without the timestamp in front.
      - When not set, the guide's questions are asked, without thresholds, as the
        groups C(errors) (C(ERROR), C(FATAL) or C(CRITICAL) as a word, or a JSON
        C(level) of C(error) or C(fatal)), C(payment_failures), C(failed_logins),
        C(suspicious_activity), C(rate_limiting) and C(cron_failures).
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - The group's name in snake_case; it names the finding and the metric.
        type: str
        required: true
      regex:
        description:
          - A regular expression, or a list of them of which any may match.
        type: raw
        required: true
      label:
        description:
          - What is counted, for messages, for example V(Payment failure count).
        type: str
      ignore_case:
        description:
          - Match regardless of case.
        type: bool
        default: false
      warning:
        description:
          - The warning bound of the count.
        type: float
      critical:
        description:
          - The critical bound of the count.
        type: float
      direction:
        description:
          - Whether the bounds are maxima (V(above), the default) or minima
            (V(below)), for lines that must appear, such as a scheduled job's
            completion.
        type: str
        choices: [above, below]
      action:
        description:
          - What to do when the group's finding is not ok.
        type: str
  top_groups:
    description:
      - The groups whose lines make the top patterns list.
    type: list
    elements: str
    default: [errors]
  top_count:
    description:
      - How many top patterns to return; V(0) returns none.
    type: int
    default: 10
  redact:
    description:
      - Values to mask in the example lines and the top patterns, besides the
        secrets recognised by their shape. Those are the values of passwords,
        secrets, tokens, API keys, session ids, authorization headers and cookies,
        whether written as C(key=value), as C(key) and a colon, as JSON or as a
        Python mapping, with the keys quoted or not; bearer tokens; JWTs;
        passwords in URLs; and AWS access key ids.
    type: list
    elements: str
    default: []
  coverage:
    description:
      - Thresholds on the shortest coverage in percent, as lower bounds.
      - A first line within five minutes of the window's start (or the pod's) is
        full coverage.
    type: dict
    default: {warning: 95, direction: below}
  max_workers:
    description:
      - How many container logs are read at the same time.
    type: int
    default: 4
notes:
  - Each log is requested once, with timestamps, from a minute before the window;
    lines before the window are then dropped here, so that a clock difference
    between the controller and the nodes loses nothing.
  - Logs come from the kubelet through the API server, which serves only the
    current log file of a container (and of its previous instance). Older, rotated
    files are not served; the coverage says so.
  - Lines are counted by substring search for the strings that an expression
    needs, then tested with the expression; an expression without such strings
    (for example C(\d{3}ms)) is tested on every line, which is slower.
seealso:
  - module: trm.maintenance.k8s_failover
  - module: kubernetes.core.k8s_log
"""

EXAMPLES = r"""
- name: Review the last day of the application's logs
  trm.maintenance.k8s_log_scan:
    kubeconfig: ~/.kube/trm-production
    namespace: trm
    name: trm-app
    patterns:
      - name: errors
        regex: '\b(?:ERROR|FATAL)\b'
        warning: 250
        critical: 1000
      - name: payment_failures
        regex: payment failed
        ignore_case: true
        warning: 100
      - name: cron_daily_digest
        label: Daily digest completions
        regex: CRON daily-digest completed
        critical: 1
        direction: below
  delegate_to: localhost
  run_once: true
  register: k8s_checks__log_review

- name: Look at a week of security events, including crashed containers
  trm.maintenance.k8s_log_scan:
    namespace: trm
    label_selectors:
      - app=trm-app
    since: 7d
    previous: true
    patterns:
      - name: failed_logins
        regex: [failed login, login failed]
        ignore_case: true
        warning: 100
    top_groups: [failed_logins]
    redact:
      - "{{ vault_internal_hostname }}"
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
    Log scan WARNING (1 warning, 7 ok): Log coverage of the 24 h window (shortest:
    trm-app-7d9c-x2x4q/app, first line 2024-05-05T14:02:11Z) is 80%, below the
    warning threshold of 95%
checks:
  description:
    - One finding per pattern group (named as the group), then C(coverage) and
      C(logs_read); C(api) or C(pods) instead when the API could not be reached or
      no pod matched.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The group's name, V(coverage), V(logs_read), V(api) or V(pods).
      type: str
      sample: errors
    status:
      description: V(ok), V(warning), V(critical) or V(unknown).
      type: str
      sample: ok
    message:
      description: What was found, in one sentence.
      type: str
      sample: Error count over 24 h is 126 (warning above 250, critical above 1000)
    value:
      description: The count, the coverage in percent, or the number of logs read.
      type: float
      sample: 126
    unit:
      description: V(%) for the coverage; null for counts.
      type: str
      sample: "%"
    warning:
      description: The warning bound.
      type: float
      sample: 250
    critical:
      description: The critical bound.
      type: float
      sample: 1000
    threshold:
      description: The bounds in words.
      type: str
      sample: warning above 250, critical above 1000
    action:
      description: What to do next; null when ok.
      type: str
      sample: Review the errors lines (the top patterns show the commonest)
    per_container:
      description: For a group, its count in each C(pod/container) that had any.
      type: dict
      sample: {trm-app-7d9c-x2x4q/app: 42}
    shortest:
      description: For the coverage, the C(pod/container) with the shortest log.
      type: str
      sample: trm-app-7d9c-x2x4q/app
    earliest:
      description: For the coverage, the time of that container's first line.
      type: str
      sample: "2024-05-05T14:02:11Z"
    expected_start:
      description: For the coverage, when its log should have started (the window's start).
      type: str
      sample: "2024-05-05T09:00:00Z"
    younger_pods:
      description:
        - For the coverage, the pods that started after the window began and so
          cover less of it than the warning threshold asks for.
      type: list
      elements: str
      sample: [trm-app-7d9c-k8m2p]
metrics:
  description:
    - Numbers for reports and trends, each group's count under its name, and
      C(pods), C(containers), C(lines), C(bytes), C(coverage_pct) and
      C(scan_seconds).
  returned: always
  type: dict
  sample:
    errors: 126
    payment_failures: 78
    pods: 3
    containers: 3
    lines: 9003
    bytes: 1093211
    coverage_pct: 100.0
    scan_seconds: 0.41
window:
  description: The window scanned.
  returned: always
  type: dict
  contains:
    start:
      description: Its start, RFC 3339 UTC.
      type: str
      sample: "2024-05-05T09:00:00Z"
    end:
      description: Its end, when the scan began.
      type: str
      sample: "2024-05-06T09:00:00Z"
    seconds:
      description: Its length in seconds.
      type: float
      sample: 86400
    text:
      description: Its length in words.
      type: str
      sample: 24 h
pods:
  description: The names of the pods selected.
  returned: always
  type: list
  elements: str
  sample: [trm-app-7d9c-x2x4q]
logs:
  description: One entry per container read (or not), with its own figures.
  returned: always
  type: list
  elements: dict
  contains:
    pod:
      description: The pod's name.
      type: str
      sample: trm-app-7d9c-x2x4q
    container:
      description: The container's name.
      type: str
      sample: app
    state:
      description: V(read), V(not_started), V(absent) (no such container) or V(error).
      type: str
      sample: read
    error:
      description: Why the log could not be read; null otherwise.
      type: str
      sample: null
    previous_read:
      description: Whether a previous instance's log was read too.
      type: bool
      sample: false
    lines:
      description: Lines read inside the window.
      type: int
      sample: 3001
    bytes:
      description: Bytes received.
      type: int
      sample: 364403
    earliest:
      description: The time of the first line inside the window; null when none.
      type: str
      sample: "2024-05-05T09:00:12Z"
    latest:
      description: The time of the last line.
      type: str
      sample: "2024-05-06T08:59:58Z"
    expected_start:
      description: The window's start, from which the log should cover.
      type: str
      sample: "2024-05-05T09:00:00Z"
    pod_started:
      description: The pod's start time; null when the API did not give one.
      type: str
      sample: "2024-05-01T10:00:00Z"
    coverage_pct:
      description: How much of the window the log covers, in percent; null when not read.
      type: float
      sample: 100.0
    covered_hours:
      description: How many hours of the window the log covers; null when no line.
      type: float
      sample: 24.0
    shortfall:
      description:
        - Why the log covers less than the window; null when it covers it.
        - V(pod_younger_than_window) when the pod started after the window began,
          so the earlier lines went with the pods it replaced.
        - V(log_starts_late) when the log starts after the pod did, because it was
          rotated or the container restarted and its previous log was not read.
      type: str
      sample: null
    counts:
      description: Each group's count in this container.
      type: dict
      sample: {errors: 42, payment_failures: 26}
top_patterns:
  description: The commonest lines of the O(top_groups) groups, normalised.
  returned: always
  type: list
  elements: dict
  contains:
    group:
      description: The group the lines belong to.
      type: str
      sample: errors
    pattern:
      description:
        - The line with ids as C(<id>), addresses as C(<ip>), numbers as C(<n>),
          and secrets masked.
      type: str
      sample: >-
        ERROR ValidationError: referral ref-<n> is missing required field
        "patient_dob" (request_id=<id>)
    count:
      description: How many lines had this pattern.
      type: int
      sample: 23
    example:
      description: One such line, with secrets masked.
      type: str
      sample: >-
        ERROR ValidationError: referral ref-48213 is missing required field
        "patient_dob" (request_id=9f1c22ab)
    container:
      description: The C(pod/container) the example comes from.
      type: str
      sample: trm-app-7d9c-x2x4q/app
"""

# Ansible's layout puts the documentation before the imports.
from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trm.maintenance.plugins.module_utils.k8s import (
    K8S_AUTH_SPEC,
    WORKLOAD_KINDS,
    hide_secrets,
)
from ansible_collections.trm.maintenance.plugins.module_utils.k8s_logs import (
    DEFAULT_COVERAGE,
    DEFAULT_SINCE,
    DEFAULT_TOP_GROUPS,
    run_k8s_log_scan,
)
from ansible_collections.trm.maintenance.plugins.module_utils.runner import (
    FAIL_ON_SPEC,
    run_check,
)

PATTERN_SPEC = {
    "name": {"type": "str", "required": True},
    "regex": {"type": "raw", "required": True},
    "label": {"type": "str"},
    "ignore_case": {"type": "bool", "default": False},
    "warning": {"type": "float"},
    "critical": {"type": "float"},
    "direction": {"type": "str", "choices": ["above", "below"]},
    "action": {"type": "str"},
}

ARGUMENT_SPEC = {
    **K8S_AUTH_SPEC,
    "namespace": {"type": "str", "required": True},
    "kind": {"type": "str", "choices": WORKLOAD_KINDS, "default": WORKLOAD_KINDS[0]},
    "name": {"type": "str"},
    "label_selectors": {"type": "list", "elements": "str"},
    "container": {"type": "str"},
    "previous": {"type": "bool", "default": False},
    "since": {"type": "str", "default": DEFAULT_SINCE},
    "patterns": {"type": "list", "elements": "dict", "options": PATTERN_SPEC},
    "top_groups": {
        "type": "list",
        "elements": "str",
        "default": list(DEFAULT_TOP_GROUPS),
    },
    "top_count": {"type": "int", "default": 10},
    "redact": {"type": "list", "elements": "str", "default": [], "no_log": True},
    "coverage": {"type": "dict", "default": dict(DEFAULT_COVERAGE)},
    "max_workers": {"type": "int", "default": 4},
    **FAIL_ON_SPEC,
}


def main() -> None:
    """Scan the logs and exit with the check result."""
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=[["name", "label_selectors"]],
        required_one_of=[["name", "label_selectors"]],
        supports_check_mode=True,
    )
    hide_secrets(module)
    run_check(module, run_k8s_log_scan)


if __name__ == "__main__":
    main()
