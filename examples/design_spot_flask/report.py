"""The report printed after a run: the session, the funnel, the OTel metrics, what Sentry got."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Optional

from opentelemetry.sdk.metrics.export import Histogram, MetricsData, Sum
from visitors import Visitor

from otel_sentry_biz.journeys import FunnelSnapshot

#: The meter of journeys, funnels and feature use.
METER = "otel_sentry_biz"
#: Transaction tags worth a column: where each request stands in the journey and funnel.
JOURNEY_TAGS = (
    "journey",
    "journey.step",
    "journey.outcome",
    "journey.abandon_reason",
    "funnel.step",
)


def session(visitors: Sequence[Visitor]) -> list[str]:
    """Each visitor's requests and the status codes they got."""
    total = sum(len(v.answers) for v in visitors)
    lines = [f"Scripted session: {total} requests"]
    for visitor in visitors:
        answers = Counter(f"{method} {path} {status}" for method, path, status in visitor.answers)
        shown = ", ".join(f"{a} x{n}" if n > 1 else a for a, n in answers.items())
        lines.append(f"  {visitor.name:<8} {shown}")
    return lines


def funnel(snapshot: FunnelSnapshot) -> list[str]:
    """The funnel's current cohort, step by step."""
    lines = [
        f"Funnel {snapshot.funnel}: {snapshot.entered} entered, {snapshot.converted} converted "
        f"({snapshot.conversion:g}%)"
    ]
    for step in snapshot.steps:
        lines.append(
            f"  {step.step:<11} {step.reached:2d}  {step.conversion:6.2f}% of entries, "
            f"{step.from_previous:6.2f}% of the previous step"
        )
    return lines


def metric_totals(data: Optional[MetricsData]) -> list[str]:
    """Every data point of the package's meter: counters' values, histograms' counts."""
    lines = [f"OTel metrics (meter {METER})"]
    for metric in _metrics(data):
        for point in metric.data.data_points:
            labels = ", ".join(f"{k}={v}" for k, v in sorted(point.attributes.items()))
            if isinstance(metric.data, Sum):
                value = f"{point.value:g}"
            elif isinstance(metric.data, Histogram):
                value = f"count {point.count}, sum {point.sum:.3f} {metric.unit}"
            else:
                continue
            lines.append(f"  {metric.name}{{{labels}}} {value}")
    return lines


def sentry(events: Sequence[Mapping[str, Any]]) -> list[str]:
    """Transactions that moved a journey or funnel, then issues with their fingerprints."""
    transactions = [e for e in events if e.get("type") == "transaction"]
    lines = [f"Sentry received {len(transactions)} transactions; journey and funnel marks:"]
    for event in sorted(transactions, key=lambda e: e["start_timestamp"]):
        tags = event.get("tags") or {}
        marks = [f"{key}={tags[key]}" for key in JOURNEY_TAGS if key in tags]
        measured = [
            f"{name}={m['value']:g}{_unit(m['unit'])}"
            for name, m in sorted((event.get("measurements") or {}).items())
        ]
        if marks or measured:
            user = tags.get("user_id", "-")
            lines.append(
                f"  {event['transaction']:<34} user {user:<2} {' '.join(marks + measured)}"
            )
    lines.append("Issues:")
    for event in events:
        if event.get("type") == "transaction":
            continue
        tags = event.get("tags") or {}
        if "business_violation" in event.get("contexts", {}):
            what = f"violation {tags.get('violation_rule')}: {event['logentry']['formatted']}"
        else:
            last = event["exception"]["values"][-1]
            what = f"error {last['type']}: {last['value']}"
        lines.append(f"  {event.get('level', 'error').upper():<7} {what}")
        lines.append(f"          fingerprint {' / '.join(event.get('fingerprint') or ['-'])}")
    return lines


def _metrics(data: Optional[MetricsData]) -> Iterable[Any]:
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            if scope.scope.name == METER:
                yield from scope.metrics


def _unit(unit: str) -> str:
    return {"millisecond": " ms", "percent": "%"}.get(unit, "")
