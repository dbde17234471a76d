"""Sentry events from a segment: its transaction(s), its errors and its violations.

Pure mapping, no I/O: a :class:`EventFactory` holds the settings and caches (resources,
tag guard) and turns one :class:`~otel_sentry_biz.sentry.segments.Segment` into event dicts
exactly as Sentry ingests them (checked against Relay's normalizer in the tests).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Optional

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from otel_sentry_biz import attributes as attr
from otel_sentry_biz.capture import EVENT_ID, HANDLED, violation_attributes
from otel_sentry_biz.impact import LEVEL_BY_IMPACT, Category, Impact
from otel_sentry_biz.rules import VIOLATION_FINGERPRINT
from otel_sentry_biz.rules.measurement import measurements
from otel_sentry_biz.scrub.scrubber import Scrubbed, Scrubber
from otel_sentry_biz.sentry.breadcrumbs import breadcrumbs
from otel_sentry_biz.sentry.limits import fit_context
from otel_sentry_biz.sentry.lineage import Lineage
from otel_sentry_biz.sentry.ops import _KIND_INDEX, SpanNaming, name_span
from otel_sentry_biz.sentry.segments import Segment
from otel_sentry_biz.sentry.stacktrace import exception_values
from otel_sentry_biz.sentry.status import sentry_status
from otel_sentry_biz.sentry.tags import (
    ResourceInfo,
    TagCandidate,
    TagMapper,
    json_safe,
    resource_info,
    tag_text,
)
from otel_sentry_biz.sentry.user import user_of
from otel_sentry_biz.spans import attributes_of, events_of
from otel_sentry_biz.version import __version__

SDK_INFO = {"name": "otel-sentry-biz", "version": __version__}
ORIGIN = "auto.otel.otel_sentry_biz"
#: Tags every judged error and violation carries, so on-call can filter and alert on them.
IMPACT_TAG = "business_impact"
CATEGORY_TAG = "error_category"
RULE_TAG = "violation_rule"
#: The one finding value of a violation that is a tag (its alert tier, to route on); the
#: others (``breach``, ``limit``, ``value``...) are in ``contexts.business_violation``.
TIER_DATA_KEY = "alert_tier"
#: Attributes that are ours to read, not data worth repeating on every span.
_INTERNAL_ATTRIBUTES = frozenset({attr.SENTRY_OP, "sentry.name", "sentry.description"})
_JUDGEMENT_TAG_NAMES = frozenset({IMPACT_TAG, CATEGORY_TAG})
_JUDGEMENT_TAGS = frozenset(
    key[len(attr.BIZ_PREFIX) :] for key in (attr.IMPACT, attr.CATEGORY, HANDLED)
)


@dataclass(frozen=True)
class EventDefaults:
    """What every event carries unless the resource says otherwise."""

    environment: Optional[str] = None
    release: Optional[str] = None
    max_spans: int = 1000
    max_breadcrumbs: int = 100
    #: The user's e-mail, names and IP address in ``event.user`` (``send_default_pii``).
    send_default_pii: bool = False


class EventFactory:
    """Build Sentry events from segments. Used from the exporter's single worker thread.

    With the ``scrubber`` the exporter scrubs events with, the parts that repeat from event to
    event (a child span's shape, a resource's contexts) are scrubbed once, when first seen,
    and marked so that its walk of each event skips them (:class:`Scrubbed`): the events are
    still to be scrubbed, and what that makes of them is the same.
    """

    def __init__(
        self,
        defaults: EventDefaults = EventDefaults(),
        tags: Optional[TagMapper] = None,
        *,
        scrubber: Optional[Scrubber] = None,
    ):
        self._defaults = defaults
        self._tags = tags or TagMapper()
        self._scrubber = scrubber if scrubber and _may_skip_spans(scrubber) else None
        self._resources: dict[int, tuple[Resource, dict[str, Any]]] = {}
        self._shapes: dict[tuple[Any, ...], _Shape] = {}

    # -- transactions -------------------------------------------------------------------

    def transactions(self, segment: Segment) -> list[dict[str, Any]]:
        """The segment as one transaction, or several when it exceeds ``max_spans``."""
        root = segment.root
        root_attributes = attributes_of(root)
        naming = name_span(root.name, root.kind, root_attributes)
        tags, data = self._split(root_attributes)
        children = sorted(segment.spans, key=_start)
        event = self._base(root, _ns(root.end_time))
        event.update(
            type="transaction",
            event_id=_event_id(root.context.trace_id, root.context.span_id),
            transaction=naming.transaction_name,
            transaction_info={"source": naming.source},
            start_timestamp=_ns(root.start_time),
            tags={**event.get("tags", {}), **tags},
        )
        trace_context = self._trace_context(root, naming, root_attributes)
        if data:
            trace_context["data"] = data
        event["contexts"]["trace"] = trace_context
        judgement = _span_judgement(root.status.status_code, root_attributes)
        if judgement:
            event["tags"].update(judgement)
        user = self._user([root])
        if user:
            event["user"] = user
        limit = self._defaults.max_spans
        ids = _HexIds(root, trace_context)
        event["spans"] = [self._child(span, ids) for span in children[:limit]]
        if segment.has_events():  # measurements are span events (none: the common case)
            found = measurements([root, *children])  # e.g. validate_batch's data_quality_score
            if found:
                event["measurements"] = found
        # A request's business context is usually entered below its root span: the
        # transaction is tagged with what its spans carry, so on-call can search by it.
        for child in event["spans"]:
            for key, value in child.get("tags", {}).items():
                if key not in _JUDGEMENT_TAG_NAMES:
                    event["tags"].setdefault(key, value)
        events = [event]
        for part, start in enumerate(range(limit, len(children), limit), start=2):
            chunk = children[start : start + limit]
            events.append(self._continuation(event, root, chunk, part, ids))
        if len(events) > 1:
            total = len(events)
            for index, each in enumerate(events, start=1):
                each["tags"]["transaction_part"] = f"{index}/{total}"
        return events

    def _continuation(
        self,
        first: dict[str, Any],
        root: ReadableSpan,
        chunk: Sequence[ReadableSpan],
        part: int,
        ids: _HexIds,
    ) -> dict[str, Any]:
        # A transaction may hold at most ``max_spans`` spans: the rest of a big segment goes in
        # continuation transactions under the same root, one per chunk, in the same trace.
        span_id = uuid.uuid4().hex[:16]
        trace_context = dict(
            first["contexts"]["trace"],
            span_id=span_id,
            parent_span_id=_hex_span(root.context.span_id),
        )
        trace_context.pop("data", None)
        first = {key: value for key, value in first.items() if key != "measurements"}
        return {
            **first,
            "event_id": uuid.uuid4().hex,
            "transaction": first["transaction"],
            "start_timestamp": _ns(chunk[0].start_time),
            "timestamp": max(_ns(span.end_time) for span in chunk),
            "contexts": {**first["contexts"], "trace": trace_context},
            "tags": dict(first["tags"], transaction_part=str(part)),
            "spans": [self._child(span, ids) for span in chunk],
        }

    def _child(self, span: ReadableSpan, ids: _HexIds) -> dict[str, Any]:
        shape = self._shape(span.name, span.kind, span.status.status_code, attributes_of(span))
        context = span.context
        trace_id, span_id = context.trace_id, context.span_id
        span_hex = ids.spans[span_id] = _hex_span(span_id)  # its children's parent_span_id
        parent = span.parent
        if parent is None:
            parent_hex = None
        else:
            parent_hex = ids.spans.get(parent.span_id) or _hex_span(parent.span_id)
        scrubber = self._scrubber
        # Cleaned (scrubber given): the shape's fields are already what the walk makes of
        # them, and ids (hex) and timestamps (floats) are what it copies as they are: the
        # child is made marked, for the walk to skip, its tags (admitted per span) walked now.
        child: dict[str, Any] = (Scrubbed if scrubber else dict)(
            trace_id=ids.trace if trace_id == ids.trace_id else _hex_trace(trace_id),
            span_id=span_hex,
            parent_span_id=parent_hex,
            op=shape.op,
            description=shape.description,
            start_timestamp=_ns(span.start_time),
            timestamp=_ns(span.end_time),
            status=shape.status,
            origin=ORIGIN,
        )
        tags = self._admitted(shape.candidates) if shape.candidates else {}
        if shape.judgement:
            tags.update(shape.judgement)
        if tags:
            child["tags"] = scrubber.scrub_attributes(tags) if scrubber else tags
        if shape.data:
            # Uncleaned, the walk makes the event's own copy; cleaned, it is shared, read only.
            child["data"] = shape.data if scrubber else dict(shape.data)
        if scrubber:
            child.by, child.depth, child.fitted = scrubber, _SPAN_DEPTH, False
        return child

    def _shape(
        self, name: str, kind: SpanKind, status_code: StatusCode, attributes: Mapping[str, Any]
    ) -> _Shape:
        """What a child span's Sentry form takes from its name, kind, status and attributes.

        Remembered per :func:`_shape_key`: spans repeat a few shapes (the same query, the same
        internal step, request after request), and working one out is most of a child's cost
        (benchmarks/conversion_cost.py). Only the tags' admission (distinct values per key)
        is decided again for each span, by :meth:`_admitted`.
        """
        key = _shape_key(name, kind, status_code, attributes)
        shape = None if key is None else self._shapes.get(key)
        if shape is None:
            naming = name_span(name, kind, attributes)
            candidates, data = self._candidates(attributes)
            for attribute in _SHOWN_AS_DESCRIPTION:
                # The query or URL is already the description: sent (and scrubbed) once.
                if data.get(attribute) == naming.description:
                    del data[attribute]
            fields: dict[str, Any] = {
                "op": naming.op,
                "description": naming.description,  # scrubbed by its op: SQL or not
                "status": sentry_status(status_code, attributes),
            }
            if data:
                fields["data"] = data
            if self._scrubber is not None:
                fields = self._scrubber.clean(fields, _SPAN_DEPTH)  # once for every span
            shape = _Shape(
                fields["op"],
                fields["description"],
                fields["status"],
                candidates,
                _span_judgement(status_code, attributes),
                fields.get("data", data),
            )
            if key is not None:
                if len(self._shapes) >= _SHAPES_SIZE:
                    self._shapes.clear()  # a flood of unique shapes stays bounded
                self._shapes[key] = shape
        return shape

    def _trace_context(
        self, span: ReadableSpan, naming: SpanNaming, attributes: Mapping[str, Any]
    ) -> dict[str, Any]:
        trace_context: dict[str, Any] = {
            "trace_id": _hex_trace(span.context.trace_id),
            "span_id": _hex_span(span.context.span_id),
            "op": naming.op,
            "status": sentry_status(span.status.status_code, attributes),
            "origin": ORIGIN,
            "type": "trace",
        }
        if span.parent is not None:
            trace_context["parent_span_id"] = _hex_span(span.parent.span_id)
        return trace_context

    # -- errors and violations ----------------------------------------------------------

    def errors(self, segment: Segment) -> list[dict[str, Any]]:
        """One error event per distinct exception in the segment (nested re-records merged)."""
        root = segment.root
        if not any(events_of(span) for span in (root, *segment.spans)):
            return []  # the common case: nothing was recorded, nothing to name
        transaction = name_span(root.name, root.kind, attributes_of(root)).transaction_name
        root_failed = root.status.status_code is StatusCode.ERROR
        found: dict[tuple[Any, ...], _Recorded] = {}
        # Innermost first: spans that end earlier recorded the exception first.
        for span in sorted([*segment.spans, root], key=_end):
            for event in events_of(span):
                if event.name != attr.EXCEPTION_EVENT:
                    continue
                event_attrs = event.attributes or {}
                values = exception_values(
                    str(event_attrs.get(attr.EXCEPTION_TYPE, "Exception")),
                    str(event_attrs.get(attr.EXCEPTION_MESSAGE, "")),
                    _optional_str(event_attrs.get(attr.EXCEPTION_STACKTRACE)),
                )
                key = _identity(values, event_attrs)
                seen = found.get(key)
                if seen is None:
                    seen = found[key] = _Recorded(span, event, values, span)
                else:
                    # Keep the innermost span (where it happened) and the longest stack.
                    if seen.outermost is not span:
                        seen.outermost, seen.escaped = span, False
                    if _frame_count(values) > _frame_count(seen.values):
                        seen.values = values
                seen.escaped = seen.escaped or _flagged_escaped(event_attrs)
        if not found:
            return []
        lineage = Lineage(segment)
        crumbs = breadcrumbs(segment)
        errors = []
        for record in found.values():
            context_tags = self._context_tags(lineage.context(record.span))
            error = self._error(record, transaction, root_failed, context_tags)
            self._set_user(error, lineage.chain(record.span))
            before = [c for c in crumbs if c["timestamp"] <= error["timestamp"]]
            if before and self._defaults.max_breadcrumbs:
                error["breadcrumbs"] = {"values": before[-self._defaults.max_breadcrumbs :]}
            errors.append(error)
        return errors

    def _error(
        self,
        record: _Recorded,
        transaction: str,
        root_failed: bool,
        context_tags: Mapping[str, str],
    ) -> dict[str, Any]:
        span, event_attrs = record.span, record.event.attributes or {}
        handled = bool(event_attrs.get(HANDLED)) or not (
            root_failed and _escaped(record.outermost, event_attrs, record.escaped)
        )
        values = [dict(value) for value in record.values]
        values[-1]["mechanism"] = {"type": "otel", "handled": handled}
        impact = _impact(event_attrs.get(attr.IMPACT), Impact.LOW)
        category = _category(event_attrs.get(attr.CATEGORY))
        event = self._base(span, _ns(record.event.timestamp))
        attributes = attributes_of(span)
        tags, data = self._split(attributes)
        event_tags, event_data = self._split(_event_business(event_attrs))
        event["tags"].update(tags)
        event["tags"].update(event_tags)
        event["tags"].update({IMPACT_TAG: impact.value, CATEGORY_TAG: category.value})
        for key, value in context_tags.items():
            event["tags"].setdefault(key, value)
        naming = name_span(span.name, span.kind, attributes)
        event.update(
            event_id=_valid_event_id(event_attrs.get(EVENT_ID)) or uuid.uuid4().hex,
            level=LEVEL_BY_IMPACT[impact],
            exception={"values": values},
            transaction=transaction,
        )
        event["contexts"]["trace"] = self._trace_context(span, naming, attributes)
        if data or event_data:
            event["contexts"]["span"] = {"name": span.name, "attributes": {**data, **event_data}}
        return event

    def violations(self, segment: Segment) -> list[dict[str, Any]]:
        """One Sentry issue event per ``biz.violation`` span event, fingerprinted by rule."""
        return self._one_per_event(segment, attr.VIOLATION_EVENT, self._violation)

    def messages(self, segment: Segment) -> list[dict[str, Any]]:
        """One Sentry message event per ``biz.message`` span event (``capture_message``)."""
        return self._one_per_event(segment, attr.MESSAGE_EVENT, self._message)

    def _one_per_event(
        self,
        segment: Segment,
        name: str,
        build: Callable[[ReadableSpan, Event, str, Mapping[str, str]], dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """``build(span, event, transaction, context_tags)`` for each span event ``name``."""
        root = segment.root
        found = [
            (span, event)
            for span in [root, *segment.spans]
            for event in events_of(span)
            if event.name == name
        ]
        if not found:
            return []
        transaction = name_span(root.name, root.kind, attributes_of(root)).transaction_name
        lineage = Lineage(segment)
        built = []
        for span, event in found:
            payload = build(span, event, transaction, self._context_tags(lineage.context(span)))
            self._set_user(payload, lineage.chain(span))
            built.append(payload)
        return built

    def _message(
        self,
        span: ReadableSpan,
        event: Event,
        transaction: str,
        context_tags: Mapping[str, str],
    ) -> dict[str, Any]:
        event_attrs = event.attributes or {}
        attributes = attributes_of(span)
        payload = self._base(span, _ns(event.timestamp))
        payload["tags"].update(self._split(attributes)[0])
        payload["tags"].update(self._split(_event_business(event_attrs))[0])
        for key, value in context_tags.items():
            payload["tags"].setdefault(key, value)
        naming = name_span(span.name, span.kind, attributes)
        payload.update(
            event_id=_valid_event_id(event_attrs.get(EVENT_ID)) or uuid.uuid4().hex,
            level=str(event_attrs.get(attr.MESSAGE_LEVEL, "info")),
            logentry={"formatted": str(event_attrs.get(attr.MESSAGE_TEXT, ""))},
            transaction=transaction,
        )
        payload["contexts"]["trace"] = self._trace_context(span, naming, attributes)
        return payload

    def _context_tags(self, spans: Sequence[ReadableSpan]) -> dict[str, str]:
        """Business tags of an event's context (:meth:`Lineage.context`), nearest first."""
        tags: dict[str, str] = {}
        for span in spans:
            for key, value in self._split(attributes_of(span))[0].items():
                tags.setdefault(key, value)
        return tags

    def _user(self, chain: Sequence[ReadableSpan]) -> Optional[dict[str, str]]:
        """Sentry's ``user``: from the nearest span of ``chain`` that names one."""
        for span in chain:
            user = user_of(attributes_of(span), send_default_pii=self._defaults.send_default_pii)
            if user:
                return user
        return None

    def _set_user(self, event: dict[str, Any], chain: Sequence[ReadableSpan]) -> None:
        user = self._user(chain)
        if user:
            event["user"] = user

    def _violation(
        self,
        span: ReadableSpan,
        event: Event,
        transaction: str,
        context_tags: Mapping[str, str],
    ) -> dict[str, Any]:
        event_attrs = event.attributes or {}
        rule = str(event_attrs.get(attr.VIOLATION_RULE, "unknown"))
        impact = _impact(event_attrs.get(attr.VIOLATION_IMPACT), Impact.MEDIUM)
        category = _category(event_attrs.get(attr.VIOLATION_CATEGORY))
        group = event_attrs.get(attr.VIOLATION_GROUP)
        message = str(event_attrs.get(attr.VIOLATION_MESSAGE, rule))
        data = violation_attributes(event_attrs)
        payload = self._base(span, _ns(event.timestamp))
        attributes = attributes_of(span)
        tags, _ = self._split(attributes)
        event_tags, business = self._split(_event_business(event_attrs))
        payload["tags"].update(tags)
        payload["tags"].update(event_tags)
        # The rule's finding values are data, never tags: one named like a business key
        # (``operation``, ``key``) must not replace the span's. Only the tier is a tag.
        tier = tag_text(data[TIER_DATA_KEY]) if TIER_DATA_KEY in data else None
        if tier is not None:
            payload["tags"].setdefault(TIER_DATA_KEY, tier)
        payload["tags"].update({IMPACT_TAG: impact.value, CATEGORY_TAG: category.value})
        rule_tag = tag_text(rule)
        if rule_tag is not None:  # a rule name no tag can hold is still in the context
            payload["tags"][RULE_TAG] = rule_tag
        for key, value in context_tags.items():
            payload["tags"].setdefault(key, value)
        naming = name_span(span.name, span.kind, attributes)
        violation_context: dict[str, Any] = {"rule": rule, "message": message}
        if group is not None:
            violation_context["group"] = str(group)
        if attr.VIOLATION_RISK in event_attrs:
            # json_safe: a NaN risk made the whole segment unsendable (JSON has no NaN).
            violation_context["risk"] = json_safe(event_attrs[attr.VIOLATION_RISK])
        if data:
            violation_context["data"] = self._split({attr.biz_key(k): v for k, v in data.items()})[
                1
            ]
        # The business facts it was reported with that are no tags (amounts): still shown.
        untagged = {
            key: value
            for key, value in business.items()
            if key[len(attr.BIZ_PREFIX) :] not in event_tags
        }
        if untagged:
            violation_context["business"] = untagged
        payload.update(
            event_id=_valid_event_id(event_attrs.get(EVENT_ID)) or uuid.uuid4().hex,
            level=LEVEL_BY_IMPACT[impact],
            logentry={"formatted": message},
            fingerprint=_violation_fingerprint(rule, group, event_attrs),
            transaction=transaction,
        )
        payload["contexts"]["trace"] = self._trace_context(span, naming, attributes)
        payload["contexts"]["business_violation"] = violation_context
        return payload

    # -- shared -------------------------------------------------------------------------

    def _base(self, span: ReadableSpan, timestamp: float) -> dict[str, Any]:
        info = self._resource(span.resource)
        event: dict[str, Any] = {
            "platform": "python",
            "timestamp": timestamp,
            "sdk": SDK_INFO,
            # A cleaned context is shared, read only; any other is the event's own copy.
            "contexts": {
                name: value if type(value) is Scrubbed else dict(value)
                for name, value in info["contexts"].items()
            },
            "tags": {},
        }
        event.update(info["fields"])
        return event

    def _resource(self, resource: Optional[Resource]) -> dict[str, Any]:
        cached = self._resources.get(id(resource))
        if cached is not None and cached[0] is resource:
            return cached[1]
        info: ResourceInfo = resource_info(resource.attributes if resource else {})
        fields = {
            "environment": self._defaults.environment or info.environment or "production",
            "release": self._defaults.release or info.release,
            "server_name": info.server_name,
        }
        contexts = info.contexts
        if self._scrubber is not None:
            # Sent with every event of the resource: scrubbed and cut to size once, here.
            clean = self._scrubber.clean
            contexts = {name: fit_context(clean(c, _SPAN_DEPTH)) for name, c in contexts.items()}
        result = {
            "contexts": contexts,
            **fields,
            # What _base adds to every event of this resource: the fields that are set.
            "fields": {key: value for key, value in fields.items() if value},
        }
        if len(self._resources) > 64:
            self._resources.clear()
        self._resources[id(resource)] = (resource, result)  # keep resource alive: id stays ours
        return result

    def _split(
        self, attributes: Optional[Mapping[str, Any]]
    ) -> tuple[dict[str, str], dict[str, Any]]:
        """(tags, data) of span or event attributes, without our own bookkeeping."""
        candidates, data = self._candidates(attributes)
        return self._admitted(candidates), data

    def _candidates(
        self, attributes: Optional[Mapping[str, Any]]
    ) -> tuple[list[TagCandidate], dict[str, Any]]:
        """The part of :meth:`_split` decided by the attributes alone (TagMapper.candidates)."""
        if not attributes:
            return [], {}
        candidates, data = self._tags.candidates(attributes)
        if not _INTERNAL_ATTRIBUTES.isdisjoint(data):  # rarely: test first, build no set
            for key in _INTERNAL_ATTRIBUTES.intersection(data):
                del data[key]
        return candidates, data

    def _admitted(self, candidates: list[TagCandidate]) -> dict[str, str]:
        if not candidates:
            return {}
        tags = self._tags.admitted(candidates)
        if tags and not _JUDGEMENT_TAGS.isdisjoint(tags):
            for key in _JUDGEMENT_TAGS.intersection(tags):
                del tags[key]  # shown as business_impact / error_category where they apply
        return tags


