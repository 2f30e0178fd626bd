"""Decisions of the Prometheus check: results, series names, worst series, errors."""

from __future__ import annotations

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.http import (
    ConnectionRefused,
)
from ansible_collections.trm.maintenance.plugins.module_utils.prometheus import (
    PrometheusError,
    Sample,
    UnsupportedResult,
    error_finding,
    judge,
    naming_labels,
    parse_queries,
    parse_time,
    query_metrics,
    samples_of,
    series_selector,
)

SERVER = "http://127.0.0.1:9090"


def query(**item):
    """One parsed query, with the defaults AnsibleModule fills in."""
    spec = {"name": "disk_usage_pct", "query": "disk", "scale": 1.0, "empty": "unknown"}
    return parse_queries([{**spec, **item}])[0]


def disk(*values, **labels):
    """Samples of node_filesystem-like series, one per mountpoint."""
    mounts = ["/", "/data", "/boot", "/var"]
    return [
        Sample(
            {"device": f"sd{i}", "instance": "node:9100", "mountpoint": mounts[i]},
            str(value),
        )
        for i, value in enumerate(values)
    ]


# Results


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {
                "resultType": "vector",
                "result": [{"metric": {"a": "1"}, "value": [1.0, "0.5"]}],
            },
            [Sample({"a": "1"}, "0.5")],
        ),
        ({"resultType": "vector", "result": []}, []),
        ({"resultType": "scalar", "result": [1.0, "NaN"]}, [Sample({}, "NaN")]),
    ],
)
def test_vectors_and_scalars_become_samples(data, expected):
    assert samples_of(data) == expected


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (
            {"resultType": "matrix", "result": []},
            "returned a matrix, not an instant vector or a scalar; wrap a range "
            "selector such as [5m] in a function like rate()",
        ),
        (
            {"resultType": "string", "result": [1, "x"]},
            "returned a string, not an instant vector or a scalar",
        ),
        (
            {"resultType": "vector", "result": [{"metric": {}}]},
            "the answer is not in the shape the Prometheus API uses",
        ),
        (
            {"resultType": "scalar", "result": [1.0, "many"]},
            "the answer is not in the shape the Prometheus API uses",
        ),
        (["not", "a", "mapping"], "the answer is not in the shape the Prometheus API"),
    ],
)
def test_other_results_are_refused_with_the_reason(data, words):
    with pytest.raises(UnsupportedResult) as caught:
        samples_of(data)
    assert words in str(caught.value)


# Series names


@pytest.mark.parametrize(
    ("labels", "names", "expected"),
    [
        ({"mountpoint": "/", "device": "sda"}, ["mountpoint"], '{mountpoint="/"}'),
        ({"b": "2", "a": "1"}, None, '{a="1",b="2"}'),
        ({"path": 'C:\\dir "x"'}, None, '{path="C:\\\\dir \\"x\\""}'),
        ({"a": "1"}, [], ""),
        ({}, None, ""),
    ],
)
def test_selectors_are_written_like_promql(labels, names, expected):
    assert series_selector(labels, names) == expected


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        (disk(1, 2, 3), ["device", "mountpoint"]),
        (disk(1), ["device", "mountpoint"]),
        ([Sample({"__name__": "up", "job": "a", "instance": "b"}, "1")], []),
        (
            [
                Sample({"__name__": "up", "job": "a"}, "1"),
                Sample({"__name__": "up", "job": "b"}, "1"),
            ],
            ["job"],
        ),
        (
            [Sample({"__name__": "x"}, "1"), Sample({"__name__": "y"}, "1")],
            ["__name__"],
        ),
        ([], []),
    ],
)
def test_series_are_named_by_the_labels_that_tell_them_apart(samples, expected):
    assert naming_labels(samples) == expected


# Judging


