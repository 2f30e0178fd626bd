"""Lab component ``tls``: HTTPS endpoints with valid, expiring and expired certificates.

The same lab CA also issues the certificate of the lab application, so that every
TLS client in the lab trusts one root file.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path

from lab import pki
from lab.core import LOOPBACK, LabContext, free_port, wait_for_port

SERVER_NAME = "localhost"

# Half a day of slack on top of the whole-day figure keeps ``days_remaining``
# (whole days, rounded down) at 90, 8 and -2 for twelve hours after the lab starts.
SLACK = timedelta(hours=12)
LIFETIMES = {
    "valid": timedelta(days=90) + SLACK,
    "expiring": timedelta(days=8) + SLACK,
    "expired": timedelta(days=-2) + SLACK,
}
LEAF_SPAN = timedelta(days=90)
APP_LIFETIME = timedelta(days=90) + SLACK


def days_remaining(not_after: datetime, now: datetime) -> int:
    """Whole days until ``not_after``, rounded down (negative once expired)."""
    return (not_after - now).days


def _issue(issuer: pki.Issued, lifetime: timedelta, now: datetime) -> pki.Issued:
    """Issue a localhost leaf that ends ``lifetime`` after ``now``."""
    not_after = now + lifetime
    # Backdated by a day at least, so clock skew never makes a leaf "not yet valid".
    not_before = min(now - timedelta(days=1), not_after - LEAF_SPAN)
    return pki.make_leaf(issuer, not_before=not_before, not_after=not_after)


def _make_authority(folder: Path) -> tuple[pki.Issued, pki.Issued, Path]:
    """Make the root and intermediate CAs and write the root (the trust anchor)."""
    root = pki.make_root_ca()
    intermediate = pki.make_intermediate_ca(root)
    ca_file = pki.write_certs(folder / "ca.pem", root.cert)
    pki.write_certs(folder / "intermediate.pem", intermediate.cert)
    return root, intermediate, ca_file


def _certificate_facts(leaf: pki.Issued, now: datetime) -> dict:
    """Describe a leaf the way checks and tests need it."""
    not_after = leaf.cert.not_valid_after_utc
    return {
        "server_name": SERVER_NAME,
        "not_after": not_after.isoformat(),
        "days_remaining": days_remaining(not_after, now),
    }


def _write_config(ctx: LabContext, endpoints: list[dict]) -> Path:
    """Write the server's configuration file, readable by its owner only."""
    path = ctx.path("tls", "server.json")
    served = [{k: e[k] for k in ("name", "port", "chain", "key")} for e in endpoints]
    path.write_text(json.dumps({"host": LOOPBACK, "endpoints": served}, indent=2))
    os.chmod(path, 0o600)
    return path


def _issue_endpoints(folder: Path, ca: pki.Issued, now: datetime) -> list[dict]:
    """Issue and write one leaf per endpoint; return the server's endpoint list."""
    endpoints = []
    for name, lifetime in LIFETIMES.items():
        leaf = _issue(ca, lifetime, now)
        paths = pki.write_leaf(folder, name, leaf, ca.cert)
        endpoint = {"name": name, "port": free_port(), **_strings(paths)}
        endpoints.append({**endpoint, "facts": _certificate_facts(leaf, now)})
    return endpoints


def _strings(paths: dict[str, Path]) -> dict[str, str]:
    """Turn the written file paths into JSON-friendly strings."""
    return {key: str(value) for key, value in paths.items()}


def start(ctx: LabContext, state: dict) -> dict:
    """Issue the lab certificates, start the TLS server and return its record."""
    folder = ctx.path("tls", "ca.pem").parent
    now = pki.utc_now()
    _unused, intermediate, ca_file = _make_authority(folder)
    endpoints = _issue_endpoints(folder, intermediate, now)
    app_leaf = _issue(intermediate, APP_LIFETIME, now)
    app = pki.write_leaf(folder, "app", app_leaf, intermediate.cert)

    config = _write_config(ctx, endpoints)
    pid = ctx.spawn_python("tls", "lab.tls_server", "--config", str(config))
    for endpoint in endpoints:
        wait_for_port(endpoint["port"], pid=pid)
    return {
        "pids": [pid],
        "host": LOOPBACK,
        "ca_file": str(ca_file),
        "endpoints": {e["name"]: {"port": e["port"], **e["facts"]} for e in endpoints},
        "files": {e["name"]: e["cert"] for e in endpoints},
        "app_cert": {"cert": str(app["chain"]), "key": str(app["key"])},
    }
