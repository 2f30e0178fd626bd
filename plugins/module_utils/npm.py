# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Dependency review of a Node.js project with npm audit and npm outdated.

The client part runs npm and reads its JSON; the domain part turns the audit
report and the list of outdated packages into findings.
"""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ansible_collections.trm.maintenance.plugins.module_utils.checks import (
    CheckResult,
    Finding,
    unknown,
)
from ansible_collections.trm.maintenance.plugins.module_utils.commands import (
    Outcome,
    redact,
    run,
    shell_words,
)
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    OK,
    parse_threshold,
)

AUDIT, OUTDATED = "audit", "outdated"
NPM_COMMANDS = [AUDIT, OUTDATED]
# npm's severities, mildest first; ``info`` is counted but never judged.
SEVERITIES = ("info", "low", "moderate", "high", "critical")
AUDIT_LEVELS = list(SEVERITIES[1:])
DEFAULT_VULNERABILITIES = {
    "critical": {"critical": 0},
    "high": {"critical": 0},
    "moderate": {"warning": 0},
    "low": {},
}
DEFAULT_MAJOR_UPDATES = {"warning": 1}
DEFAULT_TIMEOUT = 120.0
# Packages named in a finding's message; the details list all of them.
_NAMED_IN_MESSAGE = 5
_LOCKFILES = ("npm-shrinkwrap.json", "package-lock.json")
# npm would otherwise look for a newer npm and print funding appeals.
_NPM_ENVIRONMENT = {
    "npm_config_update_notifier": "false",
    "npm_config_fund": "false",
    "NO_UPDATE_NOTIFIER": "1",
}
_INSTALL_NPM = (
    "Install Node.js and npm on the host that runs this task (Debian and Ubuntu: "
    "apt-get install nodejs npm), or set executable to npm's full path"
)
_REGISTRY_ACTION = (
    "Check that the npm registry answers from this host (the registry option, "
    "proxy settings, .npmrc) or raise timeout, then run the review again"
)
_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")


# Settings


@dataclass(frozen=True)
class Settings:
    """The module's options, checked and converted."""

    path: str
    commands: tuple
    thresholds: dict
    audit_level: str
    major_updates: Any
    updates: Any
    timeout: float
    omit_dev: bool = False
    registry: str | None = None
    executable: str = "npm"


def read_settings(params: dict) -> Settings:
    """Check the options and return them as ``Settings``, or raise OptionError."""
    return Settings(
        path=project_path(params.get("path")),
        commands=chosen_commands(params.get("commands")),
        thresholds=vulnerability_thresholds(params.get("vulnerabilities")),
        audit_level=params.get("audit_level") or "low",
        major_updates=parse_threshold(
            params.get("major_updates"),
            option="major_updates",
            default=DEFAULT_MAJOR_UPDATES,
        ),
        updates=parse_threshold(params.get("updates") or {}, option="updates"),
        timeout=positive_timeout(params.get("timeout")),
        omit_dev=bool(params.get("omit_dev")),
        registry=registry_url(params.get("registry")),
        executable=str(params.get("executable") or "npm"),
    )


def chosen_commands(value: Any) -> tuple:
    """Return the npm commands to run, each once, in npm_audit's order."""
    if value is None:
        return tuple(NPM_COMMANDS)
    chosen = [command for command in NPM_COMMANDS if command in (value or [])]
    if not chosen:
        raise OptionError("commands", value, f"must name one or both of {NPM_COMMANDS}")
    return tuple(chosen)


def project_path(path: Any) -> str:
    """Return the project folder, which must hold a package.json."""
    if not path:
        raise OptionError("path", path, "must be the folder that holds package.json")
    folder = os.path.abspath(os.path.expanduser(str(path)))
    if not os.path.isdir(folder):
        raise OptionError(
            "path", path, "must be an existing folder that holds package.json"
        )
    if not os.path.isfile(os.path.join(folder, "package.json")):
        raise OptionError(
            "path",
            path,
            "must be the project's folder, but it holds no package.json",
        )
    return folder


