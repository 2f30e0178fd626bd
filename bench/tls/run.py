"""Benchmark: 200 TLS endpoints in one tls_expiry task against the usual loops.

Starts 200 TLS servers on loopback (one process, one port each, certificates
from a lab CA expiring 1 to 200 days out) and times, in one run:

- an empty playbook (Ansible's start-up) and one ``ansible.builtin.ping`` task,
  the cost of one empty module task;
- one ``trm.maintenance.tls_expiry`` task over the 200 endpoints;
- a loop of ``community.crypto.get_certificate`` over the same endpoints;
- the maintenance guide's shell loop of ``openssl s_client | openssl x509``;
- the same check in-process, without Ansible.

Run it with ``.venv/bin/python -m bench.tls.run`` from the repository root
(``--endpoints N`` for another fleet size). Everything it writes goes to a
temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Run as a script, the repository root is not on the path yet; the collection
# is importable through the link that `make venv` (or the test suite) creates.
for entry in (REPO / ".collections", REPO):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

import yaml  # noqa: E402

from ansible_collections.trm.maintenance.plugins.module_utils.tls_expiry import (  # noqa: E402
    run_tls_expiry,
)
from tests.integration.tls_servers import make_fleet, running  # noqa: E402

BIN = Path(sys.executable).parent
REPEATS = 5
GUIDE_LOOP = """\
#!/bin/bash
# The guide's Monday check, one endpoint at a time: read the end date with
# openssl s_client, turn it into days, warn under 30.
now=$(date +%s)
while read -r host port; do
  end=$(echo | timeout 10 openssl s_client -connect "$host:$port" \\
        -servername localhost 2>/dev/null | openssl x509 -noout -enddate \\
        | cut -d= -f2)
  days=$(( ( $(date -d "$end" +%s) - now ) / 86400 ))
  if [ "$days" -lt 30 ]; then echo "WARNING $host:$port expires in $days days"; fi
done < "$1"
"""


def play(tasks: list, variables: dict | None = None) -> list:
    """A play on localhost with ``tasks``."""
    return [
        {
            "name": "Benchmark",
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable, **(variables or {})},
            "tasks": tasks,
        }
    ]


def endpoints(cases: dict) -> list:
    """The fleet as tls_expiry and get_certificate take it."""
    return [
        {
            "name": name,
            "host": "127.0.0.1",
            "port": case.port,
            "server_name": "localhost",
        }
        for name, case in cases.items()
    ]


def playbooks(folder: Path, cases: dict, ca_file: Path) -> dict:
    """Write the benchmark's playbooks; return their paths by name."""
    fleet = endpoints(cases)
    books = {
        "empty": play([]),
        "ping": play([{"name": "Ping", "ansible.builtin.ping": {}}]),
        # One task each: what is timed is the check, not a verification after it
        # (a get_certificate task that cannot read a certificate fails the run).
        "tls_expiry": play(
            [
                {
                    "name": "Check every certificate in one task",
                    "trm.maintenance.tls_expiry": {
                        "endpoints": "{{ fleet }}",
                        "ca_path": str(ca_file),
                    },
                }
            ],
            {"fleet": fleet},
        ),
        "get_certificate": play(
            [
                {
                    "name": "Fetch each certificate, one task per endpoint",
                    "community.crypto.get_certificate": {
                        "host": "{{ item.host }}",
                        "port": "{{ item.port }}",
                        "server_name": "{{ item.server_name }}",
                        "ca_cert": str(ca_file),
                    },
                    "loop": "{{ fleet }}",
                    "loop_control": {"label": "{{ item.name }}"},
                }
            ],
            {"fleet": fleet},
        ),
    }
    paths = {}
    for name, book in books.items():
        paths[name] = folder / f"{name}.yml"
        paths[name].write_text(yaml.safe_dump(book, sort_keys=False))
    return paths


def ansible_env(folder: Path) -> dict:
    """Ansible's environment: this checkout as trm.maintenance, temp in ``folder``."""
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"),
        "ANSIBLE_LOCAL_TEMP": str(folder / "ansible-local"),
        "ANSIBLE_REMOTE_TEMP": str(folder / "ansible-remote"),
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
    }


