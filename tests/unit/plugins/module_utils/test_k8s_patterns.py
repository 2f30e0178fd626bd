"""Pattern groups: needed strings, candidate lines, normalising and redacting."""

from __future__ import annotations

import random
import re

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.k8s_patterns import (
    DEFAULT_PATTERNS,
    Redactor,
    compile_group,
    lowered,
    matching_messages,
    message_of,
    needed_strings,
    normalise,
    parse_groups,
)


@pytest.mark.parametrize(
    ("pattern", "flags", "expected"),
    [
        (r"\b(?:ERROR|FATAL|CRITICAL)\b", 0, {"ERROR", "FATAL", "CRITICAL"}),
        ("failed login|login failed", 0, {"failed login", "login failed"}),
        ("rate.?limit|too many requests", re.I, {"limit", "too many requests"}),
        ("Payment FAILED", re.I, {"payment failed"}),
        ("CRON daily-digest completed", 0, {"CRON daily-digest completed"}),
        ("(?:foo)?barbaz", 0, {"barbaz"}),
        ("(?:abc){2}xy", 0, {"abc"}),
        ("(?:abc)*xy", 0, None),
        (r"\d{3}ms", 0, None),
        ("a|b", 0, None),
        ("abc(?i:cde)fgh", 0, {"abc"}),
        ("abcd|(?i:x)yz", 0, None),
        ("(?i)\u017fuspicious", 0, None),
        ("^WARN ", 0, {"WARN "}),
        ("(?>atomic)x", 0, {"atomic"}),
    ],
)
def test_needed_strings(pattern, flags, expected):
    found = needed_strings(pattern, re.compile(pattern, flags).flags)
    assert found == (frozenset(expected) if expected is not None else None)


def _lines(rng: random.Random, count: int) -> str:
    words = [
        "ERROR",
        "error",
        "WARN",
        "Payment failed",
        "PAYMENT FAILED",
        "İnvalid",
        "\u017fuspicious",
        "suspicious",
        "Kelvin K rate-limit",
        "ratelimit",
        "123ms",
        "2024",
        "x",
    ]
    lines = []
    for index in range(count):
        text = " ".join(rng.choice(words) for _unused in range(rng.randint(0, 5)))
        stamp = f"2024-05-05T10:{index // 60 % 60:02d}:{index % 60:02d}.{index:09d}Z"
        lines.append(f"{stamp} {text}\n")
    return "".join(lines)


@pytest.mark.parametrize(
    ("regex", "ignore_case"),
    [
        (r"\bERROR\b", False),
        ("payment failed", True),
        ("suspicious", True),
        ("rate.?limit", True),
        ("invalid", True),
        ("^WARN", False),
        (r"\d{3}ms", False),
        (r"^\S+$", False),
        ("ERROR$", False),
    ],
)
def test_candidate_search_finds_exactly_what_the_expression_finds(regex, ignore_case):
    text = _lines(random.Random(regex), 3000)
    (group,) = parse_groups([{"name": "g", "regex": regex, "ignore_case": ignore_case}])
    expected = [
        message_of(line)
        for line in text.splitlines()
        if group.regex.search(message_of(line))
    ]
    assert list(matching_messages(group, text, lowered(text))) == expected
    assert expected


def test_lowered_keeps_positions_or_says_it_cannot():
    assert lowered("ABC Ok") == "abc ok"
    assert lowered("\u017fuspicious KELVIN") == "suspicious kelvin"
    assert lowered("İstanbul") == "istanbul"
    assert lowered("ﬁle") == "ﬁle"
    # Title-case digraphs lower to one letter, so positions hold.
    assert lowered("ǅx") == "ǆx"


def test_default_patterns_make_the_guide_groups():
    groups = parse_groups(None, top=["errors"])
    assert [group.name for group in groups] == [
        item["name"] for item in DEFAULT_PATTERNS
    ]
    assert [group.top for group in groups] == [True] + [False] * (len(groups) - 1)
    assert all(group.literals for group in groups)


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([], "Option 'patterns' must list at least one pattern group; got []"),
        (
            [{"name": "a", "regex": "x("}],
            "Option 'patterns[0].regex[0]' is not a valid regular expression: "
            "missing ), unterminated subpattern at position 1; got 'x('",
        ),
        (
            [{"name": "a", "regex": "x?"}],
            "Option 'patterns[0].regex' matches an empty line, so it would count "
            "every line; got 'x?'",
        ),
        (
            [{"name": "A b", "regex": "x"}],
            "Option 'patterns[0].name' must be a snake_case name; got 'A b'",
        ),
        (
            [{"name": "a", "regex": "x"}, {"name": "a", "regex": "y"}],
            "Option 'patterns' must not repeat group names; got ['a']",
        ),
        (
            [{"name": "a", "regex": "x", "warn": 1}],
            "Option 'patterns[0]' has unknown keys ['warn']; allowed: ['action', "
            "'critical', 'direction', 'ignore_case', 'label', 'name', 'regex', "
            "'warning']; got {'name': 'a', 'regex': 'x', 'warn': 1}",
        ),
        (
            [{"name": "a", "regex": "x", "warning": 5, "critical": 1}],
            "Option 'patterns[0]' critical must be at or above warning for 'above'; "
            "got {'warning': 5, 'critical': 1}",
        ),
    ],
)
def test_bad_groups_are_refused(items, message):
    with pytest.raises(OptionError) as caught:
        parse_groups(items)
    assert str(caught.value) == message


