"""Levels 3 and 4 of s3_backup_verify against a bare streaming download.

One mongodump directory backup of a few tens of MB (gzipped BSON with SHA-256
checksums stored in S3, and each collection's metadata) is read three ways in
one run, each over the same objects with the same four threads:

- a bare boto3 ``get_object`` streaming download that only counts the bytes
  (the floor: nothing can verify content faster than it arrives);
- ``s3_backup_verify`` level 3: the download re-hashed and every gzip stream
  inflated to its end;
- ``s3_backup_verify`` levels 3 and 4: the same, and every document decoded.
"""

from __future__ import annotations

import base64
import gzip
import json
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import bson

COLLECTIONS = ("users", "referrals", "jobs", "payments", "auditlogs", "notices")
WORKERS = 4
CHUNK_BYTES = 1024 * 1024
STATUSES = ("new", "open", "accepted", "paid", "closed")


def documents(name: str, target_bytes: int, seed: int) -> list:
    """Raw BSON documents of one collection, about ``target_bytes`` in all."""
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    raws, size, number = [], 0, 0
    while size < target_bytes:
        # Half text that compresses, half random bytes that do not, as in
        # documents with free text and identifiers.
        note = " ".join(rng.choice(STATUSES) for _word in range(rng.randint(20, 80)))
        blob = base64.b64encode(rng.randbytes(rng.randint(100, 500))).decode()
        raw = bson.encode(
            {
                "_id": bson.ObjectId(),
                "n": number,
                "email": f"{name}{number}@example.org",
                "status": rng.choice(STATUSES),
                "createdAt": start + timedelta(seconds=number * 37),
                "note": note,
                "token": blob,
            }
        )
        raws.append(raw)
        size += len(raw)
        number += 1
    return raws


def build(total_mb: float) -> tuple:
    """The backup's files by path, and its document count per collection."""
    per_collection = int(total_mb * 1024 * 1024 / len(COLLECTIONS))
    files, counts = {}, {}
    for seed, name in enumerate(COLLECTIONS):
        raws = documents(name, per_collection, seed)
        counts[f"trm.{name}"] = len(raws)
        files[f"trm/{name}.bson.gz"] = gzip.compress(b"".join(raws), compresslevel=6)
        metadata = {
            "options": {},
            "indexes": [{"v": 2, "key": {"_id": 1}, "name": "_id_"}],
            "collectionName": name,
            "type": "collection",
        }
        files[f"trm/{name}.metadata.json.gz"] = gzip.compress(
            json.dumps(metadata).encode()
        )
    return files, counts


def upload(s3, bucket: str, prefix: str, files: dict) -> None:
    """Upload every file with a SHA-256 checksum that S3 stores."""
    for relative, body in files.items():
        s3.put_object(
            Bucket=bucket,
            Key=f"{prefix}{relative}",
            Body=body,
            ChecksumAlgorithm="SHA256",
        )


def bare_download(s3, bucket: str, prefix: str) -> tuple:
    """The floor: list the prefix, stream every object, count its bytes."""
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    keys = [entry["Key"] for entry in listing.get("Contents", ())]

    def read(key: str) -> int:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            return sum(len(chunk) for chunk in body.iter_chunks(CHUNK_BYTES))
        finally:
            body.close()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return len(keys), sum(pool.map(read, keys))


def verified(params: dict, levels: list, counts: dict) -> tuple:
    """Run the module's levels in-process; insist that everything was ok."""
    from ansible_collections.trm.maintenance.plugins.module_utils.backup import (
        run_s3_backup_verify,
    )

    result = run_s3_backup_verify({**params, "levels": levels, "max_workers": WORKERS})
    if result["status"] != "ok":
        raise SystemExit(f"levels {levels}: {result['summary']}")
    if 4 in levels:
        found = {n: e["documents"] for n, e in result["collections"].items()}
        if found != counts:
            raise SystemExit(f"levels {levels}: counted {found}, expected {counts}")
    return result["metrics"]["objects_read"], result["metrics"]["bytes_read"]


def sizes(files: dict) -> tuple:
    """How many objects, and their total bytes."""
    return len(files), sum(len(body) for body in files.values())
