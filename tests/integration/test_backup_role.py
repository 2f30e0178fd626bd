"""The backup_checks role end to end against the lab, ending in the report.

The plays mirror the cadence playbooks: the role inside a block, the report role
in ``always``. The daily (evening) play verifies the lab's newest backup; the
monthly play restores it into the scratch database; the quarterly play measures
RTO and RPO. Gaps of moto and nx-27017 that these tests meet are listed in
``test_backup_verify.py``.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml
from pymongo import MongoClient

from lab.orchestrator import down, up

pytestmark = pytest.mark.lab
SCRATCH = "trm_restore_test"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """MongoDB and S3 of the lab."""
    state_dir = tmp_path_factory.mktemp("backup-role-lab")
    try:
        yield up(state_dir, only=["mongodb", "s3"], quiet=True)
    finally:
        down(state_dir, quiet=True)


def lab_variables(lab: dict) -> dict:
    """The role variables the lab inventory sets, from the lab's state."""
    s3, mongodb = lab["servers"]["s3"], lab["servers"]["mongodb"]
    newest = next(iter(s3["backups"]))
    return {
        "backup_checks_bucket": s3["bucket"],
        "backup_checks_prefix": s3["prefix_template"],
        "backup_checks_endpoint_url": s3["endpoint_url"],
        "backup_checks_region": s3["region"],
        "backup_checks_access_key": s3["access_key"],
        "backup_checks_secret_key": s3["secret_key"],
        "backup_checks_timeout": 10,
        # The lab's newest backup is today's after 02:00 UTC, yesterday's before.
        "backup_checks_verify_date": newest,
        "backup_checks_restore_uri": mongodb["uri"],
        "backup_checks_live_uri": mongodb["uri"],
    }


def play(tmp_path: Path, cadence: str, variables: dict, *extra: str, ansible):
    """Run the role and the report; return the run, the results and the report."""
    results = tmp_path / "results.json"
    tasks = [
        {
            "name": "Check the backups and report",
            "block": [
                {
                    "name": "Check the backups",
                    "ansible.builtin.import_role": {
                        "name": "trm.maintenance.backup_checks"
                    },
                    "tags": ["backup_checks"],
                }
            ],
            "always": [
                {
                    "name": "Save the results",
                    "ansible.builtin.copy": {
                        "content": "{{ maintenance_results | default([]) | to_json }}",
                        "dest": str(results),
                    },
                    "check_mode": False,
                    "tags": ["always"],
                },
                {
                    "name": "Write the maintenance log",
                    "ansible.builtin.import_role": {"name": "trm.maintenance.report"},
                    "tags": ["always"],
                },
            ],
        }
    ]
    path = tmp_path / f"{cadence}.yml"
    path.write_text(
        yaml.safe_dump(
            [
                {
                    "name": f"Run the {cadence} backup checks",
                    "hosts": "localhost",
                    "gather_facts": False,
                    "vars": {
                        "ansible_python_interpreter": sys.executable,
                        "maintenance_cadence": cadence,
                        "report_dir": str(tmp_path / "reports"),
                        "report_history": 0,
                        **variables,
                    },
                    "tasks": tasks,
                }
            ],
            sort_keys=False,
        )
    )
    run = ansible.playbook(path, "-i", "localhost,", "-c", "local", *extra)
    assert results.exists(), run.stdout + run.stderr
    # In check mode the report role writes no files.
    folders = sorted((tmp_path / "reports").glob(f"*-{cadence}"))
    report = (
        json.loads((folders[0] / "maintenance-log.json").read_text())
        if folders
        else None
    )
    return run, json.loads(results.read_text()), report


def findings(entry: dict) -> dict:
    return {check["name"]: check for check in entry["result"]["checks"]}


def newest_documents(lab: dict) -> int:
    backups = lab["servers"]["s3"]["backups"]
    return sum(next(iter(backups.values()))["documents"].values())


def test_the_evening_check_verifies_the_newest_backup_for_the_report(
    ansible, lab, tmp_path
):
    variables = lab_variables(lab)
    run, results, report = play(tmp_path, "daily", variables, ansible=ansible)

    assert run.rc == 0, run.stdout
    (entry,) = results
    assert {k: entry[k] for k in ("section", "task", "cadence", "role")} == {
        "section": "Backups",
        "task": "Verify today's MongoDB backup in S3 (exists, size, checksums)",
        "cadence": "daily",
        "role": "backup_checks",
    }
    found = findings(entry)
    newest = lab["servers"]["s3"]["backups"][variables["backup_checks_verify_date"]]
    assert found["backup_size"]["value"] == newest["bytes"]
    assert found["checksums"]["message"] == (
        "12 of 12 objects match their stored checksums"
    )
    newest_day = datetime.strptime(variables["backup_checks_verify_date"], "%Y%m%d")
    week_ago = newest_day - timedelta(days=7)
    assert found[f"checksums_{week_ago.strftime('%Y%m%d')}"]["status"] == "ok"
    assert {f["status"] for f in found.values()} == {"ok"}
    sections = {e["section"]: e for e in report["entries"]}
    assert sections["Backups"]["status"] == "ok"
    assert report["status"] == "ok"


