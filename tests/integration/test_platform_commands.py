"""trm.maintenance.platform_command and the platform_commands role, through Ansible.

The platform's commands are small shell scripts that each test writes into an
application folder of its own: one that succeeds, one that fails, one that hangs
(with a child process, to see that the timeout stops both), one that leaves a
marker file to show whether it ran, and one that prints its secrets.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils.report import (
    parse_entries,
)

MODULE = "trm.maintenance.platform_command"
SECRET = "s3cret-rotation-token"
PLAIN = "plain-setting-value"

SCRIPTS = {
    "succeed": 'echo "warming 3 caches"\necho "Cache warmed (1432 keys)"',
    "fail": 'echo "connecting"\necho "Error: index build failed on referrals" >&2\n'
    "exit 4",
    "hang": 'sleep 60 &\necho $! > "$PWD/child.pid"\necho "waiting for the lock"\nwait',
    "mark": 'echo "$1" >> "$PWD/ran"\necho "marked $1"',
    "leak": 'echo "token in use: $ROTATION_TOKEN"\necho "setting: $PLAIN_SETTING"\n'
    'echo "db: mongodb://app:pa55word-xyz@db:27017/trm"',
}


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    """An application folder with the commands' scripts in bin/."""
    app = tmp_path / "app"
    (app / "bin").mkdir(parents=True)
    for name, body in SCRIPTS.items():
        path = app / "bin" / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return app


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not status.exists() or status.read_text().split(") ", 1)[-1][:1] != "Z"


def gone(pid: int, *, within: float = 5.0) -> bool:
    """Whether process ``pid`` ends within ``within`` seconds of being signalled."""
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def ran(app: Path) -> list:
    """The arguments of every run of the mark script, in order."""
    marker = app / "ran"
    return marker.read_text().splitlines() if marker.exists() else []


# The module


def test_a_succeeding_command_is_ok_with_its_output(ansible, app_dir):
    result = ansible.module(
        MODULE,
        {"name": "cache-warm", "command": ["bin/succeed"], "chdir": str(app_dir)},
    )
    assert result["failed"] is False
    assert (result["status"], result["changed"], result["exit_code"]) == ("ok", True, 0)
    assert result["stdout"] == "warming 3 caches\nCache warmed (1432 keys)"
    finding = result["checks"][0]
    assert finding["name"] == "cache-warm"
    assert finding["message"].startswith("cache-warm finished in ")
    assert finding["message"].endswith(": Cache warmed (1432 keys)")
    assert result["summary"].startswith("Platform command cache-warm OK (1 ok)")


def test_a_failing_command_is_critical_but_not_a_task_failure(ansible, app_dir):
    result = ansible.module(
        MODULE, {"name": "db-indexes", "command": ["bin/fail"], "chdir": str(app_dir)}
    )
    assert result["failed"] is False
    finding = result["checks"][0]
    assert (result["status"], finding["rc"], result["exit_code"]) == ("critical", 4, 4)
    assert finding["message"].startswith("db-indexes exited with code 4 after ")
    assert finding["message"].endswith(": Error: index build failed on referrals")
    assert finding["stderr"] == "Error: index build failed on referrals"
    assert finding["stdout"] == "connecting"
    assert finding["action"] == (
        "Read the output of 'bin/fail', fix the cause and run it again"
    )


def test_fail_on_critical_fails_the_task(ansible, app_dir):
    result = ansible.module(
        MODULE,
        {
            "name": "db-indexes",
            "command": ["bin/fail"],
            "chdir": str(app_dir),
            "fail_on": "critical",
        },
    )
    assert result["failed"] is True
    assert result["msg"] == result["summary"]


def test_a_hanging_command_is_stopped_at_its_timeout(ansible, app_dir):
    started = time.monotonic()
    result = ansible.module(
        MODULE,
        {
            "name": "cache-clear",
            "command": ["bin/hang"],
            "chdir": str(app_dir),
            "timeout": 3,
        },
    )
    elapsed = time.monotonic() - started
    finding = result["checks"][0]
    assert (result["status"], result["timed_out"]) == ("critical", True)
    assert finding["message"] == (
        "cache-clear did not finish within 3 s and was stopped: waiting for the lock"
    )
    assert result["exit_code"] is None or result["exit_code"] < 0
    # The script's own child was stopped with it.
    assert gone(int((app_dir / "child.pid").read_text()))
    assert elapsed < 40


