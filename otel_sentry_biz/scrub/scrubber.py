"""The scrubber: walk an event (or an attribute mapping) and replace every secret in it.

Two rules, applied everywhere in the structure:

* **by key** — a value under a sensitive key (:mod:`otel_sentry_biz.scrub.keys`) is replaced
  whole; in a container every scalar is (the shape stays, as Sentry's schema wants it);
  ``None`` and booleans are kept (they carry no secret);
* **by value** — every other string is searched by the detectors
  (:mod:`otel_sentry_biz.scrub.text`); SQL statements (span descriptions of ``db`` ops,
  ``db.statement`` / ``db.query.text``, ``query`` breadcrumbs) lose their literals first;
  integers that are card numbers are replaced.

The input is never modified: a new structure is returned (tuples stay tuples, bytes become
text). Nothing raises on hostile input; a value that cannot be printed becomes ``<unprintable>``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Optional

from otel_sentry_biz.scrub.config import ScrubConfig, config_error
from otel_sentry_biz.scrub.detectors import card_int
from otel_sentry_biz.scrub.keys import KeyMatcher
from otel_sentry_biz.scrub.sql import SQL_KEYS, is_sql_op
from otel_sentry_biz.scrub.text import TextScrubber

_HEX_ID = re.compile(r"[0-9a-fA-F-]{1,36}")

#: Identifiers and timestamps: a number or a hex id under these keys is copied without a look
#: (a shortcut for benchmarks/scrub_corpus.py --timing); anything else is scrubbed as usual.
_COPY_KEYS = frozenset(
    {
        "event_id",
        "trace_id",
        "span_id",
        "parent_span_id",
        "segment_id",
        "timestamp",
        "start_timestamp",
        "exclusive_time",
    }
)
#: The depths of the mappings where an event holds ids of its own: the event (``event_id``),
#: its trace context and each of its spans (3). Under an id key anywhere else (span data,
#: tags, attributes, a context of the app's) a value is app data: a 16-digit "span_id" there
#: may be a card number, and is scrubbed like any value.
_ID_DEPTHS = frozenset({1, 3})
#: Prose: a password-like word here is not a reason to drop the whole text (Relay does not
#: either); secrets in it are still found by the detectors.
_PROSE_KEYS = frozenset(
    {
        "formatted",
        "transaction",
        "description",
        "filename",
        "abs_path",
        "module",
        "function",
        "context_line",
        "pre_context",
        "post_context",
        "package",
        "type",
        "exception.message",
        "exception.type",
        "exception.stacktrace",
        "otel.status_description",
    }
)


#: Keys whose text needs more than the plain data rules.
_SPECIAL_TEXT_KEYS = frozenset(
    {*_COPY_KEYS, *_PROSE_KEYS, *SQL_KEYS, "description", "message", "value"}
)
_NO_PARENT: Mapping[Any, Any] = {}

#: What the walk does with a value under a key, decided once per key name (Scrubber._plan):
#: replace it whole; or for text, the plain data rules, the id/timestamp copy, or the special
#: rules of _special_text. One dict lookup per value instead of a sensitivity lookup and set
#: tests (the walk visits every value of every event: benchmarks/conversion_cost.py).
_PLAIN, _SENSITIVE, _COPY, _SPECIAL = 0, 1, 2, 3
_PLANS_LIMIT = 4096
#: Ids found to be hex ids, so a repeat costs a set lookup and not a regex match: an event
#: repeats its trace id in every span, and its root's span id as their parent.
_HEX_IDS_LIMIT = 4096
#: Top-level event fields with rules of their own (scrub_event).
_EVENT_FIELDS = frozenset({"message", "logentry", "user", "measurements"})


class Scrubbed(dict):  # type: ignore[type-arg]
    """A part of an event that a :class:`Scrubber` has already walked (:meth:`Scrubber.clean`).

    The same scrubber meeting it at the same depth inside an event takes it as it is. Parts
    that repeat from event to event (a span shape's op, description and data, a resource's
    contexts) are then scrubbed once instead of in every event. ``fitted`` is set by whoever
    also cut it to Relay's sizes (``limits.fit_context``), so ``fit_event`` skips it too.
    Read only once made: events share it.
    """

    __slots__ = ("by", "depth", "fitted")

    by: Scrubber
    depth: int
    fitted: bool

    @classmethod
    def made(
        cls, values: Mapping[str, Any], by: Scrubber, depth: int, *, fitted: bool = False
    ) -> Scrubbed:
        """``values`` (already what ``by`` leaves of them at ``depth``), marked so."""
        marked = cls(values)
        marked.by, marked.depth, marked.fitted = by, depth, fitted
        return marked


class Scrubber:
    """Remove secrets and personal data from events and span attributes.

    >>> scrubber = Scrubber(ScrubConfig(patterns={"internal_id": r"\\bID-\\d{6,}\\b"}))
    >>> event = scrubber.scrub_event(event)          # a new dict; the argument is untouched

    Thread-safe: the only state is caches (key decisions, results for short texts), plain
    dicts whose single updates are atomic.
    """

    def __init__(self, config: Optional[ScrubConfig] = None) -> None:
        self.config = config = config or ScrubConfig()
        self._keys = KeyMatcher(
            config.denylist, send_default_pii=config.send_default_pii, safe_keys=config.safe_keys
        )
        self._text = TextScrubber(
            keys=self._keys,
            replacement=config.replacement,
            detectors=config.detectors,
            patterns=config.compiled,
            max_length=config.max_string_length,
        )
        self._marker = config.replacement
        self._scrub = self._text.scrub
        self._remembered = self._text.remembered(prose=False)
        self._remembered_prose = self._text.remembered(prose=True)
        self._remembered_sql = self._text.remembered(prose=True, sql=True)
        self._is_sensitive = self._keys.is_sensitive
        self._plans: dict[str, int] = {}
        self._hex_ids: set[str] = set()
        self._sql = "sql_literals" in config.detectors
        self._max_depth = config.max_depth
        # As prose: the password-mention rule of data values (whole text replaced) is not
        # about the marker, and does not apply when the app made "password" a safe key.
        probe = f"password={self._marker} {self._marker}"
        if self._text.scrub(probe, prose=True) != probe:
            raise config_error(
                f"argument replacement={self._marker!r} is itself scrubbed (a custom pattern "
                "or detector matches it): choose another marker such as '[Filtered]'"
            )

    # -- public -------------------------------------------------------------------------

    def scrub_event(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """A scrubbed copy of a Sentry event (error, transaction or message).

        Hostile values (huge or non-UTF-8 strings, deep nesting, cycles, odd keys) are
        handled, never raised on; an exception here is a bug, and the caller's guard (the
        exporter's per-segment one) drops and counts the event rather than send it.
        """
        if _EVENT_FIELDS.isdisjoint(event):
            # No field with rules of its own (transactions, mostly): each field as a value of
            # a mapping, which is what the loop below does for them too, one call less each.
            return self._mapping(event, 1, prose_message=False)
        out: dict[str, Any] = {}
        for key, value in event.items():
            if key == "message" and isinstance(value, str):
                out[key] = self._scrub(value, prose=True)
            elif key == "logentry" and isinstance(value, Mapping):
                out[key] = self._mapping(value, 1, prose_message=True)
            elif key == "user" and isinstance(value, Mapping):
                out[key] = self._user(value)
            elif key == "measurements" and isinstance(value, Mapping):
                # Numbers under names Relay restricts to [a-z0-9._]: a name like
                # "auth_failures" is a metric, not a secret, and its value must survive.
                out[key] = {
                    name: {k: v for k, v in m.items() if isinstance(v, (int, float, str))}
                    for name, m in value.items()
                    if isinstance(name, str) and isinstance(m, Mapping)
                }
            else:
                out[key] = self._entry(key, value, event, 1, False)
        return out

    def scrub_attributes(self, attributes: Optional[Mapping[str, Any]]) -> dict[str, Any]:
        """A scrubbed copy of span (or span event) attributes; OTel value types are kept."""
        if not attributes:
            return {}
        return self._mapping(attributes, 0, prose_message=False)

    def clean(self, mapping: Mapping[str, Any], depth: int) -> dict[str, Any]:
        """``mapping`` scrubbed as :meth:`scrub_event` scrubs a mapping ``depth`` levels deep
        (a context or a transaction's span: 3), and marked :class:`Scrubbed` so that this
        scrubber's walk of an event holding it there copies it. Keys with rules tied to their
        siblings (``description`` by ``op``) must be in ``mapping`` with those siblings.
        """
        out = self._mapping(mapping, depth, prose_message=False)
        if depth > self._max_depth:
            return out  # the walk would empty it: nothing to mark
        return Scrubbed.made(out, self, depth)

    def scrub_text(self, text: str) -> str:
        """A scrubbed copy of a message-like text (prose rules: no whole-text drop)."""
        return self._text.scrub(_as_text(text), prose=True)

    def is_sensitive_key(self, key: str) -> bool:
        """Whether a value stored under ``key`` is replaced whole."""
        return self._keys.is_sensitive(key)

    # -- walk ---------------------------------------------------------------------------
    # Exact type tests first (``type(v) is str``): the walk visits every value of every
    # event, and they are much cheaper than isinstance against ABCs
    # (benchmarks/scrub_corpus.py --timing).

    def _mapping(
        self, mapping: Mapping[Any, Any], depth: int, *, prose_message: bool
    ) -> dict[Any, Any]:
        if depth > self._max_depth:
            return {}
        # _entry inlined for the common cases: one call less per value.
        out: dict[Any, Any] = {}
        plans = self._plans
        scrub = self._scrub
        remembered = self._remembered  # a hit is scrub(value, False), without the call
        for key, value in mapping.items():
            name = key if type(key) is str else _as_text(key)
            plan = plans.get(name)
            if plan is None:
                plan = self._plan(name)
            kind = type(value)
            if plan == _SENSITIVE:
                out[key] = self._redacted(value, depth)
            elif kind is str:
                if plan == _PLAIN:
                    out[key] = remembered.get(value) or scrub(value, False)
                elif plan == _COPY and depth in _ID_DEPTHS and self._is_id(value):
                    out[key] = value
                else:
                    out[key] = self._special_text(name, value, mapping, prose_message)
            elif kind is float or kind is bool or value is None:
                out[key] = value
            elif kind is dict:
                out[key] = self._mapping(value, depth + 1, prose_message=False)
            elif kind is int:
                out[key] = self._marker if card_int(value) else value
            else:
                out[key] = self._value(value, depth + 1, prose=name in _PROSE_KEYS)
        return out

    def _entry(
        self, key: Any, value: Any, parent: Mapping[Any, Any], depth: int, prose_message: bool
    ) -> Any:
        """One value of a mapping (the same rules as the loop of :meth:`_mapping`)."""
        name = key if type(key) is str else _as_text(key)
        plan = self._plans.get(name)
        if plan is None:
            plan = self._plan(name)
        if plan == _SENSITIVE:
            return self._redacted(value, depth)
        if type(value) is str:
            if plan == _PLAIN:
                return self._scrub(value, False)
            if plan == _COPY and depth in _ID_DEPTHS and self._is_id(value):
                return value
            return self._special_text(name, value, parent, prose_message)
        return self._value(value, depth + 1, prose=name in _PROSE_KEYS)

    def _plan(self, name: str) -> int:
        """How values under key ``name`` are scrubbed (see _PLAIN...), remembered per name."""
        if self._is_sensitive(name):
            plan = _SENSITIVE
        elif name in _COPY_KEYS:
            plan = _COPY  # an id or timestamp is copied; any other text is scrubbed as data
        elif name in _SPECIAL_TEXT_KEYS:
            plan = _SPECIAL
        else:
            plan = _PLAIN
        if len(self._plans) >= _PLANS_LIMIT:
            self._plans.clear()  # keys are few in practice; a flood of unique keys stays bounded
        self._plans[name] = plan
        return plan

    def _is_id(self, value: str) -> bool:
        """Is ``value`` an id (1 to 36 hex digits and dashes)? Remembered when it is."""
        if value in self._hex_ids:
            return True
        if _HEX_ID.fullmatch(value) is None:
            return False
        if len(self._hex_ids) >= _HEX_IDS_LIMIT:
            self._hex_ids.clear()  # ids are unique but for the repeats within an event
        self._hex_ids.add(value)
        return True

    def _special_text(
        self, name: str, value: str, parent: Mapping[Any, Any], prose_message: bool
    ) -> str:
        # Each: the remembered result if any (what scrub would return), else scrub's.
        if self._sql and _holds_sql(name, parent):
            return self._remembered_sql.get(value) or self._scrub(value, True, True)
        if (
            name in _PROSE_KEYS
            or (name == "value" and "type" in parent)
            or (name == "message" and prose_message)
        ):
            return self._remembered_prose.get(value) or self._scrub(value, True)
        return self._remembered.get(value) or self._scrub(value, False)

    def _value(self, value: Any, depth: int, *, prose: bool) -> Any:
        kind = type(value)
        if kind is Scrubbed and value.by is self and value.depth == depth:
            return value
        if kind is str:
            return self._scrub(value, prose=prose)
        if value is None or kind is bool or kind is float:
            return value
        if kind is dict or kind is list:  # exact types: no isinstance chain for each span
            if depth > self._max_depth:
                return self._marker
            if kind is dict:
                return self._mapping(value, depth, prose_message=False)
            return self._sequence(value, depth, prose=prose)
        if isinstance(value, int) and not isinstance(value, bool):
            return self._marker if card_int(value) else value
        if isinstance(value, (float, bool)):
            return value
        if isinstance(value, str):
            return self._scrub(str(value), prose=prose)
        if depth > self._max_depth:
            return self._marker
        if kind is dict or isinstance(value, Mapping):  # exact type first: no ABC check
            return self._mapping(value, depth, prose_message=False)
        if isinstance(value, (list, tuple)):
            return self._sequence(value, depth, prose=prose)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return self._scrub(bytes(value).decode("utf-8", "replace"), prose=prose)
        if isinstance(value, (set, frozenset)):
            return self._sequence(list(value), depth, prose=prose)
        return self._scrub(_as_text(value), prose=prose)  # JSON has no other types

    def _sequence(self, items: Any, depth: int, *, prose: bool) -> Any:
        if items and _is_pairs(items):
            # Relay's shape for headers, cookies and query strings: [[name, value], ...].
            scrubbed: list[Any] = [
                _pair(pair, self._entry(pair[0], pair[1], _NO_PARENT, depth, False))
                for pair in items
            ]
        else:
            scrubbed = [self._value(item, depth + 1, prose=prose) for item in items]
        return tuple(scrubbed) if isinstance(items, tuple) else scrubbed

    def _redacted(self, value: Any, depth: int) -> Any:
        """Every scalar under a sensitive key replaced; containers keep their shape (Relay
        rejects ``request.cookies`` or a context that is not an object)."""
        if value is None or isinstance(value, bool) or (isinstance(value, str) and not value):
            return value
        if isinstance(value, float) and not math.isfinite(value):
            return value
        if depth > self._max_depth:
            return self._marker
        if isinstance(value, Mapping):
            return {key: self._redacted(item, depth + 1) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            if value and _is_pairs(value):
                items = [_pair(pair, self._redacted(pair[1], depth + 1)) for pair in value]
            else:
                items = [self._redacted(item, depth + 1) for item in value]
            return tuple(items) if isinstance(value, tuple) else items
        return self._marker

    def _user(self, user: Mapping[str, Any]) -> dict[str, Any]:
        out = self._mapping(user, 1, prose_message=False)
        if self.config.send_default_pii:
            # Consent given: who the user is stays as given (sentry-sdk keeps it too); the
            # same values elsewhere in the event are still scrubbed.
            for key in _CONSENTED_USER_FIELDS:
                if isinstance(user.get(key), str):
                    out[key] = user[key]
        if out.get("ip_address") == self._marker:
            del out["ip_address"]  # Relay rejects a non-IP here; sentry-sdk removes it too
        return out


#: Fields of ``event.user`` kept as given when the app consented to send personal data.
_CONSENTED_USER_FIELDS = ("email", "username", "name")


def _holds_sql(name: str, parent: Mapping[Any, Any]) -> bool:
    if name in SQL_KEYS:
        return True
    if name == "description":
        return is_sql_op(parent.get("op"))
    if name == "message":
        category = parent.get("category")
        return isinstance(category, str) and ("query" in category or category.startswith("db"))
    return False


def _is_pairs(items: Any) -> bool:
    for item in items:
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str)):
            return False
    return True


def _pair(pair: Any, value: Any) -> Any:
    return (pair[0], value) if isinstance(pair, tuple) else [pair[0], value]


def _as_text(value: Any) -> str:
    try:
        return value if isinstance(value, str) else str(value)
    except Exception:
        return "<unprintable>"
