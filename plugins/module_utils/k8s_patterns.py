# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pattern groups for log scans: parsing, fast candidate search, normalising, redacting.

A group's regular expression is judged on each line of a log, without the
timestamp the API server puts in front. Running every expression on every line
is slow in Python, so each expression is first reduced, where its syntax allows,
to a few plain strings that any match must contain; a fast substring search for
those strings picks the candidate lines and only those are tested with the
expression. Expressions that give no such strings are tested on every line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    parse_threshold,
)

try:  # The expression parser moved in Python 3.11; either gives the same tree.
    from re import _parser as sre_parse
except ImportError:  # pragma: no cover - Python before 3.11
    import sre_parse  # pylint: disable=deprecated-module

# A needed string shorter than this matches too many lines to be worth searching.
MIN_LITERAL = 3
MAX_EXAMPLE_CHARS = 300
MASK = "***"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_LITERAL = sre_parse.LITERAL
_REPEATS = tuple(
    op
    for op in (
        sre_parse.MAX_REPEAT,
        sre_parse.MIN_REPEAT,
        getattr(sre_parse, "POSSESSIVE_REPEAT", None),
    )
    if op is not None
)
_ATOMIC = getattr(sre_parse, "ATOMIC_GROUP", None)

# The kubelet's timestamp in front of every line when timestamps are asked for.
TIMESTAMP = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d) ?"
)

# The guide's questions of the daily and weekly log reviews, as pattern groups.
DEFAULT_PATTERNS = [
    {
        "name": "errors",
        "label": "Error count",
        "regex": [r"\b(?:ERROR|FATAL|CRITICAL)\b", r'"level"\s*:\s*"(?:error|fatal)"'],
    },
    {
        "name": "payment_failures",
        "label": "Payment failure count",
        "regex": [r"payment (?:failed|declined|error)"],
        "ignore_case": True,
    },
    {
        "name": "failed_logins",
        "label": "Failed login count",
        "regex": [r"failed login|login failed|authentication failed"],
        "ignore_case": True,
    },
    {
        "name": "suspicious_activity",
        "label": "Suspicious activity count",
        "regex": [r"suspicious"],
        "ignore_case": True,
    },
    {
        "name": "rate_limiting",
        "label": "Rate limiting count",
        "regex": [r"rate.?limit|too many requests"],
        "ignore_case": True,
    },
    {
        "name": "cron_failures",
        "label": "Failed scheduled job count",
        "regex": [r"\b(?:cron|scheduled job)\b.*\b(?:fail|failed|failure|error)\b"],
        "ignore_case": True,
    },
]
PATTERN_KEYS = frozenset(
    {
        "name",
        "label",
        "regex",
        "ignore_case",
        "warning",
        "critical",
        "direction",
        "action",
    }
)


@dataclass(frozen=True)
class Group:
    """One question asked of the logs: a regular expression and its thresholds."""

    name: str
    label: str
    regex: Any
    literals: frozenset | None
    insensitive: bool
    threshold: Any = None
    action: str | None = None
    top: bool = False


# Option parsing


def parse_groups(
    items: list | None, *, option: str = "patterns", top: Iterable[str] = ()
) -> list:
    """Turn the pattern option into groups (the guide's when not set)."""
    items = DEFAULT_PATTERNS if items is None else items
    if not isinstance(items, list) or not items:
        raise OptionError(option, items, "must list at least one pattern group")
    top_names = set(top)
    groups = [
        _parse_group(item, f"{option}[{index}]", top_names)
        for index, item in enumerate(items)
    ]
    names = [group.name for group in groups]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise OptionError(option, duplicates, "must not repeat group names")
    return groups


def _parse_group(item: Any, option: str, top: set) -> Group:
    if not isinstance(item, dict):
        raise OptionError(option, item, "must be a mapping with name and regex")
    unknown = sorted(set(item) - PATTERN_KEYS)
    if unknown:
        raise OptionError(
            option, item, f"has unknown keys {unknown}; allowed: {sorted(PATTERN_KEYS)}"
        )
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise OptionError(f"{option}.name", name, "must be a snake_case name")
    regex = compile_group(
        item.get("regex"), f"{option}.regex", ignore_case=bool(item.get("ignore_case"))
    )
    spec = {
        key: item[key]
        for key in ("warning", "critical", "direction")
        if item.get(key) is not None
    }
    insensitive = bool(regex.flags & re.IGNORECASE)
    return Group(
        name=name,
        label=item.get("label") or f"{name} count",
        regex=regex,
        literals=needed_strings(regex.pattern, regex.flags),
        insensitive=insensitive,
        threshold=parse_threshold(spec or None, option=option),
        action=item.get("action"),
        top=name in top,
    )


