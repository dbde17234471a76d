"""EnvelopeSender: the background thread that delivers the outbox to Sentry.

Behaviour on each answer (Sentry's ingestion protocol):

* 2xx: delivered (``ack``).
* 429 or ``X-Sentry-Rate-Limits``: the limited categories pause until their deadline; their
  entries stay queued and other categories keep flowing.
* 5xx, connection errors, timeouts: everything waits, with exponential backoff and jitter.
* other 4xx: Sentry will never take it; dropped with a logged reason and counted.

Drops are reported back to Sentry as client reports. The thread never spins: it sleeps on an
event until there is work, a backoff or rate limit ends, or a client report is due.
"""

from __future__ import annotations

import gzip
import logging
import random
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from opentelemetry.instrumentation.utils import suppress_instrumentation
from sentry_sdk.consts import EndpointType
from sentry_sdk.utils import Dsn

from otel_sentry_biz.pacer import Pacer, shared_pacer
from otel_sentry_biz.sentry import envelopes
from otel_sentry_biz.sentry.connection import Answer, EnvelopeConnection
from otel_sentry_biz.sentry.outbox import Outbox, OutboxEntry
from otel_sentry_biz.sentry.ratelimits import DEFAULT_RETRY_AFTER, RateLimits, parse_retry_after
from otel_sentry_biz.version import __version__

_logger = logging.getLogger("otel_sentry_biz.sentry.sender")

SEND_ERROR = "send_error"
_CLIENT = f"otel-sentry-biz/{__version__}"


