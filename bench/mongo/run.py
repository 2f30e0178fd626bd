"""Benchmark: the full mongo_health against community.mongodb's mongodb_info.

Both modules ask the same server, in one run: a MongoDB 7 stand-in (mockupdb,
in this process, on a loopback port) holding one database of 200 collections
with two indexes each, the profiler on and WiredTiger statistics. The lab's
nx-27017 cannot serve mongodb_info, which reads ``buildinfo``, ``usersInfo``
and ``rolesInfo`` answers that nx-27017 does not give.

For each module the script runs one playbook that calls it ``--calls`` times
(default 5) and reports the seconds per call (playbook time divided by the
calls) and the commands each call sent, next to ``ansible.builtin.ping`` (the
cost of any module task). The ratio compares what the two modules deliver for
the same task slot: mongodb_info returns raw server information, mongo_health
every check of the maintenance guide with a verdict.

Run it with ``.venv/bin/python -m bench.mongo.run`` from the repository root.
Everything it writes goes to a temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Run as a script, the repository root is not on the path yet; the collection
# is importable through the link that `make venv` (or the test suite) creates.
for entry in (REPO / ".collections", REPO):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

import yaml  # noqa: E402

from tests.unit.plugins.module_utils.mongo7 import (  # noqa: E402
    NOW,
    Collection,
    FakeMongo,
    Index,
    Server,
    naive,
)

BIN = Path(sys.executable).parent
COLLECTIONS = 200


def server() -> Server:
    """The server both modules ask."""
    collections = [
        Collection(
            f"events_{number:03d}",
            documents=1000 * number,
            data_bytes=250_000 * number,
            storage_bytes=300_000 * number,
            index_bytes=40_000 * number,
            indexes=[
                Index("_id_", {"_id": 1}, ops=number),
                Index("createdAt_1", {"createdAt": 1}, ops=number % 7),
            ],
        )
        for number in range(COLLECTIONS)
    ]
    slow = {
        "op": "query",
        "ns": "trm.events_001",
        "millis": 640,
        "ts": naive(NOW - timedelta(hours=2)),
        "command": {"find": "events_001", "filter": {"kind": "signup"}},
    }
    return Server(databases={"trm": collections}, profile={"trm": (1, [slow])})


def playbook(folder: Path, name: str, task: dict, calls: int) -> Path:
    """Write a playbook that runs ``task`` ``calls`` times."""
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


def timed(path: Path, folder: Path) -> float:
    """Run a playbook and return its wall-clock seconds; fail loudly."""
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"),
        "ANSIBLE_LOCAL_TEMP": str(folder / "local"),
        "ANSIBLE_REMOTE_TEMP": str(folder / "remote"),
        "ANSIBLE_NOCOLOR": "1",
    }
    started = time.perf_counter()
    run = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if run.returncode != 0:
        raise SystemExit(f"{path.name} failed:\n{run.stdout}\n{run.stderr}")
    return elapsed


def measure(fake: FakeMongo, folder: Path, calls: int) -> list:
    """Time ping, mongodb_info and mongo_health; count their commands."""
    address = {"login_host": "127.0.0.1", "login_port": fake.mock.port}
    tasks = [
        ("ansible.builtin.ping", {"ansible.builtin.ping": {}}),
        (
            "community.mongodb.mongodb_info",
            {"community.mongodb.mongodb_info": address},
        ),
        (
            "trm.maintenance.mongo_health",
            {"trm.maintenance.mongo_health": {**address, "direct_connection": True}},
        ),
    ]
    rows = []
    for name, task in tasks:
        fake.commands.clear()
        seconds = timed(playbook(folder, name, task, calls), folder)
        asked = [n for n in fake.names() if n not in ("endSessions",)]
        rows.append((name, seconds / calls, len(asked) / calls))
    return rows


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5)
    calls = parser.parse_args().calls
    with tempfile.TemporaryDirectory() as tmp, FakeMongo(server()) as fake:
        rows = measure(fake, Path(tmp), calls)
    width = max(len(name) for name, _s, _c in rows)
    print(f"{'task':<{width}}  seconds/call  commands/call")
    for name, seconds, commands in rows:
        print(f"{name:<{width}}  {seconds:>12.2f}  {commands:>13.0f}")
    info, health = rows[1][1], rows[2][1]
    print(f"ratio mongo_health / mongodb_info: {health / info:.2f}")


if __name__ == "__main__":
    main()
