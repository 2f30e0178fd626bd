# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Findings of backup verification, level by level, from listings and scans."""

from __future__ import annotations

from statistics import median
from typing import Any, Iterable

from ansible_collections.trm.maintenance.plugins.module_utils.backup_digest import (
    MISMATCH,
    UNVERIFIABLE,
)
from ansible_collections.trm.maintenance.plugins.module_utils.backup_restore import (
    index_key,
)
from ansible_collections.trm.maintenance.plugins.module_utils.backup_scan import (
    ARCHIVE,
    BSON,
    METADATA,
    OPLOG,
    RestoreRun,
    restorable,
)
from ansible_collections.trm.maintenance.plugins.module_utils.checks import (
    Finding,
    measured,
    unknown,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    BELOW,
    CRITICAL,
    OK,
    WARNING,
    Threshold,
    format_value,
)

# Messages name at most this many objects; details carry the full list.
NAMED = 5
RESTORE_ACTION = (
    "Do not rely on this backup: find out why the restore differs, fix the "
    "backup job, and take and restore a new backup"
)


def human_bytes(count: float) -> str:
    """Bytes in decimal units, as the guide writes sizes (1 MB = 1,000,000 B)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(count) < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.3g} {unit}"
        count /= 1000
    return f"{count} B"


def listed(names: Iterable[str]) -> str:
    """Up to a few names, then how many more there are."""
    names = list(names)
    shown = ", ".join(names[:NAMED])
    more = len(names) - NAMED
    return f"{shown} and {more} more" if more > 0 else shown


def _finding(name: str, status: str, message: str, **extra: Any) -> Finding:
    return Finding(name=name, status=status, message=message, **extra)


# Level 1: existence and age


def missing_finding(url: str, earlier: Any) -> Finding:
    """No object under the backup's prefix: the backup did not happen."""
    hint = (
        f"; the newest earlier backup is {earlier.prefix} ({earlier.day.isoformat()})"
        if earlier is not None
        else "; no earlier backup was found either"
    )
    return _finding(
        "backup_exists",
        CRITICAL,
        f"No backup under {url}{hint}",
        value=0,
        action="Check the backup job's last run (its logs and exit status), "
        "run it again, and confirm it uploads to this bucket and prefix",
    )


def exists_finding(url: str, count: int, total: int) -> Finding:
    """The backup's prefix holds objects."""
    return _finding(
        "backup_exists",
        OK,
        f"Backup {url} holds {count:,} objects ({human_bytes(total)})",
        value=count,
    )


def human_duration(seconds: float) -> str:
    """A duration the way a person says it: 40 s, 12 min, 5.2 h, 3.1 days."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def age_finding(age_seconds: float, max_age: float | None) -> Finding:
    """The newest object's age, which is the recovery point (RPO) of this backup."""
    threshold = Threshold(critical=max_age / 3600) if max_age else None
    hours = round(age_seconds / 3600, 3)
    status = threshold.evaluate(hours) if threshold else OK
    text = f"The backup is {human_duration(age_seconds)} old (RPO, newest object)"
    if threshold is not None:
        word = "within" if status == OK else "beyond"
        text = f"{text}, {word} the maximum age of {human_duration(max_age)}"
    return _finding(
        "backup_age",
        status,
        text,
        value=hours,
        unit="h",
        threshold=threshold,
        action=None
        if status == OK
        else "The backup is older than it may be: check that the backup job "
        "runs on schedule and finishes",
        details={"age_seconds": round(age_seconds, 1)},
    )


# Level 2: size and object count


def size_finding(total: int, minimum: int) -> Finding:
    """The total size against the minimum (the guide: over 1 MB)."""
    threshold = Threshold(critical=minimum, direction=BELOW)
    status = threshold.evaluate(total)
    word = "above" if status == OK else "below"
    return _finding(
        "backup_size",
        status,
        f"Backup size is {human_bytes(total)} ({total:,} bytes), {word} the "
        f"minimum of {human_bytes(minimum)}",
        value=total,
        unit="B",
        threshold=threshold,
        action=None
        if status == OK
        else "A backup this small cannot hold the database: check the backup "
        "job's output and the database it dumps",
    )


