"""Lab application server: the TRM API's health, metrics and log stand-in.

Run as ``python -m lab.app_server --config FILE`` (written by the ``app`` lab
component). Serves HTTPS on 127.0.0.1:

- ``GET /health`` checks Redis and MongoDB on every call;
- ``GET /metrics`` exposes request counters whose 5xx share is exactly 1.5%;

and appends a few request lines to the application log every few seconds.
SIGTERM stops the server and the log writer and exits with status 0.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pymongo
import redis
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)
from prometheus_client.registry import Collector
from pymongo.errors import PyMongoError
from redis.backoff import NoBackoff
from redis.retry import Retry

from lab.components.app import format_line, request_message
from lab.tls_server import TLSThreadingMixIn, serve_until_signalled, server_context

VERSION = "2.4.1"
CHECK_TIMEOUT = 1.0
NOT_CONFIGURED = "not configured"
MAX_ERROR_TEXT = 200

# Requests per second by (method, route, status): 200 in all, 3 of them 5xx, so
# the 5xx share is 0.015 over any whole number of seconds.
TRAFFIC = (
    ("GET", "/api/referrals", "200", 60),
    ("GET", "/api/referrals", "500", 2),
    ("GET", "/api/referrals/:id", "200", 36),
    ("GET", "/api/referrals/:id", "404", 2),
    ("POST", "/api/referrals", "201", 28),
    ("POST", "/api/referrals", "500", 1),
    ("GET", "/api/providers", "200", 30),
    ("POST", "/api/auth/login", "200", 16),
    ("POST", "/api/auth/login", "401", 3),
    ("POST", "/api/payments", "200", 12),
    ("GET", "/health", "200", 10),
)
# Cumulative requests per second at or under each bound (p95 about 0.35 s).
DURATION_BUCKETS = (
    ("0.005", 10),
    ("0.01", 30),
    ("0.025", 80),
    ("0.05", 130),
    ("0.1", 165),
    ("0.25", 186),
    ("0.5", 196),
    ("1.0", 199),
    ("2.5", 200),
    ("+Inf", 200),
)
DURATION_SUM_PER_SECOND = 15.0
# Payment failures per hour by reason.
PAYMENT_FAILURES = (("card_declined", 120), ("insufficient_funds", 60))


class TrafficCollector(Collector):
    """Request metrics computed from the seconds since start, never sampled.

    Counters step once a second and include the current second, so every
    scrape, and every rate over a whole number of seconds, shows the same shares.
    """

    def __init__(self, started: float) -> None:
        self.started = started

    def seconds(self) -> int:
        """Whole seconds of simulated traffic so far, counting the current one."""
        return int(time.monotonic() - self.started) + 1

    def collect(self):
        """Yield the metric families for the current second."""
        seconds = self.seconds()
        yield _requests(seconds)
        yield _durations(seconds)
        yield _payment_failures(seconds)
        yield InfoMetricFamily(
            "trm_app", "Application build", value={"version": VERSION}
        )


def _requests(seconds: int) -> CounterMetricFamily:
    """HTTP requests by method, route and status."""
    family = CounterMetricFamily(
        "http_requests_total",
        "HTTP requests served",
        labels=["method", "route", "status"],
    )
    for method, route, status, per_second in TRAFFIC:
        family.add_metric([method, route, status], per_second * seconds)
    return family


def _durations(seconds: int) -> HistogramMetricFamily:
    """HTTP request durations in seconds."""
    buckets = [(bound, count * seconds) for bound, count in DURATION_BUCKETS]
    return HistogramMetricFamily(
        "http_request_duration_seconds",
        "HTTP request duration",
        buckets=buckets,
        sum_value=DURATION_SUM_PER_SECOND * seconds,
    )


def _payment_failures(seconds: int) -> CounterMetricFamily:
    """Payments the processor declined, by reason."""
    family = CounterMetricFamily(
        "trm_payment_failures_total", "Failed payments", labels=["reason"]
    )
    for reason, per_hour in PAYMENT_FAILURES:
        family.add_metric([reason], seconds * per_hour // 3600)
    return family


def _error_text(exc: Exception, secrets: list[str]) -> str:
    """Short error text for a health check, with every secret blanked out."""
    text = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_TEXT]
    for secret in filter(None, secrets):
        text = text.replace(secret, "<redacted>")
    return text


class Dependencies:
    """Checks the application's Redis and MongoDB, each under a one-second limit."""

    def __init__(self, config: dict) -> None:
        self.redis = config.get("redis")
        self.mongodb = config.get("mongodb")
        self.mongo_client = self._mongo_client()

    def _mongo_client(self) -> pymongo.MongoClient | None:
        """One client for the server's life; it reconnects by itself."""
        if not self.mongodb:
            return None
        ms = int(CHECK_TIMEOUT * 1000)
        return pymongo.MongoClient(
            self.mongodb["uri"],
            connect=False,
            serverSelectionTimeoutMS=ms,
            connectTimeoutMS=ms,
            socketTimeoutMS=ms,
        )

    def check_redis(self) -> str:
        """PING Redis with a fresh connection; ``ok`` or the error text."""
        if not self.redis:
            return NOT_CONFIGURED
        password = self.redis.get("password")
        client = redis.Redis(
            host=self.redis["host"],
            port=int(self.redis["port"]),
            password=password or None,
            socket_timeout=CHECK_TIMEOUT,
            socket_connect_timeout=CHECK_TIMEOUT,
            # No retries: a health check reports the first failure, promptly.
            retry=Retry(NoBackoff(), 0),
        )
        try:
            client.ping()
            return "ok"
        except redis.RedisError as exc:
            return _error_text(exc, [password])
        finally:
            client.close()

    def check_mongodb(self) -> str:
        """Run ``ping`` on MongoDB; ``ok`` or the error text."""
        if self.mongo_client is None:
            return NOT_CONFIGURED
        try:
            self.mongo_client.admin.command("ping")
            return "ok"
        except PyMongoError as exc:
            return _error_text(
                exc, [unquote(urlsplit(self.mongodb["uri"]).password or "")]
            )

    def report(self) -> tuple[bool, dict[str, str]]:
        """Check both; healthy when none failed (not configured is no failure)."""
        checks = {"mongodb": self.check_mongodb(), "redis": self.check_redis()}
        healthy = all(value in ("ok", NOT_CONFIGURED) for value in checks.values())
        return healthy, checks


