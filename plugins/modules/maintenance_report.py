#!/usr/bin/python
# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: maintenance_report
short_description: Write the maintenance log from the results of the check roles
version_added: 1.0.0
author: trm.maintenance contributors (@trm-platform)
description:
  - Turns the entries that the check roles append to C(maintenance_results) into
    a maintenance log in the guide's template, written as Markdown, JSON,
    JUnit XML and a standalone HTML page.
  - The files go to a dated folder, C(<report_dir>/<YYYY-MM-DD>-<cadence>/). A
    second run on the same day replaces that folder's files.
  - The JSON report of earlier runs of the same cadence is read to show how each
    metric changed since the latest of them.
  - Secrets that leaked into messages are masked before anything is written or
    returned; the webhook URL is never written anywhere.
  - The module never fails because of findings. It returns O(fail_on) as
    RV(fail_on_reached), so that the caller decides (the C(trm.maintenance.report)
    role fails the play).
options:
  results:
    description:
      - The entries to report, usually C(maintenance_results).
      - An automated entry has C(section), C(task), C(cadence), C(role) and
        C(result), the registered result of a check module, of a task that
        failed (ran with C(ignore_errors)), or of a skipped task.
      - A failed task counts as C(unknown) with the message C(task failed) and
        its C(msg); a skipped task is listed but not counted.
      - A manual entry has C(kind=manual), C(section), C(task), C(items) (a list
        of strings; one string is one item) and optionally C(done), C(done_by),
        C(done_at) and C(notes). Its items are checklist lines to tick, never
        counted as passes.
    type: list
    elements: dict
    required: true
  cadence:
    description:
      - The cadence of the run, such as C(daily) or C(weekly). It names the
        report folder, so it is one word of letters, digits, C(-) or C(_).
    type: str
    required: true
  report_dir:
    description:
      - The folder that holds the dated report folders. It is created if needed.
    type: path
    required: true
  formats:
    description:
      - The files to write.
    type: list
    elements: str
    choices: [markdown, json, junit, html]
    default: [markdown, json, junit, html]
  performed_by:
    description:
      - Who performed the maintenance. Defaults to the user the module runs as.
    type: str
  date:
    description:
      - The day of the report as an ISO date, or an ISO date and time that is
        also shown as the finish time. Defaults to now.
    type: str
  started:
    description:
      - When the maintenance started, as an ISO date and time.
    type: str
  title:
    description:
      - The title of the log. Defaults to C(Maintenance Log - <date>).
    type: str
  notes:
    description:
      - Notes to add to the log's Notes section.
    type: list
    elements: str
    default: []
  alert_response:
    description:
      - The response that the next actions of each status call for, keyed by
        status. Statuses not given keep the guide's response shown as default.
    type: dict
    default:
      critical: Page the on-call engineer; respond within 15 minutes
      unknown: Find out why the check could not run; respond within 30 minutes (high)
      warning: Respond within 30 minutes (high)
  fail_on:
    description:
      - The status from which RV(fail_on_reached) is true; C(never) keeps it false.
      - The module itself never fails because of findings.
    type: str
    choices: [never, warning, unknown, critical]
    default: critical
  history:
    description:
      - How many earlier JSON reports of the same cadence in O(report_dir) to
        read for trends. V(0) turns trends off.
    type: int
    default: 30
  redact:
    description:
      - Values to mask wherever they appear in the report, such as passwords
        that a failing task may have printed.
    type: list
    elements: str
    default: []
  webhook_url:
    description:
      - A Slack-compatible incoming webhook to post the verdict and the top issues
        to. Its URL is a secret; it is never written to the report.
      - Only C(http) and C(https) URLs are accepted; any other scheme fails the
        task with a message that shows the scheme and the host only.
      - A failure to post is returned in RV(webhook) and as a warning, never as a
        task failure.
    type: str
  webhook_timeout:
    description:
      - Seconds to wait for the webhook to answer.
    type: int
    default: 10
  webhook_validate_certs:
    description:
      - Whether to validate the webhook's TLS certificate.
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Writes nothing and posts nothing; returns the paths and the content
      that would be written.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Trends compare each metric with the latest earlier report of the same cadence
    that holds it; a change of 20% or more is named in the Notes section.
  - Metrics are keyed C(<section>.<metric>), with the section in lower case and
    underscores; when two entries of one section report the same metric name the
    task joins the key.