class _Shape(NamedTuple):
    """The part of a child span's Sentry form that its name, kind, status and attributes
    decide (see EventFactory._shape). Shared by every span of the same shape: read only.
    With the factory's scrubber, op, description, status and data are scrubbed; the tag
    candidates never are (their admission counts the values the app set)."""

    op: str
    description: str
    status: str
    candidates: list[TagCandidate]
    judgement: dict[str, str]
    data: dict[str, Any]


#: How deep the scrubber's walk of an event finds a transaction's spans and its contexts
#: (event, ``spans`` or ``contexts``, then each): the depth parts are cleaned at.
_SPAN_DEPTH = 3
#: A child span's fields that the factory makes itself (not from the span's attributes).
_OWN_SPAN_FIELDS = ("trace_id", "span_id", "parent_span_id", "start_timestamp", "timestamp")


def _may_skip_spans(scrubber: Scrubber) -> bool:
    """Whether the walk would leave a child span's own fields as the factory makes them and
    walk its tags, so a child made with its other fields scrubbed may skip the walk.

    Not with a denylist naming those fields (``id``, ``tags``), a pattern that matches the
    origin, or a walk that stops above a span's tags (depth 4; the transaction is tagged with
    their values as set, which such a walk would empty in the span).
    """
    if scrubber.config.max_depth <= _SPAN_DEPTH:
        return False
    if any(scrubber.is_sensitive_key(key) for key in (*_OWN_SPAN_FIELDS, "origin", "tags")):
        return False
    return scrubber.clean({"origin": ORIGIN}, _SPAN_DEPTH) == {"origin": ORIGIN}


