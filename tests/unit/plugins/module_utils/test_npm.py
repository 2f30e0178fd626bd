"""Decisions of the dependency review: options, npm's answers, findings."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils import npm
from ansible_collections.trm.maintenance.plugins.module_utils.commands import Outcome
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    Threshold,
)

# An npm 7+ audit report in the shape npm prints: lodash directly vulnerable,
# mkdirp vulnerable through minimist, debug with a low one and no fix.
AUDIT = {
    "auditReportVersion": 2,
    "vulnerabilities": {
        "lodash": {
            "name": "lodash",
            "severity": "critical",
            "isDirect": True,
            "via": [
                {
                    "source": 1,
                    "name": "lodash",
                    "title": "Prototype Pollution in lodash",
                    "url": "https://github.com/advisories/GHSA-jf85-cpcp-j695",
                    "severity": "critical",
                    "range": "<4.17.12",
                }
            ],
            "range": "<=4.17.11",
            "fixAvailable": True,
        },
        "minimist": {
            "name": "minimist",
            "severity": "critical",
            "isDirect": False,
            "via": [
                {
                    "source": 2,
                    "name": "minimist",
                    "title": "Prototype Pollution in minimist",
                    "url": "https://github.com/advisories/GHSA-xvch-5gv4-984h",
                    "severity": "critical",
                    "range": "<0.2.4",
                }
            ],
            "range": "0.0.8",
            "fixAvailable": {"name": "mkdirp", "version": "0.5.6"},
        },
        "mkdirp": {
            "name": "mkdirp",
            "severity": "critical",
            "isDirect": True,
            "via": ["minimist"],
            "range": "0.4.1 - 0.5.1",
            "fixAvailable": {
                "name": "mkdirp",
                "version": "3.0.1",
                "isSemVerMajor": True,
            },
        },
        "debug": {
            "name": "debug",
            "severity": "low",
            "isDirect": True,
            "via": [{"source": 3, "title": "ReDoS in debug", "severity": "low"}],
            "range": "<2.6.9",
            "fixAvailable": False,
        },
    },
    "metadata": {
        "vulnerabilities": {
            "info": 0,
            "low": 1,
            "moderate": 0,
            "high": 0,
            "critical": 3,
            "total": 4,
        },
        "dependencies": {"prod": 4, "dev": 2, "total": 5},
    },
}

OUTDATED = {
    "debug": {
        "current": "2.6.8",
        "wanted": "2.6.9",
        "latest": "4.3.4",
        "type": "devDependencies",
    },
    "lodash": {"current": "4.17.4", "wanted": "4.17.4", "latest": "4.17.21"},
    "mkdirp": {"wanted": "0.5.1", "latest": "3.0.1", "type": "dependencies"},
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder with a package.json and a version 3 lockfile."""
    (tmp_path / "package.json").write_text('{"name": "app"}')
    lock = {
        "lockfileVersion": 3,
        "packages": {
            "": {"name": "app"},
            "node_modules/mkdirp": {"version": "0.5.1"},
            "node_modules/mkdirp/node_modules/minimist": {"version": "0.0.8"},
            "node_modules/@scope/tool": {"version": "1.0.0"},
        },
    }
    (tmp_path / "package-lock.json").write_text(json.dumps(lock))
    return tmp_path


def settings(path: Path, **overrides) -> npm.Settings:
    """Settings as the module's defaults give them, with overrides."""
    params = {"path": str(path), **overrides}
    return npm.read_settings(params)


# Options


def test_a_folder_without_package_json_is_bad_input(tmp_path):
    with pytest.raises(OptionError) as raised:
        npm.project_path(str(tmp_path))
    assert raised.value.option == "path"
    assert "holds no package.json" in str(raised.value)
    assert str(tmp_path) in str(raised.value)


def test_a_missing_folder_is_bad_input(tmp_path):
    with pytest.raises(OptionError, match="must be an existing folder"):
        npm.project_path(str(tmp_path / "nowhere"))


def test_a_project_folder_is_returned_absolute(project, monkeypatch):
    monkeypatch.chdir(project.parent)
    assert npm.project_path(project.name) == str(project)


