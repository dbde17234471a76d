"""Helpers for the delivery tests: real envelopes, a recording receiver, an advanceable clock."""

from __future__ import annotations

import contextlib
import gzip
import io
import socket
import threading
import time
import uuid
from collections import Counter
from typing import Any, Callable, Optional

from sentry_sdk.envelope import Envelope

from otel_sentry_biz.receiver import LocalReceiver
from otel_sentry_biz.sentry import envelopes
from otel_sentry_biz.sentry.outbox import MemoryOutbox, OutboxEntry
from otel_sentry_biz.sentry.sender import EnvelopeSender

SECRET = "s3cr3t-never-shown"


class Clock:
    """Real time plus an offset that tests can advance (for Retry-After / rate limits)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class RecordingReceiver(LocalReceiver):
    """A LocalReceiver that also keeps every request's headers and raw (encoded) body."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[dict[str, str], bytes]] = []

    def stop(self) -> None:
        # socketserver notices shutdown() on its next 0.5 s poll; a connection wakes it now.
        if self._server is None:
            return
        poke = threading.Timer(0.01, _connect, args=(self.port,))
        poke.start()
        super().stop()
        poke.cancel()

    def raw_envelopes(self) -> list[bytes]:
        """Every POSTed envelope, decoded from its Content-Encoding."""
        return [decoded(headers, body) for headers, body in self.seen]

    def posts(self) -> Counter[Optional[str]]:
        """How often each event id was POSTed (whatever the answer); None for client reports."""
        return Counter(
            Envelope.deserialize(raw).headers.get("event_id") for raw in self.raw_envelopes()
        )


def decoded(headers: dict[str, str], body: bytes) -> bytes:
    return gzip.decompress(body) if headers.get("Content-Encoding") == "gzip" else body


def _connect(port: int) -> None:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        pass


def recording_handler_for(original: Callable[[LocalReceiver], type]) -> Callable:
    def handler_for(receiver: LocalReceiver) -> type:
        base = original(receiver)
        seen = getattr(receiver, "seen", None)
        if seen is None:
            return base

        class Recording(base):  # type: ignore[misc, valid-type]
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                seen.append((dict(self.headers.items()), body))
                socket_file, self.rfile = self.rfile, io.BytesIO(body)
                try:
                    super().do_POST()
                except ConnectionError:  # a client that timed out has hung up: no traceback
                    self.close_connection = True
                finally:
                    self.rfile = socket_file

        return Recording

    return handler_for


def secret_dsn(receiver: LocalReceiver) -> str:
    """The receiver's DSN with a (deprecated) secret key in it."""
    return f"http://{receiver.public_key}:{SECRET}@127.0.0.1:{receiver.port}/{receiver.project_id}"


def error_event(message: str = "boom") -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4().hex,
        "level": "error",
        "platform": "python",
        "timestamp": time.time(),
        "exception": {"values": [{"type": "ValueError", "value": message}]},
    }


def transaction_event(name: str = "GET /orders/{id}") -> dict[str, Any]:
    now = time.time()
    return {
        "event_id": uuid.uuid4().hex,
        "type": "transaction",
        "platform": "python",
        "transaction": name,
        "start_timestamp": now - 0.05,
        "timestamp": now,
        "contexts": {
            "trace": {"trace_id": uuid.uuid4().hex, "span_id": uuid.uuid4().hex[:16], "op": "http"}
        },
        "spans": [],
    }


def entry_for(event: dict[str, Any]) -> OutboxEntry:
    envelope = envelopes.build_envelope(event, trace_header={"trace_id": "ab" * 16})
    return OutboxEntry.new(
        event_id=event["event_id"],
        category=envelopes.data_category(event),
        payload=envelopes.serialize(envelope),
    )


def errors(count: int, size: int = 0) -> list[OutboxEntry]:
    """``count`` error entries; ``size`` pads each message to about that many bytes."""
    return [entry_for(error_event(f"boom {i} ".ljust(size, "x"))) for i in range(count)]


def transactions(count: int) -> list[OutboxEntry]:
    return [entry_for(transaction_event(f"GET /t/{i}")) for i in range(count)]


def put_all(outbox: MemoryOutbox, sender: EnvelopeSender, entries: list[OutboxEntry]) -> None:
    for entry in entries:
        outbox.put(entry)
    sender.notify()


def received_ids(receiver: LocalReceiver, kind: Optional[str] = None) -> list[str]:
    return [event["event_id"] for event in receiver.events(kind)]


def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)
    return True