def test_check_mode_plans_a_changing_command_and_runs_a_read_only_one(ansible, app_dir):
    planned = ansible.module(
        MODULE,
        {"name": "rotate", "command": ["bin/mark", "rotate"], "chdir": str(app_dir)},
        check_mode=True,
    )
    read_only = ansible.module(
        MODULE,
        {
            "name": "index-health",
            "command": ["bin/mark", "health"],
            "chdir": str(app_dir),
            "creates_change": False,
        },
        check_mode=True,
    )
    assert ran(app_dir) == ["health"]
    assert (planned["status"], planned["changed"], planned["planned"]) == (
        "ok",
        True,
        True,
    )
    assert planned["checks"][0]["message"] == (
        f"Check mode: rotate would run 'bin/mark rotate' in {app_dir}; not run"
    )
    assert (read_only["changed"], read_only["planned"], read_only["stdout"]) == (
        False,
        False,
        "marked health",
    )


def test_secrets_never_appear_in_the_result(ansible, app_dir):
    result = ansible.module(
        MODULE,
        {
            "name": "rotate",
            "command": ["bin/leak"],
            "chdir": str(app_dir),
            "environment": {"PLAIN_SETTING": PLAIN},
            "secret_environment": {"ROTATION_TOKEN": SECRET},
        },
    )
    text = json.dumps(result)
    assert SECRET not in text
    assert "pa55word-xyz" not in text
    # A plain setting may show in the output, where the command printed it.
    assert result["stdout"].splitlines() == [
        "token in use: ********",
        f"setting: {PLAIN}",
        "db: mongodb://app:********@db:27017/trm",
    ]


def test_the_environment_is_not_printed_even_at_high_verbosity(
    ansible, app_dir, tmp_path
):
    task = {
        "name": "Run a command with an environment",
        MODULE: {
            "name": "quiet",
            "command": ["bin/succeed"],
            "chdir": str(app_dir),
            "environment": {"PLAIN_SETTING": PLAIN},
            "secret_environment": {"ROTATION_TOKEN": SECRET},
        },
    }
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable},
            "tasks": [task],
        }
    ]
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps(play))

    run = ansible.playbook(playbook, "-i", "localhost,", "-c", "local", "-vvv")

    assert run.rc == 0, run.stdout + run.stderr
    # -vvv prints the module's arguments as Ansible recorded them.
    assert "module_args:" in run.stdout
    assert "PLAIN_SETTING: '********'" in run.stdout
    assert PLAIN not in run.stdout + run.stderr
    assert SECRET not in run.stdout + run.stderr


def test_a_command_without_a_program_fails_naming_the_option(ansible):
    result = ansible.module(MODULE, {"name": "empty", "command": []})
    assert result["failed"] is True
    assert result["option"] == "command"
    assert result["msg"] == (
        "Option 'command' must be a list: the program, then its arguments; got []"
    )


# The platform_commands role


def run_role(ansible, tmp_path: Path, variables: dict, *args: str) -> tuple:
    """Run the role in a playbook; return the run and maintenance_results."""
    out = tmp_path / "results.json"
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {
                "ansible_python_interpreter": sys.executable,
                "maintenance_cadence": "weekly",
                # The window guard has tests of its own below.
                "platform_commands_allow_outside_window": True,
                **variables,
            },
            "tasks": [
                {
                    "name": "Run the platform commands",
                    "ansible.builtin.import_role": {
                        "name": "trm.maintenance.platform_commands"
                    },
                },
                {
                    "name": "Save the results",
                    "ansible.builtin.copy": {
                        "content": "{{ maintenance_results | default([]) | to_json }}",
                        "dest": str(out),
                    },
                    "check_mode": False,
                },
            ],
        }
    ]
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps(play))
    run = ansible.playbook(playbook, "-i", "localhost,", "-c", "local", *args)
    entries = json.loads(out.read_text()) if out.exists() else None
    return run, entries


