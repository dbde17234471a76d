"""One keep-alive HTTP/1.1 connection that POSTs envelopes and reads Sentry's short answers.

Why not urllib3 or ``http.client``: Sentry takes one transaction per envelope, so a busy app
makes one request per traced request, and on this path those clients spend 200-400 µs of CPU
per request building headers and parsing the answer through the ``email`` package
(``benchmarks/pipeline_overhead.py`` shows it). A request here is one pre-built byte string
and one ``sendall``; the answer is parsed with a few ``bytes`` operations. It speaks exactly
the HTTP/1.1 subset Sentry's ingestion uses: POST, ``Content-Length`` or chunked answers,
keep-alive, TLS with certifi's roots (the bundle sentry-sdk already depends on).

Several requests may be written before their answers are read (HTTP/1.1 pipelining,
:meth:`EnvelopeConnection.post_all`): one system call and one wake-up for a window of
envelopes instead of one each, and one round trip to a far-away Sentry instead of one per
envelope. Whether the server really serves pipelined requests is the sender's to judge from
what comes back (:class:`Exchange`).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Optional
from urllib.parse import urlsplit

_MAX_HEAD = 64 * 1024
_MAX_BODY = 1024 * 1024


class ProtocolError(ConnectionError):
    """The server's answer was not HTTP/1.x we can read; the connection is closed."""


@dataclass(frozen=True)
class Answer:
    """Status, headers (names lower-cased) and body of one response."""

    status: int
    headers: Mapping[str, str]
    body: bytes


#: One request: the body and its ``Content-Encoding`` (None: sent as it is).
Request = tuple[bytes, Optional[str]]


class Exchange(NamedTuple):
    """What came back for a window of pipelined requests.

    ``answers`` are in request order. Fewer answers than requests means the rest were not
    taken: either the server closed the connection cleanly after its last answer
    (``Connection: close``; ``error`` is None) or reading stopped on ``error`` (reset,
    timeout, an unreadable answer); the connection is closed either way, and the unanswered
    requests may be sent again (envelopes are idempotent by event id).
    """

    answers: list[Answer]
    error: Optional[OSError] = None