def timed(argv: list, env: dict, *, timeout: float = 900) -> float:
    """Run ``argv`` and return its wall time; fail loudly if it fails."""
    started = time.perf_counter()
    run = subprocess.run(
        argv,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=REPO,
    )
    elapsed = time.perf_counter() - started
    if run.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:2])} failed:\n{run.stdout}\n{run.stderr}")
    return elapsed


def playbook_time(path: Path, env: dict, *, repeats: int = 1) -> float:
    """The median wall time of ``ansible-playbook path`` over ``repeats`` runs."""
    argv = [str(BIN / "ansible-playbook"), str(path), "-i", "localhost,", "-c", "local"]
    return statistics.median(timed(argv, env) for _unused in range(repeats))


def guide_loop_time(folder: Path, cases: dict) -> tuple:
    """Time the guide's shell loop; return the seconds and its warning count."""
    script = folder / "guide-loop.sh"
    script.write_text(GUIDE_LOOP)
    listing = folder / "endpoints.txt"
    listing.write_text("".join(f"127.0.0.1 {case.port}\n" for case in cases.values()))
    started = time.perf_counter()
    run = subprocess.run(
        ["bash", str(script), str(listing)],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    return time.perf_counter() - started, run.stdout.count("WARNING")


def in_process_time(cases: dict, ca_file: Path) -> tuple:
    """Time the check without Ansible; return the seconds and the result."""
    started = time.perf_counter()
    result = run_tls_expiry({"endpoints": endpoints(cases), "ca_path": str(ca_file)})
    return time.perf_counter() - started, result


def measure(folder: Path, count: int) -> dict:
    """Serve the fleet and time every approach against it."""
    load = os.getloadavg()
    authority, cases = make_fleet(folder / "certs", count)
    env = ansible_env(folder)
    with running(folder, cases):
        # The ports are known once the servers run.
        books = playbooks(folder, cases, authority.ca_file)
        seconds, result = in_process_time(cases, authority.ca_file)
        times = {
            "empty": playbook_time(books["empty"], env, repeats=REPEATS),
            "ping": playbook_time(books["ping"], env, repeats=REPEATS),
            "tls_expiry": playbook_time(books["tls_expiry"], env, repeats=REPEATS),
            "in_process": seconds,
        }
        times["guide_loop"], warnings = guide_loop_time(folder, cases)
        times["get_certificate"] = playbook_time(books["get_certificate"], env)
    times["warnings"] = warnings
    times["load"] = load
    times["expiring"] = result["metrics"]["certificates_expiring"]
    return times


def report(times: dict, count: int) -> str:
    """The result as a small table with the ratios."""
    start = times["empty"]
    empty_task = times["ping"] - start
    ours = times["tls_expiry"] - start
    rows = [
        ("one empty module task (ping)", empty_task),
        (f"tls_expiry, {count} endpoints, one task", ours),
        (f"get_certificate loop, {count} tasks", times["get_certificate"] - start),
        (f"guide's openssl s_client loop ({count}x)", times["guide_loop"]),
        ("tls_expiry in-process (no Ansible)", times["in_process"]),
    ]
    load = ", ".join(f"{value:.1f}" for value in times["load"])
    lines = [
        f"Ansible start-up (empty playbook, taken off the rows): {start:.2f} s",
        f"load average before the run: {load}",
        "",
        f"{'approach':<44} {'seconds':>8} {'x tls_expiry':>13}",
    ]
    for label, seconds in rows:
        lines.append(f"{label:<44} {seconds:>8.2f} {seconds / ours:>12.1f}x")
    lines += [
        "",
        f"tls_expiry task / one empty module task: {ours / empty_task:.1f}x",
        f"certificates under 30 days: tls_expiry {times['expiring']}, "
        f"guide loop {times['warnings']}",
    ]
    return "\n".join(lines)


def main(argv: list | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=200)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-tls-") as folder:
        times = measure(Path(folder), args.endpoints)
    print(report(times, args.endpoints))
    return 0


if __name__ == "__main__":
    sys.exit(main())
