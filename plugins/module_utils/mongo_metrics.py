# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Counts from MongoDB, each defined in the inventory and judged by a range.

A count is a collection, a filter, and optionally a date field with a window
ending now: documents dated within the window, or dated before it (with or
without a date at all). Counts use the ``count`` command with a query, one
round trip each; listings never include fields that look like secrets.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ansible_collections.trm.maintenance.plugins.module_utils.checks import (
    CheckResult,
    measured,
    unknown,
)
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.mongo import (
    HAS_PYMONGO,
    MongoSession,
    Refused,
    ServerProblem,
    aware,
    iso,
    plain,
    problem_finding,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    Range,
    Threshold,
    parse_threshold,
)

if HAS_PYMONGO:
    from bson import json_util

SUBJECT = "MongoDB metrics"
WITHIN = "within"
BEFORE = "before"
COUNT_KEYS = frozenset(
    {
        "name",
        "label",
        "collection",
        "database",
        "filter",
        "date_field",
        "window",
        "date_match",
        "include_missing",
        "range",
        "threshold",
        "unit",
        "action",
        "list_fields",
        "list_limit",
        "list_sort",
    }
)
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
WINDOW_PATTERN = re.compile(r"^\s*(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>[mhdw])\s*$")
WINDOW_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# Words that mark a field as secret; a listing never shows such a field.
SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "key",
        "apikey",
        "hash",
        "salt",
        "credential",
        "credentials",
        "otp",
        "totp",
        "mfa",
        "private",
        "signature",
    }
)
MAX_LIST = 500
# Far beyond any business window, and far from the limits of a date.
MAX_WINDOW = timedelta(days=36500)


@dataclass(frozen=True)
class CountSpec:
    """One entry of ``counts``: what to count and how to judge the number."""

    index: int
    name: str
    label: str
    database: str
    collection: str
    query: dict
    date_field: str | None = None
    window: timedelta | None = None
    window_text: str | None = None
    date_match: str = WITHIN
    include_missing: bool = False
    threshold: Any = None
    unit: str = ""
    action: str | None = None
    list_fields: tuple = ()
    list_limit: int = 20
    list_sort: tuple = field(default_factory=tuple)

    @property
    def option(self) -> str:
        """The option path of this count, for messages."""
        return f"counts[{self.index}]"


def secret_field(name: str) -> bool:
    """Tell whether a field name reads like a secret (password, keyHash, token)."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    words = {word.lower() for word in re.split(r"[^A-Za-z0-9]+|\s", spaced) if word}
    return bool(words & SECRET_WORDS)


def parse_window(value: Any, option: str) -> timedelta:
    """A window such as ``24h``, ``30d``, ``2w`` or ``90m`` as a timedelta."""
    match = WINDOW_PATTERN.match(str(value)) if value is not None else None
    if not match:
        raise OptionError(option, value, "must be a duration such as 24h, 30d or 2w")
    amount = float(match.group("amount"))
    if amount <= 0:
        raise OptionError(option, value, "must be a duration above 0")
    unit = timedelta(**{WINDOW_UNITS[match.group("unit")]: 1})
    if amount * unit.total_seconds() > MAX_WINDOW.total_seconds():
        raise OptionError(
            option, value, f"must be at most {MAX_WINDOW.days}d (100 years)"
        )
    return amount * unit


def parse_counts(raw: Any, *, database: str | None) -> list:
    """Check every entry of ``counts`` and return them as ``CountSpec``."""
    if not isinstance(raw, list) or not raw:
        raise OptionError("counts", raw, "must be a non-empty list of counts")
    specs = [_parse_count(item, index, database) for index, item in enumerate(raw)]
    names = [spec.name for spec in specs]
    doubled = sorted({name for name in names if names.count(name) > 1})
    if doubled:
        raise OptionError("counts", doubled, "must give every count a unique name")
    return specs


def _parse_count(item: Any, index: int, database: str | None) -> CountSpec:
    option = f"counts[{index}]"
    if not isinstance(item, dict):
        raise OptionError(option, item, "must be a mapping")
    unknown_keys = sorted(set(item) - COUNT_KEYS)
    if unknown_keys:
        raise OptionError(
            option, unknown_keys, f"has unknown keys; allowed: {sorted(COUNT_KEYS)}"
        )
    name = _required_text(item, "name", option)
    if not NAME_PATTERN.match(name):
        raise OptionError(f"{option}.name", name, "must be snake_case (a-z, 0-9, _)")
    target_db = item.get("database") or database
    if not target_db:
        raise OptionError(
            f"{option}.database", None, "or the database option must be set"
        )
    window = _window(item, option)
    return CountSpec(
        index=index,
        name=name,
        label=str(item.get("label") or name.replace("_", " ").capitalize()),
        database=str(target_db),
        collection=_required_text(item, "collection", option),
        query=_query(item.get("filter"), f"{option}.filter"),
        threshold=_judgement(item, option),
        unit=str(item.get("unit") or ""),
        action=item.get("action"),
        **window,
        **_listing(item, option),
    )


def _required_text(item: dict, key: str, option: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip():
        raise OptionError(f"{option}.{key}", value, "must be a non-empty string")
    return value.strip()


def _window(item: dict, option: str) -> dict:
    date_field = item.get("date_field")
    match = item.get("date_match") or WITHIN
    if match not in (WITHIN, BEFORE):
        raise OptionError(f"{option}.date_match", match, "must be 'within' or 'before'")
    if not date_field:
        if item.get("window") is not None:
            raise OptionError(f"{option}.window", item["window"], "needs a date_field")
        return {}
    return {
        "date_field": str(date_field),
        "window": parse_window(item.get("window"), f"{option}.window"),
        "window_text": str(item.get("window")).strip(),
        "date_match": match,
        "include_missing": bool(item.get("include_missing", False)),
    }


def _query(value: Any, option: str) -> dict:
    """The filter with MongoDB Extended JSON (``{"$date": ...}``) turned into BSON."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise OptionError(option, value, "must be a mapping (a MongoDB query)")
    try:
        return json.loads(json.dumps(value), object_hook=json_util.object_hook)
    except (TypeError, ValueError) as error:
        raise OptionError(option, value, f"is not a valid query ({error})") from None