class EnvelopeConnection:
    """POST bodies to one URL over a persistent connection, reconnecting when needed.

    >>> connection = EnvelopeConnection(url, {"X-Sentry-Auth": auth}, timeout=5.0)
    >>> connection.post(gzip_body).status
    200

    Not thread-safe: the sender thread owns it. Errors (refused, reset, timeout, unreadable
    answer) raise ``OSError`` subclasses and close the connection; the next ``post``
    reconnects.
    """

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        *,
        timeout: float = 5.0,
        ssl_context: Optional[ssl.SSLContext] = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self._tls = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._tls else 80)
        self._timeout = timeout
        self._ssl_context = ssl_context
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [f"POST {target} HTTP/1.1", f"Host: {parts.netloc.rpartition('@')[2]}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self._head = ("\r\n".join(lines) + "\r\n").encode("latin-1")
        self._sock: Optional[socket.socket] = None
        self._buffer = b""

    def post(self, body: bytes, *, content_encoding: Optional[str] = None) -> Answer:
        """Send ``body``; return the answer. A stale kept-alive connection is retried once."""
        exchange = self.post_all([(body, content_encoding)])
        if exchange.error is not None:
            raise exchange.error
        return exchange.answers[0]

    def post_all(self, requests: Sequence[Request]) -> Exchange:
        """Write all ``requests`` at once, then read their answers in order.

        A stale kept-alive connection (the server closed it while idle, so nothing at all is
        answered) is reconnected and the window written again, once. Errors other than
        ``OSError`` (bugs) close the connection and raise.
        """
        if not requests:
            return Exchange([])
        data = b"".join(self._request(body, encoding) for body, encoding in requests)
        reused = self._sock is not None
        exchange = self._exchange(data, len(requests))
        if reused and not exchange.answers and isinstance(exchange.error, _STALE):
            # The server closed an idle connection under us; a fresh one gets one more try.
            # Envelopes are idempotent by event id, so a resend can never duplicate an event.
            exchange = self._exchange(data, len(requests))
        return exchange

    @property
    def connected(self) -> bool:
        """Whether a connection is open (kept alive after the last answer)."""
        return self._sock is not None

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
                self._buffer = b""

    # -- internals ------------------------------------------------------------------------

    def _request(self, body: bytes, content_encoding: Optional[str]) -> bytes:
        head = self._head
        if content_encoding:
            head += b"Content-Encoding: %s\r\n" % content_encoding.encode("latin-1")
        return b"%sContent-Length: %d\r\n\r\n%s" % (head, len(body), body)

    def _exchange(self, data: bytes, count: int) -> Exchange:
        answers: list[Answer] = []
        try:
            sock = self._sock or self._connect()
            sock.sendall(data)
            while len(answers) < count:
                answer, keep_alive = self._read_answer(sock)
                answers.append(answer)
                if not keep_alive:
                    break  # the server takes nothing more on this connection
        except OSError as error:
            self.close()
            return Exchange(answers, error)
        except BaseException:
            self.close()
            raise
        if not keep_alive:  # answered all, or stopped early by the server's close
            self.close()
        return Exchange(answers)

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self._host, self._port), timeout=self._timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tls:
            context = self._ssl_context or _default_ssl_context()
            sock = context.wrap_socket(sock, server_hostname=self._host)
        self._sock = sock
        self._buffer = b""
        return sock

    def _read_answer(self, sock: socket.socket) -> tuple[Answer, bool]:
        head = self._read_until(sock, b"\r\n\r\n", _MAX_HEAD)
        status_line, _, header_block = head.partition(b"\r\n")
        version, _, rest = status_line.partition(b" ")
        if not version.startswith(b"HTTP/1.") or not rest[:3].isdigit():
            raise ProtocolError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
        status = int(rest[:3])
        headers: dict[str, str] = {}
        for line in header_block.split(b"\r\n"):
            name, sep, value = line.partition(b":")
            if sep:
                headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        connection = headers.get("connection", "").lower()
        # HTTP/1.1 keeps the connection unless told otherwise; HTTP/1.0 only when told so.
        http10 = version == b"HTTP/1.0"
        keep_alive = connection == "keep-alive" if http10 else connection != "close"
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = self._read_chunked(sock)
        elif "content-length" in headers:
            body = self._read_exactly(sock, _content_length(headers["content-length"]))
        elif status in (204, 304) or 100 <= status < 200:
            body = b""
        else:  # length given by the server closing the connection
            body, keep_alive = self._read_to_close(sock), False
        return Answer(status, headers, body), keep_alive

    def _fill(self, sock: socket.socket) -> None:
        chunk = sock.recv(65536)
        if not chunk:
            raise _ClosedBeforeAnswer("the server closed the connection")
        self._buffer += chunk

    def _read_until(self, sock: socket.socket, marker: bytes, limit: int) -> bytes:
        while True:
            found = self._buffer.find(marker)
            if found >= 0:
                data, self._buffer = self._buffer[:found], self._buffer[found + len(marker) :]
                return data
            if len(self._buffer) > limit:
                raise ProtocolError(f"answer header longer than {limit} bytes")
            self._fill(sock)

    def _read_exactly(self, sock: socket.socket, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill(sock)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _read_chunked(self, sock: socket.socket) -> bytes:
        parts = []
        while True:
            size_line = self._read_until(sock, b"\r\n", 1024)
            try:
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size {size_line[:20]!r}") from None
            if size < 0:
                raise ProtocolError(f"bad chunk size {size_line[:20]!r}")
            if size == 0:
                self._read_until(sock, b"\r\n", _MAX_HEAD)  # trailers, if any, end blank
                return b"".join(parts)
            if sum(map(len, parts)) + size > _MAX_BODY:
                raise ProtocolError("chunked answer too large")
            parts.append(self._read_exactly(sock, size))
            self._read_exactly(sock, 2)

    def _read_to_close(self, sock: socket.socket) -> bytes:
        data = self._buffer
        self._buffer = b""
        while len(data) <= _MAX_BODY:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
        raise ProtocolError("answer too large")


class _ClosedBeforeAnswer(ConnectionError):
    pass


_STALE = (ConnectionResetError, BrokenPipeError, _ClosedBeforeAnswer)


def _content_length(value: str) -> int:
    if not value.isdigit() or int(value) > _MAX_BODY:
        raise ProtocolError(f"unusable Content-Length {value[:20]!r}")
    return int(value)


_SSL_CONTEXT: Optional[ssl.SSLContext] = None


def _default_ssl_context() -> ssl.SSLContext:
    global _SSL_CONTEXT
    if _SSL_CONTEXT is None:
        try:
            import certifi

            _SSL_CONTEXT = ssl.create_default_context(cafile=certifi.where())
        except ImportError:  # pragma: no cover - certifi comes with sentry-sdk
            _SSL_CONTEXT = ssl.create_default_context()
    return _SSL_CONTEXT
