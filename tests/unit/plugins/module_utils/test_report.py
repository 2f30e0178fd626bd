"""Unit tests for the report model: entries, counts, issues, actions, trends."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from ansible_collections.trm.maintenance.plugins.module_utils import report
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.report_render import (
    to_json,
)
from ansible_collections.trm.maintenance.plugins.modules import maintenance_report

REPO = Path(__file__).resolve().parents[4]
ROLE = REPO / "roles" / "report"


def check(status: str, *findings: tuple, metrics: dict | None = None) -> dict:
    """A registered check result with findings given as (name, status, action)."""
    return {
        "changed": False,
        "status": status,
        "summary": f"{status} summary",
        "checks": [
            {"name": name, "status": st, "message": f"{name} is {st}", "action": act}
            for name, st, act in findings
        ],
        "metrics": metrics or {},
    }


def entry(section: str, result: dict, *, task: str | None = None) -> dict:
    """An automated entry of maintenance_results."""
    return {
        "section": section,
        "task": task or f"Check {section.lower()}",
        "cadence": "daily",
        "role": "some_role",
        "result": result,
    }


def manual(items: list) -> dict:
    """A manual review entry."""
    return {"kind": "manual", "section": "Review", "task": "Review", "items": items}


FAILED = {"failed": True, "msg": "Option 'uri' is required"}
SKIPPED = {"skipped": True, "skip_reason": "Conditional result was False"}
OK_RESULT = check("ok", ("a", "ok", None))
WARN_RESULT = check("warning", ("a", "warning", "Look at a"))
CRIT_RESULT = check("critical", ("a", "critical", "Fix a"))


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ([OK_RESULT], "ok"),
        ([OK_RESULT, WARN_RESULT], "warning"),
        ([WARN_RESULT, FAILED], "unknown"),
        ([CRIT_RESULT, FAILED, WARN_RESULT], "critical"),
        ([SKIPPED], "unknown"),
        ([OK_RESULT, SKIPPED], "ok"),
        ([check("ok", ("a", "critical", "Fix a"))], "critical"),
        ([check("bogus", ("a", "ok", None))], "ok"),
        ([{"status": "warning", "summary": "no findings"}], "warning"),
        ([{"failed": True, **check("critical", ("a", "critical", "Fix"))}], "critical"),
        ([], "unknown"),
    ],
)
def test_overall_status_is_the_worst_counted_entry(results: list, expected: str):
    entries = report.parse_entries([entry("S", result) for result in results])
    assert report.overall_status(entries) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            [entry("A", OK_RESULT), entry("B", OK_RESULT), entry("C", WARN_RESULT)],
            {"ok": 2, "warning": 1},
        ),
        ([entry("A", FAILED)], {"unknown": 1}),
        ([entry("A", {"unreachable": True, "msg": "no route"})], {"unknown": 1}),
        ([entry("A", SKIPPED), entry("B", CRIT_RESULT)], {"skipped": 1, "critical": 1}),
        ([manual(["x", "y"])], {"manual_open": 2}),
        ([manual([])], {"manual_open": 1}),
        ([{**manual(["x", "y"]), "done": True}], {}),
        ([{"section": "A", "task": "T"}], {"unknown": 1}),
    ],
)
def test_counts_exclude_skipped_and_manual_entries(raw: list, expected: dict):
    counts = report.count(report.parse_entries(raw))
    assert counts == {**dict.fromkeys(report.COUNT_KEYS, 0), **expected}


def test_failed_task_is_unknown_with_the_task_to_fix():
    (parsed,) = report.parse_entries([entry("Backups", FAILED, task="Verify backup")])
    assert parsed.kind == "failed"
    assert parsed.status == "unknown"
    assert parsed.findings == [
        {
            "name": "Verify backup",
            "status": "unknown",
            "message": "task failed: Option 'uri' is required",
            "action": "Fix the input of the task 'Verify backup' in the role "
            "some_role and run it again",
        }
    ]


def test_check_that_failed_on_purpose_keeps_its_findings():
    result = {"failed": True, "msg": "x", **check("warning", ("a", "warning", "Do"))}
    (parsed,) = report.parse_entries([entry("S", result)])
    assert (parsed.kind, parsed.status) == ("check", "warning")
    assert [f["name"] for f in parsed.findings] == ["a"]


def test_result_without_findings_gets_one_from_its_summary():
    (parsed,) = report.parse_entries(
        [entry("S", {"status": "critical", "summary": "x"})]
    )
    assert parsed.findings[0]["message"] == "x"
    assert parsed.findings[0]["status"] == "critical"


@pytest.mark.parametrize(
    ("raw", "option"),
    [
        (["not a mapping"], "results[0]"),
        ([entry("A", OK_RESULT), {"kind": "other", "section": "A"}], "results[1].kind"),
    ],
)
def test_malformed_entries_name_the_offending_option(raw: list, option: str):
    with pytest.raises(OptionError) as raised:
        report.parse_entries(raw)
    assert raised.value.option == option


def test_manual_entry_keeps_items_and_sign_off():
    raw = {**manual(["x"]), "done": True, "done_by": "bob", "notes": "fine"}
    raw["done_at"] = "2024-05-06"
    (parsed,) = report.parse_entries([raw])
    assert (parsed.items, parsed.done, parsed.done_by) == (["x"], True, "bob")
    assert (parsed.done_at, parsed.notes, parsed.open_items) == (
        "2024-05-06",
        ["fine"],
        0,
    )


def test_issues_are_ordered_worst_first_and_stable():
    raw = [
        entry("A", check("warning", ("w1", "warning", "Act w1"))),
        entry("B", check("critical", ("c1", "critical", "Act c1"), ("o", "ok", None))),
        entry("C", FAILED),
        entry("D", check("warning", ("w2", "warning", "Act w2"))),
        entry("E", check("critical", ("c2", "critical", "Act c2"))),
    ]
    found = report.issues(report.parse_entries(raw))
    assert [(i["status"], i["section"]) for i in found] == [
        ("critical", "B"),
        ("critical", "E"),
        ("unknown", "C"),
        ("warning", "A"),
        ("warning", "D"),
    ]


@pytest.mark.parametrize(
    ("issues", "expected"),
    [
        (
            [("S", "warning", "Free space"), ("S", "critical", "Free space")],
            [("critical", "S", "Free space")],
        ),
        (
            [("S", "warning", "Free space"), ("T", "warning", "Free space")],
            [("warning", "S", "Free space"), ("warning", "T", "Free space")],
        ),
        (
            [("S", "warning", "B"), ("S", "unknown", "A"), ("S", "critical", "C")],
            [("critical", "S", "C"), ("unknown", "S", "A"), ("warning", "S", "B")],
        ),
        ([("S", "warning", None)], [("warning", "S", "Investigate chk: msg")]),
    ],
)
def test_next_actions_are_by_severity_and_deduplicated(issues: list, expected: list):
    found = [
        {"section": s, "status": st, "action": a, "check": "chk", "message": "msg"}
        for s, st, a in issues
    ]
    actions = report.next_actions(found, report.ALERT_RESPONSE)
    assert [(a["status"], a["section"], a["action"]) for a in actions] == expected
    for action in actions:
        assert action["response"] == report.ALERT_RESPONSE[action["status"]]


def test_summary_names_counts_and_worst_issues():
    raw = [
        entry("Disk", check("critical", ("used", "critical", "Free"))),
        entry("Web", WARN_RESULT),
        entry("Db", OK_RESULT),
        entry("Repl", SKIPPED),
        manual(["x"]),
    ]
    parsed = report.parse_entries(raw)
    counts = report.count(parsed)
    summary = report.summarise(
        "Daily maintenance", "critical", counts, report.issues(parsed)
    )
    assert summary == (
        "Daily maintenance CRITICAL (1 critical, 1 warning, 1 ok, 1 skipped, "
        "1 manual open): Disk: used is critical"
    )


def test_summary_when_nothing_was_checked():
    counts = report.count(report.parse_entries([manual(["x"])]))
    assert report.summarise("Weekly maintenance", "unknown", counts, []) == (
        "Weekly maintenance UNKNOWN: nothing was checked (1 manual open)"
    )


def test_metric_keys_add_the_task_only_where_names_clash():
    raw = [
        entry("Databases", check("ok", metrics={"connections": 5}), task="Mongo"),
        entry("Databases", check("ok", metrics={"connections": 7}), task="Redis"),
        entry("Web", check("ok", metrics={"connections": 9, "name": "x", "f": True})),
    ]
    assert report.metric_table(report.parse_entries(raw)) == {
        "databases.mongo.connections": 5,
        "databases.redis.connections": 7,
        "web.connections": 9,
    }


WHEN = report.ReportTime("2024-05-06", None, None, "2024-05-06T08:00:00")


def write_earlier(
    report_dir: Path, day: str, metrics: dict, *, cadence: str = "daily"
) -> None:
    """Write an earlier JSON report with the given web metrics."""
    when = report.ReportTime(day, None, None, f"{day}T08:00:00")
    entries = report.parse_entries([entry("Web", check("ok", metrics=metrics))])
    built = report.build_report(entries, cadence=cadence, when=when, performed_by="x")
    folder = report_dir / f"{day}-{cadence}"
    folder.mkdir(parents=True)
    (folder / "maintenance-log.json").write_text(to_json(built))


def test_trends_compare_with_the_latest_earlier_report(tmp_path: Path):
    write_earlier(tmp_path, "2024-05-03", {"p95_ms": 80, "errors": 4, "old": 1})
    write_earlier(tmp_path, "2024-05-05", {"p95_ms": 100, "errors": 0})
    write_earlier(tmp_path, "2024-05-05", {"p95_ms": 1}, cadence="weekly")
    write_earlier(tmp_path, "2024-05-06", {"p95_ms": 1})
    history = report.load_history(
        str(tmp_path), "daily", before="2024-05-06", limit=30, warn=print
    )
    assert [h["date"] for h in history] == ["2024-05-05", "2024-05-03"]

    current = {"web.p95_ms": 125, "web.errors": 3, "web.old": 2, "web.new": 1}
    found = report.trends(current, history)
    assert sorted(found) == ["web.errors", "web.p95_ms"]
    assert found["web.p95_ms"] == {
        "current": 125,
        "previous": 100,
        "previous_date": "2024-05-05",
        "change": 25,
        "change_pct": 25.0,
        "notable": True,
        "history": [
            {"date": "2024-05-03", "value": 80},
            {"date": "2024-05-05", "value": 100},
        ],
    }
    assert (found["web.errors"]["change"], found["web.errors"]["change_pct"]) == (
        3,
        None,
    )
    assert found["web.errors"]["notable"] is False


@pytest.mark.parametrize(("limit", "days"), [(1, ["2024-05-05"]), (0, [])])
def test_history_reads_at_most_the_limit(tmp_path: Path, limit: int, days: list):
    write_earlier(tmp_path, "2024-05-03", {"a": 1})
    write_earlier(tmp_path, "2024-05-05", {"a": 2})
    history = report.load_history(
        str(tmp_path), "daily", before="2024-05-06", limit=limit, warn=print
    )
    assert [h["date"] for h in history] == days


def test_unreadable_history_is_ignored_with_a_warning(tmp_path: Path):
    folder = tmp_path / "2024-05-05-daily"
    folder.mkdir()
    (folder / "maintenance-log.json").write_text("{not json")
    (tmp_path / "2024-05-04-daily").mkdir()
    (tmp_path / "2024-05-04-daily" / "maintenance-log.json").write_text('{"format": 9}')
    warnings: list = []
    history = report.load_history(
        str(tmp_path), "daily", before="2024-05-06", limit=30, warn=warnings.append
    )
    assert history == []
    assert len(warnings) == 2
    assert "2024-05-05-daily" in warnings[0]
    assert warnings[1].endswith("unknown format")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mongodb://admin:s3cret@db:27017/app", "mongodb://admin:***@db:27017/app"),
        ("https://u:p@ss@host/path", "https://u:***@host/path"),
        ("redis://:pw@127.0.0.1:6379", "redis://:***@127.0.0.1:6379"),
        ("http://host:8080/path?a=b@c", "http://host:8080/path?a=b@c"),
        ("GET /api?token=abc123&page=2", "GET /api?token=***&page=2"),
        ("password=hunter2 user=bob", "password=*** user=bob"),
        ("(db_password=hunter2)", "(db_password=***)"),
        ("passwd = 'two words' next", "passwd = *** next"),
        ("secret_key=AKIA1 region=x", "secret_key=*** region=x"),
        ('api_key="k", other', "api_key=***, other"),
        ("Authorization: Bearer eyJ.a.b", "Authorization: Bearer ***"),
        ("authorization: Basic dXNlcjpwYXNz", "authorization: Basic ***"),
        ('{"Authorization": "Bearer abc"}', '{"Authorization": "Bearer ***"}'),
        ('{"password": "x1", "user": "u"}', '{"password": "***", "user": "u"}'),
        ("Disk used is 95%", "Disk used is 95%"),
    ],
)
def test_redaction_masks_secrets_in_text(text: str, expected: str):
    assert report.Redactor().text(text) == expected


@pytest.mark.parametrize(
    ("values", "text", "expected"),
    [
        (["hunter2"], "pw hunter2 and hunter2", "pw *** and ***"),
        (["p@ss word"], "uri has p%40ss%20word", "uri has ***"),
        (["abc", "abcdef"], "abcdef abc", "*** ***"),
        (["", None], "nothing", "nothing"),
    ],
)
def test_redaction_masks_given_values(values: list, text: str, expected: str):
    assert report.Redactor(values).text(text) == expected


def test_redaction_walks_nested_data():
    data = {"a": ["x hunter2", {"b": "token=t"}], "n": 3, "k": None}
    assert report.Redactor(["hunter2"]).walk(data) == {
        "a": ["x ***", {"b": "token=***"}],
        "n": 3,
        "k": None,
    }


NOW = datetime(2024, 5, 6, 9, 15, 30)


@pytest.mark.parametrize(
    ("when", "started", "expected"),
    [
        (None, None, ("2024-05-06", None, "2024-05-06 09:15:30")),
        ("2024-05-01", None, ("2024-05-01", None, None)),
        ("2024-05-01T03:04:05", None, ("2024-05-01", None, "2024-05-01 03:04:05")),
        (
            "2024-05-01T03:04:05Z",
            "2024-05-01T02:00:00",
            ("2024-05-01", "2024-05-01 02:00:00", "2024-05-01 03:04:05+00:00"),
        ),
    ],
)
def test_report_time_from_options(when: str, started: str, expected: tuple):
    parsed = report.report_time(when, started, now=NOW)
    assert (parsed.day, parsed.started, parsed.finished) == expected
    assert parsed.generated_at == "2024-05-06T09:15:30"


@pytest.mark.parametrize(("when", "started"), [("yesterday", None), (None, "2024-13")])
def test_report_time_rejects_bad_dates(when: str, started: str):
    with pytest.raises(OptionError) as raised:
        report.report_time(when, started, now=NOW)
    assert raised.value.option == ("date" if when else "started")


@pytest.mark.parametrize("cadence", ["../etc", "daily/x", "", "we ekly"])
def test_cadence_must_be_one_path_component(cadence: str, tmp_path: Path):
    params = {"cadence": cadence, "results": [], "report_dir": str(tmp_path)}
    with pytest.raises(OptionError) as raised:
        report.produce_report(params, check_mode=True, warn=print)
    assert raised.value.option == "cadence"


def test_alert_responses_agree_in_code_docs_and_role():
    docs = yaml.safe_load(maintenance_report.DOCUMENTATION)
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert docs["options"]["alert_response"]["default"] == report.ALERT_RESPONSE
    assert defaults["report_alert_response"] == report.ALERT_RESPONSE
    assert report.ALERT_RESPONSE["critical"] == (
        "Page the on-call engineer; respond within 15 minutes"
    )
    assert report.ALERT_RESPONSE["warning"] == "Respond within 30 minutes (high)"


def test_role_argument_spec_documents_every_default():
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    documented = {k: v["default"] for k, v in options.items() if "default" in v}
    assert documented == defaults
    assert all(
        options[key].get("type") and options[key]["description"] for key in options
    )
    assert all(key.startswith(("report_", "maintenance_")) for key in options)


def test_module_documentation_matches_the_argument_spec():
    options = yaml.safe_load(maintenance_report.DOCUMENTATION)["options"]
    spec = maintenance_report.ARGUMENT_SPEC
    assert sorted(options) == sorted(spec)
    for name, rules in spec.items():
        doc = options[name]
        assert doc["type"] == rules["type"], name
        assert doc.get("default") == rules.get("default"), name
        assert doc.get("choices") == rules.get("choices"), name
        assert doc.get("elements") == rules.get("elements"), name
        assert bool(doc.get("required")) == bool(rules.get("required")), name


def test_report_json_is_versioned_and_carries_raw_results():
    entries = report.parse_entries(
        [entry("Web", check("warning", ("p95", "warning", "Scale"), metrics={"x": 1}))]
    )
    built = report.build_report(entries, cadence="daily", when=WHEN, performed_by="a")
    data = json.loads(to_json(built))
    assert data["format"] == 1
    assert data["metrics"] == {"web.x": 1}
    assert data["entries"][0]["summary"] == "warning summary"
    assert data["entries"][0]["findings"][0]["action"] == "Scale"


@pytest.mark.parametrize(
    ("items", "expected", "open_items"),
    [
        ("Check the runbooks", ["Check the runbooks"], 1),
        (["Runbooks", " Dashboards "], ["Runbooks", "Dashboards"], 2),
        ([], [], 1),
        (None, [], 1),
        ("", [], 1),
    ],
)
def test_manual_items_are_one_text_or_a_list(items, expected: list, open_items: int):
    (parsed,) = report.parse_entries([manual(items)])
    assert (parsed.items, parsed.open_items) == (expected, open_items)


@pytest.mark.parametrize("items", [{"a": 1}, 3, True])
def test_manual_items_of_another_type_name_the_option(items):
    raw = [entry("A", OK_RESULT), manual(items)]
    with pytest.raises(OptionError) as raised:
        report.parse_entries(raw)
    assert raised.value.option == "results[1].items"
    assert str(raised.value) == (
        "Option 'results[1].items' must be a list of strings or one string; "
        f"got {items!r}"
    )
