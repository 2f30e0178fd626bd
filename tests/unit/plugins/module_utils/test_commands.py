"""Running commands with a timeout, masking secrets, and the platform_command check."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils import commands
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)

MASK = commands.MASK


def script(folder: Path, name: str, body: str) -> Path:
    """An executable shell script."""
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


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


# run()


def test_a_command_that_succeeds_returns_its_output(tmp_path):
    outcome = commands.run(
        ["sh", "-c", 'echo "out $GREETING"; echo err >&2'],
        cwd=str(tmp_path),
        environment={"GREETING": "hello"},
        timeout=10,
    )
    assert (outcome.rc, outcome.stdout, outcome.stderr) == (0, "out hello\n", "err\n")
    assert outcome.succeeded
    assert outcome.timed_out is False


def test_a_failing_command_keeps_its_exit_code():
    outcome = commands.run(["sh", "-c", "exit 7"], timeout=10)
    assert (outcome.rc, outcome.succeeded) == (7, False)


def test_a_command_past_its_timeout_is_stopped_with_what_it_started(tmp_path):
    pid_file = tmp_path / "child.pid"
    started = time.monotonic()
    outcome = commands.run(
        ["sh", "-c", f"sleep 60 & echo $! > {pid_file}; echo waiting; wait"],
        # Long enough for a busy machine to start the shell and its child.
        timeout=3,
    )
    elapsed = time.monotonic() - started
    assert outcome.timed_out is True
    assert outcome.succeeded is False
    assert outcome.stdout == "waiting\n"
    assert elapsed < 30
    assert gone(int(pid_file.read_text()))


def test_a_command_that_ignores_sigterm_is_killed():
    outcome = commands.run(
        ["sh", "-c", "trap '' TERM; echo stubborn; sleep 60"], timeout=2, grace=0.2
    )
    assert outcome.timed_out is True
    assert outcome.rc == -9
    assert outcome.stdout == "stubborn\n"


def test_a_program_missing_from_path_is_an_error_not_an_exception():
    outcome = commands.run(["trm-no-such-program", "x"], timeout=5)
    assert outcome.error == "trm-no-such-program was not found on PATH"
    assert outcome.rc is None
    assert not outcome.succeeded


def test_a_file_that_is_not_executable_is_an_error(tmp_path):
    path = tmp_path / "plain"
    path.write_text("echo hi\n")
    outcome = commands.run([str(path)], timeout=5)
    assert outcome.error == f"{path} could not be executed: permission denied"


def test_only_the_tail_of_long_output_is_read():
    outcome = commands.run(
        ["sh", "-c", "for i in $(seq 1 2000); do echo line-$i; done"],
        timeout=10,
        max_bytes=100,
    )
    lines = outcome.stdout.splitlines()
    assert lines[-1] == "line-2000"
    assert len(outcome.stdout) <= 100
    # The partly read first line is dropped, so every line is whole.
    assert all(line.startswith("line-") for line in lines)


@pytest.mark.parametrize(
    ("text", "lines", "expected"),
    [
        ("a\nb\nc\n", 2, ("b\nc", True)),
        ("a\nb\n", 5, ("a\nb", False)),
        ("a\nb\n", 0, ("", True)),
        ("", 0, ("", False)),
        ("", 3, ("", False)),
    ],
)
def test_tail_lines(text, lines, expected):
    assert commands.tail_lines(text, lines) == expected


# Secrets


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "connecting to mongodb://app:pa55word@db:27017/trm",
            f"connecting to mongodb://app:{MASK}@db:27017/trm",
        ),
        ("Authorization: Bearer abcdefgh12345", f"Authorization: Bearer {MASK}"),
        ("api_key=abc123 next", f"api_key={MASK} next"),
        ('{"token": "t0ken-value"}', f'{{"token": "{MASK}"}}'),
        ("NEW_API_KEY: 9f8e7d", f"NEW_API_KEY: {MASK}"),
        (
            "nothing secret here: 42 keys rotated",
            "nothing secret here: 42 keys rotated",
        ),
    ],
)
def test_credential_shaped_text_is_masked(text, expected):
    assert commands.redact(text) == expected


def test_given_secrets_are_masked_longest_first():
    assert commands.redact("abc abcdef", ["abc", "abcdef"]) == f"{MASK} {MASK}"


def test_credentials_are_found_for_ansible_to_hide():
    found = commands.credentials("--uri=https://u:pw123456@h/ --token=tk-98765")
    assert found == ["pw123456", "tk-98765"]


def test_secret_values_are_those_of_secret_names_and_long_enough():
    environment = {
        "API_TOKEN": "tok-123456",
        "DATABASE_URL": "mongodb://db/trm",
        "AUTH_ENABLED": "1",
        "NODE_ENV": "production",
    }
    assert commands.secret_values(environment) == ["tok-123456", "mongodb://db/trm"]


class FakeModule:
    """What take_environment uses of AnsibleModule."""

    def __init__(self, params: dict) -> None:
        self.params = params
        self.no_log_values: set = set()


def test_take_environment_leaves_only_names_in_the_parameters():
    module = FakeModule(
        {
            "environment": {"NODE_ENV": "production", "API_TOKEN": "tok-123456"},
            "secret_environment": {"SIGNING": "sign-me", "NODE_ENV": "staging"},
            "command": ["npm", "run", "x", "--password=hunter22"],
        }
    )
    environment, hidden = commands.take_environment(module)
    assert environment == {
        "NODE_ENV": "staging",
        "API_TOKEN": "tok-123456",
        "SIGNING": "sign-me",
    }
    assert module.params["environment"] == {"NODE_ENV": MASK, "API_TOKEN": MASK}
    assert module.no_log_values == {"tok-123456", "sign-me", "staging", "hunter22"}
    assert sorted(hidden) == sorted(module.no_log_values)


# The platform_command check


def params(**overrides) -> dict:
    """The module's parameters with its defaults."""
    return {
        "name": "job",
        "command": ["sh", "-c", "echo done"],
        "chdir": None,
        "creates_change": True,
        "timeout": 10.0,
        "output_lines": 20,
        **overrides,
    }


