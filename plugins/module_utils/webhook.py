# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Posts the report's verdict to a Slack-compatible incoming webhook."""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit

from ansible.module_utils.urls import ConnectionError as UrlConnectionError
from ansible.module_utils.urls import open_url

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)

TOP_ISSUES = 5
SCHEMES = ("http", "https")
MASK = "***"


def checked_url(url: str, *, option: str = "webhook_url") -> str:
    """Return ``url`` when it is an http or https URL with a host; else fail.

    The message shows the scheme and the host only: the rest of an incoming
    webhook's URL, and any user information, is the credential.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise OptionError(option, MASK, "must be an http or https URL") from None
    if parts.scheme not in SCHEMES or not host:
        raise OptionError(option, _shown(parts.scheme, host), _problem(parts.scheme))
    return url


def _problem(scheme: str) -> str:
    if scheme in SCHEMES:
        return f"must be an {scheme} URL with a host name"
    return "must be an http or https URL"


def _shown(scheme: str, host: str | None) -> str:
    if scheme and host:
        return f"{scheme}://{host}/{MASK}"
    return f"{scheme}:{MASK}" if scheme else MASK


def slack_payload(summary: str, issues: list, *, limit: int = TOP_ISSUES) -> dict:
    """The message: the one-line verdict, then the worst issues, one a line."""
    lines = [summary]
    lines.extend(
        f"- {issue['status'].upper()} {issue['section']}: {issue['message']}"
        for issue in issues[:limit]
    )
    if len(issues) > limit:
        lines.append(f"- and {len(issues) - limit} more issues in the report")
    return {"text": "\n".join(lines)}


def post_json(url: str, payload: dict, *, timeout: float, validate_certs: bool) -> dict:
    """POST ``payload`` as JSON; return ``{sent, status_code, error}``, never raise.

    The URL of an incoming webhook is itself the credential, so no error text
    returned from here contains it.
    """
    try:
        response = open_url(
            url,
            data=json.dumps(payload).encode("utf-8"),
            headers={"Content-Type": "application/json"},
            method="POST",
            timeout=timeout,
            validate_certs=validate_certs,
            follow_redirects="none",
        )
        with response:
            response.read()
            return {"sent": True, "status_code": response.status, "error": None}
    except HTTPError as error:
        reason = f"HTTP {error.code} {error.reason}"
        return {"sent": False, "status_code": error.code, "error": _hide(reason, url)}
    except (URLError, UrlConnectionError, socket.timeout, OSError, ValueError) as error:
        return {"sent": False, "status_code": None, "error": _hide(_reason(error), url)}


def _reason(error: Exception) -> str:
    reason: Any = getattr(error, "reason", None) or error
    if isinstance(reason, socket.timeout) or "timed out" in str(reason):
        return "the webhook did not answer in time"
    return f"could not reach the webhook: {reason}"


def _hide(text: str, url: str) -> str:
    return text.replace(url, "the webhook URL") if url else text
