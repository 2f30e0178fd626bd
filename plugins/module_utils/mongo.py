# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The MongoDB client of the check modules: one client per call, our errors.

Built on pymongo. A module opens one ``MongoSession`` and runs all of its
commands on it; what the server does (unreachable, refused a command, rejected
our credentials) becomes a ``ServerProblem`` that the domain layer turns into a
finding, while options that cannot be right raise ``OptionError``.
"""

from __future__ import annotations

import re
import traceback
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterator
from urllib.parse import unquote

from ansible_collections.trm.maintenance.plugins.module_utils.checks import (
    Finding,
)
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    CRITICAL,
    UNKNOWN,
)

try:
    from bson import Binary, Decimal128, ObjectId, Timestamp
    from pymongo import MongoClient
    from pymongo import timeout as pymongo_timeout
    from pymongo.errors import (
        ConfigurationError,
        ConnectionFailure,
        ExecutionTimeout,
        InvalidURI,
        NetworkTimeout,
        PyMongoError,
    )
except ImportError:
    HAS_PYMONGO = False
    PYMONGO_IMPORT_ERROR: str | None = traceback.format_exc()

    class PyMongoError(Exception):  # type: ignore[no-redef]
        """Stands in for pymongo's errors so that except clauses still parse."""

    ConfigurationError = ConnectionFailure = ExecutionTimeout = PyMongoError
    InvalidURI = NetworkTimeout = PyMongoError
    Binary = Decimal128 = ObjectId = Timestamp = MongoClient = pymongo_timeout = None
else:
    HAS_PYMONGO = True
    PYMONGO_IMPORT_ERROR = None

REDACTED = "********"
APP_NAME = "trm.maintenance"
URI_SCHEMES = ("mongodb://", "mongodb+srv://")
SYSTEM_DATABASES = frozenset({"admin", "local", "config"})

# Server error codes that decide how a failure reads.
UNAUTHORIZED = 13
AUTHENTICATION_FAILED = 18
COMMAND_NOT_FOUND = 59
MAX_TIME_EXPIRED = 50

AUTH_MECHANISMS = [
    "SCRAM-SHA-256",
    "SCRAM-SHA-1",
    "MONGODB-X509",
    "GSSAPI",
    "PLAIN",
    "MONGODB-AWS",
]

MONGO_ARGUMENT_SPEC = {
    "uri": {"type": "str"},
    "login_host": {"type": "str"},
    "login_port": {"type": "int", "default": 27017},
    "login_user": {"type": "str"},
    "login_password": {"type": "str", "no_log": True},
    "login_database": {"type": "str", "default": "admin"},
    "auth_mechanism": {"type": "str", "choices": AUTH_MECHANISMS},
    "replica_set": {"type": "str"},
    "direct_connection": {"type": "bool", "default": False},
    "tls": {"type": "bool", "default": False, "aliases": ["ssl"]},
    "validate_certs": {"type": "bool", "default": True},
    "ca_certs": {"type": "path", "aliases": ["ssl_ca_certs", "tls_ca_file"]},
    "client_cert_file": {
        "type": "path",
        "aliases": ["ssl_certfile", "tls_certificate_key_file"],
    },
    "client_cert_password": {
        "type": "str",
        "no_log": True,
        "aliases": ["ssl_pem_passphrase"],
    },
    "server_selection_timeout": {"type": "float", "default": 5.0},
    "connect_timeout": {"type": "float", "default": 5.0},
    "socket_timeout": {"type": "float", "default": 30.0},
}
MONGO_MUTUALLY_EXCLUSIVE = [["uri", "login_host"], ["uri", "replica_set"]]
MONGO_REQUIRED_TOGETHER = [["login_user", "login_password"]]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
_URI_SECRET_PARAMETER = re.compile(
    r"(?i)(?P<key>tlsCertificateKeyFilePassword|sslPEMKeyPassword|authMechanism"
    r"Properties)=(?P<value>[^&]*)"
)


