"""Unit tests for the manual_review_entries filter."""

from __future__ import annotations

import datetime

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.trm.maintenance.plugins.filter.manual_review_entries import (
    FilterModule,
    manual_review_entries,
)
from ansible_collections.trm.maintenance.plugins.module_utils import report

ARCHITECTURE = {
    "name": "review_architecture",
    "title": "Architecture review",
    "cadence": "quarterly",
    "items": ["Diagram is current", "Scaling limits known"],
}
SECURITY = {"name": "review_security", "title": "Security review", "items": []}
UNTITLED = {"name": "review_docs"}


def open_entry(title: str, items: list, cadence: str = "quarterly") -> dict:
    """The entry of a review nobody has recorded as done."""
    return {
        "kind": "manual",
        "section": "Manual reviews",
        "task": title,
        "cadence": cadence,
        "role": "manual_reviews",
        "items": items,
        "done": False,
        "done_by": None,
        "done_at": None,
        "notes": None,
    }


def test_filter_module_exposes_the_filter():
    assert FilterModule().filters() == {"manual_review_entries": manual_review_entries}


@pytest.mark.parametrize(
    ("reviews", "cadence", "expected"),
    [
        ([], "weekly", []),
        (
            [ARCHITECTURE],
            "quarterly",
            [open_entry("Architecture review", ARCHITECTURE["items"])],
        ),
        (
            [SECURITY, UNTITLED],
            "monthly",
            [
                open_entry("Security review", [], "monthly"),
                open_entry("review_docs", [], "monthly"),
            ],
        ),
    ],
)
def test_open_reviews_become_unticked_entries(reviews, cadence, expected):
    assert manual_review_entries(reviews, cadence) == expected


@pytest.mark.parametrize(
    ("done", "by", "at", "notes"),
    [
        ({"by": "alice", "at": "2026-12-01"}, "alice", "2026-12-01", None),
        (
            {"by": "bob", "at": datetime.date(2026, 11, 30), "notes": "ok"},
            "bob",
            "2026-11-30",
            "ok",
        ),
        ({"by": "carol"}, "carol", None, None),
        ({"at": "2026-12-02T09:15:00+00:00"}, None, "2026-12-02T09:15:00+00:00", None),
        ({"by": "dan", "at": 20261201}, "dan", "20261201", None),
    ],
)
def test_done_reviews_record_who_and_when(done: dict, by, at, notes):
    (entry,) = manual_review_entries(
        [ARCHITECTURE], "quarterly", {"review_architecture": done}
    )
    assert (entry["done"], entry["done_by"], entry["done_at"], entry["notes"]) == (
        True,
        by,
        at,
        notes,
    )


@pytest.mark.parametrize(
    "done",
    [
        '{"review_architecture": {"by": "alice", "at": "2026-12-01"}}',
        {"review_architecture": {"by": "alice", "at": "2026-12-01"}},
    ],
)
def test_done_as_json_text_or_mapping_marks_only_the_named_review(done):
    first, second = manual_review_entries([ARCHITECTURE, SECURITY], "weekly", done)
    assert (first["done"], first["done_by"], first["done_at"]) == (
        True,
        "alice",
        "2026-12-01",
    )
    assert second == open_entry("Security review", [], "weekly")


@pytest.mark.parametrize("done", ["", "   ", None, {}])
def test_empty_done_marks_nothing(done):
    (entry,) = manual_review_entries([ARCHITECTURE], "quarterly", done)
    assert entry == open_entry("Architecture review", ARCHITECTURE["items"])


@pytest.mark.parametrize(
    ("reviews", "done", "message"),
    [
        ({"name": "x"}, {}, "The reviews must be a list; got a dict"),
        ("x", {}, "The reviews must be a list; got a str"),
        ([{"title": "No name"}], {}, "Each manual review needs a name; got "),
        (["x"], {}, "Each manual review needs a name; got 'x'"),
        ([ARCHITECTURE], "{not json", "manual_reviews_done is not valid JSON: "),
        ([ARCHITECTURE], ["alice"], "(manual_reviews_done) must be a mapping"),
        ([ARCHITECTURE], "[1, 2]", "(manual_reviews_done) must be a mapping"),
        (
            [ARCHITECTURE],
            {"review_architecture": "alice"},
            "manual_reviews_done.review_architecture must be a mapping of by, at "
            "and notes; got 'alice'",
        ),
    ],
)
def test_bad_input_fails_with_a_message(reviews, done, message: str):
    with pytest.raises(AnsibleFilterError) as raised:
        manual_review_entries(reviews, "weekly", done)
    assert message in str(raised.value)


def test_entries_are_read_by_the_report_as_open_and_done_reviews():
    entries = manual_review_entries(
        [ARCHITECTURE, SECURITY],
        "quarterly",
        {"review_security": {"by": "erin", "at": "2026-12-03"}},
    )
    first, second = report.parse_entries(entries)
    assert (first.kind, first.open_items, first.items) == (
        "manual",
        2,
        ["Diagram is current", "Scaling limits known"],
    )
    assert (second.done, second.done_by, second.done_at, second.open_items) == (
        True,
        "erin",
        "2026-12-03",
        0,
    )
