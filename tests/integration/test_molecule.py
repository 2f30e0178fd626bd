"""The Molecule scenarios, one per cadence, run as a developer runs them.

Each scenario starts its own lab in its own folder, runs the cadence playbook
against it and checks the maintenance log (extensions/molecule). A run takes
about half a minute; deselect them with ``-m "not molecule"``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.orchestrator import down

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MOLECULE = BIN / "molecule"
# Lab start, converge and verify take well under a minute; the margin is for a
# loaded machine.
TIMEOUT = 600

pytestmark = [pytest.mark.molecule, pytest.mark.lab]

VERIFY_PLAYS = {
    "daily": "Verify the daily maintenance log",
    "weekly": "Verify the weekly maintenance log",
    "monthly": "Verify the monthly maintenance log",
    "quarterly": "Verify the quarterly maintenance log",
}

# Verify tasks that compare the log with what the lab planted; each must run.
PLANTED_TASKS = {
    "daily": [
        "Check the application log review's counts against the planted lines",
    ],
    "weekly": [
        "Check that the ranked table lists the certificates soonest expiry first",
        "Check each ranked row against the lab's days and the Markdown details",
        "Check the security log counts against the lines the lab planted",
    ],
}


def _molecule_env(ephemeral: Path) -> dict:
    """Return the environment for one scenario: its own folder, no colours."""
    return {
        **os.environ,
        # molecule runs ansible-config and ansible-playbook from PATH
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MOLECULE_EPHEMERAL_DIRECTORY": str(ephemeral),
        "NO_COLOR": "1",
        # wide enough that no play name or result line wraps
        "COLUMNS": "200",
    }


def _molecule_test(scenario: str, ephemeral: Path) -> subprocess.CompletedProcess:
    """Run ``molecule test -s scenario``; stop its lab whatever happens."""
    try:
        return subprocess.run(
            [str(MOLECULE), "test", "-s", scenario],
            cwd=REPO,
            env=_molecule_env(ephemeral),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    finally:
        # Molecule's destroy stops the lab, but not when the run is killed by
        # the timeout; the lab's servers run in their own sessions.
        down(ephemeral / "lab" / "state", quiet=True)


@pytest.mark.parametrize("scenario", sorted(VERIFY_PLAYS))
def test_scenario_converges_and_verifies_the_report(scenario, tmp_path):
    run = _molecule_test(scenario, tmp_path / "molecule")
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert f"PLAY [{VERIFY_PLAYS[scenario]}]" in output, output[-6000:]
    assert f"{scenario} > verify: Executed: Successful" in output, output[-6000:]
    assert f"{scenario} > destroy: Executed: Successful" in output, output[-6000:]
    for task in PLANTED_TASKS.get(scenario, []):
        assert f"TASK [{task}]" in output, output[-6000:]