def test_inline_global_flags_cannot_be_combined():
    with pytest.raises(OptionError) as caught:
        compile_group(["(?i)a+b", "(?i)c+d"], "patterns[0].regex")
    assert "set ignore_case instead of an inline (?i)" in str(caught.value)
    assert compile_group(["(?i:a+b)", "c+d"], "x").search("A+B") is None
    assert compile_group(["(?i:a+b)", "c+d"], "x").search("AAB") is not None


@pytest.mark.parametrize(
    ("message", "pattern"),
    [
        (
            "ERROR ValidationError: referral ref-48213 (request_id=9f1c22ab)",
            "ERROR ValidationError: referral ref-<n> (request_id=<id>)",
        ),
        (
            "WARN Failed login for admin@example.org from 203.0.113.7:5522 (attempt 3)",
            "WARN Failed login for admin@example.org from <ip> (attempt <n>)",
        ),
        (
            "job 3f2b1c4e-9d8a-4b7c-a1e2-0f9e8d7c6b5a took 12.5 s",
            "job <uuid> took <n> s",
        ),
        ("timed out after 30000 ms", "timed out after <n> ms"),
        ("id 12345678 and 1234567", "id <id> and <n>"),
    ],
)
def test_normalise(message, pattern):
    assert normalise(message) == pattern


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (
            "POST https://svc:hunter2@pay.example.org/x",
            "POST https://svc:***@pay.example.org/x",
        ),
        ("password=hunter2 user=bob", "password=*** user=bob"),
        ('db_password: "hunter2"', "db_password: ***"),
        ("Authorization: Bearer abc.def.ghi", "Authorization: Bearer ***"),
        ("token eyJhbGciOi.eyJzdWIiOi.SflKxwRJSM", "token ***"),
        ("key AKIAIOSFODNN7EXAMPLE used", "key *** used"),
        ("api_key=k1&x=2", "api_key=***&x=2"),
        ("nothing secret here", "nothing secret here"),
    ],
)
def test_redactor_masks_secrets_by_shape(text, masked):
    assert Redactor()(text) == masked


def test_redactor_masks_given_values_and_cuts_long_lines():
    redact = Redactor(["internal.example.org"])
    assert redact("call internal.example.org failed") == "call *** failed"
    assert redact("x" * 400) == "x" * 300 + "..."


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ('{"password":"hunter2"}', '{"password":"***"}'),
        ("{'password': 'hunter2'}", "{'password': '***'}"),
        ('{"user":"bob","secret":"s3","n":1}', '{"user":"bob","secret":"***","n":1}'),
        ('{"token": "abc-123", "ok": true}', '{"token": "***", "ok": true}'),
        ('{"api_key":"k1"}', '{"api_key":"***"}'),
        ("{'apikey': 'k1', 'id': 7}", "{'apikey': '***', 'id': 7}"),
        ('{"client_secret":"a\\"b"}', '{"client_secret":"***"}'),
        ('{"password": 12345}', '{"password": ***}'),
        ("{'token': b'raw'}", "{'token': b'***'}"),
        ('log={\\"password\\":\\"hunter2\\"}', 'log={\\"password\\":\\"***\\"}'),
        ('{"authorization": "Bearer abc.def"}', '{"authorization": "Bearer ***"}'),
        ("{'Authorization': 'Basic dXNlcjpwYXNz'}", "{'Authorization': 'Basic ***'}"),
        ('{"cookie": "sid=abc; theme=dark", "a": 1}', '{"cookie": "***", "a": 1}'),
        ("Cookie: sid=abc; theme=dark", "Cookie: ***"),
        ("Set-Cookie: sid=abc; Path=/; HttpOnly", "Set-Cookie: ***"),
        ("sent Bearer 9f8e7d6c5b4a upstream", "sent Bearer *** upstream"),
        ("retry with bearer abc.def-ghi now", "retry with bearer *** now"),
        ("bearer authentication failed", "bearer authentication failed"),
        ('{"user": "bob", "level": "error"}', '{"user": "bob", "level": "error"}'),
    ],
)
def test_redactor_masks_json_and_python_dict_secrets(text, masked):
    assert Redactor()(text) == masked


@pytest.mark.parametrize(
    ("message", "pattern"),
    [
        (
            'ERROR login {"password":"hunter2"} for 12',
            'ERROR login {"password":"***"} for <n>',
        ),
        ("ERROR call {'token': 'x9y8z7'}", "ERROR call {'token': '***'}"),
        ("ERROR upstream said Bearer abc123def456", "ERROR upstream said Bearer ***"),
        (
            "ERROR header Authorization: Bearer a1.b2.c3",
            "ERROR header Authorization: Bearer ***",
        ),
    ],
)
def test_redactor_masks_the_normalised_pattern_too(message, pattern):
    assert Redactor().pattern(message) == pattern
