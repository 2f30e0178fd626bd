"""TLS test servers on loopback, with every certificate case the checks must judge.

``make_cases(folder)`` issues the certificates (one lab CA, an intermediate, and
one leaf per case) and returns the cases; ``running(state_dir, cases)`` serves
them from one process, started and stopped by its pid. The server process is
``python -m tests.integration.tls_servers --config FILE``; it serves TLS, SMTP
and PostgreSQL STARTTLS, a plain-text service and a port that accepts and never
answers. A case of kind ``refused`` gets a free port that nothing listens on.

cryptography refuses to sign with SHA-1, so the SHA-1 case is made by the
``openssl`` command-line tool: it re-signs a self-signed certificate with the
lab intermediate and SHA-1, keeping its names, extensions and dates.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509

from lab import pki
from lab.core import LOOPBACK, LabContext, free_port, stop_pid, wait_for_port

# Half a day on top of whole days keeps the floor of the days left stable for
# twelve hours after the certificates are made.
SLACK = timedelta(hours=12)
SERVER_NAME = "localhost"
HANDSHAKE_TIMEOUT = 5.0
TLS_KINDS = ("tls", "smtp", "postgres")
POSTGRES_SSL_CODE = 80877103


@dataclass
class Case:
    """One endpoint to serve: its kind, port, certificate files and options."""

    name: str
    kind: str = "tls"
    port: int = 0
    chain: str | None = None
    key: str | None = None
    max_version: str | None = None

    def certificates(self) -> list:
        """The certificates this case serves, leaf first."""
        if not self.chain:
            return []
        return x509.load_pem_x509_certificates(Path(self.chain).read_bytes())


@dataclass
class Authority:
    """The lab CA: the root (the trust anchor) and the intermediate."""

    root: pki.Issued
    intermediate: pki.Issued
    ca_file: Path
    intermediate_file: Path
    intermediate_key: Path


def make_authority(folder: Path) -> Authority:
    """Make the root and intermediate CAs and write them."""
    root = pki.make_root_ca()
    intermediate = pki.make_intermediate_ca(root, key_kind="rsa")
    return Authority(
        root=root,
        intermediate=intermediate,
        ca_file=pki.write_certs(folder / "ca.pem", root.cert),
        intermediate_file=pki.write_certs(
            folder / "intermediate.pem", intermediate.cert
        ),
        intermediate_key=pki.write_key(folder / "intermediate.key", intermediate.key),
    )


def lifetime(days: int, now: datetime) -> tuple:
    """Validity from a day ago to ``days`` days (and the slack) from ``now``."""
    not_after = now + timedelta(days=days) + SLACK
    return min(now - timedelta(days=1), not_after - timedelta(days=90)), not_after


def leaf_case(
    folder: Path,
    name: str,
    issuer: pki.Issued,
    span: tuple,
    *,
    chain: tuple = (),
    kind: str = "tls",
    max_version: str | None = None,
    **leaf_options,
) -> Case:
    """Issue a leaf under ``issuer`` and write it with ``chain`` after it."""
    leaf = pki.make_leaf(issuer, not_before=span[0], not_after=span[1], **leaf_options)
    paths = pki.write_leaf(folder, name, leaf, *chain)
    return Case(
        name,
        kind=kind,
        chain=str(paths["chain"]),
        key=str(paths["key"]),
        max_version=max_version,
    )


def self_signed_case(folder: Path, name: str, span: tuple) -> Case:
    """A self-signed leaf, as a server set up without a CA has."""
    leaf = pki.make_self_signed(not_before=span[0], not_after=span[1])
    paths = pki.write_leaf(folder, name, leaf)
    return Case(name, chain=str(paths["chain"]), key=str(paths["key"]))


def sha1_case(folder: Path, name: str, authority: Authority, span: tuple) -> Case:
    """A leaf signed by the lab intermediate with SHA-1, made by the openssl tool."""
    unsigned = pki.make_self_signed(
        not_before=span[0], not_after=span[1], key_kind="rsa"
    )
    source = pki.write_certs(folder / f"{name}-self.pem", unsigned.cert)
    signed = folder / f"{name}.crt"
    subprocess.run(
        [
            "openssl",
            "x509",
            "-in",
            str(source),
            "-CA",
            str(authority.intermediate_file),
            "-CAkey",
            str(authority.intermediate_key),
            "-sha1",
            "-preserve_dates",
            "-out",
            str(signed),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    chain = folder / f"{name}-chain.pem"
    chain.write_bytes(signed.read_bytes() + authority.intermediate_file.read_bytes())
    key = pki.write_key(folder / f"{name}.key", unsigned.key)
    return Case(name, chain=str(chain), key=str(key))


# Cases of plain TLS whose leaf the lab intermediate issues: name, days left,
# then the options of ``leaf_case``.
ISSUED = [
    ("valid", 90, {}),
    ("expiring_5", 5, {}),
    ("expiring_20", 20, {}),
    ("expired", -2, {}),
    ("wrong_host", 80, {"dns_names": ("wrong.example.org",), "ip_addresses": ()}),
    ("rsa1024", 65, {"key_kind": "rsa1024"}),
    ("tls11", 45, {"max_version": "TLSv1_1"}),
    ("smtp", 40, {"kind": "smtp"}),
    ("postgres", 35, {"kind": "postgres"}),
]
# Cases that serve no certificate at all.
SERVICES = [
    Case("silent", kind="silent"),
    Case("refused", kind="refused"),
    Case("plain", kind="plain"),
    Case("smtp_without_starttls", kind="smtp_plain"),
    Case("postgres_without_tls", kind="postgres_plain"),
]


def make_cases(folder: Path, now: datetime | None = None) -> tuple:
    """Issue every case's certificates; return ``(authority, {name: case})``."""
    now = now or pki.utc_now()
    folder.mkdir(parents=True, exist_ok=True)
    ca = make_authority(folder)
    chain = (ca.intermediate.cert,)
    cases = [
        leaf_case(folder, name, ca.intermediate, lifetime(days, now), chain=chain, **o)
        for name, days, o in ISSUED
    ]
    cases += _special_cases(folder, ca, now)
    cases += [Case(case.name, kind=case.kind) for case in SERVICES]
    return ca, {case.name: case for case in cases}