def vulnerability_thresholds(spec: Any) -> dict:
    """Merge per-severity thresholds over the defaults; unnamed ones keep theirs."""
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise OptionError("vulnerabilities", spec, "must map severities to thresholds")
    unknown_keys = sorted(set(spec) - set(AUDIT_LEVELS))
    if unknown_keys:
        raise OptionError(
            "vulnerabilities",
            spec,
            f"has unknown severities {unknown_keys}; allowed: {AUDIT_LEVELS}",
        )
    merged = dict(DEFAULT_VULNERABILITIES, **spec)
    return {
        severity: parse_threshold(
            merged[severity] or {}, option=f"vulnerabilities.{severity}"
        )
        for severity in AUDIT_LEVELS
    }


def positive_timeout(value: Any) -> float:
    """Return the timeout in seconds, which must be above zero."""
    if value is None:
        return DEFAULT_TIMEOUT
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise OptionError("timeout", value, "must be a number of seconds above 0")
    return float(value)


def registry_url(value: Any) -> str | None:
    """Return the registry URL, which must be an http or https URL, or None."""
    if not value:
        return None
    if not re.match(r"^https?://[^/\s]+", str(value)):
        raise OptionError(
            "registry", redact(str(value)), "must be an http:// or https:// URL"
        )
    return str(value)


def registry_secrets(value: Any) -> list:
    """Return the password written into a registry URL, to hide it in the result."""
    try:
        password = urlsplit(str(value or "")).password
    except ValueError:
        return []
    return [password] if password else []


# Client: running npm


@dataclass
class NpmAnswer:
    """What one npm command answered: its JSON, or why there is none."""

    command: str
    argv: list
    data: Any = None
    problem: str | None = None
    action: str | None = None
    outcome: Outcome | None = None
    details: dict = field(default_factory=dict)


def npm_argv(settings: Settings, command: str) -> list:
    """Return the argument vector of ``npm <command> --json`` with the options."""
    argv = [settings.executable, command, "--json"]
    if command == OUTDATED:
        # --long adds whether a package is a dependency or a devDependency.
        argv.append("--long")
    if settings.omit_dev:
        argv.append("--omit=dev")
    if settings.registry:
        argv.append(f"--registry={settings.registry}")
    return argv


def ask_npm(settings: Settings) -> dict:
    """Run the selected npm commands side by side and return answers by command."""
    with ThreadPoolExecutor(max_workers=len(settings.commands)) as pool:
        futures = {
            command: pool.submit(_ask, command, settings)
            for command in settings.commands
        }
        return {command: future.result() for command, future in futures.items()}


def _ask(command: str, settings: Settings) -> NpmAnswer:
    argv = npm_argv(settings, command)
    outcome = run(
        argv,
        cwd=settings.path,
        environment=_NPM_ENVIRONMENT,
        timeout=settings.timeout,
    )
    return read_answer(command, argv, outcome, timeout=settings.timeout)


def read_answer(
    command: str, argv: list, outcome: Outcome, *, timeout: float
) -> NpmAnswer:
    """Turn the outcome of an npm command into its JSON or a problem.

    npm exits with 1 when it finds vulnerabilities or outdated packages; that is
    an answer, not an error. Only the JSON says whether npm itself failed.
    """
    answer = NpmAnswer(command=command, argv=argv, outcome=outcome)
    answer.details = {"command": redact(shell_words(argv)), "rc": outcome.rc}
    if outcome.error:
        answer.problem, answer.action = outcome.error, _INSTALL_NPM
        return answer
    if outcome.timed_out:
        answer.problem = (
            f"npm {command} did not finish within {timeout:g} s and was stopped"
        )
        answer.action = _REGISTRY_ACTION
        return answer
    answer.data = _json(outcome.stdout)
    answer.problem, answer.action = npm_error(command, answer.data, outcome)
    return answer


