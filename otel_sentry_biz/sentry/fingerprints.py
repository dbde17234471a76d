"""Fingerprint rules: which Sentry issue an error, violation or message joins, as data.

They replace the hand-written ``before_send`` hook that sets ``event["fingerprint"]``:

>>> rules = load_fingerprint_rules("fingerprints.toml")  # FingerprintError lists every problem
>>> apply_fingerprints(events, rules)                     # built event dicts, changed in place

A rule matches events by kind, business operation, exception type, user type and tags (every
field given must match; a list matches when any of its patterns does) and gives the
fingerprint: templates with ``{operation}``, ``{error_type}``, ``{user_type}`` and
``{tag:<key>}``, and Sentry's own ``{{ default }}``. The first matching rule wins; an event no
rule matches keeps its grouping. A value the event lacks renders as ``<name?>``, as in rule
message templates. See ``docs/fingerprints.md``.
"""

from __future__ import annotations

import difflib
import fnmatch
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

from otel_sentry_biz.attributes import BIZ_PREFIX
from otel_sentry_biz.config import ConfigError
from otel_sentry_biz.toml_file import TomlFileProblem, parse_toml, read_toml_text

__all__ = [
    "FingerprintError",
    "FingerprintRule",
    "FingerprintRules",
    "apply_fingerprints",
    "fingerprint_rules_for",
    "fingerprints_setting",
    "load_fingerprint_rules",
    "parse_fingerprint_rules",
]

_logger = logging.getLogger("otel_sentry_biz.sentry.fingerprints")

#: The kinds of event a rule may select; transactions are never fingerprinted.
KINDS = ("error", "violation", "message")
#: Sentry's marker for "the grouping this event would have had", kept as a part of its own.
DEFAULT = "{{ default }}"
#: Placeholders a template may use, besides ``{tag:<key>}``.
PLACEHOLDERS = ("operation", "error_type", "user_type")
TAG_PLACEHOLDER = "tag:"
#: The business key ``user_type`` reads unless the file says ``user_type_key = "..."``.
USER_TYPE_KEY = "user_type"

_TOP_LEVEL = ("fingerprint", "user_type_key")
_DEFAULT_PART = re.compile(r"\{\{\s*default\s*\}\}")
_DOUBLE_BRACES = re.compile(r"\{\{.*?\}\}")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_USE = "use {operation}, {error_type}, {user_type} or {tag:<key>}"

Patterns = Union[str, Sequence[str]]
PathLike = Union[str, "os.PathLike[str]"]