def test_vulnerability_thresholds_override_one_severity_and_keep_the_others():
    thresholds = npm.vulnerability_thresholds({"high": {"warning": 2}})
    assert thresholds == {
        "low": Threshold(),
        "moderate": Threshold(warning=0),
        "high": Threshold(warning=2),
        "critical": Threshold(critical=0),
    }


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"severe": {"critical": 0}}, "unknown severities ['severe']"),
        ([1, 2], "must map severities to thresholds"),
        ({"high": {"warning": "many"}}, "must be a number"),
    ],
)
def test_bad_vulnerability_thresholds_are_rejected(spec, problem):
    with pytest.raises(OptionError, match=problem.replace("[", r"\[")):
        npm.vulnerability_thresholds(spec)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ("audit", "outdated")),
        (["outdated", "audit", "outdated"], ("audit", "outdated")),
        (["outdated"], ("outdated",)),
    ],
)
def test_commands_run_once_each_in_a_fixed_order(value, expected):
    assert npm.chosen_commands(value) == expected


def test_no_command_at_all_is_bad_input():
    with pytest.raises(OptionError, match="Option 'commands' must name one or both"):
        npm.chosen_commands([])


@pytest.mark.parametrize("value", [0, -1, True, "soon"])
def test_a_timeout_must_be_above_zero(value):
    with pytest.raises(OptionError, match="Option 'timeout'"):
        npm.positive_timeout(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("http://127.0.0.1:4873/", "http://127.0.0.1:4873/"),
        ("https://npm.example.org", "https://npm.example.org"),
    ],
)
def test_registry_urls_are_http_or_https(value, expected):
    assert npm.registry_url(value) == expected


def test_a_registry_that_is_no_url_is_rejected_without_its_password():
    with pytest.raises(OptionError) as raised:
        npm.registry_url("ftp://user:hunter2@npm.example.org")
    assert "hunter2" not in str(raised.value)
    assert raised.value.option == "registry"


def test_the_password_in_a_registry_url_is_hidden():
    assert npm.registry_secrets("https://ci:s3cret@npm.example.org/") == ["s3cret"]
    assert npm.registry_secrets("https://npm.example.org/") == []


def test_npm_argv_carries_the_options(project):
    chosen = settings(project, omit_dev=True, registry="http://127.0.0.1:9/")
    assert npm.npm_argv(chosen, "outdated") == [
        "npm",
        "outdated",
        "--json",
        "--long",
        "--omit=dev",
        "--registry=http://127.0.0.1:9/",
    ]
    assert npm.npm_argv(settings(project), "audit") == ["npm", "audit", "--json"]


# npm's answers


def outcome(stdout: str = "", *, rc: int | None = 1, **fields) -> Outcome:
    """The outcome of an npm command."""
    return Outcome(argv=["npm"], rc=rc, stdout=stdout, **fields)


def test_an_exit_code_of_one_with_a_report_is_an_answer():
    answer = npm.read_answer("audit", ["npm"], outcome(json.dumps(AUDIT)), timeout=9)
    assert (answer.problem, answer.data) == (None, AUDIT)


@pytest.mark.parametrize(
    ("command", "result", "problem", "action"),
    [
        (
            "audit",
            outcome(error="npm was not found on PATH", rc=None),
            "npm was not found on PATH",
            "apt-get install nodejs npm",
        ),
        (
            "outdated",
            outcome(timed_out=True, rc=None),
            "npm outdated did not finish within 9 s and was stopped",
            "raise timeout",
        ),
        (
            "audit",
            outcome(
                json.dumps(
                    {
                        "message": "request to http://127.0.0.1:9/-/npm/v1/security/"
                        "advisories/bulk failed, reason: connect ECONNREFUSED",
                        "error": {"summary": "", "detail": ""},
                    }
                )
            ),
            "npm audit could not get advisories: request to http://127.0.0.1:9/-/npm"
            "/v1/security/advisories/bulk failed, reason: connect ECONNREFUSED",
            "Check that the npm registry answers",
        ),
        (
            "audit",
            outcome(
                json.dumps(
                    {
                        "error": {
                            "code": "ENOLOCK",
                            "summary": "This command requires an existing lockfile.",
                            "detail": "Try creating one first with: npm i "
                            "--package-lock-only",
                        }
                    }
                )
            ),
            "npm audit failed: ENOLOCK This command requires an existing lockfile.",
            "Try creating one first with: npm i --package-lock-only",
        ),
        (
            "outdated",
            outcome("npm WARN something\n", stderr="line 1\nnpm ERR! broken\n"),
            "npm outdated printed no JSON (exit code 1): npm ERR! broken",
            "Run the command by hand",
        ),
    ],
)
def test_answers_without_a_report_become_problems(command, result, problem, action):
    answer = npm.read_answer(command, ["npm", command], result, timeout=9)
    assert answer.problem == problem
    assert action in answer.action
    assert answer.details == {"command": f"npm {command}", "rc": result.rc}


