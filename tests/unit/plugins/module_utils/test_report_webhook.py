"""Unit tests for the report's webhook: which URLs it accepts, what it posts."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils import report, webhook
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)

SECRET = "T000/B000/not-a-real-webhook-secret"


@pytest.mark.parametrize(
    "url",
    [
        f"https://hooks.example.com/services/{SECRET}",
        f"http://127.0.0.1:8080/services/{SECRET}",
        f"HTTPS://hooks.example.com/{SECRET}",
    ],
)
def test_http_and_https_urls_are_accepted(url: str):
    assert webhook.checked_url(url) == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            f"ftp://hooks.example.com/{SECRET}",
            "must be an http or https URL; got 'ftp://hooks.example.com/***'",
        ),
        (
            "ftp://user:pw-s3cr3t@files.example.com/x",
            "must be an http or https URL; got 'ftp://files.example.com/***'",
        ),
        (
            f"file:///etc/{SECRET}",
            "must be an http or https URL; got 'file:***'",
        ),
        (
            f"hooks.example.com/services/{SECRET}",
            "must be an http or https URL; got '***'",
        ),
        (
            f"https:///services/{SECRET}",
            "must be an https URL with a host name; got 'https:***'",
        ),
        (
            f"http://[::1/{SECRET}",
            "must be an http or https URL; got '***'",
        ),
    ],
)
def test_other_urls_name_the_option_and_hide_the_secret(url: str, message: str):
    with pytest.raises(OptionError) as raised:
        webhook.checked_url(url)
    assert raised.value.option == "webhook_url"
    assert str(raised.value) == f"Option 'webhook_url' {message}"
    for secret in (SECRET, "pw-s3cr3t", "user"):
        assert secret not in str(raised.value)
        assert secret not in repr(raised.value.value)


def test_report_refuses_an_ftp_webhook_before_writing(tmp_path: Path):
    params = {
        "cadence": "daily",
        "results": [],
        "report_dir": str(tmp_path),
        "webhook_url": f"ftp://hooks.example.com/{SECRET}",
    }
    with pytest.raises(OptionError) as raised:
        report.produce_report(params, check_mode=False, warn=print)
    assert raised.value.option == "webhook_url"
    assert list(tmp_path.iterdir()) == []


def test_payload_lists_the_top_issues_and_counts_the_rest():
    issues = [
        {"status": "critical", "section": f"S{n}", "message": f"m{n}"} for n in range(3)
    ]
    payload = webhook.slack_payload("Daily CRITICAL", issues, limit=2)
    assert payload == {
        "text": "Daily CRITICAL\n- CRITICAL S0: m0\n- CRITICAL S1: m1\n"
        "- and 1 more issues in the report"
    }