class EnvelopeSender:
    """Deliver an outbox's envelopes to the DSN's envelope endpoint from a daemon thread.

    >>> sender = EnvelopeSender(dsn, outbox); sender.start(); sender.notify()

    Threading: ``notify``, ``flush``, ``stats`` and ``shutdown`` may be called from any
    thread; only the sender's own thread does HTTP, under ``suppress_instrumentation`` so
    none of it is traced.
    """

    def __init__(
        self,
        dsn: str,
        outbox: Outbox,
        *,
        timeout: float = 5.0,
        batch_size: int = 32,
        pipeline_depth: int = 8,
        compress_level: int = 1,
        compress_min_bytes: int = 4096,
        backoff_base: float = 0.5,
        backoff_cap: float = 10.0,
        client_report_interval: float = 30.0,
        clock: Callable[[], float] = time.time,
        pacer: Optional[Pacer] = None,
    ) -> None:
        parsed = Dsn(dsn)
        self._url = parsed.to_auth().get_api_url(EndpointType.ENVELOPE)
        # The DSN secret is deprecated by Sentry and never needed: it is not sent or logged.
        headers = {
            "X-Sentry-Auth": (
                f"Sentry sentry_key={parsed.public_key}, sentry_version=7, sentry_client={_CLIENT}"
            ),
            "Content-Type": "application/x-sentry-envelope",
            "User-Agent": _CLIENT,
        }
        self._where = f"{parsed.scheme}://{parsed.netloc}/api/{parsed.project_id}"
        self._connection = EnvelopeConnection(self._url, headers, timeout=timeout)
        # The sender thread owns the connection; shutdown() may still use it from another.
        self._connection_lock = threading.Lock()
        self._pacer = pacer or shared_pacer()
        self._outbox = outbox
        self._batch_size = batch_size
        if pipeline_depth < 1:
            raise ValueError("pipeline_depth must be at least 1 (1: one request at a time)")
        # Requests written before their answers are read (HTTP/1.1 pipelining). The window
        # starts at one and doubles while everything in it is delivered, up to the depth;
        # any other answer or failure brings it back to one, so a refusing or failing
        # Sentry gets one request per pause, as without pipelining. Until a window of
        # several has been delivered, a sign that the server does not serve pipelined
        # requests (answers stop after the first, a later request refused with a 4xx) sets
        # the depth to 1 for good (see _deliver).
        self._depth = pipeline_depth
        self._window = 1
        self._pipelining_seen = False
        self._compress_level = compress_level
        self._compress_min_bytes = compress_min_bytes
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._report_interval = client_report_interval
        self._clock = clock
        self._limits = RateLimits()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: Optional[threading.Thread] = None
        self._failures = 0
        self._backoff_until = 0.0
        self._last_report = clock()
        self._sent: Counter[str] = Counter()
        self._unreported: Counter[tuple[str, str]] = Counter()
        self._drops_lock = threading.Lock()
        self._last_success_at: Optional[float] = None
        self._last_error: Optional[str] = None
        self._flush_requested = False

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="otel_sentry_biz.sender", daemon=True
            )
            self._thread.start()

    def notify(self) -> None:
        """New entries are in the outbox."""
        self._wake.set()

    def flush(self, timeout: float) -> bool:
        """Wait until the outbox is empty; True if it emptied within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        self._flush_requested = True
        self._wake.set()
        while len(self._outbox) > 0:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def shutdown(self, timeout: float = 5.0) -> None:
        """Deliver what can be delivered within ``timeout``, then stop. Idempotent."""
        if self._stopping:
            return
        self.flush(timeout)
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=max(0.1, timeout))
        self._send_client_report(force=True)
        with self._connection_lock:
            self._connection.close()

    def count_drop(self, reason: str, category: str, quantity: int = 1) -> None:
        """Report a drop made before the outbox (sampling, a conversion bug) to Sentry too."""
        with self._drops_lock:
            self._unreported[(reason, category)] += quantity

    def stats(self) -> dict[str, Any]:
        now = self._clock()
        return {
            "sent": dict(self._sent),
            "queued": len(self._outbox),
            "dropped": {f"{r}:{c}": n for (r, c), n in self._outbox.drops().items()},
            "rate_limited": self._limits.snapshot(now),
            "backoff_seconds": round(max(0.0, self._backoff_until - now), 3),
            "last_success_at": self._last_success_at,
            # Requests written before answers are read: 1 once the server turned out not to
            # serve pipelined requests (or when configured so).
            "pipeline_depth": self._depth,
            "last_error": self._last_error,
        }

    # -- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        with suppress_instrumentation():
            while not self._stopping:
                try:
                    delay = self._step()
                except Exception:  # never let the sender die: log, pause, go on
                    _logger.exception("sender step failed")
                    delay = 1.0
                if delay:
                    self._wake.wait(delay)
                    self._wake.clear()

    def _step(self) -> float:
        """Send one batch; return how long to sleep (0 for: go on at once)."""
        now = self._clock()
        if now < self._backoff_until:
            return self._backoff_until - now
        entries = self._outbox.take(self._batch_size, lambda c: self._limits.is_limited(c, now))
        if not entries:
            self._send_client_report(force=self._flush_requested)
            self._flush_requested = False
            wait = self._report_interval
            expiry = self._limits.next_expiry(now)
            if expiry is not None:
                wait = min(wait, expiry - now + 0.01)
            return max(0.01, wait)
        # Paced per batch: as long a rest in total as after each envelope (but for the
        # pacer's 0.5 s cap on one rest, reached only by a batch of over ~25 ms of CPU), with
        # two CPU-clock reads (system calls) and one sleep per batch, not per envelope.
        started = time.thread_time()
        start = 0
        try:
            while start < len(entries):
                window = entries[start : start + self._window]
                start += len(window)
                unsettled, wait = self._deliver(window)
                if unsettled:
                    self._outbox.release([*unsettled, *entries[start:]])
                    return wait
        except BaseException:
            # A bug, or the outbox failing (a locked SQLite file): nothing stays leased;
            # release() passes over what was already acknowledged or dropped.
            self._outbox.release(entries)
            raise
        self._pacer.rest(time.thread_time() - started, urgent=self._flush_requested)
        return 0.0

    def _deliver(self, window: list[OutboxEntry]) -> tuple[list[OutboxEntry], float]:
        """POST a window of envelopes, pipelined; return those still to send, and when."""
        answers, error = self._post(window)
        now = self._clock()
        stopped = bool(answers) and error is not None  # answers stopped after the first
        delivered, unsettled, failed = [], [], None
        refused_late = False
        for index, (entry, answer) in enumerate(zip(window, answers)):
            if index and _refused(answer):
                # A refusal of a later request of a window may be about the pipelining (a
                # proxy that refuses it), not the envelope: never final here, it goes again
                # alone, and only a refusal of it sent alone drops it.
                refused_late = True
                unsettled.append(entry)
                continue
            verdict = self._judge(entry, answer, now)
            if verdict == "ok":
                delivered.append(entry)
            elif verdict != "dropped":
                unsettled.append(entry)
                if verdict == "retry" and failed is None:
                    failed = f"HTTP {answer.status} from {self._where}"
        unsettled += window[len(answers) :]  # unanswered
        if delivered:
            self._outbox.ack(delivered)
            self._sent.update(entry.category for entry in delivered)
            self._failures = 0
            self._last_success_at = now
        # Doubled only while everything is delivered on a connection that stays open: a
        # server that closes after each answer would have the rest of a window sent in vain.
        grow = not unsettled and self._connection.connected
        self._window = min(self._depth, 2 * self._window) if grow else 1
        unproven = len(window) > 1 and not self._pipelining_seen
        if unproven and (stopped or refused_late):
            # Before pipelining was seen working, that is a server that does not serve it:
            # what it did not take goes again, alone, and is no sign of Sentry failing.
            self._window = self._depth = 1
            error = None
            _logger.info(
                "%s does not serve pipelined requests; sending one envelope at a time",
                self._where,
            )
        elif unproven and len(delivered) > 1:
            self._pipelining_seen = True
        if failed is not None:
            self._fail(failed)
        elif error is not None:
            self._fail(f"{type(error).__name__} talking to {self._where}")
        else:
            # All settled; or the server closed the connection after its last answer (the
            # rest go again at once); or rate limited (the next take skips those categories).
            return unsettled, 0.0
        return unsettled, max(0.0, self._backoff_until - self._clock())

    def _post(self, window: list[OutboxEntry]) -> tuple[list[Answer], Optional[Exception]]:
        try:
            requests = [self._encode(entry.payload) for entry in window]
            with self._connection_lock:
                return self._connection.post_all(requests)
        except Exception as exc:  # the network's failures are returned, not raised: a bug
            return [], exc

    def _judge(self, entry: OutboxEntry, response: Answer, now: float) -> str:
        """Act on one envelope's answer: "ok", "dropped", "limited" or "retry"."""
        limited = self._limits.update_from_response(response.status, response.headers, now)
        if 200 <= response.status < 300:
            return "ok"
        if response.status == 429 or (limited and response.status >= 400):
            self._last_error = f"rate limited by {self._where} ({response.status})"
            if not self._limits.is_limited(entry.category, now):
                # Refused, yet the limits it sent name other categories only: pause this
                # one too (Retry-After, else Sentry's default), or we would resend at once.
                retry_after = parse_retry_after(response.headers.get("retry-after"), now)
                wait = DEFAULT_RETRY_AFTER if retry_after is None else retry_after
                self._limits.limit(entry.category, now + wait)
            return "limited"
        if response.status >= 500:
            return "retry"
        reason = response.body[:200].decode("utf-8", "replace")
        _logger.error(
            "Sentry refused event %s with HTTP %d (%s); it is dropped",
            entry.event_id,
            response.status,
            reason,
        )
        self._last_error = f"HTTP {response.status} from {self._where}: {reason}"
        self._outbox.drop([entry], SEND_ERROR)
        return "dropped"

    def _fail(self, message: str) -> None:
        self._failures += 1
        delay = min(self._backoff_cap, self._backoff_base * 2 ** (self._failures - 1))
        delay *= random.uniform(0.5, 1.0)  # jitter: a fleet must not retry in lockstep
        self._backoff_until = self._clock() + delay
        self._last_error = message
        if self._failures == 1 or self._failures % 10 == 0:
            _logger.warning("%s; retrying in %.1f s (attempt %d)", message, delay, self._failures)

    def _encode(self, payload: bytes) -> tuple[bytes, Optional[str]]:
        # Compressing a typical 2 KB transaction costs more CPU (~35-65 us here) than the
        # rest of its delivery and saves ~1 KB on the wire: only bigger ones are worth it.
        if len(payload) < self._compress_min_bytes:
            return payload, None
        return gzip.compress(payload, compresslevel=self._compress_level, mtime=0), "gzip"

    def _send_client_report(self, *, force: bool = False) -> None:
        now = self._clock()
        if not force and now - self._last_report < self._report_interval:
            return
        self._last_report = now
        # Counts stay ours until Sentry took the report: a failed POST must not lose them.
        with self._drops_lock:
            self._unreported.update(self._outbox.take_unreported_drops())
            if not self._unreported:
                return
            report = dict(self._unreported)
        envelope = envelopes.client_report_envelope(report, datetime.now(timezone.utc))
        try:
            with suppress_instrumentation():  # may run on the thread calling shutdown()
                body, encoding = self._encode(envelopes.serialize(envelope))
                with self._connection_lock:
                    answer = self._connection.post(body, content_encoding=encoding)
        except Exception as exc:
            _logger.debug("client report not delivered: %s", type(exc).__name__)
            return
        if 200 <= answer.status < 300 or (400 <= answer.status < 500 and answer.status != 429):
            if answer.status >= 400:
                _logger.debug("client report refused with HTTP %d", answer.status)
            with self._drops_lock:  # what was reported (or refused for good) is done
                self._unreported.subtract(report)
                self._unreported = +self._unreported


def _refused(answer: Answer) -> bool:
    """A 4xx other than a rate limit: Sentry's "never", when the envelope was sent alone."""
    return 400 <= answer.status < 500 and answer.status != 429
