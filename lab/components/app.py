"""Lab component ``app``: the stand-in for the TRM platform's API.

Writes 48 hours of application log history, then starts ``lab.app_server``, an
HTTPS server with ``/health`` (live Redis and MongoDB checks) and ``/metrics``.
Starts after ``tls`` (required: it issues the server certificate), ``redis`` and
``mongodb`` (optional: a missing record is reported as ``not configured``).
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

from lab.core import LOOPBACK, LabContext, LabError, free_port, wait_for_port

LOG_NAME = "trm-app.log"
HISTORY = timedelta(hours=48)
WINDOW = timedelta(hours=24)
HISTORY_SEED = 4127
EXPECTED_ERROR_RATE = 0.015
HOUR_MS = 3_600_000

ROUTES = (
    ("GET", "/api/referrals", (200, 200, 304)),
    ("GET", "/api/referrals/ref-{id}", (200,)),
    ("POST", "/api/referrals", (201,)),
    ("GET", "/api/providers", (200,)),
    ("POST", "/api/payments", (200, 201)),
    ("POST", "/api/auth/login", (200,)),
)
CATEGORIES = (
    "request",
    "error",
    "payment_failed",
    "failed_login",
    "suspicious_activity",
    "rate_limit",
    "cron_daily_digest_started",
    "cron_daily_digest_completed",
    "cron_cleanup_sessions_completed",
)
USERS = ("jdoe", "mchen", "apatel", "lgarcia", "admin", "scheduler")


def format_line(when: datetime, message: str) -> str:
    """Format one log line: RFC 3339 UTC timestamp in milliseconds, then the text."""
    stamp = when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{when.microsecond // 1000:03d}Z {message}\n"


def request_message(rng: random.Random) -> str:
    """An access line like the API's request logger writes for each request."""
    method, path, statuses = rng.choice(ROUTES)
    path = path.format(id=rng.randint(10000, 99999))
    duration = int(rng.lognormvariate(3.4, 0.6))
    return (
        f"INFO {method} {path} {rng.choice(statuses)} {duration}ms "
        f"request_id={rng.getrandbits(32):08x}"
    )


def _error_message(rng: random.Random) -> tuple[str, str]:
    """Pick an error kind and write its line, with the ids and numbers it carries."""
    ref, req = rng.randint(10000, 99999), f"{rng.getrandbits(32):08x}"
    kinds = {
        "MongoServerSelectionError": f"MongoServerSelectionError: Server selection "
        f"timed out after 30000 ms (referral ref-{ref}, request_id={req})",
        "ValidationError": f"ValidationError: referral ref-{ref} is missing required "
        f'field "patient_dob" (request_id={req})',
        "TypeError": "TypeError: Cannot read properties of undefined (reading "
        f"'providerId') at /app/src/routes/referrals.js:{rng.randint(100, 180)}:18",
        "RedisTimeoutError": f"RedisTimeoutError: GET session:{ref} timed out after "
        f"{rng.choice((1000, 2000))}ms",
        "JsonWebTokenError": f"JsonWebTokenError: jwt expired for request_id={req} "
        "(Authorization: Bearer <redacted>)",
    }
    kind = rng.choices(list(kinds), weights=(3, 4, 2, 2, 1))[0]
    return kind, f"ERROR {kinds[kind]}"


def _payment_message(rng: random.Random) -> str:
    """A payment the processor declined."""
    reason = rng.choice(("card_declined", "insufficient_funds", "gateway_timeout"))
    amount = rng.randint(2500, 48000) / 100
    return (
        f"WARN Payment failed for invoice inv-{rng.randint(100000, 999999)}: "
        f"{reason} (amount={amount:.2f} USD, customer=cus-{rng.randint(1000, 9999)})"
    )


def _ip(rng: random.Random) -> str:
    """An address from the documentation range, never a real client."""
    return f"203.0.113.{rng.randint(2, 254)}"