def band_finding(objects: list, previous: list, band: Any) -> Finding:
    """The size against the median of the previous backups."""
    if not previous:
        return _finding(
            "backup_size_trend",
            OK,
            "No previous backups to compare the size with",
            value=None,
        )
    total = sum(obj.size for obj in objects)
    typical = median(summary.total for summary in previous)
    percent = round(100.0 * total / typical, 1) if typical else 0.0
    status = band.evaluate(percent)
    text = (
        f"Backup size is {format_value(percent, '%')} of the median of the previous "
        f"{len(previous)} backups ({human_bytes(typical)})"
    )
    if status != OK:
        text = f"{text}, {band.breach(status, '%')}"
    return _finding(
        "backup_size_trend",
        status,
        text,
        value=percent,
        unit="%",
        threshold=band,
        action=None
        if status == OK
        else "Compare the backup with the previous ones object by object: a "
        "collection may be missing or truncated",
        details={
            "median_bytes": typical,
            "shrunk_objects": shrunk(objects, previous[0]) if status != OK else [],
        },
    )


def shrunk(objects: list, before: Any) -> list:
    """The objects that shrank most against the newest previous backup."""
    sizes = {obj.relative: obj.size for obj in before.objects}
    changes = [
        {"object": obj.relative, "before": sizes[obj.relative], "now": obj.size}
        for obj in objects
        if sizes.get(obj.relative, 0) > obj.size
    ]
    changes.sort(key=lambda change: change["now"] - change["before"])
    return changes[:NAMED]


def count_finding(objects: list, previous: list) -> Finding:
    """The object count against the previous backups; names what went missing."""
    count = len(objects)
    if not previous:
        return _finding("backup_objects", OK, f"{count:,} objects", value=count)
    typical = median(summary.count for summary in previous)
    names = {obj.relative for obj in objects}
    missing = sorted({obj.relative for obj in previous[0].objects} - names)
    status = WARNING if count < typical or missing else OK
    text = (
        f"{count:,} objects, the previous backups' median is {typical:g}"
        if status == OK
        else f"{count:,} objects where the previous backups have {typical:g}"
    )
    if missing:
        text = f"{text}; missing since {previous[0].prefix}: {listed(missing)}"
    return _finding(
        "backup_objects",
        status,
        text,
        value=count,
        action=None
        if status == OK
        else "Find out why these files are no longer dumped (a dropped collection "
        "or a failed dump)",
        details={"missing_objects": missing},
    )


# Level 3: integrity


def checksum_finding(scans: list, suffix: str = "") -> Finding:
    """Every object's bytes against its stored checksum or MD5 ETag."""
    name = f"checksums{suffix}"
    failed = [scan for scan in scans if scan.download_error]
    bad = [scan for scan in scans if scan.checksum == MISMATCH]
    loose = [scan for scan in scans if scan.checksum == UNVERIFIABLE]
    details = {
        "mismatched": [_mismatch(scan) for scan in bad],
        "unverifiable": [
            {"object": scan.name, "reason": scan.checksum_note} for scan in loose
        ],
        "unreadable": [
            {"object": scan.name, "error": scan.download_error} for scan in failed
        ],
    }
    if bad:
        text = "; ".join(
            f"{scan.name} does not match its {scan.expected.label} (stored "
            f"{scan.expected.shown()}, computed {scan.computed})"
            for scan in bad[:NAMED]
        )
        return _finding(
            name,
            CRITICAL,
            f"{len(bad)} of {len(scans)} objects differ from their checksums: {text}",
            value=len(bad),
            action="The stored bytes changed after upload: take a new backup and "
            "investigate the bucket's access log",
            details=details,
        )
    if failed:
        return unknown(
            name,
            f"{len(failed)} of {len(scans)} objects could not be read: "
            f"{failed[0].name}: {failed[0].download_error}",
            action="Check S3 access and retry",
            **details,
        )
    verified = len(scans) - len(loose)
    text = f"{verified} of {len(scans)} objects match their stored checksums"
    if loose:
        text = (
            f"{text}; {len(loose)} cannot be verified: "
            f"{listed(scan.name for scan in loose)} ({loose[0].checksum_note})"
        )
    return _finding(
        name,
        WARNING if loose else OK,
        text,
        value=verified,
        action="Upload backups with a checksum (ChecksumAlgorithm SHA256)"
        if loose
        else None,
        details=details,
    )


