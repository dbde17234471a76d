"""Business-aware Celery instrumentation: PRODUCER and CONSUMER spans, one trace per task.

>>> from otel_sentry_biz_instrumentors.celery import CeleryInstrumentor
>>> CeleryInstrumentor().instrument()   # in the sender, and in each worker process

The task's message carries the trace context and the business keys chosen with
``biz.context(..., propagate=[...])``; the worker restores them while the task runs, so its
spans join the sender's trace and carry those ``biz.*`` keys. Retries, failures, rejections and
revocations show on the spans. When ``opentelemetry-instrumentation-celery`` is active too,
its spans are kept and enriched instead of duplicated. See ``docs/instrumentors/celery.md``.

Importing this module does not import Celery; ``instrument()`` does.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.dependencies import get_dependency_conflicts
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from otel_sentry_biz.version import __version__
from otel_sentry_biz_instrumentors.celery.package import _instruments
from otel_sentry_biz_instrumentors.celery.semconv import SCHEMA_URL, Conventions

try:  # recent opentelemetry-instrumentation: the auto loader logs and skips on this error
    from opentelemetry.instrumentation.dependencies import DependencyConflictError
except ImportError:  # pragma: no cover - older loaders re-raise any other error
    DependencyConflictError = None  # type: ignore[assignment,misc]

__all__ = ["CeleryInstrumentor"]

_logger = logging.getLogger("otel_sentry_biz.instrumentors.celery")

_UID = "otel_sentry_biz.celery."
#: Celery signal -> method of the surface object that receives it.
_PUBLISH_SIGNALS = {"before_task_publish": "before_publish", "after_task_publish": "after_publish"}
_WORKER_SIGNALS = {
    "task_prerun": "on_prerun",
    "task_postrun": "on_postrun",
    "task_failure": "on_failure",
    "task_internal_error": "on_failure",
    "task_retry": "on_retry",
    "task_revoked": "on_revoked",
    "task_unknown": "on_unknown",
    "task_rejected": "on_rejected",
}


class CeleryInstrumentor(BaseInstrumentor):
    """Trace Celery task publishing and execution, with business context across the queue.

    >>> CeleryInstrumentor().instrument(tracer_provider=provider)
    >>> CeleryInstrumentor().uninstrument()   # signals disconnected, send_task restored

    Call it in every process that sends or runs tasks; in a prefork worker, from a
    ``worker_process_init`` receiver, after the child's TracerProvider is set up.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        # opentelemetry-instrument checks the distribution's "instruments" extra, then skips
        # ours; one distribution ships several instrumentors, so each checks its own library.
        self._worker = None
        conflict = get_dependency_conflicts(_instruments)
        if conflict is not None:
            if DependencyConflictError is not None:
                raise DependencyConflictError(conflict)
            _logger.debug("not instrumenting Celery: %s", conflict)
            return
        from otel_sentry_biz_instrumentors.celery.publish import Publisher
        from otel_sentry_biz_instrumentors.celery.worker import WorkerTracer

        tracer = trace.get_tracer(
            __name__, __version__, kwargs.get("tracer_provider"), schema_url=SCHEMA_URL
        )
        conventions = Conventions.from_environ()
        self._publisher = Publisher(tracer, conventions)
        self._worker = WorkerTracer(tracer, conventions)
        self._instrument_publish()
        self._instrument_worker()

    def _uninstrument(self, **kwargs: Any) -> None:
        if getattr(self, "_worker", None) is None:
            return  # instrument() found no supported Celery: nothing to undo
        self._uninstrument_publish()
        self._uninstrument_worker()
        self._worker = None

    def _instrument_publish(self) -> None:
        from wrapt import wrap_function_wrapper

        wrap_function_wrapper("celery.app.base", "Celery.send_task", self._publisher.send_task)
        _connect(_PUBLISH_SIGNALS, self._publisher)

    def _uninstrument_publish(self) -> None:
        from celery.app.base import Celery
        from opentelemetry.instrumentation.utils import unwrap

        unwrap(Celery, "send_task")
        _disconnect(_PUBLISH_SIGNALS)

    def _instrument_worker(self) -> None:
        _connect(_WORKER_SIGNALS, self._worker)

    def _uninstrument_worker(self) -> None:
        _disconnect(_WORKER_SIGNALS)
        self._worker.close()


def _connect(receivers: dict[str, str], target: object) -> None:
    from celery import signals

    for signal_name, method in receivers.items():
        getattr(signals, signal_name).connect(
            getattr(target, method), weak=False, dispatch_uid=_UID + signal_name
        )


def _disconnect(receivers: dict[str, str]) -> None:
    from celery import signals

    for signal_name in receivers:
        getattr(signals, signal_name).disconnect(dispatch_uid=_UID + signal_name)
