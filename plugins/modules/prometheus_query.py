#!/usr/bin/python
# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: prometheus_query
short_description: Judge PromQL instant queries against thresholds
version_added: 1.0.0
author: trm.maintenance contributors (@trm-platform)
description:
  - Runs every query of O(queries) at the same time as an instant query
    (C(GET /api/v1/query)) on a Prometheus server and judges the values against
    each query's thresholds.
  - A query that returns one series, or a scalar, gives one finding. A query that
    returns several series gives one finding for the worst of them, naming it,
    or one finding per series with O(queries[].per_series).
  - A query that matches no series is V(unknown) unless O(queries[].empty) says
    otherwise. A value of NaN or an infinity is V(unknown) with the reason.
  - A query that Prometheus rejects (bad PromQL) is V(unknown) with Prometheus's
    error. When Prometheus cannot be reached, every query is V(unknown) with the
    reason; the task does not fail unless O(fail_on) asks for it.
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
options:
  url:
    description:
      - The base URL of the Prometheus server, for example
        V(https://prometheus.trm.example.org), with any path prefix it is served
        under.
    type: str
    required: true
  queries:
    description:
      - The queries to run, each judged on its own.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - The query's name in snake_case; it names the finding and the metric.
          - Names must be unique.
        type: str
        required: true
      query:
        description:
          - The PromQL expression, evaluated as an instant query.
        type: str
        required: true
      label:
        description:
          - What the value is, for messages, for example V(Error rate). Defaults to
            the name.
        type: str
      unit:
        description:
          - The unit of the scaled value, for example V(%) or V(s).
        type: str
      scale:
        description:
          - A factor applied to every value before it is judged, for example V(100)
            to turn a ratio into a percentage. Thresholds apply to the scaled value.
        type: float
        default: 1.0
      warning:
        description:
          - The warning bound of the scaled value.
        type: float
      critical:
        description:
          - The critical bound of the scaled value.
        type: float
      direction:
        description:
          - Whether O(queries[].warning) and O(queries[].critical) are upper bounds
            (V(above), the default when not set) or lower bounds (V(below)).
        type: str
        choices: [above, below]
      normal:
        description:
          - Instead of bounds, a normal range V([low, high]) for business metrics;
            a value outside it is a warning. Either end may be null.
        type: list
        elements: raw
      investigate:
        description:
          - The wider range V([low, high]) that goes with O(queries[].normal); a
            value outside it is critical. Either end may be null.
        type: list
        elements: raw
      per_series:
        description:
          - Judge every returned series on its own, in one finding each, named by
            the query's name and the labels that tell the series apart, for
            example C(disk_usage_pct{mountpoint="/"}). A lone series is named by
            all its labels except C(job) and C(instance).
          - When false and several series are returned, the worst one is judged and
            its labels are named in the message.
          - To choose the labels that name the series, aggregate in the query, for
            example with C(max by) and those labels.
        type: bool
        default: false
      empty:
        description:
          - The status when the query matches no series, for example V(ok) for a
            query that lists only problems.
        type: str
        choices: [ok, warning, critical, unknown]
        default: unknown
      action:
        description:
          - What to do when the query's finding is not ok, for the report's next
            actions.
        type: str
  time:
    description:
      - The evaluation time of the queries, as a Unix timestamp or an RFC 3339 date
        and time. Defaults to the server's current time.
    type: str
  validate_certs:
    description:
      - Verify the TLS certificate of an V(https://) Prometheus URL.
    type: bool
    default: true
  ca_path:
    description:
      - A PEM file of CA certificates to trust instead of the system's.
    type: path
  timeout:
    description:
      - Seconds to wait for a connection, and for each read of an answer.
    type: float
    default: 10.0
  headers:
    description:
      - HTTP headers sent with every query. Their values never appear in the result.
    type: dict
    default: {}
  url_username:
    description:
      - The user name for HTTP basic authentication.
    type: str
  url_password:
    description:
      - The password for HTTP basic authentication.
    type: str
  force_basic_auth:
    description:
      - Send the basic authentication header with the first request instead of
        waiting for the server to ask for it with a 401 answer.
    type: bool
    default: false
  bearer_token:
    description:
      - >-
        A token sent as C(Authorization: Bearer <token>), as a Prometheus behind an
        authenticating proxy may require.
    type: str
  max_workers:
    description:
      - How many queries run at the same time.
    type: int
    default: 16
notes:
  - Values are judged after O(queries[].scale); the metric of a query is its scaled
    value, under its name (per series, under the series' name).
seealso:
  - module: trm.maintenance.http_health
"""

EXAMPLES = r"""
- name: Check the error rate and the disk usage, as the daily checks ask
  trm.maintenance.prometheus_query:
    url: https://prometheus.trm.example.org
    queries:
      - name: error_rate_pct
        label: HTTP 5xx error rate
        query: >-
          sum(rate(http_requests_total{status=~"5.."}[5m]))
          / sum(rate(http_requests_total[5m]))
        scale: 100
        unit: "%"
        warning: 1
        critical: 2
        action: Look at the failing requests in the application logs
      - name: disk_usage_pct
        label: Disk usage
        query: >-
          100 * (1 - node_filesystem_avail_bytes{fstype!~"tmpfs|overlay"}
          / node_filesystem_size_bytes{fstype!~"tmpfs|overlay"})
        unit: "%"
        warning: 80
        critical: 90
        per_series: true
        action: Free space or grow the volume before it fills
  delegate_to: localhost
  run_once: true
  register: maintenance__prometheus

- name: Check that every scrape target is up, behind a token
  trm.maintenance.prometheus_query:
    url: https://monitoring.example.org/prometheus
    bearer_token: "{{ vault_prometheus_token }}"
    ca_path: /etc/pki/trm/internal-ca.pem
    queries:
      - name: targets_down
        label: Scrape targets down
        query: count(up == 0)
        empty: ok
        critical: 0
        action: Find out why the targets are down with the targets page
      - name: weekly_referrals
        label: Referrals this week
        query: sum(increase(trm_referrals_created_total[7d]))
        normal: [800, 1500]
        investigate: [400, 3000]
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
status:
  description: The worst status of the queries.
  returned: always
  type: str
  sample: warning
summary:
  description: One line for a person, with the worst findings.
  returned: always
  type: str
  sample: >-
    Prometheus queries WARNING (1 warning, 1 ok): HTTP 5xx error rate is 1.5%,
    above the warning threshold of 1%
checks:
  description:
    - One finding per query, or per series with O(queries[].per_series).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The query's name; per series, followed by the series' labels.
      type: str
      sample: disk_usage_pct{mountpoint="/"}
    status:
      description: V(ok), V(warning), V(critical) or V(unknown).
      type: str
      sample: warning
    message:
      description: What was found, in one sentence.
      type: str
      sample: Disk usage {mountpoint="/"} is 85%, above the warning threshold of 80%
    value:
      description: The scaled value; null when there is none or it is not finite.
      type: float
      sample: 85.0
    unit:
      description: The unit of the value, from O(queries[].unit).
      type: str
      sample: "%"
    warning:
      description: The warning bound; null when not set.
      type: float
      sample: 80.0
    critical:
      description: The critical bound; null when not set.
      type: float
      sample: 90.0
    normal:
      description: The normal range, for queries judged by ranges.
      type: list
      elements: float
      returned: when O(queries[].normal) or O(queries[].investigate) is set
      sample: [800, 1500]
    investigate:
      description: The investigate range, for queries judged by ranges.
      type: list
      elements: float
      returned: when O(queries[].normal) or O(queries[].investigate) is set
      sample: [400, 3000]
    threshold:
      description: The thresholds in words.
      type: str
      sample: warning above 80%, critical above 90%
    action:
      description: What to do next; null when the finding is ok.
      type: str
      sample: Free space or grow the volume before it fills
    query:
      description: The PromQL expression.
      type: str
      sample: 100 * (1 - node_filesystem_avail_bytes / node_filesystem_size_bytes)
    series:
      description: The labels of the series judged; empty for a scalar.
      type: dict
      sample: {"mountpoint": "/", "device": "/dev/sda1"}
    series_count:
      description: How many series the query returned.
      type: int
      sample: 1
    value_text:
      description: The value as Prometheus wrote it, before scaling (V(NaN) too).
      type: str
      returned: when the query returned a value
      sample: "0.015"
metrics:
  description:
    - Each finding's scaled value under its name, for findings with a finite value.
  returned: always
  type: dict
  sample:
    error_rate_pct: 1.5
    disk_usage_pct{mountpoint="/"}: 85.0
"""

# Ansible's layout puts the documentation before the imports.
from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trm.maintenance.plugins.module_utils.http import (
    HTTP_ARGUMENT_SPEC,
    header_secrets,
    hide_secrets,
    url_secrets,
)
from ansible_collections.trm.maintenance.plugins.module_utils.prometheus import (
    run_prometheus_query,
)
from ansible_collections.trm.maintenance.plugins.module_utils.runner import (
    FAIL_ON_SPEC,
    run_check,
)

QUERY_SPEC = {
    "name": {"type": "str", "required": True},
    "query": {"type": "str", "required": True},
    "label": {"type": "str"},
    "unit": {"type": "str"},
    "scale": {"type": "float", "default": 1.0},
    "warning": {"type": "float"},
    "critical": {"type": "float"},
    "direction": {"type": "str", "choices": ["above", "below"]},
    "normal": {"type": "list", "elements": "raw"},
    "investigate": {"type": "list", "elements": "raw"},
    "per_series": {"type": "bool", "default": False},
    "empty": {
        "type": "str",
        "choices": ["ok", "warning", "critical", "unknown"],
        "default": "unknown",
    },
    "action": {"type": "str"},
}

ARGUMENT_SPEC = {
    "url": {"type": "str", "required": True},
    "queries": {
        "type": "list",
        "elements": "dict",
        "required": True,
        "options": QUERY_SPEC,
    },
    "time": {"type": "str"},
    "bearer_token": {"type": "str", "no_log": True},
    "max_workers": {"type": "int", "default": 16},
    **HTTP_ARGUMENT_SPEC,
    **FAIL_ON_SPEC,
}


def main() -> None:
    """Run the queries and exit with the check result."""
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=[["bearer_token", "url_username"]],
        supports_check_mode=True,
    )
    params = module.params
    hide_secrets(module, url_secrets(params["url"]) + header_secrets(params["headers"]))
    run_check(module, run_prometheus_query)


if __name__ == "__main__":
    main()