def _judgement(item: dict, option: str) -> Any:
    if item.get("range") is not None and item.get("threshold") is not None:
        raise OptionError(
            option, item.get("name"), "may set range or threshold, not both"
        )
    if item.get("range") is not None:
        found = parse_threshold(item["range"], option=f"{option}.range")
        if not isinstance(found, Range):
            raise OptionError(
                f"{option}.range", item["range"], "must have normal and investigate"
            )
        return found
    if item.get("threshold") is not None:
        found = parse_threshold(item["threshold"], option=f"{option}.threshold")
        if not isinstance(found, Threshold):
            raise OptionError(
                f"{option}.threshold",
                item["threshold"],
                "must have warning or critical",
            )
        return found
    return None


def _listing(item: dict, option: str) -> dict:
    fields = item.get("list_fields") or []
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise OptionError(
            f"{option}.list_fields", fields, "must be a list of field names"
        )
    secret = [name for name in fields if secret_field(name)]
    if secret:
        raise OptionError(
            f"{option}.list_fields",
            secret,
            "names fields that look secret; they are never listed",
        )
    limit = item.get("list_limit", 20)
    if (
        isinstance(limit, bool)
        or not isinstance(limit, int)
        or not 1 <= limit <= MAX_LIST
    ):
        raise OptionError(
            f"{option}.list_limit",
            limit,
            f"must be a whole number from 1 to {MAX_LIST}",
        )
    return {
        "list_fields": tuple(fields),
        "list_limit": limit,
        "list_sort": _sort(item.get("list_sort"), f"{option}.list_sort"),
    }


def _sort(value: Any, option: str) -> tuple:
    """``field`` sorts ascending, ``-field`` descending."""
    if value is None:
        return ()
    if not isinstance(value, str) or not value.strip("-"):
        raise OptionError(
            option, value, "must be a field name, '-' first for descending"
        )
    return (value.lstrip("-"), -1 if value.startswith("-") else 1)


def count_query(spec: CountSpec, now: datetime) -> dict:
    """The query of ``spec`` at ``now``: its filter and its date window, joined.

    A window "within" includes both of its ends, so a login stamped at the very
    moment of the check counts as a login of the last 30 days.

    The parts are joined with $and rather than merged into one mapping, so a
    filter's own $or or date condition never collides with the window's.
    """
    parts = [spec.query] if spec.query else []
    if spec.date_field:
        start = now - spec.window
        if spec.date_match == WITHIN:
            parts.append({spec.date_field: {"$gte": start, "$lte": now}})
        elif spec.include_missing:
            parts.append(
                {
                    "$or": [
                        {spec.date_field: {"$lt": start}},
                        {spec.date_field: {"$type": "null"}},
                        {spec.date_field: {"$exists": False}},
                    ]
                }
            )
        else:
            parts.append({spec.date_field: {"$lt": start}})
    if not parts:
        return {}
    return parts[0] if len(parts) == 1 else {"$and": parts}


