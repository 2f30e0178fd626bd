# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HTTP client of the check modules: one request, our settings, our errors."""

from __future__ import annotations

import http.client
import json
import math
import os
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable
from urllib.error import HTTPError, URLError
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import open_url

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    MaintenanceError,
    OptionError,
)

REDACTED = "********"
HTTP_AGENT = "trm.maintenance"
DEFAULT_MAX_BODY = 1024 * 1024
EXCERPT_CHARS = 200
SCHEMES = ("http", "https")

# Query parameters whose names contain one of these words carry secrets often
# enough (API keys, signed URLs, session tokens) that their values are hidden.
SECRET_QUERY_WORDS = (
    "token",
    "secret",
    "password",
    "passwd",
    "key",
    "signature",
    "auth",
    "credential",
    "session",
)
SECRET_HEADER_WORDS = ("authorization", "token", "secret", "key", "cookie", "auth")

HTTP_ARGUMENT_SPEC = {
    "validate_certs": {"type": "bool", "default": True},
    "ca_path": {"type": "path"},
    "timeout": {"type": "float", "default": 10.0},
    "headers": {"type": "dict", "default": {}},
    "url_username": {"type": "str"},
    "url_password": {"type": "str", "no_log": True},
    "force_basic_auth": {"type": "bool", "default": False},
}


class RequestError(MaintenanceError):
    """A request got no usable answer; the message says why, without secrets."""

    kind = "connection"

    def __init__(self, url: str, message: str, *, elapsed: float | None = None):
        self.url = redact_url(url)
        self.elapsed = elapsed
        super().__init__(message)


class ConnectionRefused(RequestError):
    """Nothing listens on the server's port."""

    kind = "connection_refused"


class HostNotFound(RequestError):
    """The server's host name does not resolve."""

    kind = "dns"


class RequestTimeout(RequestError):
    """The server did not answer within the timeout."""

    kind = "timeout"

    def __init__(self, url: str, message: str, *, timeout: float, **kwargs: Any):
        self.timeout = timeout
        super().__init__(url, message, **kwargs)


class TLSError(RequestError):
    """The TLS handshake failed, most often because the certificate is not trusted."""

    kind = "tls"

    def __init__(self, url: str, message: str, *, verification: bool, **kwargs: Any):
        self.verification = verification
        super().__init__(url, message, **kwargs)


class InvalidResponse(RequestError):
    """The server answered with something that is not what the protocol promises."""

    kind = "invalid_response"


class HTTPStatusError(RequestError):
    """The server answered with an HTTP status that the caller cannot use."""

    kind = "http_status"

    def __init__(self, response: Response) -> None:
        self.status = response.status
        self.body_excerpt = response.excerpt()
        text = f"HTTP {response.status} {response.reason}".rstrip()
        detail = f": {self.body_excerpt}" if self.body_excerpt else ""
        super().__init__(
            response.url,
            f"{response.url} answered {text}{detail}",
            elapsed=response.elapsed,
        )


@dataclass(frozen=True)
class HttpSettings:
    """How to reach a server: timeout, TLS verification, headers and credentials."""

    timeout: float = 10.0
    validate_certs: bool = True
    ca_path: str | None = None
    headers: dict = field(default_factory=dict)
    url_username: str | None = None
    # Kept out of repr() so that no debugging print or traceback shows them.
    url_password: str | None = field(default=None, repr=False)
    force_basic_auth: bool = False
    bearer_token: str | None = field(default=None, repr=False)

    def request_headers(self, extra: dict | None = None) -> dict:
        """Return the headers of a request: ours, the caller's, then the token."""
        headers = {"Accept": "application/json, */*;q=0.5", **self.headers}
        headers.update(extra or {})
        if self.bearer_token:
            headers["Authorization"] = f"Bearer {self.bearer_token}"
        return {str(name): str(value) for name, value in headers.items()}