def test_a_package_named_error_is_not_an_npm_error():
    report = {"error": {"current": "1.0.0", "wanted": "1.0.1", "latest": "2.0.0"}}
    answer = npm.read_answer(
        "outdated", ["npm"], outcome(json.dumps(report)), timeout=9
    )
    assert answer.problem is None


def test_credentials_in_npm_messages_are_masked():
    message = {"message": "request to https://ci:s3cret@npm.example.org/x failed"}
    answer = npm.read_answer("audit", ["npm"], outcome(json.dumps(message)), timeout=9)
    assert "s3cret" not in answer.problem
    assert "https://ci:********@npm.example.org/x" in answer.problem


# The audit report


def test_severity_counts_come_from_npm_metadata():
    assert npm.severity_counts(AUDIT) == {
        "info": 0,
        "low": 1,
        "moderate": 0,
        "high": 0,
        "critical": 3,
    }


def test_severity_counts_without_metadata_count_the_packages():
    report = {"vulnerabilities": AUDIT["vulnerabilities"]}
    assert npm.severity_counts(report)["critical"] == 3


def test_vulnerable_packages_are_sorted_worst_first_with_advisories_and_fixes():
    packages = npm.vulnerable_packages(AUDIT)
    assert [(p["name"], p["severity"]) for p in packages] == [
        ("lodash", "critical"),
        ("minimist", "critical"),
        ("mkdirp", "critical"),
        ("debug", "low"),
    ]
    mkdirp = packages[2]
    assert mkdirp["via"] == ["minimist"]
    assert mkdirp["advisories"] == []
    assert mkdirp["fix"] == "upgrade mkdirp to 3.0.1 (a major upgrade)"
    assert packages[0]["advisories"] == [
        {
            "title": "Prototype Pollution in lodash",
            "url": "https://github.com/advisories/GHSA-jf85-cpcp-j695",
            "severity": "critical",
            "range": "<4.17.12",
        }
    ]
    assert packages[0]["direct"] is True


def test_npm_6_advisories_are_grouped_by_package():
    report = {
        "advisories": {
            "1": {"module_name": "lodash", "severity": "high", "title": "A"},
            "2": {"module_name": "lodash", "severity": "critical", "title": "B"},
            "3": {"module_name": "debug", "severity": "low", "title": "C"},
        },
        "metadata": {"vulnerabilities": {"low": 1, "high": 1, "critical": 1}},
    }
    packages = npm.vulnerable_packages(report)
    assert [(p["name"], p["severity"]) for p in packages] == [
        ("lodash", "critical"),
        ("debug", "low"),
    ]
    assert [a["title"] for a in packages[0]["advisories"]] == ["A", "B"]


@pytest.mark.parametrize(
    ("fix", "expected"),
    [
        (True, "npm audit fix"),
        (False, None),
        (None, None),
        ({"name": "a", "version": "2.0.0"}, "upgrade a to 2.0.0"),
        (
            {"name": "a", "version": "2.0.0", "isSemVerMajor": True},
            "upgrade a to 2.0.0 (a major upgrade)",
        ),
    ],
)
def test_fixes_are_described(fix, expected):
    assert npm.describe_fix(fix) == expected


def test_audit_findings_judge_each_severity_from_the_audit_level(project):
    findings, metrics = npm.audit_findings(AUDIT, settings(project))
    assert [(f.name, f.status, f.value) for f in findings] == [
        ("vulnerabilities_critical", "critical", 3),
        ("vulnerabilities_high", "ok", 0),
        ("vulnerabilities_moderate", "ok", 0),
        ("vulnerabilities_low", "ok", 1),
    ]
    assert findings[0].message == (
        "3 vulnerable packages of critical severity: lodash, minimist, mkdirp; "
        "above the critical threshold of 0"
    )
    assert findings[1].message == "No vulnerable packages of high severity"
    assert findings[3].message == "1 vulnerable package of low severity: debug"
    assert findings[3].action is None
    assert metrics == {
        "vulnerabilities_info": 0,
        "vulnerabilities_low": 1,
        "vulnerabilities_moderate": 0,
        "vulnerabilities_high": 0,
        "vulnerabilities_critical": 3,
        "vulnerabilities_total": 4,
        "dependencies_total": 5,
    }


