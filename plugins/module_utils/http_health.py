# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health endpoint checks: status codes, JSON expectations and response times."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.trm.maintenance.plugins.module_utils.checks import (
    CheckResult,
    Finding,
)
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.http import (
    HttpSettings,
    RequestError,
    Response,
    TLSError,
    check_url,
    header_secrets,
    host_port,
    positive_number,
    redact_url,
    request,
    run_concurrently,
    settings_from_params,
    url_secrets,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    ABOVE,
    CRITICAL,
    OK,
    Threshold,
    format_value,
    parse_threshold,
)

SUBJECT = "HTTP health"
METHODS = ("GET", "HEAD")
DEFAULT_STATUS_CODES = [200]
DEFAULT_RESPONSE_TIME = {"warning": 1.0, "critical": 5.0}
ENDPOINT_KEYS = frozenset(
    {
        "url",
        "name",
        "method",
        "status_code",
        "json",
        "headers",
        "response_time",
        "validate_certs",
        "ca_path",
        "timeout",
    }
)
# Where health documents commonly list their dependencies: ``checks`` (most
# frameworks), ``components`` (Spring Boot), ``dependencies``, ``details``.
DEPENDENCY_KEYS = ("checks", "dependencies", "components", "details", "services")
HEALTHY_WORDS = frozenset(
    {"ok", "up", "healthy", "pass", "passing", "green", "true", "success", "connected"}
)
MAX_DEPENDENCIES = 5
MAX_SHOWN_CHARS = 80
UNIT = "s"

ACTIONS = {
    "connection_refused": (
        "Start the service behind {name} or correct its URL: nothing accepts "
        "connections on {where}"
    ),
    "dns": "Correct the host name in the URL of {name}, or its DNS record",
    "timeout": (
        "Find out why {name} does not answer within {timeout:g} s (overload, a hung "
        "dependency), or raise its timeout if that is expected"
    ),
    "tls": (
        "Renew or correct the certificate served on {where}, or set ca_path to the "
        "CA bundle that signed it"
    ),
    "status": "Investigate {name}: check its logs and the dependencies it reports",
    "slow": "Find out why {name} answers slowly (load, dependencies, resources)",
}
DEFAULT_ACTION = "Check the service behind {name} and the network path to {where}"

_MISSING = object()


@dataclass(frozen=True)
class Endpoint:
    """One URL to check, with what a healthy answer looks like."""

    name: str
    url: str
    method: str
    status_codes: tuple
    expect: dict
    threshold: Threshold
    settings: HttpSettings

    @property
    def shown_url(self) -> str:
        """The URL without credentials, as results show it."""
        return redact_url(self.url)


@dataclass(frozen=True)
class _Defaults:
    """The top-level options that every endpoint inherits."""

    status_codes: tuple
    expect: dict
    threshold: Threshold
    settings: HttpSettings


# Option parsing


def parse_endpoints(params: dict) -> list[Endpoint]:
    """Turn the ``endpoints`` option into endpoints, with the top-level defaults."""
    items = params.get("endpoints") or []
    if not items:
        raise OptionError("endpoints", items, "must list at least one URL or mapping")
    defaults = _Defaults(
        status_codes=parse_status_codes(params.get("status_code"), "status_code"),
        expect=parse_expectations(params.get("json"), "json"),
        threshold=parse_response_time(params.get("response_time"), "response_time"),
        settings=settings_from_params(params),
    )
    endpoints = [_parse_item(item, index, defaults) for index, item in enumerate(items)]
    _reject_duplicate_names(endpoints)
    return endpoints


def _parse_item(item: Any, index: int, defaults: _Defaults) -> Endpoint:
    """Check one entry of ``endpoints`` and fill in the defaults."""
    option = f"endpoints[{index}]"
    item = _as_mapping(item, option)
    url = check_url(item["url"], f"{option}.url")
    method = _method(item.get("method"), f"{option}.method")
    return Endpoint(
        name=_name(item.get("name"), url, f"{option}.name"),
        url=url,
        method=method,
        status_codes=_override(
            item, "status_code", option, parse_status_codes, defaults.status_codes
        ),
        expect=_endpoint_expectations(item, method, option, defaults.expect),
        threshold=_override(
            item, "response_time", option, parse_response_time, defaults.threshold
        ),
        settings=_endpoint_settings(item, option, defaults.settings),
    )


def _as_mapping(item: Any, option: str) -> dict:
    """Accept a URL string or a mapping with known keys and a ``url``."""
    if isinstance(item, str):
        return {"url": item}
    if not isinstance(item, dict):
        raise OptionError(option, item, "must be a URL or a mapping with a url")
    unknown = sorted(set(item) - ENDPOINT_KEYS)
    if unknown:
        raise OptionError(
            option,
            _without_secrets(item),
            f"has unknown keys {unknown}; allowed: {sorted(ENDPOINT_KEYS)}",
        )
    if item.get("url") is None:
        raise OptionError(
            f"{option}.url",
            None,
            f"is required; the endpoint mapping has only {sorted(item)}",
        )
    return item


