"""trm.maintenance.maintenance_window and the maintenance_guard role, through Ansible.

The module only reads the clock, so no lab server is needed; ``now`` (and the
role's ``maintenance_guard_now``) sets the clock. Europe/London is on BST (UTC+1)
on every date used here except where a test says otherwise.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

MODULE = "trm.maintenance.maintenance_window"
LONDON = "Europe/London"
# Sunday 2024-06-09 is a second Sunday: only the weekly window opens (02:00 BST).
INSIDE_WEEKLY = "2024-06-09T03:30:00+01:00"
WEDNESDAY = "2024-06-05T12:00:00+01:00"
OVERRIDE_REASON = "INC-2041 emergency patch, approved by the on-call lead"


def run_window(ansible, check_mode: bool = False, **args) -> dict:
    """Run the module with London as the default zone."""
    return ansible.module(MODULE, {"timezone": LONDON, **args}, check_mode=check_mode)


def test_inside_the_weekly_window(ansible):
    result = run_window(ansible, now=INSIDE_WEEKLY)
    assert result["failed"] is False
    assert (result["status"], result["inside"], result["changed"]) == (
        "ok",
        True,
        False,
    )
    assert result["window"]["name"] == "weekly"
    assert (result["window"]["start"], result["window"]["end_utc"]) == (
        "2024-06-09T02:00:00+01:00",
        "2024-06-09T03:00:00Z",
    )
    assert result["seconds_remaining"] == 1800
    assert result["next_window"]["start_utc"] == "2024-06-16T01:00:00Z"
    assert result["summary"] == (
        "Maintenance window OK: Inside the weekly window "
        "(Sun 2024-06-09 02:00-04:00 BST), 30 min left"
    )


def test_outside_the_windows_is_a_warning_with_the_next_start(ansible):
    result = run_window(ansible, now=WEDNESDAY)
    assert result["failed"] is False
    assert (result["status"], result["inside"], result["window"]) == (
        "warning",
        False,
        None,
    )
    assert result["next_window"]["name"] == "weekly"
    assert result["next_window"]["start"] == "2024-06-09T02:00:00+01:00"
    # Wednesday 12:00 to Sunday 02:00 is three days and fourteen hours.
    assert result["seconds_until_next"] == (3 * 24 + 14) * 3600
    assert result["checks"][0]["action"].startswith("Wait for the next window")


def test_fail_outside_fails_with_what_counts_when_and_how(ansible):
    result = run_window(
        ansible, now=WEDNESDAY, require=["monthly", "quarterly"], fail_outside=True
    )
    assert result["failed"] is True
    assert result["msg"] == (
        "Outside the maintenance windows (monthly, quarterly); the next, quarterly, "
        "opens Sun 2024-07-07 02:00 BST (2024-07-07T01:00:00Z), in 31 d 14 h. "
        "Disruptive work must wait for a window; to run it now, set override to "
        "true and override_reason to who overrides the window and why"
    )
    assert result["next_window"]["name"] == "quarterly"


def test_fail_outside_passes_inside(ansible):
    result = run_window(ansible, now=INSIDE_WEEKLY, fail_outside=True)
    assert (result["failed"], result["status"]) == (False, "ok")


def test_an_override_with_a_reason_is_ok_and_recorded(ansible):
    result = run_window(
        ansible,
        now=WEDNESDAY,
        fail_outside=True,
        override=True,
        override_reason=OVERRIDE_REASON,
        override_by="alice",
    )
    assert result["failed"] is False
    assert (result["status"], result["overridden"], result["inside"]) == (
        "ok",
        True,
        False,
    )
    assert (result["override_reason"], result["override_by"]) == (
        OVERRIDE_REASON,
        "alice",
    )
    assert result["summary"].endswith(f"; overridden by alice: {OVERRIDE_REASON}")


def test_an_override_without_a_reason_fails_clearly(ansible):
    result = run_window(ansible, now=WEDNESDAY, override=True)
    assert result["failed"] is True
    assert result["option"] == "override_reason"
    assert result["msg"] == (
        "Option 'override_reason' is required when override is true: say who "
        "overrides the window and why; got None"
    )


@pytest.mark.parametrize(
    ("args", "option", "value"),
    [
        (
            {"windows": [{"schedule": "weekly", "timezone": "Europe/Londn"}]},
            "windows[0].timezone",
            "Europe/Londn",
        ),
        ({"timezone": "Mars/Olympus"}, "timezone", "Mars/Olympus"),
    ],
)
def test_an_invalid_time_zone_names_the_option_and_value(ansible, args, option, value):
    result = ansible.module(MODULE, {"now": WEDNESDAY, **args})
    assert result["failed"] is True
    assert result["option"] == option
    assert result["msg"].startswith(
        f"Option '{option}' is not a known IANA time zone name such as 'Europe/London'"
    )
    assert result["msg"].endswith(f"; got '{value}'")


def test_a_bad_start_names_the_window_and_value(ansible):
    windows = [{"schedule": "weekly"}, {"schedule": "monthly", "start": "26:00"}]
    result = run_window(ansible, now=WEDNESDAY, windows=windows)
    assert result["failed"] is True
    assert result["msg"] == (
        "Option 'windows[1].start' must be a time of day as \"HH:MM\", in quotes; "
        "got '26:00'"
    )


def test_check_mode_gives_the_same_answer(ansible):
    normal = run_window(ansible, now=INSIDE_WEEKLY)
    checked = run_window(ansible, check_mode=True, now=INSIDE_WEEKLY)
    keys = ("status", "summary", "window", "next_window", "seconds_remaining")
    assert {k: checked[k] for k in keys} == {k: normal[k] for k in keys}
    assert checked["changed"] is False


def test_without_now_the_clock_is_read(ansible):
    before = datetime.now(timezone.utc).replace(microsecond=0)
    result = ansible.module(MODULE, {})
    after = datetime.now(timezone.utc)
    judged = datetime.strptime(result["now"], "%Y-%m-%dT%H:%M:%SZ")
    assert before <= judged.replace(tzinfo=timezone.utc) <= after
    assert result["status"] == ("ok" if result["inside"] else "warning")


def test_unquoted_yaml_times_work(ansible, tmp_path):
    # Written by hand: a user's unquoted 02:00 and ISO timestamp, as YAML reads them.
    play = tmp_path / "unquoted.yml"
    out = tmp_path / "unquoted.json"
    play.write_text(
        f"""
