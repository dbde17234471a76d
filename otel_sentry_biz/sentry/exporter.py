"""SentrySpanExporter: finished spans in, Sentry envelopes out (through an outbox).

``export`` only does CPU work — segment assembly, event building, serialization — and puts
envelopes in an outbox; an :class:`~otel_sentry_biz.sentry.sender.EnvelopeSender` thread
delivers them. So ``export`` never blocks on the network and never raises.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, Optional

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from sentry_sdk.utils import Dsn

from otel_sentry_biz.config import ConfigError, Settings
from otel_sentry_biz.scrub import Scrubber, ScrubConfig
from otel_sentry_biz.sentry import envelopes
from otel_sentry_biz.sentry.events import EventDefaults, EventFactory
from otel_sentry_biz.sentry.fingerprints import apply_fingerprints, fingerprint_rules_for
from otel_sentry_biz.sentry.issue_cap import IssueCap, issue_key
from otel_sentry_biz.sentry.limits import fit_event
from otel_sentry_biz.sentry.outbox import MemoryOutbox, Outbox, OutboxEntry
from otel_sentry_biz.sentry.segments import Segment, SegmentAssembler
from otel_sentry_biz.sentry.sender import EnvelopeSender
from otel_sentry_biz.sentry.tags import TagMapper, TagPolicy

_logger = logging.getLogger("otel_sentry_biz.sentry.exporter")
_MB = 1024 * 1024


class SentrySpanExporter(SpanExporter):
    """Export OTel spans to Sentry as transactions, errors and business issues.

    >>> provider.add_span_processor(BufferedSpanProcessor(SentrySpanExporter(dsn=DSN)))

    Settings not given come from ``SENTRY_*`` / ``OTEL_SENTRY_BIZ_*`` (see
    ``docs/configuration.md``); a missing or malformed DSN raises
    :class:`~otel_sentry_biz.config.ConfigError` here, at start-up.

    Threading: ``export`` may be called from any one thread at a time (the SDK's processors
    serialise it); ``force_flush`` and ``shutdown`` may be called from any thread.
    """

    def __init__(
        self,
        dsn: Optional[str] = None,
        *,
        settings: Optional[Settings] = None,
        outbox: Optional[Outbox] = None,
        **overrides: Any,
    ) -> None:
        if dsn is not None:
            overrides["dsn"] = dsn
        if settings is None:
            settings = Settings.load(**overrides)
        elif overrides:
            settings = Settings.load(**{**_as_arguments(settings), **overrides})
        if not settings.dsn:
            raise ConfigError(
                "SENTRY_DSN is not set: set it (or pass dsn=...) to your project's DSN, "
                "https://<public_key>@<host>/<project_id>"
            )
        self._settings = settings
        self._public_key = Dsn(settings.dsn).public_key
        # The part of every envelope's trace header that never changes (see _trace_header).
        self._trace_header_base = {
            "public_key": self._public_key,
            "sample_rate": str(settings.traces_sample_rate),
            "sampled": "true",
        }
        # Nothing leaves the process unscrubbed (docs/scrubbing.md).
        self._scrubber = Scrubber(
            ScrubConfig(
                send_default_pii=settings.send_default_pii,
                denylist=(*settings.scrub_keys, *(settings.sensitive_keys or ())),
                safe_keys=settings.scrub_safe_keys,
                patterns=settings.scrub_patterns,
            )
        )
        self._factory = EventFactory(
            EventDefaults(
                environment=settings.environment,
                release=settings.release,
                max_spans=settings.max_spans_per_transaction,
                max_breadcrumbs=settings.max_breadcrumbs,
                send_default_pii=settings.send_default_pii,
            ),
            TagMapper(
                TagPolicy(allow=settings.tag_allowlist, deny=settings.tag_denylist or frozenset())
            ),
            scrubber=self._scrubber,  # what repeats is scrubbed once (see EventFactory)
        )
        self._fingerprints = fingerprint_rules_for(settings.fingerprints)  # a bad file: now
        self._issue_cap = IssueCap(settings.max_events_per_issue)
        self._assembler = SegmentAssembler(max_pending_spans=settings.max_buffered_spans)
        self._outbox = outbox if outbox is not None else _outbox_for(settings)
        self._sender = EnvelopeSender(
            settings.dsn, self._outbox, pipeline_depth=settings.pipeline_depth
        )
        self._sender.start()
        self._lock = threading.Lock()
        self._random = random.Random()
        self._dropped: Counter[tuple[str, str]] = Counter()
        self._events = Counter()
        self._shutdown = False
        from otel_sentry_biz.healthcheck import register

        register(self)

    # -- SpanExporter -------------------------------------------------------------------

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            return SpanExportResult.FAILURE
        with self._lock:
            try:
                segments = self._assembler.add(spans)
            except Exception:
                _logger.exception("could not group %d spans; they are lost", len(spans))
                self._drop("internal_sdk_error", "span", len(spans))
                return SpanExportResult.FAILURE
            for segment in segments:
                self._emit_safely(segment)
        self._sender.notify()
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Send what is waiting for its root too, then wait for delivery."""
        with self._lock:
            for segment in self._assembler.drain():
                self._emit_safely(segment)
        return self._sender.flush(timeout_millis / 1000.0)

    def shutdown(self, timeout_millis: int = 30000) -> None:
        if self._shutdown:
            return
        self.force_flush(timeout_millis)
        self._shutdown = True
        self._sender.shutdown(timeout=max(0.1, timeout_millis / 1000.0))
        close = getattr(self._outbox, "close", None)  # a SQLite outbox holds a connection
        if close is not None:
            close()

    # -- reporting ----------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Events built by kind, drops by (reason, category), queue and delivery state."""
        return {
            "events": dict(self._events),
            "dropped_before_queue": {f"{r}:{c}": n for (r, c), n in self._dropped.items()},
            "pending_spans": self._assembler.pending_spans,
            **self._sender.stats(),
        }

    @property
    def is_shut_down(self) -> bool:
        return self._shutdown

    def health_state(self) -> dict[str, Any]:
        """What :func:`otel_sentry_biz.health` reports about this exporter."""
        sender = self._sender.stats()
        dropped = {f"{r}:{c}": n for (r, c), n in self._dropped.items()}
        for key, count in sender["dropped"].items():
            dropped[key] = dropped.get(key, 0) + count
        return {
            "environment": self._settings.environment,
            "release": self._settings.release,
            "sample_rate": self._settings.sample_rate,
            "traces_sample_rate": self._settings.traces_sample_rate,
            "queued": sender["queued"],
            "dropped": dropped,
            "last_success_at": sender["last_success_at"],
            "last_error": sender["last_error"],
        }

    # -- conversion ---------------------------------------------------------------------

    def _emit_safely(self, segment: Segment) -> None:
        # One malformed segment must not take the rest of the batch down with it.
        try:
            self._emit(segment)
        except Exception:
            _logger.exception("could not convert the segment of span %r", segment.root.name)
            self._drop("internal_sdk_error", "span", 1 + len(segment.spans))

    def _emit(self, segment: Segment) -> None:
        errors: list[dict[str, Any]] = []
        violations: list[dict[str, Any]] = []
        # All three are made from span events: a segment without any (most) has none of them.
        if segment.has_events():
            errors = self._factory.errors(segment)
            violations = self._factory.violations(segment)
            violations += self._factory.messages(segment)  # issues by text, capped the same way
        # Before the per-issue cap: the fingerprint rules decide what an issue is.
        apply_fingerprints([*errors, *violations], self._fingerprints)
        for event in errors:
            if self._random.random() >= self._settings.sample_rate:
                self._drop("sample_rate", "error")
            elif not self._issue_cap.admit(issue_key(event)):
                self._drop("event_processor", "error")  # over SENTRY_MAX_EVENTS_PER_ISSUE
            else:
                self._queue(event, "error", segment)
        for event in violations:
            if self._issue_cap.admit(issue_key(event)):
                self._queue(event, "violation", segment)
            else:
                self._drop("event_processor", "error")
        # A trace the sampler left out (recorded only) still counts when it went wrong:
        # its transaction is kept when it holds an error or a violation (business-aware keep).
        if not (segment.root.context.trace_flags.sampled or errors or violations):
            self._drop("sample_rate", "transaction")
            return
        for event in self._factory.transactions(segment):
            self._queue(event, "transaction", segment)

    def _drop(self, reason: str, category: str, quantity: int = 1) -> None:
        self._dropped[(reason, category)] += quantity
        self._sender.count_drop(reason, category, quantity)

    def _queue(self, event: dict[str, Any], kind: str, segment: Segment) -> None:
        # Scrubbed before the envelope and its trace header (which names the transaction).
        event = fit_event(self._scrubber.scrub_event(event))
        envelope = envelopes.build_envelope(event, trace_header=self._trace_header(event, segment))
        payload = envelopes.serialize(envelope)
        if b"\\ud" in payload:  # a lone surrogate (or a pair): Relay would reject the item
            event = envelopes.without_lone_surrogates(event)
            header = envelopes.without_lone_surrogates(self._trace_header(event, segment))
            payload = envelopes.serialize(envelopes.build_envelope(event, trace_header=header))
        entry = OutboxEntry.new(
            event_id=event["event_id"],
            category=envelopes.data_category(event),
            payload=payload,
        )
        self._events[kind] += 1
        self._outbox.put(entry)

    def _trace_header(self, event: dict[str, Any], segment: Segment) -> dict[str, str]:
        # Dynamic-sampling context: lets Sentry's server-side sampling keep whole traces.
        trace_id = segment.root.context.trace_id
        header = {"trace_id": f"{trace_id:032x}", **self._trace_header_base}
        for key in ("environment", "release", "transaction"):
            value = event.get(key)
            if value:
                header[key] = str(value)
        return header


def _outbox_for(settings: Settings) -> Outbox:
    """A SQLite outbox at ``OTEL_SENTRY_BIZ_OUTBOX`` when set, else one in memory."""
    if settings.outbox:
        from otel_sentry_biz.sentry.sqlite_outbox import SQLiteOutbox

        try:
            return SQLiteOutbox(settings.outbox, max_bytes=settings.max_queue_mb * _MB)
        except (OSError, sqlite3.Error, ValueError) as exc:  # ValueError: a NUL, a bad code
            raise ConfigError(
                f"OTEL_SENTRY_BIZ_OUTBOX={settings.outbox!r}: cannot open it as an outbox "
                f"({exc}); use a writable file path, or unset it to queue in memory"
            ) from exc
    return MemoryOutbox(max_bytes=settings.max_queue_mb * _MB)


def _as_arguments(settings: Settings) -> dict[str, Any]:
    return {k: v for k, v in asdict(settings).items() if v is not None}
