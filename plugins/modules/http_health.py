#!/usr/bin/python
# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: http_health
short_description: Check HTTP health endpoints for status codes, JSON fields and speed
version_added: 1.0.0
author: trm.maintenance contributors (@trm-platform)
description:
  - Requests every endpoint of O(endpoints) at the same time and reports one finding
    per endpoint.
  - An endpoint is critical when it answers with a status code outside its
    O(status_code) list, when its JSON body does not hold the values given in
    O(json), or when it cannot be reached (connection refused, unknown host name,
    failed TLS certificate verification, no answer within O(timeout)).
  - Otherwise its response time decides, against O(response_time).
  - When the answer is a JSON health document that lists its dependencies (under
    C(checks), C(components), C(dependencies), C(details) or C(services)), the
    unhealthy ones are named in the message.
  - Credentials never appear in the result. URLs are shown without user name and
    password, and the values of query parameters that look like secrets (token,
    key, signature, password) are masked.
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
  endpoints:
    description:
      - The endpoints to check, each a URL string or a mapping.
      - A mapping needs C(url) (an V(http://) or V(https://) URL) and may set
        C(name) (shown in results and used in metric names, default the URL
        without credentials), C(method) (V(GET) or V(HEAD)), C(status_code),
        C(json), C(headers), C(response_time), C(validate_certs), C(ca_path) and
        C(timeout). Those override the options of the same name for that
        endpoint; C(headers) are added to O(headers).
      - Names must be unique.
    type: list
    elements: raw
    required: true
  status_code:
    description:
      - The HTTP status codes that count as healthy, for endpoints that do not set
        their own.
    type: list
    elements: int
    default: [200]
  json:
    description:
      - >-
        Values the JSON body must hold, as dotted paths mapped to the expected value,
        for example V({status: healthy, checks.mongodb: ok}). A number in a path
        selects a list item.
      - A value matches when it is equal, or when both read the same as text (so
        V(200) matches V("200")).
      - Not applied to endpoints that use the V(HEAD) method, which returns no body.
    type: dict
    default: {}
  response_time:
    description:
      - Response time thresholds in seconds, as C(warning) and C(critical) upper
        bounds. A time equal to a bound is inside it.
    type: dict
    default: {warning: 1.0, critical: 5.0}
  validate_certs:
    description:
      - Verify the TLS certificates of V(https://) endpoints.
      - Turn this off only for a server whose certificate cannot be trusted yet;
        prefer O(ca_path).
    type: bool
    default: true
  ca_path:
    description:
      - A PEM file of CA certificates to trust instead of the system's, for endpoints
        whose certificates come from a private CA.
    type: path
  timeout:
    description:
      - Seconds to wait for a connection, and for each read of the answer, before the
        endpoint counts as not answering.
    type: float
    default: 10.0
  headers:
    description:
      - HTTP headers sent to every endpoint. Their values never appear in the result.
    type: dict
    default: {}
  url_username:
    description:
      - The user name for HTTP basic authentication, sent to every endpoint.
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
  max_workers:
    description:
      - How many endpoints are requested at the same time.
    type: int
    default: 16
notes:
  - O(timeout) bounds the connection and every read, not the whole exchange, so a
    server that keeps sending a little at a time can take longer. Host name lookups
    are not bounded by it either.
  - Redirects are followed for V(GET) and V(HEAD); the status code judged is the one
    of the final answer.
seealso:
  - module: trm.maintenance.prometheus_query
  - module: ansible.builtin.uri
"""

EXAMPLES = r"""
- name: Check the platform's health endpoints
  trm.maintenance.http_health:
    endpoints:
      - name: api
        url: https://api.trm.example.org/health
        json:
          status: healthy
          checks.mongodb: ok
          checks.redis: ok
      - name: frontend
        url: https://app.trm.example.org/
        method: HEAD
      - https://auth.trm.example.org/healthz
    response_time:
      warning: 1.0
      critical: 5.0
  delegate_to: localhost
  run_once: true
  register: maintenance__http_health

- name: Check an internal service behind a private CA, with basic authentication
  trm.maintenance.http_health:
    endpoints:
      - name: admin
        url: https://admin.internal.example.org/status
        status_code: [200, 204]
        timeout: 3
    ca_path: /etc/pki/trm/internal-ca.pem
    url_username: monitor
    url_password: "{{ vault_monitor_password }}"
    force_basic_auth: true
    fail_on: critical
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
status:
  description: The worst status of the endpoints.
  returned: always
  type: str
  sample: critical
summary:
  description: One line for a person, with the worst findings.
  returned: always
  type: str
  sample: >-
    HTTP health CRITICAL (1 critical, 1 ok): api answered HTTP 503, expected 200;
    failing dependencies: redis: connection refused
checks:
  description: One finding per endpoint, in the order of O(endpoints).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The endpoint's name, or its URL without credentials.
      type: str
      sample: api
    status:
      description: V(ok), V(warning), V(critical) or V(unknown).
      type: str
      sample: critical
    message:
      description: What was found, in one sentence.
      type: str
      sample: "api answered HTTP 200 but status is \"degraded\", expected \"healthy\""
    value:
      description: The response time in seconds; null when no answer arrived.
      type: float
      sample: 0.042
    unit:
      description: The unit of RV(checks[].value), always V(s).
      type: str
      sample: s
    warning:
      description: The warning response time in seconds.
      type: float
      sample: 1.0
    critical:
      description: The critical response time in seconds.
      type: float
      sample: 5.0
    threshold:
      description: The response time thresholds in words.
      type: str
      sample: warning above 1 s, critical above 5 s
    action:
      description: What to do next; null when the endpoint is healthy.
      type: str
      sample: "Investigate api: check its logs and the dependencies it reports"
    url:
      description: The URL requested, without credentials or secret query values.
      type: str
      sample: https://api.trm.example.org/health
    method:
      description: The HTTP method used.
      type: str
      sample: GET
    status_code:
      description: The HTTP status code of the answer; null when none arrived.
      type: int
      sample: 503
    response_seconds:
      description:
        - Seconds until the answer was read, or until the request failed.
      type: float
      sample: 0.042
    error:
      description:
        - What went wrong, as a word; null when the endpoint is healthy.
        - One of V(status_code), V(json), V(slow), V(connection_refused), V(dns),
          V(timeout), V(tls), V(invalid_response) and V(connection).
      type: str
      sample: status_code
    failing_dependencies:
      description: The dependencies the health document reports as unhealthy.
      type: list
      elements: str
      sample: ["redis: connection refused"]
metrics:
  description:
    - Numbers for reports and trends. C(endpoints_total) and C(endpoints_ok) count
      the endpoints; for each endpoint that answered, C(<name>_response_seconds) and
      C(<name>_status_code), with the name in snake_case.
  returned: always
  type: dict
  sample:
    endpoints_total: 2
    endpoints_ok: 1
    api_response_seconds: 0.042
    api_status_code: 503
    frontend_response_seconds: 0.013
    frontend_status_code: 200
"""

# Ansible's layout puts the documentation before the imports.
from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trm.maintenance.plugins.module_utils.http import (
    HTTP_ARGUMENT_SPEC,
    hide_secrets,
)
from ansible_collections.trm.maintenance.plugins.module_utils.http_health import (
    DEFAULT_RESPONSE_TIME,
    DEFAULT_STATUS_CODES,
    endpoint_secrets,
    run_http_health,
)
from ansible_collections.trm.maintenance.plugins.module_utils.runner import (
    FAIL_ON_SPEC,
    run_check,
)

ARGUMENT_SPEC = {
    "endpoints": {"type": "list", "elements": "raw", "required": True},
    "status_code": {
        "type": "list",
        "elements": "int",
        "default": list(DEFAULT_STATUS_CODES),
    },
    "json": {"type": "dict", "default": {}},
    "response_time": {"type": "dict", "default": dict(DEFAULT_RESPONSE_TIME)},
    "max_workers": {"type": "int", "default": 16},
    **HTTP_ARGUMENT_SPEC,
    **FAIL_ON_SPEC,
}


def main() -> None:
    """Check the endpoints and exit with the check result."""
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    hide_secrets(module, endpoint_secrets(module.params))
    run_check(module, run_http_health)


if __name__ == "__main__":
    main()
