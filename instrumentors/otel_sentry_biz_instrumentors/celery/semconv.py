"""Names and values of the attributes on Celery spans: messaging conventions plus Celery's own.

The messaging semantic conventions are still in Development. We write the current names by
default; ``OTEL_SEMCONV_STABILITY_OPT_IN=messaging/dup`` adds the old names (semconv 1.24 and
``opentelemetry-instrumentation-celery``) next to them, read once at ``instrument()``.
``celery.*`` names are those of the contrib instrumentor, so dashboards and the Sentry bridge's
op inference (``celery.action``, ``celery.task_name``) read both instrumentors' spans alike.

>>> conventions = Conventions.from_environ({"OTEL_SEMCONV_STABILITY_OPT_IN": "messaging/dup"})
>>> conventions.messaging({}, MESSAGING_OPERATION_TYPE, SEND)
{'messaging.operation.type': 'send', 'messaging.operation': 'publish'}
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

SCHEMA_URL = "https://opentelemetry.io/schemas/1.44.0"

MESSAGING_SYSTEM = "messaging.system"
MESSAGING_OPERATION_TYPE = "messaging.operation.type"
MESSAGING_OPERATION_NAME = "messaging.operation.name"
MESSAGING_DESTINATION_NAME = "messaging.destination.name"
MESSAGING_MESSAGE_ID = "messaging.message.id"

#: ``messaging.operation.type`` values.
SEND = "send"
PROCESS = "process"
SETTLE = "settle"

#: Celery's own operation names: ``messaging.operation.name``, ``celery.action`` and the first
#: word of the span name ("apply_async tasks.add").
APPLY_ASYNC = "apply_async"
RUN = "run"
REVOKE = "revoke"
REJECT = "reject"

CELERY_ACTION = "celery.action"
CELERY_TASK_NAME = "celery.task_name"
CELERY_RETRIES = "celery.retries"
CELERY_STATE = "celery.state"
CELERY_HOSTNAME = "celery.hostname"
CELERY_ETA = "celery.eta"
CELERY_EXPIRES = "celery.expires"
CELERY_RETRY_REASON = "celery.retry.reason"
CELERY_REVOKED_REASON = "celery.revoked.reason"
CELERY_TERMINATED_SIGNAL = "celery.terminated.signal"
CELERY_REJECTED_REQUEUE = "celery.rejected.requeue"
CELERY_REJECTED_REASON = "celery.rejected.reason"

#: Span events marking what happened to a task besides running (or failing).
RETRY_EVENT = "celery.retry"
REVOKED_EVENT = "celery.revoked"
REJECTED_EVENT = "celery.rejected"
IGNORED_EVENT = "celery.ignored"

#: Current name -> old name, written too under ``messaging/dup``.
OLD_NAMES: Mapping[str, str] = {
    MESSAGING_DESTINATION_NAME: "messaging.destination",
    MESSAGING_OPERATION_TYPE: "messaging.operation",
}
#: Old values of ``messaging.operation.type``; a value without an old one is not duplicated.
OLD_OPERATION_TYPES: Mapping[str, str] = {SEND: "publish", PROCESS: "process"}

#: Broker URL scheme (kombu transport alias) -> ``messaging.system``: the protocol Celery speaks
#: to its broker, as the conventions define it, with their well-known values where one exists.
#: Other schemes are written as they are ("redis", "memory", "filesystem").
MESSAGING_SYSTEMS: Mapping[str, str] = {
    "amqp": "rabbitmq",
    "amqps": "rabbitmq",
    "pyamqp": "rabbitmq",
    "librabbitmq": "rabbitmq",
    "rediss": "redis",
    "sentinel": "redis",
    "sqs": "aws_sqs",
    "confluentkafka": "kafka",
    "gcpubsub": "gcp_pubsub",
    "azureservicebus": "servicebus",
}
#: Celery's default broker when none is configured.
DEFAULT_BROKER_SCHEME = "amqp"

OPT_IN_VARIABLE = "OTEL_SEMCONV_STABILITY_OPT_IN"
DUP_TOKEN = "messaging/dup"


@dataclass(frozen=True)
class Conventions:
    """Which messaging attribute names to write: current only, or current and old (``dup``)."""

    dup: bool = False

    @classmethod
    def from_environ(cls, environ: Optional[Mapping[str, str]] = None) -> Conventions:
        """Read ``OTEL_SEMCONV_STABILITY_OPT_IN``: ``messaging/dup`` wins over ``messaging``."""
        raw = (os.environ if environ is None else environ).get(OPT_IN_VARIABLE, "")
        tokens = {token.strip().lower() for token in raw.split(",")}
        return cls(dup=DUP_TOKEN in tokens)

    def messaging(self, attributes: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
        """Set messaging attribute ``name`` (and its old name under ``dup``); skip empty values."""
        if value is None or value == "":
            return attributes
        attributes[name] = value
        if self.dup and name in OLD_NAMES:
            if name == MESSAGING_OPERATION_TYPE:
                value = OLD_OPERATION_TYPES.get(value)
            if value is not None:
                attributes[OLD_NAMES[name]] = value
        return attributes


def broker_system(app: Any, *, write: bool) -> Optional[str]:
    """``messaging.system`` of a Celery app's broker for writing (producer) or reading (worker)."""
    conf = getattr(app, "conf", None)
    if conf is None:
        return None
    split_url = conf.get("broker_write_url" if write else "broker_read_url")
    return messaging_system(split_url or conf.get("broker_url"))


def messaging_system(broker_url: Any) -> str:
    """``messaging.system`` for a Celery broker URL; credentials never leave this function.

    >>> messaging_system("amqp://guest:secret@rabbit//")
    'rabbitmq'
    """
    if isinstance(broker_url, (list, tuple)):
        broker_url = broker_url[0] if broker_url else None
    if not isinstance(broker_url, str) or not broker_url.strip():
        broker_url = DEFAULT_BROKER_SCHEME
    return _system_of(broker_url.split(";", 1)[0].strip())


def _system_of(url: str) -> str:
    scheme = url.partition("://")[0] if "://" in url else url
    scheme = scheme.partition("+")[0].strip().lower() or DEFAULT_BROKER_SCHEME
    return MESSAGING_SYSTEMS.get(scheme, scheme)


def as_count(value: Any) -> int:
    """A count from a header or request field (None, "", "3", 3); 0 when it is not one."""
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0