def compile_group(value: Any, option: str, *, ignore_case: bool = False) -> Any:
    """Compile one expression or a list of them (any may match) into one."""
    expressions = [value] if isinstance(value, str) else value
    if not isinstance(expressions, list) or not expressions:
        raise OptionError(
            option, value, "must be a regular expression or a list of them"
        )
    for index, expression in enumerate(expressions):
        _check_expression(expression, f"{option}[{index}]")
    text = (
        expressions[0]
        if len(expressions) == 1
        else "|".join(f"(?:{e})" for e in expressions)
    )
    try:
        regex = re.compile(text, re.IGNORECASE if ignore_case else 0)
    except re.error as error:
        raise OptionError(
            option,
            value,
            f"cannot be combined into one expression ({error}); set "
            "ignore_case instead of an inline (?i), or use a scoped flag like (?i:...)",
        ) from None
    if regex.search(""):
        raise OptionError(
            option, value, "matches an empty line, so it would count every line"
        )
    return regex


def _check_expression(expression: Any, option: str) -> None:
    if not isinstance(expression, str) or not expression:
        raise OptionError(option, expression, "must be a non-empty regular expression")
    try:
        re.compile(expression)
    except re.error as error:
        raise OptionError(
            option, expression, f"is not a valid regular expression: {error}"
        ) from None


# Needed strings: what any match of an expression must contain.


def needed_strings(pattern: str, flags: int) -> frozenset | None:
    """Return strings one of which every match contains, or None when unknown.

    For a case-insensitive expression the strings are lower case, to be found in
    the lower-cased text; non-ASCII ones are not used there.
    """
    try:
        tree = sre_parse.parse(pattern, flags & ~re.IGNORECASE)
    except Exception:  # pylint: disable=broad-except
        # The expression compiled, so this is the parser's own limit: no shortcut.
        return None
    found = _needed(tree)
    if not found or min(len(item) for item in found) < MIN_LITERAL:
        return None
    if flags & re.IGNORECASE:
        if not all(item.isascii() for item in found):
            return None
        found = {item.lower() for item in found}
    return frozenset(found)


def _needed(items: Any) -> set | None:
    """The best set of needed strings of a sequence of parsed items."""
    best: set | None = None
    run: list = []
    for op, argument in items:
        if op is _LITERAL:
            run.append(chr(argument))
            continue
        best = _better(best, {"".join(run)} if run else None)
        run = []
        best = _better(best, _needed_of(op, argument))
    return _better(best, {"".join(run)} if run else None)


def _needed_of(op: Any, argument: Any) -> set | None:
    """The needed strings of one non-literal item, or None."""
    if op is sre_parse.SUBPATTERN:
        _group, add_flags, del_flags, sub = argument
        # A scoped case flag changes how its strings match: no shortcut inside.
        if (add_flags | del_flags) & re.IGNORECASE:
            return None
        return _needed(sub)
    if op is sre_parse.BRANCH:
        alternatives = [_needed(branch) for branch in argument[1]]
        if all(alternatives):
            return set().union(*alternatives)
        return None
    if op in _REPEATS and argument[0] >= 1:
        return _needed(argument[2])
    if _ATOMIC is not None and op is _ATOMIC:
        return _needed(argument)
    return None


def _better(current: set | None, other: set | None) -> set | None:
    """Prefer longer shortest strings, then fewer of them."""
    if not other or (current and _score(current) >= _score(other)):
        return current
    return other


def _score(strings: set) -> tuple:
    return (min(len(item) for item in strings), -len(strings))


# Finding candidate lines in a block of whole lines.


def candidate_lines(group: Group, text: str, lowered: str | None) -> dict:
    """Map the start of every line that may match ``group`` to its end."""
    if group.literals is None or (group.insensitive and lowered is None):
        return all_lines(text)
    haystack = lowered if group.insensitive else text
    found: dict = {}
    for literal in group.literals:
        _lines_with(haystack, literal, found)
    return found


def _lines_with(text: str, literal: str, found: dict) -> None:
    """Add the lines of ``text`` that contain ``literal``."""
    position = text.find(literal)
    while position >= 0:
        start = text.rfind("\n", 0, position) + 1
        end = text.find("\n", position)
        found[start] = end
        position = text.find(literal, end + 1)


def all_lines(text: str) -> dict:
    """Map the start of every line of ``text`` to its end."""
    found: dict = {}
    start = 0
    for line in text.split("\n")[:-1]:
        found[start] = start + len(line)
        start += len(line) + 1
    return found


# Non-ASCII letters that a case-insensitive expression matches with ASCII ones.
_FOLD_TO_ASCII = {0x130: "i", 0x131: "i", 0x17F: "s", 0x212A: "k"}