def _without_secrets(item: dict) -> dict:
    """Return an endpoint mapping fit for an error message."""
    shown = {key: value for key, value in item.items() if key != "headers"}
    if isinstance(shown.get("url"), str):
        shown["url"] = redact_url(shown["url"])
    return shown


def _override(item: dict, key: str, option: str, parse: Callable, default: Any) -> Any:
    """Parse ``item[key]`` when the endpoint sets it, else use the default."""
    if item.get(key) is None:
        return default
    return parse(item[key], f"{option}.{key}")


def _method(value: Any, option: str) -> str:
    """Return the HTTP method in capitals: GET (the default) or HEAD."""
    method = str(value or "GET").upper()
    if method not in METHODS:
        raise OptionError(option, value, f"must be one of {list(METHODS)}")
    return method


def _name(value: Any, url: str, option: str) -> str:
    """Return the endpoint's name: its own, or the URL without secrets."""
    if value is None:
        return redact_url(url)
    if not isinstance(value, str) or not value.strip():
        raise OptionError(option, value, "must be a non-empty string")
    return value.strip()


def parse_status_codes(value: Any, option: str) -> tuple:
    """Return the accepted HTTP status codes, from one code or a list."""
    codes = value if isinstance(value, list) else [value]
    if not codes or value is None:
        raise OptionError(option, value, "must list at least one HTTP status code")
    parsed = []
    for code in codes:
        number = str(code).strip()
        if isinstance(code, bool) or not number.isdigit():
            raise OptionError(option, value, "must hold HTTP status codes (100-599)")
        if not 100 <= int(number) <= 599:
            raise OptionError(option, value, "must hold HTTP status codes (100-599)")
        parsed.append(int(number))
    return tuple(parsed)


def parse_expectations(value: Any, option: str) -> dict:
    """Return the JSON expectations: dotted paths mapped to expected values."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise OptionError(option, value, "must map dotted JSON paths to values")
    for path in value:
        if not isinstance(path, str) or not path.strip("."):
            raise OptionError(option, value, "must map dotted JSON paths to values")
    return dict(value)


def _endpoint_expectations(item: dict, method: str, option: str, default: dict):
    """Return the endpoint's JSON expectations; a HEAD answer has no body."""
    own = item.get("json")
    if method != "HEAD":
        return default if own is None else parse_expectations(own, f"{option}.json")
    if own:
        raise OptionError(
            f"{option}.json", own, "cannot be checked with method HEAD (no body)"
        )
    return {}


def parse_response_time(spec: Any, option: str) -> Threshold:
    """Return response time bounds in seconds: ``{warning, critical}``."""
    threshold = parse_threshold(spec, option=option, default=DEFAULT_RESPONSE_TIME)
    valid = isinstance(threshold, Threshold) and threshold.direction == ABOVE
    bounds = (threshold.warning, threshold.critical) if valid else ()
    if not valid or any(bound is not None and bound <= 0 for bound in bounds):
        raise OptionError(
            option, spec, "must give warning and critical response times in seconds"
        )
    return threshold


def _endpoint_settings(item: dict, option: str, base: HttpSettings) -> HttpSettings:
    """Apply the endpoint's own timeout, TLS options and headers to the defaults."""
    changes: dict[str, Any] = {}
    if item.get("timeout") is not None:
        changes["timeout"] = positive_number(item["timeout"], f"{option}.timeout")
    if item.get("validate_certs") is not None:
        changes["validate_certs"] = _boolean(
            item["validate_certs"], f"{option}.validate_certs"
        )
    if item.get("ca_path"):
        changes["ca_path"] = _file(item["ca_path"], f"{option}.ca_path")
    if item.get("headers"):
        changes["headers"] = {**base.headers, **_headers(item["headers"], option)}
    return dataclasses.replace(base, **changes)


def _boolean(value: Any, option: str) -> bool:
    """Read a boolean the way Ansible does (yes/no, true/false, 1/0)."""
    try:
        return boolean(value, strict=True)
    except TypeError:
        raise OptionError(option, value, "must be a boolean") from None


def _file(value: Any, option: str) -> str:
    """Return the path of a readable file."""
    path = os.path.expanduser(str(value))
    if not os.path.isfile(path):
        raise OptionError(option, value, "is not a readable file")
    return path


def _headers(value: Any, option: str) -> dict:
    """Return an endpoint's extra headers; their values are never shown."""
    if not isinstance(value, dict):
        raise OptionError(f"{option}.headers", "(hidden)", "must be a mapping")
    return {str(name): str(header) for name, header in value.items()}