class FingerprintError(ConfigError):
    """Fingerprint rules are invalid; ``problems`` names each rule and the fix."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid fingerprint rules:\n  " + "\n  ".join(self.problems))


@dataclass(frozen=True)
class FingerprintRule:
    """Events matching every field given get ``fingerprint`` (an empty field matches all).

    >>> FingerprintRule(["{{ default }}", "{user_type}"], kind="error", operation="checkout*")

    ``operation`` globs match the business operation (``biz.operation``) or the transaction
    name; ``error_type`` globs match any exception of the chain, by its short name, or by
    its dotted name when the pattern has a dot (``"stripe.error.*"``); ``user_type`` and
    ``tags`` globs match business values (the event's tags, else its business data).
    Raises :class:`FingerprintError` naming the fix when a field is invalid.
    """

    fingerprint: Sequence[str]
    name: Optional[str] = None
    kind: Patterns = ()
    operation: Patterns = ()
    error_type: Patterns = ()
    user_type: Patterns = ()
    tags: Mapping[str, Patterns] = field(default_factory=dict)
    _templates: tuple[Any, ...] = field(init=False, repr=False, compare=False, default=())
    _matchers: tuple[Any, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        problems = _type_problems(self)
        if not problems:
            problems = _value_problems(self)
        if problems:
            raise FingerprintError(problems)
        # Copies of what the caller passed, so the rule never changes under us.
        set_ = object.__setattr__
        set_(self, "fingerprint", tuple(self.fingerprint))
        for name in ("kind", "operation", "error_type", "user_type"):
            set_(self, name, _as_tuple(getattr(self, name)))
        set_(self, "tags", {_key(k): _as_tuple(v) for k, v in self.tags.items()})
        set_(self, "_templates", tuple(_compile_template(part) for part in self.fingerprint))
        set_(self, "_matchers", _compile_matchers(self))

    @property
    def matches_everything(self) -> bool:
        """True for a catch-all rule (no field to match): rules after it never apply."""
        return not (self.kind or self.operation or self.error_type or self.user_type or self.tags)


class FingerprintRules:
    """Ordered fingerprint rules: the first that matches an event gives its fingerprint.

    >>> rules = FingerprintRules([FingerprintRule(["payments", "{error_type}"], operation="pay*")])
    >>> rules.apply(event)

    ``user_type_key`` is the business key ``user_type`` reads. Immutable once built, so one
    instance may serve any number of threads.
    """

    def __init__(
        self,
        rules: Iterable[FingerprintRule],
        *,
        user_type_key: str = USER_TYPE_KEY,
        source: Optional[str] = None,
    ) -> None:
        self.rules = tuple(rules)
        problems = _set_problems(list(enumerate(self.rules, start=1)), user_type_key, source)
        if problems:
            raise FingerprintError(problems)
        self.user_type_key = _key(user_type_key)
        self.source = source

    def rule_for(self, event: Mapping[str, Any]) -> Optional[FingerprintRule]:
        """The rule that fingerprints ``event``, or None (transactions never match)."""
        facts = _Facts(event, self.user_type_key)
        if facts.kind is None:
            return None
        return next((rule for rule in self.rules if _matches(rule, facts)), None)

    def apply(self, event: dict[str, Any]) -> None:
        """Set ``event["fingerprint"]`` from the first matching rule; never raises.

        ``{{ default }}`` stands for the fingerprint the event already has (a violation's
        rule and group) and is kept for Sentry when it has none.
        """
        try:
            facts = _Facts(event, self.user_type_key)
            if facts.kind is None:
                return
            for rule in self.rules:
                if _matches(rule, facts):
                    event["fingerprint"] = _render(rule, facts, event.get("fingerprint"))
                    return
        except Exception:  # an event we cannot read keeps its grouping; it is still sent
            _logger.warning(
                "could not apply fingerprint rules; the event keeps its own", exc_info=True
            )


def apply_fingerprints(events: Iterable[dict[str, Any]], rules: Optional[FingerprintRules]) -> None:
    """Fingerprint each built event in place (nothing to do without rules); never raises."""
    if rules is not None:
        for event in events:
            rules.apply(event)


# -- loading ------------------------------------------------------------------------------


def load_fingerprint_rules(path: PathLike) -> FingerprintRules:
    """The rules of the TOML file at ``path``; :class:`FingerprintError` lists every problem."""
    try:
        source, text = read_toml_text(path)
    except TomlFileProblem as exc:
        raise FingerprintError([str(exc)]) from None
    return parse_fingerprint_rules(text, source)


def parse_fingerprint_rules(text: str, source: str = "<fingerprints>") -> FingerprintRules:
    """The rules of TOML ``text`` (``[[fingerprint]]`` tables); ``source`` names it in errors."""
    try:
        document = parse_toml(text, source, tables="[[fingerprint]]")
    except TomlFileProblem as exc:
        raise FingerprintError([str(exc)]) from None
    problems = [
        f"{source}: unknown top-level key {key!r}{_did_you_mean(key, _TOP_LEVEL)}: a "
        "fingerprints file has [[fingerprint]] tables and optionally user_type_key"
        for key in document
        if key not in _TOP_LEVEL
    ]
    user_type_key = document.get("user_type_key", USER_TYPE_KEY)
    tables = document.get("fingerprint", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        problems.append(f"{source}: 'fingerprint' must be tables: write each as [[fingerprint]]")
        tables = []
    if not tables and not problems:
        problems.append(f"{source}: no rules: add a [[fingerprint]] table per rule")
    numbered = []
    for number, table in enumerate(tables, start=1):
        rule = _rule_from_table(table, _label(source, number, table.get("name")), problems)
        if rule is not None:
            numbered.append((number, rule))
    # Checked on the valid rules even when others are not: every problem is listed at once.
    problems.extend(_set_problems(numbered, user_type_key, source))
    if problems:
        raise FingerprintError(problems)
    rules = [rule for _, rule in numbered]
    return FingerprintRules(rules, user_type_key=user_type_key, source=source)


def _rule_from_table(
    table: Mapping[str, Any], label: str, problems: list[str]
) -> Optional[FingerprintRule]:
    known = [name for name in FingerprintRule.__dataclass_fields__ if not name.startswith("_")]
    unknown = [key for key in table if key not in known]
    for key in unknown:
        problems.append(
            f"{label}: unknown key {key!r}{_did_you_mean(key, known)}: a [[fingerprint]] "
            f"table has {', '.join(known)}"
        )
    if "fingerprint" not in table:
        problems.append(f'{label}: missing fingerprint: add e.g. fingerprint = ["{DEFAULT}"]')
    if unknown or "fingerprint" not in table:
        return None
    try:
        return FingerprintRule(**table)
    except FingerprintError as exc:
        problems.extend(f"{label}: {problem}" for problem in exc.problems)
        return None


def fingerprints_setting(text: str) -> Optional[str]:
    """Parser of ``OTEL_SENTRY_BIZ_FINGERPRINTS``: the path (file checked now), None if empty."""
    path = text.strip()
    if not path:
        return None
    load_fingerprint_rules(path)  # a bad file stops start-up, not a request
    return path


def fingerprint_rules_for(
    setting: Union[PathLike, FingerprintRules, None],
) -> Optional[FingerprintRules]:
    """The rules a setting names: a TOML path, rules built in Python, or None for none."""
    if setting is None or isinstance(setting, FingerprintRules):
        return setting
    if not os.fspath(setting).strip():
        return None
    return load_fingerprint_rules(os.fspath(setting).strip())


# -- validation ---------------------------------------------------------------------------


def _type_problems(rule: FingerprintRule) -> list[str]:
    found = []
    parts = rule.fingerprint
    if isinstance(parts, str) or not isinstance(parts, Sequence):
        found.append(f'fingerprint must be a list of templates, e.g. ["{parts}"], not {parts!r}')
    elif not all(isinstance(part, str) for part in parts):
        found.append(f"fingerprint must hold strings only, not {list(parts)!r}: quote each part")
    if rule.name is not None and not isinstance(rule.name, str):
        found.append(f"name must be a string, not {rule.name!r}")
    for name in ("kind", "operation", "error_type", "user_type"):
        if not _is_patterns(getattr(rule, name)):
            found.append(
                f"{name} must be a string or a list of strings, not {getattr(rule, name)!r}"
            )
    tags = rule.tags
    if not isinstance(tags, Mapping) or not all(
        isinstance(k, str) and _is_patterns(v) for k, v in tags.items()
    ):
        found.append(f'tags must be a table of patterns, e.g. {{ plan = "free*" }}, not {tags!r}')
    return found


def _value_problems(rule: FingerprintRule) -> list[str]:
    found = []
    if not rule.fingerprint:
        found.append('the fingerprint is empty: list at least one part, e.g. ["{{ default }}"]')
    found.extend(filter(None, (_template_problem(part) for part in rule.fingerprint)))
    if rule.name is not None and not rule.name.strip():
        found.append("the name is empty: give the rule a short name, or leave name out")
    kinds = _as_tuple(rule.kind)
    for kind in kinds:
        if kind not in KINDS:
            hint = _did_you_mean(kind, KINDS)
            found.append(f"unknown kind {kind!r}{hint}: use one of {', '.join(KINDS)}")
    if rule.error_type and kinds and set(kinds) <= set(KINDS) and "error" not in kinds:
        found.append('error_type only matches errors: add "error" to kind, or drop error_type')
    fields = {
        name: _as_tuple(getattr(rule, name)) for name in ("operation", "error_type", "user_type")
    }
    for key, patterns in rule.tags.items():
        if not key.strip() or key != key.strip():
            found.append(f"tags key {key!r}: use a business key such as plan, without spaces")
        fields[f"tags.{key}"] = _as_tuple(patterns)
    for name, patterns in fields.items():
        found.extend(filter(None, (_glob_problem(name, pattern) for pattern in patterns)))
    return found


def _set_problems(
    rules: Sequence[tuple[int, Any]], user_type_key: Any, source: Optional[str]
) -> list[str]:
    """Problems of the rules together, for ``(number, rule)`` pairs."""
    where = f"{source}: " if source else ""
    found = []
    if not isinstance(user_type_key, str) or not user_type_key.strip():
        found.append(f'{where}user_type_key must name a business key, e.g. user_type_key = "role"')
    named: dict[str, int] = {}
    catch_all: Optional[int] = None
    for number, rule in rules:
        if not isinstance(rule, FingerprintRule):
            found.append(f"{where}rule #{number} is {rule!r}: pass FingerprintRule values")
            continue
        label = _label(source, number, rule.name)
        if rule.name is not None:
            if rule.name in named:
                found.append(
                    f"{label}: the name is also rule #{named[rule.name]}'s: give each its own"
                )
            named.setdefault(rule.name, number)
        if catch_all is not None:
            found.append(
                f"{label}: never applies, rule #{catch_all} matches every event before it: "
                "move that rule last, or give it a field to match"
            )
        elif rule.matches_everything:
            catch_all = number
    return found


def _template_problem(part: str) -> Optional[str]:
    if not part.strip():
        return 'an empty fingerprint part: remove it, or write a word such as "payments"'
    if _DEFAULT_PART.fullmatch(part):
        return None
    variable = _DOUBLE_BRACES.search(part)
    if variable and _DEFAULT_PART.fullmatch(variable.group()):
        return (
            f"{part!r}: {DEFAULT} must be a part of its own: write it as a separate item, "
            f'e.g. ["{DEFAULT}", "checkout"]'
        )
    if variable:  # Sentry's server-side variables: ours are filled in from business context
        return f"{part!r}: {variable.group()} is not a fingerprint value here: {_USE}, or {DEFAULT}"
    for name in _PLACEHOLDER.findall(part):
        if name.startswith(TAG_PLACEHOLDER):
            if not name[len(TAG_PLACEHOLDER) :].strip():
                return f"{part!r}: {{tag:}} names no key: write e.g. {{tag:plan}}"
        elif name not in PLACEHOLDERS:
            choices = (*PLACEHOLDERS, "tag")
            return f"{part!r}: unknown placeholder {{{name}}}{_did_you_mean(name, choices)}: {_USE}"
    if "{" in _PLACEHOLDER.sub("", part) or "}" in _PLACEHOLDER.sub("", part):
        return f"{part!r}: an unpaired brace: braces only mark placeholders ({_USE})"
    return None


def _glob_problem(name: str, pattern: str) -> Optional[str]:
    if not pattern.strip():
        return f'{name} has an empty pattern: write a name or a glob such as "checkout*"'
    if _unclosed_bracket(pattern):
        return (
            f"{name} {pattern!r}: '[' opens a character set that is never closed: close it "
            '("[abc]"), or write a literal [ as [[]'
        )
    if name == "error_type" and any(char.isspace() for char in pattern):
        return f"error_type {pattern!r}: exception type names have no spaces"
    return None


def _unclosed_bracket(pattern: str) -> bool:
    """Would fnmatch read a ``[`` literally because its set is never closed? (A typo.)"""
    i, n = 0, len(pattern)
    while i < n:
        if pattern[i] == "[":
            j = i + 1
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                return True
            i = j
        i += 1
    return False


# -- matching and rendering ---------------------------------------------------------------


class _Facts:
    """What rules read from one built event, looked up once."""

    def __init__(self, event: Mapping[str, Any], user_type_key: str) -> None:
        self.event = event
        self.user_type_key = user_type_key
        self.kind = _kind(event)
        values = (event.get("exception") or {}).get("values") or []
        self.exceptions = [value for value in values if isinstance(value, Mapping)]

    def operations(self) -> list[str]:
        found = [self.business("operation"), self.event.get("transaction")]
        return [value for value in found if isinstance(value, str)]

    def error_types(self) -> list[tuple[str, str]]:
        """(short, dotted) name of each exception of the chain."""
        found = []
        for value in self.exceptions:
            short, module = str(value.get("type") or ""), value.get("module")
            found.append((short, f"{module}.{short}" if module else short))
        return found

    def business(self, key: str) -> Optional[str]:
        """A business value: the event's tag, else its span's or violation's data."""
        tags = self.event.get("tags")
        if isinstance(tags, Mapping):
            for tag in (key, BIZ_PREFIX + key):  # reserved names are tagged "biz.<key>"
                if tags.get(tag) is not None:
                    return _text(tags[tag])
        contexts = self.event.get("contexts") or {}
        for context, name in (("span", "attributes"), ("business_violation", "data")):
            data = (contexts.get(context) or {}).get(name)
            if isinstance(data, Mapping) and data.get(BIZ_PREFIX + key) is not None:
                return _text(data[BIZ_PREFIX + key])
        return None

    def value(self, placeholder: str) -> Optional[str]:
        if placeholder == "operation":
            return next(iter(self.operations()), None)
        if placeholder == "error_type":
            return self.error_types()[-1][0] if self.exceptions else None  # the raised one
        if placeholder == "user_type":
            return self.business(self.user_type_key)
        return self.business(_key(placeholder[len(TAG_PLACEHOLDER) :]))


def _matches(rule: FingerprintRule, facts: _Facts) -> bool:
    kinds, operation, error_type, user_type, tags = rule._matchers
    if kinds and facts.kind not in kinds:
        return False
    if operation and not any(_any(operation, value) for value in facts.operations()):
        return False
    if error_type and not any(
        match(*names) for match in error_type for names in facts.error_types()
    ):
        return False
    if user_type and not _any(user_type, facts.business(facts.user_type_key)):
        return False
    return all(_any(patterns, facts.business(key)) for key, patterns in tags)


def _any(patterns: tuple[Callable[[str], Any], ...], value: Optional[str]) -> bool:
    return value is not None and any(match(value) for match in patterns)


def _compile_matchers(rule: FingerprintRule) -> tuple[Any, ...]:
    return (
        frozenset(rule.kind),
        tuple(map(_glob, rule.operation)),
        tuple(map(_error_type_glob, rule.error_type)),
        tuple(map(_glob, rule.user_type)),
        tuple((key, tuple(map(_glob, patterns))) for key, patterns in rule.tags.items()),
    )


def _glob(pattern: str) -> Callable[[str], Any]:
    return re.compile(fnmatch.translate(pattern)).match  # case-sensitive, as Sentry's


def _error_type_glob(pattern: str) -> Callable[[str, str], bool]:
    """Matches (short, dotted) names: a pattern with a dot reads the dotted name."""
    match = _glob(pattern)
    if "." in pattern:
        return lambda short, dotted: match(dotted) is not None
    return lambda short, dotted: match(short) is not None


def _compile_template(part: str) -> Union[str, tuple[tuple[str, Optional[str]], ...]]:
    """DEFAULT, or (literal, placeholder-or-None) pairs."""
    if _DEFAULT_PART.fullmatch(part):
        return DEFAULT
    pieces, last = [], 0
    for found in _PLACEHOLDER.finditer(part):
        pieces.append((part[last : found.start()], found.group(1)))
        last = found.end()
    pieces.append((part[last:], None))
    return tuple(pieces)


def _render(rule: FingerprintRule, facts: _Facts, current: Any) -> list[str]:
    own = [str(p) for p in current] if isinstance(current, list) and current else None
    out: list[str] = []
    for template in rule._templates:
        if template == DEFAULT:
            out.extend(own or [DEFAULT])
            continue
        text = []
        for literal, placeholder in template:
            text.append(literal)
            if placeholder is not None:
                value = facts.value(placeholder)
                text.append(f"<{placeholder}?>" if value is None else value)
        out.append("".join(text))
    return out


# -- small helpers ------------------------------------------------------------------------


def _kind(event: Mapping[str, Any]) -> Optional[str]:
    if event.get("type") == "transaction":
        return None
    if (event.get("exception") or {}).get("values"):
        return "error"
    if "business_violation" in (event.get("contexts") or {}):
        return "violation"
    if event.get("logentry") or event.get("message"):
        return "message"
    return None


def _text(value: Any) -> Optional[str]:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return None


def _key(key: str) -> str:
    key = key.strip()
    return key[len(BIZ_PREFIX) :] if key.startswith(BIZ_PREFIX) else key


def _as_tuple(value: Patterns) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value or ())


def _is_patterns(value: Any) -> bool:
    if isinstance(value, str):
        return True
    return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)


def _label(source: Optional[str], number: int, name: Any) -> str:
    """How a message points at a rule: ``fingerprints.toml: fingerprint 'payments' (#2)``."""
    where = f"{source}: " if source else ""
    named = f"fingerprint {name!r} " if isinstance(name, str) else "fingerprint "
    return f"{where}{named}(#{number})"


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