def lowered(text: str) -> str | None:
    """Lower-case ``text`` for the search of case-insensitive needed strings.

    None when lower-casing would move characters (a few letters lower to two),
    so that positions in the result are positions in ``text``.
    """
    if text.isascii():
        return text.lower()
    result = text.translate(_FOLD_TO_ASCII).lower()
    return result if len(result) == len(text) else None


def message_of(line: str) -> str:
    """Return a log line without the timestamp the API server put in front."""
    stamp = TIMESTAMP.match(line)
    return line[stamp.end() :] if stamp else line


def matching_messages(group: Group, text: str, lowered: str | None) -> Iterator[str]:
    """Yield the messages of the lines of ``text`` that match ``group``."""
    candidates = candidate_lines(group, text, lowered)
    search = group.regex.search
    for start in sorted(candidates):
        message = message_of(text[start : candidates[start]])
        if search(message):
            yield message


# Normalising and redacting.

_NORMALISE = (
    (
        re.compile(
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
        ),
        "<uuid>",
    ),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<ip>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}\b"), "<id>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
)
_SECRET_KEY = (
    r"[\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key"
    r"|private[_-]?key|session[_-]?id)[\w.-]*"
)
# A key, bare or quoted as in JSON or a Python dict (also with the quotes escaped,
# as in JSON logged inside a JSON string), then ``=`` or ``:``.
_KEY_QUOTE = r"(\\?[\"'])?"
_SEPARATOR = r"(\s*[=:]\s*)"
# A value: a quoted string (escapes inside it kept; Python's b'' too), or a word.
_QUOTED_VALUE = (
    r"[bBuU]?(?:\\\"(?:(?!\\\").)*\\\"|\\'(?:(?!\\').)*\\'"
    r"|\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*')"
)
_QUOTE = re.compile(r"[bBuU]?(\\?[\"'])")
_KEY_VALUE = re.compile(
    rf"(?i)\b({_SECRET_KEY}){_KEY_QUOTE}{_SEPARATOR}"
    rf"({_QUOTED_VALUE}|[^\s&;,)\]}}\"'\\]+)"
)
# A cookie header's value holds several pairs: all of it is masked.
_COOKIE = re.compile(
    rf"(?i)\b((?:set-)?cookie){_KEY_QUOTE}{_SEPARATOR}({_QUOTED_VALUE}|[^\n\"'\\]+)"
)
_REDACTIONS = (
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*):[^/\s@]*@"), rf"\1:{MASK}@"),
    (
        re.compile(
            r"(?i)((?:proxy-)?authorization\\?[\"']?\s*[:=]\s*\\?[\"']?"
            r"(?:(?:bearer|basic|token|digest)\s+)?)(?!<redacted>)[^\s\"',;)\\]+"
        ),
        rf"\1{MASK}",
    ),
    # A bearer token anywhere else: a word with a digit or a punctuation mark in it.
    (
        re.compile(r"(?i)\b(bearer\s+)(?=[\w.~+/=-]*[\d.~+/=_-])[\w.~+/=-]{8,}"),
        rf"\1{MASK}",
    ),
    (re.compile(r"\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]{5,}"), MASK),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), MASK),
)


def _mask_value(found: Any) -> str:
    """Mask a key's value; a quoted key keeps its value's quotes, as JSON does."""
    key, key_quote, separator, value = found.groups()
    quote = _QUOTE.match(value)
    if key_quote is None or quote is None:
        return f"{key}{key_quote or ''}{separator}{MASK}"
    return f"{key}{key_quote}{separator}{quote[0]}{MASK}{quote[1]}"


def normalise(message: str) -> str:
    """Replace ids, addresses and numbers so that one kind of line is one pattern."""
    for pattern, replacement in _NORMALISE:
        message = pattern.sub(replacement, message)
    return message.strip()


@dataclass
class Redactor:
    """Masks secrets in example lines: known shapes and the caller's values."""

    values: list = field(default_factory=list)

    def __call__(self, text: str) -> str:
        """Return ``text`` with every secret masked, cut to a readable length."""
        for value in self.values:
            if value:
                text = text.replace(value, MASK)
        text = _COOKIE.sub(_mask_value, text)
        text = _KEY_VALUE.sub(_mask_value, text)
        for pattern, replacement in _REDACTIONS:
            text = pattern.sub(replacement, text)
        text = text.strip()
        return (
            text if len(text) <= MAX_EXAMPLE_CHARS else f"{text[:MAX_EXAMPLE_CHARS]}..."
        )

    def pattern(self, message: str) -> str:
        """Return the normalised form of ``message`` with every secret masked.

        Masked before normalising too: replacing a token's digits would break
        the shapes that secrets are recognised by.
        """
        return self(normalise(self(message)))