@dataclass(frozen=True)
class Response:
    """An HTTP answer of any status, with its body and how long it took."""

    url: str
    status: int
    reason: str
    headers: dict
    body: bytes
    elapsed: float
    truncated: bool = False

    @property
    def ok(self) -> bool:
        """Tell whether the status is a success (2xx)."""
        return 200 <= self.status < 300

    def text(self) -> str:
        """Return the body decoded as UTF-8, with undecodable bytes replaced."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """Return the body parsed as JSON, or raise ``InvalidResponse``."""
        if self.truncated:
            raise InvalidResponse(self.url, f"{self.url} answered a body too large")
        try:
            return json.loads(self.text())
        except ValueError:
            raise InvalidResponse(
                self.url, f"{self.url} did not answer JSON: {self.excerpt()!r}"
            ) from None

    def excerpt(self, limit: int = EXCERPT_CHARS) -> str:
        """Return the start of the body on one line, for messages."""
        text = " ".join(self.text().split())
        return text if len(text) <= limit else f"{text[:limit]}..."

    def raise_for_status(self) -> None:
        """Raise ``HTTPStatusError`` unless the status is a success."""
        if not self.ok:
            raise HTTPStatusError(self)


def settings_from_params(params: dict) -> HttpSettings:
    """Build and check the HTTP settings from module options."""
    timeout = positive_number(params.get("timeout"), "timeout")
    ca_path = params.get("ca_path")
    if ca_path and not os.path.isfile(ca_path):
        raise OptionError("ca_path", ca_path, "is not a readable file")
    return HttpSettings(
        timeout=timeout,
        validate_certs=params.get("validate_certs", True),
        ca_path=ca_path,
        headers=dict(params.get("headers") or {}),
        url_username=params.get("url_username"),
        url_password=params.get("url_password"),
        force_basic_auth=bool(params.get("force_basic_auth")),
        bearer_token=params.get("bearer_token"),
    )


def positive_number(value: Any, option: str) -> float:
    """Return ``value`` as a float above zero, or raise OptionError."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise OptionError(option, value, "must be a number of seconds") from None
    if isinstance(value, bool) or not math.isfinite(number) or number <= 0:
        raise OptionError(option, value, "must be a number of seconds above zero")
    return number


def check_url(url: Any, option: str) -> str:
    """Return ``url`` if it is an http(s) URL with a host, or raise OptionError."""
    if not isinstance(url, str) or not url.strip():
        raise OptionError(option, url, "must be an http:// or https:// URL")
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError:
        raise OptionError(option, redact_url(url), "is not a valid URL") from None
    if parts.scheme.lower() not in SCHEMES or not host:
        raise OptionError(option, redact_url(url), "must be an http:// or https:// URL")
    return url.strip()


def redact_url(url: str) -> str:
    """Return ``url`` without user info and with secret-looking query values hidden."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(_secret_name(pair[0], SECRET_QUERY_WORDS) for pair in pairs):
        query = urlencode(
            [
                (name, REDACTED if _secret_name(name, SECRET_QUERY_WORDS) else value)
                for name, value in pairs
            ],
            safe="*",
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _secret_name(name: str, words: Iterable[str]) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in words)


def url_secrets(url: str) -> list[str]:
    """Return the secrets written into ``url``: its password and secret query values."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return []
    found = [unquote(password), password] if password else []
    found += [
        value
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if value and _secret_name(name, SECRET_QUERY_WORDS)
    ]
    return found


def header_secrets(headers: dict | None) -> list[str]:
    """Return the values of headers that carry credentials (Authorization, tokens)."""
    found = []
    for name, value in (headers or {}).items():
        if value and _secret_name(str(name), SECRET_HEADER_WORDS):
            text = str(value)
            # Hide the credential on its own too, not only "Bearer <credential>".
            found += [text, text.split(" ", 1)[-1]]
    return found


