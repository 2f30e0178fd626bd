# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Redis client of the check modules: one connection, our settings, our errors.

Built on redis-py. Every command runs on one connection with the caller's
timeout and without redis-py's retries, so a check never waits longer than it
was told to and never hides a failed attempt behind a silent second one.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import ssl
import time
import traceback
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Iterator
from urllib.parse import unquote, urlsplit

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    MaintenanceError,
    OptionError,
)

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
    from redis.sentinel import MasterNotFoundError, Sentinel
except ImportError:
    HAS_REDIS = False
    REDIS_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    HAS_REDIS = True
    REDIS_IMPORT_ERROR = None

REDACTED = "********"
# Server error texts can be long (MISCONF is a paragraph); messages keep the start.
MAX_ERROR_CHARS = 160
DEFAULT_PORT = 6379
DEFAULT_SENTINEL_PORT = 26379
# redis:// is plain TCP, rediss:// is TLS (the scheme names redis-py and
# redis-cli use).
URL_SCHEMES = {"redis": False, "rediss": True}
BAD_URL = (
    "is not a valid redis:// or rediss:// URL (percent-encode characters such "
    "as / ? # @ in the password)"
)

REDIS_ARGUMENT_SPEC = {
    "login_host": {"type": "str", "default": "localhost"},
    "login_port": {"type": "int", "default": DEFAULT_PORT},
    "login_user": {"type": "str"},
    "login_password": {"type": "str", "no_log": True},
    "db": {"type": "int", "default": 0},
    "url": {"type": "str"},
    "tls": {"type": "bool", "default": False},
    "validate_certs": {"type": "bool", "default": True},
    "ca_certs": {"type": "path"},
    "client_cert_file": {"type": "path"},
    "client_key_file": {"type": "path"},
    "timeout": {"type": "float", "default": 5.0},
    "sentinel_hosts": {"type": "list", "elements": "str"},
    "service_name": {"type": "str"},
    "sentinel_password": {"type": "str", "no_log": True},
}
REDIS_MUTUALLY_EXCLUSIVE = [["url", "sentinel_hosts"]]
# The PEM files of TLS, by option, and what each must hold.
TLS_FILES = {
    "ca_certs": "the CA certificates that signed the server's certificate",
    "client_cert_file": "the client certificate",
    "client_key_file": "the client certificate's private key",
}
REDIS_REQUIRED_TOGETHER = [["sentinel_hosts", "service_name"]]

# What each kind of failure means for a check: the server is down (critical) or
# we could not tell (unknown: our credentials, our trust store, our rights).
DOWN_KINDS = frozenset(
    {"connection_refused", "timeout", "dns", "connection", "loading", "sentinel"}
)


class RedisCallError(MaintenanceError):
    """A connection or command failed; ``kind`` says how, the message says why."""

    def __init__(self, kind: str, message: str, *, command: str | None = None):
        self.kind = kind
        self.command = command
        super().__init__(message)

    @property
    def server_down(self) -> bool:
        """Tell whether the failure means the server does not serve clients."""
        return self.kind in DOWN_KINDS


@dataclass(frozen=True)
class RedisSettings:
    """Where Redis is and how to talk to it; ``password`` is never shown."""

    host: str
    port: int
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    validate_certs: bool = True
    ca_certs: str | None = None
    client_cert_file: str | None = None
    client_key_file: str | None = None
    timeout: float = 5.0
    shown_url: str | None = None

    @property
    def address(self) -> str:
        """``host:port``, with brackets around an IPv6 address."""
        return join_host_port(self.host, self.port)

    def at(self, host: str, port: int) -> RedisSettings:
        """The same settings for another server (a primary named by Sentinel)."""
        return dataclasses.replace(self, host=host, port=port)

    def client_kwargs(self) -> dict:
        """The keyword arguments of ``redis.Redis`` for these settings."""
        kwargs = {
            "host": self.host,
            "port": self.port,
            "db": self.db,
            "username": self.username,
            "password": self.password,
            "socket_timeout": self.timeout,
            "socket_connect_timeout": self.timeout,
            "retry": Retry(NoBackoff(), 0),
            "single_connection_client": True,
        }
        if self.tls:
            kwargs.update(self.tls_kwargs())
        return kwargs

    def tls_kwargs(self) -> dict:
        """The TLS keyword arguments of redis-py's connections."""
        return {
            "ssl": True,
            "ssl_cert_reqs": "required" if self.validate_certs else "none",
            "ssl_check_hostname": self.validate_certs,
            "ssl_ca_certs": self.ca_certs,
            "ssl_certfile": self.client_cert_file,
            "ssl_keyfile": self.client_key_file,
        }


