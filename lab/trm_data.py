"""Deterministic TRM Referral Platform data shared by the lab's MongoDB and S3."""

from __future__ import annotations

import hashlib
import random
import struct
import uuid
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from bson import ObjectId

DATABASE = "trm"
DEFAULT_SEED = 27017
FIELD = "createdAt"
DAY = timedelta(days=1)
DAY_MS = 86_400_000
HISTORY_DAYS = 60
AUDIT_DAYS = 30
ACTIVE_USER_DAYS = 30
CHURN_DAYS = 60
INACTIVE_ADMIN_DAYS = 90
STALE_KEY_DAYS = 90

# The guide's daily ranges: inside normal is ok, inside investigate a warning,
# outside investigate critical.
RANGES = {
    "users": {"metric": "registrations", "normal": [50, 200], "investigate": [20, 500]},
    "jobs": {"metric": "job_postings", "normal": [20, 100], "investigate": [5, 250]},
    "referrals": {"metric": "referrals", "normal": [30, 150], "investigate": [10, 400]},
    "payments": {"metric": "payments", "normal": [10, 80], "investigate": [2, 200]},
}

# Drawn well inside the normal ranges, so that calendar days, which straddle two
# 24-hour windows, stay normal too.
VOLUMES = {
    "users": (80, 150),
    "jobs": (35, 80),
    "referrals": (50, 120),
    "payments": (25, 60),
    "auditlogs": (110, 150),
}

# The one planted problem: few referrals in the last 24 hours, a warning.
PLANTED = {"referrals": 22}

OLD_USERS = 1500
OLD_JOBS = 300
COMPANIES = 120
ADMINS = 9
INACTIVE_ADMINS = 3
FRESH_KEYS = 14
STALE_KEYS = 2
UNUSED_KEYS = 1
REVOKED_KEYS = 7

INDEXES = {
    "users": [
        {"key": {"email": 1}, "name": "email_1", "unique": True},
        {"key": {FIELD: 1}, "name": "createdAt_1"},
    ],
    "jobs": [
        {"key": {"companyId": 1, "status": 1}, "name": "companyId_1_status_1"},
        {"key": {FIELD: 1}, "name": "createdAt_1"},
    ],
    "referrals": [
        {"key": {"jobId": 1}, "name": "jobId_1"},
        {"key": {FIELD: 1}, "name": "createdAt_1"},
    ],
    "payments": [
        {"key": {"status": 1, FIELD: 1}, "name": "status_1_createdAt_1"},
        {"key": {FIELD: 1}, "name": "createdAt_1"},
    ],
    "apikeys": [
        {"key": {"keyHash": 1}, "name": "keyHash_1", "unique": True},
        {"key": {"ownerId": 1}, "name": "ownerId_1"},
    ],
    "auditlogs": [{"key": {FIELD: 1}, "name": "createdAt_1"}],
}
COLLECTIONS = tuple(INDEXES)

# fmt: off
FIRST_NAMES = (
    "Ada", "Amara", "Bram", "Chen", "Dana", "Elif", "Femi", "Gita", "Hugo", "Ines",
    "Jonas", "Kofi", "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven",
    "Tariq", "Uma", "Vera", "Wen", "Yusuf", "Zoe",
)
LAST_NAMES = (
    "Abara", "Berg", "Costa", "Diaz", "Eriksen", "Fofana", "Garcia", "Haddad", "Ito",
    "Jensen", "Kowalski", "Lopez", "Mensah", "Novak", "Okafor", "Patel", "Quispe",
    "Rossi", "Sato", "Tanaka", "Umarov", "Varga", "Weber", "Yilmaz",
)
# fmt: on
JOB_TITLES = (
    "Backend Engineer",
    "Frontend Engineer",
    "Data Analyst",
    "Product Manager",
    "Site Reliability Engineer",
    "Sales Executive",
    "UX Designer",
    "Customer Success Manager",
)
KEY_PURPOSES = ("ats-sync", "hr-export", "ci-deploy", "analytics", "webhook-relay")
AUDIT_ACTIONS = (
    "user.login",
    "user.update",
    "job.create",
    "job.close",
    "referral.create",
    "referral.status",
    "payment.capture",
    "apikey.rotate",
)