def test_per_series_queries_judge_every_series_under_its_own_name():
    item = query(warning=80, critical=90, unit="%", label="Disk usage", per_series=True)
    findings = judge(item, disk(85, 95, 40))
    assert [(f.name, f.status, f.value) for f in findings] == [
        ('disk_usage_pct{device="sd0",mountpoint="/"}', "warning", 85.0),
        ('disk_usage_pct{device="sd1",mountpoint="/data"}', "critical", 95.0),
        ('disk_usage_pct{device="sd2",mountpoint="/boot"}', "ok", 40.0),
    ]
    assert findings[0].message == (
        'Disk usage {device="sd0",mountpoint="/"} is 85%, '
        "above the warning threshold of 80%"
    )
    assert findings[1].details["series"]["mountpoint"] == "/data"
    assert findings[2].action is None


def test_without_per_series_the_worst_series_is_judged_and_named():
    item = query(warning=80, critical=90, unit="%", label="Disk usage")
    (finding,) = judge(item, disk(85, 95, 40))
    assert (finding.name, finding.status, finding.value) == (
        "disk_usage_pct",
        "critical",
        95.0,
    )
    assert finding.message == (
        "Disk usage is 95%, above the critical threshold of 90% "
        '(worst of 3 series: {device="sd1",mountpoint="/data"})'
    )
    assert finding.details["series_count"] == 3


@pytest.mark.parametrize(
    ("thresholds", "values", "worst"),
    [
        ({"warning": 80, "critical": 90}, (10, 30, 20), 30.0),  # all ok: the highest
        ({"warning": 20, "critical": 10, "direction": "below"}, (50, 15, 5), 5.0),
        ({"warning": 20, "critical": 10, "direction": "below"}, (50, 40, 45), 40.0),
        ({"normal": [40, 60], "investigate": [20, 80]}, (50, 65, 30), 30.0),
        ({}, (1, 7, 3), 7.0),
    ],
)
def test_the_worst_series_goes_the_furthest_the_wrong_way(thresholds, values, worst):
    (finding,) = judge(query(**thresholds), disk(*values))
    assert finding.value == worst


@pytest.mark.parametrize(
    ("raw", "status", "value"),
    [
        ("NaN", "unknown", None),
        ("+Inf", "unknown", None),
        ("-Inf", "unknown", None),
        ("0.015", "warning", 1.5),
        ("0.03", "critical", 3.0),
        ("0.001", "ok", 0.1),
    ],
)
def test_values_are_scaled_and_nan_or_inf_is_unknown(raw, status, value):
    item = query(name="error_rate_pct", scale=100, unit="%", warning=1, critical=2)
    (finding,) = judge(item, [Sample({}, raw)])
    assert (finding.status, finding.value) == (status, value)
    assert finding.details["value_text"] == raw
    if status == "unknown":
        assert finding.message == (
            f"error_rate_pct is {raw}, which cannot be judged "
            "(a division by zero, or no data in the range)"
        )
        assert finding.action.startswith("Investigate error_rate_pct")


def test_one_nan_series_makes_an_otherwise_ok_query_unknown():
    (finding,) = judge(query(warning=80), disk(10, "NaN"))
    assert finding.status == "unknown"
    assert finding.message.endswith(
        '(worst of 2 series: {device="sd1",mountpoint="/data"})'
    )


@pytest.mark.parametrize(
    ("empty", "status", "action"),
    [
        ("unknown", "unknown", "Check that the series of queries[0].query exist"),
        ("ok", "ok", None),
        ("critical", "critical", "Check that the series of queries[0].query exist"),
    ],
)
def test_no_series_takes_the_status_of_empty(empty, status, action):
    (finding,) = judge(query(empty=empty, label="Disk usage"), [])
    assert finding.status == status
    assert finding.message.startswith("Disk usage: no series matched the query")
    if action is None:
        assert finding.action is None
    else:
        assert finding.action.startswith(action)
    assert finding.details["series_count"] == 0