@dataclass(frozen=True)
class SentinelSettings:
    """The Sentinels to ask for the current primary of ``service_name``."""

    hosts: tuple
    service_name: str
    password: str | None = field(default=None, repr=False)

    @property
    def shown(self) -> str:
        """The Sentinel addresses, for messages."""
        return ", ".join(join_host_port(host, port) for host, port in self.hosts)


def join_host_port(host: str, port: int) -> str:
    """Return ``host:port``, with brackets around an IPv6 address."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# Options


def settings_from_params(params: dict) -> RedisSettings:
    """Build and check the connection settings from module options."""
    timeout = params.get("timeout")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise OptionError("timeout", timeout, "must be a number of seconds")
    if not timeout > 0:
        raise OptionError("timeout", timeout, "must be a number of seconds above 0")
    target = _url_target(params) if params.get("url") else _option_target(params)
    files = {option: tls_file(params.get(option), option) for option in TLS_FILES}
    if files["client_key_file"] and not files["client_cert_file"]:
        raise OptionError(
            "client_key_file",
            files["client_key_file"],
            "needs client_cert_file, the certificate the key belongs to",
        )
    return RedisSettings(
        **target,
        validate_certs=bool(params.get("validate_certs", True)),
        **files,
        timeout=float(timeout),
    )


def tls_file(path: Any, option: str) -> str | None:
    """Return the PEM file ``path`` of ``option``, or raise OptionError.

    A missing file is the caller's mistake, not the server's: checked here, it
    fails the task naming the option instead of looking like a TLS failure.
    """
    if not path:
        return None
    path = str(path)
    fix = f"set {option} to the PEM file of {TLS_FILES[option]}"
    if os.path.isdir(path):
        raise OptionError(option, path, f"is a folder, not a file; {fix}")
    if not os.path.isfile(path):
        raise OptionError(option, path, f"names a file that does not exist; {fix}")
    if not os.access(path, os.R_OK):
        raise OptionError(
            option, path, "names a file that the user running the task cannot read"
        )
    return path


def _option_target(params: dict) -> dict:
    host = params.get("login_host") or "localhost"
    return {
        "host": host,
        "port": _port(params.get("login_port", DEFAULT_PORT), "login_port"),
        "db": _db(params.get("db", 0), "db"),
        "username": params.get("login_user") or None,
        "password": params.get("login_password") or None,
        "tls": bool(params.get("tls")),
    }


def _url_target(params: dict) -> dict:
    """Read host, port, credentials, database and TLS from the ``url`` option."""
    url = str(params["url"]).strip()
    shown = mask_url(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise OptionError("url", shown, BAD_URL) from None
    scheme = parts.scheme.lower()
    if scheme not in URL_SCHEMES:
        raise OptionError("url", shown, "must be a redis:// or rediss:// URL")
    if not parts.hostname or "@" in parts.path:
        raise OptionError("url", shown, BAD_URL)
    if parts.query or parts.fragment:
        raise OptionError(
            "url",
            shown,
            "must not carry query parameters; use the module's options instead",
        )
    return {
        "host": parts.hostname,
        "port": _port(port or DEFAULT_PORT, "url"),
        "db": _url_db(parts.path, shown),
        "username": _url_user(parts, params, shown),
        "password": _url_password(parts, params, shown),
        "tls": URL_SCHEMES[scheme] or bool(params.get("tls")),
        "shown_url": shown,
    }


def _url_user(parts: Any, params: dict, shown: str) -> str | None:
    user = unquote(parts.username) if parts.username else None
    option = params.get("login_user") or None
    if user and option and user != option:
        raise OptionError(
            "url", shown, "names a user and login_user names another; keep one"
        )
    return user or option


def _url_password(parts: Any, params: dict, shown: str) -> str | None:
    password = unquote(parts.password) if parts.password else None
    option = params.get("login_password") or None
    if password and option and password != option:
        raise OptionError(
            "url",
            shown,
            "carries a password and login_password holds another; keep one",
        )
    return password or option


def _url_db(path: str, shown: str) -> int:
    text = path.strip("/")
    if not text:
        return 0
    if not text.isdigit():
        raise OptionError("url", shown, "must end in a database number, like /0")
    return int(text)


def _port(value: Any, option: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionError(option, value, "must be a port number from 1 to 65535")
    if not 1 <= value <= 65535:
        raise OptionError(option, value, "must be a port number from 1 to 65535")
    return value


def _db(value: Any, option: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise OptionError(option, value, "must be a database number from 0")
    return value


def sentinel_from_params(params: dict) -> SentinelSettings | None:
    """Build the Sentinel settings, or None when no Sentinel is given."""
    hosts = params.get("sentinel_hosts") or []
    if not hosts:
        return None
    name = params.get("service_name")
    if not name:
        raise OptionError("service_name", name, "is required with sentinel_hosts")
    return SentinelSettings(
        hosts=tuple(_sentinel_host(item) for item in hosts),
        service_name=name,
        password=params.get("sentinel_password") or None,
    )


def _sentinel_host(item: Any) -> tuple:
    text = str(item).strip()
    host, port = text, DEFAULT_SENTINEL_PORT
    if text.startswith("["):
        host, _sep, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else port
    elif text.count(":") == 1:
        host, _sep, port = text.partition(":")
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not host or not 1 <= number <= 65535:
        raise OptionError("sentinel_hosts", item, "must hold host or host:port items")
    return (host, number)


def mask_url(url: str) -> str:
    """Return ``url`` with its password, if any, replaced by asterisks.

    Split by hand rather than with urlsplit: a password with an unencoded ``/``
    or ``#`` ends urlsplit's host part early, and would then be shown.
    """
    scheme, sep, rest = url.partition("://")
    user_info, at, host = rest.rpartition("@")
    user, colon, _password = user_info.partition(":")
    if not (sep and at and colon):
        return url
    return f"{scheme}://{user}:{REDACTED}@{host}"


def url_secrets(url: str | None) -> list:
    """Return the password written into ``url``, as given and decoded."""
    if not url:
        return []
    user_info, at, _host = url.partition("://")[2].rpartition("@")
    password = user_info.partition(":")[2] if at else ""
    return [password, unquote(password)] if password else []


# Connections


class RedisSession:
    """One connection to one Redis server; every call can raise RedisCallError."""

    def __init__(self, settings: RedisSettings) -> None:
        self.settings = settings
        self.client: Any = None
        # Commands the server executed for us, to leave them out of its counts.
        self.sent = 0

    def open(self) -> float:
        """Connect and authenticate; return the seconds it took."""
        began = time.monotonic()
        with self.translated("connect"):
            self.client = redis.Redis(**self.settings.client_kwargs())
            # Older redis-py versions connect on the first command; make it now
            # so that the PING after it measures only the server's answer.
            self.client.connection.connect()
        return time.monotonic() - began

    def close(self) -> None:
        """Close the connection; errors on the way out do not matter."""
        if self.client is not None:
            with suppress(redis.RedisError, OSError):
                self.client.close()
            self.client = None

    def __enter__(self) -> RedisSession:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def ping(self) -> float:
        """Send PING; return the seconds until PONG came back."""
        began = time.monotonic()
        with self.translated("PING"):
            answer = self.client.ping()
        self.sent += 1
        elapsed = time.monotonic() - began
        if answer is not True:
            raise RedisCallError(
                "response", f"PING answered {answer!r}, not PONG", command="PING"
            )
        return elapsed

    def info(self, section: str | None = None) -> dict:
        """Return INFO (the default sections, or one) as redis-py parses it."""
        name = f"INFO {section}" if section else "INFO"
        with self.translated(name):
            answer = self.client.info(section) if section else self.client.info()
        self.sent += 1
        return answer

    def config_get(self, *names: str) -> dict:
        """Return configuration values by name; None for one the server lacks."""
        with self.translated(f"CONFIG GET {' '.join(names)}"):
            try:
                answer = self.client.config_get(*names)
                self.sent += 1
            except redis.ResponseError as error:
                # Redis before 7 takes one name per CONFIG GET.
                if len(names) < 2 or "wrong number" not in str(error).lower():
                    raise
                answer = {}
                for name in names:
                    answer.update(self.client.config_get(name))
                    self.sent += 1
        found = {_text(key): _text(value) for key, value in answer.items()}
        return {name: found.get(name) for name in names}

    def slowlog(self) -> list:
        """Return every slow log entry, newest first."""
        with self.translated("SLOWLOG GET"):
            # A negative count returns the whole log.
            answer = self.client.slowlog_get(-1)
        self.sent += 1
        return answer

    def translated(self, command: str) -> Any:
        """A context in which redis-py's errors become RedisCallError."""
        return translated(self.settings, command)


