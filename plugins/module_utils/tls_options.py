# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of the certificate check: endpoints, files and expiry thresholds."""

from __future__ import annotations

import glob
import ipaddress
import math
import os
from dataclasses import dataclass
from typing import Any

from ansible_collections.trm.maintenance.plugins.module_utils import tls
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    BELOW,
    Threshold,
)
from ansible_collections.trm.maintenance.plugins.module_utils.tls_certs import (
    CertificateFacts,
)

DEFAULT_PORT = 443
DEFAULT_WARNING_DAYS = 30
DEFAULT_CRITICAL_DAYS = 7
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_WORKERS = 32
ENDPOINT_KEYS = {
    "name",
    "host",
    "port",
    "server_name",
    "starttls",
    "timeout",
    "ca_path",
    "expected_file",
    "expected_pem",
}
FILE_KEYS = {"path", "name", "server_name"}


@dataclass(frozen=True)
class Policy:
    """When an expiry is a warning or critical: days, or a share of the lifetime."""

    warning_days: float = DEFAULT_WARNING_DAYS
    critical_days: float = DEFAULT_CRITICAL_DAYS
    warning_pct: float | None = None
    critical_pct: float | None = None

    def threshold(self, cert: CertificateFacts) -> Threshold:
        """The bounds for ``cert``: the days, lowered by the lifetime shares."""
        lifetime = max(cert.lifetime_days(), 0.0)
        warning = _lowered(self.warning_days, self.warning_pct, lifetime)
        critical = min(
            _lowered(self.critical_days, self.critical_pct, lifetime), warning
        )
        return Threshold(warning=warning, critical=critical, direction=BELOW)


def _lowered(days: float, pct: float | None, lifetime: float) -> float:
    if not pct:
        return days
    share = round(lifetime * pct / 100, 2)
    return min(days, share)


@dataclass(frozen=True)
class EndpointSpec:
    """One endpoint to connect to, and what to compare its certificate with."""

    name: str
    target: tls.Target
    hostname: str
    ca_path: str | None = None
    expected_file: str | None = None
    expected_pem: str | None = None
    kind: str = "endpoint"

    @property
    def timeout(self) -> float:
        """The endpoint's timeout in seconds."""
        return self.target.timeout


@dataclass(frozen=True)
class FileSpec:
    """One certificate file (or bundle) on disk."""

    name: str
    path: str
    hostname: str | None = None
    missing: str | None = None
    kind: str = "file"
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class Options:
    """Every option of the check, read and validated."""

    targets: list
    policy: Policy
    max_workers: int


def parse_options(params: dict) -> Options:
    """Read and check the module options, or raise ``OptionError``."""
    timeout = _positive(params.get("timeout", DEFAULT_TIMEOUT), "timeout")
    ca_path = _ca_path(params.get("ca_path"), "ca_path")
    endpoints = [
        parse_endpoint(raw, f"endpoints[{index}]", timeout=timeout, ca_path=ca_path)
        for index, raw in enumerate(params.get("endpoints") or [])
    ]
    files = [
        spec
        for index, raw in enumerate(params.get("files") or [])
        for spec in parse_file(raw, f"files[{index}]")
    ]
    targets = endpoints + files
    if not targets and not (params.get("files") or params.get("endpoints")):
        raise OptionError("endpoints", [], "or 'files' must list at least one entry")
    _reject_duplicate_names(targets)
    return Options(targets, parse_policy(params), _max_workers(params))


def parse_policy(params: dict) -> Policy:
    """Read the expiry thresholds."""
    warning = _days(params.get("warning_days", DEFAULT_WARNING_DAYS), "warning_days")
    critical = _days(
        params.get("critical_days", DEFAULT_CRITICAL_DAYS), "critical_days"
    )
    if critical > warning:
        raise OptionError(
            "critical_days", critical, f"must not exceed warning_days ({warning:g})"
        )
    return Policy(
        warning_days=warning,
        critical_days=critical,
        warning_pct=_pct(params.get("warning_lifetime_pct"), "warning_lifetime_pct"),
        critical_pct=_pct(params.get("critical_lifetime_pct"), "critical_lifetime_pct"),
    )


