# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writers for the maintenance report: Markdown, JSON, JUnit XML and HTML.

Every writer takes the report mapping that ``report.build_report`` returns, after
redaction, and returns text; ``write_documents`` puts the texts on disk.
"""

from __future__ import annotations

import contextlib
import html
import json
import math
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from typing import Any, Callable, Iterator

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    MaintenanceError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    CRITICAL,
    OK,
    UNKNOWN,
    WARNING,
    format_value,
)

FILE_NAMES = {
    "markdown": "maintenance-log.md",
    "json": "maintenance-log.json",
    "junit": "junit.xml",
    "html": "maintenance-log.html",
}
FORMATS = list(FILE_NAMES)
CLASSNAME_PREFIX = "trm.maintenance"

# XML 1.0 cannot carry these characters at all, not even escaped.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class ReportWriteError(MaintenanceError):
    """The report files could not be written."""


def slug(text: str) -> str:
    """Lower-case ``text`` and join its words with underscores, for names."""
    return re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_") or "general"


def one_line(text: Any) -> str:
    """Collapse whitespace so that ``text`` fits on one line of a log."""
    return " ".join(str(text).split()) if text is not None else ""


def render(report: dict, formats: list) -> dict:
    """Return the text of each requested format, keyed by format name."""
    return {name: RENDERERS[name](report) for name in FORMATS if name in formats}


def write_documents(folder: str, documents: dict) -> dict:
    """Write each document atomically into ``folder``; return the paths."""
    try:
        os.makedirs(folder, exist_ok=True)
        paths = {}
        for name, text in documents.items():
            paths[name] = os.path.join(folder, FILE_NAMES[name])
            _atomic_write(paths[name], text)
        _remove_stale(folder, keep=set(documents))
    except OSError as error:
        raise ReportWriteError(
            f"Could not write the report to {folder}: {error.strerror or error}; "
            "check that report_dir is writable"
        ) from None
    return paths


def _atomic_write(path: str, text: str) -> None:
    # A reader (a later run, a dashboard) sees the old file or the new, never half.
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def _remove_stale(folder: str, *, keep: set) -> None:
    # A rerun on the same day replaces the folder's report, formats it skips too.
    for name, file_name in FILE_NAMES.items():
        path = os.path.join(folder, file_name)
        if name not in keep and os.path.exists(path):
            os.unlink(path)


# Shared wording, so that every format says the same thing.


def status_word(status: str | None) -> str:
    """The status as the report shows it."""
    return (status or UNKNOWN).upper()


def value_text(item: dict) -> str:
    """Say a finding's value against its threshold, or nothing without a value."""
    if item.get("value") is None:
        return ""
    shown = format_value(item["value"], item.get("unit") or "")
    threshold = item.get("threshold")
    return f" (value {shown} against {threshold})" if threshold else f" (value {shown})"


def entry_line(entry: dict) -> tuple:
    """Return ``(ticked, where, outcome)`` for an entry's checklist line."""
    where = f"{entry['task']} ({entry['section']})"
    if entry["kind"] == "check":
        return True, where, status_word(entry["status"])
    if entry["kind"] == "failed":
        return False, where, f"task failed: {one_line(entry['message'])}"
    if not entry["done"]:
        return False, where, "manual review"
    by = f" by {entry['done_by']}" if entry.get("done_by") else ""
    at = f" on {entry['done_at']}" if entry.get("done_at") else ""
    return True, where, f"done{by}{at}"


def sub_lines(entry: dict) -> list:
    """Return ``(ticked, text)`` for a manual entry's items and notes."""
    lines = [(entry["done"], one_line(item)) for item in entry.get("items") or []]
    lines.extend(
        (None, f"Notes: {one_line(note)}") for note in entry.get("notes") or []
    )
    return lines


def checklist(report: dict) -> list:
    """The entries that the Tasks Completed checklist shows, in report order."""
    return [entry for entry in report["entries"] if entry["kind"] != "skipped"]


def issue_text(issue: dict) -> str:
    """One issue in words: where, what, and the value against the threshold."""
    where = f"{issue['section']} / {issue['check']}"
    return f"{where}: {one_line(issue['message'])}{value_text(issue)}"


def action_text(action: dict) -> str:
    """One next action with the alert response for its status."""
    text = one_line(action["action"]).rstrip(".")
    response = f". Response: {action['response']}" if action["response"] else ""
    return f"{action['section']}: {text}{response}"