def test_an_action_given_by_the_user_is_used_when_not_ok():
    item = query(warning=1, action="Free space on the volume")
    assert judge(item, disk(5))[0].action == "Free space on the volume"
    assert judge(item, disk(0.5))[0].action is None


@pytest.mark.parametrize(
    ("error", "words", "action"),
    [
        (
            PrometheusError("bad_data", '1:5: parse error: unexpected "("'),
            "Disk usage: Prometheus rejected the query: bad_data: 1:5: parse error: "
            'unexpected "("',
            "Fix queries[0].query: disk",
        ),
        (
            ConnectionRefused(SERVER, "connection refused by 127.0.0.1:9090"),
            f"Disk usage: Prometheus at {SERVER} could not be queried: "
            "connection refused by 127.0.0.1:9090",
            f"Check that Prometheus runs and answers at {SERVER}",
        ),
        (
            UnsupportedResult("the query returned a matrix"),
            "Disk usage: the query returned a matrix",
            "Change queries[0].query to return an instant vector or scalar",
        ),
    ],
)
def test_queries_that_cannot_run_are_unknown_with_the_reason(error, words, action):
    finding = error_finding(query(label="Disk usage"), error, SERVER)
    assert (finding.status, finding.message, finding.action) == (
        "unknown",
        words,
        action,
    )
    assert finding.details["query"] == "disk"


def test_metrics_hold_finite_values_under_finding_names():
    per_series = judge(query(per_series=True), disk(85, "NaN"))
    worst = judge(query(name="error_rate_pct", scale=100), [Sample({}, "0.015")])
    assert query_metrics(per_series + worst) == {
        'disk_usage_pct{device="sd0",mountpoint="/"}': 85.0,
        "error_rate_pct": 1.5,
    }


# Options


@pytest.mark.parametrize(
    ("items", "words"),
    [
        ([], "Option 'queries' must list at least one query; got []"),
        (
            [{"name": "Disk Usage", "query": "x"}],
            "Option 'queries[0].name' must be snake_case",
        ),
        (
            [{"name": "a", "query": "x"}, {"name": "a", "query": "y"}],
            "Option 'queries[1].name' repeats the name of queries[0]; got 'a'",
        ),
        ([{"name": "a", "query": "  "}], "Option 'queries[0].query' must be a PromQL"),
        (
            [{"name": "a", "query": "x", "warning": 90, "critical": 80}],
            "Option 'queries[0]' critical must be at or above warning",
        ),
        (
            [{"name": "a", "query": "x", "normal": [1, 5], "investigate": [2, 4]}],
            "Option 'queries[0]' the investigate range must contain the normal range",
        ),
        (
            [{"name": "a", "query": "x", "normal": [1, 2], "warning": 3}],
            "Option 'queries[0]' has unknown keys ['warning']",
        ),
        (
            [{"name": "a", "query": "x", "scale": 0}],
            "Option 'queries[0].scale' must be",
        ),
        (
            [{"name": "a", "query": "x", "empty": "maybe"}],
            "Option 'queries[0].empty' must be one of",
        ),
    ],
)
def test_bad_queries_name_the_option_and_the_value(items, words):
    with pytest.raises(OptionError) as caught:
        parse_queries(items)
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("1700000000", "1700000000"),
        ("1700000000.5", "1700000000.5"),
        ("2024-05-01T02:00:00Z", "2024-05-01T02:00:00Z"),
        ("2024-05-01T02:00:00+02:00", "2024-05-01T02:00:00+02:00"),
    ],
)
def test_evaluation_times_are_timestamps_or_rfc3339(value, expected):
    assert parse_time(value) == expected


def test_a_bad_evaluation_time_names_the_option():
    with pytest.raises(OptionError) as caught:
        parse_time("yesterday")
    assert str(caught.value) == (
        "Option 'time' must be a Unix timestamp or an RFC 3339 date and time; "
        "got 'yesterday'"
    )
