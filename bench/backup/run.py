"""Benchmark: s3_backup_verify's listing (levels 1-2) and content (levels 3-4).

Starts moto's S3 server on loopback, uploads one day's backup made of many
small objects, and times, in one run, the same listing work done four ways:

- a bare boto3 loop over the ``list_objects_v2`` paginator (count and size);
- the guide's ``aws s3 ls --recursive --summarize`` (awscli);
- ``s3_backup_verify``'s levels 1 and 2 in-process (existence, age, size,
  object count; ``history: 0``, so it lists the same single prefix);
- the same as one Ansible task, Ansible's start-up included.

A second table reads a backup of tens of MB at levels 3 and 4 against a bare
streaming download of the same bytes (see ``content.py``).

Run it with ``.venv/bin/python -m bench.backup.run`` from the repository root
(``--objects N`` for another size, ``--repeats R``, ``--content-mb M`` for the
size of the second table's backup before gzip). awscli is needed for its
row: ``pip install awscli``. Everything it writes goes to a temporary folder
that is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BUCKET = "bench-backups"
ACCESS_KEY = "BENCHACCESSKEY000001"
SECRET_KEY = "bench-dummy-secret-00000000000000000000"
REGION = "us-east-1"

for entry in (str(REPO),):
    if entry not in sys.path:
        sys.path.insert(0, entry)

import boto3  # noqa: E402
import yaml  # noqa: E402
from botocore.config import Config  # noqa: E402

from bench.backup import content  # noqa: E402
from lab.core import LOOPBACK, LabContext, free_port, stop_pid, wait_for_port  # noqa: E402


def client(endpoint: str):
    """A boto3 S3 client for the benchmark's moto server, from a new session.

    A new session loads botocore's service model again, as every new process
    does: the module runs in a process of its own, and so does a script.
    """
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(
            connect_timeout=5,
            read_timeout=60,
            retries={"max_attempts": 2},
            s3={"addressing_style": "path"},
            max_pool_connections=16,
        ),
    )


def upload(endpoint: str, prefix: str, count: int) -> int:
    """Upload ``count`` small objects under ``prefix``; return their total size."""
    s3 = client(endpoint)
    s3.create_bucket(Bucket=BUCKET)

    def put(number: int) -> int:
        body = os.urandom(64 + number % 512)
        key = f"{prefix}trm/part-{number:06d}.bson.gz"
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        return len(body)

    with ThreadPoolExecutor(max_workers=16) as pool:
        return sum(pool.map(put, range(count)))


def bare_paginator(endpoint: str, prefix: str) -> tuple:
    """The plainest listing: one paginator, count and sum."""
    pages = (
        client(endpoint)
        .get_paginator("list_objects_v2")
        .paginate(Bucket=BUCKET, Prefix=prefix)
    )
    count = size = 0
    for page in pages:
        for entry in page.get("Contents", ()):
            count += 1
            size += entry["Size"]
    return count, size


def aws_cli(endpoint: str, prefix: str) -> tuple:
    """``aws s3 ls --recursive --summarize``, as the guide runs it."""
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    out = subprocess.run(
        [
            aws_binary(),
            "s3",
            "ls",
            f"s3://{BUCKET}/{prefix}",
            "--recursive",
            "--summarize",
            "--endpoint-url",
            endpoint,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    count = int(re.search(r"Total Objects: (\d+)", out).group(1))
    size = int(re.search(r"Total Size: (\d+)", out).group(1))
    return count, size


def aws_binary() -> str | None:
    """awscli's ``aws`` beside this interpreter, else on PATH, if it runs."""
    beside = BIN / "aws"
    found = str(beside) if beside.exists() else shutil.which("aws")
    if found is None:
        return None
    # A version manager's shim is on PATH even where no awscli is installed.
    check = subprocess.run(
        [found, "--version"], capture_output=True, check=False, timeout=60
    )
    return found if check.returncode == 0 else None


def params(endpoint: str) -> dict:
    """The module options for levels 1 and 2 over the one prefix."""
    return {
        "bucket": BUCKET,
        "prefix": "mongodb/%Y%m%d/",
        "endpoint_url": endpoint,
        "region": REGION,
        "access_key": ACCESS_KEY,
        "secret_key": SECRET_KEY,
        "levels": [1, 2],
        "history": 0,
        "min_size_bytes": 1000,
    }


def module_in_process(endpoint: str) -> tuple:
    """s3_backup_verify's levels 1 and 2, called as the module calls them."""
    from ansible_collections.trm.maintenance.plugins.module_utils.backup import (
        run_s3_backup_verify,
    )

    result = run_s3_backup_verify(params(endpoint))
    return result["metrics"]["backup_objects"], result["metrics"]["backup_bytes"]


