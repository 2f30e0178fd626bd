# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verification of mongodump backups in S3, in levels the caller chooses.

1. existence and age (the age is the backup's recovery point, RPO);
2. total size against a minimum and against the previous backups, object count;
3. integrity: stored checksums (or MD5 ETags) re-hashed, gzip streams read to
   their end;
4. contents: every document decodes; counts per collection, the metadata, and
   optionally the live database's counts;
5. a restore into an allow-listed scratch database, timed (the measured RTO).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from ansible_collections.trm.maintenance.plugins.module_utils import (
    backup_levels as levels,
)
from ansible_collections.trm.maintenance.plugins.module_utils.backup_gate import (
    Gate,
    Passage,
)
from ansible_collections.trm.maintenance.plugins.module_utils.backup_restore import (
    HAS_PYMONGO,
    MongoProblem,
    RestoreTarget,
    check_scratch_name,
    connect,
    count_live,
    shown_uri,
)
from ansible_collections.trm.maintenance.plugins.module_utils.backup_s3 import (
    HAS_BOTO3,
    S3Problem,
    S3Settings,
    S3Store,
    make_client,
)
from ansible_collections.trm.maintenance.plugins.module_utils.backup_scan import (
    BSON,
    BackupScan,
    ScanRequest,
    archive_databases,
    classify,
    restorable,
    scan_backup,
)
from ansible_collections.trm.maintenance.plugins.module_utils.backup_streams import (
    HAS_BSON,
    ContentError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.checks import (
    CheckResult,
    Finding,
    unknown,
)
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    MaintenanceError,
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    CRITICAL,
    OK,
    UNKNOWN,
    WARNING,
    Range,
    Threshold,
    parse_threshold,
)

SUBJECT = "S3 backup"
DEFAULT_SIZE_BAND = {"normal": [80, 125], "investigate": [50, 200]}
DEFAULT_COUNT_TOLERANCE = {"warning": 5, "critical": 20}
DEFAULT_ALLOWED_DATABASES = ["*_restore_test"]
DURATION = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[smhdw]?)\s*$")
UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d")
SNAKE = re.compile(r"[^a-z0-9]+")


def parse_duration(value: Any, *, option: str) -> float | None:
    """Seconds from ``90``, ``45m``, ``26h``, ``2d`` or ``1w``; 0 or empty is None."""
    if value is None or str(value).strip() in ("", "0"):
        return None
    found = DURATION.match(str(value))
    if found is None:
        raise OptionError(
            option,
            value,
            "must be a number of seconds or a number with s, m, h, d or w, like 26h",
        )
    seconds = float(found.group("number")) * UNIT_SECONDS[found.group("unit")]
    return seconds or None


def resolve_day(spec: str, now: datetime) -> date | None:
    """The backup day a ``date`` option means; None for ``latest``."""
    text = str(spec or "today").strip().lower()
    today = now.astimezone(timezone.utc).date()
    named = {"today": today, "yesterday": today - timedelta(days=1), "latest": None}
    if text in named:
        return named[text]
    for pattern in DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise OptionError(
        "date", spec, "must be today, yesterday, latest, or a date like 2025-03-09"
    )


def prefix_for(template: str, day: date) -> str:
    """The prefix of one day's backup from a strftime template."""
    return datetime(day.year, day.month, day.day).strftime(template)


