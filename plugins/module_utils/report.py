# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The maintenance report: entries, counts, issues, next actions, trends, redaction.

Roles append entries to ``maintenance_results``; each carries the registered
result of a check module (or of a failed or skipped task), or a manual review.
This module turns that list into one report mapping that every writer renders.
"""

from __future__ import annotations

import getpass
import json
import math
import os
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, Callable, Iterable
from urllib.parse import quote

from ansible_collections.trm.maintenance.plugins.module_utils.checks import (
    SEVERITY,
    rank,
    reaches,
    worst,
)
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.report_render import (
    FILE_NAMES,
    FORMATS,
    one_line,
    render,
    slug,
    write_documents,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    CRITICAL,
    OK,
    UNKNOWN,
    WARNING,
    format_value,
)
from ansible_collections.trm.maintenance.plugins.module_utils.webhook import (
    checked_url,
    post_json,
    slack_payload,
)

FORMAT_VERSION = 1
NEVER = "never"
FAIL_ON_CHOICES = [NEVER, WARNING, UNKNOWN, CRITICAL]
CHECK, FAILED, SKIPPED, MANUAL = "check", "failed", "skipped", "manual"
COUNT_KEYS = (OK, WARNING, UNKNOWN, CRITICAL, "skipped", "manual_open")

# The guide's alert responses. The report role's defaults and the module's
# documentation repeat them word for word; a unit test holds them together.
ALERT_RESPONSE = {
    CRITICAL: "Page the on-call engineer; respond within 15 minutes",
    UNKNOWN: "Find out why the check could not run; respond within 30 minutes (high)",
    WARNING: "Respond within 30 minutes (high)",
}

# A metric that moved this much since the previous report is named in the notes.
NOTABLE_CHANGE_PCT = 20.0

MASK = "***"
_MAX_MESSAGE_CHARS = 500
_CADENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_DAY = r"\d{4}-\d{2}-\d{2}"
_SECRET_KEY = r"[\w.-]*(?:password|passwd|pwd|token|secret|api[_-]?key)[\w.-]*"
_REDACTIONS = (
    # scheme://user:password@host keeps the user, hides the password.
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*):[^/\s]*@"), rf"\1:{MASK}@"),
    (
        re.compile(
            r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?"
            r"(?:(?:bearer|basic|token|digest|negotiate)\s+)?)[^\s\"',;]+"
        ),
        rf"\1{MASK}",
    ),
    (
        re.compile(
            rf"(?i)\b({_SECRET_KEY})(\s*=\s*)(\"[^\"]*\"|'[^']*'|[^\s&;,)\]}}]+)"
        ),
        rf"\1\2{MASK}",
    ),
    (
        re.compile(rf"(?i)([\"']{_SECRET_KEY}[\"']\s*:\s*)(\"[^\"]*\"|'[^']*')"),
        rf'\1"{MASK}"',
    ),
)


# Entries


@dataclass
class Entry:
    """One line of ``maintenance_results``, normalised."""

    section: str
    task: str
    kind: str
    status: str | None = None
    summary: str = ""
    message: str = ""
    cadence: str | None = None
    role: str | None = None
    findings: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    items: list = field(default_factory=list)
    done: bool = False
    done_by: str | None = None
    done_at: str | None = None
    notes: list = field(default_factory=list)

    @property
    def counted(self) -> bool:
        """Automated entries count towards the status; skipped and manual do not."""
        return self.kind in (CHECK, FAILED)

    @property
    def open_items(self) -> int:
        """How many manual review items are still to tick."""
        if self.kind != MANUAL or self.done:
            return 0
        return max(len(self.items), 1)


def parse_entries(results: list) -> list:
    """Normalise every entry of ``results``; a non-mapping is bad input."""
    return [_parse_entry(raw, f"results[{index}]") for index, raw in enumerate(results)]


def _parse_entry(raw: Any, where: str) -> Entry:
    if not isinstance(raw, dict):
        raise OptionError(where, type(raw).__name__, "must be a mapping")
    section = _text(raw.get("section")) or "General"
    common = {
        "section": section,
        "task": _text(raw.get("task")) or section,
        "cadence": _text(raw.get("cadence")) or None,
        "role": _text(raw.get("role")) or None,
    }
    kind = raw.get("kind") or CHECK
    if kind == MANUAL:
        return _manual_entry(raw, common, where)
    if kind != CHECK:
        raise OptionError(f"{where}.kind", kind, "must be 'check' or 'manual'")
    return _result_entry(raw.get("result"), common)


def _manual_entry(raw: dict, common: dict, where: str) -> Entry:
    notes = raw.get("notes")
    if notes is not None and not isinstance(notes, list):
        notes = [notes]
    return Entry(
        kind=MANUAL,
        items=[_text(item) for item in _items(raw.get("items"), f"{where}.items")],
        done=bool(raw.get("done")),
        done_by=_text(raw.get("done_by")) or None,
        done_at=_text(raw.get("done_at")) or None,
        notes=[_text(note) for note in notes or []],
        **common,
    )


def _items(value: Any, option: str) -> list:
    """The checklist of a manual entry: one text is one item, not its letters."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if not isinstance(value, list):
        raise OptionError(option, value, "must be a list of strings or one string")
    return value