_SHAPES_SIZE = 2048
#: StatusCode members by identity, as ops._KIND_INDEX has SpanKind's (an Enum's hash is a
#: Python call, an int's is not; members live as long as the process, ids stay theirs).
_STATUS_INDEX: Mapping[int, int] = {id(member): member.value for member in StatusCode}


def _shape_key(
    name: str, kind: SpanKind, status_code: StatusCode, attributes: Mapping[str, Any]
) -> Optional[tuple[Any, ...]]:
    """The key :meth:`EventFactory._shape` remembers a shape by, or None (not remembered).

    None unless the name and every attribute key are exactly ``str`` and every value is
    exactly a ``str`` or an ``int``: equal keys must mean equal inputs, and ``1 == 1.0 ==
    True`` or ``0.0 == -0.0`` would not (they make different data and tags).
    """
    kind_index = _KIND_INDEX.get(id(kind))
    status_index = _STATUS_INDEX.get(id(status_code))
    if kind_index is None or status_index is None or type(name) is not str:
        return None
    for key, value in attributes.items():
        if type(key) is not str:
            return None
        kind_of_value = type(value)
        if kind_of_value is not str and kind_of_value is not int:
            return None
    return (name, kind_index, status_index, *attributes.items())


class _HexIds:
    """The hex forms of one segment's ids, each formatted once: every child repeats its
    root's trace id and most name the root (or a sibling) as parent, and formatting an id
    costs as much as the rest of a child's ids and timestamps (benchmarks/conversion_cost.py).
    """

    __slots__ = ("spans", "trace", "trace_id")

    def __init__(self, root: ReadableSpan, trace_context: Mapping[str, Any]) -> None:
        self.trace_id: int = root.context.trace_id
        self.trace: str = trace_context["trace_id"]
        self.spans: dict[int, str] = {root.context.span_id: trace_context["span_id"]}


