"""Lab TLS server: one process, one port per certificate chain, a tiny HTTP answer.

Run as ``python -m lab.tls_server --config FILE``; the JSON file lists
``{"host": ..., "handshake_timeout": s, "endpoints": [{"name", "port", "chain",
"key"}]}``. SIGTERM stops every listener and exits with status 0.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import socketserver
import ssl
import sys
import threading
from pathlib import Path

HANDSHAKE_TIMEOUT = 5.0
MAX_REQUEST_BYTES = 8192


def server_context(chain: str, key: str) -> ssl.SSLContext:
    """Build a server-side TLS context presenting ``chain`` (leaf first)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(chain, key)
    return context


class TLSThreadingMixIn(socketserver.ThreadingMixIn):
    """Do the TLS handshake in the connection's own thread, under a timeout.

    Wrapping the listening socket instead would run each handshake in the accept
    loop, where one silent client would hold up every other.
    """

    daemon_threads = True
    allow_reuse_address = True
    ssl_context: ssl.SSLContext
    handshake_timeout: float = HANDSHAKE_TIMEOUT

    def finish_request(self, request: socket.socket, client_address) -> None:
        """Handshake, then let the handler serve the encrypted connection."""
        request.settimeout(self.handshake_timeout)
        try:
            conn = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            # A client that rejects our certificate is part of the lab's purpose.
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        except (ssl.SSLError, OSError):
            pass
        finally:
            conn.close()


class PlainAnswer(socketserver.BaseRequestHandler):
    """Read one HTTP request head and answer ``200 OK`` with the endpoint's name."""

    def handle(self) -> None:
        """Answer whatever arrives; a client that only handshakes gets nothing."""
        if not _read_head(self.request):
            return
        body = f"{self.server.endpoint_name} ok\n".encode()
        head = (
            "HTTP/1.1 200 OK\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        self.request.sendall(head.encode() + body)


def _read_head(conn: socket.socket) -> bytes:
    """Read until the end of the request head, a closed connection or the limit."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < MAX_REQUEST_BYTES:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


class EndpointServer(TLSThreadingMixIn, socketserver.TCPServer):
    """One TLS listener with its own certificate chain."""

    def __init__(self, endpoint: dict, host: str, *, handshake_timeout: float) -> None:
        self.endpoint_name = endpoint["name"]
        self.ssl_context = server_context(endpoint["chain"], endpoint["key"])
        self.handshake_timeout = handshake_timeout
        super().__init__((host, endpoint["port"]), PlainAnswer)


def _serving_thread(server: socketserver.BaseServer) -> threading.Thread:
    """A daemon thread serving ``server``; a short poll makes shutdown quick."""
    return threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    )


def serve_until_signalled(servers: list[socketserver.BaseServer]) -> None:
    """Serve every server in a thread until SIGTERM or SIGINT, then shut down."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    threads = [_serving_thread(server) for server in servers]
    for thread in threads:
        thread.start()

    # A timed wait keeps the main thread responsive to signals.
    while not stop.wait(0.5):
        pass
    for server in servers:
        server.shutdown()
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    """Start one TLS listener per configured endpoint and serve until stopped."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path)
    args = parser.parse_args(argv)
    config = json.loads(args.config.read_text())
    timeout = float(config.get("handshake_timeout", HANDSHAKE_TIMEOUT))
    servers = [
        EndpointServer(endpoint, config["host"], handshake_timeout=timeout)
        for endpoint in config["endpoints"]
    ]
    serve_until_signalled(servers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