def _result_entry(result: Any, common: dict) -> Entry:
    if not isinstance(result, dict):
        return _failed_entry("no result was registered for this task", common)
    if result.get("skipped"):
        reason = result.get("skip_reason") or result.get("msg") or "skipped"
        return Entry(kind=SKIPPED, message=_message(reason), **common)
    checks = result.get("checks")
    # A check module that failed on purpose (fail_on) still reports its findings.
    broken = result.get("failed") or result.get("unreachable")
    if broken and not isinstance(checks, list):
        return _failed_entry(_message(result.get("msg") or "no message"), common)
    return _check_entry(result, checks, common)


def _check_entry(result: dict, checks: Any, common: dict) -> Entry:
    findings = [
        _finding(check, index)
        for index, check in enumerate(checks if isinstance(checks, list) else [])
    ]
    statuses = [finding["status"] for finding in findings]
    if result.get("status") in SEVERITY:
        statuses.append(result["status"])
    status = worst(statuses)
    summary = _message(result.get("summary") or "")
    if not findings:
        findings = [_entry_finding(common["task"], status, summary)]
    metrics = result.get("metrics")
    return Entry(
        kind=CHECK,
        status=status,
        summary=summary,
        findings=findings,
        metrics=dict(metrics) if isinstance(metrics, dict) else {},
        **common,
    )


def _entry_finding(task: str, status: str, summary: str) -> dict:
    # A result without findings still needs a line in the issues and in JUnit.
    message = summary or "the module returned no findings"
    action = None if status == OK else f"Read the output of '{task}' to find out why"
    return {"name": task, "status": status, "message": message, "action": action}


def _failed_entry(reason: str, common: dict) -> Entry:
    role = f" in the role {common['role']}" if common["role"] else ""
    finding = {
        "name": common["task"],
        "status": UNKNOWN,
        "message": f"task failed: {reason}",
        "action": f"Fix the input of the task '{common['task']}'{role} and run "
        "it again",
    }
    return Entry(
        kind=FAILED, status=UNKNOWN, message=reason, findings=[finding], **common
    )


def _finding(check: Any, index: int) -> dict:
    finding = dict(check) if isinstance(check, dict) else {"message": _text(check)}
    finding["name"] = _text(finding.get("name")) or f"check {index + 1}"
    if finding.get("status") not in SEVERITY:
        finding["status"] = UNKNOWN
    finding["message"] = _message(finding.get("message") or "")
    finding["threshold"] = threshold_text(finding)
    return finding


def threshold_text(finding: dict) -> str | None:
    """The finding's thresholds in words, from its text or its bounds."""
    if finding.get("threshold"):
        return _text(finding["threshold"])
    unit = finding.get("unit") or ""
    bounds = [
        f"{label} {_bound_text(finding.get(label), unit)}"
        for label in ("warning", "critical", "normal", "investigate")
        if finding.get(label) is not None
    ]
    return ", ".join(bounds) or None


def _bound_text(bound: Any, unit: str) -> str:
    if isinstance(bound, (list, tuple)):
        return "-".join("" if b is None else format_value(b, unit) for b in bound)
    return format_value(bound, unit)


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _message(value: Any) -> str:
    text = one_line(value)
    if len(text) > _MAX_MESSAGE_CHARS:
        return f"{text[:_MAX_MESSAGE_CHARS]}..."
    return text