def _mismatch(scan: Any) -> dict:
    return {
        "object": scan.name,
        "kind": scan.expected.label,
        "stored": scan.expected.shown(),
        "computed": scan.computed,
    }


def gzip_finding(scans: list, suffix: str = "") -> Finding:
    """Every gzip stream reads to its end marker with a good CRC."""
    name = f"gzip_streams{suffix}"
    read = [scan for scan in scans if not scan.download_error]
    zipped = [scan for scan in read if scan.gzip or scan.kind.gz]
    broken = [scan for scan in zipped if scan.gzip_error]
    details = {
        "broken": [{"object": s.name, "error": s.gzip_error} for s in broken],
    }
    if broken:
        text = "; ".join(f"{scan.name}: {scan.gzip_error}" for scan in broken[:NAMED])
        return _finding(
            name,
            CRITICAL,
            f"{len(broken)} of {len(zipped)} gzip streams are damaged: {text}",
            value=len(broken),
            action="A restore of these files would fail: take a new backup and "
            "check the upload (interrupted transfers leave truncated objects)",
            details=details,
        )
    return _finding(
        name,
        OK,
        f"{len(zipped)} gzip streams read to their end with matching CRCs",
        value=len(zipped),
        details=details,
    )


# Level 4: contents


def collections_of(scans: list, metadata: dict) -> dict:
    """Documents, bytes and metadata per namespace, from every scan."""
    found: dict = {}
    for scan in scans:
        if scan.kind.kind == BSON:
            found.setdefault(scan.kind.namespace, _collection())["data"] = True
        for name, namespace in scan.namespaces.items():
            entry = found.setdefault(name, _collection())
            entry["documents"] += namespace.documents
            entry["bytes"] += namespace.bytes
            entry["declared_bytes"] = namespace.declared_bytes
            entry["data"] = True
    for name, document in metadata.items():
        entry = found.setdefault(name, _collection())
        entry["metadata"] = True
        entry["indexes"] = len(document.get("indexes") or [])
        entry["type"] = str(document.get("type") or "collection")
    return found


def _collection() -> dict:
    return {
        "documents": 0,
        "bytes": 0,
        "declared_bytes": None,
        "metadata": False,
        "indexes": 0,
        "type": "collection",
        "data": False,
    }


def documents_finding(scans: list, collections: dict, suffix: str = "") -> Finding:
    """Every BSON file and archive decodes document by document, to its end."""
    name = f"documents{suffix}"
    data = [s for s in scans if s.kind.kind in (BSON, OPLOG, ARCHIVE) or s.archive]
    broken = [s for s in data if read_error(s)]
    unread = [s for s in data if s.download_error]
    total = sum(entry["documents"] for entry in collections.values())
    if broken:
        text = "; ".join(f"{s.name}: {read_error(s)}" for s in broken[:NAMED])
        return _finding(
            name,
            CRITICAL,
            f"{len(broken)} of {len(data)} backup files do not decode: {text}",
            value=total,
            action="A restore would lose these documents: take a new backup and "
            "check that the dump finished before the upload",
            details={
                "broken": [{"object": s.name, "error": read_error(s)} for s in broken]
            },
        )
    if unread:
        return unknown(
            name,
            f"{len(unread)} backup files could not be downloaded: {unread[0].name}: "
            f"{unread[0].download_error}",
            action="Check S3 access and retry",
        )
    if not data:
        return _finding(
            name,
            WARNING,
            "The backup holds no BSON files and no archive",
            value=0,
            action="Check the backup's layout and prefix",
        )
    counts = ", ".join(
        f"{n.partition('.')[2] or n} {e['documents']:,}"
        for n, e in sorted(collections.items())
        if _is_collection(e)
    )
    return _finding(
        name,
        OK,
        f"{total:,} documents in {len(collections)} collections decode: {counts}",
        value=total,
    )


