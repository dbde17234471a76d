"""``health()`` and ready-made ``/health`` endpoints: is the Sentry bridge delivering?

>>> biz.health()
{"status": "healthy", "sentry": {"enabled": True, "dsn_configured": True, ...}}

The shape follows the booking seed's ``/health`` response, with what on-call needs when
events stop showing up: queue depth, drops, the last delivery and the last error.
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from collections.abc import Iterable
from typing import Any, Callable

#: A bridge with envelopes queued and no delivery for this long is "degraded".
STUCK_AFTER_SECONDS = 300.0

_exporters: weakref.WeakSet[Any] = weakref.WeakSet()
_lock = threading.Lock()


def register(exporter: Any) -> None:
    """Called by each SentrySpanExporter: health() reports on every live one."""
    with _lock:
        _exporters.add(exporter)


def health(now: Callable[[], float] = time.time) -> dict[str, Any]:
    """The bridge's state: healthy, degraded (queue stuck) or disabled (no DSN / no exporter)."""
    with _lock:
        live = [e for e in _exporters if not getattr(e, "is_shut_down", False)]
    if not live:
        return {"status": "disabled", "sentry": {"enabled": False, "dsn_configured": False}}
    states = [exporter.health_state() for exporter in live]
    first = states[0]
    sentry = {
        "enabled": True,
        "dsn_configured": True,
        "environment": first["environment"],
        "release": first["release"],
        "sample_rate": first["sample_rate"],
        "traces_sample_rate": first["traces_sample_rate"],
        "queue_depth": sum(s["queued"] for s in states),
        "dropped": _sum_counts(s["dropped"] for s in states),
        "last_delivery_at": _latest(s["last_success_at"] for s in states),
        "last_error": next((s["last_error"] for s in states if s["last_error"]), None),
    }
    stuck = sentry["queue_depth"] > 0 and (
        sentry["last_delivery_at"] is None
        or now() - sentry["last_delivery_at"] > STUCK_AFTER_SECONDS
    )
    return {"status": "degraded" if stuck else "healthy", "sentry": sentry}


def wsgi_health_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """A WSGI app answering ``health()`` as JSON: 200 unless degraded (503).

    Mount it at ``/health`` (e.g. with Werkzeug's DispatcherMiddleware, or a Django/Flask
    view calling :func:`health`).
    """
    body, status = _answer()
    start_response(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


async def asgi_health_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app answering ``health()`` as JSON: 200 unless degraded (503).

    ``app.mount("/health", asgi_health_app)`` in FastAPI/Starlette.
    """
    if scope["type"] != "http":
        return
    body, status = _answer()
    await send(
        {
            "type": "http.response.start",
            "status": int(status.split()[0]),
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _answer() -> tuple[bytes, str]:
    state = health()
    status = "503 Service Unavailable" if state["status"] == "degraded" else "200 OK"
    return json.dumps(state).encode(), status


def _sum_counts(maps: Iterable[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for counts in maps:
        for key, value in counts.items():
            total[key] = total.get(key, 0) + value
    return total


def _latest(values: Iterable[Any]) -> Any:
    present = [v for v in values if v is not None]
    return max(present) if present else None