# Counts, issues and next actions


def count(entries: Iterable) -> dict:
    """Count entries by status, skipped entries, and open manual items."""
    counts = dict.fromkeys(COUNT_KEYS, 0)
    for entry in entries:
        if entry.counted:
            counts[entry.status] += 1
        elif entry.kind == SKIPPED:
            counts["skipped"] += 1
        counts["manual_open"] += entry.open_items
    return counts


def overall_status(entries: Iterable) -> str:
    """The worst status of the counted entries; unknown when nothing ran."""
    return worst(entry.status for entry in entries if entry.counted)


def issues(entries: Iterable) -> list:
    """Every non-ok finding of the counted entries, worst first."""
    found = [
        _issue(entry, finding)
        for entry in entries
        if entry.counted
        for finding in entry.findings
        if finding["status"] != OK
    ]
    return sorted(found, key=lambda issue: -rank(issue["status"]))


def _issue(entry: Entry, finding: dict) -> dict:
    return {
        "section": entry.section,
        "task": entry.task,
        "check": finding["name"],
        "status": finding["status"],
        "message": finding["message"],
        "value": finding.get("value"),
        "unit": finding.get("unit"),
        "threshold": finding.get("threshold"),
        "action": _text(finding.get("action")) or None,
    }


def next_actions(found: Iterable, responses: dict) -> list:
    """One action per section and wording, worst first, with its alert response."""
    actions, seen = [], set()
    for issue in sorted(found, key=lambda issue: -rank(issue["status"])):
        action = issue["action"] or f"Investigate {issue['check']}: {issue['message']}"
        if (issue["section"], action) in seen:
            continue
        seen.add((issue["section"], action))
        actions.append(
            {
                "status": issue["status"],
                "response": responses.get(issue["status"], ""),
                "action": action,
                "section": issue["section"],
            }
        )
    return actions


def summarise(label: str, status: str, counts: dict, found: list) -> str:
    """One line for a pager: the verdict, the counts and the worst issues."""
    tally = [f"{counts[s]} {s}" for s in reversed(SEVERITY) if counts[s]]
    extra = [f"{counts['skipped']} skipped"] if counts["skipped"] else []
    if counts["manual_open"]:
        extra.append(f"{counts['manual_open']} manual open")
    if not tally:
        shown = f" ({', '.join(extra)})" if extra else ""
        return f"{label} {status.upper()}: nothing was checked{shown}"
    worst_issues = [i for i in found if i["status"] == status]
    headline = "; ".join(f"{i['section']}: {i['message']}" for i in worst_issues[:3])
    more = len(worst_issues) - 3
    tail = f" (and {more} more)" if more > 0 else ""
    head = f"{label} {status.upper()} ({', '.join(tally + extra)})"
    return f"{head}: {headline}{tail}" if headline else head


# Trends


def metric_table(entries: Iterable) -> dict:
    """The numeric metrics of every check entry, keyed ``<section>.<metric>``.

    Where two entries of one section report a metric of the same name, the
    task joins the key (``<section>.<task>.<metric>``) so neither hides the other.
    """
    pairs = [
        (entry, name, value)
        for entry in entries
        if entry.kind == CHECK
        for name, value in entry.metrics.items()
        if _is_number(value)
    ]
    clashes = Counter((slug(entry.section), name) for entry, name, _value in pairs)
    table = {}
    for entry, name, value in pairs:
        parts = [slug(entry.section), name]
        if clashes[(parts[0], name)] > 1:
            parts.insert(1, slug(entry.task))
        table[".".join(parts)] = value
    return table


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def load_history(
    report_dir: str, cadence: str, *, before: str, limit: int, warn: Callable
) -> list:
    """Read up to ``limit`` earlier JSON reports of ``cadence``, newest first."""
    if limit <= 0 or not os.path.isdir(report_dir):
        return []
    pattern = re.compile(rf"^({_DAY})-{re.escape(cadence)}$")
    days = sorted(
        (
            match.group(1)
            for match in map(pattern.match, os.listdir(report_dir))
            if match
        ),
        reverse=True,
    )
    earlier = [day for day in days if day < before][:limit]
    reports = (
        _read_report(report_folder(report_dir, d, cadence), warn) for d in earlier
    )
    return [report for report in reports if report is not None]