def _reject_duplicate_names(endpoints: list[Endpoint]) -> None:
    """Names key the metrics, so two endpoints may not share one."""
    seen: dict[str, int] = {}
    for index, endpoint in enumerate(endpoints):
        key = metric_key(endpoint.name)
        if key in seen:
            raise OptionError(
                f"endpoints[{index}].name",
                endpoint.name,
                f"repeats the name of endpoints[{seen[key]}]; give each a unique name",
            )
        seen[key] = index


def endpoint_secrets(params: dict) -> list[str]:
    """Return the credentials written into endpoint URLs and header values."""
    found = header_secrets(params.get("headers"))
    for item in params.get("endpoints") or []:
        if isinstance(item, str):
            found += url_secrets(item)
        elif isinstance(item, dict):
            found += url_secrets(str(item.get("url") or ""))
            headers = item.get("headers")
            found += header_secrets(headers if isinstance(headers, dict) else {})
    return found


def metric_key(name: str) -> str:
    """Return ``name`` as a snake_case metric prefix."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "endpoint"


# JSON documents


def lookup(document: Any, path: str) -> Any:
    """Return the value at a dotted ``path`` (list items by index), or ``_MISSING``."""
    if isinstance(document, dict) and path in document:
        return document[path]
    current = document
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def matches(actual: Any, expected: Any) -> bool:
    """Tell whether a JSON value meets an expectation written in YAML.

    Numbers compare as numbers; otherwise both sides compare as text, so that
    ``200`` meets ``"200"`` and ``true`` meets ``"true"``.
    """
    if actual is _MISSING:
        return False
    plain = not isinstance(actual, bool) and not isinstance(expected, bool)
    if plain and actual == expected:
        return True
    return _text(actual) == _text(expected)


def _text(value: Any) -> str:
    """Return a value as JSON writes it for scalars, as str for the rest."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return str(value)


def unmet_expectations(document: Any, expect: dict) -> list[str]:
    """Say, for each unmet expectation, which field holds what instead."""
    problems = []
    for path, expected in expect.items():
        actual = lookup(document, path)
        if matches(actual, expected):
            continue
        if actual is _MISSING:
            problems.append(f"{path} is missing, expected {_shown(expected)}")
        else:
            problems.append(f"{path} is {_shown(actual)}, expected {_shown(expected)}")
    return problems


def _shown(value: Any) -> str:
    """Return a JSON value as it reads in a message, cut when long."""
    text = json.dumps(value, sort_keys=True, default=str)
    if len(text) <= MAX_SHOWN_CHARS:
        return text
    return f"{text[:MAX_SHOWN_CHARS]}..."


def failing_dependencies(document: Any) -> list[str]:
    """Return ``name: detail`` for each dependency the document reports unhealthy."""
    if not isinstance(document, dict):
        return []
    found: list[str] = []
    for key in DEPENDENCY_KEYS:
        section = document.get(key)
        if isinstance(section, dict):
            found += [f"{name}: {detail}" for name, detail in _unhealthy(section)]
    return found[:MAX_DEPENDENCIES]


def _unhealthy(section: dict) -> Iterator[tuple[str, str]]:
    """Yield the dependencies of one section that are not healthy."""
    for name, value in section.items():
        detail = _dependency_problem(value)
        if detail:
            yield str(name), detail


def _dependency_problem(value: Any) -> str | None:
    """Return what is wrong with one dependency entry, or None when it is healthy."""
    if not isinstance(value, dict):
        return None if _healthy(value) else _plain(value)
    status = value.get("status", value.get("state"))
    if status is None or _healthy(status):
        return None
    details = value.get("details") if isinstance(value.get("details"), dict) else {}
    extra = value.get("error") or value.get("message") or details.get("error")
    return f"{_plain(status)} ({_plain(extra)})" if extra else _plain(status)


def _healthy(value: Any) -> bool:
    return _text(value).strip().lower() in HEALTHY_WORDS


def _plain(value: Any) -> str:
    text = value if isinstance(value, str) else _shown(value)
    return text if len(text) <= MAX_SHOWN_CHARS else f"{text[:MAX_SHOWN_CHARS]}..."


# Judging answers


def check_endpoint(endpoint: Endpoint) -> Finding:
    """Request one endpoint and judge its answer."""
    try:
        response = request(endpoint.url, endpoint.settings, method=endpoint.method)
    except RequestError as error:
        return failure_finding(endpoint, error)
    return judge_response(endpoint, response)


def judge_response(endpoint: Endpoint, response: Response) -> Finding:
    """Judge an answer: its status code, its JSON, then its response time."""
    document = _document(response)
    dependencies = failing_dependencies(document)
    problem = _problem(endpoint, response, document)
    if problem is None:
        return _timing_finding(endpoint, response, dependencies)
    kind, text = problem
    message = f"{endpoint.name} answered HTTP {response.status}{text}"
    if dependencies:
        message += f"; failing dependencies: {', '.join(dependencies)}"
    return _finding(
        endpoint,
        CRITICAL,
        message,
        response=response,
        action=_action("status", endpoint),
        error=kind,
        failing_dependencies=dependencies,
    )


