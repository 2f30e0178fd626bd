#!/usr/bin/python
# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: npm_audit
short_description: Review a Node.js project's dependencies with npm audit and npm outdated
version_added: 1.0.0
author: trm.maintenance contributors (@trm-platform)
description:
  - Runs C(npm audit --json) and C(npm outdated --json) in the project folder O(path),
    side by side, and turns their answers into findings.
  - "Vulnerabilities: one finding per severity from O(audit_level) up, counting the
    vulnerable packages of that severity as npm does, judged against
    O(vulnerabilities). By default any critical or high one is critical and any
    moderate one a warning."
  - "Updates: the number of packages a major version behind their latest release,
    judged against O(major_updates), and the number of packages with any newer
    version, judged against O(updates). Each lists the package, its current,
    wanted and latest versions."
  - npm exits with a non-zero code when it finds something; that is an answer, not
    an error. When npm gives no usable answer (npm is not installed, the registry
    does not answer, no lockfile, no answer within O(timeout)), the command's
    finding is V(unknown) with npm's own message.
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
  path:
    description:
      - The project's folder, the one that holds C(package.json).
      - C(npm audit) reads the lockfile (C(package-lock.json) or
        C(npm-shrinkwrap.json)); C(npm outdated) reads installed versions from
        C(node_modules) and falls back to the lockfile's versions here.
    type: path
    required: true
  commands:
    description:
      - Which npm commands to run.
    type: list
    elements: str
    choices: [audit, outdated]
    default: [audit, outdated]
  omit_dev:
    description:
      - Leave out C(devDependencies) (C(--omit=dev)), to review only what runs in
        production.
    type: bool
    default: false
  registry:
    description:
      - The npm registry's URL (C(--registry)), for both commands. When not set, npm
        uses its own configuration (C(.npmrc), C(npm_config_registry)).
    type: str
  audit_level:
    description:
      - The mildest severity that gets a finding. Milder vulnerabilities are still
        counted in RV(metrics).
    type: str
    choices: [low, moderate, high, critical]
    default: low
  vulnerabilities:
    description:
      - >-
        Thresholds on the number of vulnerable packages, per severity (V(low),
        V(moderate), V(high), V(critical)), each a mapping with C(warning) and
        C(critical) upper bounds. A count equal to a bound is inside it, so
        V({critical: 0}) makes one package critical.
      - Severities not named here keep their default; an empty mapping never
        breaches.
    type: dict
    default:
      critical: {critical: 0}
      high: {critical: 0}
      moderate: {warning: 0}
      low: {}
  major_updates:
    description:
      - Thresholds on the number of packages whose latest release is a new major
        version (below 1.0.0, a new minor version), as C(warning) and C(critical)
        upper bounds.
    type: dict
    default: {warning: 1}
  updates:
    description:
      - Thresholds on the number of packages with any newer version, as C(warning)
        and C(critical) upper bounds. By default they are only listed.
    type: dict
    default: {}
  timeout:
    description:
      - Seconds each npm command may take before it is stopped and its finding is
        V(unknown).
    type: float
    default: 120
  executable:
    description:
      - The npm program, a name looked up on PATH or a full path.
    type: str
    default: npm
notes:
  - npm missing from the host is not a task failure; both findings are V(unknown)
    with the program's name, so the report shows what to install.
  - Running C(npm ci) before the review makes C(npm outdated) compare what is
    installed; without C(node_modules) the lockfile's versions are used, and
    each package's C(current_from) in RV(checks) says which.
  - npm 7 or later is expected; npm 6's audit format gives counts and advisories
    but no fix suggestions.
requirements:
  - Node.js and npm 7 or later on the host that runs the task.
seealso:
  - name: npm audit
    description: npm's documentation of the audit command and its report.
    link: https://docs.npmjs.com/cli/commands/npm-audit
  - name: npm outdated
    description: npm's documentation of the outdated command.
    link: https://docs.npmjs.com/cli/commands/npm-outdated
"""

EXAMPLES = r"""
- name: Review the API's dependencies
  trm.maintenance.npm_audit:
    path: /srv/trm/api
  delegate_to: localhost
  run_once: true
  register: dependency_review__api

- name: Review only production dependencies, fail on high or critical ones
  trm.maintenance.npm_audit:
    path: /srv/trm/frontend
    omit_dev: true
    audit_level: high
    registry: https://npm.internal.example.org/
    major_updates:
      warning: 3
      critical: 10
    fail_on: critical
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
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
    npm dependencies of /srv/trm/api CRITICAL (1 critical, 1 warning, 3 ok):
    2 vulnerable packages of critical severity: lodash, minimist; above the
    critical threshold of 0
