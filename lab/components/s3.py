"""S3 for the lab: moto's server holding mongodump backups of the TRM data."""

from __future__ import annotations

import gzip
import shutil
from datetime import datetime
from pathlib import Path

import boto3
import bson
from botocore.config import Config
from bson import json_util

from lab import trm_data
from lab.core import LOOPBACK, LabContext, LabError, free_port, stop_pid, wait_for_port

NAME = "s3"
SERVER = "moto_server"
REGION = "us-east-1"
# Dummy credentials: moto accepts any, and they protect nothing.
ACCESS_KEY = "LABTRMACCESSKEY00001"
SECRET_KEY = "lab-trm-dummy-secret-0000000000000000000"
BUCKET = "trm-backups"
PREFIX_TEMPLATE = "mongodb/%Y%m%d/"
BACKUP_HOUR = 2
BACKUP_DAYS = 8
# Go's gzip writer, which mongodump uses, leaves the header's mtime at zero.
GZIP_LEVEL = 6


def start(ctx: LabContext, state: dict) -> dict:
    """Start moto's S3, upload eight days of backups and return its record."""
    data = trm_data.generate(trm_data.resolve_now(state))
    port = free_port()
    pid = ctx.spawn(NAME, [_executable(ctx), "-H", LOOPBACK, "-p", str(port)])
    endpoint_url = f"http://{LOOPBACK}:{port}"
    try:
        wait_for_port(port, pid=pid)
        backups = upload_backups(client(endpoint_url), data)
    except BaseException:
        stop_pid(pid)
        raise
    return {
        "pids": [pid],
        "host": LOOPBACK,
        "port": port,
        "endpoint_url": endpoint_url,
        "region": REGION,
        "access_key": ACCESS_KEY,
        "secret_key": SECRET_KEY,
        "bucket": BUCKET,
        "prefix_template": PREFIX_TEMPLATE,
        "backup_hour_utc": BACKUP_HOUR,
        "backups": backups,
    }


def client(endpoint_url: str):
    """Return a boto3 S3 client for the lab's endpoint, with timeouts."""
    config = Config(
        connect_timeout=3,
        read_timeout=15,
        retries={"max_attempts": 2},
        s3={"addressing_style": "path"},
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=config,
    )


def backup_moments(now: datetime, *, days: int = BACKUP_DAYS) -> list[datetime]:
    """Return the last ``days`` daily backup moments (02:00 UTC) up to ``now``."""
    latest = now.replace(hour=BACKUP_HOUR, minute=0, second=0, microsecond=0)
    if latest > now:
        latest -= trm_data.DAY
    return [latest - day * trm_data.DAY for day in range(days)]


def upload_backups(s3, data: trm_data.TrmData) -> dict[str, dict]:
    """Create the bucket and upload one mongodump per backup moment."""
    s3.create_bucket(Bucket=BUCKET)
    encoded = {
        name: [bson.encode(doc) for doc in docs]
        for name, docs in data.collections.items()
    }
    times = {
        name: trm_data.creation_times(docs) for name, docs in data.collections.items()
    }
    metadata = {name: metadata_json(name, seed=data.seed) for name in encoded}
    return {
        moment.strftime("%Y%m%d"): _upload_day(s3, moment, encoded, times, metadata)
        for moment in backup_moments(data.now)
    }


def metadata_json(name: str, *, seed: int = trm_data.DEFAULT_SEED) -> bytes:
    """Return the metadata JSON mongodump writes beside a collection's BSON."""
    indexes = [{"v": 2, "key": {"_id": 1}, "name": "_id_"}]
    indexes += [{"v": 2, **index} for index in trm_data.INDEXES[name]]
    document = {
        "indexes": indexes,
        "uuid": trm_data.collection_uuid(name, seed=seed),
        "collectionName": name,
        "type": "collection",
    }
    text = json_util.dumps(
        document, json_options=json_util.CANONICAL_JSON_OPTIONS, separators=(",", ":")
    )
    return text.encode()


def _upload_day(
    s3,
    moment: datetime,
    encoded: dict[str, list[bytes]],
    times: dict[str, list[datetime]],
    metadata: dict[str, bytes],
) -> dict:
    """Upload the dump of the data as it was at ``moment``; describe it."""
    prefix = f"{moment.strftime(PREFIX_TEMPLATE)}{trm_data.DATABASE}/"
    documents, size = {}, 0
    for name, docs in encoded.items():
        count = trm_data.count_until(times[name], moment)
        size += _put(s3, f"{prefix}{name}.bson.gz", b"".join(docs[:count]))
        size += _put(s3, f"{prefix}{name}.metadata.json.gz", metadata[name])
        documents[name] = count
    return {
        "timestamp": trm_data.iso(moment),
        "prefix": moment.strftime(PREFIX_TEMPLATE),
        "objects": 2 * len(encoded),
        "bytes": size,
        "documents": documents,
    }


def _put(s3, key: str, raw: bytes) -> int:
    """Upload ``raw`` gzipped, with a SHA-256 checksum; return the stored size."""
    body = gzip.compress(raw, compresslevel=GZIP_LEVEL, mtime=0)
    s3.put_object(
        Bucket=BUCKET,
        Key=key,
        Body=body,
        ContentType="application/gzip",
        ChecksumAlgorithm="SHA256",
    )
    return len(body)


def _executable(ctx: LabContext) -> str:
    """Find moto_server next to the lab's interpreter, else on PATH."""
    beside = Path(ctx.python).parent / SERVER
    if beside.exists():
        return str(beside)
    found = shutil.which(SERVER)
    if found is None:
        raise LabError(f"{SERVER} is not installed: run 'pip install moto[server]'")
    return found