def test_the_audit_level_leaves_milder_severities_to_the_metrics(project):
    findings, metrics = npm.audit_findings(AUDIT, settings(project, audit_level="high"))
    assert [f.name for f in findings] == [
        "vulnerabilities_critical",
        "vulnerabilities_high",
    ]
    assert metrics["vulnerabilities_low"] == 1


def test_the_audit_action_names_fixes_and_packages_without_one(project):
    findings, _metrics = npm.audit_findings(
        AUDIT, settings(project, vulnerabilities={"low": {"warning": 0}})
    )
    low = findings[3]
    assert low.status == "warning"
    assert low.action == (
        f"In {project}, run npm audit for the advisories; no fix is published for "
        "debug: replace or remove it, or accept the risk on record"
    )
    assert findings[0].action == (
        f"In {project}, run npm audit for the advisories; fix with lodash: npm audit "
        "fix; minimist: upgrade mkdirp to 0.5.6; mkdirp: upgrade mkdirp to 3.0.1 "
        "(a major upgrade)"
    )


@pytest.mark.parametrize(
    ("count", "threshold", "status"),
    [
        (0, {"critical": 0}, "ok"),
        (1, {"critical": 0}, "critical"),
        (2, {"warning": 2}, "ok"),
        (3, {"warning": 2, "critical": 5}, "warning"),
        (6, {"warning": 2, "critical": 5}, "critical"),
        (9, {}, "ok"),
    ],
)
def test_counts_are_judged_against_their_bounds(count, threshold, status):
    finding = npm.counted_finding(
        "x",
        count,
        Threshold(**threshold),
        subject="some",
        names=[],
        action="act",
        details={},
    )
    assert finding.status == status
    assert finding.action == (None if status == "ok" else "act")


def test_a_finding_names_five_packages_and_counts_the_rest():
    finding = npm.counted_finding(
        "x",
        7,
        Threshold(),
        subject="7 packages",
        names=list("abcdefg"),
        action="act",
        details={},
    )
    assert finding.message == "7 packages: a, b, c, d, e and 2 more"


# Outdated packages


@pytest.mark.parametrize(
    ("current", "latest", "expected"),
    [
        ("2.6.8", "4.3.4", 2),
        ("4.17.4", "4.17.21", 0),
        ("0.5.1", "3.0.1", 3),
        ("0.5.1", "0.6.0", 1),
        ("0.0.8", "0.0.9", 0),
        ("1.2.3", "1.2.3", 0),
        ("2.0.0", "1.9.0", 0),
        ("1.0.0-beta.1", "2.0.0", 1),
        (None, "2.0.0", None),
        ("1.0.0", "git", None),
    ],
)
def test_majors_behind(current, latest, expected):
    assert npm.majors_behind(current, latest) == expected


def test_lockfile_versions_are_read_for_top_level_packages(project):
    assert npm.locked_versions(str(project)) == {
        "mkdirp": "0.5.1",
        "@scope/tool": "1.0.0",
    }


def test_lockfile_version_1_is_read(tmp_path):
    lock = {"lockfileVersion": 1, "dependencies": {"lodash": {"version": "4.17.4"}}}
    (tmp_path / "package-lock.json").write_text(json.dumps(lock))
    assert npm.locked_versions(str(tmp_path)) == {"lodash": "4.17.4"}


def test_a_missing_or_broken_lockfile_gives_no_versions(tmp_path):
    assert npm.locked_versions(str(tmp_path)) == {}
    (tmp_path / "package-lock.json").write_text("{not json")
    assert npm.locked_versions(str(tmp_path)) == {}


def test_outdated_packages_fall_back_to_the_lockfile_for_current_versions(project):
    packages = npm.outdated_packages(OUTDATED, npm.locked_versions(str(project)))
    assert [
        (p["name"], p["current"], p["current_from"], p["majors_behind"])
        for p in packages
    ] == [
        ("debug", "2.6.8", "node_modules", 2),
        ("lodash", "4.17.4", "node_modules", 0),
        ("mkdirp", "0.5.1", "lockfile", 3),
    ]


