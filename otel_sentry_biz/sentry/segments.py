"""Group finished spans into segments: a local root and the in-process spans below it.

Sentry ingests spans inside transactions; OTel ends spans one by one, children first. A
segment closes when its local root (no parent, or a remote parent) ends; its descendants,
which usually ended earlier, wait here keyed by their parent. Nothing is dropped:

* a child that ends after its root is sent as a *late* segment of its own (same trace, its
  ``parent_span_id`` kept), so Sentry's trace view still connects it;
* children whose root does not end within ``max_wait_seconds`` (a long-running root) or
  that exceed ``max_pending_spans`` are released as orphan segments the same way.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Callable, Optional

from opentelemetry.sdk.trace import ReadableSpan

from otel_sentry_biz.spans import events_of

_Key = tuple[int, int]  # (trace_id, span_id)


@dataclass
class Segment:
    """A local root and its descendants, ready to become one Sentry transaction."""

    root: ReadableSpan
    spans: list[ReadableSpan] = field(default_factory=list)
    #: True when ``root`` is not a local root but a span released without its segment
    #: (it ended after its root, or its root took too long).
    detached: bool = False

    #: has_events(), once known (asked for errors, violations, messages and measurements).
    _has_events: Optional[bool] = field(default=None, init=False, repr=False, compare=False)

    def has_events(self) -> bool:
        """Whether any span of the segment recorded an event (most segments have none).

        Asked once the segment is complete; the answer is kept.
        """
        if self._has_events is None:
            self._has_events = any(events_of(span) for span in (self.root, *self.spans))
        return self._has_events


class SegmentAssembler:
    """Collects spans until their segment closes. Not thread-safe: one exporter thread feeds it.

    >>> assembler = SegmentAssembler()
    >>> segments = assembler.add(spans)  # the segments whose roots were among ``spans``
    """

    def __init__(
        self,
        *,
        max_pending_spans: int = 100_000,
        max_wait_seconds: float = 60.0,
        closed_memory: int = 16_384,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_pending = max_pending_spans
        self._max_wait = max_wait_seconds
        self._closed_memory = closed_memory
        self._clock = clock
        # Children waiting for their parent, keyed by the parent; insertion order = age.
        self._waiting: dict[_Key, list[ReadableSpan]] = {}
        self._first_seen: dict[_Key, float] = {}
        self._groups_of_trace: dict[int, set[_Key]] = {}
        self._pending = 0
        # Spans of recently closed segments, so a late child knows its root already left.
        self._closed: OrderedDict[_Key, None] = OrderedDict()

    @property
    def pending_spans(self) -> int:
        """Spans held while waiting for their segment's root."""
        return self._pending

    def add(self, spans: Iterable[ReadableSpan]) -> list[Segment]:
        """Take finished spans; return the segments that closed (roots, late and orphans)."""
        closed: list[Segment] = []
        now = self._clock()
        for span in spans:
            context = span.context
            if context is None:
                continue
            parent = span.parent
            if parent is None or parent.is_remote:
                closed.append(self._close(span, detached=False))
                continue
            key = (context.trace_id, parent.span_id)
            if key in self._closed:
                closed.append(self._close(span, detached=True))
            else:
                waiting = self._waiting.get(key)
                if waiting is None:
                    self._waiting[key] = [span]
                    self._first_seen[key] = now
                    self._groups_of_trace.setdefault(context.trace_id, set()).add(key)
                else:
                    waiting.append(span)
                self._pending += 1
        closed.extend(self._release_stale(now))
        return closed

    def drain(self) -> list[Segment]:
        """Release everything still waiting, as detached segments (used at shutdown)."""
        released: list[Segment] = []
        while self._waiting:
            released.extend(self._release_oldest())
        return released

    def _close(self, root: ReadableSpan, *, detached: bool) -> Segment:
        trace_id = root.context.trace_id
        segment = Segment(root=root, detached=detached)
        # Every span of the segment is remembered as closed; beyond closed_memory the oldest
        # are forgotten, trimmed once per segment rather than once per span.
        remembered = self._closed
        remembered[(trace_id, root.context.span_id)] = None
        stack = [root.context.span_id]
        while stack:
            key = (trace_id, stack.pop())
            children = self._waiting.pop(key, None)
            if children is None:
                continue
            self._forget_group(key)
            self._pending -= len(children)
            segment.spans.extend(children)
            for child in children:
                span_id = child.context.span_id
                remembered[(trace_id, span_id)] = None
                stack.append(span_id)
        while len(remembered) > self._closed_memory:
            remembered.popitem(last=False)
        return segment

    def _release_stale(self, now: float) -> list[Segment]:
        released: list[Segment] = []
        while self._waiting and (
            self._pending > self._max_pending
            or now - next(iter(self._first_seen.values())) > self._max_wait
        ):
            released.extend(self._release_oldest())
        return released

    def _release_oldest(self) -> list[Segment]:
        """Release every span waiting in the trace of the oldest group, topmost first.

        The root of that trace did not end in time (or memory is short): what we have of the
        trace goes out now, each topmost waiting span carrying its waiting descendants.
        """
        trace_id = next(iter(self._waiting))[0]
        keys = [key for key in self._groups_of_trace.get(trace_id, ()) if key in self._waiting]
        waiting_ids = {
            (trace_id, span.context.span_id) for key in keys for span in self._waiting[key]
        }
        released: list[Segment] = []
        for key in keys:
            if key in waiting_ids or key not in self._waiting:
                continue  # its parent is waiting too: it leaves with that parent
            siblings = self._waiting.pop(key)
            self._forget_group(key)
            self._pending -= len(siblings)
            released.extend(self._close(span, detached=True) for span in siblings)
        return released

    def _forget_group(self, key: _Key) -> None:
        del self._first_seen[key]
        groups = self._groups_of_trace.get(key[0])
        if groups is not None:
            groups.discard(key)
            if not groups:
                del self._groups_of_trace[key[0]]

    def oldest_wait(self) -> Optional[float]:
        """Seconds the oldest waiting span has waited, or None when nothing waits."""
        if not self._first_seen:
            return None
        return self._clock() - next(iter(self._first_seen.values()))