def _read_report(folder: str, warn: Callable) -> dict | None:
    path = os.path.join(folder, FILE_NAMES["json"])
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as stream:
            data = json.load(stream)
    except (OSError, ValueError) as error:
        warn(f"Ignoring the earlier report {path} for trends: {error}")
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
        warn(f"Ignoring the earlier report {path} for trends: unknown format")
        return None
    metrics = data.get("metrics")
    return {
        "date": data.get("date"),
        "metrics": metrics if isinstance(metrics, dict) else {},
    }


def trends(metrics: dict, history: list) -> dict:
    """Compare each metric with the latest earlier report that has it."""
    if not history:
        return {}
    latest = history[0]
    found = {}
    for key, value in metrics.items():
        previous = latest["metrics"].get(key)
        if _is_number(previous):
            found[key] = _trend(value, previous, latest["date"])
            found[key]["history"] = _series(key, history)
    return found


def _trend(value: float, previous: float, previous_date: str) -> dict:
    change = value - previous
    if isinstance(change, float):
        change = round(change, 6)
    pct = round(change / previous * 100, 1) if previous else None
    return {
        "current": value,
        "previous": previous,
        "previous_date": previous_date,
        "change": change,
        "change_pct": pct,
        "notable": pct is not None and abs(pct) >= NOTABLE_CHANGE_PCT,
    }


def _series(key: str, history: list) -> list:
    return [
        {"date": report["date"], "value": report["metrics"][key]}
        for report in reversed(history)
        if _is_number(report["metrics"].get(key))
    ]


# Redaction


class Redactor:
    """Masks secrets in text: URL passwords, key=value secrets, given values."""

    def __init__(self, values: Iterable = ()) -> None:
        variants = set()
        for value in values:
            if value:
                variants.update({str(value), quote(str(value), safe="")})
        # Longest first, so that a value containing another is masked whole.
        self.values = sorted(variants, key=len, reverse=True)

    def text(self, text: str) -> str:
        """Return ``text`` with every secret masked."""
        for value in self.values:
            text = text.replace(value, MASK)
        for pattern, replacement in _REDACTIONS:
            text = pattern.sub(replacement, text)
        return text

    def walk(self, data: Any) -> Any:
        """Return a copy of ``data`` with every string in it masked."""
        if isinstance(data, dict):
            return {key: self.walk(value) for key, value in data.items()}
        if isinstance(data, (list, tuple)):
            return [self.walk(value) for value in data]
        return self.text(data) if isinstance(data, str) else data


# The report


@dataclass
class ReportTime:
    """When the report is for: its day, and when the work started and finished."""

    day: str
    started: str | None
    finished: str | None
    generated_at: str


def report_time(
    when: str | None, started: str | None, *, now: datetime | None = None
) -> ReportTime:
    """Parse the ``date`` and ``started`` options; a bare date has no finish time."""
    now = now or datetime.now()
    moment = _parse_moment(when, "date") if when else now
    finished = moment if isinstance(moment, datetime) else None
    return ReportTime(
        day=moment.strftime("%Y-%m-%d"),
        started=_shown_time(_parse_moment(started, "started")) if started else None,
        finished=_shown_time(finished) if finished else None,
        generated_at=now.isoformat(timespec="seconds"),
    )


def _parse_moment(value: str, option: str) -> Any:
    text = str(value).strip()
    try:
        if re.fullmatch(_DAY, text):
            return date.fromisoformat(text)
        return datetime.fromisoformat(re.sub(r"Z$", "+00:00", text))
    except ValueError:
        raise OptionError(
            option, value, "must be an ISO date or date and time"
        ) from None


def _shown_time(moment: Any) -> str:
    if isinstance(moment, datetime):
        return moment.isoformat(sep=" ", timespec="seconds")
    return moment.isoformat()