checks:
  description:
    - The findings. With both commands and the default O(audit_level) -
      C(vulnerabilities_critical), C(vulnerabilities_high),
      C(vulnerabilities_moderate), C(vulnerabilities_low), C(major_updates) and
      C(updates).
    - A command without a usable answer gives one V(unknown) finding named after
      it (C(audit) or C(outdated)) instead of its findings.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The finding's name.
      type: str
      sample: vulnerabilities_critical
    status:
      description: V(ok), V(warning), V(critical) or V(unknown).
      type: str
      sample: critical
    message:
      description: What was found, naming the first packages.
      type: str
      sample: >-
        2 vulnerable packages of critical severity: lodash, minimist; above the
        critical threshold of 0
    value:
      description: The number of packages counted; null for an V(unknown) finding.
      type: int
      sample: 2
    unit:
      description: Always null; the values are counts of packages.
      type: str
      sample: null
    warning:
      description: The warning bound of the count.
      type: float
      sample: null
    critical:
      description: The critical bound of the count.
      type: float
      sample: 0
    threshold:
      description: The bounds in words.
      type: str
      sample: critical above 0
    action:
      description: What to do next; null when the finding is ok.
      type: str
      sample: >-
        In /srv/trm/api, run npm audit for the advisories; fix with
        lodash: npm audit fix
    severity:
      description: The severity counted, in vulnerability findings.
      type: str
      sample: critical
    packages:
      description:
        - In vulnerability findings, the vulnerable packages of that severity,
          with C(name), C(severity), C(direct) (a dependency of the project itself),
          C(range) (the vulnerable versions), C(via) (the packages that make it
          vulnerable), C(advisories) (C(title), C(url), C(severity), C(range)) and
          C(fix) (what npm suggests, or null when nothing fixes it).
        - In C(major_updates) and C(updates), the packages with C(name),
          C(current), C(current_from) (V(node_modules), V(lockfile), or null when
          unknown), C(wanted) (the newest version the declared range allows),
          C(latest), C(type) (V(dependencies) or V(devDependencies)) and
          C(majors_behind).
      type: list
      elements: dict
      sample:
        - name: mkdirp
          current: 0.5.1
          current_from: node_modules
          wanted: 0.5.1
          latest: 3.0.1
          type: dependencies
          majors_behind: 3
    unknown_current:
      description: In C(updates), the packages whose current version is unknown.
      type: list
      elements: str
      sample: []
    command:
      description: In an V(unknown) finding, the npm command that was run.
      type: str
      sample: npm audit --json
    rc:
      description: In an V(unknown) finding, npm's exit code; null when it did not run.
      type: int
      sample: 1
metrics:
  description:
    - Numbers for reports and trends. From the audit -
      C(vulnerabilities_<severity>) for V(info), V(low), V(moderate), V(high)
      and V(critical), C(vulnerabilities_total) and C(dependencies_total). From
      the outdated list - C(outdated_total), C(major_updates_total) and
      C(outdated_unknown_current). A command without an answer adds none.
  returned: always
  type: dict
  sample:
    vulnerabilities_info: 0
    vulnerabilities_low: 1
    vulnerabilities_moderate: 0
    vulnerabilities_high: 0
    vulnerabilities_critical: 3
    vulnerabilities_total: 4
    dependencies_total: 5
    outdated_total: 3
    major_updates_total: 2
    outdated_unknown_current: 0
"""

# Ansible's layout puts the documentation before the imports.
from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trm.maintenance.plugins.module_utils.npm import (
    AUDIT_LEVELS,
    DEFAULT_MAJOR_UPDATES,
    DEFAULT_TIMEOUT,
    DEFAULT_VULNERABILITIES,
    NPM_COMMANDS,
    registry_secrets,
    run_npm_audit,
)
from ansible_collections.trm.maintenance.plugins.module_utils.runner import (
    FAIL_ON_SPEC,
    run_check,
)

ARGUMENT_SPEC = {
    "path": {"type": "path", "required": True},
    "commands": {
        "type": "list",
        "elements": "str",
        "choices": NPM_COMMANDS,
        "default": list(NPM_COMMANDS),
    },
    "omit_dev": {"type": "bool", "default": False},
    "registry": {"type": "str"},
    "audit_level": {"type": "str", "choices": AUDIT_LEVELS, "default": "low"},
    "vulnerabilities": {"type": "dict", "default": dict(DEFAULT_VULNERABILITIES)},
    "major_updates": {"type": "dict", "default": dict(DEFAULT_MAJOR_UPDATES)},
    "updates": {"type": "dict", "default": {}},
    "timeout": {"type": "float", "default": DEFAULT_TIMEOUT},
    "executable": {"type": "str", "default": "npm"},
    **FAIL_ON_SPEC,
}


def main() -> None:
    """Review the project's dependencies and exit with the check result."""
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.no_log_values.update(registry_secrets(module.params["registry"]))
    run_check(module, run_npm_audit)


if __name__ == "__main__":
    main()
