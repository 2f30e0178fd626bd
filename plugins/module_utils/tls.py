# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The TLS client of the certificate checks: connect, STARTTLS, handshake, chain.

Every endpoint gets one deadline for its whole exchange, and a watchdog stops
waiting for an endpoint whose deadline has passed, so that one endpoint that
hangs (even in a host name lookup) never holds up the others.
"""

from __future__ import annotations

import os
import socket
import ssl
import struct
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Callable

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    MaintenanceError,
)

try:
    import _ssl
except ImportError:  # pragma: no cover - ssl itself would be missing
    _ssl = None

SMTP = "smtp"
POSTGRES = "postgres"
STARTTLS_PROTOCOLS = [SMTP, POSTGRES]

# OpenSSL's X509_V_FLAG_NO_CHECK_TIME, which the ssl module has no name for.
# The check judges the dates of every certificate itself; without the flag an
# expired leaf would also be reported as a chain that does not verify.
NO_CHECK_TIME = 0x200000
# Accept what old servers offer (protocol versions, small keys, SHA-1) so that
# the handshake succeeds and the weakness is reported instead of hidden.
LENIENT_CIPHERS = "DEFAULT:@SECLEVEL=0"
POSTGRES_SSL_REQUEST = struct.pack("!II", 8, 80877103)
SMTP_CLIENT_NAME = b"localhost"
MAX_LINE = 4096
MAX_REPLY_LINES = 100
# The watchdog gives an endpoint this long past its timeout before giving up on
# it; the socket timeouts end the exchange first unless something unbounded
# (a host name lookup) hangs.
WATCHDOG_GRACE = 1.0
# OpenSSL's reasons when the other side answers a ClientHello with something
# that is not TLS at all (a plain-text protocol, an HTTP error page).
NOT_TLS_REASONS = {
    "WRONG_VERSION_NUMBER",
    "UNKNOWN_PROTOCOL",
    "HTTP_REQUEST",
    "HTTPS_PROXY_REQUEST",
    "PACKET_LENGTH_TOO_LONG",
    "RECORD_LAYER_FAILURE",
    "UNEXPECTED_RECORD",
}
OLD_PROTOCOLS = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1")


class TLSCheckError(MaintenanceError):
    """No certificate could be read from an endpoint; the message says why."""

    kind = "connection"

    def __init__(self, message: str, *, elapsed: float | None = None) -> None:
        self.elapsed = elapsed
        super().__init__(message)


class ConnectionRefused(TLSCheckError):
    """Nothing listens on the endpoint's port."""

    kind = "connection_refused"


class HostNotFound(TLSCheckError):
    """The endpoint's host name does not resolve."""

    kind = "dns"


class Timeout(TLSCheckError):
    """The endpoint did not finish its part within the timeout."""

    kind = "timeout"


class StartTLSError(TLSCheckError):
    """The plain-text protocol before the handshake did not offer or accept TLS."""

    kind = "starttls"


class NotTLS(TLSCheckError):
    """The endpoint answered the TLS handshake with something that is not TLS."""

    kind = "not_tls"


class HandshakeFailed(TLSCheckError):
    """The endpoint speaks TLS but the handshake failed."""

    kind = "handshake"


@dataclass(frozen=True)
class Target:
    """Where to connect and what to send: host, port, SNI name and STARTTLS."""

    host: str
    port: int
    server_name: str | None = None
    starttls: str | None = None
    timeout: float = 10.0

    @property
    def address(self) -> str:
        """``host:port``, with brackets around an IPv6 address."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class Handshake:
    """What one endpoint presented, and whether its chain verified."""

    leaf: bytes
    served_chain: list | None
    verified_chain: list | None
    verified: bool
    verify_code: int | None
    verify_error: str | None
    protocol: str
    cipher: str
    seconds: float


@dataclass(frozen=True)
class Contexts:
    """The two client contexts: one that verifies the chain, one that does not."""

    verifying: ssl.SSLContext
    lenient: ssl.SSLContext
    trust: str


class Deadline:
    """The time left for one endpoint's exchange."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left; raises ``socket.timeout`` once none are."""
        left = self.ends - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")
        return left