COMMANDS = [
    {
        "name": "cache-clear",
        "task": "Clear the application cache",
        "command": ["bin/mark", "cache-clear"],
        "cadence": ["weekly"],
    },
    {
        "name": "cache-warm",
        "task": "Warm the application cache",
        "command": ["bin/succeed"],
        "cadence": ["weekly"],
        "creates_change": True,
    },
    {
        "name": "db-indexes",
        "command": ["bin/fail"],
        "cadence": ["weekly", "monthly"],
    },
    {
        "name": "index-health",
        "task": "Check the database index health",
        "command": ["bin/mark", "index-health"],
        "cadence": ["monthly"],
        "creates_change": False,
    },
    {"name": "rotate-api-keys", "command": ["bin/mark", "rotate"]},
]


def summary(entries: list) -> list:
    """(task, status) of each entry, as its result says."""
    return [
        (entry["task"], entry["result"].get("status", "skipped")) for entry in entries
    ]


def test_the_role_runs_the_commands_of_the_cadence_in_order(ansible, app_dir, tmp_path):
    run, entries = run_role(
        ansible,
        tmp_path,
        {"platform_commands_app_dir": str(app_dir), "platform_commands_list": COMMANDS},
    )
    assert run.rc == 0, run.stdout + run.stderr
    assert ran(app_dir) == ["cache-clear"]
    assert summary(entries) == [
        ("Clear the application cache", "ok"),
        ("Warm the application cache", "ok"),
        ("Run db-indexes", "critical"),
    ]
    assert {(e["section"], e["role"], e["cadence"]) for e in entries} == {
        ("Platform commands", "platform_commands", "weekly")
    }
    failed = entries[2]["result"]["checks"][0]
    assert failed["message"].endswith(": Error: index build failed on referrals")
    report = parse_entries(entries)
    assert [(e.kind, e.status) for e in report] == [
        ("check", "ok"),
        ("check", "ok"),
        ("check", "critical"),
    ]


def test_the_role_in_check_mode_runs_only_read_only_commands(
    ansible, app_dir, tmp_path
):
    run, entries = run_role(
        ansible,
        tmp_path,
        {
            "maintenance_cadence": "monthly",
            "platform_commands_app_dir": str(app_dir),
            "platform_commands_list": COMMANDS,
        },
        "--check",
    )
    assert run.rc == 0, run.stdout + run.stderr
    assert ran(app_dir) == ["index-health"]
    assert [(e["task"], e["result"]["planned"]) for e in entries] == [
        ("Run db-indexes", True),
        ("Check the database index health", False),
    ]
    assert entries[0]["result"]["checks"][0]["message"] == (
        f"Check mode: db-indexes would run 'bin/fail' in {app_dir}; not run"
    )


def test_platform_commands_only_selects_by_name_whatever_the_cadence(
    ansible, app_dir, tmp_path
):
    run, entries = run_role(
        ansible,
        tmp_path,
        {
            "platform_commands_app_dir": str(app_dir),
            "platform_commands_list": COMMANDS,
            "platform_commands_only": ["rotate-api-keys", "index-health"],
        },
    )
    assert run.rc == 0, run.stdout + run.stderr
    # In the order of the list, not of platform_commands_only.
    assert ran(app_dir) == ["index-health", "rotate"]
    assert summary(entries) == [
        ("Check the database index health", "ok"),
        ("Run rotate-api-keys", "ok"),
    ]


def test_an_unknown_name_in_platform_commands_only_fails_the_play(
    ansible, app_dir, tmp_path
):
    run, entries = run_role(
        ansible,
        tmp_path,
        {
            "platform_commands_app_dir": str(app_dir),
            "platform_commands_list": COMMANDS,
            "platform_commands_only": ["cache-clear", "reindex-everything"],
        },
    )
    assert run.rc != 0
    assert entries is None
    assert "define: reindex-everything; defined: cache-clear, cache-warm" in run.stdout
    assert ran(app_dir) == []


def test_the_default_commands_without_an_app_dir_are_skipped_with_a_note(
    ansible, tmp_path
):
    run, entries = run_role(ansible, tmp_path, {})
    assert run.rc == 0, run.stdout + run.stderr
    assert summary(entries) == [
        ("Clear the application cache", "skipped"),
        ("Warm the application cache", "skipped"),
    ]
    reason = entries[0]["result"]["skip_reason"]
    assert reason.startswith("cache-clear was not run: set platform_commands_app_dir")
    assert [e.kind for e in parse_entries(entries)] == ["skipped", "skipped"]


