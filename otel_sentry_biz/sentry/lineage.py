"""A segment's spans as a tree: from a span up to its segment's root, or down to its work.

Used to find the business context of an error or violation (the spans it happened in and
the spans it ran) and the user of a request, in events built from a segment.
"""

from __future__ import annotations

from typing import Optional

from opentelemetry.sdk.trace import ReadableSpan

from otel_sentry_biz.sentry.segments import Segment

#: A parent chain longer than this is a cycle (hostile ids), not a real nesting.
MAX_DEPTH = 1000


class Lineage:
    """A segment's spans by id, to walk from a span up to the segment's root or down."""

    __slots__ = ("_by_id", "_children", "_root")

    def __init__(self, segment: Segment) -> None:
        self._root = segment.root
        self._by_id = {span.context.span_id: span for span in segment.spans}
        self._children: Optional[dict[int, list[ReadableSpan]]] = None

    def context(self, span: ReadableSpan) -> list[ReadableSpan]:
        """The spans whose business context is ``span``'s: its :meth:`chain`, then the spans
        below it (the work it did; context entered inside a handler is on those). Not its
        siblings': an error in one invoice line is not about the line beside it."""
        return [*self.chain(span), *self.below(span)]

    def chain(self, span: ReadableSpan) -> list[ReadableSpan]:
        """``span``, its parent, ... up to the root (always last, even past a gap)."""
        chain: list[ReadableSpan] = []
        current: Optional[ReadableSpan] = span
        while current is not None and current is not self._root and len(chain) < MAX_DEPTH:
            chain.append(current)
            parent = current.parent
            current = None if parent is None else self._by_id.get(parent.span_id, self._root)
        chain.append(self._root)
        return chain

    def below(self, span: ReadableSpan) -> list[ReadableSpan]:
        """The spans under ``span``, nearest first."""
        if self._children is None:
            self._children = {}
            for each in self._by_id.values():
                if each.parent is not None:
                    self._children.setdefault(each.parent.span_id, []).append(each)
        found: list[ReadableSpan] = []
        level = [span]
        while level and len(found) < len(self._by_id):  # the bound: hostile ids may cycle
            level = [
                child for each in level for child in self._children.get(each.context.span_id, ())
            ]
            found.extend(level)
        return found