def module_task(endpoint: str, folder: Path) -> tuple:
    """The same as one Ansible task (ansible-playbook, start-up included)."""
    out = folder / "result.json"
    play = [
        {
            "name": "Benchmark",
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable},
            "tasks": [
                {
                    "name": "Verify the backup",
                    "trm.maintenance.s3_backup_verify": params(endpoint),
                    "register": "verified",
                },
                {
                    "name": "Save the result",
                    "ansible.builtin.copy": {
                        "content": "{{ verified | to_json }}",
                        "dest": str(out),
                    },
                },
            ],
        }
    ]
    path = folder / "play.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(folder / "collections")}
    subprocess.run(
        [str(BIN / "ansible-playbook"), str(path), "-i", "localhost,", "-c", "local"],
        env=env,
        capture_output=True,
        check=True,
        timeout=600,
    )
    metrics = json.loads(out.read_text())["metrics"]
    return metrics["backup_objects"], metrics["backup_bytes"]


def link_collection(folder: Path) -> None:
    """Expose the checkout as trm.maintenance inside the temporary folder."""
    link = folder / "collections" / "ansible_collections" / "trm" / "maintenance"
    link.parent.mkdir(parents=True)
    link.symlink_to(REPO, target_is_directory=True)
    sys.path.insert(0, str(folder / "collections"))


def timed(ways: list, repeats: int, expected: tuple) -> list:
    """Median seconds per way; the ways take turns so that load drifts evenly."""
    times: dict = {name: [] for name, _function in ways}
    for _round in range(repeats):
        for name, function in ways:
            started = time.perf_counter()
            found = function()
            times[name].append(time.perf_counter() - started)
            if tuple(found) != expected:
                raise SystemExit(f"{name}: found {found}, expected {expected}")
    return [(name, statistics.median(times[name])) for name, _function in ways]


def main() -> None:
    """Start moto, upload, time every way, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--content-mb", type=float, default=40.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-backup-") as tmp:
        folder = Path(tmp)
        link_collection(folder)
        ctx = LabContext(folder)
        port = free_port()
        server = str(BIN / "moto_server")
        pid = ctx.spawn("moto", [server, "-H", LOOPBACK, "-p", str(port)])
        try:
            wait_for_port(port, pid=pid)
            run(f"http://{LOOPBACK}:{port}", folder, args)
        finally:
            stop_pid(pid)


def run(endpoint: str, folder: Path, args) -> None:
    """Upload the prefix and print one row per way of listing it."""
    prefix = datetime.now(timezone.utc).strftime("mongodb/%Y%m%d/")
    started = time.perf_counter()
    total = upload(endpoint, prefix, args.objects)
    print(
        f"{args.objects} objects ({total:,} bytes) under s3://{BUCKET}/{prefix} "
        f"uploaded in {time.perf_counter() - started:.1f} s; median of "
        f"{args.repeats} runs each"
    )
    expected = (args.objects, total)
    ways = [
        ("boto3 paginator loop (bare)", lambda: bare_paginator(endpoint, prefix)),
        (
            "s3_backup_verify levels 1-2, in-process",
            lambda: module_in_process(endpoint),
        ),
        (
            "s3_backup_verify levels 1-2, Ansible task",
            lambda: module_task(endpoint, folder),
        ),
    ]
    aws_row = "aws s3 ls --recursive --summarize"
    if aws_binary():
        ways.insert(1, (aws_row, lambda: aws_cli(endpoint, prefix)))
    rows = timed(ways, args.repeats, expected)
    if not aws_binary():
        rows.insert(1, (aws_row, None))
    table(rows)
    content_table(endpoint, args)


def table(rows: list, *, megabytes: float | None = None) -> None:
    """Print the rows with their ratio to the first; a missing way says why."""
    base = rows[0][1]
    speed = f" {'MB/s':>7}" if megabytes else ""
    print(f"\n{'way':<44} {'seconds':>8} {'ratio':>7}{speed}")
    for name, seconds in rows:
        if seconds is None:
            print(f"{name:<44} not installed (pip install awscli)")
            continue
        rate = f" {megabytes / seconds:7.1f}" if megabytes else ""
        print(f"{name:<44} {seconds:8.3f} {seconds / base:6.2f}x{rate}")


def content_table(endpoint: str, args) -> None:
    """Levels 3-4 on a backup of tens of MB against a bare streaming download."""
    day = datetime.now(timezone.utc)
    template = "content/%Y%m%d/"
    prefix = day.strftime(template)
    started = time.perf_counter()
    files, counts = content.build(args.content_mb)
    s3 = client(endpoint)
    content.upload(s3, BUCKET, prefix, files)
    expected = content.sizes(files)
    print(
        f"\n{expected[0]} objects ({expected[1]:,} bytes, "
        f"{sum(counts.values()):,} documents) under s3://{BUCKET}/{prefix} built "
        f"and uploaded in {time.perf_counter() - started:.1f} s; median of "
        f"{args.repeats} runs each, {content.WORKERS} threads each"
    )
    module = {**params(endpoint), "prefix": template}
    ways = [
        (
            "boto3 get_object streaming download (bare)",
            lambda: content.bare_download(client(endpoint), BUCKET, prefix),
        ),
        (
            "s3_backup_verify level 3, in-process",
            lambda: content.verified(module, [3], counts),
        ),
        (
            "s3_backup_verify levels 3-4, in-process",
            lambda: content.verified(module, [3, 4], counts),
        ),
    ]
    table(timed(ways, args.repeats, expected), megabytes=expected[1] / 1e6)


if __name__ == "__main__":
    main()
