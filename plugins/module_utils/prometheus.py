# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PromQL checks: instant queries judged against thresholds, series by series."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from ansible_collections.trm.maintenance.plugins.module_utils.checks import (
    CheckResult,
    Finding,
    measured,
    rank,
    unknown,
)
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    MaintenanceError,
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.http import (
    HttpSettings,
    InvalidResponse,
    RequestError,
    check_url,
    redact_url,
    request,
    run_concurrently,
    settings_from_params,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    ABOVE,
    CRITICAL,
    OK,
    UNKNOWN,
    WARNING,
    Range,
    Threshold,
    parse_threshold,
)

SUBJECT = "Prometheus queries"
QUERY_PATH = "/api/v1/query"
# A query over thousands of series answers in megabytes; more means a mistake.
MAX_ANSWER_BYTES = 32 * 1024 * 1024
EMPTY_CHOICES = (OK, WARNING, CRITICAL, UNKNOWN)
THRESHOLD_KEYS = ("warning", "critical", "direction", "normal", "investigate")
TARGET_LABELS = ("__name__", "job", "instance")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
# Scaling turns 0.015 into 1.5000000000000002; twelve significant digits is
# far beyond what any threshold needs and removes that noise.
SIGNIFICANT_DIGITS = 12


class PrometheusError(MaintenanceError):
    """Prometheus answered ``status: error``, most often for bad PromQL."""

    def __init__(self, error_type: str, error: str) -> None:
        self.error_type = error_type
        self.error = error
        super().__init__(f"{error_type}: {error}" if error_type else error)


class UnsupportedResult(MaintenanceError):
    """The query returned a result type that has no single value per series."""


@dataclass(frozen=True)
class Query:
    """One entry of ``queries``: the PromQL and how to judge what it returns."""

    index: int
    name: str
    promql: str
    label: str
    unit: str = ""
    scale: float = 1.0
    threshold: Any = None
    per_series: bool = False
    empty: str = UNKNOWN
    action: str | None = None

    @property
    def option(self) -> str:
        """The option path of this query, for messages."""
        return f"queries[{self.index}]"


@dataclass(frozen=True)
class Sample:
    """One returned series: its labels and its value as Prometheus wrote it."""

    labels: dict
    raw: str

    @property
    def number(self) -> float:
        """The value as a float; NaN and infinities included."""
        return float(self.raw)

    @property
    def finite(self) -> bool:
        """Tell whether the value is a real number (not NaN, not infinite)."""
        return math.isfinite(self.number)


# The Prometheus HTTP API


class PrometheusClient:
    """Runs instant queries against one Prometheus server."""

    def __init__(self, url: str, settings: HttpSettings) -> None:
        self.url = url.rstrip("/")
        self.settings = settings

    @property
    def shown_url(self) -> str:
        """The server's URL without credentials."""
        return redact_url(self.url)

    def query(self, promql: str, *, time: str | None = None) -> dict:
        """Run an instant query and return its ``data`` (resultType and result)."""
        params = {"query": promql}
        if time:
            params["time"] = time
        url = f"{self.url}{QUERY_PATH}?{urlencode(params)}"
        response = request(url, self.settings, max_body=MAX_ANSWER_BYTES)
        try:
            answer = response.json()
        except InvalidResponse:
            response.raise_for_status()
            raise
        if not isinstance(answer, dict) or "status" not in answer:
            response.raise_for_status()
            raise InvalidResponse(url, f"{response.url} is not a Prometheus API")
        if answer["status"] != "success":
            raise PrometheusError(answer.get("errorType", ""), answer.get("error", ""))
        return answer.get("data") or {}


def samples_of(data: Any) -> list[Sample]:
    """Return the series of an instant query's ``data``, one sample each."""
    try:
        kind = data.get("resultType")
        samples = _samples(kind, data.get("result"))
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        raise UnsupportedResult(
            "the answer is not in the shape the Prometheus API uses"
        ) from None
    if samples is not None:
        return samples
    hint = "; wrap a range selector such as [5m] in a function like rate()"
    raise UnsupportedResult(
        f"the query returned a {kind}, not an instant vector or a scalar"
        + (hint if kind == "matrix" else "")
    )


def _samples(kind: Any, result: Any) -> list[Sample] | None:
    """Read a vector or a scalar result; None for any other result type."""
    if kind == "vector":
        samples = [
            Sample(item.get("metric", {}), str(item["value"][1])) for item in result
        ]
    elif kind == "scalar":
        samples = [Sample({}, str(result[1]))]
    else:
        return None
    # Reading every value now turns a malformed one into an error here.
    for sample in samples:
        sample.number  # noqa: B018
    return samples


