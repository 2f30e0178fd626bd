"""The weekly certificate check against the lab's TLS component, as the lab inventory
sets it up: three endpoints (valid, expiring in 8 days, expired) and their files.

The play and the inventory variables below are the ones the weekly playbook and
inventories/lab use; the test runs them against the real lab servers.
"""

from __future__ import annotations

import json

import pytest

from lab.orchestrator import down, up
from tests.integration.conftest import lab_inventory

pytestmark = pytest.mark.lab

WEEKLY_PLAY = """\
---
- name: Run the weekly maintenance checks
  hosts: trm_platform
  gather_facts: false
  vars:
    maintenance_cadence: weekly
  tasks:
    - name: Run the weekly checks and write the maintenance log
      block:
        - name: Check the TLS certificates of every endpoint
          ansible.builtin.import_role:
            name: trm.maintenance.tls_checks
          tags: [tls_checks]
      rescue:
        - name: Record the failed task
          ansible.builtin.include_role:
            name: trm.maintenance.report
            tasks_from: record_failure
          tags: [always]
      always:
        - name: Write the maintenance log
          ansible.builtin.import_role:
            name: trm.maintenance.report
          tags: [always]
"""

LAB_VARIABLES = """\
---
# Weekly certificate check: the lab's TLS endpoints (valid, expiring in 8 days,
# expired) and the certificate files the lab wrote, against the lab CA.
tls_checks_endpoints:
  - name: valid
    host: "{{ lab_tls_host }}"
    port: "{{ lab_tls_endpoints.valid.port }}"
    server_name: "{{ lab_tls_endpoints.valid.server_name }}"
  - name: expiring
    host: "{{ lab_tls_host }}"
    port: "{{ lab_tls_endpoints.expiring.port }}"
    server_name: "{{ lab_tls_endpoints.expiring.server_name }}"
  - name: expired
    host: "{{ lab_tls_host }}"
    port: "{{ lab_tls_endpoints.expired.port }}"
    server_name: "{{ lab_tls_endpoints.expired.server_name }}"
tls_checks_files:
  - "{{ lab_tls_files.valid }}"
tls_checks_ca_path: "{{ lab_tls_ca_file }}"
"""


@pytest.fixture(scope="module")
def tls_lab(tmp_path_factory):
    """The lab's TLS component alone."""
    state_dir = tmp_path_factory.mktemp("lab-tls")
    try:
        state = up(state_dir, only=["tls"], quiet=True)
        yield state
    finally:
        down(state_dir, quiet=True)


def test_the_weekly_play_ranks_the_lab_certificates(ansible, tls_lab, tmp_path):
    inventory = lab_inventory(tls_lab, tmp_path)
    (inventory / "group_vars" / "trm_platform" / "tls.yml").write_text(LAB_VARIABLES)
    playbook = tmp_path / "weekly.yml"
    playbook.write_text(WEEKLY_PLAY)
    reports = tmp_path / "reports"
    run = ansible.playbook(
        playbook, "-i", str(inventory), "-e", f"report_dir={reports} report_history=0"
    )
    # The expired certificate is critical, so the report role fails the play.
    assert run.rc == 2, run.stdout + run.stderr
    (folder,) = reports.glob("*-weekly")
    report = json.loads((folder / "maintenance-log.json").read_text())
    (entry,) = report["entries"]
    facts = tls_lab["servers"]["tls"]
    valid_file = facts["files"]["valid"]
    ranked = [(f["name"], f["status"], f["value"]) for f in entry["findings"]]
    days = {name: e["days_remaining"] for name, e in facts["endpoints"].items()}
    # The file holds the valid endpoint's certificate; a tie goes by name.
    assert ranked == [
        ("expired", "critical", days["expired"]),
        ("expiring", "warning", days["expiring"]),
        (valid_file, "ok", days["valid"]),
        ("valid", "ok", days["valid"]),
    ]
    assert [f["value"] for f in entry["findings"]] == [-2, 8, 90, 90]
    assert entry["metrics"]["min_days_remaining"] == -2
    markdown = (folder / "maintenance-log.md").read_text()
    assert (
        "| TLS certificates | Check SSL certificate expiry | expired | CRITICAL |"
        in (markdown)
    )