@contextmanager
def translated(settings: RedisSettings, command: str) -> Iterator[None]:
    """Turn redis-py and socket errors into RedisCallError with a clear message."""
    try:
        yield
    except RedisCallError:
        raise
    except (redis.RedisError, OSError) as error:
        kind = classify(error)
        message = describe(kind, error, settings, command)
        raise RedisCallError(kind, message, command=command) from None


def classify(error: BaseException) -> str:
    """Name the kind of a redis-py error: timeout, tls, auth, permission, ..."""
    if isinstance(error, redis.AuthenticationError):
        return "auth"
    if isinstance(error, redis.BusyLoadingError):
        return "loading"
    if isinstance(error, redis.exceptions.NoPermissionError):
        return "permission"
    if isinstance(error, redis.ResponseError):
        return _response_kind(str(error))
    for cause in _causes(error):
        kind = _socket_kind(cause)
        if kind:
            return kind
    if isinstance(error, redis.TimeoutError) or "timed out" in str(error).lower():
        return "timeout"
    if "connection refused" in str(error).lower():
        return "connection_refused"
    return "connection"


def _response_kind(text: str) -> str:
    lowered = text.lower()
    if lowered.startswith("misconf"):
        return "misconf"
    if "unknown command" in lowered or "unknown subcommand" in lowered:
        return "unsupported"
    if lowered.startswith(("noauth", "wrongpass")) or "password configured" in lowered:
        return "auth"
    return "response"


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and the errors it was raised from or while handling."""
    seen = 0
    current: BaseException | None = error
    while current is not None and seen < 8:
        yield current
        current = current.__cause__ or current.__context__
        seen += 1


def _socket_kind(error: BaseException) -> str | None:
    if isinstance(error, ssl.SSLError):
        return "tls"
    if isinstance(error, ConnectionRefusedError):
        return "connection_refused"
    if isinstance(error, socket.gaierror):
        return "dns"
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "timeout"
    return None


def describe(
    kind: str, error: BaseException, settings: RedisSettings, command: str
) -> str:
    """Say in one sentence what went wrong, without secrets."""
    where = f"Redis at {settings.address}"
    if kind == "connection_refused":
        return f"{where} refused the connection: nothing listens on that port"
    if kind == "timeout":
        return (
            f"{where} did not answer {command} within {settings.timeout:g} s "
            f"(the timeout)"
        )
    if kind == "dns":
        return f"The host name of {where} does not resolve: {_first_line(error)}"
    if kind == "tls":
        return f"The TLS handshake with {where} failed: {_tls_reason(error)}"
    if kind == "auth":
        return f"{where} refused the credentials: {_first_line(error)}"
    if kind in ("permission", "unsupported"):
        return f"{where} refused {command}: {_first_line(error)}"
    if kind == "loading":
        return f"{where} is loading its dataset into memory and serves no commands"
    if kind == "misconf":
        return (
            f"{where} refuses writes and PING: its last RDB save failed "
            "(MISCONF, stop-writes-on-bgsave-error)"
        )
    return f"{command} on {where} failed: {_first_line(error)}"


def _tls_reason(error: BaseException) -> str:
    for cause in _causes(error):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"certificate verify failed: {cause.verify_message}"
        if isinstance(cause, ssl.SSLError):
            return _first_line(cause)
    return _first_line(error)


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    line = text.splitlines()[0]
    return line if len(line) <= MAX_ERROR_CHARS else f"{line[:MAX_ERROR_CHARS]}..."


def discover_primary(sentinel: SentinelSettings, settings: RedisSettings) -> tuple:
    """Ask the Sentinels for the current primary of the service; return host, port."""
    common = {
        "socket_timeout": settings.timeout,
        "socket_connect_timeout": settings.timeout,
        "retry": Retry(NoBackoff(), 0),
        "password": sentinel.password,
    }
    if settings.tls:
        common.update(settings.tls_kwargs())
    client = Sentinel(list(sentinel.hosts), sentinel_kwargs=common)
    try:
        return client.discover_master(sentinel.service_name)
    except MasterNotFoundError as error:
        raise RedisCallError(
            "sentinel",
            f"No Sentinel of {sentinel.shown} named a primary for "
            f"'{sentinel.service_name}': {_first_line(error)}",
            command="SENTINEL",
        ) from None
    finally:
        for each in client.sentinels:
            each.close()