@dataclass
class Options:
    """The module options, checked and converted."""

    settings: S3Settings
    template: str
    date_spec: str
    levels: frozenset
    min_size: int
    max_age: float | None
    history: int
    band: Range
    deep_ages: tuple
    live_uri: str | None
    live_database: str | None
    tolerance: Threshold
    restore_uri: str | None
    restore_database: str | None
    allowed: list
    gate: Gate
    max_restore_time: float | None
    workers: int
    timeout: float

    @classmethod
    def from_params(cls, params: dict) -> Options:
        """Read and check the options; raise OptionError for a bad value."""
        chosen = frozenset(params.get("levels") or [1, 2, 3])
        options = cls(
            settings=S3Settings.from_params(params),
            template=params.get("prefix") or "",
            date_spec=params.get("date") or "today",
            levels=chosen | ({4} if 5 in chosen else frozenset()),
            min_size=_non_negative(params, "min_size_bytes", 1000000),
            max_age=parse_duration(params.get("max_age"), option="max_age"),
            history=_non_negative(params, "history", 7),
            band=_range(params.get("size_band")),
            deep_ages=_ages(params.get("deep_ages") or []),
            live_uri=params.get("live_uri") or None,
            live_database=params.get("live_database") or None,
            tolerance=_tolerance(params.get("count_tolerance")),
            restore_uri=params.get("restore_uri") or None,
            restore_database=params.get("restore_database") or None,
            allowed=list(params.get("restore_allowed_databases") or []),
            gate=Gate.from_params(params),
            max_restore_time=parse_duration(
                params.get("max_restore_time"), option="max_restore_time"
            ),
            workers=max(1, int(params.get("max_workers") or 4)),
            timeout=float(params.get("timeout") or 30.0),
        )
        options.check()
        return options

    def check(self) -> None:
        """Refuse combinations that cannot be right, before touching anything."""
        if 5 not in self.levels:
            return
        if not self.restore_uri:
            raise OptionError("restore_uri", None, "is required for level 5")
        if not self.restore_database:
            raise OptionError("restore_database", None, "is required for level 5")
        check_scratch_name(self.restore_database or "", self.allowed, ())

    @property
    def dated(self) -> bool:
        """Tell whether the prefix changes by day, so earlier days can be found."""
        return "%" in self.template


def _non_negative(params: dict, option: str, default: int) -> int:
    value = params.get(option)
    value = default if value is None else int(value)
    if value < 0:
        raise OptionError(option, value, "must not be negative")
    return value


def _ages(values: list) -> tuple:
    ages = tuple(int(value) for value in values)
    if any(age < 1 for age in ages):
        raise OptionError("deep_ages", list(values), "must hold ages of 1 day or more")
    return tuple(sorted(set(ages)))


def _range(spec: Any) -> Range:
    band = parse_threshold(spec, option="size_band", default=DEFAULT_SIZE_BAND)
    if not isinstance(band, Range):
        raise OptionError(
            "size_band", spec, "must give normal and investigate ranges in percent"
        )
    return band


def _tolerance(spec: Any) -> Threshold:
    threshold = parse_threshold(
        spec, option="count_tolerance", default=DEFAULT_COUNT_TOLERANCE
    )
    if not isinstance(threshold, Threshold) or threshold.direction != "above":
        raise OptionError(
            "count_tolerance", spec, "must give warning and critical percentages"
        )
    return threshold


@dataclass
class Summary:
    """One day's backup as listed: its prefix and objects."""

    day: date | None
    prefix: str
    objects: list = field(default_factory=list)

    @property
    def count(self) -> int:
        """How many objects the backup has."""
        return len(self.objects)

    @property
    def total(self) -> int:
        """The backup's total size in bytes."""
        return sum(obj.size for obj in self.objects)

    @property
    def newest(self) -> datetime | None:
        """When the newest object was written."""
        return max((obj.last_modified for obj in self.objects), default=None)


def run_s3_backup_verify(
    params: dict, *, check_mode: bool = False, now: datetime | None = None
) -> dict:
    """Verify one backup (and earlier ones at chosen ages); return the result."""
    _require_libraries(params)
    options = Options.from_params(params)
    now = now or datetime.now(timezone.utc)
    store = S3Store(make_client(options.settings), options.settings)
    return Verification(options, store, now, check_mode=check_mode).run()


def _require_libraries(params: dict) -> None:
    needed = [("boto3", HAS_BOTO3)]
    chosen = set(params.get("levels") or ())
    if chosen & {4, 5}:
        needed.append(("pymongo", HAS_BSON))
    if 5 in chosen or params.get("live_uri"):
        needed.append(("pymongo", HAS_PYMONGO))
    missing = sorted({name for name, present in needed if not present})
    if missing:
        raise MaintenanceError(
            f"The Python packages {', '.join(missing)} are required on the host "
            f"that runs this module: pip install {' '.join(missing)}"
        )


