"""Consumer side: a CONSUMER span per task run, in the sender's trace and business context.

``task_prerun`` extracts the context from the message headers, starts the span and attaches
both, so spans made inside the task are its children and carry the propagated ``biz.*`` keys;
``task_postrun`` ends and detaches. Outcomes come from Celery's signals: a failure records the
exception once (the BusinessSpanProcessor classifies it), a retry, rejection, ignore or
revocation is a span event. When the worker turns a message away without running it (revoked,
expired, unknown task, malformed message) a short span of its own says so, in the same trace.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Optional

from celery.exceptions import NotRegistered, Reject
from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_sentry_biz import attributes as biz_attr
from otel_sentry_biz.impact import Category, Impact
from otel_sentry_biz_instrumentors.celery import semconv as sc
from otel_sentry_biz_instrumentors.celery.carrier import extract_context
from otel_sentry_biz_instrumentors.celery.coexistence import (
    contrib_active,
    current_contrib_span,
    enrich,
)
from otel_sentry_biz_instrumentors.celery.outcomes import (
    is_expected,
    mark_outcome,
    record_failure,
    unwrap_exception,
)

_logger = logging.getLogger("otel_sentry_biz.instrumentors.celery")

#: A message for a task no worker knows, or of a type it cannot read, is lost work from a
#: producer and worker that disagree: an integration problem the exception type cannot tell.
TURNED_AWAY_JUDGEMENT = {
    biz_attr.IMPACT: Impact.HIGH.value,
    biz_attr.CATEGORY: Category.INTEGRATION.value,
}


@dataclass
class _Run:
    span: trace.Span
    token: object


class WorkerTracer:
    """Traces task execution in a worker (or an eager ``apply``). Its methods are the receivers.

    Threading: prerun, the outcome signals and postrun of one run are sent on the thread (or
    greenlet) that runs the task, so the attach/detach pair stays on one context. Runs are
    kept per task id as a stack, so a run nested under its own id (``apply()`` from
    inside the task) cannot hide the outer one.
    """

    def __init__(self, tracer: trace.Tracer, conventions: sc.Conventions) -> None:
        self._tracer = tracer
        self._conventions = conventions
        self._runs: dict[str, list[_Run]] = {}

    # -- task_prerun / task_postrun ----------------------------------------------------------

    def on_prerun(self, task_id: Optional[str] = None, task: Any = None, **_: Any) -> None:
        if task is None or task_id is None or not is_instrumentation_enabled():
            return
        try:
            request = task.request
            if contrib_active():
                self._enrich_contrib(task, request)  # if contrib's prerun came first
                return
            parent = extract_context(request)
            if parent is None:  # not sent by a traced producer (or run eagerly): stay local
                parent = context_api.get_current()
            span = self._tracer.start_span(
                f"{sc.RUN} {task.name}",
                context=parent,
                kind=SpanKind.CONSUMER,
                attributes=self._run_attributes(task, request),
            )
            token = context_api.attach(trace.set_span_in_context(span, parent))
            self._runs.setdefault(task_id, []).append(_Run(span, token))
        except Exception:
            _logger.exception("could not start the span of task %s", task_id)

    def on_postrun(
        self,
        task_id: Optional[str] = None,
        task: Any = None,
        state: Optional[str] = None,
        retval: Any = None,
        **_: Any,
    ) -> None:
        if task_id is None:
            return
        run = self._pop(task_id)
        if run is None:
            if task is not None and contrib_active():
                self._enrich_contrib(task, task.request)  # if our postrun comes first
            return
        try:
            if run.span.is_recording():
                if state:
                    run.span.set_attribute(sc.CELERY_STATE, state)
                mark_outcome(run.span, state, retval)
        except Exception:
            _logger.exception("could not describe the outcome of task %s", task_id)
        finally:
            run.span.end()
            context_api.detach(run.token)

    # -- outcomes ----------------------------------------------------------------------------

    def on_failure(
        self,
        sender: Any = None,
        task_id: Optional[str] = None,
        exception: Optional[BaseException] = None,
        **_: Any,
    ) -> None:
        if task_id is None or exception is None:
            return
        try:
            exc = unwrap_exception(exception)
            if isinstance(exc, Reject) or is_expected(sender, exc):
                return  # task_postrun tells a rejection; an expected error is no failure
            run = self._live(task_id)
            if run is not None:
                record_failure(run.span, exc)
                return
            if self._contrib_run(sender) is not None or not is_instrumentation_enabled():
                return  # contrib records the failure of its own run
            # The run happened elsewhere (a pool child killed by a hard time limit or lost):
            # this signal, in the worker's main process, is the only record of the failure.
            span = self._turned_away(sc.RUN, sc.PROCESS, sender, _request_of(sender, task_id))
            record_failure(span, exc)
            span.end()
        except Exception:
            _logger.exception("could not record the failure of task %s", task_id)

    def on_retry(self, sender: Any = None, request: Any = None, reason: Any = None, **_: Any):
        task_id = getattr(request, "id", None)
        if task_id is None:
            return
        try:
            event = {
                sc.CELERY_RETRY_REASON: str(reason) if reason is not None else "",
                sc.CELERY_RETRIES: sc.as_count(getattr(request, "retries", 0)),
            }
            run = self._live(task_id)
            span = run.span if run is not None else self._contrib_run(sender)
            if span is not None:
                span.set_attribute(sc.CELERY_RETRY_REASON, event[sc.CELERY_RETRY_REASON])
                span.add_event(sc.RETRY_EVENT, event)
            elif is_instrumentation_enabled():  # cancelled, or retried after a lost worker
                span = self._turned_away(sc.RUN, sc.PROCESS, sender, request)
                span.add_event(sc.RETRY_EVENT, event)
                span.end()
        except Exception:
            _logger.exception("could not record the retry of task %s", task_id)

    def on_revoked(
        self,
        sender: Any = None,
        request: Any = None,
        terminated: Any = None,
        signum: Any = None,
        expired: Any = None,
        **_: Any,
    ) -> None:
        task_id = getattr(request, "id", None)
        if task_id is None or not is_instrumentation_enabled():
            return
        try:
            reason = "expired" if expired else "terminated" if terminated else "revoked"
            event: dict[str, Any] = {sc.CELERY_REVOKED_REASON: reason}
            if terminated and signum is not None:
                event[sc.CELERY_TERMINATED_SIGNAL] = sc.as_count(signum)
            run = self._live(task_id)
            if run is not None:  # terminated while running here (threads pool)
                run.span.add_event(sc.REVOKED_EVENT, event)
                return
            span = self._turned_away(sc.REVOKE, sc.SETTLE, sender, request)
            span.add_event(sc.REVOKED_EVENT, event)
            if expired:  # work that was wanted and never done: the queue was too slow
                span.set_status(Status(StatusCode.ERROR, "task expired before it could run"))
            span.end()
        except Exception:
            _logger.exception("could not record the revocation of task %s", task_id)

    def on_unknown(
        self,
        sender: Any = None,
        message: Any = None,
        exc: Optional[BaseException] = None,
        name: Optional[str] = None,
        id: Optional[str] = None,
        **_: Any,
    ) -> None:
        """``task_unknown``: a message for a task this worker does not know."""
        error = NotRegistered(name)  # what Celery stores as the task's result
        error.__cause__ = exc
        self._reject_message(sender, message, error, f"task {name!r} is not registered", name)

    def on_rejected(
        self, sender: Any = None, message: Any = None, exc: Optional[BaseException] = None, **_
    ) -> None:
        """``task_rejected``: a message the worker cannot read (unknown type, invalid)."""
        self._reject_message(sender, message, exc, "message rejected by the worker", None)

    # -- helpers -----------------------------------------------------------------------------

    def _reject_message(
        self,
        consumer: Any,
        message: Any,
        exc: Optional[BaseException],
        why: str,
        name: Optional[str],
    ) -> None:
        if message is None or not is_instrumentation_enabled():
            return
        try:
            headers = getattr(message, "headers", None) or {}
            about = SimpleNamespace(
                id=headers.get("id"),
                task=name or headers.get("task"),
                retries=headers.get("retries"),
                delivery_info=getattr(message, "delivery_info", None),
            )
            span = self._turned_away(
                sc.REJECT,
                sc.SETTLE,
                None,
                about,
                carrier=headers,
                app=getattr(consumer, "app", None),
            )
            if exc is None or isinstance(exc, NotRegistered):
                span.set_attributes(TURNED_AWAY_JUDGEMENT)  # else the error's type tells
            span.add_event(sc.REJECTED_EVENT, {sc.CELERY_REJECTED_REASON: why})
            if exc is not None:
                record_failure(span, exc)
            else:
                span.set_status(Status(StatusCode.ERROR, why))
            span.end()
        except Exception:
            _logger.exception("could not record a rejected message")

    def _turned_away(
        self,
        action: str,
        operation: str,
        task: Any,
        request: Any,
        *,
        carrier: Any = None,
        app: Any = None,
    ) -> trace.Span:
        """A span, ended by the caller, for a message the worker did not (or not here) run.

        ``request`` describes the message (id, task, retries, delivery_info); ``carrier``
        holds its headers when they are not the request's own attributes.
        """
        name = str(getattr(task, "name", None) or getattr(request, "task", None) or "unknown")
        attributes = self._attributes(
            action, operation, name, request, app or getattr(task, "app", None)
        )
        return self._tracer.start_span(
            f"{action} {name}",
            context=extract_context(request if carrier is None else carrier),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        )

    def _run_attributes(self, task: Any, request: Any) -> dict[str, Any]:
        return self._attributes(sc.RUN, sc.PROCESS, task.name, request, task.app)

    def _attributes(
        self, action: str, operation: str, name: str, request: Any, app: Any
    ) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            sc.CELERY_ACTION: action,
            sc.CELERY_TASK_NAME: name,
            sc.CELERY_RETRIES: sc.as_count(getattr(request, "retries", 0)),
        }
        delivery = getattr(request, "delivery_info", None) or {}
        messaging = self._conventions.messaging
        messaging(attributes, sc.MESSAGING_SYSTEM, sc.broker_system(app, write=False))
        messaging(attributes, sc.MESSAGING_OPERATION_TYPE, operation)
        messaging(attributes, sc.MESSAGING_OPERATION_NAME, action)
        messaging(attributes, sc.MESSAGING_DESTINATION_NAME, delivery.get("routing_key"))
        messaging(attributes, sc.MESSAGING_MESSAGE_ID, getattr(request, "id", None))
        return attributes

    def _enrich_contrib(self, task: Any, request: Any) -> None:
        span = self._contrib_run(task)
        if span is None:
            return
        message_id = (getattr(span, "attributes", None) or {}).get(sc.MESSAGING_MESSAGE_ID)
        if message_id is None or message_id == getattr(request, "id", None):
            enrich(span, self._run_attributes(task, request))

    @staticmethod
    def _contrib_run(task: Any) -> Optional[trace.Span]:
        if task is None or not contrib_active():
            return None
        return current_contrib_span(SpanKind.CONSUMER, f"run/{getattr(task, 'name', '')}")

    def _live(self, task_id: str) -> Optional[_Run]:
        stack = self._runs.get(task_id)
        return stack[-1] if stack else None

    def _pop(self, task_id: str) -> Optional[_Run]:
        stack = self._runs.get(task_id)
        if not stack:
            return None
        run = stack.pop()
        if not stack:
            self._runs.pop(task_id, None)
        return run

    def close(self) -> None:
        """Forget runs still open (``uninstrument`` while tasks run); their spans end here."""
        runs, self._runs = self._runs, {}
        for stack in runs.values():
            for run in stack:
                run.span.end()


def _request_of(task: Any, task_id: str) -> Any:
    """The task's request when it is the one of ``task_id`` (Celery pushes it for a lost
    worker, not for a time limit); else just the id."""
    request = getattr(task, "request", None)
    return request if getattr(request, "id", None) == task_id else SimpleNamespace(id=task_id)
