"""The whole lab through its command line: up, status, down, nothing left behind.

The start time is printed by ``python -m lab up`` and measured outside the tests
(the README gives the figure); here only the lines that report it are checked.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lab.core import pid_alive, port_open
from lab.orchestrator import COMPONENTS

REPO = Path(__file__).resolve().parents[2]
SERVER_LINE = re.compile(r"^lab: (\w+) (?:port \d+|ready) \((\d+\.\d) s\)$")
TOTAL_LINE = re.compile(r"^lab: up in (\d+\.\d) s; state in (.+)$")


def run_lab(
    state_dir: Path, *args: str, timeout: float = 180
) -> subprocess.CompletedProcess:
    """Run ``python -m lab`` with ``state_dir`` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "lab", "--state-dir", str(state_dir), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def recorded_ports(record: object) -> list:
    """Every ``port`` recorded anywhere in a server's record."""
    if isinstance(record, dict):
        found = [v for k, v in record.items() if k == "port" and isinstance(v, int)]
        for value in record.values():
            found.extend(recorded_ports(value))
        return found
    if isinstance(record, list):
        return [port for value in record for port in recorded_ports(value)]
    return []


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory):
    """The whole lab started by ``python -m lab up``; stopped by pid in the end."""
    state_dir = tmp_path_factory.mktemp("lab-cli")
    inventory = state_dir / "inventory" / "lab.yml"
    try:
        run = run_lab(state_dir, "up", "--inventory", str(inventory))
        state = json.loads((state_dir / "state.json").read_text())
        yield {"run": run, "state": state, "dir": state_dir, "inventory": inventory}
    finally:
        run_lab(state_dir, "down")


@pytest.fixture(scope="module")
def stopped(started: dict) -> dict:
    """The same lab after ``python -m lab down``."""
    run = run_lab(started["dir"], "down")
    return {
        **started,
        "down": run,
        "after": json.loads((started["dir"] / "state.json").read_text()),
    }


def test_up_starts_every_server_and_prints_each_start_time(started: dict):
    run = started["run"]
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    servers = [m.group(1) for m in map(SERVER_LINE.match, lines) if m]
    assert servers == COMPONENTS
    total = TOTAL_LINE.match(lines[-1])
    assert total is not None, lines[-1]
    assert Path(total.group(2)) == started["dir"]
    assert sorted(started["state"]["servers"]) == sorted(COMPONENTS)


def test_every_recorded_pid_runs_and_every_port_listens(started: dict):
    servers = started["state"]["servers"]
    pids = {name: record["pids"] for name, record in servers.items()}
    ports = {name: recorded_ports(record) for name, record in servers.items()}

    assert all(pids.values()), pids
    assert {n: [p for p in ps if not pid_alive(p)] for n, ps in pids.items()} == {
        name: [] for name in COMPONENTS
    }
    # Each server listens on one port; the TLS server on one per endpoint.
    assert len(ports["tls"]) == len(servers["tls"]["endpoints"]) == 3
    assert all(len(ports[name]) == 1 for name in COMPONENTS if name != "tls")
    closed = [p for found in ports.values() for p in found if not port_open(p)]
    assert closed == []


def test_status_says_running_for_every_server(started: dict):
    run = run_lab(started["dir"], "status")
    assert run.returncode == 0
    assert run.stdout.splitlines() == [
        f"lab: {name:<14} running" for name in sorted(COMPONENTS)
    ]


def test_inventory_is_written_for_its_owner_only(started: dict):
    inventory = started["inventory"]
    assert inventory.stat().st_mode & 0o777 == 0o600
    assert f"lab_redis_port: {started['state']['servers']['redis']['port']}" in (
        inventory.read_text().splitlines()
    )


def test_down_leaves_no_recorded_pid_alive_and_no_port_open(stopped: dict):
    assert stopped["down"].returncode == 0, stopped["down"].stderr
    servers = stopped["state"]["servers"]
    pids = [pid for record in servers.values() for pid in record["pids"]]
    ports = [port for record in servers.values() for port in recorded_ports(record)]

    assert [pid for pid in pids if pid_alive(pid)] == []
    assert [port for port in ports if port_open(port)] == []
    assert stopped["after"]["servers"] == {}


def test_status_after_down_says_not_running(stopped: dict):
    run = run_lab(stopped["dir"], "status")
    assert run.returncode == 1
    assert run.stdout.strip() == (
        f"lab: not running (no servers recorded in {stopped['dir']})"
    )
