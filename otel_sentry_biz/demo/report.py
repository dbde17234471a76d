"""A readable report of Sentry events: what an on-call engineer would see in Sentry."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

_IMPACT_ORDER = ("CRITICAL", "HIGH", "MEDIUM", "LOW")
#: Tags shown next to each line; the rest are summarised at the end.
_KEY_TAGS = ("work_request", "customer", "foreman")


def render(events: Sequence[Mapping[str, Any]], destination: str) -> str:
    """Render transactions, errors, violations by impact and tags, as plain text."""
    transactions = [e for e in events if e.get("type") == "transaction"]
    errors = [e for e in events if e.get("type") != "transaction" and e.get("exception")]
    violations = [e for e in events if "business_violation" in e.get("contexts", {})]
    lines = [f"otel-sentry-biz demo: what Sentry shows ({destination})", ""]
    lines += _transactions(transactions)
    lines += _errors(errors)
    lines += _violations(violations)
    lines += _tags(events)
    return "\n".join(lines)


def _key_tags(event: Mapping[str, Any]) -> str:
    tags = event.get("tags") or {}
    shown = [f"{key}={tags[key]}" for key in _KEY_TAGS if key in tags]
    return f"  [{' '.join(shown)}]" if shown else ""


def _transactions(transactions: Iterable[Mapping[str, Any]]) -> list[str]:
    rows = sorted(transactions, key=lambda e: e.get("start_timestamp", 0))
    lines = [f"Transactions ({len(rows)})"]
    for event in rows:
        trace = event["contexts"]["trace"]
        spans = event.get("spans", [])
        ops = Counter(span.get("op", "?") for span in spans)
        op_counts = ", ".join(f"{op} x{n}" for op, n in sorted(ops.items()))
        millis = (event["timestamp"] - event["start_timestamp"]) * 1000
        lines.append(
            f"  {event['transaction']:<24} op={trace.get('op')}  status={trace.get('status')}  "
            f"{millis:6.1f} ms  {len(spans)} spans ({op_counts})"
            f"{_key_tags(event)}"
        )
    return [*lines, ""]


def _errors(errors: Iterable[Mapping[str, Any]]) -> list[str]:
    rows = list(errors)
    lines = [f"Errors ({len(rows)})"]
    for event in rows:
        last = event["exception"]["values"][-1]
        tags = event.get("tags", {})
        handled = "handled" if last.get("mechanism", {}).get("handled", True) else "UNHANDLED"
        frames = (last.get("stacktrace") or {}).get("frames") or []
        where = f"{frames[-1].get('function')} line {frames[-1].get('lineno')}" if frames else "?"
        lines.append(
            f"  {event.get('level', 'error').upper():<7} {last.get('type')}: {last.get('value')}"
        )
        lines.append(
            f"          {handled}, business_impact={tags.get('business_impact')}, "
            f"error_category={tags.get('error_category')}, raised in {where}, "
            f"span {event['contexts']['trace'].get('op')} of transaction "
            f"{event.get('transaction')}{_key_tags(event)}"
        )
    return [*lines, ""]


def _violations(violations: Iterable[Mapping[str, Any]]) -> list[str]:
    by_impact: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for event in violations:
        by_impact[event.get("tags", {}).get("business_impact", "?")].append(event)
    total = sum(len(v) for v in by_impact.values())
    lines = [f"Business rule violations by impact ({total})"]
    for impact in (*_IMPACT_ORDER, *sorted(set(by_impact) - set(_IMPACT_ORDER))):
        if impact not in by_impact:
            continue
        lines.append(f"  {impact} ({len(by_impact[impact])})")
        for event in by_impact[impact]:
            lines.append(
                f"    {event['tags'].get('violation_rule')}: {event['logentry']['formatted']}"
            )
            lines.append(
                f"      level={event.get('level')} fingerprint={'/'.join(event['fingerprint'])}"
                f" category={event['tags'].get('error_category')}"
            )
    return [*lines, ""]


def _tags(events: Iterable[Mapping[str, Any]]) -> list[str]:
    values: dict[str, set[str]] = defaultdict(set)
    for event in events:
        for key, value in (event.get("tags") or {}).items():
            values[key].add(str(value))
    lines = ["Tags (searchable in Sentry)"]
    for key in sorted(values):
        shown = sorted(values[key])
        more = f" ... +{len(shown) - 5}" if len(shown) > 5 else ""
        lines.append(f"  {key}: {', '.join(shown[:5])}{more}")
    return lines
