"""``name=value`` inside free text: redact the value when the name is sensitive.

Finds ``name=value``, ``name: value``, ``"name": "value"``, ``name is value`` (also ``was``,
``to``) in query strings, log lines, JSON dumps and header lines, and replaces the value when
:class:`~otel_sentry_biz.scrub.keys.KeyMatcher` says the name is sensitive. A URL keeps its
shape (``/cb?code=1&access_token=[Filtered]``); bind parameters (``email = %s``, ``$1``,
``:name``) are not values and stay.

The search starts from the separators, not from every word: one scan finds them, the anchored
regexes run only where a separator is (benchmarks/scrub_corpus.py --timing), and a separator
inside a value already found is skipped, so the work stays linear in the text.
"""

from __future__ import annotations

import re
from typing import Optional

from otel_sentry_biz.scrub.keys import KeyMatcher

#: The name before a separator, read on the reversed text: blanks, a quote, then the name.
_NAME_REVERSED = re.compile(r"[ \t]{0,3}[\"']?([\w.\-]{1,128})")
#: Values that are bind parameters, not data.
_PLACEHOLDER = re.compile(r"%s|\?|\$\d+|:\w+|%\(\w+\)s")
#: Header lines whose value runs to the end of the line (``Cookie: a=1; b=2``).
_HEADER_LINE = re.compile(
    r"(?i)(?<![\w-])(?P<key>(?:proxy-)?authorization|(?:set-)?cookie)[ \t]*:[ \t]*"
    r"(?P<value>[^\r\n\"]+)"
)
_SEPARATOR = re.compile(r"[=:]| is | was | to ")


class Assignments:
    """Redact the values of sensitive ``name=value`` pairs in a text."""

    def __init__(self, keys: KeyMatcher, replacement: str) -> None:
        self._keys = keys
        self._marker = replacement
        self._value = re.compile(
            r"[ \t]{0,3}(?P<vq>[\"'])?"
            r"(?P<value>(?(vq)(?:(?!(?P=vq))[^\r\n])+"
            r"|(?:(?i:bearer|basic|digest|token|negotiate)[ \t]+)?"
            rf"(?:{re.escape(replacement)}|[^\s&,;\"'<>\[\](){{}}#]+)))"
        )

    def redact(self, text: str, lowered: str) -> tuple[str, bool]:
        """``(text, found)``: the text with sensitive values replaced; whether any
        sensitive assignment was seen (even one already redacted)."""
        spans: list[tuple[int, int]] = []
        found = False
        if "cookie" in lowered or "authorization" in lowered:
            for match in _HEADER_LINE.finditer(text):
                found = True
                spans.append(match.span("value"))
        reversed_text = ""
        covered = 0  # separators inside a value already found are part of it
        for separator in _SEPARATOR.finditer(text):
            index, width = separator.start(), separator.end() - separator.start()
            if index < covered:
                continue
            if not reversed_text:
                reversed_text = text[::-1]
            span = self._value_span(text, reversed_text, index, width)
            if span is not None:
                found = True
                if span[0] < span[1]:
                    spans.append(span)
                    covered = span[1]
        if not spans:
            return text, found
        return self._replace(text, spans), found

    def _value_span(
        self, text: str, reversed_text: str, index: int, width: int
    ) -> Optional[tuple[int, int]]:
        """The span of the value after the separator at ``index`` when its name is sensitive;
        an empty span when the value needs no redaction; None when the name is not."""
        name = _NAME_REVERSED.match(reversed_text, len(text) - index)
        if name is None:
            return None
        key = name.group(1)[::-1].lstrip(".-")
        if not key or not self._keys.is_sensitive(key):
            return None
        value = self._value.match(text, index + width)
        if value is None:
            return index, index
        start, end = value.span("value")
        content = text[start:end]
        if content == self._marker or _PLACEHOLDER.fullmatch(content):
            return index, index
        return start, end

    def _replace(self, text: str, spans: list[tuple[int, int]]) -> str:
        merged: list[list[int]] = []
        for start, end in sorted(spans):  # a header line's value holds its pairs' values
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        pieces: list[str] = []
        last = 0
        for start, end in merged:
            pieces.append(text[last:start])
            pieces.append(self._marker)
            last = end
        pieces.append(text[last:])
        return "".join(pieces)