def test_a_command_with_its_own_folder_runs_without_an_app_dir(
    ansible, app_dir, tmp_path
):
    commands = [dict(COMMANDS[0], chdir=str(app_dir))]
    run, entries = run_role(ansible, tmp_path, {"platform_commands_list": commands})
    assert run.rc == 0, run.stdout + run.stderr
    assert summary(entries) == [("Clear the application cache", "ok")]
    assert ran(app_dir) == ["cache-clear"]


# The maintenance window guards the commands that change the platform

# Sunday 2026-12-06 02:30 UTC is inside the weekly window; Thursday is not.
IN_WINDOW = "2026-12-06T02:30:00+00:00"
OUT_OF_WINDOW = "2026-12-03T11:00:00+00:00"


def guarded(app_dir: Path, now: str, **variables) -> dict:
    """Role variables that let the shared windows decide at ``now``."""
    return {
        "maintenance_cadence": "monthly",
        "platform_commands_app_dir": str(app_dir),
        "platform_commands_list": COMMANDS,
        "platform_commands_allow_outside_window": False,
        "maintenance_guard_now": now,
        "maintenance_guard_timezone": "UTC",
        **variables,
    }


def test_outside_the_window_changing_commands_are_skipped_with_the_reason(
    ansible, app_dir, tmp_path
):
    run, entries = run_role(ansible, tmp_path, guarded(app_dir, OUT_OF_WINDOW))
    assert run.rc == 0, run.stdout + run.stderr
    assert ran(app_dir) == ["index-health"]
    assert [(e["section"], e["task"]) for e in entries] == [
        (
            "Maintenance window",
            "Check the maintenance window before the platform commands",
        ),
        ("Platform commands", "Run db-indexes"),
        ("Platform commands", "Check the database index health"),
    ]
    assert entries[0]["result"]["status"] == "warning"
    reason = entries[1]["result"]["skip_reason"]
    assert reason.startswith(
        "db-indexes was not run: it changes the platform and waits for a "
        "maintenance window. Outside the maintenance windows"
    )
    # Thursday 11:00 to the first Sunday of December, 02:00: 2 days 15 hours.
    assert reason.endswith(
        "the next, monthly, opens Sun 2026-12-06 02:00 UTC, in 2 d 15 h"
    )
    assert [e.kind for e in parse_entries(entries)] == ["check", "skipped", "check"]
    assert entries[2]["result"]["status"] == "ok"


def test_inside_the_window_changing_commands_run(ansible, app_dir, tmp_path):
    run, entries = run_role(ansible, tmp_path, guarded(app_dir, IN_WINDOW))
    assert run.rc == 0, run.stdout + run.stderr
    assert ran(app_dir) == ["index-health"]
    assert summary(entries) == [
        ("Check the maintenance window before the platform commands", "ok"),
        ("Run db-indexes", "critical"),  # bin/fail exits 4
        ("Check the database index health", "ok"),
    ]
    assert entries[1]["result"]["metrics"]["rc"] == 4


def test_inside_the_window_check_mode_plans_the_changing_commands(
    ansible, app_dir, tmp_path
):
    run, entries = run_role(
        ansible,
        tmp_path,
        guarded(app_dir, IN_WINDOW, maintenance_cadence="weekly"),
        "--check",
    )
    assert run.rc == 0, run.stdout + run.stderr
    assert ran(app_dir) == []
    assert [(e["task"], e["result"].get("planned")) for e in entries] == [
        ("Check the maintenance window before the platform commands", None),
        ("Clear the application cache", True),
        ("Warm the application cache", True),
        ("Run db-indexes", True),
    ]


def test_read_only_commands_need_no_window(ansible, app_dir, tmp_path):
    run, entries = run_role(
        ansible,
        tmp_path,
        guarded(app_dir, OUT_OF_WINDOW, platform_commands_only=["index-health"]),
    )
    assert run.rc == 0, run.stdout + run.stderr
    assert ran(app_dir) == ["index-health"]
    assert summary(entries) == [("Check the database index health", "ok")]