def resolve_now(value: Any, session: MongoSession) -> datetime:
    """The moment windows end: the ``now`` option, else the server's clock."""
    if not value:
        return session.server_time()
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise OptionError("now", value, "must be an ISO 8601 date and time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return aware(moment)


def run_mongo_metrics(params: dict) -> dict:
    """Count every entry of ``counts`` on one connection and judge each count."""
    specs = parse_counts(params.get("counts"), database=params.get("database"))
    result = CheckResult()
    window: dict = {}
    with MongoSession(params) as session:
        try:
            now = resolve_now(params.get("now"), session)
            window["until"] = iso(now)
            for spec in specs:
                result.add(_count(session, spec, now, result))
        except ServerProblem as problem:
            result.add(problem_finding(problem))
        target = session.target
    answer = result.to_dict(SUBJECT)
    answer["server"] = {"target": target, **window}
    return answer


def _count(
    session: MongoSession, spec: CountSpec, now: datetime, result: CheckResult
) -> Any:
    query = count_query(spec, now)
    details = _details(spec, query, now)
    try:
        answer = session.command(
            spec.database,
            {
                "count": spec.collection,
                "query": query,
                "maxTimeMS": session.max_time_ms,
            },
        )
        value = answer.get("n")
        if not isinstance(value, int):
            return unknown(
                spec.name, f"count answered without n for {spec.collection}", **details
            )
        if spec.list_fields:
            details["documents"] = _listing_of(session, spec, query)
    except Refused as refusal:
        return unknown(spec.name, refusal.reason, action=refusal.action, **details)
    result.metrics[spec.name] = value
    return measured(
        spec.name,
        value,
        spec.threshold,
        label=spec.label,
        unit=spec.unit,
        action=spec.action or _default_action(spec),
        details=details,
    )


def _default_action(spec: CountSpec) -> str:
    return (
        f"Investigate {spec.label.lower()}: compare with the previous days and "
        "check the application's logs for the flows that create these records"
    )


def _details(spec: CountSpec, query: dict, now: datetime) -> dict:
    details: dict = {
        "database": spec.database,
        "collection": spec.collection,
        "query": plain(query),
    }
    if spec.date_field:
        details["window"] = {
            "field": spec.date_field,
            "length": spec.window_text,
            "match": spec.date_match,
            "since": iso(now - spec.window) if spec.date_match == WITHIN else None,
            "until": iso(now) if spec.date_match == WITHIN else iso(now - spec.window),
            "include_missing": spec.include_missing,
        }
    return details


def listing_projection(fields: tuple) -> dict:
    """The projection of a listing: the listed fields, ``_id`` only when listed.

    MongoDB returns ``_id`` unless told not to, and some collections are keyed
    by a secret (API keys by their value).
    """
    projection = dict.fromkeys(fields, 1)
    if "_id" not in fields:
        projection["_id"] = 0
    return projection


def listed_fields(doc: Any, fields: tuple) -> Any:
    """Keep only the listed fields of ``doc``, for servers that return more."""
    if not isinstance(doc, dict):
        return doc
    tops = {name.split(".", 1)[0] for name in fields}
    return {key: value for key, value in doc.items() if key in tops}


def _listing_of(session: MongoSession, spec: CountSpec, query: dict) -> list:
    projection = listing_projection(spec.list_fields)
    sort = [spec.list_sort] if spec.list_sort else None
    docs = session.find(
        spec.database,
        spec.collection,
        query,
        projection=projection,
        sort=sort,
        limit=spec.list_limit,
    )
    return [_scrubbed(listed_fields(plain(doc), spec.list_fields)) for doc in docs]


def _scrubbed(doc: Any) -> Any:
    """Drop secret-looking fields at any depth, in case a listed field holds one."""
    if isinstance(doc, dict):
        return {
            key: _scrubbed(value) for key, value in doc.items() if not secret_field(key)
        }
    if isinstance(doc, list):
        return [_scrubbed(item) for item in doc]
    return doc