def check(check_mode: bool = False, secrets: tuple = (), **overrides) -> dict:
    """Run the check as the module does."""
    return commands.run_platform_command(
        params(**overrides), check_mode=check_mode, environment={}, secrets=secrets
    )


@pytest.mark.parametrize(
    ("overrides", "option"),
    [
        ({"name": " "}, "name"),
        ({"command": []}, "command"),
        ({"command": [""]}, "command"),
        ({"timeout": 0}, "timeout"),
        ({"output_lines": -1}, "output_lines"),
    ],
)
def test_bad_options_name_the_option(overrides, option):
    with pytest.raises(OptionError) as raised:
        commands.read_command(params(**overrides))
    assert raised.value.option == option


def test_a_succeeding_command_is_ok_and_changed(tmp_path):
    result = check(command=["sh", "-c", "echo first; echo Cache cleared"])
    assert result["status"] == "ok"
    assert result["changed"] is True
    assert (result["exit_code"], result["planned"]) == (0, False)
    assert result["stdout"] == "first\nCache cleared"
    finding = result["checks"][0]
    assert finding["message"].startswith("job finished in ")
    assert finding["message"].endswith(": Cache cleared")
    assert finding["action"] is None
    assert result["metrics"]["rc"] == 0


def test_a_read_only_command_never_reports_a_change():
    result = check(creates_change=False)
    assert (result["status"], result["changed"]) == ("ok", False)


def test_a_failing_command_is_critical_with_its_last_error_line():
    result = check(
        command=["sh", "-c", "echo working; echo 'Error: no route' >&2; exit 2"]
    )
    finding = result["checks"][0]
    assert result["status"] == "critical"
    assert finding["message"].startswith("job exited with code 2 after ")
    assert finding["message"].endswith(": Error: no route")
    assert finding["action"] == (
        "Read the output of 'sh -c 'echo working; echo '\"'\"'Error: no route'\"'\"' "
        ">&2; exit 2'', fix the cause and run it again"
    )
    assert (finding["rc"], finding["stderr"]) == (2, "Error: no route")


def test_a_hanging_command_is_critical_and_says_so():
    result = check(command=["sh", "-c", "echo started; sleep 30"], timeout=2)
    finding = result["checks"][0]
    assert result["status"] == "critical"
    assert result["timed_out"] is True
    assert finding["message"] == (
        "job did not finish within 2 s and was stopped: started"
    )
    assert "raise its timeout" in finding["action"]


def test_a_missing_folder_keeps_the_command_from_running(tmp_path):
    marker = tmp_path / "ran"
    result = check(command=["touch", str(marker)], chdir=str(tmp_path / "absent"))
    assert result["status"] == "critical"
    assert result["changed"] is False
    assert result["checks"][0]["message"] == (
        f"job could not run: the folder {tmp_path / 'absent'} does not exist"
    )
    assert not marker.exists()


def test_a_missing_program_is_critical_with_what_to_install():
    result = check(command=["trm-no-such-program"])
    finding = result["checks"][0]
    assert finding["message"] == (
        "job could not run: trm-no-such-program was not found on PATH"
    )
    assert finding["action"].startswith("Install trm-no-such-program")


def test_check_mode_plans_a_changing_command_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    result = check(check_mode=True, command=["touch", str(marker)], chdir=str(tmp_path))
    assert not marker.exists()
    assert (result["status"], result["changed"], result["planned"]) == (
        "ok",
        True,
        True,
    )
    assert result["checks"][0]["message"] == (
        f"Check mode: job would run 'touch {marker}' in {tmp_path}; not run"
    )
    assert result["metrics"] == {}


def test_check_mode_runs_a_read_only_command(tmp_path):
    marker = tmp_path / "ran"
    result = check(
        check_mode=True, command=["touch", str(marker)], creates_change=False
    )
    assert marker.exists()
    assert (result["planned"], result["changed"]) == (False, False)


def test_output_is_trimmed_and_masked():
    result = check(
        command=[
            "sh",
            "-c",
            "seq 1 30; echo api_key=abcdef1234; echo the-secret-value",
        ],
        output_lines=3,
        secrets=("the-secret-value",),
    )
    assert result["stdout"] == f"30\napi_key={MASK}\n{MASK}"
    assert result["stdout_truncated"] is True
    assert result["checks"][0]["stdout"] == result["stdout"]


def test_no_output_is_kept_with_zero_lines():
    result = check(command=["sh", "-c", "echo new key: 1234"], output_lines=0)
    assert (result["stdout"], result["stdout_truncated"]) == ("", True)
    assert result["checks"][0]["message"].startswith("job finished in ")
    assert "1234" not in result["checks"][0]["message"]
