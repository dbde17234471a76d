"""Slow queries and N+1 patterns, judged per statement and reported as violations.

A ``slow_query`` violation is one statement that ran ``slow_query_ms`` or longer. An
``n_plus_one`` violation is the same statement *shape* (values as placeholders, lists
collapsed) run ``n_plus_one`` times inside one trace of this process: the loop that loads one
row per parent. It is reported once, on the statement that reaches the threshold. Both are
``performance`` violations grouped by shape, so each statement is one Sentry issue however
often it recurs.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from otel_sentry_biz.impact import Category
from otel_sentry_biz.rules import Violation

from .settings import SQLSettings
from .statement import Query

SLOW_QUERY = "slow_query"
N_PLUS_ONE = "n_plus_one"
#: How much of a statement a violation message and its data carry.
_MESSAGE_CHARS = 200
_DATA_CHARS = 1000


class RepeatCounter:
    """Executions of each statement shape per trace, for the most recently active traces.

    Bounded: beyond ``max_traces`` the least recently active trace is forgotten, and a trace
    stops counting new shapes beyond ``max_shapes``. Safe to call from any thread.
    """

    def __init__(self, max_traces: int = 2048, max_shapes: int = 256) -> None:
        self._traces: OrderedDict[int, dict[str, int]] = OrderedDict()
        self._max_traces = max_traces
        self._max_shapes = max_shapes
        self._lock = threading.Lock()

    def add(self, trace_id: int, shape: str) -> int:
        """Count one execution; return how many this trace has seen (0: not counted)."""
        with self._lock:
            shapes = self._traces.get(trace_id)
            if shapes is None:
                shapes = self._traces[trace_id] = {}
                if len(self._traces) > self._max_traces:
                    self._traces.popitem(last=False)
            else:
                self._traces.move_to_end(trace_id)
            count = shapes.get(shape)
            if count is None and len(shapes) >= self._max_shapes:
                return 0
            shapes[shape] = count = (count or 0) + 1
            return count


class PerformanceJudge:
    """Turns one finished statement into the performance violations it commits."""

    def __init__(self, settings: SQLSettings) -> None:
        self._settings = settings
        self._repeats = RepeatCounter()

    def judge(self, trace_id: int, query: Query, elapsed_ms: float, first: bool) -> list[Violation]:
        """``first``: the statement's first cursor execution (batches count once for N+1)."""
        settings = self._settings
        found: list[Violation] = []
        statement = query.text[:_MESSAGE_CHARS]
        if settings.slow_query_ms and elapsed_ms >= settings.slow_query_ms:
            found.append(
                Violation(
                    rule=SLOW_QUERY,
                    impact=settings.impact,
                    category=Category.PERFORMANCE,
                    message=(
                        f"Slow query: {elapsed_ms:.0f} ms "
                        f"(threshold {settings.slow_query_ms:g} ms): {statement}"
                    ),
                    group=query.group,
                    data={
                        "query": query.text[:_DATA_CHARS],
                        "duration_ms": round(elapsed_ms, 3),
                        "threshold_ms": settings.slow_query_ms,
                    },
                )
            )
        if settings.n_plus_one and first and trace_id:
            count = self._repeats.add(trace_id, query.shape)
            if count == settings.n_plus_one:
                found.append(
                    Violation(
                        rule=N_PLUS_ONE,
                        impact=settings.impact,
                        category=Category.PERFORMANCE,
                        message=f"N+1 queries: the same statement ran {count} times in one "
                        f"trace: {statement}",
                        group=query.group,
                        data={"query": query.text[:_DATA_CHARS], "executions": count},
                    )
                )
        return found
