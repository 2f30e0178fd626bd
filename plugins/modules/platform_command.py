#!/usr/bin/python
# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: platform_command
short_description: Run one of the platform's maintenance commands and report it as a check
version_added: 1.0.0
author: trm.maintenance contributors (@trm-platform)
description:
  - Runs a command that the platform provides for its maintenance (rotating API
    keys, clearing and warming the cache, creating indexes, checking index
    health), with a timeout, and returns its exit code and the tail of its output
    in the shape of a trm.maintenance check result.
  - The finding is V(ok) when the command exits with 0 and V(critical) when it
    exits with another code, does not finish within O(timeout), or cannot start.
  - A command that does not finish in time is stopped, together with every
    process it started (SIGTERM, then SIGKILL five seconds later).
  - In check mode, a command with O(creates_change=true) is not run; the result
    says what would run and reports C(changed=true). A command with
    O(creates_change=false) runs in check mode too.
  - The command runs without a shell, so no quoting, pipes or variables are
    interpreted; write C([sh, -c, "..."]) where a shell is needed.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Commands that change something are planned, not run.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  name:
    description:
      - The command's name, used as the finding's name and in messages.
    type: str
    required: true
  command:
    description:
      - The program and its arguments, as a list, for example
        V([npm, run, "cache:clear"]). The program is looked up on PATH.
    type: list
    elements: str
    required: true
  chdir:
    description:
      - The folder to run the command in, usually the application's folder. When
        it does not exist, the command does not run and the finding is critical.
    type: path
  environment:
    description:
      - Environment variables to set for the command, on top of the module's own.
      - The values never appear in the result, not even in its C(invocation); only
        the names do. Values of variables whose names suggest a secret (a name
        containing C(KEY), C(TOKEN), C(SECRET), C(PASSWORD), C(AUTH), C(URI), C(URL)
        and the like) and at least six characters long are also hidden in the
        command's output.
    type: dict
    default: {}
  secret_environment:
    description:
      - Environment variables whose values are secrets, whatever their names.
        Ansible hides their values everywhere in the result, including the
        command's output.
      - Set from a vault; these win over O(environment) for the same name.
    type: dict
    default: {}
  creates_change:
    description:
      - Whether running the command changes something. Such a command is not run in
        check mode, and returns C(changed=true) when it runs.
    type: bool
    default: true
  timeout:
    description:
      - Seconds the command may run before it is stopped and the finding is
        critical.
    type: float
    default: 300
  output_lines:
    description:
      - How many of the last lines of stdout and of stderr to return. V(0) returns
        none, for commands whose output should not be kept.
    type: int
    default: 20
  fail_on:
    description:
      - Fail the task when the command's status is at least this bad. When not set,
        a failed command is a critical finding for the report, not a task failure;
        the task fails only for options that cannot be right.
    type: str
    choices: [warning, unknown, critical]
