"""Living with ``opentelemetry-instrumentation-celery``: one span per publish and per run.

When the contrib instrumentor is active it owns the spans; ours then makes none and adds what
contrib leaves out (messaging conventions, retry count, retry events) to contrib's spans,
never overwriting an attribute contrib set. The check is made per event, so the order in which
``opentelemetry-instrument`` loads the two instrumentors does not matter.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, Optional

from opentelemetry import trace
from opentelemetry.trace import SpanKind

CONTRIB_MODULE = "opentelemetry.instrumentation.celery"
#: Contrib's tracer is named after its module.
CONTRIB_SCOPE = CONTRIB_MODULE


def contrib_active() -> bool:
    """True while contrib's ``CeleryInstrumentor`` is instrumented in this process."""
    module = sys.modules.get(CONTRIB_MODULE)
    instrumentor = getattr(module, "CeleryInstrumentor", None) if module is not None else None
    if instrumentor is None:
        return False  # never imported, so never instrumented
    try:
        return bool(instrumentor().is_instrumented_by_opentelemetry)  # a singleton
    except Exception:
        return False


def current_contrib_span(kind: SpanKind, name: Optional[str] = None) -> Optional[trace.Span]:
    """The current span when contrib made it with ``kind`` (and ``name``) and it still records."""
    span = trace.get_current_span()
    if not span.is_recording():
        return None
    scope = getattr(span, "instrumentation_scope", None)
    if getattr(scope, "name", None) != CONTRIB_SCOPE or getattr(span, "kind", None) is not kind:
        return None
    if name is not None and getattr(span, "name", None) != name:
        return None
    return span


def enrich(span: trace.Span, attributes: Mapping[str, Any]) -> None:
    """Add ``attributes`` the span does not have yet (contrib's values win)."""
    existing = getattr(span, "attributes", None) or {}
    missing = {key: value for key, value in attributes.items() if key not in existing}
    if missing:
        span.set_attributes(missing)
