# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs commands with a timeout, keeps the tail of their output, hides secrets.

The lower part is the platform_command check: one named command of the
platform, run or planned, as a check result.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import IO, Any, Iterable

from ansible_collections.trm.maintenance.plugins.module_utils.checks import (
    CheckResult,
    Finding,
)
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    CRITICAL,
    OK,
    format_value,
)

# A stopped command gets this long to exit after SIGTERM before SIGKILL.
GRACE_SECONDS = 5.0
MASK = "********"
MIN_SECRET_CHARS = 6
_SECRET_NAME = r"[\w.-]*(?:password|passwd|token|secret|api[_-]?key|credential)[\w.-]*"
# Credential-shaped text; the group named "secret" is what gets hidden.
_CREDENTIALS = (
    # scheme://user:password@host keeps the user and hides the password.
    re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@]*:(?P<secret>[^/\s@]+)@"),
    re.compile(r"(?i)\b(?:bearer|basic)\s+(?P<secret>[A-Za-z0-9._~+/=-]{8,})"),
    re.compile(rf"(?i)\b{_SECRET_NAME}[\"']?\s*[:=]\s*[\"']?(?P<secret>[^\s\"',;&]+)"),
)
SECRET_VARIABLE = re.compile(
    r"(?i)(password|passwd|pwd|token|secret|key|credential|auth|private|dsn|uri|url)"
)


@dataclass
class Outcome:
    """What one command did: exit code, output, duration, or why it did not run."""

    argv: list
    rc: int | None = None
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    timed_out: bool = False
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        """True when the command ran to the end and exited with 0."""
        return self.error is None and not self.timed_out and self.rc == 0