def note_lines(report: dict) -> list:
    """The Notes section: given notes, notable trends and skipped entries."""
    lines = [one_line(note) for note in report["notes"]]
    lines.extend(trend_text(key, trend) for key, trend in _notable(report))
    lines.extend(
        f"Skipped: {skipped['task']} ({skipped['section']}): "
        f"{one_line(skipped['reason'])}"
        for skipped in report["skipped"]
    )
    return lines


def _notable(report: dict) -> Iterator:
    return ((key, t) for key, t in report["trends"].items() if t.get("notable"))


def trend_text(key: str, trend: dict) -> str:
    """Say how a metric moved since the previous report."""
    direction = "rose" if trend["change"] > 0 else "fell"
    return (
        f"Trend: {key} {direction} from {format_value(trend['previous'])} to "
        f"{format_value(trend['current'])} ({trend['change_pct']:+.1f}%) since "
        f"{trend['previous_date']}"
    )


def findings(report: dict) -> Iterator:
    """Yield ``(entry, finding)`` for every finding of the counted entries."""
    for entry in report["entries"]:
        for finding in entry["findings"]:
            yield entry, finding


def detail_row(entry: dict, finding: dict) -> list:
    """The Details table's cells for one finding."""
    value = finding.get("value")
    return [
        entry["section"],
        entry["task"],
        finding["name"],
        status_word(finding["status"]),
        one_line(finding["message"]),
        "" if value is None else format_value(value, finding.get("unit") or ""),
        one_line(finding.get("threshold") or ""),
    ]


DETAIL_HEADERS = ["Section", "Task", "Check", "Status", "Message", "Value", "Threshold"]


# Markdown


def markdown(report: dict) -> str:
    """The maintenance log in the guide's template, as Markdown."""
    parts = [
        _md_header(report),
        _md_section("Tasks Completed", _md_tasks(report)),
        _md_section("Issues Found", _md_issues(report)),
        _md_section("Next Actions", _md_actions(report)),
        _md_section("Notes", [f"- {line}" for line in note_lines(report)]),
        _md_section("Details", _md_details(report)),
    ]
    return "\n\n".join(parts) + "\n"


def header_fields(report: dict) -> list:
    """The ``(label, value)`` pairs under the title, those that are known."""
    fields = [
        ("Performed by", report["performed_by"]),
        ("Type", report["type"]),
        ("Started", report["started"]),
        ("Finished", report["finished"]),
        ("Overall status", status_word(report["status"])),
        ("Summary", report["summary"]),
    ]
    return [(label, value) for label, value in fields if value]


def _md_header(report: dict) -> str:
    lines = [f"# {one_line(report['title'])}"]
    lines.extend(f"**{label}:** {one_line(v)}" for label, v in header_fields(report))
    return "\n\n".join(lines)


def _md_section(title: str, lines: list) -> str:
    return "\n\n".join([f"## {title}", "\n".join(lines) or "None."])


def _box(ticked: bool) -> str:
    return "[x]" if ticked else "[ ]"


def _md_tasks(report: dict) -> list:
    lines = []
    for entry in checklist(report):
        ticked, where, outcome = entry_line(entry)
        lines.append(f"- {_box(ticked)} {where}: {outcome}")
        for sub_ticked, sub_text in sub_lines(entry):
            box = "" if sub_ticked is None else f"{_box(sub_ticked)} "
            lines.append(f"  - {box}{sub_text}")
    return lines


def _md_issues(report: dict) -> list:
    return [
        f"- **{status_word(issue['status'])}** {issue_text(issue)}"
        for issue in report["issues"]
    ]


def _md_actions(report: dict) -> list:
    return [
        f"{number}. **{status_word(action['status'])}** {action_text(action)}"
        for number, action in enumerate(report["next_actions"], start=1)
    ]


def _md_details(report: dict) -> list:
    rows = [detail_row(entry, finding) for entry, finding in findings(report)]
    if not rows:
        return []
    lines = [_md_row(DETAIL_HEADERS), _md_row(["---"] * len(DETAIL_HEADERS))]
    lines.extend(_md_row(row) for row in rows)
    if report["trends"]:
        lines.extend(["", "### Trends", "", *_md_trends(report)])
    return lines


def _md_trends(report: dict) -> list:
    headers = ["Metric", "Previous", "Date", "Current", "Change"]
    lines = [_md_row(headers), _md_row(["---"] * len(headers))]
    for key, trend in report["trends"].items():
        lines.append(_md_row([key, *_trend_cells(trend)]))
    return lines