class ServerProblem(Exception):
    """Something the server did or did not do; a finding, never a task failure."""

    status = UNKNOWN

    def __init__(
        self, reason: str, *, action: str | None = None, code: int | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.action = action
        self.code = code


class Unreachable(ServerProblem):
    """No server answered within the server selection timeout."""

    status = CRITICAL


class AuthenticationFailed(ServerProblem):
    """The server rejected our credentials."""


class Refused(ServerProblem):
    """One command was refused: not authorised, not supported, or it failed."""


def require_pymongo(module: Any) -> None:
    """Fail the task with the install hint when pymongo cannot be imported."""
    if not HAS_PYMONGO:
        from ansible.module_utils.basic import missing_required_lib

        module.fail_json(
            msg=missing_required_lib("pymongo"), exception=PYMONGO_IMPORT_ERROR
        )


def uri_secrets(uri: str | None) -> list[str]:
    """Return the password and secret parameters written into ``uri``."""
    if not uri:
        return []
    found = []
    password = _split_uri(uri)[2]
    if password:
        found += [password, unquote(password)]
    for parameter in _URI_SECRET_PARAMETER.finditer(uri):
        found += [parameter.group("value"), unquote(parameter.group("value"))]
    return list(dict.fromkeys(value for value in found if value))


def connection_secrets(params: dict) -> list[str]:
    """Return every secret of the connection options, for Ansible to mask."""
    values = [params.get("login_password"), params.get("client_cert_password")]
    return [value for value in values if value] + uri_secrets(params.get("uri"))


def hide_secrets(module: Any, params: dict) -> None:
    """Have Ansible mask the connection secrets anywhere in the module's output."""
    module.no_log_values.update(connection_secrets(params))


def _split_uri(uri: str) -> tuple:
    """Return the scheme with ``://``, the user, the password and the rest.

    Split by hand on the last ``@``: a password with an unencoded ``/``, ``@`` or
    ``:`` would otherwise end the user information early and be shown.
    """
    scheme, sep, rest = uri.partition("://")
    user_info, at, host = rest.rpartition("@")
    if not (sep and at and _SCHEME.match(scheme)):
        return None, None, None, uri
    user, _colon, password = user_info.partition(":")
    return f"{scheme}://", user, password, host


def mask_uri(uri: str) -> str:
    """Return ``uri`` with its password and secret parameters replaced."""
    scheme, user, password, rest = _split_uri(uri)
    masked = f"{scheme}{user}:{REDACTED}@{rest}" if password else uri
    return _URI_SECRET_PARAMETER.sub(rf"\g<key>={REDACTED}", masked)


def shown_target(params: dict) -> str:
    """Where the module connects, as it may appear in results and reports."""
    if params.get("uri"):
        return mask_uri(params["uri"])
    host = params.get("login_host") or "localhost"
    port = params.get("login_port") or 27017
    return f"mongodb://{host}:{port}/"


def client_arguments(params: dict) -> tuple[str, dict]:
    """Return the host (a URI or a host name) and keyword arguments for pymongo."""
    uri = params.get("uri")
    if uri is not None and not uri.startswith(URI_SCHEMES):
        raise OptionError(
            "uri", mask_uri(uri), "must start with mongodb:// or mongodb+srv://"
        )
    host = uri or params.get("login_host") or "localhost"
    kwargs: dict[str, Any] = {
        "appname": APP_NAME,
        "serverSelectionTimeoutMS": _milliseconds(params, "server_selection_timeout"),
        "connectTimeoutMS": _milliseconds(params, "connect_timeout"),
        "socketTimeoutMS": _milliseconds(params, "socket_timeout"),
        # A maintenance check reports what it sees; retrying would hide a failure.
        "retryReads": False,
        "retryWrites": False,
    }
    if not uri:
        kwargs["port"] = params.get("login_port") or 27017
    kwargs.update(_credentials(params))
    kwargs.update(_topology(params))
    kwargs.update(_tls(params))
    return host, kwargs


def _milliseconds(params: dict, option: str) -> int:
    seconds = params.get(option)
    if seconds is None or seconds <= 0:
        raise OptionError(option, seconds, "must be a number of seconds above 0")
    return int(seconds * 1000)


# Mechanisms whose users are defined outside MongoDB, in the $external source.
EXTERNAL_MECHANISMS = frozenset({"MONGODB-X509", "GSSAPI", "PLAIN", "MONGODB-AWS"})
EXTERNAL_SOURCE = "$external"
# Mechanisms that authenticate with something other than a password.
PASSWORDLESS_MECHANISMS = frozenset({"MONGODB-X509"})


def _credentials(params: dict) -> dict:
    mechanism = params.get("auth_mechanism")
    _check_mechanism(params, mechanism)
    source = _auth_source(params, mechanism)
    found: dict[str, Any] = {}
    if params.get("login_user"):
        found["username"] = params["login_user"]
        if params.get("login_password") is not None:
            found["password"] = params.get("login_password")
        found["authSource"] = source
    if mechanism:
        found["authMechanism"] = mechanism
        found.setdefault("authSource", source)
    return found


def _check_mechanism(params: dict, mechanism: str | None) -> None:
    """Refuse credentials the mechanism cannot use, naming the option."""
    if mechanism in PASSWORDLESS_MECHANISMS and params.get("login_password"):
        raise OptionError(
            "login_password",
            REDACTED,
            f"must not be set with auth_mechanism {mechanism}, which authenticates "
            "with the client certificate (client_cert_file)",
        )
    if mechanism == "PLAIN" and not params.get("login_user"):
        raise OptionError("login_user", None, "is required with auth_mechanism PLAIN")


def _auth_source(params: dict, mechanism: str | None) -> str:
    """The authentication database; external mechanisms use $external."""
    source = params.get("login_database") or "admin"
    if mechanism not in EXTERNAL_MECHANISMS:
        return source
    if source in ("admin", EXTERNAL_SOURCE):
        return EXTERNAL_SOURCE
    raise OptionError(
        "login_database",
        source,
        f"must be {EXTERNAL_SOURCE} (or left unset) with auth_mechanism {mechanism}",
    )


def _topology(params: dict) -> dict:
    found: dict[str, Any] = {}
    if params.get("replica_set"):
        found["replicaSet"] = params["replica_set"]
    if params.get("direct_connection"):
        found["directConnection"] = True
    return found


def _tls(params: dict) -> dict:
    if not params.get("tls"):
        return {}
    found: dict[str, Any] = {"tls": True}
    if params.get("ca_certs"):
        found["tlsCAFile"] = params["ca_certs"]
    if params.get("client_cert_file"):
        found["tlsCertificateKeyFile"] = params["client_cert_file"]
    if params.get("client_cert_password"):
        found["tlsCertificateKeyFilePassword"] = params["client_cert_password"]
    if params.get("validate_certs") is False:
        found["tlsInsecure"] = True
    return found


class MongoSession:
    """One pymongo client for one module call; every command maps its errors."""

    def __init__(self, params: dict) -> None:
        self.target = shown_target(params)
        self.max_time_ms = _milliseconds(params, "socket_timeout")
        host, kwargs = client_arguments(params)
        self._hello: dict | None = None
        # A problem met while building the client (an SRV name that does not
        # resolve) is raised by the first command, like any unreachable server.
        self._problem: ServerProblem | None = None
        self._client = None
        try:
            self._client = MongoClient(host, **kwargs)
        except OSError as error:
            raise _file_problem(params, error) from None
        except (InvalidURI, ValueError, TypeError) as error:
            option, what = (
                ("uri", "URI") if params.get("uri") else ("login_host", "host")
            )
            text = _without(_scrub(error), uri_secrets(params.get("uri")))
            raise OptionError(
                option, self.target, f"is not a valid MongoDB {what} ({text})"
            ) from None
        except ConfigurationError as error:
            found = _configuration_problem(error, self.target, params=params)
            if isinstance(found, OptionError):
                raise found from None
            self._problem = found

    @property
    def client(self) -> Any:
        """The pymongo client; raises the problem met while building it."""
        if self._problem is not None:
            raise self._problem
        return self._client

    def __enter__(self) -> MongoSession:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close the client and its connections."""
        if self._client is not None:
            self._client.close()

    def command(
        self, database: str, command: Any, *, timeout: float | None = None
    ) -> dict:
        """Run ``command`` on ``database`` and return the server's answer.

        ``timeout`` (seconds) replaces the socket timeout for this command only,
        for commands that run long by design such as ``compact``.
        """
        name = command if isinstance(command, str) else next(iter(command))
        with mapped_errors(name, self.target), _deadline(timeout):
            return self.client[database].command(command)

    def find(
        self,
        database: str,
        collection: str,
        query: dict,
        *,
        projection: dict | None = None,
        sort: list | None = None,
        limit: int = 0,
    ) -> list[dict]:
        """Return the documents ``query`` matches, sorted and limited."""
        with mapped_errors("find", self.target):
            cursor = self.client[database][collection].find(
                query, projection, sort=sort, limit=limit, max_time_ms=self.max_time_ms
            )
            return list(cursor)

    def aggregate(self, database: str, collection: str, pipeline: list) -> list[dict]:
        """Run ``pipeline`` on ``collection`` and return every result document."""
        first = next(iter(pipeline[0]), "aggregate") if pipeline else "aggregate"
        with mapped_errors(first, self.target):
            cursor = self.client[database][collection].aggregate(
                pipeline, maxTimeMS=self.max_time_ms
            )
            return list(cursor)

    def aggregate_database(self, database: str, pipeline: list) -> list[dict]:
        """Run ``pipeline`` on ``database`` itself (``aggregate: 1``)."""
        first = next(iter(pipeline[0]), "aggregate") if pipeline else "aggregate"
        with mapped_errors(first, self.target):
            cursor = self.client[database].aggregate(
                pipeline, maxTimeMS=self.max_time_ms
            )
            return list(cursor)

    def hello(self) -> dict:
        """Return the server's ``hello`` answer, asked once per session."""
        if self._hello is None:
            self._hello = self.command("admin", "hello")
        return self._hello

    def server_time(self) -> datetime:
        """Return the server's clock (its ``hello`` answer), else this host's."""
        local = self.hello().get("localTime")
        if isinstance(local, datetime):
            return aware(local)
        return datetime.now(timezone.utc)


@contextmanager
def _deadline(seconds: float | None) -> Iterator[None]:
    if seconds is None:
        yield
        return
    with pymongo_timeout(seconds):
        yield


@contextmanager
def mapped_errors(command: str, target: str) -> Iterator[None]:
    """Turn pymongo's errors inside the block into ``ServerProblem`` subclasses."""
    try:
        yield
    except PyMongoError as error:
        raise server_problem(error, command, target) from None
    except (KeyError, TypeError, ValueError) as error:
        # Only the driver runs inside the block: these come from an answer it
        # could not read, such as a stand-in server's reply to authentication.
        raise Refused(
            f"{command} got an answer the driver could not read ({error!r})"
        ) from None


def server_problem(error: Exception, command: str, target: str) -> ServerProblem:
    """Translate one pymongo error into the problem a finding reports."""
    if isinstance(error, NetworkTimeout):
        return Refused(
            f"{command} got no answer within the socket timeout: {_scrub(error)}",
            action="Raise socket_timeout or run the check when the server is quieter",
        )
    if isinstance(error, ConnectionFailure):
        return Unreachable(
            f"Cannot reach MongoDB at {target}: {_scrub(error)}",
            action="Check that mongod runs and that this host can reach it",
        )
    code = getattr(error, "code", None)
    if code == AUTHENTICATION_FAILED:
        return AuthenticationFailed(
            f"MongoDB at {target} rejected the credentials: {_scrub(error)}",
            action="Check login_user, login_password and login_database",
            code=code,
        )
    if isinstance(error, ExecutionTimeout) or code == MAX_TIME_EXPIRED:
        return Refused(
            f"{command} did not finish within the socket timeout",
            action="Raise socket_timeout or run the check when the server is quieter",
            code=code,
        )
    return _refusal(error, command, code)


def _refusal(error: Exception, command: str, code: int | None) -> Refused:
    if code == UNAUTHORIZED:
        return Refused(
            f"Not authorised to run {command}: {_scrub(error)}",
            action="Grant the monitoring user the clusterMonitor role",
            code=code,
        )
    if code == COMMAND_NOT_FOUND:
        return Refused(
            f"The server does not support {command}: {_scrub(error)}", code=code
        )
    return Refused(f"{command} failed: {_scrub(error)}", code=code)


def _configuration_problem(
    error: Exception, target: str, params: dict | None = None
) -> Exception:
    params = params or {}
    text = _without(_scrub(error), uri_secrets(params.get("uri")))
    # A mongodb+srv:// URI is resolved in DNS when the client is built; a name
    # that does not resolve is an unreachable server, not a wrong option.
    if target.startswith("mongodb+srv://"):
        return Unreachable(f"Cannot resolve {target}: {text}")
    if params.get("client_cert_file") and _KEY_ERROR.search(text):
        return key_problem(params, text)
    if params.get("auth_mechanism") and not params.get("uri"):
        return OptionError(
            "auth_mechanism",
            params["auth_mechanism"],
            f"cannot be used with these options ({text})",
        )
    option = "uri" if params.get("uri") else "login_host"
    return OptionError(option, target, f"is not usable ({text})")


# How the driver says that the client key could not be loaded.
_KEY_ERROR = re.compile(r"(?i)private key|PEM lib|bad decrypt")
# The options whose files the driver reads when it builds the client.
TLS_FILE_OPTIONS = ("ca_certs", "client_cert_file")


def _file_problem(params: dict, error: OSError) -> OptionError:
    """The option error of a TLS file the driver could not read."""
    reason = error.strerror or type(error).__name__
    for option in TLS_FILE_OPTIONS:
        path = params.get(option)
        if path and (error.filename == path or not _readable(path)):
            return OptionError(
                option, path, f"names a file that cannot be read ({reason})"
            )
    if params.get("client_cert_file"):
        return key_problem(params, reason)
    return OptionError("tls", True, f"cannot be set up ({reason})")


def key_problem(params: dict, reason: str) -> OptionError:
    """The option error of a client key that cannot be loaded."""
    if params.get("client_cert_password"):
        return OptionError(
            "client_cert_password",
            REDACTED,
            "does not decrypt the key in client_cert_file, or that key does not "
            f"match its certificate ({reason})",
        )
    return OptionError(
        "client_cert_file",
        params.get("client_cert_file"),
        "holds a key that cannot be loaded; if the key is encrypted, set "
        f"client_cert_password ({reason})",
    )


def _readable(path: str) -> bool:
    try:
        with open(path, "rb"):
            return True
    except OSError:
        return False


def _without(text: str, secrets: list) -> str:
    """``text`` with every secret in ``secrets`` replaced."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def _scrub(error: Exception) -> str:
    """The first line of an error, without the full server reply pymongo appends."""
    details = getattr(error, "details", None)
    if isinstance(details, dict) and details.get("errmsg"):
        text = str(details["errmsg"])
    else:
        text = re.split(r", full error:|, Timeout: ", str(error), maxsplit=1)[0]
    return mask_uri(text.splitlines()[0] if text else type(error).__name__)


def problem_finding(problem: ServerProblem) -> Finding:
    """The finding of a connection that could not be made or used."""
    return Finding(
        name="connection",
        status=problem.status,
        message=problem.reason,
        action=problem.action,
        details={"error": type(problem).__name__, "code": problem.code},
    )


def aware(moment: datetime) -> datetime:
    """Return ``moment`` as an aware UTC datetime (BSON dates come back naive)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def iso(moment: datetime) -> str:
    """Return ``moment`` in ISO 8601 with milliseconds, in UTC."""
    return aware(moment).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def plain(value: Any) -> Any:
    """Return ``value`` with BSON types replaced by JSON-friendly ones."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, datetime):
        return iso(value)
    if HAS_PYMONGO and isinstance(value, Timestamp):
        return iso(value.as_datetime())
    if HAS_PYMONGO and isinstance(value, (ObjectId, Decimal128)):
        return str(value)
    if isinstance(value, (bytes, bytearray)) or (
        HAS_PYMONGO and isinstance(value, Binary)
    ):
        return f"<{len(value)} bytes>"
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def user_databases(names: Iterator[str] | list[str]) -> list[str]:
    """Drop MongoDB's own databases (admin, local, config) from ``names``."""
    return [name for name in names if name not in SYSTEM_DATABASES]
