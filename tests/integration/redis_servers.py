"""Real redis-server processes (and two fake ports) for the Redis tests.

Each server gets its own folder and config file (passwords stay out of argv),
binds to loopback on a free port and is stopped by its process id. The tests
read INFO back with redis-cli, whose raw text they parse themselves, so the
expected values do not come from the code under test.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lab import pki
from lab.components.redis import redis_server_binary
from lab.core import LOOPBACK, LabContext, free_port, stop_pid, wait_for_port

# The monitoring user the module's notes recommend, and one without CONFIG.
MONITOR_RULES = "+ping +info +slowlog|get +config|get"
NO_CONFIG_RULES = "+ping +info +slowlog|get"


@dataclass
class Tls:
    """Certificates for a TLS server and a client, from one lab CA."""

    ca: Path
    cert: Path
    key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


@dataclass
class RedisServer:
    """One redis-server we started."""

    name: str
    port: int
    pid: int
    folder: Path
    password: str | None = None
    tls: Tls | None = None
    users: dict = field(default_factory=dict)

    def client(self, **options) -> redis.Redis:
        """A redis-py client of the test's own (never the module's settings)."""
        kwargs = {
            "host": LOOPBACK,
            "port": self.port,
            "password": self.password,
            "socket_timeout": 5,
        }
        if self.tls:
            kwargs.update(
                ssl=True,
                ssl_ca_certs=str(self.tls.ca),
                ssl_certfile=str(self.tls.client_cert),
                ssl_keyfile=str(self.tls.client_key),
            )
        return redis.Redis(**{**kwargs, **options})

    def info(self, section: str = "everything") -> dict:
        """INFO as redis-cli prints it, parsed here: ``key -> text``."""
        argv = [shutil.which("redis-cli") or "redis-cli", "-p", str(self.port)]
        argv += ["-h", LOOPBACK, "--no-auth-warning"]
        if self.password:
            argv += ["-a", self.password]
        if self.tls:
            argv += ["--tls", "--cacert", str(self.tls.ca)]
            argv += ["--cert", str(self.tls.client_cert)]
            argv += ["--key", str(self.tls.client_key)]
        out = subprocess.run(
            [*argv, "INFO", section],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        pairs = (line.split(":", 1) for line in out.splitlines() if ":" in line)
        return {key: value.strip() for key, value in pairs}

    def stop(self) -> None:
        """Stop the server by its process id."""
        stop_pid(self.pid)


def start_redis(
    ctx: LabContext,
    name: str,
    *,
    password: str | None = None,
    config: tuple = (),
    tls: Tls | None = None,
    users: dict | None = None,
) -> RedisServer:
    """Start redis-server with a config file of its own; return when it listens."""
    folder = ctx.path(name, "data")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    lines = [
        f"bind {LOOPBACK}",
        f"dir {folder}",
        "save ''",
        "appendonly no",
        "daemonize no",
        "enable-debug-command local",
        # Replicas sync at once instead of waiting for more replicas to join.
        "repl-diskless-sync-delay 0",
    ]
    lines += _listen(port, tls)
    if password:
        lines.append(f"requirepass {password}")
    lines += list(config)
    server = RedisServer(name, port, 0, folder, password, tls)
    for user, rules in (users or {}).items():
        server.users[user] = secrets.token_urlsafe(12)
        lines.append(f"user {user} on >{server.users[user]} {rules}")
    path = ctx.path(name, "redis.conf")
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    server.pid = ctx.spawn(name, [redis_server_binary(), str(path)])
    wait_for_port(port, pid=server.pid)
    return server


def _listen(port: int, tls: Tls | None) -> list:
    if tls is None:
        return [f"port {port}"]
    return [
        "port 0",
        f"tls-port {port}",
        f"tls-cert-file {tls.cert}",
        f"tls-key-file {tls.key}",
        f"tls-ca-cert-file {tls.ca}",
        "tls-auth-clients optional",
    ]


def make_tls(folder: Path) -> Tls:
    """A lab CA with a server certificate for 127.0.0.1 and a client certificate."""
    folder.mkdir(parents=True, exist_ok=True)
    root = pki.make_root_ca()
    now = pki.utc_now()
    span = {
        "not_before": now - timedelta(days=1),
        "not_after": now + timedelta(days=30),
    }
    leaf = pki.make_leaf(root, **span)
    server = pki.write_leaf(folder, "server", leaf)
    client = _client_certificate(root, **span)
    other = pki.make_root_ca(common_name="Some Other CA")
    return Tls(
        ca=pki.write_certs(folder / "ca.pem", root.cert),
        cert=server["cert"],
        key=server["key"],
        client_cert=pki.write_certs(folder / "client.crt", client.cert),
        client_key=pki.write_key(folder / "client.key", client.key),
        other_ca=pki.write_certs(folder / "other-ca.pem", other.cert),
    )


def _client_certificate(issuer: pki.Issued, **span) -> pki.Issued:
    """A certificate for TLS client authentication (the lab makes server ones)."""
    key = pki.new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "trm-monitor")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(span["not_before"])
        .not_valid_after(span["not_after"])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(issuer.key, hashes.SHA256())
    )
    return pki.Issued(cert, key)


def start_sentinel(
    ctx: LabContext, name: str, primary: RedisServer, service: str
) -> RedisServer:
    """Start redis-server in Sentinel mode, monitoring ``primary`` as ``service``."""
    port = free_port()
    folder = ctx.path(name, "data")
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        f"bind {LOOPBACK}",
        f"port {port}",
        f"dir {folder}",
        "daemonize no",
        f"sentinel monitor {service} {LOOPBACK} {primary.port} 1",
    ]
    if primary.password:
        lines.append(f"sentinel auth-pass {service} {primary.password}")
    # Sentinel rewrites its config file, so it must be writable.
    path = ctx.path(name, "sentinel.conf")
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    pid = ctx.spawn(name, [redis_server_binary(), str(path), "--sentinel"])
    wait_for_port(port, pid=pid)
    return RedisServer(name, port, pid, folder)


def wait_for(predicate, *, timeout: float = 15.0, what: str = "a condition") -> None:
    """Poll ``predicate`` until it is true, or fail the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError, OSError):
            if predicate():
                return
        time.sleep(0.1)
    raise AssertionError(f"Timed out waiting for {what}")


class SilentServer:
    """A TCP port that accepts connections and never answers: the timeout case."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted: list = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                continue
            # Keep the connection open and read nothing, answer nothing.
            self.accepted.append(conn)

    def close(self) -> None:
        """Stop accepting and close every connection."""
        self.stopping.set()
        self.thread.join(timeout=2)
        for conn in self.accepted:
            conn.close()
        self.sock.close()