# Option parsing


def parse_queries(items: Any) -> list[Query]:
    """Check the ``queries`` option and return the queries."""
    if not items:
        raise OptionError("queries", items, "must list at least one query")
    queries = [_parse_query(item, index) for index, item in enumerate(items)]
    seen: dict[str, int] = {}
    for query in queries:
        if query.name in seen:
            raise OptionError(
                f"{query.option}.name",
                query.name,
                f"repeats the name of queries[{seen[query.name]}]",
            )
        seen[query.name] = query.index
    return queries


def _parse_query(item: dict, index: int) -> Query:
    """Check one entry of ``queries``."""
    option = f"queries[{index}]"
    name = item.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise OptionError(
            f"{option}.name",
            name,
            "must be snake_case: lower-case letters, digits and underscores, "
            "starting with a letter",
        )
    promql = item.get("query")
    if not isinstance(promql, str) or not promql.strip():
        raise OptionError(f"{option}.query", promql, "must be a PromQL expression")
    return Query(
        index=index,
        name=name,
        promql=promql.strip(),
        label=item.get("label") or name,
        unit=item.get("unit") or "",
        scale=_scale(item.get("scale"), f"{option}.scale"),
        threshold=_threshold(item, option),
        per_series=bool(item.get("per_series")),
        empty=_empty(item.get("empty"), f"{option}.empty"),
        action=item.get("action"),
    )


def _scale(value: Any, option: str) -> float:
    """Return the factor values are multiplied by (1 by default)."""
    if value is None:
        return 1.0
    try:
        factor = float(value)
    except (TypeError, ValueError):
        raise OptionError(option, value, "must be a number") from None
    if isinstance(value, bool) or not math.isfinite(factor) or factor == 0:
        raise OptionError(option, value, "must be a finite number other than zero")
    return factor


def _threshold(item: dict, option: str) -> Any:
    """Build the query's threshold from its threshold keys, if it has any."""
    spec = {key: item[key] for key in THRESHOLD_KEYS if item.get(key) is not None}
    return parse_threshold(spec, option=option) if spec else None


def _empty(value: Any, option: str) -> str:
    """Return the status of a query that matched no series."""
    status = value or UNKNOWN
    if status not in EMPTY_CHOICES:
        raise OptionError(option, value, f"must be one of {list(EMPTY_CHOICES)}")
    return status


