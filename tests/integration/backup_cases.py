"""Backups for the s3_backup_verify tests, written into the lab's moto server.

Every case copies the lab's own mongodump files (the newest backup first) to a
prefix of its own, dated from today, and breaks one thing. The test computes
what the module must find from the same bytes, independently of the module.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import boto3
import bson
from botocore.config import Config
from bson import json_util

from lab.components import s3 as s3_component
from lab.core import LOOPBACK, LabContext, free_port, stop_pid, wait_for_port
from tests.unit.plugins.module_utils.backup_builders import (
    Collection,
    gz,
    sha256_b64,
    split_documents,
    write_archive,
)

CASES = "cases"
MIB = 1024 * 1024


def today() -> date:
    """Today in UTC, the date the module's "today" means."""
    return datetime.now(timezone.utc).date()


def stamp(day: date) -> str:
    """A day as the lab's prefixes write it."""
    return day.strftime("%Y%m%d")


@dataclass
class Source:
    """The lab's backups: per day (newest first), each file's bytes."""

    record: dict
    days: list[str]
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)

    def newest(self) -> dict[str, bytes]:
        """The files of the newest backup, by path within the backup."""
        return self.files[self.days[0]]

    def documents(self, name: str, day: int = 0) -> list[bytes]:
        """The raw documents of collection ``name`` in the backup ``day`` back."""
        data = self.files[self.days[day]][f"trm/{name}.bson.gz"]
        return split_documents(gzip.decompress(data))

    def metadata(self, name: str) -> dict:
        """The metadata document of collection ``name``."""
        data = self.newest()[f"trm/{name}.metadata.json.gz"]
        return json_util.loads(gzip.decompress(data))


def read_source(client, record: dict) -> Source:
    """Download every lab backup once."""
    source = Source(record, list(record["backups"]))
    for day in source.days:
        prefix = f"mongodb/{day}/"
        listing = client.list_objects_v2(Bucket=record["bucket"], Prefix=prefix)
        source.files[day] = {
            entry["Key"][len(prefix) :]: client.get_object(
                Bucket=record["bucket"], Key=entry["Key"]
            )["Body"].read()
            for entry in listing["Contents"]
        }
    return source


def put(
    client, bucket: str, key: str, body: bytes, *, checksum: bool = True, **extra
) -> None:
    """Upload ``body``, with a SHA-256 checksum unless ``checksum`` is false."""
    if checksum:
        extra.setdefault("ChecksumAlgorithm", "SHA256")
    client.put_object(Bucket=bucket, Key=key, Body=body, **extra)


def put_day(client, bucket: str, case: str, day: date, files: dict) -> str:
    """Upload one backup of a case; return its prefix."""
    prefix = f"{CASES}/{case}/{stamp(day)}/"
    for relative, body in files.items():
        put(client, bucket, f"{prefix}{relative}", body)
    return prefix


def build_cases(client, source: Source) -> dict:
    """Write every case; return what the tests need to know about them."""
    bucket = source.record["bucket"]
    day0 = today()
    newest = source.newest()
    for back, lab_day in enumerate(source.days):
        put_day(
            client, bucket, "good", day0 - timedelta(days=back), source.files[lab_day]
        )
    for back in (1, 2, 3):
        files = source.files[source.days[back]]
        put_day(client, bucket, "missing", day0 - timedelta(days=back), files)
        put_day(client, bucket, "shrunk", day0 - timedelta(days=back), files)
    shrunk = {k: v for k, v in newest.items() if k != "trm/auditlogs.bson.gz"}
    put_day(client, bucket, "shrunk", day0, shrunk)
    return {
        "changed": _changed(client, bucket, newest, day0),
        "truncated": _truncated(client, bucket, newest, day0),
        "cut": _cut(client, bucket, source, day0),
        "archive": _archives(client, bucket, source, day0),
        "multipart": _multipart(client, bucket, day0),
        "shrunk_bytes": sum(len(v) for v in shrunk.values()),
    }


def _changed(client, bucket: str, newest: dict, day: date) -> dict:
    """jobs.bson.gz re-gzipped: valid, but not the bytes its checksum was made of."""
    original = newest["trm/jobs.bson.gz"]
    changed = gz(gzip.decompress(original), level=1)
    prefix = put_day(client, bucket, "changed", day, newest)
    # moto keeps the checksum a client states without checking it: the object
    # now carries the original's checksum over different bytes.
    put(
        client,
        bucket,
        f"{prefix}trm/jobs.bson.gz",
        changed,
        ChecksumSHA256=sha256_b64(original),
    )
    return {"stored": sha256_b64(original), "computed": sha256_b64(changed)}