def chain_support() -> str | None:
    """Say why this Python cannot return the served chain, or None when it can."""
    if hasattr(ssl.SSLSocket, "get_unverified_chain"):
        return None
    private = getattr(_ssl, "_SSLSocket", None)
    if private is not None and hasattr(private, "get_unverified_chain"):
        return None
    version = ".".join(str(part) for part in sys.version_info[:2])
    return (
        f"Python {version} cannot return the chain a server sends (Python 3.10 "
        "and later can); only the server's own certificate was read"
    )


def chain_unavailable_note() -> str:
    """Say why a handshake gave no served chain, and what was judged instead."""
    reason = chain_support() or (
        "the TLS library did not return the chain the server sent; only the "
        "server's own certificate was read"
    )
    return f"{reason}; no intermediate certificate was judged"


def build_contexts(ca_path: str | None = None) -> Contexts:
    """Build the client contexts, trusting ``ca_path`` or the system store."""
    verifying = _lenient(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    verifying.verify_mode = ssl.CERT_REQUIRED
    verifying.verify_flags |= NO_CHECK_TIME
    if ca_path and os.path.isdir(ca_path):
        verifying.load_verify_locations(capath=ca_path)
    elif ca_path:
        verifying.load_verify_locations(cafile=ca_path)
    else:
        verifying.load_default_certs()
    lenient = _lenient(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    lenient.verify_mode = ssl.CERT_NONE
    return Contexts(verifying, lenient, ca_path or "system")


def _lenient(context: ssl.SSLContext) -> ssl.SSLContext:
    context.check_hostname = False
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.set_ciphers(LENIENT_CIPHERS)
    return context


def fetch(target: Target, contexts: Contexts) -> Handshake:
    """Handshake with ``target`` and return what it presented.

    The first handshake verifies the chain; when verification fails, a second
    one without verification reads the certificate, and the result keeps the
    reason the chain failed. Raises a ``TLSCheckError`` when no certificate
    could be read.
    """
    deadline = Deadline(target.timeout)
    started = time.monotonic()
    try:
        try:
            return _handshake(target, contexts.verifying, deadline, started)
        except ssl.SSLCertVerificationError as failure:
            handshake = _handshake(target, contexts.lenient, deadline, started)
            return replace(
                handshake,
                verify_code=failure.verify_code,
                verify_error=failure.verify_message or failure.reason or str(failure),
            )
    except (OSError, ValueError) as error:
        raise translate_error(error, target, time.monotonic() - started) from None


def _handshake(
    target: Target, context: ssl.SSLContext, deadline: Deadline, started: float
) -> Handshake:
    """Connect, negotiate STARTTLS if asked, and do one TLS handshake."""
    sock = socket.create_connection(
        (target.host, target.port), timeout=deadline.remaining()
    )
    try:
        negotiate_starttls(sock, target.starttls, deadline)
        sock.settimeout(deadline.remaining())
        tls = context.wrap_socket(
            sock, server_hostname=target.server_name, do_handshake_on_connect=False
        )
    except BaseException:
        sock.close()
        raise
    with tls:
        tls.settimeout(deadline.remaining())
        tls.do_handshake()
        return _presented(tls, context.verify_mode == ssl.CERT_REQUIRED, started)


def _presented(tls: ssl.SSLSocket, verified: bool, started: float) -> Handshake:
    leaf = tls.getpeercert(binary_form=True)
    if not leaf:
        raise HandshakeFailed("the server sent no certificate")
    cipher = tls.cipher()
    return Handshake(
        leaf=leaf,
        served_chain=peer_chain(tls, "get_unverified_chain"),
        verified_chain=peer_chain(tls, "get_verified_chain") if verified else None,
        verified=verified,
        verify_code=None,
        verify_error=None,
        protocol=tls.version() or "",
        cipher=cipher[0] if cipher else "",
        seconds=round(time.monotonic() - started, 3),
    )


def peer_chain(tls: ssl.SSLSocket, method: str) -> list | None:
    """Return a chain of the handshake as DER certificates, leaf first.

    Python 3.13 has the public ``SSLSocket.get_unverified_chain()`` and
    ``get_verified_chain()``. Python 3.10 to 3.12 have the same OpenSSL calls as
    private methods of the internal TLS object, which the public ones wrap.
    Older Pythons have neither, and the answer is None: not available.
    """
    public = getattr(type(tls), method, None)
    if public is not None:
        certs = getattr(tls, method)()
    else:
        private = getattr(getattr(tls, "_sslobj", None), method, None)
        if private is None:
            return None
        certs = private()
    return [_der(cert) for cert in certs or []]


def _der(cert: Any) -> bytes:
    if isinstance(cert, (bytes, bytearray)):
        return bytes(cert)
    return cert.public_bytes(_ssl.ENCODING_DER)


# STARTTLS


def negotiate_starttls(sock: socket.socket, protocol: str | None, deadline: Deadline):
    """Ask a plain-text service to switch to TLS; raise ``StartTLSError`` if not."""
    if protocol == SMTP:
        _smtp_starttls(LineReader(sock, deadline))
    elif protocol == POSTGRES:
        _postgres_ssl_request(sock, deadline)


def _smtp_starttls(reader: LineReader) -> None:
    _expect(reader.reply(), 220, "greet")
    reader.send(b"EHLO " + SMTP_CLIENT_NAME + b"\r\n")
    lines = _expect(reader.reply(), 250, "answer EHLO")[1]
    if not any(line[4:].strip().upper() == "STARTTLS" for line in lines):
        raise StartTLSError("the SMTP server does not offer STARTTLS")
    reader.send(b"STARTTLS\r\n")
    _expect(reader.reply(), 220, "accept STARTTLS")


def _expect(reply: tuple, code: int, step: str) -> tuple:
    if reply[0] != code:
        raise StartTLSError(
            f"the SMTP server did not {step}: it answered {reply[1][-1]!r}"
        )
    return reply


def _postgres_ssl_request(sock: socket.socket, deadline: Deadline) -> None:
    sock.settimeout(deadline.remaining())
    sock.sendall(POSTGRES_SSL_REQUEST)
    sock.settimeout(deadline.remaining())
    answer = sock.recv(1)
    if answer == b"S":
        return
    if answer == b"N":
        raise StartTLSError("the PostgreSQL server refuses TLS (it answered N)")
    if not answer:
        raise StartTLSError("the server closed the connection at the SSL request")
    raise StartTLSError(f"the server answered {answer!r}, not a PostgreSQL answer")


class LineReader:
    """Reads CRLF-terminated lines of a plain-text protocol, within a deadline."""

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        self.sock = sock
        self.deadline = deadline
        self.buffer = b""

    def send(self, data: bytes) -> None:
        """Send ``data`` before the deadline."""
        self.sock.settimeout(self.deadline.remaining())
        self.sock.sendall(data)

    def line(self) -> str:
        """Return the next line without its line ending."""
        while b"\n" not in self.buffer:
            if len(self.buffer) > MAX_LINE:
                raise StartTLSError("the server sent a line that is far too long")
            self.sock.settimeout(self.deadline.remaining())
            chunk = self.sock.recv(MAX_LINE)
            if not chunk:
                raise StartTLSError("the server closed the connection before TLS")
            self.buffer += chunk
        line, _newline, self.buffer = self.buffer.partition(b"\n")
        return line.rstrip(b"\r").decode("utf-8", errors="replace")

    def reply(self) -> tuple:
        """Read a (multi-line) reply: ``(code, lines)``, code None if not numeric."""
        lines = []
        while len(lines) < MAX_REPLY_LINES:
            lines.append(self.line())
            last = lines[-1]
            if len(last) < 4 or last[3] != "-":
                code = last[:3]
                return (int(code) if code.isdigit() else None), lines
        raise StartTLSError("the server sent a reply of too many lines")


# Errors


def translate_error(
    error: BaseException, target: Target, elapsed: float
) -> TLSCheckError:
    """Turn what the socket or ssl module raised into our error, for a person."""
    where = target.address
    elapsed = round(elapsed, 3)
    if isinstance(error, TLSCheckError):
        error.elapsed = elapsed
        return error
    if isinstance(error, (socket.timeout, TimeoutError)):
        message = f"no answer from {where} within the timeout of {target.timeout:g} s"
        return Timeout(message, elapsed=elapsed)
    if isinstance(error, ConnectionRefusedError):
        return ConnectionRefused(f"connection refused by {where}", elapsed=elapsed)
    if isinstance(error, socket.gaierror):
        message = f"host name {target.host} could not be resolved ({error.strerror})"
        return HostNotFound(message, elapsed=elapsed)
    if isinstance(error, ssl.SSLError):
        return _tls_error(error, where, elapsed)
    if isinstance(error, (ConnectionResetError, BrokenPipeError)):
        message = f"{where} closed the connection during the TLS handshake"
        return HandshakeFailed(message, elapsed=elapsed)
    reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return TLSCheckError(f"connection to {where} failed: {reason}", elapsed=elapsed)


def _tls_error(error: ssl.SSLError, where: str, elapsed: float) -> TLSCheckError:
    reason = error.reason or ""
    if reason in NOT_TLS_REASONS:
        message = f"{where} does not speak TLS: it answered the handshake with "
        message += f"something else ({reason})"
        return NotTLS(message, elapsed=elapsed)
    if isinstance(error, ssl.SSLEOFError) or "EOF" in reason:
        message = f"{where} closed the connection during the TLS handshake"
        return HandshakeFailed(message, elapsed=elapsed)
    detail = reason or str(error)
    return HandshakeFailed(
        f"TLS handshake with {where} failed: {detail}", elapsed=elapsed
    )


# Many endpoints at once


def run_with_deadlines(
    work: Callable[[Any], Any],
    items: list,
    *,
    max_workers: int,
    limit: Callable[[Any], float],
    fallback: Callable[[Any, Exception | None], Any],
) -> list:
    """Call ``work`` on every item concurrently; results keep the items' order.

    An item whose ``work`` has not returned ``limit(item)`` seconds after it
    started gets ``fallback(item, None)`` as its result, and a fresh worker takes
    its place, so that no item waits for another that hangs. An item whose
    ``work`` raised gets ``fallback(item, error)``.
    """
    pool = _DeadlinePool(work, items, limit=limit, fallback=fallback)
    return pool.run(max_workers=max_workers)


class _DeadlinePool:
    """Daemon worker threads, a queue of item indexes, and a watchdog."""

    def __init__(
        self, work: Callable, items: list, *, limit: Callable, fallback: Callable
    ) -> None:
        self.work = work
        self.items = items
        self.limit = limit
        self.fallback = fallback
        self.results: list = [None] * len(items)
        self.done = [False] * len(items)
        self.pending = deque(range(len(items)))
        self.running: dict = {}
        self.lock = threading.Condition()

    def run(self, *, max_workers: int) -> list:
        """Start the workers and wait, giving up on items past their deadline."""
        for _unused in range(max(1, min(max_workers, len(self.items)))):
            self._start_worker()
        with self.lock:
            while not all(self.done):
                self._give_up_on_late_items()
                self.lock.wait(timeout=self._next_wakeup())
        return self.results

    def _start_worker(self) -> None:
        # Daemon threads: a worker stuck in a host name lookup must not keep the
        # module from exiting.
        threading.Thread(target=self._worker, daemon=True).start()

    def _worker(self) -> None:
        while True:
            with self.lock:
                if not self.pending:
                    return
                index = self.pending.popleft()
                item = self.items[index]
                self.running[index] = time.monotonic() + self.limit(item)
            result = self._call(item)
            with self.lock:
                if self.running.pop(index, None) is None:
                    return  # given up on: a fresh worker has taken this one's place
                self.results[index] = result
                self.done[index] = True
                self.lock.notify_all()

    def _call(self, item: Any) -> Any:
        try:
            return self.work(item)
        except Exception as error:  # pylint: disable=broad-exception-caught
            # A bug in one item's check must not lose every other item's result.
            return self.fallback(item, error)

    def _give_up_on_late_items(self) -> None:
        now = time.monotonic()
        for index, ends in list(self.running.items()):
            if ends <= now:
                del self.running[index]
                self.results[index] = self.fallback(self.items[index], None)
                self.done[index] = True
                self._start_worker()

    def _next_wakeup(self) -> float:
        if not self.running:
            return 0.5
        return max(0.01, min(self.running.values()) - time.monotonic())