def _document(response: Response) -> Any:
    """Return the body's JSON, or ``_MISSING`` when the body is not JSON."""
    try:
        return response.json() if response.body else _MISSING
    except RequestError:
        return _MISSING


def _problem(
    endpoint: Endpoint, response: Response, document: Any
) -> tuple[str, str] | None:
    """Return the kind of problem and its words after "answered HTTP <code>"."""
    if response.status not in endpoint.status_codes:
        return "status_code", f", expected {_codes_text(endpoint.status_codes)}"
    if not endpoint.expect:
        return None
    if document is _MISSING:
        fields = ", ".join(endpoint.expect)
        return "json", f" but the body is not JSON, so {fields} could not be checked"
    unmet = unmet_expectations(document, endpoint.expect)
    return ("json", f" but {'; '.join(unmet)}") if unmet else None


def _codes_text(codes: tuple) -> str:
    if len(codes) == 1:
        return str(codes[0])
    return f"one of {', '.join(str(code) for code in codes)}"


def _timing_finding(
    endpoint: Endpoint, response: Response, dependencies: list[str]
) -> Finding:
    """Judge the response time of an answer that is otherwise healthy."""
    seconds = round(response.elapsed, 3)
    threshold = endpoint.threshold
    status = threshold.evaluate(seconds)
    answered = f"{endpoint.name} answered HTTP {response.status}"
    shown = format_value(seconds, UNIT)
    if status == OK:
        message = f"{answered} in {shown} ({threshold.describe(UNIT)})"
    else:
        message = f"{answered} in {shown}, {threshold.breach(status, UNIT)}"
    return _finding(
        endpoint,
        status,
        message,
        response=response,
        action=_action("slow", endpoint),
        error=None if status == OK else "slow",
        failing_dependencies=dependencies,
    )


def failure_finding(endpoint: Endpoint, error: RequestError) -> Finding:
    """Turn a request that got no answer into a critical finding."""
    message = f"{endpoint.name}: {error}"
    kind = error.kind
    if isinstance(error, TLSError) and error.verification:
        message += (
            "; set ca_path to the CA bundle that signed the certificate, "
            "or fix the certificate"
        )
    action = _action(kind, endpoint, timeout=getattr(error, "timeout", 0.0))
    seconds = None if error.elapsed is None else round(error.elapsed, 3)
    return _finding(
        endpoint,
        CRITICAL,
        message,
        seconds=seconds,
        action=action,
        error=kind,
        failing_dependencies=[],
    )


def _action(kind: str, endpoint: Endpoint, *, timeout: float = 0.0) -> str:
    """Word the next action for a failure of ``kind``."""
    template = ACTIONS.get(kind, DEFAULT_ACTION)
    where = host_port(endpoint.url)
    return template.format(name=endpoint.name, where=where, timeout=timeout)


def _finding(
    endpoint: Endpoint,
    status: str,
    message: str,
    *,
    response: Response | None = None,
    seconds: float | None = None,
    action: str | None = None,
    error: str | None = None,
    **details: Any,
) -> Finding:
    """Build an endpoint's finding with the keys every endpoint result carries."""
    if response is not None:
        seconds = round(response.elapsed, 3)
    return Finding(
        name=endpoint.name,
        status=status,
        message=message,
        value=seconds,
        unit=UNIT,
        threshold=endpoint.threshold,
        action=action if status != OK else None,
        details={
            "url": endpoint.shown_url,
            "method": endpoint.method,
            "status_code": None if response is None else response.status,
            "response_seconds": seconds,
            "error": error,
            **details,
        },
    )


# The check


def endpoint_metrics(findings: list[Finding]) -> dict:
    """Return the counts and, per answering endpoint, its time and status code."""
    metrics: dict[str, Any] = {
        "endpoints_total": len(findings),
        "endpoints_ok": sum(finding.status == OK for finding in findings),
    }
    for finding in findings:
        code = finding.details.get("status_code")
        if code is not None:
            key = metric_key(finding.name)
            metrics[f"{key}_response_seconds"] = finding.details["response_seconds"]
            metrics[f"{key}_status_code"] = code
    return metrics


def run_http_health(params: dict) -> dict:
    """Check every endpoint concurrently and return the module result."""
    endpoints = parse_endpoints(params)
    findings = run_concurrently(
        check_endpoint, endpoints, max_workers=params.get("max_workers", 16)
    )
    result = CheckResult(findings=findings, metrics=endpoint_metrics(findings))
    return result.to_dict(SUBJECT)
