#!/usr/bin/python
# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_failover
short_description: Run a failover drill on a Deployment or StatefulSet and time its recovery
version_added: 1.0.0
author: trm.maintenance contributors (@trm-platform)
description:
  - Disrupts some or all pods of a workload, through the Eviction API (the
    default, which honours PodDisruptionBudgets) or by deleting them, and measures
    the recovery as a timeline of phases, each in seconds since the drill began.
    The pods disrupted are gone, as many replacements are scheduled, they are
    ready, the workload reports every replica available and, with
    O(health_check), the application's health URL answers as expected.
  - Before anything is disrupted, gates are checked, each a finding. The drill
    runs only when all are V(ok) - enough ready replicas (O(min_ready_replicas)),
    a PodDisruptionBudget that allows the disruption, no rollout in progress,
    inside the maintenance window (unless O(ignore_window)), and for evictions a
    dry-run eviction that the API server accepts.
  - Works only in a namespace listed in O(allowed_namespaces); any other namespace
    fails the task before anything is read.
  - Stops at O(timeout) and reports V(critical) with the phase it was stuck in.
  - In check mode, returns the plan (the pods it would disrupt and which gates
    pass) and disrupts nothing.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - trm.maintenance.k8s
attributes:
  check_mode:
    support: full
    details: Check mode checks the gates, with a dry-run eviction, and returns the plan.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  label_selectors:
    description:
      - Select the workload by its labels instead of by O(name), as C(key=value)
        terms; they must select exactly one workload of O(kind).
    type: list
    elements: str
  allowed_namespaces:
    description:
      - The namespaces where drills may run. O(namespace) must be one of them.
    type: list
    elements: str
    required: true
  pods:
    description:
      - How many pods to disrupt - V(all), a number, or a share of the pods such as
        V(50%) (rounded up). Ready pods are chosen, oldest first.
    type: str
    default: "1"
  method:
    description:
      - V(evict) asks the Eviction API, which refuses while the disruption budget
        allows nothing; refused evictions are retried at every poll until the
        budget allows them or O(timeout) passes.
      - V(delete) deletes the pods, which no budget stops. With O(grace_period=0)
        this is the forced deletion of C(kubectl delete pod --grace-period=0
        --force).
    type: str
    choices: [evict, delete]
    default: evict
  grace_period:
    description:
      - Seconds each pod gets to shut down; the pod's own setting when not set.
    type: int
  one_by_one:
    description:
      - Disrupt one pod at a time and wait for full recovery before the next,
        instead of all planned pods at once.
    type: bool
    default: false
  min_ready_replicas:
    description:
      - The ready replicas the workload needs before a drill.
    type: int
    default: 2
  timeout:
    description:
      - Seconds the whole drill may take, from the first disruption to the last
        phase.
    type: float
    default: 600
  poll_interval:
    description:
      - Seconds between two looks at the pods; the precision of every time
        measured.
    type: float
    default: 0.5
  recovery_time:
    description:
      - Thresholds on the recovery time in seconds.
    type: dict
    default: {warning: 120, critical: 300}
  health_check:
    description:
      - The application's health URL, checked as the last phase with the rules of
        M(trm.maintenance.http_health). A slow answer still counts as answering.
    type: dict
    suboptions:
      url:
        description: The V(http://) or V(https://) URL.
        type: str
        required: true
      status_code:
        description: The status codes that count as healthy.
        type: list
        elements: int
        default: [200]
      json:
        description: Values the JSON body must hold, by dotted path.
        type: dict
      validate_certs:
        description: Verify the TLS certificate.
        type: bool
        default: true
      ca_path:
        description: A PEM file of CA certificates to trust.
        type: path
      timeout:
        description: Seconds to wait for each answer.
        type: float
        default: 10.0
  maintenance_window:
    description:
      - The window the drill must run in. The default is the guide's, Sunday
        02:00-04:00 UTC.
    type: dict
    suboptions:
      weekdays:
        description: The days the window opens, as names (V(sunday)) or their first three letters.
        type: list
        elements: str
        default: [sunday]
      start:
        description: When the window opens, as V(HH:MM).
        type: str
        default: "02:00"
      end:
        description:
          - When it closes, as V(HH:MM); an end at or before the start is the next day.
          - The window lasts the time from start to end, also on a day when the
            clocks change, so its end on the wall clock moves by the change.
        type: str
        default: "04:00"
      timezone:
        description:
          - The time zone of O(maintenance_window.start) and
            O(maintenance_window.end) - V(UTC), an offset like V(+02:00), or an
            IANA name like V(Europe/Berlin).
        type: str
        default: UTC
      now:
        description:
          - Judge the window at this ISO 8601 time instead of the clock, to
            rehearse a schedule.
        type: str
  ignore_window:
    description:
      - Run outside the maintenance window. The gate still reports where the time
        stands.
    type: bool
    default: false
  fail_on:
    description:
      - Fail the task when the overall RV(status) is at least this bad, in the order
        V(ok) < V(warning) < V(unknown) < V(critical).
      - When not set, a refused or failed drill is a finding, not a task failure.
    type: str
    choices: [warning, unknown, critical]
notes:
  - Times come from polling the pod list every O(poll_interval) seconds, so each is
    late by up to that interval; nothing relies on watches.
  - A refused drill (a gate not V(ok)) is V(warning), or V(unknown) outside the
    maintenance window, or V(critical) when replicas are not ready; nothing is
    disrupted. A drill that does not recover in time is V(critical).
  - The maintenance window check is the module's own small one; the gate can be
    overridden with O(ignore_window) where another guard decides.
seealso:
  - module: trm.maintenance.k8s_log_scan
  - module: kubernetes.core.k8s_drain
"""

EXAMPLES = r"""
- name: Run the monthly failover drill in the Sunday window
  trm.maintenance.k8s_failover:
    kubeconfig: ~/.kube/trm-production
    namespace: trm
    name: trm-app
    allowed_namespaces: [trm]
    pods: all
    health_check:
      url: https://api.trm.example.org/health
      json:
        status: healthy
    maintenance_window:
      weekdays: [sunday]
      start: "02:00"
      end: "04:00"
      timezone: Europe/London
  delegate_to: localhost
  run_once: true
  register: k8s_checks__failover

- name: Plan the guide's drill (forced deletion of every pod) without running it
  trm.maintenance.k8s_failover:
    namespace: trm
    label_selectors: [app=trm-app]
    allowed_namespaces: [trm]
    pods: all
    method: delete
    grace_period: 0
    ignore_window: true
  check_mode: true
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
changed:
  description: Whether pods were disrupted (in check mode, whether they would be).
  returned: always
  type: bool
  sample: true
status:
  description: The worst status of the gates and of the recovery.
  returned: always
  type: str
  sample: ok
summary:
  description: One line for a person, with the worst findings.
  returned: always
  type: str
  sample: Failover drill OK (7 ok)
checks:
  description:
    - The gates V(plan), V(ready_replicas), V(rollout), V(disruption_budget),
      V(maintenance_window) and, for evictions, V(eviction); then, when the drill
      ran, V(recovery) and, if a disruption failed, V(disruption). V(api) instead
      when the API server could not be reached.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The gate or the outcome.
      type: str
      sample: recovery
    status:
      description: V(ok), V(warning), V(critical) or V(unknown).
      type: str
      sample: ok
    message:
      description: What was found, in one sentence.
      type: str
      sample: >-
        Recovery of Deployment trm/trm-app after 3 pod(s) evicted is 1.93 s
        (warning above 120 s, critical above 300 s)
    value:
      description: The recovery time, ready replicas, or disruptions allowed.
      type: float
      sample: 1.934
    unit:
      description: V(s) for the recovery time.
      type: str
      sample: s
    warning:
      description: The warning bound of the recovery time.
      type: float
      sample: 120
    critical:
      description: The critical bound of the recovery time.
      type: float
      sample: 300
    threshold:
      description: The bounds in words.
      type: str
      sample: warning above 120 s, critical above 300 s
    action:
      description: What to do next; null when ok.
      type: str
      sample: null
    stuck_phase:
      description: For a V(recovery) that timed out, the phase it was stuck in.
      type: str
      sample: ready
metrics:
  description:
    - C(pods_disrupted), C(replicas), C(recovery_seconds) and C(<phase>_seconds)
      for every phase reached, once the drill ran.
  returned: always
  type: dict
  sample:
    pods_disrupted: 3
    replicas: 3
    recovery_seconds: 1.934
    ready_seconds: 1.938
    available_seconds: 1.942
refused:
  description: Whether a gate stopped the drill.
  returned: always
  type: bool
  sample: false
plan:
  description: What the drill does (or would do), once the workload was read.
  returned: always
  type: dict
  sample:
    workload: {kind: Deployment, namespace: trm, name: trm-app, replicas: 3}
    pods: [{name: trm-app-5f7d9-x2x4q, uid: 6b1f0c7e-3c1a-4f7b-9a43-0d2b6f1e2a10, node: node-1}]
    method: evict
    grace_period: null
    one_by_one: false
    timeout: 600
    health_url: https://api.trm.example.org/health
    gates:
      plan: true
      ready_replicas: true
      rollout: true
      disruption_budget: true
      maintenance_window: true
      eviction: true
deleted_pods:
  description: The pods disrupted, with when the request was accepted and when each was gone.
  returned: always
  type: list
  elements: dict
  sample:
    - name: trm-app-5f7d9-x2x4q
      uid: 6b1f0c7e-3c1a-4f7b-9a43-0d2b6f1e2a10
      node: node-1
      requested_seconds: 0.008
      gone_seconds: 0.022
replacement_pods:
  description: The new pods, with when each was scheduled and ready.
  returned: always
  type: list
  elements: dict
  sample:
    - name: trm-app-5f7d9-k8j2m
      uid: 0e5e7a55-58d4-44b5-a0a4-1f7f4a6b7c21
      node: node-2
      created: "2024-05-05T02:10:03Z"
      scheduled_seconds: 0.022
      ready_seconds: 0.675
recovery_seconds:
  description:
    - From the first disruption to the last phase; null when the drill did not run
      or did not recover.
  returned: always
  type: float
  sample: 1.934
phases:
  description:
    - When each phase completed, in seconds since the drill began (with
      O(one_by_one), the last pod's).
  returned: always
  type: dict
  sample:
    disrupt: 1.309
    deleted: 1.318
    scheduled: 1.318
    ready: 1.938
    available: 1.942
    healthy: 1.97
timeline:
  description: Every event of the drill, in order.
  returned: always
  type: list
  elements: dict
  contains:
    event:
      description:
        - V(evicted) or V(deleted) (the request was accepted), V(refused) (the
          budget refused, retried), V(vanished), V(failed), V(gone), V(created),
          V(scheduled), V(ready) for pods; V(deleted), V(scheduled), V(ready),
          V(available), V(healthy) without a pod when a phase completed.
      type: str
      sample: ready
    pod:
      description: The pod, or null for a phase.
      type: str
      sample: trm-app-5f7d9-k8j2m
    seconds:
      description: Seconds since the drill began.
      type: float
      sample: 0.675
    at:
      description: The wall-clock time, RFC 3339 UTC.
      type: str
      sample: "2024-05-05T02:10:03.767Z"
    detail:
      description: The node, or the API server's refusal.
      type: str
      sample: null
stuck_phase:
  description:
    - The phase a drill that timed out was stuck in - V(disrupt), V(deleted),
      V(scheduled), V(ready), V(available) or V(healthy); null otherwise.
  returned: always
  type: str
  sample: null
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trm.maintenance.plugins.module_utils.k8s import (
    K8S_AUTH_SPEC,
    WORKLOAD_KINDS,
    hide_secrets,
)
from ansible_collections.trm.maintenance.plugins.module_utils.k8s_failover import (
    DEFAULT_POLL_INTERVAL,
    DEFAULT_RECOVERY_TIME,
    DEFAULT_TIMEOUT,
    run_k8s_failover,
)
from ansible_collections.trm.maintenance.plugins.module_utils.k8s_gates import (
    METHODS,
)
from ansible_collections.trm.maintenance.plugins.module_utils.runner import (
    FAIL_ON_SPEC,
    run_check,
)

HEALTH_SPEC = {
    "url": {"type": "str", "required": True},
    "status_code": {"type": "list", "elements": "int", "default": [200]},
    "json": {"type": "dict"},
    "validate_certs": {"type": "bool", "default": True},
    "ca_path": {"type": "path"},
    "timeout": {"type": "float", "default": 10.0},
}

WINDOW_SPEC = {
    "weekdays": {"type": "list", "elements": "str", "default": ["sunday"]},
    "start": {"type": "str", "default": "02:00"},
    "end": {"type": "str", "default": "04:00"},
    "timezone": {"type": "str", "default": "UTC"},
    "now": {"type": "str"},
}

ARGUMENT_SPEC = {
    **K8S_AUTH_SPEC,
    "namespace": {"type": "str", "required": True},
    "kind": {"type": "str", "choices": WORKLOAD_KINDS, "default": WORKLOAD_KINDS[0]},
    "name": {"type": "str"},
    "label_selectors": {"type": "list", "elements": "str"},
    "allowed_namespaces": {"type": "list", "elements": "str", "required": True},
    "pods": {"type": "str", "default": "1"},
    "method": {"type": "str", "choices": METHODS, "default": METHODS[0]},
    "grace_period": {"type": "int"},
    "one_by_one": {"type": "bool", "default": False},
    "min_ready_replicas": {"type": "int", "default": 2},
    "timeout": {"type": "float", "default": DEFAULT_TIMEOUT},
    "poll_interval": {"type": "float", "default": DEFAULT_POLL_INTERVAL},
    "recovery_time": {"type": "dict", "default": dict(DEFAULT_RECOVERY_TIME)},
    "health_check": {"type": "dict", "options": HEALTH_SPEC},
    "maintenance_window": {"type": "dict", "options": WINDOW_SPEC},
    "ignore_window": {"type": "bool", "default": False},
    **FAIL_ON_SPEC,
}


def main() -> None:
    """Check the gates, run the drill (or plan it) and exit with the result."""
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=[["name", "label_selectors"]],
        required_one_of=[["name", "label_selectors"]],
        supports_check_mode=True,
    )
    hide_secrets(module)
    run_check(
        module, lambda params: run_k8s_failover(params, check_mode=module.check_mode)
    )


if __name__ == "__main__":
    main()