notes:
  - Credentials written into the output as C(scheme://user:password@host),
    C(Bearer) tokens, or as C(password=...), C(token=...), C(secret=...) and
    C(api_key=...) are masked in the returned output, besides the values
    described in O(environment) and O(secret_environment).
  - The result carries C(changed), as a command task does, and is otherwise shaped
    like every trm.maintenance check; O(fail_on) turns a critical command into a
    task failure.
seealso:
  - module: ansible.builtin.command
"""

EXAMPLES = r"""
- name: Clear the application cache
  trm.maintenance.platform_command:
    name: cache-clear
    command: [npm, run, "cache:clear"]
    chdir: /srv/trm/api
    environment:
      NODE_ENV: production
    secret_environment:
      REDIS_URL: "{{ vault_redis_url }}"
    timeout: 120
  register: platform_commands__cache_clear

- name: Check the index health (read-only, runs in check mode too)
  trm.maintenance.platform_command:
    name: index-health
    command: [npm, run, "db:indexes:health"]
    chdir: /srv/trm/api
    creates_change: false
    fail_on: critical
"""

RETURN = r"""
status:
  description: V(ok) when the command exited with 0 or was planned, else V(critical).
  returned: always
  type: str
  sample: critical
summary:
  description: One line for a person.
  returned: always
  type: str
  sample: >-
    Platform command cache-clear CRITICAL (1 critical): cache-clear exited with
    code 1 after 0.4 s: Error: connect ECONNREFUSED 127.0.0.1:6379
changed:
  description:
    - True when a command with O(creates_change=true) ran, or would run in check
      mode.
  returned: always
  type: bool
  sample: true
checks:
  description: One finding, named after the command.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The command's name.
      type: str
      sample: cache-clear
    status:
      description: V(ok) or V(critical).
      type: str
      sample: ok
    message:
      description: What happened, with the last line of the relevant output.
      type: str
      sample: "cache-clear finished in 1.2 s: Cache cleared (1432 keys)"
    value:
      description: The exit code; null when the command did not run to its end.
      type: int
      sample: 0
    action:
      description: What to do next; null when the command succeeded.
      type: str
      sample: "Read the output of 'npm run cache:clear', fix the cause and run it again"
    command:
      description: The command as typed in a shell, with secrets masked.
      type: str
      sample: "npm run cache:clear"
    chdir:
      description: The folder it ran in.
      type: str
      sample: /srv/trm/api
    stdout:
      description: The last O(output_lines) lines of stdout.
      type: str
      sample: Cache cleared (1432 keys)
    stderr:
      description: The last O(output_lines) lines of stderr.
      type: str
      sample: ""
    rc:
      description: The exit code; null when the command did not run to its end.
      type: int
      sample: 0
    seconds:
      description: How long the command ran.
      type: float
      sample: 1.204
    timed_out:
      description: Whether the command was stopped at O(timeout).
      type: bool
      sample: false
    planned:
      description: Present and true when check mode kept the command from running.
      type: bool
      sample: true
metrics:
  description: C(rc) and C(seconds) of a command that started; empty otherwise.
  returned: always
  type: dict
  sample:
    rc: 0
    seconds: 1.204
name:
  description: The command's name.
  returned: always
  type: str
  sample: cache-clear
cmd:
  description: The program and its arguments, with secrets masked.
  returned: always
  type: list
  elements: str
  sample: [npm, run, "cache:clear"]
chdir:
  description: The folder the command ran in, or would run in.
  returned: always
  type: str
  sample: /srv/trm/api
planned:
  description: True when check mode kept the command from running.
  returned: always
  type: bool
  sample: false
exit_code:
  description:
    - The exit code; null when the command was planned, timed out or could not
      start.
    - Named so, not C(rc), because Ansible fails every task whose result has a
      non-zero C(rc), and a failed command is a finding, not a task failure.
  returned: always
  type: int
  sample: 0
seconds:
  description: How long the command ran; null when it was planned.
  returned: always
  type: float
  sample: 1.204
timed_out:
  description: Whether the command was stopped at O(timeout).
  returned: always
  type: bool
  sample: false
stdout:
  description: The last O(output_lines) lines of stdout, secrets masked.
  returned: always
  type: str
  sample: Cache cleared (1432 keys)
stdout_truncated:
  description: Whether earlier lines of stdout were left out.
  returned: always
  type: bool
  sample: false
stderr:
  description: The last O(output_lines) lines of stderr, secrets masked.
  returned: always
  type: str
  sample: ""
stderr_truncated:
  description: Whether earlier lines of stderr were left out.
  returned: always
  type: bool
  sample: false
"""

# Ansible's layout puts the documentation before the imports.
from functools import partial

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trm.maintenance.plugins.module_utils.commands import (
    DEFAULT_OUTPUT_LINES,
    DEFAULT_TIMEOUT,
    run_platform_command,
    take_environment,
)
from ansible_collections.trm.maintenance.plugins.module_utils.runner import (
    FAIL_ON_SPEC,
    run_check,
)

ARGUMENT_SPEC = {
    "name": {"type": "str", "required": True},
    "command": {"type": "list", "elements": "str", "required": True},
    "chdir": {"type": "path"},
    "environment": {"type": "dict", "default": {}},
    "secret_environment": {"type": "dict", "default": {}, "no_log": True},
    "creates_change": {"type": "bool", "default": True},
    "timeout": {"type": "float", "default": DEFAULT_TIMEOUT},
    "output_lines": {"type": "int", "default": DEFAULT_OUTPUT_LINES},
    **FAIL_ON_SPEC,
}


def main() -> None:
    """Run or plan the command and exit with its check result."""
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    environment, secrets = take_environment(module)
    check = partial(
        run_platform_command,
        check_mode=module.check_mode,
        environment=environment,
        secrets=secrets,
    )
    run_check(module, check)


if __name__ == "__main__":
    main()