def parse_time(value: Any) -> str | None:
    """Check the evaluation time: a Unix timestamp or an RFC 3339 date and time."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    try:
        float(text)
        return text
    except ValueError:
        pass
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise OptionError(
            "time", value, "must be a Unix timestamp or an RFC 3339 date and time"
        ) from None
    return text


# Judging results


def series_selector(labels: dict, names: list[str] | None = None) -> str:
    """Write labels the way PromQL does: ``{mountpoint="/",device="sda1"}``."""
    keys = sorted(labels) if names is None else [n for n in names if n in labels]
    if not keys:
        return ""
    pairs = [f"{key}={_quoted(labels[key])}" for key in keys]
    return "{" + ",".join(pairs) + "}"


def _quoted(value: Any) -> str:
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def naming_labels(samples: list[Sample]) -> list[str]:
    """Return the labels that tell the series apart.

    Those are the labels whose values differ between the series. A lone series
    is named by its labels other than the metric name and the scrape target
    (``job``, ``instance``), which would only repeat where it came from.
    """
    if len(samples) < 2:
        return sorted(
            key for s in samples for key in s.labels if key not in TARGET_LABELS
        )
    keys = sorted({key for sample in samples for key in sample.labels})
    return [
        key for key in keys if len({sample.labels.get(key) for sample in samples}) > 1
    ]


def judge(query: Query, samples: list[Sample]) -> list[Finding]:
    """Judge the samples of one query: one finding, or one per series."""
    if not samples:
        return [_empty_finding(query)]
    names = naming_labels(samples)
    if query.per_series:
        return [
            sample_finding(
                query, sample, selector=series_selector(sample.labels, names)
            )
            for sample in samples
        ]
    return [_worst_finding(query, samples, names)]


def sample_finding(query: Query, sample: Sample, *, selector: str = "") -> Finding:
    """Judge one sample; NaN and infinities cannot be judged and are unknown."""
    name = f"{query.name}{selector}"
    label = f"{query.label} {selector}" if selector else query.label
    details = _details(query, sample.labels)
    if not sample.finite:
        reason = (
            f"{label} is {sample.raw}, which cannot be judged "
            "(a division by zero, or no data in the range)"
        )
        return unknown(
            name, reason, action=_action(query), value_text=sample.raw, **details
        )
    value = float(f"{sample.number * query.scale:.{SIGNIFICANT_DIGITS}g}")
    return measured(
        name,
        value,
        query.threshold,
        label=label,
        unit=query.unit,
        action=_action(query),
        details={"value_text": sample.raw, **details},
    )


def _worst_finding(query: Query, samples: list[Sample], names: list[str]) -> Finding:
    """Judge every series and keep the worst, saying which series it was."""
    findings = [sample_finding(query, sample) for sample in samples]
    worst = max(range(len(samples)), key=lambda i: _badness(query, findings[i]))
    finding = findings[worst]
    if len(samples) > 1:
        selector = series_selector(samples[worst].labels, names)
        finding = dataclasses.replace(
            finding,
            message=f"{finding.message} (worst of {len(samples)} series: {selector})",
            details={**finding.details, "series_count": len(samples)},
        )
    return finding


def _badness(query: Query, finding: Finding) -> tuple:
    """Order findings by status, then by how far the value goes the wrong way."""
    value = finding.value
    if value is None:
        return (rank(finding.status), 0.0)
    threshold = query.threshold
    if isinstance(threshold, Range):
        return (rank(finding.status), _outside(value, threshold.normal))
    below = isinstance(threshold, Threshold) and threshold.direction != ABOVE
    return (rank(finding.status), -value if below else value)


def _outside(value: float, bounds: tuple) -> float:
    """How far ``value`` lies outside ``bounds`` (0 inside)."""
    low, high = bounds
    return max(
        0.0 if low is None else low - value, 0.0 if high is None else value - high, 0.0
    )


def _empty_finding(query: Query) -> Finding:
    """The finding of a query that matched no series."""
    message = f"{query.label}: no series matched the query"
    if query.empty == OK:
        message += " (allowed: empty is ok)"
    action = None
    if query.empty != OK:
        action = query.action or (
            f"Check that the series of {query.option}.query exist and are scraped"
        )
    return Finding(
        name=query.name,
        status=query.empty,
        message=message,
        unit=query.unit or None,
        threshold=query.threshold,
        action=action,
        details=_details(query, {}, series_count=0),
    )


def _details(query: Query, labels: dict, *, series_count: int = 1) -> dict:
    """The keys every query finding carries."""
    return {"query": query.promql, "series": dict(labels), "series_count": series_count}


def _action(query: Query) -> str:
    return query.action or f"Investigate {query.label} ({query.option}: {query.name})"


def error_finding(query: Query, error: MaintenanceError, server: str) -> Finding:
    """Turn a query that could not run into an unknown finding with the reason."""
    details = _details(query, {}, series_count=0)
    if isinstance(error, PrometheusError):
        reason = f"{query.label}: Prometheus rejected the query: {error}"
        action = f"Fix {query.option}.query: {query.promql}"
    elif isinstance(error, UnsupportedResult):
        reason = f"{query.label}: {error}"
        action = f"Change {query.option}.query to return an instant vector or scalar"
    elif isinstance(error, RequestError):
        reason = f"{query.label}: Prometheus at {server} could not be queried: {error}"
        action = f"Check that Prometheus runs and answers at {server}"
    else:
        reason = f"{query.label}: {error}"
        action = _action(query)
    return unknown(query.name, reason, action=action, **details)


# The check


def evaluate(client: PrometheusClient, query: Query, *, time: str | None) -> list:
    """Run one query and judge what it returned."""
    try:
        samples = samples_of(client.query(query.promql, time=time))
    except (RequestError, PrometheusError, UnsupportedResult) as error:
        return [error_finding(query, error, client.shown_url)]
    return judge(query, samples)


def query_metrics(findings: list[Finding]) -> dict:
    """Return each finding's value under its name (finite numbers only)."""
    return {
        finding.name: finding.value
        for finding in findings
        if isinstance(finding.value, (int, float))
    }


def run_prometheus_query(params: dict) -> dict:
    """Run every query concurrently and return the module result."""
    settings = settings_from_params(params)
    url = check_url(params.get("url"), "url")
    queries = parse_queries(params.get("queries"))
    time = parse_time(params.get("time"))
    client = PrometheusClient(url, settings)
    batches = run_concurrently(
        lambda query: evaluate(client, query, time=time),
        queries,
        max_workers=params.get("max_workers", 16),
    )
    findings = [finding for batch in batches for finding in batch]
    result = CheckResult(findings=findings, metrics=query_metrics(findings))
    return result.to_dict(SUBJECT)
