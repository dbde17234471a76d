"""Business-aware sampling: keep every trace that went wrong, a share of those that did not.

A head sampler decides when a trace starts, before anyone knows it will fail. The usual
``ParentBased(TraceIdRatioBased(0.05))`` makes 95% of traces non-recording, so their errors
and business violations never reach Sentry at all. :class:`BusinessAwareSampler` makes the
same trace-id decision (consistent across services, an incoming parent decision respected)
but lets the traces it does not sample be *recorded* (``RECORD_ONLY``): OTel exporters behind a
``BatchSpanProcessor`` still see only sampled spans, while the Sentry bridge sees the rest too,
sends their errors and violations, and keeps their transaction when it contains one. The rest
are dropped when their segment ends, counted in Sentry's client reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import (
    Decision,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes


class BusinessAwareSampler(Sampler):
    """Parent-based trace-id-ratio sampling that records what it does not sample.

    >>> TracerProvider(sampler=BusinessAwareSampler(0.05))

    The parent's decision wins (local or remote); a root is sampled when its trace id falls
    in ``rate``, as ``TraceIdRatioBased`` decides, so every service agrees on a trace.
    """

    def __init__(self, rate: float) -> None:
        ratio = TraceIdRatioBased(rate)
        # TraceIdRatioBased's own rule, applied here: asking it would build a SamplingResult
        # per root span only to read its decision (about 2 us of the app's time per root).
        self._bound = ratio.bound
        self._limit = TraceIdRatioBased.TRACE_ID_LIMIT
        self.rate = rate

    def should_sample(
        self,
        parent_context: Optional[Context],
        trace_id: int,
        name: str,
        kind: Optional[SpanKind] = None,
        attributes: Attributes = None,
        links: Optional[Sequence[Link]] = None,
        trace_state: Optional[TraceState] = None,
    ) -> SamplingResult:
        parent = get_current_span(parent_context).get_span_context()
        if parent is not None and parent.is_valid:
            sampled = parent.trace_flags.sampled
            state = parent.trace_state
        else:
            sampled = trace_id & self._limit < self._bound
            state = None
        decision = Decision.RECORD_AND_SAMPLE if sampled else Decision.RECORD_ONLY
        return SamplingResult(decision, attributes, state)

    def get_description(self) -> str:
        return f"BusinessAwareSampler{{{self.rate}}}"