def _special_cases(folder: Path, ca: Authority, now: datetime) -> list:
    """Cases with another issuer, chain, validity start or signature hash."""
    short_inter = pki.make_intermediate_ca(
        ca.root,
        common_name="TRM Lab Short Intermediate CA",
        not_after=lifetime(4, now)[1],
    )
    future = (now + timedelta(days=3), now + timedelta(days=60) + SLACK)
    return [
        leaf_case(
            folder,
            "not_yet_valid",
            ca.intermediate,
            future,
            chain=(ca.intermediate.cert,),
        ),
        self_signed_case(folder, "self_signed", lifetime(70, now)),
        leaf_case(folder, "missing_intermediate", ca.intermediate, lifetime(75, now)),
        leaf_case(
            folder,
            "expiring_intermediate",
            short_inter,
            lifetime(85, now),
            chain=(short_inter.cert,),
        ),
        sha1_case(folder, "sha1", ca, lifetime(50, now)),
    ]


def make_fleet(folder: Path, count: int, now: datetime | None = None) -> tuple:
    """``count`` valid endpoints whose leaves expire 1, 2, ... ``count`` days out."""
    now = now or pki.utc_now()
    folder.mkdir(parents=True, exist_ok=True)
    ca = make_authority(folder)
    cases = {
        f"ep{days:03d}": leaf_case(
            folder,
            f"ep{days:03d}",
            ca.intermediate,
            lifetime(days, now),
            chain=(ca.intermediate.cert,),
        )
        for days in range(1, count + 1)
    }
    return ca, cases


# Starting and stopping