def test_the_monthly_restore_test_restores_and_compares_counts(ansible, lab, tmp_path):
    variables = {
        **lab_variables(lab),
        "backup_checks_verify": False,
        "backup_checks_restore_test": True,
        "backup_checks_allow_outside_window": True,
    }
    run, results, report = play(tmp_path, "monthly", variables, ansible=ansible)

    assert run.rc == 0, run.stdout
    (entry,) = results
    assert entry["task"] == (
        "Restore the latest backup into a test database and compare counts"
    )
    found = findings(entry)
    total = newest_documents(lab)
    assert found["restore"]["message"] == (
        f"Restored {total:,} documents of 6 collections into {SCRATCH}; every "
        "count matches the backup"
    )
    assert found["restore_indexes"]["value"] == 17
    assert found["live_counts"]["status"] == "ok"
    assert entry["result"]["metrics"]["rto_seconds"] > 0
    assert entry["result"]["changed"] is True
    assert entry["result"]["restore"]["window"] == {
        "allowed": True,
        "decided_by": "allow_outside_window",
        "reason": "allow_outside_window is set; no window given",
    }
    with MongoClient(lab["servers"]["mongodb"]["uri"], timeoutMS=10000) as client:
        assert SCRATCH not in client.list_database_names()
    assert report["status"] == "ok"


def test_the_quarterly_drill_reports_rto_and_rpo(ansible, lab, tmp_path):
    variables = {
        **lab_variables(lab),
        "backup_checks_verify": False,
        "backup_checks_dr_drill": True,
        "backup_checks_allow_outside_window": True,
    }
    run, results, report = play(tmp_path, "quarterly", variables, ansible=ansible)

    assert run.rc == 0, run.stdout
    (entry,) = results
    assert entry["section"] == "Disaster recovery"
    found = findings(entry)
    assert found["backup_age"]["critical"] == 26.0
    assert found["restore_time"]["critical"] == 4 * 3600
    assert found["restore_time"]["status"] == "ok"
    metrics = entry["result"]["metrics"]
    assert 0 < metrics["rto_seconds"] < 4 * 3600
    assert 0 < metrics["rpo_seconds"] < 26 * 3600
    section = {e["section"]: e for e in report["entries"]}["Disaster recovery"]
    assert section["metrics"]["rto_seconds"] == metrics["rto_seconds"]


def test_check_mode_plans_the_restore_test(ansible, lab, tmp_path):
    variables = {
        **lab_variables(lab),
        "backup_checks_verify": False,
        "backup_checks_restore_test": True,
        "backup_checks_allow_outside_window": True,
    }
    _run, results, report = play(
        tmp_path, "monthly", variables, "--check", ansible=ansible
    )

    (entry,) = results
    assert entry["result"]["restore"]["status"] == "planned"
    assert findings(entry)["restore"]["message"].startswith(
        f"Check mode: would drop {SCRATCH} on mongodb://127.0.0.1:"
    )
    assert report is None


def test_outside_the_window_the_restore_test_is_skipped(ansible, lab, tmp_path):
    # The shared windows (maintenance_guard) decide; 2026-12-03 11:00 UTC is a
    # Thursday, outside the guide's Sunday windows.
    variables = {
        **lab_variables(lab),
        "backup_checks_verify": False,
        "backup_checks_restore_test": True,
        "maintenance_guard_now": "2026-12-03T11:00:00+00:00",
        "maintenance_guard_timezone": "UTC",
    }
    _run, results, report = play(tmp_path, "monthly", variables, ansible=ansible)

    guard, restore = results
    assert guard["section"] == "Maintenance window"
    assert guard["result"]["inside"] is False
    assert guard["result"]["status"] == "warning"
    assert restore["result"]["skipped"] is True
    assert report["status"] == "warning"


def test_inside_the_shared_window_the_restore_says_the_guard_let_it_run(
    ansible, lab, tmp_path
):
    # 2026-12-06 is the first Sunday of December: the guide's monthly window is
    # open 02:00-06:00 UTC and outlasts the weekly one.
    variables = {
        **lab_variables(lab),
        "backup_checks_verify": False,
        "backup_checks_restore_test": True,
        "maintenance_guard_now": "2026-12-06T02:30:00+00:00",
        "maintenance_guard_timezone": "UTC",
    }
    run, results, _report = play(tmp_path, "monthly", variables, ansible=ansible)

    assert run.rc == 0, run.stdout
    guard, restore = results
    inside = (
        "Inside the monthly window (Sun 2026-12-06 02:00-06:00 UTC), 3 h 30 min left"
    )
    assert guard["result"]["checks"][0]["message"] == inside
    assert restore["result"]["restore"]["status"] == "done"
    assert restore["result"]["restore"]["window"] == {
        "allowed": True,
        "decided_by": "maintenance_guard",
        "reason": f"maintenance_guard allowed the restore: {inside}",
    }
    assert findings(restore)["restore_window"]["message"] == (
        f"maintenance_guard allowed the restore: {inside}"
    )


def test_without_a_restore_target_the_restore_test_is_skipped(ansible, lab, tmp_path):
    variables = {
        **lab_variables(lab),
        "backup_checks_verify": False,
        "backup_checks_restore_test": True,
        "backup_checks_restore_uri": "",
    }
    run, results, report = play(tmp_path, "monthly", variables, ansible=ansible)

    assert run.rc == 0, run.stdout
    (entry,) = results
    assert entry["result"]["skipped"] is True
    assert report["entries"][0]["kind"] == "skipped"


def test_the_verify_tag_runs_the_verification_only(ansible, lab, tmp_path):
    variables = {
        **lab_variables(lab),
        "backup_checks_restore_test": True,
        "backup_checks_dr_drill": True,
        "backup_checks_allow_outside_window": True,
    }
    _run, results, _report = play(
        tmp_path, "adhoc", variables, "--tags", "verify", ansible=ansible
    )

    assert [entry["section"] for entry in results] == ["Backups"]
    assert "backup_size" in findings(results[0])
