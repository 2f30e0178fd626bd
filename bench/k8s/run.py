"""Benchmark: k8s_log_scan against one pipeline per question, on a 200 MB pod log.

The lab's Kubernetes API stand-in (``lab.k8s_server``) runs on a loopback port
with one pod whose log is a generated file of ``--megabytes`` (200 by default)
in a temporary folder: 24 hours of request lines with errors, payment
failures, failed logins, suspicious activity, rate limiting and scheduled jobs
among them. Three ways of answering the guide's questions then run in turn:

- the bare download: the log fetched once over the API (``curl``), as the
  scan asks for it (the last 24 hours, with timestamps), thrown away;
- the guide's way: per question, ``kubectl logs --since=24h | grep -c``,
  emulated with ``curl`` (kubectl is not installed) piped into GNU grep;
- ``k8s_log_scan``: the module's scan, in this process (the client libraries
  already loaded; Ansible adds its fixed start-up to each task on top), which
  reads the log once and counts every question in that pass.

Each is run ``--rounds`` times, in turn, and the median is reported with the
ratios to the scan. The counts of the scan and of the pipelines are compared,
so the ratios compare equal answers.

Run it with ``.venv/bin/python -m bench.k8s.run`` from the repository root.
Everything it writes goes to a temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from lab.core import LOOPBACK, LabContext, free_port, stop_pid, wait_for_port  # noqa: E402

NS, APP = "trm", "trm-app"
# The guide's questions as grep sees them, and as the scan's pattern groups.
QUESTIONS = [
    ("errors", r"\b(ERROR|FATAL|CRITICAL)\b", False),
    ("payment_failures", r"payment (failed|declined|error)", True),
    ("failed_logins", r"failed login|login failed|authentication failed", True),
    ("suspicious_activity", r"suspicious", True),
    ("rate_limiting", r"rate.?limit|too many requests", True),
    ("cron_daily_digest", r"CRON daily-digest completed", False),
    ("cron_failures", r"\bCRON\b.*\b(fail|failed|failure|error)\b", True),
]
# Line templates and how often each appears, roughly as the lab's application.
VALIDATION = "ValidationError: referral ref-{n} is missing required field"
TEMPLATES = [
    (9700, "INFO GET /api/referrals/ref-{n} 200 {ms}ms request_id={hex}"),
    (
        60,
        f"ERROR {VALIDATION} (request_id={{hex}})",
    ),
    (20, "ERROR RedisTimeoutError: GET session:{n} timed out after 2000ms"),
    (40, "WARN Payment failed for invoice inv-{n}: card_declined (amount=12.50 USD)"),
    (
        30,
        "WARN Failed login attempt for user u{ms}@example.org from 203.0.113.9",
    ),
    (
        5,
        "WARN Suspicious activity: 40 referral exports in 60s by admin@example.org",
    ),
    (10, "WARN Rate limit exceeded for 203.0.113.9 on POST /api/auth/login"),
    (1, "INFO CRON daily-digest completed in 4213ms (sent=312)"),
    (1, "ERROR CRON cleanup-sessions failed: lock held"),
]


def generate_log(path: Path, megabytes: int, *, seed: int = 2024) -> int:
    """Write ``megabytes`` of timestamped lines over the last 23 hours."""
    rng = random.Random(seed)
    weights = [weight for weight, _template in TEMPLATES]
    # A pool of distinct lines, written in random order: fast and varied.
    pool = [
        template.format(
            n=rng.randint(10000, 99999),
            ms=rng.randint(3, 900),
            hex=f"{rng.getrandbits(32):08x}",
        )
        for template in rng.choices(
            [t for _w, t in TEMPLATES], weights=weights, k=20000
        )
    ]
    target = megabytes * 1024 * 1024
    lines = target // 120
    start = datetime.now(timezone.utc) - timedelta(hours=23)
    step = timedelta(hours=22.9) / lines
    written = 0
    with path.open("w") as out:
        moment = start
        batch = []
        while written < target:
            text = f"{moment:%Y-%m-%dT%H:%M:%S.%f}000Z {pool[rng.randrange(20000)]}\n"
            batch.append(text)
            written += len(text)
            moment += step
            if len(batch) == 10000:
                out.write("".join(batch))
                batch = []
        out.write("".join(batch))
    return written


def start_api(folder: Path) -> tuple:
    """Start the stand-in with one pod; return (pid, base URL, pod name)."""
    ctx = LabContext(folder / "state")
    port = free_port()
    logs = folder / "logs"
    logs.mkdir()
    pid = ctx.spawn_python(
        "k8s",
        "lab.k8s_server",
        "--port",
        str(port),
        "--logs-dir",
        str(logs),
        "--replicas",
        "1",
    )
    wait_for_port(port, pid=pid)
    url = f"http://{LOOPBACK}:{port}"
    with urllib.request.urlopen(
        f"{url}/api/v1/namespaces/{NS}/pods?labelSelector=app%3D{APP}", timeout=10
    ) as answer:
        pod = json.load(answer)["items"][0]["metadata"]["name"]
    return pid, url, pod, logs


def timed(function) -> tuple:
    """Run ``function``; return (seconds, its result)."""
    began = time.perf_counter()
    result = function()
    return time.perf_counter() - began, result


def bare_download(url: str) -> int:
    """Fetch the log once as the scan asks for it; return the bytes."""
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "--max-time",
            "600",
            "-o",
            "/dev/null",
            "-w",
            "%{size_download}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout)


def pipelines(url: str) -> dict:
    """The guide: one fetch and one grep -c per question."""
    counts = {}
    for name, pattern, ignore_case in QUESTIONS:
        flags = "-cEi" if ignore_case else "-cE"
        command = f"curl -sS --max-time 600 '{url}' | grep {flags} -e '{pattern}'"
        # grep -c exits 1 when it counts nothing: the status is checked below.
        out = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode not in (0, 1):
            raise RuntimeError(f"{command} failed: {out.stderr}")
        counts[name] = int(out.stdout.strip())
    return counts


def scan(base: str) -> dict:
    """The module's scan of the pod's last 24 hours."""
    from ansible_collections.trm.maintenance.plugins.module_utils.k8s_logs import (
        run_k8s_log_scan,
    )

    params = {
        "host": base,
        "api_key": None,
        "kubeconfig": None,
        "context": None,
        "validate_certs": None,
        "ca_cert": None,
        "client_cert": None,
        "client_key": None,
        "request_timeout": 60.0,
        "namespace": NS,
        "kind": "Deployment",
        "name": APP,
        "label_selectors": None,
        "container": None,
        "previous": False,
        "since": "24h",
        "patterns": [
            {"name": name, "regex": pattern, "ignore_case": ignore_case}
            for name, pattern, ignore_case in QUESTIONS
        ],
        "top_groups": ["errors"],
        "top_count": 10,
        "redact": [],
        "coverage": {"warning": 95, "direction": "below"},
        "max_workers": 4,
    }
    result = run_k8s_log_scan(params)
    return {name: result["metrics"][name] for name, _pattern, _case in QUESTIONS}


def link_collection(folder: Path) -> None:
    """Make this checkout importable as ansible_collections.trm.maintenance."""
    root = folder / "collections"
    link = root / "ansible_collections" / "trm" / "maintenance"
    link.parent.mkdir(parents=True)
    link.symlink_to(REPO, target_is_directory=True)
    sys.path.insert(0, str(root))


def main(argv: list | None = None) -> int:
    """Generate the log, start the API, run the three ways, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="bench-k8s-"))
    pid = None
    try:
        link_collection(folder)
        pid, base, pod, logs = start_api(folder)
        print(f"Generating a {options.megabytes} MB log ...", flush=True)
        size = generate_log(logs / f"{pod}.log", options.megabytes)
        log_url = f"{base}/api/v1/namespaces/{NS}/pods/{pod}/log"
        run_benchmark(options, base, log_url, size)
    finally:
        if pid is not None:
            stop_pid(pid)
        shutil.rmtree(folder, ignore_errors=True)
    return 0