"""

EXAMPLES = r"""
- name: Write the daily maintenance log
  trm.maintenance.maintenance_report:
    results: "{{ maintenance_results }}"
    cadence: daily
    report_dir: /var/lib/maintenance/reports
    performed_by: "{{ awx_user_name | default('operator') }}"
    notes:
      - Certificates renewed by hand on the staging ingress
  delegate_to: localhost
  run_once: true
  register: report

- name: Write only the JUnit file and post the verdict to Slack
  trm.maintenance.maintenance_report:
    results: "{{ maintenance_results }}"
    cadence: weekly
    report_dir: "{{ playbook_dir }}/../reports"
    formats: [junit]
    fail_on: warning
    webhook_url: "{{ vault_slack_webhook_url }}"
    redact:
      - "{{ vault_mongodb_password }}"
  delegate_to: localhost
  run_once: true
  register: report

- name: Fail the play when the report says so
  ansible.builtin.fail:
    msg: "{{ report.summary }}"
  when: report.fail_on_reached
"""

RETURN = r"""
changed:
  description: Whether the report files were (or in check mode would be) written.
  returned: always
  type: bool
  sample: true
status:
  description: The worst status of the counted entries; C(unknown) when none ran.
  returned: always
  type: str
  sample: critical
summary:
  description: One line with the verdict, the counts and the worst issues.
  returned: always
  type: str
  sample: "Daily maintenance CRITICAL (1 critical, 1 warning, 3 ok): Storage: Disk
    used is 95%, above the critical threshold of 90%"
counts:
  description: How many entries have each status, and what is not counted.
  returned: always
  type: dict
  contains:
    ok:
      description: Entries whose status is ok.
      type: int
      sample: 3
    warning:
      description: Entries whose status is warning.
      type: int
      sample: 1
    unknown:
      description: Entries whose status is unknown, failed tasks included.
      type: int
      sample: 0
    critical:
      description: Entries whose status is critical.
      type: int
      sample: 1
    skipped:
      description: Skipped tasks, listed in the notes and not counted.
      type: int
      sample: 0
    manual_open:
      description: Manual review items still to tick.
      type: int
      sample: 2
report_dir:
  description: The dated folder the files go to.
  returned: always
  type: str
  sample: /var/lib/maintenance/reports/2024-05-06-daily
files:
  description: The path of each file written, null for a format not written.
  returned: always
  type: dict
  contains:
    markdown:
      description: The Markdown maintenance log.
      type: str
      sample: /var/lib/maintenance/reports/2024-05-06-daily/maintenance-log.md
    json:
      description: The JSON report that later runs read for trends.
      type: str
      sample: /var/lib/maintenance/reports/2024-05-06-daily/maintenance-log.json
    junit:
      description: The JUnit XML file.
      type: str
      sample: /var/lib/maintenance/reports/2024-05-06-daily/junit.xml
    html:
      description: The standalone HTML page.
      type: str
      sample: /var/lib/maintenance/reports/2024-05-06-daily/maintenance-log.html
issues:
  description: Every finding that is not ok, worst first.
  returned: always
  type: list
  elements: dict
  contains:
    section:
      description: The report section of the entry.
      type: str
      sample: Storage
    task:
      description: The task of the entry.
      type: str
      sample: Check disk usage
    check:
      description: The name of the finding.
      type: str
      sample: disk_used
    status:
      description: The status of the finding.
      type: str
      sample: critical
    message:
      description: What was found.
      type: str
      sample: Disk used is 95%, above the critical threshold of 90%
    value:
      description: The measured value, if any.
      type: raw
      sample: 95
    unit:
      description: The unit of the value, if any.
      type: str
      sample: "%"
    threshold:
      description: The thresholds in words, if any.
      type: str
      sample: warning above 80%, critical above 90%
    action:
      description: What to do about it.
      type: str
      sample: Free space on the data volume or grow it
