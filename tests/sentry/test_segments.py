from __future__ import annotations

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, TraceFlags

from otel_sentry_biz.sentry.segments import SegmentAssembler

TRACE = 0xABC


def _span(span_id: int, parent: int | None, *, remote: bool = False, trace_id: int = TRACE):
    context = SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(1))
    parent_context = (
        SpanContext(trace_id, parent, is_remote=remote, trace_flags=TraceFlags(1))
        if parent is not None
        else None
    )
    return ReadableSpan(
        name=f"s{span_id}",
        context=context,
        parent=parent_context,
        start_time=span_id,
        end_time=span_id + 10,
    )


def _ids(segment):
    return sorted(s.context.span_id for s in segment.spans)


def test_root_closes_its_segment_with_all_descendants():
    assembler = SegmentAssembler()
    assert assembler.add([_span(3, 2), _span(4, 2), _span(2, 1)]) == []
    (segment,) = assembler.add([_span(1, None)])
    assert segment.root.context.span_id == 1
    assert _ids(segment) == [2, 3, 4]
    assert not segment.detached
    assert assembler.pending_spans == 0


def test_remote_parent_makes_a_local_root():
    assembler = SegmentAssembler()
    assembler.add([_span(2, 1)])
    (segment,) = assembler.add([_span(1, 99, remote=True)])
    assert segment.root.parent.span_id == 99
    assert _ids(segment) == [2]


def test_child_ending_after_its_root_is_sent_detached_not_dropped():
    assembler = SegmentAssembler()
    assert len(assembler.add([_span(2, 1), _span(1, None)])) == 1
    (late,) = assembler.add([_span(3, 2)])
    assert late.detached
    assert late.root.context.span_id == 3
    assert late.root.parent.span_id == 2


def test_late_child_brings_its_own_waiting_descendants():
    assembler = SegmentAssembler()
    # 3 ends after root 1; 4 (child of 3) ended before the root and waited for 3.
    assembler.add([_span(4, 3), _span(2, 1), _span(1, None)])
    (late,) = assembler.add([_span(3, 1)])
    assert late.root.context.span_id == 3
    assert _ids(late) == [4]


def test_traces_do_not_mix():
    assembler = SegmentAssembler()
    assembler.add([_span(2, 1, trace_id=1), _span(2, 1, trace_id=2)])
    (segment,) = assembler.add([_span(1, None, trace_id=1)])
    assert [s.context.trace_id for s in segment.spans] == [1]
    assert assembler.pending_spans == 1


def test_spans_waiting_too_long_are_released_as_detached_segments():
    now = [0.0]
    assembler = SegmentAssembler(max_wait_seconds=5, clock=lambda: now[0])
    assembler.add([_span(3, 2), _span(2, 1)])
    now[0] = 10.0
    released = assembler.add([])
    assert [s.root.context.span_id for s in released] == [2]
    assert _ids(released[0]) == [3]
    assert assembler.pending_spans == 0


def test_budget_releases_oldest_groups_instead_of_dropping():
    assembler = SegmentAssembler(max_pending_spans=2)
    released = assembler.add(
        [_span(10, 1, trace_id=1), _span(20, 2, trace_id=2), _span(30, 3, trace_id=3)]
    )
    assert [s.root.context.span_id for s in released] == [10]
    assert assembler.pending_spans == 2


def test_drain_releases_everything():
    assembler = SegmentAssembler()
    assembler.add([_span(3, 2), _span(5, 4)])
    released = assembler.drain()
    assert sorted(s.root.context.span_id for s in released) == [3, 5]
    assert assembler.pending_spans == 0


def test_closed_spans_are_remembered_up_to_closed_memory_the_oldest_forgotten():
    assembler = SegmentAssembler(closed_memory=3)
    assembler.add([_span(2, 1), _span(3, 1), _span(1, None)])  # 3 spans: all remembered
    assembler.add([_span(5, 4), _span(4, None)])  # 2 more: 1 and 2 forgotten, 3 kept
    (late,) = assembler.add([_span(6, 3)])
    assert late.detached  # its parent 3 is remembered as closed
    assert assembler.add([_span(7, 2)]) == []  # 2 was forgotten: 7 waits for it
    assert assembler.pending_spans == 1


def test_has_events_tells_whether_any_span_of_the_segment_recorded_one():
    from opentelemetry.sdk.trace import Event

    assembler = SegmentAssembler()
    (quiet,) = assembler.add([_span(2, 1), _span(1, None)])
    noisy_child = ReadableSpan(
        name="noisy",
        context=SpanContext(TRACE, 12, is_remote=False, trace_flags=TraceFlags(1)),
        parent=SpanContext(TRACE, 11, is_remote=False, trace_flags=TraceFlags(1)),
        events=[Event("log", {"log.message": "hi"})],
    )
    (noisy,) = assembler.add([noisy_child, _span(11, None)])
    assert not quiet.has_events()
    assert noisy.has_events()