@contextlib.contextmanager
def running(state_dir: Path, cases: dict) -> Iterator[dict]:
    """Serve ``cases`` from one process while the block runs; yield them."""
    ctx = LabContext(state_dir)
    taken: set = set()
    for case in cases.values():
        # The system may hand out a port again once it is closed; keep them apart.
        while not case.port or case.port in taken:
            case.port = free_port()
        taken.add(case.port)
    config = ctx.path("tls-cases.json")
    served = [asdict(case) for case in cases.values() if case.kind != "refused"]
    config.write_text(json.dumps({"endpoints": served}))
    pid = ctx.spawn_python(
        "tls-cases", "tests.integration.tls_servers", "--config", str(config)
    )
    try:
        for case in cases.values():
            if case.kind != "refused":
                wait_for_port(case.port, pid=pid)
        yield cases
    finally:
        stop_pid(pid)


# The server process


def server_context(case: dict) -> ssl.SSLContext:
    """A server context for ``case``; weak keys and old versions allowed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    if case.get("max_version"):
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        context.maximum_version = ssl.TLSVersion[case["max_version"]]
    context.load_cert_chain(case["chain"], case["key"])
    return context


def handle(conn: socket.socket, case: dict, context: ssl.SSLContext | None) -> None:
    """Serve one connection the way the case's kind does."""
    conn.settimeout(HANDSHAKE_TIMEOUT)
    with contextlib.suppress(OSError), conn:
        kind = case["kind"]
        if kind == "plain":
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
        elif kind in ("smtp", "smtp_plain"):
            _smtp(conn, context if kind == "smtp" else None)
        elif kind in ("postgres", "postgres_plain"):
            _postgres(conn, context if kind == "postgres" else None)
        elif kind == "tls":
            _tls(conn, context)


def _tls(conn: socket.socket, context: ssl.SSLContext) -> None:
    with context.wrap_socket(conn, server_side=True) as tls:
        tls.recv(1024)


def _smtp(conn: socket.socket, context: ssl.SSLContext | None) -> None:
    stream = conn.makefile("rb")
    conn.sendall(b"220 localhost ESMTP test server\r\n")
    for raw in stream:
        command = raw.strip().upper()
        if command.startswith(b"EHLO"):
            offer = b"250-STARTTLS\r\n" if context else b""
            conn.sendall(
                b"250-localhost\r\n250-SIZE 10240000\r\n" + offer + b"250 HELP\r\n"
            )
        elif command == b"STARTTLS" and context:
            conn.sendall(b"220 2.0.0 Ready to start TLS\r\n")
            _tls(conn, context)
            return
        elif command == b"QUIT":
            conn.sendall(b"221 2.0.0 Bye\r\n")
            return
        else:
            conn.sendall(b"502 5.5.1 Command not implemented\r\n")


def _postgres(conn: socket.socket, context: ssl.SSLContext | None) -> None:
    request = conn.recv(8)
    if len(request) != 8 or struct.unpack("!II", request)[1] != POSTGRES_SSL_CODE:
        return
    conn.sendall(b"S" if context else b"N")
    if context:
        _tls(conn, context)


def serve(cases: list) -> None:
    """Accept on every case's port until SIGTERM; one thread per connection."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_unused: stop.set())
    selector = selectors.DefaultSelector()
    for case in cases:
        listener = socket.create_server((LOOPBACK, case["port"]), backlog=128)
        context = server_context(case) if case["kind"] in TLS_KINDS else None
        selector.register(listener, selectors.EVENT_READ, (case, context))
    held = []  # the silent port's connections, open and unanswered until exit
    while not stop.is_set():
        for key, _events in selector.select(timeout=0.2):
            conn, _address = key.fileobj.accept()
            case, context = key.data
            if case["kind"] == "silent":
                held.append(conn)
                continue
            threading.Thread(
                target=handle, args=(conn, case, context), daemon=True
            ).start()


def main(argv: list | None = None) -> int:
    """Serve the endpoints of a configuration file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path)
    args = parser.parse_args(argv)
    serve(json.loads(args.config.read_text())["endpoints"])
    return 0


if __name__ == "__main__":
    os.umask(0o077)
    sys.exit(main())