def parse_endpoint(
    raw: Any, option: str, *, timeout: float, ca_path: str | None
) -> EndpointSpec:
    """Read one endpoint: ``host:port`` or a mapping."""
    if isinstance(raw, str):
        raw = {"host": raw}
    if not isinstance(raw, dict):
        raise OptionError(option, raw, "must be 'host:port' or a mapping with host")
    unknown_keys = sorted(set(raw) - ENDPOINT_KEYS)
    if unknown_keys:
        raise OptionError(
            option,
            raw,
            f"has unknown keys {unknown_keys}; allowed: {sorted(ENDPOINT_KEYS)}",
        )
    host, port = _host_port(raw, option)
    server_name = _text(raw.get("server_name"), f"{option}.server_name")
    target = tls.Target(
        host=host,
        port=port,
        server_name=server_name or (None if _is_ip(host) else host),
        starttls=_starttls(raw.get("starttls"), f"{option}.starttls"),
        timeout=_positive(raw.get("timeout", timeout), f"{option}.timeout"),
    )
    return EndpointSpec(
        name=_text(raw.get("name"), f"{option}.name") or target.address,
        target=target,
        hostname=server_name or host,
        ca_path=_ca_path(raw.get("ca_path"), f"{option}.ca_path") or ca_path,
        expected_file=_text(raw.get("expected_file"), f"{option}.expected_file"),
        expected_pem=_text(raw.get("expected_pem"), f"{option}.expected_pem"),
    )


def _host_port(raw: dict, option: str) -> tuple:
    host = _text(raw.get("host"), f"{option}.host")
    if not host:
        raise OptionError(f"{option}.host", raw.get("host"), "must name a host")
    port = raw.get("port")
    if port is None:
        host, port = split_address(host, f"{option}.host")
    return host, _port(port, f"{option}.port")


def split_address(text: str, option: str) -> tuple:
    """Split ``host:port``, ``[v6]:port``, a bare host or a bare IPv6 address."""
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")) or not host:
            raise OptionError(option, text, "is not a valid [address]:port")
        return host, rest[1:] or DEFAULT_PORT
    if text.count(":") == 1:
        host, _colon, port = text.partition(":")
        return host, port
    if ":" in text and not _is_ip(text):
        raise OptionError(option, text, "must be host:port or [IPv6 address]:port")
    return text, DEFAULT_PORT


def _port(value: Any, option: str) -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or not 0 < int(text) < 65536:
        raise OptionError(option, value, "must be a port number from 1 to 65535")
    return int(text)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _starttls(value: Any, option: str) -> str | None:
    if value in (None, "", "none"):
        return None
    if value not in tls.STARTTLS_PROTOCOLS:
        raise OptionError(option, value, f"must be one of {tls.STARTTLS_PROTOCOLS}")
    return value


def parse_file(raw: Any, option: str) -> list:
    """Read one file entry; a pattern with ``*``, ``?`` or ``[`` gives every match."""
    if isinstance(raw, str):
        raw = {"path": raw}
    if not isinstance(raw, dict):
        raise OptionError(option, raw, "must be a path or a mapping with path")
    unknown_keys = sorted(set(raw) - FILE_KEYS)
    if unknown_keys:
        raise OptionError(
            option,
            raw,
            f"has unknown keys {unknown_keys}; allowed: {sorted(FILE_KEYS)}",
        )
    path = _text(raw.get("path"), f"{option}.path")
    if not path:
        raise OptionError(f"{option}.path", raw.get("path"), "must be a file path")
    hostname = _text(raw.get("server_name"), f"{option}.server_name")
    name = _text(raw.get("name"), f"{option}.name")
    if not glob.has_magic(path):
        return [FileSpec(name=name or path, path=path, hostname=hostname)]
    matches = sorted(glob.glob(os.path.expanduser(path)))
    if not matches:
        return [FileSpec(name=name or path, path=path, missing="no file matches")]
    return [FileSpec(name=match, path=match, hostname=hostname) for match in matches]


def _reject_duplicate_names(targets: list) -> None:
    seen = set()
    for spec in targets:
        if spec.name in seen:
            raise OptionError(
                "endpoints", spec.name, "names an entry twice; give each a unique name"
            )
        seen.add(spec.name)


def _text(value: Any, option: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise OptionError(option, value, "must be a string")
    return str(value).strip() or None


def _positive(value: Any, option: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise OptionError(option, value, "must be a number of seconds") from None
    if isinstance(value, bool) or not math.isfinite(number) or number <= 0:
        raise OptionError(option, value, "must be a number of seconds above zero")
    return number


def _days(value: Any, option: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise OptionError(option, value, "must be a number of days") from None
    if isinstance(value, bool) or not math.isfinite(number) or number < 0:
        raise OptionError(option, value, "must be a number of days, 0 or more")
    return number


def _pct(value: Any, option: str) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise OptionError(option, value, "must be a percentage") from None
    if isinstance(value, bool) or not 0 <= number <= 100:
        raise OptionError(option, value, "must be a percentage from 0 to 100")
    return number or None


def _ca_path(value: Any, option: str) -> str | None:
    if not value:
        return None
    path = os.path.expanduser(str(value))
    if not os.path.exists(path):
        raise OptionError(option, value, "is not an existing file or folder")
    return path


def _max_workers(params: dict) -> int:
    value = params.get("max_workers", DEFAULT_MAX_WORKERS)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptionError("max_workers", value, "must be a whole number from 1")
    return value