def run(
    argv: list,
    *,
    cwd: str | None = None,
    environment: dict | None = None,
    timeout: float,
    max_bytes: int | None = None,
    grace: float = GRACE_SECONDS,
) -> Outcome:
    """Run ``argv`` and wait at most ``timeout`` seconds for it.

    The command gets its own process group, so a timeout stops what it started
    too. Output goes to temporary files rather than pipes: a command that writes
    a lot can neither block nor fill memory, and ``max_bytes`` keeps the tail.
    """
    outcome = Outcome(argv=list(argv))
    env = dict(os.environ)
    env.update((str(key), str(value)) for key, value in (environment or {}).items())
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            process = subprocess.Popen(
                [str(arg) for arg in argv],
                cwd=cwd or None,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        except OSError as error:
            outcome.error = _start_error(argv, error)
            return outcome
        outcome.rc, outcome.timed_out = _wait(process, timeout, grace)
        outcome.seconds = round(time.monotonic() - started, 3)
        outcome.stdout = _read_tail(out, max_bytes)
        outcome.stderr = _read_tail(err, max_bytes)
    return outcome


def _start_error(argv: list, error: OSError) -> str:
    program = str(argv[0]) if argv else ""
    if isinstance(error, FileNotFoundError):
        return f"{program} was not found on PATH"
    if isinstance(error, PermissionError):
        return f"{program} could not be executed: permission denied"
    return f"{program} could not be started: {error.strerror or error}"


def _wait(process: subprocess.Popen, timeout: float, grace: float) -> tuple:
    try:
        return process.wait(timeout=timeout), False
    except subprocess.TimeoutExpired:
        return _stop(process, grace), True


def _stop(process: subprocess.Popen, grace: float) -> int | None:
    """Stop the command's process group: SIGTERM, then SIGKILL after ``grace``."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            return process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    return process.poll()


def _read_tail(handle: IO[bytes], max_bytes: int | None) -> str:
    size = handle.seek(0, os.SEEK_END)
    start = 0 if max_bytes is None else max(0, size - max_bytes)
    handle.seek(start)
    text = handle.read().decode("utf-8", errors="replace")
    if start and "\n" in text:
        # The first line was cut in the middle; drop it rather than show half.
        text = text.split("\n", 1)[1]
    return text


def tail_lines(text: str, lines: int) -> tuple:
    """Return the last ``lines`` lines of ``text`` and whether lines were dropped."""
    kept = text.rstrip("\n").splitlines()
    if lines <= 0:
        return "", bool(kept)
    return "\n".join(kept[-lines:]), len(kept) > lines


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Hide ``secrets`` and credential-shaped values (URL passwords, tokens)."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    for pattern in _CREDENTIALS:
        text = pattern.sub(_masked, text)
    return text


def _masked(match: re.Match) -> str:
    start, end = match.span("secret")
    whole = match.group(0)
    offset = match.start()
    return f"{whole[: start - offset]}{MASK}{whole[end - offset :]}"


def credentials(text: str) -> list:
    """Return the credential-shaped values written into ``text``."""
    return [
        match.group("secret")
        for pattern in _CREDENTIALS
        for match in pattern.finditer(text)
        if match.group("secret") != MASK
    ]


def secret_values(environment: dict) -> list:
    """Return the values of variables whose names say they hold a secret.

    Short values (flags such as ``1`` or ``true``) are left out: hiding them would
    hide every occurrence of those characters in the output.
    """
    return [
        str(value)
        for name, value in (environment or {}).items()
        if len(str(value)) >= MIN_SECRET_CHARS and SECRET_VARIABLE.search(str(name))
    ]


def shell_words(argv: list) -> str:
    """Render ``argv`` as a person would type it, for messages."""
    return " ".join(shlex.quote(str(arg)) for arg in argv)


# The platform_command check

DEFAULT_TIMEOUT = 300.0
DEFAULT_OUTPUT_LINES = 20
# Only the tail of the output is kept; this bounds what is read of it.
_OUTPUT_BYTES = 64 * 1024
_MESSAGE_LINE_CHARS = 200


@dataclass(frozen=True)
class CommandSpec:
    """A named command, checked: what to run, where, for how long."""

    name: str
    argv: list
    chdir: str | None
    creates_change: bool
    timeout: float
    output_lines: int

    @property
    def text(self) -> str:
        """The command as a person would type it."""
        return shell_words(self.argv)


def read_command(params: dict) -> CommandSpec:
    """Check the options and return the command, or raise OptionError."""
    name = str(params.get("name") or "").strip()
    if not name:
        raise OptionError("name", params.get("name"), "must name the command")
    argv = params.get("command")
    if not isinstance(argv, list) or not argv or not str(argv[0]).strip():
        raise OptionError(
            "command", argv, "must be a list: the program, then its arguments"
        )
    return CommandSpec(
        name=name,
        argv=[str(arg) for arg in argv],
        chdir=params.get("chdir") or None,
        creates_change=bool(params.get("creates_change", True)),
        timeout=_positive(params.get("timeout"), "timeout", DEFAULT_TIMEOUT),
        output_lines=_lines(params.get("output_lines")),
    )


def _positive(value: Any, option: str, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise OptionError(option, value, "must be a number of seconds above 0")
    return float(value)


def _lines(value: Any) -> int:
    if value is None:
        return DEFAULT_OUTPUT_LINES
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise OptionError("output_lines", value, "must be a whole number from 0")
    return value


def run_platform_command(
    params: dict, *, check_mode: bool, environment: dict, secrets: Iterable[str]
) -> dict:
    """Run one platform command, or plan it in check mode, as a check result."""
    spec = read_command(params)
    if check_mode and spec.creates_change:
        return _result(spec, None, secrets=secrets)
    missing = _folder_problem(spec.chdir)
    if missing:
        outcome = Outcome(argv=spec.argv, error=missing)
    else:
        outcome = run(
            spec.argv,
            cwd=spec.chdir,
            environment=environment,
            timeout=spec.timeout,
            max_bytes=_OUTPUT_BYTES,
        )
    return _result(spec, outcome, secrets=secrets)


def _folder_problem(chdir: str | None) -> str | None:
    if chdir and not os.path.isdir(chdir):
        return f"the folder {chdir} does not exist"
    return None


def _result(spec: CommandSpec, outcome: Outcome | None, *, secrets: Iterable) -> dict:
    secrets = list(secrets)
    output = _output(spec, outcome, secrets)
    check = CheckResult()
    check.add(command_finding(spec, outcome, output, secrets=secrets))
    if outcome is not None and outcome.error is None:
        check.metrics.update(rc=outcome.rc, seconds=outcome.seconds)
    result = check.to_dict(f"Platform command {spec.name}")
    ran = outcome is not None and outcome.error is None
    result.update(
        # A changing command that ran, or would run in check mode, changed things.
        changed=spec.creates_change and (ran or outcome is None),
        name=spec.name,
        cmd=[redact(arg, secrets) for arg in spec.argv],
        chdir=spec.chdir,
        planned=outcome is None,
        # Not "rc": Ansible fails any task whose result has a non-zero rc.
        exit_code=outcome.rc if outcome else None,
        seconds=outcome.seconds if outcome else None,
        timed_out=bool(outcome and outcome.timed_out),
        **output,
    )
    return result


def _output(spec: CommandSpec, outcome: Outcome | None, secrets: list) -> dict:
    """The tails of stdout and stderr, with secrets hidden."""
    result = {}
    for stream in ("stdout", "stderr"):
        text = redact(getattr(outcome, stream, "") if outcome else "", secrets)
        tail, cut = tail_lines(text, spec.output_lines)
        result[stream] = tail
        result[f"{stream}_truncated"] = cut
    return result


def command_finding(
    spec: CommandSpec, outcome: Outcome | None, output: dict, *, secrets: list
) -> Finding:
    """Judge the command: ok on exit code 0, critical otherwise, a plan if not run.

    A command that failed, hung past its timeout or could not start is critical;
    in check mode, a command that changes things is planned, not run, and ok.
    """
    command = redact(spec.text, secrets)
    where = f" in {spec.chdir}" if spec.chdir else ""
    details = {"command": command, "chdir": spec.chdir, **output}
    if outcome is None:
        return Finding(
            name=spec.name,
            status=OK,
            message=f"Check mode: {spec.name} would run '{command}'{where}; not run",
            details={**details, "planned": True},
        )
    details.update(rc=outcome.rc, seconds=outcome.seconds, timed_out=outcome.timed_out)
    status = OK if outcome.succeeded else CRITICAL
    return Finding(
        name=spec.name,
        status=status,
        message=_command_message(spec, outcome, output),
        value=outcome.rc,
        action=None if status == OK else _command_action(spec, outcome, command),
        details=details,
    )


def _command_message(spec: CommandSpec, outcome: Outcome, output: dict) -> str:
    if outcome.error:
        return f"{spec.name} could not run: {outcome.error}"
    if outcome.timed_out:
        return (
            f"{spec.name} did not finish within {spec.timeout:g} s and was stopped"
            f"{_last(output['stderr'] or output['stdout'])}"
        )
    took = format_value(outcome.seconds, "s")
    if outcome.rc == 0:
        return f"{spec.name} finished in {took}{_last(output['stdout'])}"
    return (
        f"{spec.name} exited with code {outcome.rc} after {took}"
        f"{_last(output['stderr'] or output['stdout'])}"
    )


def _last(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[-1]
    if len(line) > _MESSAGE_LINE_CHARS:
        line = f"{line[:_MESSAGE_LINE_CHARS]}..."
    return f": {line}"


def _command_action(spec: CommandSpec, outcome: Outcome, command: str) -> str:
    if outcome.error and "not found" in outcome.error:
        return (
            f"Install {spec.argv[0]} on the host that runs the command, or give its "
            "full path as the command's first word"
        )
    if outcome.error:
        return f"Fix the command's setting ({outcome.error}) and run it again"
    if outcome.timed_out:
        return (
            f"Find out why '{command}' hangs (its output is in the details), run "
            "it again, or raise its timeout if it needs longer"
        )
    return f"Read the output of '{command}', fix the cause and run it again"


def take_environment(module: Any) -> tuple:
    """Take the environment's values out of the module's parameters.

    Ansible records the parameters in the result's ``invocation``; only the
    variables' names stay there. The values of ``secret_environment``, of
    variables whose names say they hold a secret, and credentials written into
    the command are hidden wherever they would appear in the result. Returns the
    environment to run with and those secrets.
    """
    plain = _variables(module.params.get("environment"))
    secret = _variables(module.params.get("secret_environment"))
    hidden = secret_values(plain) + [value for value in secret.values() if value]
    for arg in module.params.get("command") or []:
        hidden += credentials(str(arg))
    module.no_log_values.update(hidden)
    module.params["environment"] = dict.fromkeys(plain, MASK)
    return {**plain, **secret}, hidden


def _variables(mapping: Any) -> dict:
    return {
        str(name): str(value)
        for name, value in (mapping or {}).items()
        if value is not None
    }