def _trend_cells(trend: dict) -> list:
    pct = trend["change_pct"]
    change = format_value(trend["change"])
    shown = f"{change} ({pct:+.1f}%)" if pct is not None else change
    return [
        format_value(trend["previous"]),
        trend["previous_date"],
        format_value(trend["current"]),
        shown,
    ]


def _md_row(cells: list) -> str:
    escaped = [str(cell).replace("|", "\\|") for cell in cells]
    return f"| {' | '.join(escaped)} |"


# JSON


def to_json(report: dict) -> str:
    """The whole report as JSON, for tools and for the trends of later runs."""
    return json.dumps(_json_safe(report), indent=2, ensure_ascii=False) + "\n"


def _json_safe(data: Any) -> Any:
    # JSON has no NaN or infinity; a value that cannot be encoded becomes text.
    if isinstance(data, dict):
        return {str(key): _json_safe(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_json_safe(value) for value in data]
    if isinstance(data, float) and not math.isfinite(data):
        return str(data)
    if data is None or isinstance(data, (str, int, float, bool)):
        return data
    return str(data)


# JUnit XML


def junit(report: dict) -> str:
    """One testsuite per section and one testcase per finding, as JUnit XML."""
    title = f"{CLASSNAME_PREFIX}.{report['cadence']} {report['date']}"
    root = ET.Element("testsuites", name=_xml(title))
    suites: dict = {}
    for entry in report["entries"]:
        suite = suites.get(entry["section"])
        if suite is None:
            suite = suites[entry["section"]] = _suite(root, entry["section"], report)
        for case in junit_cases(entry):
            _add_case(suite, entry["section"], case)
    _total(root, list(suites.values()))
    if hasattr(ET, "indent"):
        ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(
        root, encoding="unicode"
    )


def junit_cases(entry: dict) -> list:
    """Return ``(name, outcome, message, text)`` for each testcase of an entry.

    The outcome is ``None`` for a pass, else ``warning``, ``critical`` (failures),
    ``unknown`` (an error) or ``skipped``.
    """
    if entry["kind"] == "skipped":
        return [(entry["task"], "skipped", one_line(entry["message"]), "")]
    if entry["kind"] == "manual":
        state = "manual review done" if entry["done"] else "manual review pending"
        names = entry.get("items") or [entry["task"]]
        return [(one_line(name), "skipped", state, "") for name in names]
    return [_finding_case(finding) for finding in entry["findings"]]


def _finding_case(finding: dict) -> tuple:
    status = finding["status"]
    outcome = None if status == OK else status
    text = "\n".join(
        part
        for part in (
            f"{one_line(finding['message'])}{value_text(finding)}",
            f"Action: {finding['action']}" if finding.get("action") else "",
        )
        if part
    )
    return finding["name"], outcome, one_line(finding["message"]), text


def _suite(root: ET.Element, section: str, report: dict) -> ET.Element:
    return ET.SubElement(
        root, "testsuite", name=_xml(section), timestamp=_xml(report["generated_at"])
    )


_OUTCOME_TAGS = {WARNING: "failure", CRITICAL: "failure", UNKNOWN: "error"}


def _add_case(suite: ET.Element, section: str, case: tuple) -> None:
    name, outcome, message, text = case
    element = ET.SubElement(
        suite,
        "testcase",
        classname=f"{CLASSNAME_PREFIX}.{slug(section)}",
        name=_xml(name),
    )
    if outcome is not None:
        tag = _OUTCOME_TAGS.get(outcome, "skipped")
        child = ET.SubElement(element, tag, message=_xml(message))
        if tag != "skipped":
            child.set("type", outcome)
            child.text = _xml(text)
    elif text:
        ET.SubElement(element, "system-out").text = _xml(text)


def _total(root: ET.Element, suites: list) -> None:
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for suite in suites:
        counts = {
            "tests": len(suite.findall("testcase")),
            "failures": len(suite.findall("testcase/failure")),
            "errors": len(suite.findall("testcase/error")),
            "skipped": len(suite.findall("testcase/skipped")),
        }
        for key, count in counts.items():
            suite.set(key, str(count))
            totals[key] += count
    for key, count in totals.items():
        root.set(key, str(count))


def _xml(text: Any) -> str:
    return _XML_INVALID.sub("", str(text))


# HTML

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem;
  padding: 0 1rem; color: #1f2328; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 1px solid #d0d7de; margin-top: 2rem; }
dl { display: grid; grid-template-columns: max-content auto; gap: .25rem 1rem; }
dt { font-weight: 600; } dd { margin: 0; }
ul.checklist { list-style: none; padding-left: 0; }
ul.checklist ul { list-style: none; padding-left: 1.6rem; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { border: 1px solid #d0d7de; padding: .3rem .5rem; text-align: left;
  vertical-align: top; }
th { background: #f6f8fa; }
.status { display: inline-block; padding: 0 .45rem; border-radius: .3rem;
  font-weight: 600; font-size: .85rem; }
.status-ok { background: #dafbe1; color: #116329; }
.status-warning { background: #fff8c5; color: #7d4e00; }
.status-unknown { background: #eaeef2; color: #424a53; }
.status-critical { background: #ffebe9; color: #a40e26; }
.status-skipped { background: #f6f8fa; color: #57606a; }
"""


def to_html(report: dict) -> str:
    """The maintenance log as one standalone HTML page."""
    body = [
        f"<h1>{_e(report['title'])}</h1>",
        _html_header(report),
        _html_section("Tasks Completed", _html_tasks(report)),
        _html_section("Issues Found", _html_list("ul", _html_issues(report))),
        _html_section("Next Actions", _html_list("ol", _html_actions(report))),
        _html_section("Notes", _html_list("ul", [_e(n) for n in note_lines(report)])),
        _html_section("Details", _html_details(report)),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(report['title'])}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n{chr(10).join(body)}\n</body>\n</html>\n"
    )


def _e(text: Any) -> str:
    return html.escape(one_line(text), quote=True)


def _badge(status: str | None) -> str:
    word = status or UNKNOWN
    return f'<span class="status status-{_e(slug(word))}">{_e(word.upper())}</span>'


def _html_header(report: dict) -> str:
    rows = []
    for label, value in header_fields(report):
        shown = _badge(report["status"]) if label == "Overall status" else _e(value)
        rows.append(f"<dt>{_e(label)}</dt><dd>{shown}</dd>")
    return f"<dl>{''.join(rows)}</dl>"


def _html_section(title: str, content: str) -> str:
    return f"<h2>{_e(title)}</h2>\n{content or '<p>None.</p>'}"


def _html_list(tag: str, items: list, *, attributes: str = "") -> str:
    if not items:
        return ""
    return f"<{tag}{attributes}>{''.join(f'<li>{i}</li>' for i in items)}</{tag}>"


def _checkbox(ticked: bool) -> str:
    return f'<input type="checkbox" disabled{" checked" if ticked else ""}> '


def _html_tasks(report: dict) -> str:
    items = []
    for entry in checklist(report):
        ticked, where, outcome = entry_line(entry)
        subs = [
            f"{'' if sub_ticked is None else _checkbox(sub_ticked)}{_e(sub_text)}"
            for sub_ticked, sub_text in sub_lines(entry)
        ]
        line = f"{_checkbox(ticked)}{_e(where)} {_entry_badge(entry, outcome)}"
        items.append(line + _html_list("ul", subs))
    return _html_list("ul", items, attributes=' class="checklist"')


def _entry_badge(entry: dict, outcome: str) -> str:
    # Checks show their status as a coloured badge; the rest say what happened.
    if entry["kind"] == "check":
        return _badge(entry["status"])
    css = "unknown" if entry["kind"] == "failed" else "skipped"
    return f'<span class="status status-{css}">{_e(outcome)}</span>'


def _html_issues(report: dict) -> list:
    return [f"{_badge(i['status'])} {_e(issue_text(i))}" for i in report["issues"]]


def _html_actions(report: dict) -> list:
    return [
        f"{_badge(a['status'])} {_e(action_text(a))}" for a in report["next_actions"]
    ]


def _html_details(report: dict) -> str:
    rows = [detail_row(entry, finding) for entry, finding in findings(report)]
    if not rows:
        return ""
    head = "".join(f"<th>{_e(h)}</th>" for h in DETAIL_HEADERS)
    body = "".join(_html_row(row) for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_row(row: list) -> str:
    cells = [f"<td>{_e(cell)}</td>" for cell in row]
    cells[3] = f"<td>{_badge(row[3].lower())}</td>"
    return f"<tr>{''.join(cells)}</tr>"


RENDERERS: dict[str, Callable[[dict], str]] = {
    "markdown": markdown,
    "json": to_json,
    "junit": junit,
    "html": to_html,
}
