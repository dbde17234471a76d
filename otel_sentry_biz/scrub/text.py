"""Scrub one string: the value detectors, ``key=value`` assignments and password mentions.

``secret_assignment`` finds ``name=value``, ``name: value``, ``"name": "value"`` and
``name is value`` anywhere in a text (query strings, log lines, JSON dumps, header lines) and
replaces the value when the name is sensitive by :class:`~otel_sentry_biz.scrub.keys.KeyMatcher`
— so a URL keeps its shape: ``/cb?code=1&access_token=[Filtered]``.

``password_mention`` mirrors Relay's default rule for data fields: a data value (span data,
extra, breadcrumb, header...) that mentions a password-like word but in no recognisable
assignment is replaced whole, since we cannot tell which part is the secret. Messages,
exception values and span descriptions are *prose*: they keep their text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Optional

from otel_sentry_biz.scrub.assignments import Assignments
from otel_sentry_biz.scrub.detectors import (
    MENTION,
    Detector,
    builtin_detectors,
    count_digits_and_capitals,
    custom_detectors,
)
from otel_sentry_biz.scrub.keys import KeyMatcher
from otel_sentry_biz.scrub.sql import scrub_sql

#: Texts shorter than this hold no detectable secret (``pwd=x`` is the shortest).
_MIN_LENGTH = 5
#: Results are remembered for texts up to this length: events repeat most of their strings
#: (ops, statuses, hosts, routes, business tags) span after span and event after event. The
#: cache serves benchmarks/scrub_corpus.py --timing; it is cleared when it reaches its size.
_CACHED_LENGTH = 256
_CACHE_SIZE = 8192


_CUT_AFTER = (" ", "\n", "\t", ",", ";", "&", '"', "'", "<", ">", "(", ")", "[", "]", "{", "}")


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in ``...``.

    The cut falls after a blank or a delimiter within the last 1024 characters (else the
    whole text goes), and digits, dashes and blanks before it go too: no part of a token,
    nor the first groups of a spaced card number, is left behind unscrubbed.
    """
    cut = text[: limit - 3]
    floor = max(0, len(cut) - 1024)
    at = max(cut.rfind(char, floor) for char in _CUT_AFTER)
    cut = cut[: at + 1] if at >= 0 else ""
    return cut.rstrip("0123456789 -\t\n") + "..."


class TextScrubber:
    """Apply the enabled detectors to one string. Thread-safe (the caches are plain dicts)."""

    def __init__(
        self,
        *,
        keys: KeyMatcher,
        replacement: str,
        detectors: frozenset[str],
        patterns: Sequence[tuple[str, re.Pattern[str]]] = (),
        max_length: int = 16384,
    ) -> None:
        # Shapes first, then assignments: ``password: 4111 1111 1111 1111`` loses the whole
        # card, not only the token after the colon.
        self._detectors: tuple[Detector, ...] = (
            *builtin_detectors(detectors),
            *custom_detectors(patterns),
        )
        self._keys = keys
        self._marker = replacement
        self._assignments = (
            Assignments(keys, replacement) if "secret_assignment" in detectors else None
        )
        self._mentions = "password_mention" in detectors
        self._max_length = max_length
        self._caches: tuple[dict[str, str], ...] = ({}, {}, {}, {})

    def remembered(self, prose: bool = True, sql: bool = False) -> Mapping[str, str]:
        """What :meth:`scrub` remembers for ``(prose, sql)``: text -> its scrubbed form.

        A hit is exactly what ``scrub(text, prose, sql)`` returns; the event walk looks there
        first and saves a call per value (benchmarks/conversion_cost.py). Read it only; it is
        the same object for the scrubber's lifetime (emptied when full, never replaced).
        """
        return self._caches[prose + 2 * sql]

    def scrub(self, text: str, prose: bool = True, sql: bool = False) -> str:
        """``text`` with every secret found replaced by the marker.

        ``prose=False`` (data values) also replaces the whole text when it mentions a
        password-like word outside any ``key=value`` assignment, as Relay's defaults do.
        ``sql=True``: a statement, whose literals become ``%s`` first.
        """
        if len(text) > _CACHED_LENGTH:
            if len(text) > self._max_length:
                text = truncate(text, self._max_length)
            return self._scrub(text, prose, sql)
        cache = self._caches[prose + 2 * sql]
        cached = cache.get(text)
        if cached is None:
            # Texts too short to hold a secret are remembered as they are: then the event walk,
            # which looks here first (remembered()), needs no call for them either.
            cached = text if len(text) < _MIN_LENGTH else self._scrub(text, prose, sql)
            if len(cache) >= _CACHE_SIZE:
                cache.clear()
            cache[text] = cached
        return cached

    def _scrub(self, text: str, prose: bool, sql: bool) -> str:
        if sql:
            text = scrub_sql(text)
        lowered = text.lower()
        original = text
        counts: Optional[tuple[int, int]] = None
        for detector in self._detectors:
            if detector.min_digits or detector.min_capitals:
                if counts is None:
                    counts = count_digits_and_capitals(text)
                if counts[0] < detector.min_digits or counts[1] < detector.min_capitals:
                    continue
            if detector.applies(text, lowered):
                text = self._redact(text, detector)
        assigned = False
        if self._assignments is not None:
            text, assigned = self._assignments.redact(text, lowered)
        if self._mentions and not prose and not assigned and text != self._marker:
            if text is not original:
                lowered = text.lower()  # what is left after redaction
            if MENTION.search(lowered):
                return self._marker
        return text

    def _redact(self, text: str, detector: Detector) -> str:
        pieces: list[str] = []
        last = 0
        search = detector.pattern.search
        match = search(text)
        while match is not None:
            span = detector.locate(match)
            if span is None:
                # Not a secret as a whole, but one may start inside (``15 4111 1111 ...``):
                # resume one character on; the patterns' leading boundaries keep this linear.
                match = search(text, match.start() + 1)
                continue
            start, end = span
            if start >= last and start < end and text[start:end] != self._marker:
                pieces.append(text[last:start])
                pieces.append(self._marker)
                last = end
            match = search(text, max(end, match.start() + 1))
        if not pieces:
            return text
        pieces.append(text[last:])
        return "".join(pieces)