def build_report(
    entries: list,
    *,
    cadence: str,
    when: ReportTime,
    performed_by: str,
    title: str | None = None,
    notes: Iterable = (),
    responses: dict | None = None,
    history: list | None = None,
) -> dict:
    """Assemble the report mapping that every format renders."""
    counts = count(entries)
    status = overall_status(entries)
    found = issues(entries)
    label = f"{cadence.capitalize()} maintenance"
    metrics = metric_table(entries)
    return {
        "format": FORMAT_VERSION,
        "title": title or f"Maintenance Log - {when.day}",
        "date": when.day,
        "cadence": cadence,
        "type": cadence.capitalize(),
        "performed_by": performed_by,
        "started": when.started,
        "finished": when.finished,
        "generated_at": when.generated_at,
        "status": status,
        "summary": summarise(label, status, counts, found),
        "counts": counts,
        "issues": found,
        "next_actions": next_actions(found, responses or ALERT_RESPONSE),
        "notes": [_text(note) for note in notes],
        "skipped": _skipped(entries),
        "metrics": metrics,
        "trends": trends(metrics, history or []),
        "entries": [asdict(entry) for entry in entries],
    }


def _skipped(entries: Iterable) -> list:
    return [
        {"section": entry.section, "task": entry.task, "reason": entry.message}
        for entry in entries
        if entry.kind == SKIPPED
    ]


def report_folder(report_dir: str, day: str, cadence: str) -> str:
    """The dated folder of one report: ``<report_dir>/<YYYY-MM-DD>-<cadence>``."""
    return os.path.join(report_dir, f"{day}-{cadence}")


# The module's work


def produce_report(params: dict, *, check_mode: bool, warn: Callable) -> dict:
    """Build, redact, write and announce the report; return the module result."""
    cadence = _cadence(params["cadence"])
    if params.get("webhook_url"):
        checked_url(params["webhook_url"])
    when = report_time(params.get("date"), params.get("started"))
    entries = parse_entries(params["results"])
    history = load_history(
        params["report_dir"],
        cadence,
        before=when.day,
        limit=params["history"],
        warn=warn,
    )
    report = build_report(
        entries,
        cadence=cadence,
        when=when,
        performed_by=params.get("performed_by") or _local_user(),
        title=params.get("title"),
        notes=params.get("notes") or [],
        responses={**ALERT_RESPONSE, **(params.get("alert_response") or {})},
        history=history,
    )
    secrets = [*(params.get("redact") or []), params.get("webhook_url")]
    report = Redactor(secrets).walk(report)
    folder = report_folder(params["report_dir"], when.day, cadence)
    return _deliver(report, folder, params, check_mode=check_mode, warn=warn)


def _deliver(
    report: dict, folder: str, params: dict, *, check_mode: bool, warn: Callable
) -> dict:
    documents = render(report, params["formats"])
    planned = {name: os.path.join(folder, FILE_NAMES[name]) for name in documents}
    files = dict.fromkeys(FORMATS)
    files.update(planned if check_mode else write_documents(folder, documents))
    webhook = {"sent": False, "status_code": None, "error": None}
    if params.get("webhook_url") and not check_mode:
        webhook = _announce(report, params, warn)
    result = module_result(report, folder, files, params["fail_on"], webhook)
    if check_mode:
        result["content"] = documents
    return result


def _announce(report: dict, params: dict, warn: Callable) -> dict:
    payload = slack_payload(report["summary"], report["issues"])
    outcome = post_json(
        params["webhook_url"],
        payload,
        timeout=params["webhook_timeout"],
        validate_certs=params["webhook_validate_certs"],
    )
    if not outcome["sent"]:
        warn(f"The report summary was not posted to the webhook: {outcome['error']}")
    return outcome


def module_result(
    report: dict, folder: str, files: dict, fail_on: str, webhook: dict
) -> dict:
    """The module's return values for a report written (or planned) in ``folder``."""
    return {
        "changed": True,
        "status": report["status"],
        "summary": report["summary"],
        "counts": report["counts"],
        "report_dir": folder,
        "files": files,
        "issues": report["issues"],
        "next_actions": report["next_actions"],
        "trends": report["trends"],
        "webhook": webhook,
        "fail_on_reached": reaches(
            report["status"], None if fail_on == NEVER else fail_on
        ),
    }


def _cadence(value: str) -> str:
    # The cadence names a folder; keep it to one safe path component.
    if not _CADENCE.match(value or ""):
        raise OptionError(
            "cadence", value, "must be one word of letters, digits, '-' or '_'"
        )
    return value


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError, ImportError):
        return "unknown"