def _failed_login(user: str, ip: str, attempt: int) -> str:
    """A rejected sign-in."""
    return (
        f"WARN Failed login attempt for user {user}@example.org from {ip} "
        f"(attempt {attempt})"
    )


def _suspicious_message(rng: random.Random) -> str:
    """A burst of exports that the API flags for review."""
    return (
        f"WARN Suspicious activity: {rng.randint(20, 60)} referral exports in 60s "
        f"by user {rng.choice(USERS)}@example.org from {_ip(rng)}"
    )


def _rate_limit_message(ip: str, rng: random.Random) -> str:
    """A client throttled by the API's rate limiter."""
    return (
        f"WARN Rate limit exceeded for {ip} on POST /api/auth/login "
        f"({rng.randint(101, 240)} requests/min, limit 100)"
    )


def _poisson(rng: random.Random, end_ms: int, mean_s: float) -> Iterator[int]:
    """Event times (ms from the history's start) with exponential gaps."""
    at = 0
    while True:
        at += max(1, int(rng.expovariate(1 / mean_s) * 1000))
        if at >= end_ms:
            return
        yield at


def _scattered(rng: random.Random, end_ms: int) -> Iterator[tuple[int, str, str]]:
    """Requests, errors, payment failures and security events at random times."""
    for at in _poisson(rng, end_ms, 30):
        yield at, "request", request_message(rng)
    for at in _poisson(rng, end_ms, 1800):
        kind, text = _error_message(rng)
        yield at, f"error:{kind}", text
    for at in _poisson(rng, end_ms, 4500):
        yield at, "payment_failed", _payment_message(rng)
    for at in _poisson(rng, end_ms, 10800):
        yield at, "failed_login", _failed_login(rng.choice(USERS), _ip(rng), 1)
    for at in _poisson(rng, end_ms, 28800):
        yield at, "suspicious_activity", _suspicious_message(rng)
    for at in _poisson(rng, end_ms, 14400):
        yield at, "rate_limit", _rate_limit_message(_ip(rng), rng)


def _brute_force(rng: random.Random, start_ms: int) -> Iterator[tuple[int, str, str]]:
    """A password-guessing run from one address, ending in the rate limiter."""
    ip, at = _ip(rng), start_ms
    for attempt in range(1, 13):
        at += rng.randint(4000, 15000)
        yield at, "failed_login", _failed_login("admin", ip, attempt)
    yield at + 500, "rate_limit", _rate_limit_message(ip, rng)