- hosts: localhost
  gather_facts: false
  vars:
    ansible_python_interpreter: {sys.executable}
  tasks:
    - name: Check a window written without quotes
      trm.maintenance.maintenance_window:
        windows:
          - name: saturday-night
            schedule: weekly
            weekday: saturday
            start: 23:30
            duration: 150
        now: 2024-06-09T01:00:00Z
      register: result
    - name: Save the result
      ansible.builtin.copy:
        content: "{{{{ result | to_json }}}}"
        dest: {out}
"""
    )
    run = ansible.playbook(play, "-i", "localhost,", "-c", "local")
    assert run.rc == 0, run.stdout + run.stderr
    result = json.loads(out.read_text())
    assert result["window"]["start_utc"] == "2024-06-08T23:30:00Z"
    assert result["seconds_remaining"] == 3600


# The maintenance_guard role in a play


def guard_play(
    ansible,
    tmp_path: Path,
    guard_vars: dict,
    *args: str,
    hosts: int = 1,
    report: bool = False,
) -> tuple:
    """Run a play that guards a marker task; return the run, entries and markers."""
    results = tmp_path / "results.json"
    inventory = tmp_path / "hosts.yml"
    local = {"ansible_connection": "local"}
    inventory.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "hosts": {f"node{index}": local for index in range(hosts)},
                    "vars": {"ansible_python_interpreter": sys.executable},
                }
            }
        )
    )
    work = {
        "name": "Do the disruptive work",
        "ansible.builtin.copy": {
            "content": "done\n",
            "dest": f"{tmp_path}/ran-{{{{ inventory_hostname }}}}",
        },
    }
    save = {
        "name": "Save the report entries",
        "ansible.builtin.copy": {
            "content": "{{ maintenance_results | to_json }}",
            "dest": str(results),
        },
        "run_once": True,
        "check_mode": False,
    }
    write_report = {
        "name": "Write the report",
        "ansible.builtin.include_role": {"name": "trm.maintenance.report"},
        "vars": {
            "report_dir": str(tmp_path / "reports"),
            "report_formats": ["markdown"],
            "report_history": 0,
            "report_performed_by": "alice",
        },
    }
    guard = {
        "name": "Guard the work",
        "ansible.builtin.include_role": {"name": "trm.maintenance.maintenance_guard"},
        "vars": guard_vars,
    }
    play = {
        "hosts": "all",
        "gather_facts": False,
        "vars": {"maintenance_cadence": "weekly"},
        "tasks": [
            {
                "block": [guard, work],
                "always": [save, write_report] if report else [save],
            }
        ],
    }
    path = tmp_path / "guard.yml"
    path.write_text(yaml.safe_dump([play], sort_keys=False))
    run = ansible.playbook(path, "-i", str(inventory), *args)
    entries = json.loads(results.read_text()) if results.exists() else None
    ran = sorted(marker.name for marker in tmp_path.glob("ran-*"))
    return run, entries, ran


def flat(text: str) -> str:
    """``text`` with its line breaks and indents collapsed, as Ansible wraps it."""
    return " ".join(text.split())


def test_the_guard_refuses_outside_the_window(ansible, tmp_path):
    guard_vars = {
        "maintenance_guard_now": WEDNESDAY,
        "maintenance_guard_timezone": LONDON,
        "maintenance_guard_require": ["weekly"],
    }
    run, entries, ran = guard_play(ansible, tmp_path, guard_vars, hosts=2)
    assert run.rc != 0
    assert ran == []
    assert (
        "Outside the maintenance windows (weekly); the next, weekly, opens "
        "Sun 2024-06-09 02:00 BST (2024-06-09T01:00:00Z), in 3 d 14 h. Disruptive "
        "work waits for a window; to run it now, set maintenance_guard_override to "
        "true and maintenance_guard_override_reason to who overrides the window and why"
    ) in flat(run.stdout)
    assert len(entries) == 1
    entry = entries[0]
    assert (entry["section"], entry["cadence"], entry["role"]) == (
        "Maintenance window",
        "weekly",
        "maintenance_guard",
    )
    assert entry["task"] == "Check the maintenance window before disruptive work"
    assert (entry["result"]["status"], entry["result"]["inside"]) == ("warning", False)


def test_the_guard_lets_the_work_run_inside_the_window(ansible, tmp_path):
    guard_vars = {
        "maintenance_guard_now": INSIDE_WEEKLY,
        "maintenance_guard_timezone": LONDON,
        "maintenance_guard_require": ["weekly"],
        "maintenance_guard_task": "Check the window before the failover drill",
    }
    run, entries, ran = guard_play(ansible, tmp_path, guard_vars, hosts=2)
    assert run.rc == 0, run.stdout
    assert ran == ["ran-node0", "ran-node1"]
    assert len(entries) == 1
    assert entries[0]["task"] == "Check the window before the failover drill"
    result = entries[0]["result"]
    assert (result["status"], result["inside"], result["window"]["name"]) == (
        "ok",
        True,
        "weekly",
    )


def test_the_guard_refuses_the_weekly_window_when_monthly_is_required(
    ansible, tmp_path
):
    guard_vars = {
        "maintenance_guard_now": "2024-06-09T02:30:00Z",
        "maintenance_guard_require": ["monthly"],
    }
    run, entries, ran = guard_play(ansible, tmp_path, guard_vars)
    assert (run.rc != 0, ran) == (True, [])
    assert entries[0]["result"]["next_window"]["start_utc"] == "2024-07-07T02:00:00Z"


def test_the_guard_records_an_override_with_who_and_why(ansible, tmp_path):
    guard_vars = {
        "maintenance_guard_now": WEDNESDAY,
        "maintenance_guard_override": True,
        "maintenance_guard_override_reason": OVERRIDE_REASON,
        "maintenance_guard_override_by": "alice",
    }
    run, entries, ran = guard_play(ansible, tmp_path, guard_vars, report=True)
    assert run.rc == 0, run.stdout
    assert ran == ["ran-node0"]
    result = entries[0]["result"]
    assert (result["status"], result["overridden"]) == ("ok", True)
    assert (result["override_reason"], result["override_by"]) == (
        OVERRIDE_REASON,
        "alice",
    )
    log = (tmp_path / "reports").glob("*-weekly/maintenance-log.md")
    assert f"overridden by alice: {OVERRIDE_REASON}" in next(log).read_text()


def test_the_guard_refuses_an_override_without_a_reason(ansible, tmp_path):
    guard_vars = {
        "maintenance_guard_now": WEDNESDAY,
        "maintenance_guard_override": True,
    }
    run, entries, ran = guard_play(ansible, tmp_path, guard_vars)
    assert (run.rc != 0, ran) == (True, [])
    assert (
        "The maintenance window could not be checked: Option 'override_reason' is "
        "required when override is true"
    ) in flat(run.stdout)
    assert entries[0]["result"]["failed"] is True


@pytest.mark.parametrize(
    ("now", "refused"), [(WEDNESDAY, True), (INSIDE_WEEKLY, False)]
)
def test_the_guard_judges_the_same_in_check_mode(ansible, tmp_path, now, refused):
    guard_vars = {"maintenance_guard_now": now, "maintenance_guard_timezone": LONDON}
    run, entries, _unused = guard_play(ansible, tmp_path, guard_vars, "--check")
    assert (run.rc != 0) is refused
    assert entries[0]["result"]["inside"] is not refused


def test_the_module_reads_the_operators_shorthand(ansible):
    result = run_window(
        ansible,
        windows=["Sun 02:00-04:00", "first Sun 02:00-06:00"],
        now=INSIDE_WEEKLY,
        require=["Sun 02:00-04:00"],
    )
    assert result["failed"] is False, result
    assert (result["status"], result["inside"]) == ("ok", True)
    assert result["window"]["name"] == "Sun 02:00-04:00"
    assert result["window"]["end_utc"] == "2024-06-09T03:00:00Z"
    # The first Sunday of July 2024 is the 7th: 02:00 BST is 01:00 UTC.
    later = run_window(
        ansible,
        windows=["first Sun 02:00-06:00"],
        now=INSIDE_WEEKLY,
    )
    assert later["next_window"]["start_utc"] == "2024-07-07T01:00:00Z"
    assert later["next_window"]["end_utc"] == "2024-07-07T05:00:00Z"


def test_a_bad_shorthand_names_the_window_and_value(ansible):
    result = run_window(ansible, windows=["Sun 02:00"], now=INSIDE_WEEKLY)
    assert result["failed"] is True
    assert result["msg"].startswith("Option 'windows[0]' must be a shorthand such as")
    assert result["msg"].endswith("; got 'Sun 02:00'")
    assert "Traceback" not in result["msg"]


def test_the_guard_takes_shorthand_windows(ansible, tmp_path):
    guard_vars = {
        "maintenance_guard_windows": ["Sun 02:00-04:00"],
        "maintenance_guard_now": INSIDE_WEEKLY,
        "maintenance_guard_timezone": LONDON,
    }
    run, entries, ran = guard_play(ansible, tmp_path, guard_vars)
    assert run.rc == 0, run.stdout
    assert ran == ["ran-node0"]
    assert entries[0]["result"]["window"]["name"] == "Sun 02:00-04:00"