def utc(value: datetime) -> datetime:
    """Return ``value`` as an aware UTC datetime cut to BSON's milliseconds."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def iso(value: datetime) -> str:
    """Return ``value`` as an ISO-8601 string with milliseconds."""
    return value.isoformat(timespec="milliseconds")


def resolve_now(state: dict) -> datetime:
    """Return the lab's shared "now" from ``state``, setting it when absent."""
    if not state.get("now"):
        state["now"] = iso(utc(datetime.now(timezone.utc)))
    return utc(datetime.fromisoformat(state["now"]))


def range_status(count: int, ranges: dict) -> str:
    """Return ``ok``, ``warning`` or ``critical`` for a daily count."""
    low, high = ranges["normal"]
    if low <= count <= high:
        return "ok"
    low, high = ranges["investigate"]
    return "warning" if low <= count <= high else "critical"


def creation_times(docs: list[dict]) -> list[datetime]:
    """Return the creation times of ``docs``."""
    return [doc[FIELD] for doc in docs]


def count_between(times: list[datetime], since: datetime, until: datetime) -> int:
    """Count sorted creation times with since <= time < until."""
    return bisect_left(times, until) - bisect_left(times, since)


def count_until(times: list[datetime], moment: datetime) -> int:
    """Count sorted creation times at or before ``moment``."""
    return bisect_right(times, moment)


def collection_uuid(name: str, *, seed: int = DEFAULT_SEED) -> str:
    """Return the stable UUID (32 hex digits) of collection ``name``."""
    digest = hashlib.sha256(f"{seed}:{DATABASE}.{name}".encode()).digest()
    return uuid.UUID(bytes=digest[:16], version=4).hex


@dataclass
class TrmData:
    """The TRM documents of one seed and one "now", and what checks should find."""

    now: datetime
    seed: int
    collections: dict[str, list[dict]]
    expected: dict = field(default_factory=dict)

    def snapshot(self, moment: datetime) -> dict[str, list[dict]]:
        """Return the documents as they were at ``moment`` (created at or before)."""
        return {
            name: docs[: count_until(creation_times(docs), moment)]
            for name, docs in self.collections.items()
        }


def generate(now: datetime, *, seed: int = DEFAULT_SEED) -> TrmData:
    """Generate the TRM documents for ``now``; the same inputs give the same data."""
    now = utc(now)
    maker = _Maker(random.Random(seed), now)
    users = maker.users()
    jobs = maker.jobs()
    collections = {
        "users": users,
        "jobs": jobs,
        "referrals": maker.referrals(jobs, users),
        "payments": maker.payments(users),
        "apikeys": maker.apikeys(users),
        "auditlogs": maker.auditlogs(users),
    }
    for docs in collections.values():
        docs.sort(key=lambda doc: doc[FIELD])
    return TrmData(now, seed, collections, build_expected(now, seed, collections))