def read_error(scan: Any) -> str | None:
    """Why a file could not be decoded to its end, or None."""
    if scan.content_error:
        return scan.content_error
    if scan.gzip_error:
        return f"decoding stopped early: {scan.gzip_error}"
    return None


def metadata_finding(scans: list, collections: dict, suffix: str = "") -> Finding:
    """Each collection's metadata is there, readable, and agrees with its data."""
    name = f"metadata{suffix}"
    problems = [
        f"{scan.name}: {read_error(scan)}"
        for scan in scans
        if scan.kind.kind == METADATA and read_error(scan)
    ]
    problems += _collection_problems(collections)
    problems += [
        f"{scan.name}: the archive ends before the end of {listed(scan.unfinished)}"
        for scan in scans
        if scan.unfinished
    ]
    if problems:
        return _finding(
            name,
            CRITICAL,
            f"{len(problems)} metadata problems: {'; '.join(problems[:NAMED])}",
            value=len(problems),
            action="Without matching metadata a restore loses indexes or data: "
            "check the dump and take a new backup",
            details={"problems": problems},
        )
    described = sum(1 for entry in collections.values() if entry["metadata"])
    return _finding(
        name,
        OK,
        f"{described} collections have metadata that matches their data",
        value=described,
    )


def _collection_problems(collections: dict) -> list:
    problems = []
    for name, entry in sorted(collections.items()):
        if not restorable(name):
            continue
        if not entry["metadata"]:
            problems.append(f"{name} has documents but no metadata (no indexes)")
        elif _is_collection(entry) and not entry["data"]:
            problems.append(f"{name} has metadata but no BSON data file")
        declared = entry["declared_bytes"]
        if declared is not None and declared != entry["bytes"]:
            problems.append(
                f"{name}: the archive header declares {declared:,} bytes, its "
                f"blocks hold {entry['bytes']:,}"
            )
    return problems


def live_finding(collections: dict, live: dict, tolerance: Threshold) -> Finding:
    """The backup's counts against the live database's, within a tolerance."""
    rows = []
    for name, count in sorted(live.items()):
        backup = collections[name]["documents"]
        diff = abs(count - backup) * 100.0 / max(count, backup, 1)
        rows.append((name, backup, count, round(diff, 2)))
    rows.sort(key=lambda row: -row[3])
    largest = rows[0][3] if rows else 0.0
    status = tolerance.evaluate(largest)
    text = "; ".join(
        f"{n.partition('.')[2]} {b:,} in the backup, {c:,} live"
        for n, b, c, _d in rows[:3]
    )
    return _finding(
        "live_counts",
        status,
        f"Backup counts differ from the live database by up to "
        f"{format_value(largest, '%')} ({tolerance.describe('%')}): {text}",
        value=largest,
        unit="%",
        threshold=tolerance,
        action=None
        if status == OK
        else "Compare the backup's time with the data's growth; a large gap "
        "means the backup misses data",
        details={
            "live": {n: {"backup": b, "live": c, "diff_pct": d} for n, b, c, d in rows}
        },
    )


# Level 5: restore


def restore_findings(
    run: RestoreRun, scan: Any, collections: dict, max_time: float | None
) -> list:
    """Documents and indexes restored, the recovery time, and the cleanup."""
    metadata = scan.metadata()
    findings = [
        _restore_documents(run, scan.scans, collections),
        _restore_indexes(run, metadata),
    ]
    threshold = Threshold(critical=max_time) if max_time else None
    findings.append(
        measured(
            "restore_time",
            run.seconds,
            threshold,
            label="Restore time (RTO, data and indexes)",
            unit="s",
            action="The restore takes longer than the recovery time objective: "
            "plan a faster restore path (parallel restore, larger target)",
            details={"phases": dict(run.phases)},
        )
    )
    if not run.dropped:
        findings.append(
            _finding(
                "restore_cleanup",
                WARNING,
                f"The scratch database {run.database} is still there after the test",
                action=f"Drop {run.database} by hand",
            )
        )
    return findings


