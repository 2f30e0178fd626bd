"""Benchmark: redis_stats against community.general's redis_info, same server.

One redis-server (the OS package) is started on a loopback port in a temporary
folder, with a password, 2,000 keys, a pattern of hits and misses and a few
slow log entries. Three tasks then run through ansible-playbook, each looped
``--calls`` times in one playbook, and each playbook ``--rounds`` times, the
three in turn so that a busy moment of the machine hurts all of them alike:

- ``ansible.builtin.ping``: the cost of any module task;
- ``community.general.redis_info``: raw INFO, no verdict;
- ``trm.maintenance.redis_stats``: every check group with a verdict, with
  ``sample_seconds: 0`` (the interval's wait is a chosen pause, not cost).

Seconds per call are the median playbook time over the rounds divided by the
calls, so Ansible's start-up is shared out. The server counts the commands and
connections of each call (INFO commandstats and total_connections_received).

Run it with ``.venv/bin/python -m bench.redis.run`` from the repository root.
Everything it writes goes to a temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import redis  # noqa: E402
import yaml  # noqa: E402

from lab.components.redis import redis_server_binary  # noqa: E402
from lab.core import LOOPBACK, LabContext, free_port, stop_pid, wait_for_port  # noqa: E402

BIN = Path(sys.executable).parent
KEYS = 2000


def start_server(folder: Path) -> tuple:
    """Start redis-server with a password; return (pid, port, password)."""
    ctx = LabContext(folder / "redis")
    port, password = free_port(), secrets.token_urlsafe(16)
    config = ctx.path("redis.conf")
    config.write_text(
        f"bind {LOOPBACK}\nport {port}\nrequirepass {password}\n"
        f"dir {ctx.state_dir}\nsave ''\nenable-debug-command local\n"
    )
    config.chmod(0o600)
    pid = ctx.spawn("redis", [redis_server_binary(), str(config)])
    wait_for_port(port, pid=pid)
    return pid, port, password


def seed(client: redis.Redis) -> None:
    """Keys, lookups and slow log entries, so that every check has work."""
    client.mset({f"session:{index}": "x" * 200 for index in range(KEYS)})
    for index in range(KEYS // 2):
        client.expire(f"session:{index}", 3600)
    for index in range(0, KEYS * 2, 3):
        client.get(f"session:{index}")
    for _count in range(5):
        client.execute_command("DEBUG", "SLEEP", "0.011")


def collection_link(folder: Path) -> Path:
    """A collections folder in ``folder`` whose trm.maintenance is this checkout."""
    root = folder / "collections"
    link = root / "ansible_collections" / "trm" / "maintenance"
    link.parent.mkdir(parents=True)
    link.symlink_to(REPO, target_is_directory=True)
    return root


def playbook(folder: Path, name: str, task: dict, calls: int) -> Path:
    """Write a playbook that runs ``task`` ``calls`` times on localhost."""
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable},
            "tasks": [{"name": name, **task, "loop": list(range(calls))}],
        }
    ]
    path = folder / f"{name.replace('.', '_')}.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    return path


def run_playbook(path: Path, folder: Path, collections: Path) -> float:
    """Run one playbook; return its wall-clock seconds, or stop on failure."""
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(collections),
        "ANSIBLE_LOCAL_TEMP": str(folder / "ansible-local"),
        "ANSIBLE_REMOTE_TEMP": str(folder / "ansible-remote"),
        "ANSIBLE_NOCOLOR": "1",
    }
    argv = [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local"]
    began = time.perf_counter()
    done = subprocess.run(
        [*argv, str(path)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{path.name} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def server_counts(client: redis.Redis) -> tuple:
    """Commands and connections the server counted since CONFIG RESETSTAT."""
    stats = client.info("commandstats")
    # Every call but the CONFIG RESETSTAT that started the count; our own INFO
    # is counted only after it answers.
    commands = sum(row["calls"] for row in stats.values()) - 1
    # Our own connection was opened before the reset.
    connections = client.info("stats")["total_connections_received"]
    return commands, connections


def tasks(port: int, password: str) -> list:
    """The three tasks, each with the same server and credentials."""
    login = {"login_host": LOOPBACK, "login_port": port, "login_password": password}
    return [
        ("ansible.builtin.ping", {"ansible.builtin.ping": {}}),
        (
            "community.general.redis_info",
            {"community.general.redis_info": {**login, "tls": False}},
        ),
        (
            "trm.maintenance.redis_stats",
            {"trm.maintenance.redis_stats": {**login, "sample_seconds": 0}},
        ),
    ]


def measure(port: int, password: str, folder: Path, args: argparse.Namespace):
    """Run every task ``args.rounds`` times in turn; return rows for the table."""
    collections = collection_link(folder)
    plays = [
        (name, playbook(folder, name, task, args.calls))
        for name, task in tasks(port, password)
    ]
    times: dict = {name: [] for name, _path in plays}
    counts: dict = {}
    for _round in range(args.rounds):
        for name, path in plays:
            with redis.Redis(
                host=LOOPBACK, port=port, password=password, socket_timeout=10
            ) as client:
                client.config_resetstat()
                times[name].append(run_playbook(path, folder, collections))
                counts[name] = server_counts(client)
    return [
        (
            name,
            statistics.median(times[name]) / args.calls,
            counts[name][0] / args.calls,
            counts[name][1] / args.calls,
        )
        for name, _path in plays
    ]


def main() -> None:
    """Start the server, run the benchmark, print the table and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10, help="calls per playbook")
    parser.add_argument("--rounds", type=int, default=3, help="runs per playbook")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pid, port, password = start_server(folder)
        try:
            with redis.Redis(host=LOOPBACK, port=port, password=password) as client:
                seed(client)
            rows = measure(port, password, folder, args)
        finally:
            stop_pid(pid)
    width = max(len(row[0]) for row in rows)
    print(f"{'task':<{width}}  seconds/call  commands/call  connections/call")
    for name, seconds, commands, connections in rows:
        figures = f"{seconds:>12.3f}  {commands:>13.1f}  {connections:>16.1f}"
        print(f"{name:<{width}}  {figures}")
    info, stats = rows[1][1], rows[2][1]
    print(f"ratio redis_stats / redis_info: {stats / info:.2f}")


if __name__ == "__main__":
    main()