class _Maker:
    """Draws documents from one random stream, in a fixed order."""

    def __init__(self, rng: random.Random, now: datetime) -> None:
        self.rng = rng
        self.now = now
        # Sorted creation times per document list, for drawing earlier documents.
        self.times: dict[int, list[datetime]] = {}

    def ago(self, low_days: float, high_days: float) -> datetime:
        """Return a moment between ``high_days`` and ``low_days`` before now."""
        span = self.rng.randint(int(low_days * DAY_MS), int(high_days * DAY_MS))
        return self.now - timedelta(milliseconds=span)

    def between(self, start: datetime, end: datetime) -> datetime:
        """Return a moment between ``start`` and ``end``."""
        span = int((end - start) / timedelta(milliseconds=1))
        return start + timedelta(milliseconds=self.rng.randint(0, max(span, 0)))

    def oid(self, when: datetime) -> ObjectId:
        """Return an ObjectId whose timestamp is ``when``."""
        return ObjectId(
            struct.pack(">I", int(when.timestamp())) + self.rng.randbytes(8)
        )

    def pick(self, weights: dict[str, int]) -> str:
        """Return one key of ``weights``, drawn by weight."""
        return self.rng.choices(list(weights), list(weights.values()))[0]

    def daily_times(self, name: str, days: int) -> list[datetime]:
        """Return creation times for ``days`` 24-hour windows ending now."""
        low, high = VOLUMES[name]
        times = []
        for window in range(days):
            count = self.rng.randint(low, high)
            if window == 0 and name in PLANTED:
                count = PLANTED[name]
            # A second away from the window edges, so $gte and $gt agree.
            times += [
                self.ago(window + 1 / 86400, window + 1 - 1 / 86400)
                for _unused in range(count)
            ]
        return sorted(times)

    def earlier(self, docs: list[dict], when: datetime, *, recent: int = 500) -> dict:
        """Return one of the ``recent`` documents created before ``when``."""
        if id(docs) not in self.times:
            self.times[id(docs)] = creation_times(docs)
        end = bisect_left(self.times[id(docs)], when)
        return docs[self.rng.randrange(max(0, end - recent), end)]

    def users(self) -> list[dict]:
        """Return the users: old accounts and the last days' registrations."""
        old = [self.ago(HISTORY_DAYS, 730) for _unused in range(OLD_USERS)]
        times = sorted(old + self.daily_times("users", HISTORY_DAYS))
        users = [self.user(number, created) for number, created in enumerate(times)]
        self.promote_admins(users)
        return users

    def user(self, number: int, created: datetime) -> dict:
        """Return one user created at ``created``."""
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        return {
            "_id": self.oid(created),
            "email": f"{first}.{last}.{number}@example.com".lower(),
            "name": f"{first} {last}",
            "role": self.pick({"user": 83, "recruiter": 17}),
            FIELD: created,
            "lastLogin": self.last_login(created),
            "status": self.pick({"active": 90, "pending": 6, "suspended": 4}),
        }

    def last_login(self, created: datetime) -> datetime:
        """Return a last login: some never came back, most did within 30 days."""
        draw = self.rng.random()
        if draw < 0.35:
            return min(self.between(created, created + DAY), self.now)
        age = self.now - created
        if draw < 0.8:
            age = min(age, timedelta(days=ACTIVE_USER_DAYS))
        return self.between(self.now - age, self.now)

    def promote_admins(self, users: list[dict]) -> None:
        """Make some year-old accounts admins; the first few have not logged in."""
        cutoff = self.now - timedelta(days=365)
        chosen = self.rng.sample([u for u in users if u[FIELD] < cutoff], ADMINS)
        for rank, user in enumerate(chosen):
            user.update(role="admin", status="active")
            if rank < INACTIVE_ADMINS:
                user["lastLogin"] = self.ago(INACTIVE_ADMIN_DAYS + 10, 300)
            else:
                user["lastLogin"] = self.ago(0, 5)

    def jobs(self) -> list[dict]:
        """Return job postings of 120 companies, older ones mostly closed."""
        companies = [self.oid(self.ago(400, 900)) for _unused in range(COMPANIES)]
        old = [self.ago(HISTORY_DAYS, 180) for _unused in range(OLD_JOBS)]
        return [
            {
                "_id": self.oid(created),
                "title": self.rng.choice(JOB_TITLES),
                "companyId": self.rng.choice(companies),
                FIELD: created,
                "status": self.job_status(created),
            }
            for created in sorted(old + self.daily_times("jobs", HISTORY_DAYS))
        ]

    def job_status(self, created: datetime) -> str:
        """Return a posting's status, by its age."""
        if self.now - created < timedelta(days=30):
            return self.pick({"open": 85, "draft": 5, "closed": 10})
        return self.pick({"open": 25, "closed": 45, "filled": 30})

    def referrals(self, jobs: list[dict], users: list[dict]) -> list[dict]:
        """Return referrals of existing users to existing postings."""
        return [
            {
                "_id": self.oid(created),
                "jobId": self.earlier(jobs, created)["_id"],
                "referrerId": self.earlier(users, created, recent=len(users))["_id"],
                FIELD: created,
                "status": self.referral_status(created),
            }
            for created in self.daily_times("referrals", HISTORY_DAYS)
        ]

    def referral_status(self, created: datetime) -> str:
        """Return a referral's status: recent ones are still pending."""
        if self.now - created < timedelta(days=3):
            return self.pick({"pending": 80, "reviewed": 20})
        weights = {"reviewed": 30, "interviewing": 20, "hired": 10, "rejected": 40}
        return self.pick(weights)

    def payments(self, users: list[dict]) -> list[dict]:
        """Return subscription payments, some of them failed."""
        return [
            {
                "_id": self.oid(created),
                "userId": self.earlier(users, created, recent=len(users))["_id"],
                FIELD: created,
                "amount": self.rng.choice((49.0, 99.0, 199.0, 499.0)),
                "currency": self.pick({"USD": 70, "EUR": 20, "GBP": 10}),
                "status": self.pick({"succeeded": 88, "failed": 8, "refunded": 4}),
            }
            for created in self.daily_times("payments", HISTORY_DAYS)
        ]

    def apikeys(self, users: list[dict]) -> list[dict]:
        """Return API keys of admins and recruiters: fresh, stale, unused, revoked."""
        cutoff = self.now - timedelta(days=240)
        owners = [u for u in users if u["role"] != "user" and u[FIELD] < cutoff]
        kinds = (
            ["fresh"] * FRESH_KEYS
            + ["stale"] * STALE_KEYS
            + ["unused"] * UNUSED_KEYS
            + ["revoked"] * REVOKED_KEYS
        )
        return [
            self.apikey(n, kind, self.rng.choice(owners))
            for n, kind in enumerate(kinds)
        ]

    def apikey(self, number: int, kind: str, owner: dict) -> dict:
        """Return one API key; only a hash of the key is ever stored."""
        created = self.between(owner[FIELD], self.now - timedelta(days=200))
        last_used = {
            "fresh": self.ago(0, 2),
            "stale": self.between(created, self.now - timedelta(days=120)),
            "unused": None,
            "revoked": self.between(created, self.now - DAY),
        }[kind]
        return {
            "_id": self.oid(created),
            "name": f"{self.rng.choice(KEY_PURPOSES)}-{number:02d}",
            "ownerId": owner["_id"],
            "active": kind != "revoked",
            FIELD: created,
            "lastUsed": last_used,
            "keyHash": hashlib.sha256(self.rng.randbytes(32)).hexdigest(),
        }

    def private_ip(self) -> str:
        """Return an address in 10.0.0.0/8, where the platform's clients sit."""
        octets = [self.rng.randrange(256), self.rng.randrange(256)]
        return f"10.{octets[0]}.{octets[1]}.{self.rng.randrange(1, 255)}"

    def auditlogs(self, users: list[dict]) -> list[dict]:
        """Return signed audit records; the signatures make backups incompressible."""
        return [
            {
                "_id": self.oid(created),
                FIELD: created,
                "actorId": self.earlier(users, created, recent=len(users))["_id"],
                "action": self.rng.choice(AUDIT_ACTIONS),
                "ip": self.private_ip(),
                "requestId": uuid.UUID(bytes=self.rng.randbytes(16), version=4).hex,
                "signature": self.rng.randbytes(256),
            }
            for created in self.daily_times("auditlogs", AUDIT_DAYS)
        ]