def test_a_package_listed_for_several_dependents_counts_each_time():
    report = {"ms": [{"current": "2.0.0", "latest": "2.1.3"}, {"latest": "2.1.3"}]}
    packages = npm.outdated_packages(report, {})
    assert [(p["current"], p["current_from"]) for p in packages] == [
        ("2.0.0", "node_modules"),
        (None, None),
    ]


def test_outdated_findings_count_major_updates_against_the_threshold(project):
    findings, metrics = npm.outdated_findings(OUTDATED, settings(project))
    major, updates = findings
    assert (major.name, major.status, major.value) == ("major_updates", "warning", 2)
    assert major.message == (
        "2 packages are a major version behind: debug 2.6.8 -> 4.3.4, mkdirp "
        "0.5.1 -> 3.0.1; above the warning threshold of 1"
    )
    assert [p["name"] for p in major.details["packages"]] == ["debug", "mkdirp"]
    assert (updates.name, updates.status, updates.value) == ("updates", "ok", 3)
    assert metrics == {
        "outdated_total": 3,
        "major_updates_total": 2,
        "outdated_unknown_current": 0,
    }


def test_no_outdated_package_is_ok(project):
    findings, metrics = npm.outdated_findings({}, settings(project))
    assert [(f.status, f.message) for f in findings] == [
        ("ok", "No package is a major version behind"),
        ("ok", "Every package is current"),
    ]
    assert metrics["outdated_total"] == 0


def test_unknown_current_versions_are_said(tmp_path):
    (tmp_path / "package.json").write_text("{}")
    report = {"left-pad": {"wanted": "1.3.0", "latest": "1.3.0"}}
    findings, metrics = npm.outdated_findings(report, settings(tmp_path))
    assert findings[1].message == (
        "1 package has newer versions (current version unknown for 1: not installed "
        "and not in the lockfile): left-pad ? -> 1.3.0"
    )
    assert metrics["outdated_unknown_current"] == 1


# The whole check, with a stand-in npm program


def fake_npm(folder: Path, audit: object, outdated: object) -> Path:
    """An executable that prints the given JSON for audit and outdated, exit 1."""
    (folder / "audit.json").write_text(json.dumps(audit))
    (folder / "outdated.json").write_text(json.dumps(outdated))
    script = folder / "fake-npm"
    script.write_text(
        f'#!/bin/sh\ncat "{folder}/$1.json"\necho "$@" >> "{folder}/calls"\nexit 1\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_the_check_runs_both_commands_and_reports_their_findings(project, tmp_path):
    tools = tmp_path / "tools"
    tools.mkdir()
    script = fake_npm(tools, AUDIT, OUTDATED)
    result = npm.run_npm_audit(
        {"path": str(project), "executable": str(script), "omit_dev": True}
    )
    assert result["status"] == "critical"
    assert [c["name"] for c in result["checks"]] == [
        "vulnerabilities_critical",
        "vulnerabilities_high",
        "vulnerabilities_moderate",
        "vulnerabilities_low",
        "major_updates",
        "updates",
    ]
    assert result["metrics"]["major_updates_total"] == 2
    assert result["summary"].startswith(f"npm dependencies of {project} CRITICAL")
    calls = sorted((tools / "calls").read_text().splitlines())
    assert calls == ["audit --json --omit=dev", "outdated --json --long --omit=dev"]


def test_one_command_without_an_answer_leaves_the_other_findings(project, tmp_path):
    tools = tmp_path / "tools"
    tools.mkdir()
    refused = {"message": "request failed, reason: connect ECONNREFUSED"}
    script = fake_npm(tools, refused, OUTDATED)
    result = npm.run_npm_audit({"path": str(project), "executable": str(script)})
    assert [(c["name"], c["status"]) for c in result["checks"]] == [
        ("audit", "unknown"),
        ("major_updates", "warning"),
        ("updates", "ok"),
    ]
    assert "vulnerabilities_total" not in result["metrics"]


def test_only_the_chosen_commands_run(project, tmp_path):
    tools = tmp_path / "tools"
    tools.mkdir()
    script = fake_npm(tools, AUDIT, OUTDATED)
    result = npm.run_npm_audit(
        {"path": str(project), "executable": str(script), "commands": ["outdated"]}
    )
    assert [c["name"] for c in result["checks"]] == ["major_updates", "updates"]
    assert (tools / "calls").read_text().splitlines() == [
        "outdated --json --long",
    ]
