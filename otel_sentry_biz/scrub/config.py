"""What the scrubber does: one frozen, validated value.

>>> ScrubConfig(patterns={"internal_id": r"\\bID-\\d{6,}\\b"}, denylist=("iban",))

Errors raise :class:`~otel_sentry_biz.config.ConfigError` naming the argument and the fix;
:func:`parse_patterns` and :func:`parse_names` read the same values from variable text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

from otel_sentry_biz.scrub.detectors import DETECTOR_NAMES

#: Sentry's own marker for a removed value (sentry-sdk's ``AnnotatedValue``, Relay's rules).
FILTERED = "[Filtered]"
#: ``sql_literals`` is the detector that turns SQL literals into ``%s``.
ALL_DETECTORS = frozenset((*DETECTOR_NAMES, "sql_literals"))

Patterns = Union[Mapping[str, str], Iterable[tuple[str, str]]]


def config_error(message: str) -> ValueError:
    """The package's :class:`~otel_sentry_biz.config.ConfigError`, imported late:
    ``otel_sentry_biz.config`` imports this module's parsers for its variables."""
    from otel_sentry_biz.config import ConfigError

    return ConfigError(message)


@dataclass(frozen=True)
class ScrubConfig:
    """Settings of a :class:`~otel_sentry_biz.scrub.Scrubber`; the defaults suit production."""

    #: False: also scrub personal data by key (IP addresses, e-mail, phone, user names).
    send_default_pii: bool = False
    #: What replaces a secret.
    replacement: str = FILTERED
    #: More key names whose values are always replaced (matched like the built-in denylist).
    denylist: tuple[str, ...] = ()
    #: Key names never replaced by name (their values are still searched for secrets).
    safe_keys: tuple[str, ...] = ()
    #: Custom value patterns, ``{name: regex}`` or ``[(name, regex)]``: the match, or its
    #: ``(?P<secret>...)`` group, is replaced. Stored as a tuple of pairs.
    patterns: Patterns = ()
    #: Enabled detectors (see ``docs/scrubbing.md``); all by default.
    detectors: frozenset[str] = ALL_DETECTORS
    #: Containers nested deeper than this are replaced whole (cycles end here too).
    max_depth: int = 32
    #: Longer strings are cut (at a token boundary, ending in "...") before they are
    #: scrubbed: it bounds the work on hostile input. Sentry trims long values anyway
    #: (sentry-sdk keeps 1024 characters by default).
    max_string_length: int = 16384
    compiled: tuple[tuple[str, re.Pattern[str]], ...] = field(
        init=False, repr=False, compare=False, default=()
    )

    def __post_init__(self) -> None:
        if not isinstance(self.replacement, str) or not self.replacement.strip():
            raise config_error(
                f"argument replacement={self.replacement!r} is invalid: use a short marker "
                f"such as {FILTERED!r}"
            )
        set_ = object.__setattr__
        set_(self, "denylist", _names("denylist", self.denylist))
        set_(self, "safe_keys", _names("safe_keys", self.safe_keys))
        set_(self, "patterns", _pairs(self.patterns))
        detectors = frozenset(self.detectors)
        unknown = detectors - ALL_DETECTORS
        if unknown:
            raise config_error(
                f"argument detectors has unknown name(s) {', '.join(sorted(unknown))}: "
                f"use any of {', '.join(sorted(ALL_DETECTORS))}"
            )
        set_(self, "detectors", detectors)
        if not isinstance(self.max_depth, int) or self.max_depth < 1:
            raise config_error(
                f"argument max_depth={self.max_depth!r} is invalid: use a positive integer "
                "such as 32"
            )
        if not isinstance(self.max_string_length, int) or self.max_string_length < 256:
            raise config_error(
                f"argument max_string_length={self.max_string_length!r} is invalid: use an "
                "integer of at least 256, such as 16384"
            )
        set_(self, "compiled", tuple(_compile(name, text) for name, text in self.patterns))


def _names(argument: str, names: Any) -> tuple[str, ...]:
    if isinstance(names, str):
        names = (names,)
    try:
        result = tuple(str(name).strip() for name in names if str(name).strip())
    except TypeError:
        raise config_error(
            f"argument {argument}={names!r} is invalid: use a list of key names"
        ) from None
    return result


def _pairs(patterns: Any) -> tuple[tuple[str, str], ...]:
    items = patterns.items() if isinstance(patterns, Mapping) else patterns
    try:
        pairs = tuple((str(name), text) for name, text in items)
    except (TypeError, ValueError):
        raise config_error(
            f"argument patterns={patterns!r} is invalid: use {{name: regex}} or "
            "[(name, regex), ...]"
        ) from None
    for name, text in pairs:
        if not isinstance(text, str) or not text:
            raise config_error(
                f"argument patterns[{name!r}]={text!r} is invalid: use a non-empty regex string"
            )
    return pairs


def _compile(name: str, text: str) -> tuple[str, re.Pattern[str]]:
    try:
        pattern = re.compile(text)
    except re.error as exc:
        raise config_error(
            f"argument patterns[{name!r}]={text!r} is not a valid regex ({exc}): "
            "fix it or escape special characters with re.escape"
        ) from None
    if pattern.search("") is not None:
        raise config_error(
            f"argument patterns[{name!r}]={text!r} matches the empty string: "
            "make it match at least one character"
        )
    return name, pattern


def parse_patterns(text: str) -> tuple[tuple[str, str], ...]:
    """Read custom patterns from a variable: a JSON object ``{"name": "regex", ...}``.

    Raises ValueError with the reason (for ``config.py`` to name the variable).
    """
    text = text.strip()
    if not text:
        return ()
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from None
    except RecursionError:
        raise ValueError("nested too deeply to be a JSON object of patterns") from None
    if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
        raise ValueError('expected a JSON object of strings, {"name": "regex"}')
    for name, pattern in loaded.items():
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"pattern {name!r} is not a valid regex ({exc})") from None
        except (RecursionError, OverflowError):
            raise ValueError(f"pattern {name!r} is too large or deep to compile") from None
    return tuple(loaded.items())


def parse_names(text: str) -> tuple[str, ...]:
    """Comma-separated key names (``"iban, customer_pin"``)."""
    return tuple(part.strip() for part in text.split(",") if part.strip())