def run_benchmark(options, base: str, log_url: str, size: int) -> None:
    """Run each way ``rounds`` times in turn and print the medians."""
    scan(base)  # warm the client libraries once: a module run imports them anyway
    times: dict = {"download": [], "pipelines": [], "scan": []}
    answers: dict = {}
    for _round in range(options.rounds):
        seconds, received = timed(
            lambda: bare_download(f"{log_url}?sinceSeconds=86460&timestamps=true")
        )
        times["download"].append(seconds)
        seconds, answers["pipelines"] = timed(
            lambda: pipelines(f"{log_url}?sinceSeconds=86400")
        )
        times["pipelines"].append(seconds)
        seconds, answers["scan"] = timed(lambda: scan(base))
        times["scan"].append(seconds)
    plain = bare_download(f"{log_url}?sinceSeconds=86400")
    report(
        times,
        answers,
        size,
        {"download": received, "scan": received, "pipelines": plain},
    )


def report(times: dict, answers: dict, size: int, served: dict) -> None:
    """Print the table and whether the answers agree."""
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(
        f"\nLog: {size / 1e6:.0f} MB on disk; {served['scan'] / 1e6:.0f} MB served "
        f"per read with timestamps, {served['pipelines'] / 1e6:.0f} MB without; "
        f"{len(QUESTIONS)} questions\n"
    )
    print(f"{'method':<36} {'median s':>9} {'MB/s':>7} {'vs scan':>8}")
    rows = (
        ("bare download (1 read)", "download", 1),
        (
            f"guide: curl | grep -c ({len(QUESTIONS)} reads)",
            "pipelines",
            len(QUESTIONS),
        ),
        ("k8s_log_scan (1 read, all groups)", "scan", 1),
    )
    for label, key, reads in rows:
        seconds = medians[key]
        rate = reads * served[key] / 1e6 / seconds
        ratio = seconds / medians["scan"]
        print(f"{label:<36} {seconds:>9.2f} {rate:>7.0f} {ratio:>7.2f}x")
    print(f"\nCounts agree: {answers['scan'] == answers['pipelines']}")
    for name, _pattern, _case in QUESTIONS:
        ours, theirs = answers["scan"][name], answers["pipelines"][name]
        print(f"  {name:<22} scan {ours:>8}  grep {theirs:>8}")


if __name__ == "__main__":
    sys.exit(main())
