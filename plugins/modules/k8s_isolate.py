#!/usr/bin/python
# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_isolate
short_description: Isolate a compromised workload - save its logs, then scale it to zero
version_added: 1.0.0
author: trm.maintenance contributors (@trm-platform)
description:
  - Saves the current log of every container of the workload's pods, and the log
    of each container's previous instance where there is one, into O(dest) (one
    folder per pod, owner-only files, with the API server's timestamps), then
    scales the workload to O(replicas) (zero by default) and waits until no pod is
    left.
  - The logs are read first because a pod's logs go with the pod.
  - Writes C(isolation.json) in O(dest) - the workload, when it was isolated,
    its replicas before, its pods and their images, every log saved with its
    SHA-256, and the command that restores it. With O(annotate), the workload
    carries the same in its C(trm.maintenance/isolated-at) and
    C(trm.maintenance/replicas-before) annotations.
  - Works only in a namespace listed in O(allowed_namespaces).
  - In check mode, returns the plan and changes nothing.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
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
      - Select the workload by its labels instead of by O(name); they must select
        exactly one workload of O(kind).
    type: list
    elements: str
  allowed_namespaces:
    description:
      - The namespaces where isolation may happen. O(namespace) must be one of them.
    type: list
    elements: str
    required: true
  dest:
    description:
      - The folder for the saved logs and the manifest, created (owner only) when
        missing.
    type: path
    required: true
  previous:
    description:
      - Also save each container's previous instance's log, where there is one.
    type: bool
    default: true
  replicas:
    description:
      - The replicas to scale the workload to.
    type: int
    default: 0
  annotate:
    description:
      - Record the isolation time and the replicas before in annotations of the
        workload.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for the pods to go after scaling.
    type: float
    default: 120
  poll_interval:
    description:
      - Seconds between two looks at the pods while waiting.
    type: float
    default: 0.5
  fail_on:
    description:
      - Fail the task when the overall RV(status) is at least this bad, in the order
        V(ok) < V(warning) < V(unknown) < V(critical).
    type: str
    choices: [warning, unknown, critical]
notes:
  - Scaling to zero stops the workload's pods; a Service, Ingress or HPA that
    points at it is left alone. An HPA with a minimum above zero scales the
    workload up again; suspend it first.
  - Run it again on an isolated workload to refresh nothing - with no pod left
    and zero replicas it reports that and changes nothing.
seealso:
  - module: trm.maintenance.k8s_log_scan
  - module: kubernetes.core.k8s_scale
"""

EXAMPLES = r"""
- name: Isolate the application and keep its logs for the investigation
  trm.maintenance.k8s_isolate:
    namespace: trm
    name: trm-app
    allowed_namespaces: [trm]
    dest: "/var/lib/trm/incidents/{{ now(utc=true, fmt='%Y%m%dT%H%M%SZ') }}"
  delegate_to: localhost
  run_once: true
  register: k8s_incident__isolation
"""

RETURN = r"""
changed:
  description: Whether logs were saved or the workload scaled (in check mode, would be).
  returned: always
  type: bool
  sample: true
status:
  description: The worst status of the findings.
  returned: always
  type: str
  sample: ok
summary:
  description: One line for a person.
  returned: always
  type: str
  sample: Incident isolation OK (3 ok)
checks:
  description:
    - V(logs_saved), V(scaled) and V(pods_gone); V(plan) in check mode; V(api)
      when the API server could not be reached.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: What was done.
      type: str
      sample: scaled
    status:
      description: V(ok), V(warning), V(critical) or V(unknown).
      type: str
      sample: ok
    message:
      description: What happened, in one sentence.
      type: str
      sample: Scaled Deployment trm/trm-app from 3 to 0 replicas
    action:
      description: What to do next; null when ok.
      type: str
      sample: null
metrics:
  description: C(replicas_before), C(logs_saved), C(bytes_saved), C(seconds_to_isolate).
  returned: always
  type: dict
  sample: {replicas_before: 3, logs_saved: 3, bytes_saved: 733977, seconds_to_isolate: 0.2}
plan:
  description: The workload, its replicas before and after, its pods and the log files.
  returned: always
  type: dict
  sample:
    workload: {kind: Deployment, namespace: trm, name: trm-app}
    replicas_before: 3
    replicas_after: 0
    pods:
      - name: trm-app-5f7d9-x2x4q
        uid: 6b1f0c7e-3c1a-4f7b-9a43-0d2b6f1e2a10
        node: node-1
        ready: true
        images: ["registry/trm:2.14.3"]
    logs: [/var/lib/trm/incidents/x/trm-app-5f7d9-x2x4q/app.log]
    dest: /var/lib/trm/incidents/x
replicas_before:
  description: The workload's replicas before; null when it was not read.
  returned: always
  type: int
  sample: 3
replicas:
  description: Its replicas now.
  returned: always
  type: int
  sample: 0
pods:
  description: The pods the workload had.
  returned: always
  type: list
  elements: str
  sample: [trm-app-5f7d9-x2x4q]
saved_logs:
  description: Every log asked for, saved or not.
  returned: always
  type: list
  elements: dict
  sample:
    - pod: trm-app-5f7d9-x2x4q
      container: app
      previous: false
      path: /var/lib/trm/incidents/x/trm-app-5f7d9-x2x4q/app.log
      bytes: 244659
      sha256: 5f2b0f8c3e0e4f3b8a54d7a1b2f1a9f0c4e6d8b7a2c3e5f7a9b1c3d5e7f9a1b3
      saved: true
      error: null
manifest:
  description: The path of C(isolation.json); null in check mode.
  returned: always
  type: str
  sample: /var/lib/trm/incidents/x/isolation.json
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trm.maintenance.plugins.module_utils.k8s import (
    K8S_AUTH_SPEC,
    WORKLOAD_KINDS,
    hide_secrets,
)
from ansible_collections.trm.maintenance.plugins.module_utils.k8s_isolate import (
    run_k8s_isolate,
)
from ansible_collections.trm.maintenance.plugins.module_utils.runner import (
    FAIL_ON_SPEC,
    run_check,
)

ARGUMENT_SPEC = {
    **K8S_AUTH_SPEC,
    "namespace": {"type": "str", "required": True},
    "kind": {"type": "str", "choices": WORKLOAD_KINDS, "default": WORKLOAD_KINDS[0]},
    "name": {"type": "str"},
    "label_selectors": {"type": "list", "elements": "str"},
    "allowed_namespaces": {"type": "list", "elements": "str", "required": True},
    "dest": {"type": "path", "required": True},
    "previous": {"type": "bool", "default": True},
    "replicas": {"type": "int", "default": 0},
    "annotate": {"type": "bool", "default": True},
    "timeout": {"type": "float", "default": 120.0},
    "poll_interval": {"type": "float", "default": 0.5},
    **FAIL_ON_SPEC,
}


def main() -> None:
    """Save the logs, scale the workload down, and exit with the result."""
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=[["name", "label_selectors"]],
        required_one_of=[["name", "label_selectors"]],
        supports_check_mode=True,
    )
    hide_secrets(module)
    run_check(
        module, lambda params: run_k8s_isolate(params, check_mode=module.check_mode)
    )


if __name__ == "__main__":
    main()