def _json(text: str) -> Any:
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def npm_error(command: str, data: Any, outcome: Outcome) -> tuple:
    """Return (problem, action) when npm reports its own failure, else (None, None)."""
    if not isinstance(data, dict):
        last = _last_line(outcome.stderr) or "no output"
        return (
            f"npm {command} printed no JSON (exit code {outcome.rc}): {last}",
            "Run the command by hand in the project's folder to see why",
        )
    error = data.get("error")
    is_error = isinstance(error, dict) and ("summary" in error or "code" in error)
    if command == AUDIT and "message" in data and "auditReportVersion" not in data:
        return _audit_request_error(data)
    if not is_error:
        return None, None
    summary = " ".join(str(error.get(key) or "") for key in ("code", "summary"))
    detail = _last_line(str(error.get("detail") or "")) or None
    return redact(f"npm {command} failed: {summary.strip()}"), detail


def _audit_request_error(data: dict) -> tuple:
    # npm prints {"message": ...} when the registry's audit endpoint fails.
    message = redact(str(data.get("message") or "the audit request failed"))
    return f"npm audit could not get advisories: {message}", _REGISTRY_ACTION


def _last_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[-1] if lines else ""


def locked_versions(path: str) -> dict:
    """Return the versions of the top-level packages recorded in the lockfile."""
    for name in _LOCKFILES:
        lockfile = os.path.join(path, name)
        if os.path.isfile(lockfile):
            return _lock_versions(_read_json(lockfile))
    return {}


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _lock_versions(lock: Any) -> dict:
    if not isinstance(lock, dict):
        return {}
    packages = lock.get("packages")
    if isinstance(packages, dict):
        # Lockfile versions 2 and 3: top-level packages live in node_modules/<name>.
        prefix = "node_modules/"
        return {
            key[len(prefix) :]: info.get("version")
            for key, info in packages.items()
            if key.startswith(prefix) and "/node_modules/" not in key
            if isinstance(info, dict)
        }
    dependencies = lock.get("dependencies")
    if isinstance(dependencies, dict):
        return {
            name: info.get("version")
            for name, info in dependencies.items()
            if isinstance(info, dict)
        }
    return {}


# Domain: the audit report


def severity_counts(report: dict) -> dict:
    """Vulnerable packages per severity, as npm counts them in its metadata."""
    metadata = report.get("metadata") if isinstance(report, dict) else None
    counts = (metadata or {}).get("vulnerabilities")
    if isinstance(counts, dict):
        return {severity: _int(counts.get(severity)) for severity in SEVERITIES}
    tally = dict.fromkeys(SEVERITIES, 0)
    for package in vulnerable_packages(report):
        if package["severity"] in tally:
            tally[package["severity"]] += 1
    return tally


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def vulnerable_packages(report: dict) -> list:
    """The vulnerable packages, worst severity first, each with its advisories."""
    entries = report.get("vulnerabilities") if isinstance(report, dict) else None
    if isinstance(entries, dict):
        packages = [_package(name, info) for name, info in entries.items()]
    else:
        packages = _legacy_packages(report)
    order = {severity: index for index, severity in enumerate(SEVERITIES)}
    return sorted(
        packages, key=lambda item: (-order.get(item["severity"], 0), item["name"])
    )


def _package(name: str, info: Any) -> dict:
    info = info if isinstance(info, dict) else {}
    via = info.get("via") if isinstance(info.get("via"), list) else []
    return {
        "name": str(info.get("name") or name),
        "severity": str(info.get("severity") or "info"),
        "direct": bool(info.get("isDirect")),
        "range": info.get("range"),
        "via": sorted({item for item in via if isinstance(item, str)}),
        "advisories": [_advisory(item) for item in via if isinstance(item, dict)],
        "fix": describe_fix(info.get("fixAvailable")),
    }


def _advisory(item: dict) -> dict:
    return {
        "title": item.get("title"),
        "url": item.get("url"),
        "severity": item.get("severity"),
        "range": item.get("range"),
    }


def _legacy_packages(report: Any) -> list:
    # npm 6 lists advisories by id instead of vulnerable packages by name.
    advisories = report.get("advisories") if isinstance(report, dict) else None
    packages = {}
    for advisory in (advisories or {}).values():
        name = str(advisory.get("module_name") or "unknown")
        package = packages.setdefault(name, _package(name, {"severity": "info"}))
        package["advisories"].append(_advisory(advisory))
        severity = str(advisory.get("severity") or "info")
        if _severity_rank(severity) > _severity_rank(package["severity"]):
            package["severity"] = severity
    return list(packages.values())


