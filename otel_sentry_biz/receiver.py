"""LocalReceiver: a real Sentry-protocol HTTP receiver on 127.0.0.1, for the demo and tests.

It speaks the ingestion protocol the way Sentry does: envelopes POSTed to
``/api/<project>/envelope/`` (gzip, deflate or plain), authenticated by the public key in
``X-Sentry-Auth`` (or ``sentry_key``), answered with ``{"id": ...}``. Tests can script answers
(429 with rate-limit headers, 500s, slow responses) to exercise a sender.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import parse_qs, urlparse

from sentry_sdk.envelope import Envelope


@dataclass
class ScriptedResponse:
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    times: int = 1


class LocalReceiver:
    """A Sentry-compatible envelope endpoint on 127.0.0.1 that keeps what it receives.

    >>> with LocalReceiver() as receiver:
    ...     run_app(dsn=receiver.dsn)
    ...     receiver.wait_for(lambda r: len(r.events()) >= 3, timeout=10)
    """

    def __init__(
        self,
        port: int = 0,
        *,
        project_id: int = 1,
        public_key: Optional[str] = None,
        store_dir: Optional[Path] = None,
    ) -> None:
        self.project_id = project_id
        self.public_key = public_key or uuid.uuid4().hex
        self._requested_port = port
        self._store_dir = Path(store_dir) if store_dir else None
        self._envelopes: list[Envelope] = []
        self._script: deque[ScriptedResponse] = deque()
        self._lock = threading.Condition()
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._connections: set[socket.socket] = set()
        self._stored = 0
        self.requests = 0
        self.rejected = 0

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> LocalReceiver:
        handler = _handler_for(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", self._requested_port), handler)
        self._server.daemon_threads = True
        self._requested_port = self._server.server_address[1]  # restart on the same port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="otel_sentry_biz.receiver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        # Keep-alive connections outlive the listening socket: close them too, or a client
        # holding one would go on delivering to a receiver that is "stopped".
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> LocalReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._requested_port

    @property
    def dsn(self) -> str:
        return f"http://{self.public_key}@127.0.0.1:{self.port}/{self.project_id}"

    # -- what arrived -------------------------------------------------------------------

    @property
    def envelopes(self) -> list[Envelope]:
        with self._lock:
            return list(self._envelopes)

    def events(self, kind: Optional[str] = None) -> list[dict[str, Any]]:
        """Event payloads (transactions and errors); ``kind`` picks "transaction" or "event"."""
        out = []
        for envelope in self.envelopes:
            for item in envelope.items:
                if item.type in ("transaction", "event") and (kind is None or item.type == kind):
                    out.append(item.payload.json)
        return out

    def client_reports(self) -> list[dict[str, Any]]:
        # sentry-sdk parses only event and transaction payloads: the rest arrive as bytes.
        return [
            item.payload.json
            if item.payload.json is not None
            else json.loads(item.payload.get_bytes())
            for envelope in self.envelopes
            for item in envelope.items
            if item.type == "client_report"
        ]

    def wait_for(self, predicate: Callable[[LocalReceiver], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(min(remaining, 0.1))
        return True

    def clear(self, *, script: bool = False) -> None:
        """Forget what arrived; with ``script``, also the scripted answers still pending."""
        with self._lock:
            self._envelopes.clear()
            if script:
                self._script.clear()

    def respond_with(
        self,
        status: int,
        headers: Optional[Mapping[str, str]] = None,
        *,
        delay: float = 0.0,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` envelope requests this way (then 200 again)."""
        with self._lock:
            self._script.append(ScriptedResponse(status, dict(headers or {}), delay, times))

    # -- used by the handler ------------------------------------------------------------

    def _next_response(self) -> ScriptedResponse:
        with self._lock:
            self.requests += 1
            if not self._script:
                return ScriptedResponse()
            scripted = self._script[0]
            scripted.times -= 1
            if scripted.times <= 0:
                self._script.popleft()
            return scripted

    def _keep(self, envelope: Envelope, raw: bytes) -> None:
        with self._lock:
            self._envelopes.append(envelope)
            if self._store_dir is not None:
                self._store_dir.mkdir(parents=True, exist_ok=True)
                self._stored += 1  # not len(envelopes): clear() must not reuse file names
                name = f"{self._stored:06d}.envelope"
                (self._store_dir / name).write_bytes(raw)
            self._lock.notify_all()


def _handler_for(receiver: LocalReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Sentry's ingestion does
        # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and
        # the client's delayed ACK add ~40 ms to every answer.
        disable_nagle_algorithm = True

        def setup(self) -> None:
            super().setup()
            with receiver._lock:
                receiver._connections.add(self.connection)

        def finish(self) -> None:
            with receiver._lock:
                receiver._connections.discard(self.connection)
            super().finish()

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: tests and the demo read the receiver, not its access log

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            parsed = urlparse(self.path)
            parts = [p for p in parsed.path.split("/") if p]
            if len(parts) != 3 or parts[0] != "api" or parts[2] not in ("envelope", "store"):
                return self._answer(404, {"detail": "unknown endpoint"})
            if parts[1] != str(receiver.project_id):
                return self._answer(404, {"detail": "unknown project"})
            if not self._authorized(parsed.query):
                receiver.rejected += 1
                return self._answer(401, {"detail": "missing or wrong sentry_key"})
            scripted = receiver._next_response()
            if scripted.delay:
                time.sleep(scripted.delay)
            if not 200 <= scripted.status < 300:
                return self._answer(scripted.status, {"detail": "scripted"}, scripted.headers)
            try:
                raw = _decode(body, self.headers.get("Content-Encoding", ""))
                envelope = (
                    Envelope.deserialize(raw) if parts[2] == "envelope" else _store_to_envelope(raw)
                )
            except Exception as exc:
                receiver.rejected += 1
                return self._answer(400, {"detail": f"bad envelope: {type(exc).__name__}"})
            receiver._keep(envelope, raw)
            event_id = (envelope.headers or {}).get("event_id") or uuid.uuid4().hex
            # A scripted 2xx keeps its headers: Sentry sends X-Sentry-Rate-Limits on a 200 too.
            return self._answer(scripted.status, {"id": event_id}, scripted.headers)

        def _authorized(self, query: str) -> bool:
            auth = self.headers.get("X-Sentry-Auth", "")
            fields = dict(
                part.strip().split("=", 1)
                for part in auth.removeprefix("Sentry ").split(",")
                if "=" in part
            )
            key = fields.get("sentry_key") or (parse_qs(query).get("sentry_key") or [""])[0]
            return key == receiver.public_key

        def _answer(
            self, status: int, body: dict[str, Any], headers: Mapping[str, str] = {}
        ) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            try:
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                # The client gave up (timed out, or was killed): nobody to answer.
                self.close_connection = True

    return Handler


def _decode(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding in ("", "identity"):
        return body
    raise ValueError(f"unsupported Content-Encoding {encoding!r}")


def _store_to_envelope(raw: bytes) -> Envelope:
    from sentry_sdk.envelope import Item, PayloadRef

    event = json.loads(raw)
    item_type = "transaction" if event.get("type") == "transaction" else "event"
    return Envelope(
        headers={"event_id": event.get("event_id")},
        items=[Item(payload=PayloadRef(json=event), type=item_type)],
    )