def _truncated(client, bucket: str, newest: dict, day: date) -> dict:
    files = dict(newest)
    whole = files["trm/referrals.bson.gz"]
    files["trm/referrals.bson.gz"] = whole[: len(whole) // 2]
    put_day(client, bucket, "truncated", day, files)
    return {"length": len(whole) // 2}


def _cut(client, bucket: str, source: Source, day: date) -> dict:
    """payments.bson.gz whose last document lost its last 50 bytes."""
    docs = source.documents("payments")
    files = dict(source.newest())
    files["trm/payments.bson.gz"] = gz(b"".join(docs)[:-50])
    put_day(client, bucket, "cut", day, files)
    return {
        "number": len(docs),
        "offset": sum(len(doc) for doc in docs[:-1]),
        "size": len(docs[-1]),
    }


def archive_collections(source: Source) -> list[Collection]:
    """The newest backup's collections, ready for the archive writer."""
    names = sorted({k.split("/")[1].split(".")[0] for k in source.newest()})
    return [
        Collection("trm", name, source.documents(name), source.metadata(name))
        for name in names
    ]


def _archives(client, bucket: str, source: Source, day: date) -> dict:
    archive = write_archive(archive_collections(source), block=500)
    put_day(client, bucket, "archive-gz", day, {"trm.archive.gz": gz(archive)})
    put_day(client, bucket, "archive-plain", day, {"trm.archive": archive})
    put_day(client, bucket, "archive-cut", day, {"trm.archive": archive[:-5000]})
    return {"bytes": len(archive)}


def _multipart(client, bucket: str, day: date) -> dict:
    """A composite-checksum multipart, a multipart ETag, and a single-part ETag."""
    prefix = f"{CASES}/multipart/{stamp(day)}/"
    parts = [os.urandom(5 * MIB), os.urandom(1000)]
    _upload_parts(client, bucket, f"{prefix}composite.bin", parts, "SHA256")
    _upload_parts(client, bucket, f"{prefix}etag-parts.bin", parts, None)
    put(client, bucket, f"{prefix}plain.bin", os.urandom(3000), checksum=False)
    etag = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return {"etag": f"{etag}-2"}


def _upload_parts(client, bucket: str, key: str, parts: list, algorithm) -> None:
    extra = {"ChecksumAlgorithm": algorithm} if algorithm else {}
    upload = client.create_multipart_upload(Bucket=bucket, Key=key, **extra)
    done = []
    for number, body in enumerate(parts, 1):
        answer = client.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=body,
            **extra,
        )
        entry = {"PartNumber": number, "ETag": answer["ETag"]}
        if algorithm:
            entry[f"Checksum{algorithm}"] = answer[f"Checksum{algorithm}"]
        done.append(entry)
    client.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": done},
    )


@dataclass
class AuthS3:
    """A moto server that checks credentials, with one user and one backup."""

    endpoint_url: str
    access_key: str
    secret_key: str
    pid: int


def start_auth_s3(folder: Path, files: dict) -> AuthS3:
    """Start moto with authentication on; create a user, a bucket and a backup."""
    ctx = LabContext(folder)
    port = free_port()
    # Requests after the first three (the IAM setup below) must be signed by a
    # known user with a matching secret.
    pid = ctx.spawn(
        "s3-auth",
        [s3_component._executable(ctx), "-H", LOOPBACK, "-p", str(port)],
        env={"INITIAL_NO_AUTH_ACTION_COUNT": "3"},
    )
    endpoint = f"http://{LOOPBACK}:{port}"
    try:
        wait_for_port(port, pid=pid)
        key = _create_user(endpoint)
        client = _client(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
        client.create_bucket(Bucket="trm-backups")
        put_day(client, "trm-backups", "auth", today(), files)
    except BaseException:
        stop_pid(pid)
        raise
    return AuthS3(endpoint, key["AccessKeyId"], key["SecretAccessKey"], pid)


def _create_user(endpoint: str) -> dict:
    iam = _client(endpoint, "setup", "setup", service="iam")
    iam.create_user(UserName="backup-verify")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }
    iam.put_user_policy(
        UserName="backup-verify", PolicyName="s3", PolicyDocument=json.dumps(policy)
    )
    return iam.create_access_key(UserName="backup-verify")["AccessKey"]


def case_client(record: dict):
    """A client for the lab's S3 that adds no checksum unless asked to."""
    return _client(record["endpoint_url"], record["access_key"], record["secret_key"])


def _client(endpoint: str, access_key: str, secret_key: str, *, service: str = "s3"):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(
            connect_timeout=3,
            read_timeout=15,
            retries={"max_attempts": 1},
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def count_documents(raw_files: dict) -> dict:
    """Documents per collection of a directory backup, from its bytes."""
    return {
        relative.split("/")[1].removesuffix(".bson.gz"): len(
            bson.decode_all(gzip.decompress(body))
        )
        for relative, body in raw_files.items()
        if relative.endswith(".bson.gz")
    }