def host_port(url: str) -> str:
    """Return ``host:port`` of ``url``, with the scheme's default port."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    host = parts.hostname or ""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def request(
    url: str,
    settings: HttpSettings,
    *,
    method: str = "GET",
    headers: dict | None = None,
    max_body: int = DEFAULT_MAX_BODY,
) -> Response:
    """Send one request and return the answer, whatever its HTTP status.

    Raises a ``RequestError`` subclass when no HTTP answer arrives: connection
    refused, unknown host, timeout, TLS failure or a broken answer.
    """
    started = time.monotonic()
    try:
        return _exchange(url, settings, method, headers, max_body, started)
    except (URLError, OSError, http.client.HTTPException, UrlsConnectionError) as error:
        elapsed = time.monotonic() - started
        raise translate_error(
            error, url, timeout=settings.timeout, elapsed=elapsed
        ) from None


def _exchange(
    url: str,
    settings: HttpSettings,
    method: str,
    headers: dict | None,
    max_body: int,
    started: float,
) -> Response:
    """Open the URL and read the answer, turning HTTP error statuses into answers."""
    try:
        answer = _open(url, settings, method, headers)
    except HTTPError as error:
        answer = error
    try:
        body, truncated = _read(answer, max_body)
    finally:
        answer.close()
    return Response(
        url=redact_url(url),
        status=int(answer.getcode() or 0),
        reason=str(getattr(answer, "reason", "") or ""),
        headers={k.lower(): v for k, v in (answer.headers or {}).items()},
        body=body,
        elapsed=time.monotonic() - started,
        truncated=truncated,
    )


def _open(url: str, settings: HttpSettings, method: str, headers: dict | None):
    """Call ``open_url`` with the settings."""
    return open_url(
        url,
        method=method,
        headers=settings.request_headers(headers),
        timeout=settings.timeout,
        validate_certs=settings.validate_certs,
        ca_path=settings.ca_path,
        url_username=settings.url_username,
        url_password=settings.url_password,
        force_basic_auth=settings.force_basic_auth,
        http_agent=HTTP_AGENT,
    )


def _read(answer: Any, max_body: int) -> tuple[bytes, bool]:
    """Read at most ``max_body`` bytes; tell whether the body was longer."""
    if getattr(answer, "fp", True) is None:
        return b"", False
    body = answer.read(max_body + 1)
    return body[:max_body], len(body) > max_body


def translate_error(
    error: BaseException, url: str, *, timeout: float, elapsed: float | None = None
) -> RequestError:
    """Turn what urllib raised into one of our errors, worded for a person."""
    reason = error.reason if isinstance(error, URLError) else error
    where = host_port(url)
    if isinstance(reason, (socket.timeout, TimeoutError)):
        message = f"no answer from {where} within the timeout of {timeout:g} s"
        return RequestTimeout(url, message, timeout=timeout, elapsed=elapsed)
    if isinstance(reason, ConnectionRefusedError):
        return ConnectionRefused(url, f"connection refused by {where}", elapsed=elapsed)
    if isinstance(reason, socket.gaierror):
        host = urlsplit(url).hostname
        message = f"host name {host} could not be resolved ({reason.strerror})"
        return HostNotFound(url, message, elapsed=elapsed)
    if isinstance(reason, ssl.SSLError):
        return _tls_error(reason, url, where, elapsed)
    message = f"connection to {where} failed: {_reason_text(reason)}"
    if isinstance(reason, http.client.HTTPException):
        return InvalidResponse(url, message, elapsed=elapsed)
    return RequestError(url, message, elapsed=elapsed)


def _tls_error(
    reason: ssl.SSLError, url: str, where: str, elapsed: float | None
) -> TLSError:
    """Word a TLS failure; a verification failure says how to fix it."""
    if isinstance(reason, ssl.SSLCertVerificationError):
        detail = getattr(reason, "verify_message", None) or _ssl_reason(reason)
        message = f"TLS certificate verification failed for {where}: {detail}"
        return TLSError(url, message, verification=True, elapsed=elapsed)
    detail = _ssl_reason(reason)
    message = f"TLS handshake with {where} failed: {detail}"
    return TLSError(url, message, verification=False, elapsed=elapsed)


def _ssl_reason(error: ssl.SSLError) -> str:
    """Return the short reason of a TLS error, or its text."""
    return getattr(error, "reason", None) or str(error)


def _reason_text(reason: Any) -> str:
    """Return the readable part of an OS error or a plain reason."""
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    text = str(reason)
    return text or type(reason).__name__


def hide_secrets(module: Any, values: Iterable[str]) -> None:
    """Have Ansible mask ``values`` everywhere in the module's output.

    Options that are ``no_log`` are masked by Ansible already; passwords written
    into URLs and credentials in header values are not, so they are added here.
    """
    module.no_log_values.update(value for value in values if value)


def run_concurrently(
    function: Callable[[Any], Any], items: list, *, max_workers: Any
) -> list:
    """Call ``function`` on every item in a thread pool; results keep the order."""
    if isinstance(max_workers, bool) or not isinstance(max_workers, int):
        raise OptionError("max_workers", max_workers, "must be a whole number from 1")
    if max_workers < 1:
        raise OptionError("max_workers", max_workers, "must be a whole number from 1")
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(items)))) as pool:
        return list(pool.map(function, items))