def _cron(start: datetime, end_ms: int) -> Iterator[tuple[int, str, str]]:
    """Scheduled jobs: the daily digest at 06:00 UTC, session cleanup hourly at :15."""
    first_hour = start.replace(minute=0, second=0, microsecond=0)
    offset = int((first_hour - start).total_seconds() * 1000)
    for hour in range(0, end_ms // HOUR_MS + 2):
        base = offset + hour * HOUR_MS
        if (first_hour + timedelta(hours=hour)).hour == 6:
            yield base, "cron_daily_digest_started", "INFO CRON daily-digest started"
            yield (
                base + 4213,
                "cron_daily_digest_completed",
                ("INFO CRON daily-digest completed in 4213ms (sent=312)"),
            )
        cleanup = base + 15 * 60_000 + 812
        yield (
            cleanup,
            "cron_cleanup_sessions_completed",
            (f"INFO CRON cleanup-sessions completed (removed={1100 + hour * 7})"),
        )


def history_events(anchor: datetime) -> list[tuple[datetime, str, str]]:
    """Return the 48 hours before ``anchor`` as sorted (time, category, text)."""
    start = anchor - HISTORY
    end_ms = int(HISTORY.total_seconds() * 1000)
    rng = random.Random(HISTORY_SEED)
    events = [*_scattered(rng, end_ms), *_cron(start, end_ms)]
    events += [*_brute_force(rng, end_ms - 30 * HOUR_MS)]
    events += [*_brute_force(rng, end_ms - 5 * HOUR_MS)]
    events = [e for e in events if 0 <= e[0] < end_ms]
    events.sort(key=lambda event: event[0])
    return [(start + timedelta(milliseconds=at), cat, text) for at, cat, text in events]


def count_window(events: list[tuple[datetime, str, str]], since: datetime) -> dict:
    """Count lines per category from ``since`` on; error kinds separately."""
    counts: Counter[str] = Counter(dict.fromkeys(CATEGORIES, 0))
    kinds: Counter[str] = Counter()
    for when, category, _unused in events:
        if when < since:
            continue
        counts["total"] += 1
        counts[category.split(":")[0]] += 1
        if category.startswith("error:"):
            kinds[category.split(":", 1)[1]] += 1
    return {"counts": dict(counts), "error_kinds": dict(sorted(kinds.items()))}


def write_history(path: Path, anchor: datetime) -> dict:
    """Write the log history ending at ``anchor``; return the last 24 hours' counts."""
    events = history_events(anchor)
    path.write_text("".join(format_line(when, text) for when, _unused, text in events))
    return count_window(events, anchor - WINDOW)


def _anchor(state: dict) -> datetime:
    """The lab's "now": ``state["now"]`` (ISO, UTC) when set, else the clock."""
    raw = state.get("now")
    # Before Python 3.11, fromisoformat() rejects the "Z" suffix.
    when = (
        datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if raw
        else datetime.now(timezone.utc)
    )
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    when = when.astimezone(timezone.utc)
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


def _log_dir(ctx: LabContext, servers: dict) -> Path:
    """Where pod logs live: the Kubernetes stand-in's folder, else our own."""
    folder = servers.get("k8s", {}).get("logs_dir")
    path = Path(folder) if folder else ctx.path("k8s-logs")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _server_config(ctx: LabContext, servers: dict, port: int, log: dict) -> Path:
    """Write the server's settings (they hold the Redis password: owner only)."""
    redis, mongodb = servers.get("redis"), servers.get("mongodb")
    config = {
        "host": LOOPBACK,
        "port": port,
        "cert": servers["tls"]["app_cert"]["cert"],
        "key": servers["tls"]["app_cert"]["key"],
        "redis": _pick(redis, "host", "port", "password"),
        "mongodb": _pick(mongodb, "uri"),
        **log,
    }
    path = ctx.path("app", "server.json")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(config, handle, indent=2)
    return path


def _pick(record: dict | None, *keys: str) -> dict | None:
    """Copy the connection keys of a dependency's record, or None when absent."""
    return {key: record.get(key) for key in keys} if record else None


def start(ctx: LabContext, state: dict) -> dict:
    """Write the log history, start the application server and return its record."""
    servers = state.get("servers", {})
    if "tls" not in servers:
        raise LabError("The app component needs the tls component started first")
    anchor = _anchor(state)
    log_file = _log_dir(ctx, servers) / LOG_NAME
    window = write_history(log_file, anchor)

    port = free_port()
    log = {"log_file": str(log_file), "log_since": anchor.isoformat()}
    config = _server_config(ctx, servers, port, log)
    pid = ctx.spawn_python("app", "lab.app_server", "--config", str(config))
    wait_for_port(port, pid=pid)
    return _record(pid, port, servers["tls"]["ca_file"], log_file, window, anchor)


def _record(
    pid: int, port: int, ca_file: str, log_file: Path, window: dict, anchor: datetime
) -> dict:
    """Build the component's record."""
    url = f"https://localhost:{port}"
    return {
        "pids": [pid],
        "host": LOOPBACK,
        "port": port,
        "url": url,
        "health_url": f"{url}/health",
        "metrics_url": f"{url}/metrics",
        "ca_file": ca_file,
        "log_file": str(log_file),
        "log_counts_24h": window["counts"],
        "log_error_kinds_24h": window["error_kinds"],
        "log_window_24h": {
            "start": (anchor - WINDOW).isoformat(),
            "end": anchor.isoformat(),
        },
        "expected_error_rate": EXPECTED_ERROR_RATE,
    }