def _severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0


def describe_fix(fix: Any) -> str | None:
    """Say how npm can fix a package: an upgrade, ``npm audit fix``, or nothing."""
    if isinstance(fix, dict) and fix.get("name"):
        major = " (a major upgrade)" if fix.get("isSemVerMajor") else ""
        return f"upgrade {fix['name']} to {fix.get('version')}{major}"
    if fix is True:
        return "npm audit fix"
    return None


def audit_findings(report: dict, settings: Settings) -> tuple:
    """One finding per severity at or above ``audit_level``, and the counts."""
    counts = severity_counts(report)
    packages = vulnerable_packages(report)
    metrics = {
        f"vulnerabilities_{severity}": counts[severity] for severity in SEVERITIES
    }
    metrics["vulnerabilities_total"] = sum(counts.values())
    dependencies = (report.get("metadata") or {}).get("dependencies")
    if isinstance(dependencies, dict) and "total" in dependencies:
        metrics["dependencies_total"] = _int(dependencies["total"])
    judged = AUDIT_LEVELS[AUDIT_LEVELS.index(settings.audit_level) :]
    findings = [
        severity_finding(
            severity,
            counts[severity],
            [package for package in packages if package["severity"] == severity],
            settings.thresholds[severity],
            path=settings.path,
        )
        for severity in reversed(judged)
    ]
    return findings, metrics


def severity_finding(
    severity: str, count: int, packages: list, threshold: Any, *, path: str
) -> Finding:
    """Judge the number of packages with vulnerabilities of one severity."""
    noun = "vulnerable package" if count == 1 else "vulnerable packages"
    subject = f"{count} {noun} of {severity} severity" if count else None
    fixes = [f"{p['name']}: {p['fix']}" for p in packages if p["fix"]]
    unfixed = [p["name"] for p in packages if not p["fix"]]
    action = _audit_action(path, fixes, unfixed)
    return counted_finding(
        f"vulnerabilities_{severity}",
        count,
        threshold,
        subject=subject or f"No vulnerable packages of {severity} severity",
        names=[package["name"] for package in packages],
        action=action,
        details={"severity": severity, "packages": packages},
    )


def _audit_action(path: str, fixes: list, unfixed: list) -> str:
    parts = [f"In {path}, run npm audit for the advisories"]
    if fixes:
        parts.append(f"fix with {'; '.join(fixes[:_NAMED_IN_MESSAGE])}")
    if unfixed:
        parts.append(
            f"no fix is published for {', '.join(unfixed[:_NAMED_IN_MESSAGE])}: "
            "replace or remove it, or accept the risk on record"
        )
    return "; ".join(parts)


def counted_finding(
    name: str,
    count: int,
    threshold: Any,
    *,
    subject: str,
    names: list,
    action: str,
    details: dict,
) -> Finding:
    """A finding for a count of packages, naming the first few of them."""
    status = threshold.evaluate(count) if threshold is not None else OK
    message = subject
    if names:
        shown = ", ".join(names[:_NAMED_IN_MESSAGE])
        more = len(names) - _NAMED_IN_MESSAGE
        message += f": {shown}" + (f" and {more} more" if more > 0 else "")
    if status != OK:
        message += f"; {threshold.breach(status)}"
    return Finding(
        name=name,
        status=status,
        message=message,
        value=count,
        threshold=threshold,
        action=action if status != OK else None,
        details=details,
    )


# Domain: outdated packages


def version_tuple(version: Any) -> tuple | None:
    """Return (major, minor, patch) of a semantic version, or None."""
    match = _VERSION.match(str(version or "").strip())
    return tuple(int(part) for part in match.groups()) if match else None


