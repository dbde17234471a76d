"""Producer side: a PRODUCER span around ``Celery.send_task``, headers written at publish.

Every way of sending a task (``delay``, ``apply_async``, signatures, canvas, ``retry``,
``send_task``) goes through ``Celery.send_task``. Wrapping it rather than pairing the
``before_task_publish``/``after_task_publish`` signals means the span ends and the context is
restored even when publishing fails (broker down): that failure is recorded on the span, where
signals would never see the end of the publish. The ``before_task_publish`` receiver writes the
trace context and business keys into the message headers and names the destination.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Callable, Optional

from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import SpanKind

from otel_sentry_biz_instrumentors.celery import semconv as sc
from otel_sentry_biz_instrumentors.celery.carrier import inject_business, inject_headers
from otel_sentry_biz_instrumentors.celery.coexistence import (
    contrib_active,
    current_contrib_span,
    enrich,
)

_logger = logging.getLogger("otel_sentry_biz.instrumentors.celery")


@dataclass(frozen=True)
class _Publish:
    app: Any
    task_name: str
    span: Optional[trace.Span]  # None when contrib owns the span


class Publisher:
    """Traces task publishing. Build one per ``instrument()``; its methods are the hooks.

    Threading: hooks run on the thread that sends the task; state is per call (a ContextVar).
    """

    def __init__(self, tracer: trace.Tracer, conventions: sc.Conventions) -> None:
        self._tracer = tracer
        self._conventions = conventions
        self._current: ContextVar[Optional[_Publish]] = ContextVar(
            "otel_sentry_biz.celery.publish", default=None
        )

    def send_task(
        self, wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict
    ) -> Any:
        """wrapt wrapper of ``Celery.send_task(name, args, kwargs, ...)``."""
        if not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        name = str(args[0] if args else kwargs.get("name", "unknown"))
        if contrib_active():
            token = self._current.set(_Publish(instance, name, None))
            try:
                return wrapped(*args, **kwargs)
            finally:
                self._current.reset(token)
        with self._tracer.start_as_current_span(
            f"{sc.APPLY_ASYNC} {name}",
            kind=SpanKind.PRODUCER,
            attributes=self._task_attributes(instance, name),
        ) as span:  # records an escaping exception once and sets the status
            token = self._current.set(_Publish(instance, name, span))
            try:
                return wrapped(*args, **kwargs)
            finally:
                self._current.reset(token)

    def before_publish(
        self,
        sender: Any = None,
        headers: Optional[dict] = None,
        body: Any = None,
        routing_key: Optional[str] = None,
        **_: Any,
    ) -> None:
        """``before_task_publish`` receiver: write headers, describe the message on the span."""
        if headers is None or not is_instrumentation_enabled():
            return
        try:
            publish = self._current.get()
            if publish is not None and publish.span is not None:
                inject_headers(headers)
                if publish.span.is_recording():
                    publish.span.set_attributes(
                        self._message_attributes(headers, body, routing_key)
                    )
            elif contrib_active():
                # Contrib writes the trace context (its span may already have ended and left
                # the current context): only add the business keys it may not carry.
                inject_business(headers)
                self._enrich_contrib(publish, sender, headers, body, routing_key)
            else:
                inject_headers(headers)  # a publish that did not go through send_task
        except Exception:
            _logger.exception("could not prepare the headers of task %r", sender)

    def after_publish(
        self,
        sender: Any = None,
        headers: Optional[dict] = None,
        body: Any = None,
        routing_key: Optional[str] = None,
        **_: Any,
    ) -> None:
        """``after_task_publish`` receiver: only for contrib's span, if it is still current."""
        if headers is None or not is_instrumentation_enabled():
            return
        publish = self._current.get()
        if publish is None or publish.span is None:
            try:
                self._enrich_contrib(publish, sender, headers, body, routing_key)
            except Exception:
                _logger.exception("could not enrich the publish span of task %r", sender)

    # -- attributes -------------------------------------------------------------------------

    def _task_attributes(self, app: Any, name: str) -> dict[str, Any]:
        attributes: dict[str, Any] = {sc.CELERY_ACTION: sc.APPLY_ASYNC, sc.CELERY_TASK_NAME: name}
        messaging = self._conventions.messaging
        messaging(attributes, sc.MESSAGING_SYSTEM, sc.broker_system(app, write=True))
        messaging(attributes, sc.MESSAGING_OPERATION_TYPE, sc.SEND)
        messaging(attributes, sc.MESSAGING_OPERATION_NAME, sc.APPLY_ASYNC)
        return attributes

    def _message_attributes(
        self, headers: Mapping[str, Any], body: Any, routing_key: Optional[str]
    ) -> dict[str, Any]:
        attributes: dict[str, Any] = {sc.CELERY_RETRIES: sc.as_count(headers.get("retries"))}
        messaging = self._conventions.messaging
        messaging(attributes, sc.MESSAGING_DESTINATION_NAME, routing_key)
        messaging(attributes, sc.MESSAGING_MESSAGE_ID, _task_id(headers, body))
        for key, name in (("eta", sc.CELERY_ETA), ("expires", sc.CELERY_EXPIRES)):
            if headers.get(key):
                attributes[name] = str(headers[key])
        return attributes

    def _enrich_contrib(
        self,
        publish: Optional[_Publish],
        sender: Any,
        headers: Mapping[str, Any],
        body: Any,
        routing_key: Optional[str],
    ) -> None:
        span = current_contrib_span(SpanKind.PRODUCER)
        if span is None:
            return
        task_id = _task_id(headers, body)
        if (getattr(span, "attributes", None) or {}).get(sc.MESSAGING_MESSAGE_ID) != task_id:
            return  # not the span of this message
        name = publish.task_name if publish is not None else str(sender)
        app = publish.app if publish is not None else None
        enrich(
            span,
            {
                **self._task_attributes(app, name),
                **self._message_attributes(headers, body, routing_key),
            },
        )


def _task_id(headers: Mapping[str, Any], body: Any) -> Optional[str]:
    task_id = headers.get("id")  # message protocol 2; protocol 1 keeps it in the body
    if task_id is None and isinstance(body, Mapping):
        task_id = body.get("id")
    return None if task_id is None else str(task_id)