@dataclass
class _Recorded:
    span: ReadableSpan
    event: Event
    values: list[dict[str, Any]]
    outermost: ReadableSpan
    #: Recorded on ``outermost`` as escaping it (``exception.escaped``).
    escaped: bool = False


#: Event attributes that are our judgements or bookkeeping, not business facts to tag.
_NOT_BUSINESS_FACTS = (attr.IMPACT, attr.CATEGORY, HANDLED, "biz.violation.", "biz.message.")


def _event_business(event_attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The business facts an exception or violation event carries (``biz.*``)."""
    return {
        key: value
        for key, value in event_attrs.items()
        if key.startswith(attr.BIZ_PREFIX) and not key.startswith(_NOT_BUSINESS_FACTS)
    }


#: Attributes a span's description is often made of, verbatim.
_SHOWN_AS_DESCRIPTION = ("db.query.text", "db.statement", "url.full", "http.url")


def _impact(value: Any, default: Impact) -> Impact:
    # An app may set biz.impact to anything on a span: an unknown value must not lose the
    # error (or the segment with it); it is reported with the default.
    try:
        return default if value is None else Impact.parse(str(value))
    except ValueError:
        return default


def _category(value: Any) -> Category:
    try:
        return Category.BUSINESS_LOGIC if value is None else Category.parse(str(value))
    except ValueError:
        return Category.BUSINESS_LOGIC


def _violation_fingerprint(rule: str, group: Any, event_attrs: Mapping[str, Any]) -> list[str]:
    """The rule's own fingerprint when it declares one, else one issue per (rule, group)."""
    declared = event_attrs.get(VIOLATION_FINGERPRINT)
    if declared:
        return [str(part) for part in declared]
    return ["biz-violation", rule, *([str(group)] if group is not None else [])]


def _span_judgement(status_code: StatusCode, attributes: Mapping[str, Any]) -> dict[str, str]:
    if status_code is not StatusCode.ERROR or attr.IMPACT not in attributes:
        return {}
    # Apps may set these attributes to anything: tag only what the judgement can be.
    return {
        IMPACT_TAG: _impact(attributes[attr.IMPACT], Impact.MEDIUM).value,
        CATEGORY_TAG: _category(attributes.get(attr.CATEGORY)).value,
    }


def _identity(values: list[dict[str, Any]], event_attrs: Mapping[str, Any]) -> tuple[Any, ...]:
    """Same exception re-recorded by enclosing spans: same type, message and innermost frame."""
    last = values[-1] if values else {}
    frames = (last.get("stacktrace") or {}).get("frames") or []
    origin = frames[-1] if frames else {}
    return (
        last.get("type"),
        last.get("value"),
        origin.get("abs_path") or origin.get("filename"),
        origin.get("lineno"),
        event_attrs.get(EVENT_ID),
    )


def _frame_count(values: list[dict[str, Any]]) -> int:
    return sum(len((v.get("stacktrace") or {}).get("frames") or []) for v in values)


def _escaped(span: ReadableSpan, event_attrs: Mapping[str, Any], flagged: bool) -> bool:
    """Did the exception leave ``span``? ``flagged`` when it was recorded as escaping it;
    else the SDK's status description tells (set from the escaping exception). FastAPI's own
    tracing sets an ERROR status without one, so the flag is what tells there.
    """
    if span.status.status_code is not StatusCode.ERROR:
        return False
    if flagged:
        return True
    short_type = str(event_attrs.get(attr.EXCEPTION_TYPE, "")).rsplit(".", 1)[-1]
    return (span.status.description or "").startswith(short_type)


def _flagged_escaped(event_attrs: Mapping[str, Any]) -> bool:
    """``exception.escaped`` is true: a bool, or the text the SDK writes (``"True"``)."""
    value = event_attrs.get(attr.EXCEPTION_ESCAPED)
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _optional_str(value: Any) -> Optional[str]:
    return None if value is None else str(value)


def _valid_event_id(value: Any) -> Optional[str]:
    text = str(value) if value is not None else ""
    return text if len(text) == 32 else None


def _event_id(trace_id: int, span_id: int) -> str:
    """Deterministic, so a redelivered transaction is recognised by Sentry as the same event."""
    return "%016x%016x" % (span_id, trace_id & 0xFFFFFFFFFFFFFFFF)  # noqa: UP031 (see _hex_trace)


# %-format, not an f-string: a third faster, and ids are formatted for every span.
def _hex_trace(trace_id: int) -> str:
    return "%032x" % trace_id  # noqa: UP031


def _hex_span(span_id: int) -> str:
    return "%016x" % span_id  # noqa: UP031


def _ns(value: Optional[int]) -> float:
    return (value or 0) / 1e9


def _start(span: ReadableSpan) -> int:
    return span.start_time or 0


def _end(span: ReadableSpan) -> int:
    return span.end_time or 0