def build_expected(now: datetime, seed: int, collections: dict[str, list]) -> dict:
    """Return what checks against this data should find."""
    since = now - DAY
    return {
        "now": iso(now),
        "seed": seed,
        "database": DATABASE,
        "field": FIELD,
        "counts": {name: len(docs) for name, docs in collections.items()},
        "ranges": {name: {**spec, "field": FIELD} for name, spec in RANGES.items()},
        "last_24h": {
            name: _last_24h(name, docs, since, now)
            for name, docs in collections.items()
        },
        "daily": {name: _daily(collections[name], now) for name in RANGES},
        "planted": [_planted(name, count) for name, count in PLANTED.items()],
        "users": _user_facts(collections["users"], now),
        "payments": _payment_facts(collections["payments"], since),
        "apikeys": _key_facts(collections["apikeys"], now),
    }


def _last_24h(name: str, docs: list[dict], since: datetime, now: datetime) -> dict:
    """Return the expected count of the last 24 hours, with its window and status."""
    count = count_between(creation_times(docs), since, now)
    entry = {"field": FIELD, "since": iso(since), "until": iso(now), "count": count}
    if name in RANGES:
        entry["status"] = range_status(count, RANGES[name])
    return entry


def _daily(docs: list[dict], now: datetime) -> list[int]:
    """Return counts per 24-hour window, the newest (ending now) first."""
    times = creation_times(docs)
    return [
        count_between(times, now - (window + 1) * DAY, now - window * DAY)
        for window in range(HISTORY_DAYS)
    ]