class AppHandler(BaseHTTPRequestHandler):
    """Routes ``/health`` and ``/metrics``; anything else is 404."""

    server: AppServer

    def do_GET(self) -> None:
        """Answer one GET request."""
        path = urlsplit(self.path).path
        if path == "/health":
            self._health()
        elif path == "/metrics":
            body = generate_latest(self.server.registry)
            self._send(200, CONTENT_TYPE_LATEST, body)
        else:
            self._send_json(404, {"error": "not found", "path": path})

    def _health(self) -> None:
        """Check the dependencies and answer 200 or 503."""
        healthy, checks = self.server.dependencies.report()
        document = {
            "status": "healthy" if healthy else "unhealthy",
            "version": VERSION,
            "checks": checks,
            "uptime_seconds": int(time.monotonic() - self.server.started),
        }
        self._send_json(200 if healthy else 503, document)

    def _send_json(self, status: int, document: dict) -> None:
        """Answer with a JSON document."""
        self._send(status, "application/json", json.dumps(document).encode())

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        """Answer with a status, a content type and a body."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class AppServer(TLSThreadingMixIn, HTTPServer):
    """The HTTPS application server."""

    def __init__(self, config: dict, started: float) -> None:
        self.started = started
        self.ssl_context = server_context(config["cert"], config["key"])
        self.dependencies = Dependencies(config)
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(TrafficCollector(started))
        super().__init__((config["host"], int(config["port"])), AppHandler)


class LiveLog(threading.Thread):
    """Appends a few request lines to the application log every few seconds."""

    def __init__(self, path: Path, since: datetime, *, interval: float = 3.0) -> None:
        super().__init__(daemon=True)
        self.path, self.since, self.interval = path, since, interval
        self.started = time.monotonic()
        self.stop = threading.Event()
        self.rng = random.Random(7)

    def now(self) -> datetime:
        """Wall-clock time, but never before the end of the written history."""
        elapsed = timedelta(seconds=time.monotonic() - self.started)
        return max(datetime.now(timezone.utc), self.since + elapsed)

    def run(self) -> None:
        """Write until stopped; one write per batch keeps lines whole."""
        while not self.stop.wait(self.interval):
            when = self.now()
            count = self.rng.randint(1, 3)
            lines = [
                format_line(when, request_message(self.rng)) for _unused in range(count)
            ]
            with self.path.open("a") as handle:
                handle.write("".join(lines))


def main(argv: list[str] | None = None) -> int:
    """Start the application server and its log writer; serve until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--log-interval", type=float, default=3.0)
    args = parser.parse_args(argv)
    config = json.loads(args.config.read_text())

    server = AppServer(config, time.monotonic())
    since = datetime.fromisoformat(config["log_since"])
    writer = LiveLog(Path(config["log_file"]), since, interval=args.log_interval)
    writer.start()
    serve_until_signalled([server])
    writer.stop.set()
    writer.join(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