def _restore_documents(run: RestoreRun, scans: list, collections: dict) -> Finding:
    wanted = {
        n: e["documents"]
        for n, e in collections.items()
        if restorable(n) and _is_collection(e)
    }
    problems = [run.error] if run.error else []
    problems += [f"{s.name}: {err}" for s in scans for err in s.restore_errors]
    problems += [
        f"{s.name} could not be restored completely: {read_error(s)}"
        for s in scans
        if s.namespaces and read_error(s)
    ]
    problems += [
        f"{n}: {count:,} in the backup, {run.counts.get(n, 0):,} restored"
        for n, count in sorted(wanted.items())
        if run.counts.get(n) != count
    ]
    total = sum(run.counts.values())
    if problems:
        return _finding(
            "restore",
            CRITICAL,
            f"The restore into {run.database} failed: {'; '.join(problems[:NAMED])}",
            value=total,
            action=RESTORE_ACTION,
            details={"problems": problems},
        )
    return _finding(
        "restore",
        OK,
        f"Restored {total:,} documents of {len(run.counts)} collections into "
        f"{run.database}; every count matches the backup",
        value=total,
    )


def _is_collection(entry: dict) -> bool:
    """Views and time series buckets are not restored document by document."""
    return entry["type"] == "collection"


def _restore_indexes(run: RestoreRun, metadata: dict) -> Finding:
    wrong = []
    for name, keys in sorted(run.index_keys.items()):
        wanted = [
            index_key(spec.get("key", {}))
            for spec in (metadata.get(name) or {}).get("indexes") or []
        ]
        if wanted and sorted(keys) != sorted(wanted):
            wrong.append(f"{name}: {_key_difference(wanted, keys)}")
    total = sum(len(keys) for keys in run.index_keys.values())
    if run.error:
        return _finding(
            "restore_indexes",
            CRITICAL,
            f"Indexes were not checked: {run.error}",
            value=total,
            action=RESTORE_ACTION,
        )
    if wrong:
        return _finding(
            "restore_indexes",
            WARNING,
            f"Restored indexes differ from the backup's metadata: "
            f"{'; '.join(wrong[:NAMED])}",
            value=total,
            action="Check the metadata files and the index options the target "
            "server accepts",
        )
    return _finding(
        "restore_indexes",
        OK,
        f"{total} indexes restored with the keys the metadata lists",
        value=total,
    )


def _key_difference(wanted: list, restored: list) -> str:
    """Say which index keys are missing from, or extra in, the restore."""
    missing, extra = list(wanted), []
    for key in restored:
        if key in missing:
            missing.remove(key)
        else:
            extra.append(key)
    parts = []
    if missing:
        parts.append(f"missing {', '.join(map(key_text, missing))}")
    if extra:
        parts.append(f"not in the metadata {', '.join(map(key_text, extra))}")
    return "; ".join(parts)


def key_text(key: tuple) -> str:
    """An index key the way MongoDB names indexes: ``status_1_createdAt_-1``."""
    return "_".join(f"{field}_{direction}" for field, direction in key)


def plan_finding(plan: dict) -> Finding:
    """Check mode: what the restore would do, nothing done."""
    what = (
        f"{plan['collections']} collections"
        if plan["collections"]
        else "the collections of the archive"
    )
    return _finding(
        "restore",
        OK,
        f"Check mode: would drop {plan['database']} on {plan['server']}, restore "
        f"{what} from {plan['objects']} objects ({human_bytes(plan['bytes'])}), "
        f"create their indexes, count, and drop {plan['database']} again",
        details={"plan": plan},
    )


def refused_finding(reason: str, action: str) -> Finding:
    """The restore did not run because a precondition failed."""
    return unknown("restore", reason, action=action)