def majors_behind(current: Any, latest: Any) -> int | None:
    """How many major versions ``current`` is behind ``latest``; None if unknown.

    Below 1.0.0 a new minor version may break, as semantic versioning allows, so
    0.5 to 0.6 counts as one major step.
    """
    old, new = version_tuple(current), version_tuple(latest)
    if old is None or new is None or new <= old:
        return None if old is None or new is None else 0
    if new[0] > old[0]:
        return new[0] - old[0]
    if new[0] == 0 and new[1] > old[1]:
        return 1
    return 0


def outdated_packages(report: Any, locked: dict) -> list:
    """The packages ``npm outdated`` lists, with current versions filled in.

    npm reads current versions from node_modules; where a project has none
    installed, the lockfile's version is what ``npm ci`` would install.
    """
    packages = []
    for name, info in sorted((report or {}).items()):
        for entry in info if isinstance(info, list) else [info]:
            if isinstance(entry, dict):
                packages.append(_outdated(name, entry, locked))
    return packages


def _outdated(name: str, info: dict, locked: dict) -> dict:
    current, source = info.get("current"), "node_modules"
    if not current:
        current = locked.get(name)
        source = "lockfile" if current else None
    return {
        "name": name,
        "current": current,
        "current_from": source,
        "wanted": info.get("wanted"),
        "latest": info.get("latest"),
        "type": info.get("type"),
        "majors_behind": majors_behind(current, info.get("latest")),
    }


def outdated_findings(report: Any, settings: Settings) -> tuple:
    """Findings for major updates and for all updates, and their counts."""
    packages = outdated_packages(report, locked_versions(settings.path))
    major = [package for package in packages if package["majors_behind"]]
    unknown_current = [
        package["name"] for package in packages if not package["current"]
    ]
    metrics = {
        "outdated_total": len(packages),
        "major_updates_total": len(major),
        "outdated_unknown_current": len(unknown_current),
    }
    findings = [
        _major_finding(major, settings),
        _updates_finding(packages, unknown_current, settings),
    ]
    return findings, metrics


def _major_finding(major: list, settings: Settings) -> Finding:
    count = len(major)
    noun = "package is" if count == 1 else "packages are"
    names = [_update_text(package) for package in major]
    return counted_finding(
        "major_updates",
        count,
        settings.major_updates,
        subject=f"{count} {noun} a major version behind"
        if count
        else "No package is a major version behind",
        names=names,
        action=(
            f"Plan the upgrades of {', '.join(p['name'] for p in major)} in "
            f"{settings.path}: read their changelogs for breaking changes"
        ),
        details={"packages": major},
    )


def _updates_finding(
    packages: list, unknown_current: list, settings: Settings
) -> Finding:
    count = len(packages)
    noun = "package has" if count == 1 else "packages have"
    subject = f"{count} {noun} newer versions" if count else "Every package is current"
    if unknown_current:
        subject += (
            f" (current version unknown for {len(unknown_current)}: not installed "
            "and not in the lockfile)"
        )
    return counted_finding(
        "updates",
        count,
        settings.updates,
        subject=subject,
        names=[_update_text(package) for package in packages],
        action=f"Update the dependencies of {settings.path} and run the tests",
        details={"packages": packages, "unknown_current": unknown_current},
    )


def _update_text(package: dict) -> str:
    return f"{package['name']} {package['current'] or '?'} -> {package['latest']}"


# The check


def run_npm_audit(params: dict) -> dict:
    """Run the dependency review and return the check result."""
    settings = read_settings(params)
    answers = ask_npm(settings)
    result = CheckResult()
    judges = {AUDIT: audit_findings, OUTDATED: outdated_findings}
    for command in settings.commands:
        answer = answers[command]
        if answer.problem:
            result.add(_problem_finding(answer))
            continue
        findings, metrics = judges[command](answer.data, settings)
        for finding in findings:
            result.add(finding)
        result.metrics.update(metrics)
    return result.to_dict(f"npm dependencies of {settings.path}")


def _problem_finding(answer: NpmAnswer) -> Finding:
    """An unknown finding for a command that gave no usable answer."""
    return unknown(
        answer.command,
        answer.problem or f"npm {answer.command} gave no answer",
        action=answer.action,
        **answer.details,
    )