def _planted(name: str, count: int) -> dict:
    """Describe a planted problem and the status a range check should give it."""
    return {
        "collection": name,
        "metric": RANGES[name]["metric"],
        "field": FIELD,
        "count": count,
        "status": range_status(count, RANGES[name]),
    }


def _user_facts(users: list[dict], now: datetime) -> dict:
    """Return user counts: roles, statuses, admins, monthly active, churned."""
    admins = [u for u in users if u["role"] == "admin"]
    inactive_since = now - timedelta(days=INACTIVE_ADMIN_DAYS)
    return {
        "admins": len(admins),
        "inactive_admins": sum(u["lastLogin"] < inactive_since for u in admins),
        "inactive_admin_days": INACTIVE_ADMIN_DAYS,
        "monthly_active": _logged_in_since(users, now - timedelta(days=30)),
        "churned": len(users) - _logged_in_since(users, now - timedelta(days=60)),
        "churn_days": CHURN_DAYS,
        "by_role": _tally(users, "role"),
        "by_status": _tally(users, "status"),
    }


def _payment_facts(payments: list[dict], since: datetime) -> dict:
    """Return payment counts by status, overall and in the last 24 hours."""
    failed = [p for p in payments if p["status"] == "failed"]
    return {
        "by_status": _tally(payments, "status"),
        "failed": len(failed),
        "failed_last_24h": sum(p[FIELD] >= since for p in failed),
    }


def _key_facts(keys: list[dict], now: datetime) -> dict:
    """Return API key counts: active, revoked, and active but unused for 90 days."""
    stale_since = now - timedelta(days=STALE_KEY_DAYS)
    active = [k for k in keys if k["active"]]
    return {
        "active": len(active),
        "inactive": len(keys) - len(active),
        "active_unused_90d": sum(
            k["lastUsed"] is None or k["lastUsed"] < stale_since for k in active
        ),
        "unused_days": STALE_KEY_DAYS,
    }


def _logged_in_since(users: list[dict], since: datetime) -> int:
    """Count users whose last login is at or after ``since``."""
    return sum(u["lastLogin"] >= since for u in users)


def _tally(docs: list[dict], key: str) -> dict[str, int]:
    """Count documents per value of ``key``."""
    counts: dict[str, int] = {}
    for doc in docs:
        counts[doc[key]] = counts.get(doc[key], 0) + 1
    return dict(sorted(counts.items()))
