"""The certificate check when the chain a server sends cannot be read.

Older Pythons give no access to the served chain. The check must then say so and
judge only the leaf, never guess at intermediates. A loopback TLS server in a
thread serves a leaf with an intermediate that expires in three days; reading
the chain is made to fail by replacing ``tls.peer_chain``.
"""

from __future__ import annotations

import socket
import ssl
import threading
from datetime import timedelta

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils import tls
from ansible_collections.trm.maintenance.plugins.module_utils.tls_expiry import (
    run_tls_expiry,
)
from lab import pki

NOW = pki.utc_now()
LEAF_DAYS = 60
INTERMEDIATE_DAYS = 3


class ThreadedTLSServer:
    """Answer TLS handshakes on a loopback port until stopped."""

    def __init__(self, chain_file: str, key_file: str) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(chain_file, key_file)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _peer = self.listener.accept()
            except OSError:
                continue
            conn.settimeout(2)
            try:
                with self.context.wrap_socket(conn, server_side=True) as tls_conn:
                    tls_conn.recv(1)
            except OSError:
                conn.close()

    def stop(self) -> None:
        """Stop accepting and close the port."""
        self.stopping.set()
        self.thread.join(5)
        self.listener.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chain")
    root = pki.make_root_ca()
    short = pki.make_intermediate_ca(
        root,
        not_before=NOW - timedelta(days=30),
        not_after=NOW + timedelta(days=INTERMEDIATE_DAYS, hours=12),
    )
    leaf = pki.make_leaf(
        short,
        not_before=NOW - timedelta(days=1),
        not_after=NOW + timedelta(days=LEAF_DAYS, hours=12),
    )
    paths = pki.write_leaf(folder, "leaf", leaf, short.cert)
    ca_file = pki.write_certs(folder / "ca.pem", root.cert)
    running = ThreadedTLSServer(str(paths["chain"]), str(paths["key"]))
    yield running, str(ca_file)
    running.stop()


def _check(server) -> dict:
    running, ca_file = server
    endpoint = {"name": "api", "host": "127.0.0.1", "port": running.port}
    return run_tls_expiry(
        {"endpoints": [endpoint], "ca_path": ca_file, "timeout": 5.0},
        now=NOW,
    )


def test_the_served_chain_is_read_and_its_expiring_intermediate_judged(server):
    result = _check(server)
    (record,) = result["certificates"]
    assert record["chain_available"] is True
    assert record["chain_note"] is None
    assert [c["common_name"] for c in record["chain"]] == ["TRM Lab Intermediate CA"]
    assert [(c["aspect"], c["status"]) for c in result["checks"]] == [
        ("expiry", "ok"),
        ("intermediate", "critical"),
    ]
    assert record["days_to_first_expiry"] == INTERMEDIATE_DAYS
    assert "warnings" not in result


def test_an_unreadable_chain_is_reported_and_only_the_leaf_judged(server, monkeypatch):
    monkeypatch.setattr(tls, "peer_chain", lambda _tls, _method: None)
    result = _check(server)
    (record,) = result["certificates"]
    assert record["chain_available"] is False
    assert record["chain"] == []
    assert record["chain_note"].endswith("no intermediate certificate was judged")
    assert "only the server's own certificate was read" in record["chain_note"]
    assert record["chain_verified"] is True
    assert record["trust_anchor"] is None
    assert [(c["aspect"], c["status"]) for c in result["checks"]] == [("expiry", "ok")]
    assert result["status"] == "ok"
    assert record["days_remaining"] == LEAF_DAYS
    assert record["days_to_first_expiry"] == LEAF_DAYS
    assert result["warnings"] == [
        f"The chain served by api could not be read: {record['chain_note']}"
    ]