class Verification:
    """One run: locate the backup, judge each chosen level, build the result."""

    def __init__(self, options, store, now, *, check_mode: bool = False) -> None:
        self.options = options
        self.store = store
        self.now = now
        self.check_mode = check_mode
        self.result = CheckResult()
        self.backup: Summary | None = None
        self.previous: list = []
        self.extra: dict = {"changed": False, "restore": None, "collections": {}}
        self.passage: Passage | None = None

    def add(self, finding: Finding) -> None:
        """Record one finding."""
        self.result.add(finding)

    def run(self) -> dict:
        """Judge every chosen level; S3 problems become findings."""
        try:
            self.locate()
            if self.backup.objects:
                self.judge()
        except S3Problem as problem:
            self.add(_access_finding(problem))
        return self.finish()

    def locate(self) -> None:
        """Find the backup's day and list it, and the previous days when needed."""
        day = resolve_day(self.options.date_spec, self.now)
        if day is None:
            day = self._latest_day()
        prefix = prefix_for(self.options.template, day)
        self.backup = Summary(day, prefix, list(self.store.list(prefix)))
        if 2 in self.options.levels:
            self.previous = self._previous(day)
        if not self.backup.objects:
            earlier = self.previous[0] if self.previous else self._earlier(day)
            self.add(levels.missing_finding(self.store.url(prefix), earlier))

    def _days_before(self, day: date) -> list:
        if not self.options.dated:
            return []
        return [day - timedelta(days=n) for n in range(1, self.options.history + 1)]

    def _latest_day(self) -> date:
        today = self.now.astimezone(timezone.utc).date()
        for day in [today, *self._days_before(today)]:
            if self.store.any_under(prefix_for(self.options.template, day)):
                return day
        return today

    def _previous(self, day: date) -> list:
        found = []
        for earlier in self._days_before(day):
            prefix = prefix_for(self.options.template, earlier)
            objects = list(self.store.list(prefix))
            if objects:
                found.append(Summary(earlier, prefix, objects))
        return found

    def _earlier(self, day: date) -> Summary | None:
        for earlier in self._days_before(day):
            prefix = prefix_for(self.options.template, earlier)
            if self.store.any_under(prefix):
                return Summary(earlier, prefix)
        return None

    def judge(self) -> None:
        """The levels, in order, for the backup that exists."""
        backup = self.backup
        self.add(
            levels.exists_finding(
                self.store.url(backup.prefix), backup.count, backup.total
            )
        )
        if 1 in self.options.levels:
            age = (self.now - backup.newest).total_seconds()
            self.add(levels.age_finding(age, self.options.max_age))
            self.result.metrics["backup_age_seconds"] = round(age, 1)
            self.result.metrics["rpo_seconds"] = round(age, 1)
        if 2 in self.options.levels:
            self._level_two()
        if self.options.levels & {3, 4}:
            self._deep()
        for age in self.options.deep_ages:
            self._deep_earlier(age)

    def _level_two(self) -> None:
        backup, options = self.backup, self.options
        self.add(levels.size_finding(backup.total, options.min_size))
        self.add(levels.band_finding(backup.objects, self.previous, options.band))
        self.add(levels.count_finding(backup.objects, self.previous))
        if self.previous:
            self.result.metrics["previous_backups"] = len(self.previous)

    def _deep(self) -> None:
        options = self.options
        target, client = self._restore_target()
        request = ScanRequest(
            hash=3 in options.levels,
            decode=4 in options.levels,
            target=target,
            workers=options.workers,
        )
        try:
            scan = scan_backup(self.store, self.backup.objects, request)
        finally:
            if client is not None:
                client.close()
        self._scan_findings(scan, "")
        if scan.restore is not None:
            self._restore_findings(scan)
        elif 4 in options.levels and options.live_uri:
            self._live()

    def _scan_findings(self, scan: BackupScan, suffix: str) -> None:
        scans = scan.scans
        collections = levels.collections_of(scans, scan.metadata())
        if 3 in self.options.levels:
            self.add(levels.checksum_finding(scans, suffix))
            self.add(levels.gzip_finding(scans, suffix))
        if 4 in self.options.levels:
            self.add(levels.documents_finding(scans, collections, suffix))
            self.add(levels.metadata_finding(scans, collections, suffix))
        if not suffix:
            self.extra["collections"] = collections
            self._scan_metrics(scan, collections)

    def _scan_metrics(self, scan: BackupScan, collections: dict) -> None:
        metrics = self.result.metrics
        metrics["objects_read"] = len(scan.scans)
        metrics["bytes_read"] = sum(s.read_bytes for s in scan.scans)
        metrics["read_seconds"] = scan.seconds
        if 4 in self.options.levels:
            metrics["documents_total"] = sum(
                entry["documents"] for entry in collections.values()
            )
            for name, entry in collections.items():
                metrics[f"documents_{metric_name(name)}"] = entry["documents"]

    def _deep_earlier(self, age: int) -> None:
        """Levels 3 and 4 for the backup ``age`` days older, so old ones get read."""
        day = self.backup.day - timedelta(days=age)
        prefix = prefix_for(self.options.template, day)
        suffix = f"_{day.strftime('%Y%m%d')}"
        objects = list(self.store.list(prefix))
        if not objects:
            self.add(
                Finding(
                    name=f"backup_exists{suffix}",
                    status=WARNING,
                    message=f"No backup under {self.store.url(prefix)} to verify "
                    f"({age} days before {self.backup.day.isoformat()})",
                    action="Check the retention of the backup bucket",
                )
            )
            return
        request = ScanRequest(
            hash=3 in self.options.levels,
            decode=4 in self.options.levels,
            workers=self.options.workers,
        )
        self._scan_findings(scan_backup(self.store, objects, request), suffix)
        self.extra.setdefault("verified_earlier", []).append(day.isoformat())

    def _restore_target(self) -> tuple:
        """Connect to the scratch database, or record why the restore will not run."""
        options = self.options
        if 5 not in options.levels:
            return None, None
        sources = {classify(obj.relative).database for obj in self.backup.objects} - {
            ""
        }
        check_scratch_name(options.restore_database, options.allowed, sources)
        refusal = self._archive_refusal() or self._window_refusal()
        if refusal is not None:
            self.add(refusal)
            self.extra["restore"] = {"status": "refused"}
            return None, None
        if self.check_mode:
            self._plan()
            return None, None
        try:
            client = connect(options.restore_uri, options.timeout)
        except MongoProblem as problem:
            self.add(unknown("restore", str(problem), action="Check restore_uri"))
            return None, None
        return RestoreTarget(client, options.restore_database), client

    def _archive_refusal(self) -> Finding | None:
        """Read every archive's header; refuse a scratch database it holds."""
        name = self.options.restore_database
        try:
            held = archive_databases(self.store, self.backup.objects)
        except ContentError as error:
            return levels.refused_finding(
                f"The restore test did not run: an archive's header cannot be read "
                f"({error}), so the databases it holds, which {name} must not be "
                "one of, are unknown",
                action="Verify the backup at level 4 and repair or replace it",
            )
        for relative, databases in sorted(held.items()):
            if name in databases:
                raise OptionError(
                    "restore_database",
                    name,
                    f"is a database of the backup itself (the archive {relative} "
                    f"holds {', '.join(sorted(databases))}); restoring would drop it",
                )
        return None

    def _window_refusal(self) -> Finding | None:
        """Ask the gate; record why the restore may run, or refuse it."""
        passage = self.options.gate.judge(self.now)
        self.passage = passage
        if passage.allowed:
            self.add(
                Finding(
                    name="restore_window",
                    status=OK,
                    message=passage.reason,
                    details={"decided_by": passage.decided_by},
                )
            )
            return None
        reason = passage.reason[:1].lower() + passage.reason[1:]
        return levels.refused_finding(
            f"The restore test did not run: {reason}",
            action=_window_action(passage),
        )

    def _plan(self) -> None:
        objects = self.backup.objects
        kinds = [classify(obj.relative) for obj in objects]
        collections = {kind.namespace for kind in kinds if kind.kind == BSON}
        plan = {
            "database": self.options.restore_database,
            "server": shown_uri(self.options.restore_uri),
            "objects": len(objects),
            "bytes": self.backup.total,
            # An archive names its collections only inside; check mode reads none.
            "collections": len(collections) if collections else None,
        }
        self.add(levels.plan_finding(plan))
        self.extra["restore"] = {
            "status": "planned",
            "plan": plan,
            "window": self.passage.to_dict(),
        }
        self.extra["changed"] = True

    def _restore_findings(self, scan: BackupScan) -> None:
        run = scan.restore
        collections = self.extra["collections"]
        for finding in levels.restore_findings(
            run, scan, collections, self.options.max_restore_time
        ):
            self.add(finding)
        self.extra["changed"] = True
        self.extra["restore"] = {
            "status": "failed" if run.error else "done",
            "database": run.database,
            "server": shown_uri(self.options.restore_uri),
            "phases": dict(run.phases),
            "rto_seconds": run.seconds,
            "dropped": run.dropped,
            "error": run.error,
            "window": self.passage.to_dict(),
        }
        metrics = self.result.metrics
        metrics["rto_seconds"] = run.seconds
        metrics["restored_documents"] = sum(run.counts.values())
        metrics["restored_indexes"] = sum(len(k) for k in run.index_keys.values())
        for name, count in run.counts.items():
            collections.get(name, {})["restored_documents"] = count
        if self.options.live_uri:
            self._live()

    def _live(self) -> None:
        options = self.options
        collections = self.extra["collections"]
        names = [n for n, e in collections.items() if restorable(n) and e["data"]]
        try:
            client = connect(options.live_uri, options.timeout)
            try:
                live = count_live(client, names, options.live_database)
            finally:
                client.close()
        except MongoProblem as problem:
            self.add(unknown("live_counts", str(problem), action="Check live_uri"))
            return
        for name, count in live.items():
            collections[name]["live_documents"] = count
        self.add(levels.live_finding(collections, live, options.tolerance))

    def finish(self) -> dict:
        """The module result: the check result and what was verified."""
        backup = self.backup
        metrics = self.result.metrics
        if backup is not None:
            metrics["backup_objects"] = backup.count
            metrics["backup_bytes"] = backup.total
        subject = f"{SUBJECT} {self.store.url(backup.prefix if backup else '')}"
        result = self.result.to_dict(subject)
        result.update(self.extra)
        result["backup"] = self._backup_info()
        return result

    def _backup_info(self) -> dict:
        backup = self.backup
        info = {"bucket": self.store.bucket, "levels": sorted(self.options.levels)}
        if backup is None:
            return info
        newest = backup.newest
        info.update(
            prefix=backup.prefix,
            url=self.store.url(backup.prefix),
            date=backup.day.isoformat() if backup.day else None,
            objects=backup.count,
            bytes=backup.total,
            newest=newest.isoformat() if newest else None,
            previous=[
                {"date": s.day.isoformat(), "objects": s.count, "bytes": s.total}
                for s in self.previous
            ],
        )
        return info


def metric_name(namespace: str) -> str:
    """A namespace as a metric name: ``trm.users`` becomes ``trm_users``."""
    return SNAKE.sub("_", namespace.lower()).strip("_")


def _window_action(passage: Passage) -> str:
    if passage.decided_by == "maintenance_windows":
        return "Run it inside a maintenance window, or set allow_outside_window"
    return f"Run it when {passage.decided_by} allows it, or override the window there"


def _access_finding(problem: S3Problem) -> Finding:
    """S3 could not be used: a missing bucket is critical, the rest unknown."""
    return Finding(
        name="backup_exists",
        status=CRITICAL if problem.kind == "missing_bucket" else UNKNOWN,
        message=str(problem),
        action=problem.action,
        details={"error": problem.kind},
    )
