"""The tls_checks role end to end: the weekly check appended to the report.

The play mirrors the weekly playbook: the check role inside a block, the report
role in ``always``. The report's Details table must list the certificates in
the ranking's order, soonest expiry first.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from tests.integration.tls_servers import make_cases, running

pytestmark = pytest.mark.lab

CASES = ("valid", "expiring_20", "expiring_5", "expired", "wrong_host", "refused")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A few certificate cases on loopback."""
    folder = tmp_path_factory.mktemp("tls-role")
    authority, cases = make_cases(folder / "certs")
    chosen = {name: cases[name] for name in CASES}
    with running(folder, chosen):
        yield authority, chosen


def _endpoints(cases: dict) -> list:
    return [
        {"name": n, "host": "127.0.0.1", "port": c.port, "server_name": "localhost"}
        for n, c in cases.items()
    ]


def _play(tmp_path: Path, variables: dict, *extra: str, ansible) -> tuple:
    """Run the weekly-style play; return the run, the results and the report folder."""
    results = tmp_path / "results.json"
    play = [
        {
            "name": "Run the weekly certificate check",
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {
                "ansible_python_interpreter": sys.executable,
                "maintenance_cadence": "weekly",
                "report_dir": str(tmp_path / "reports"),
                "report_history": 0,
                **variables,
            },
            "tasks": [
                {
                    "name": "Check and report",
                    "block": [
                        {
                            "name": "Check the TLS certificates",
                            "ansible.builtin.import_role": {
                                "name": "trm.maintenance.tls_checks"
                            },
                            "tags": ["tls_checks"],
                        }
                    ],
                    "always": [
                        {
                            "name": "Save the results",
                            "ansible.builtin.copy": {
                                "content": "{{ maintenance_results | default([]) "
                                "| to_json }}",
                                "dest": str(results),
                            },
                            "tags": ["always"],
                        },
                        {
                            "name": "Write the maintenance log",
                            "ansible.builtin.import_role": {
                                "name": "trm.maintenance.report"
                            },
                            "tags": ["always"],
                        },
                    ],
                }
            ],
        }
    ]
    path = tmp_path / "weekly.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    run = ansible.playbook(path, "-i", "localhost,", "-c", "local", *extra)
    assert results.exists(), run.stdout + run.stderr
    folders = sorted((tmp_path / "reports").glob("*-weekly"))
    return run, json.loads(results.read_text()), folders[0] if folders else None


def test_the_weekly_check_records_a_ranked_entry_for_the_report(
    ansible, served, tmp_path
):
    authority, cases = served
    run, results, folder = _play(
        tmp_path,
        {
            "tls_checks_endpoints": _endpoints(cases),
            "tls_checks_ca_path": str(authority.ca_file),
            "tls_checks_timeout": 2,
        },
        ansible=ansible,
    )
    # The report role fails the play because a certificate has expired.
    assert run.rc == 2, run.stdout
    assert "Weekly maintenance CRITICAL" in run.stdout
    (entry,) = results
    assert {k: entry[k] for k in ("section", "task", "cadence", "role")} == {
        "section": "TLS certificates",
        "task": "Check SSL certificate expiry",
        "cadence": "weekly",
        "role": "tls_checks",
    }
    result = entry["result"]
    assert result["status"] == "critical"
    assert [r["name"] for r in result["certificates"]] == [
        "expired",
        "expiring_5",
        "expiring_20",
        "wrong_host",
        "valid",
        "refused",
    ]
    markdown = (folder / "maintenance-log.md").read_text()
    assert _detail_rows(markdown) == [
        ("expired", "CRITICAL", "-2 days"),
        ("expiring_5", "CRITICAL", "5 days"),
        ("expiring_20", "WARNING", "20 days"),
        ("wrong_host", "OK", "80 days"),
        ("wrong_host hostname", "CRITICAL", ""),
        ("valid", "OK", "90 days"),
        ("refused", "UNKNOWN", ""),
    ]
    assert "- [x] Check SSL certificate expiry (TLS certificates): CRITICAL" in markdown


def _detail_rows(markdown: str) -> list:
    """The TLS rows of the report's Details table: check, status and value."""
    details = markdown.split("## Details", 1)[1]
    rows = []
    for line in details.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        if line.startswith("| TLS certificates |"):
            rows.append((cells[2], cells[3], cells[5]))
    return rows


def test_without_endpoints_the_check_is_skipped_and_said_so(ansible, tmp_path):
    run, results, folder = _play(tmp_path, {}, ansible=ansible)
    assert run.rc == 0, run.stdout
    (entry,) = results
    assert entry["result"]["skipped"] is True
    report = json.loads((folder / "maintenance-log.json").read_text())
    assert [s["section"] for s in report["skipped"]] == ["TLS certificates"]


def test_the_toggle_and_the_tag_turn_the_concern_off(ansible, served, tmp_path):
    authority, cases = served
    variables = {
        "tls_checks_endpoints": _endpoints({"valid": cases["valid"]}),
        "tls_checks_ca_path": str(authority.ca_file),
    }
    off = tmp_path / "off"
    off.mkdir()
    run, results, _folder = _play(
        off, {**variables, "tls_checks_certificates": False}, ansible=ansible
    )
    assert (run.rc, results) == (0, [])
    skipped = tmp_path / "skipped"
    skipped.mkdir()
    run, results, _folder = _play(
        skipped, variables, "--skip-tags", "certificates", ansible=ansible
    )
    assert (run.rc, results) == (0, [])
    tagged = tmp_path / "tagged"
    tagged.mkdir()
    run, results, _folder = _play(
        tagged, variables, "--tags", "certificates", ansible=ansible
    )
    assert run.rc == 0, run.stdout
    assert [entry["result"]["status"] for entry in results] == ["ok"]