next_actions:
  description: The actions to take, worst first, one per section and wording.
  returned: always
  type: list
  elements: dict
  contains:
    status:
      description: The worst status that calls for the action.
      type: str
      sample: critical
    response:
      description: The alert response for that status.
      type: str
      sample: Page the on-call engineer; respond within 15 minutes
    action:
      description: What to do.
      type: str
      sample: Free space on the data volume or grow it
    section:
      description: The report section the action belongs to.
      type: str
      sample: Storage
trends:
  description:
    - How each metric changed since the latest earlier report of the cadence that
      holds it, keyed C(<section>.<metric>).
  returned: always
  type: dict
  sample:
    storage.disk_used_pct:
      current: 95
      previous: 70
      previous_date: "2024-05-05"
      change: 25
      change_pct: 35.7
      notable: true
      history:
        - date: "2024-05-05"
          value: 70
  contains:
    current:
      description: The value in this report.
      type: float
    previous:
      description: The value in the latest earlier report.
      type: float
    previous_date:
      description: The date of that report.
      type: str
    change:
      description: The current value minus the previous one.
      type: float
    change_pct:
      description: The change in percent of the previous value; null when that was 0.
      type: float
    notable:
      description: Whether the change is large enough to be named in the notes.
      type: bool
    history:
      description: The metric in each earlier report read, oldest first.
      type: list
      elements: dict
webhook:
  description: What happened to the webhook post.
  returned: always
  type: dict
  contains:
    sent:
      description: Whether the webhook accepted the post.
      type: bool
      sample: true
    status_code:
      description: The HTTP status the webhook answered with, if it answered.
      type: int
      sample: 200
    error:
      description: Why the post failed, if it did.
      type: str
      sample: "could not reach the webhook: [Errno 111] Connection refused"
fail_on_reached:
  description: Whether the status is at least as bad as O(fail_on).
  returned: always
  type: bool
  sample: true
content:
  description: The text each file would get, keyed by format.
  returned: in check mode
  type: dict
  sample:
    markdown: "# Maintenance Log - 2024-05-06\n..."
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trm.maintenance.plugins.module_utils import (
    errors,
    report,
    report_render,
)

ARGUMENT_SPEC = {
    "results": {"type": "list", "elements": "dict", "required": True},
    "cadence": {"type": "str", "required": True},
    "report_dir": {"type": "path", "required": True},
    "formats": {
        "type": "list",
        "elements": "str",
        "choices": report_render.FORMATS,
        "default": list(report_render.FORMATS),
    },
    "performed_by": {"type": "str"},
    "date": {"type": "str"},
    "started": {"type": "str"},
    "title": {"type": "str"},
    "notes": {"type": "list", "elements": "str", "default": []},
    "alert_response": {"type": "dict", "default": dict(report.ALERT_RESPONSE)},
    "fail_on": {
        "type": "str",
        "choices": report.FAIL_ON_CHOICES,
        "default": "critical",
    },
    "history": {"type": "int", "default": 30},
    "redact": {"type": "list", "elements": "str", "default": [], "no_log": True},
    "webhook_url": {"type": "str", "no_log": True},
    "webhook_timeout": {"type": "int", "default": 10},
    "webhook_validate_certs": {"type": "bool", "default": True},
}


def main() -> None:
    """Write the report and return what it says."""
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        result = report.produce_report(
            module.params, check_mode=module.check_mode, warn=module.warn
        )
    except errors.MaintenanceError as error:
        option = getattr(error, "option", None)
        module.fail_json(msg=str(error), **({"option": option} if option else {}))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
