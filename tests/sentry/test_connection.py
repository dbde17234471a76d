"""EnvelopeConnection against real sockets: the receiver, and a scripted raw TCP server."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Callable

import pytest
from sentry_sdk.consts import EndpointType
from sentry_sdk.utils import Dsn

from otel_sentry_biz.receiver import LocalReceiver
from otel_sentry_biz.sentry.connection import EnvelopeConnection, ProtocolError

Script = Callable[[socket.socket, bytes], None]


@contextmanager
def raw_server(*scripts: Script) -> Iterator[tuple[str, list[bytes]]]:
    """Accept one connection per script; each script reads a request and answers raw bytes."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    requests: list[bytes] = []

    def serve() -> None:
        for script in scripts:
            conn, _ = listener.accept()
            with conn:
                script(conn, _read_request(conn, requests))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/api/1/envelope/", requests
    finally:
        listener.close()
        thread.join(timeout=5)


def _read_request(conn: socket.socket, requests: list[bytes]) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += conn.recv(65536)
    requests.append(head + b"\r\n\r\n" + body)
    return body


def answer(raw: bytes) -> Script:
    return lambda conn, body: conn.sendall(raw)


def test_posts_to_the_receiver_over_one_kept_alive_connection() -> None:
    with LocalReceiver() as receiver:
        dsn = Dsn(receiver.dsn)
        connection = EnvelopeConnection(
            dsn.to_auth().get_api_url(EndpointType.ENVELOPE),
            {"X-Sentry-Auth": f"Sentry sentry_key={dsn.public_key}, sentry_version=7"},
        )
        envelope = b'{"event_id":"%s"}\n{"type":"event"}\n{"message":"hi"}\n'
        for n in range(3):
            body = envelope % (b"%032x" % n)
            assert connection.post(body).status == 200
        connection.close()
        assert [e["message"] for e in receiver.events("event")] == ["hi"] * 3
        assert receiver.requests == 3


def test_reads_content_length_chunked_and_close_delimited_answers() -> None:
    chunked = (
        b"HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\n"
        b"Retry-After: 7\r\n\r\n4\r\nslow\r\n5;x=y\r\n down\r\n0\r\n\r\n"
    )
    close_delimited = b"HTTP/1.0 500 Oops\r\nX-Sentry-Rate-Limits: 60:transaction\r\n\r\nbroken"
    with raw_server(
        answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}" + chunked),
        answer(close_delimited),
    ) as (url, requests):
        connection = EnvelopeConnection(url, {"X-Sentry-Auth": "Sentry sentry_key=k"})
        first = connection.post(b"one")
        assert (first.status, first.body) == (200, b"{}")
        # The chunked answer came on the same kept-alive connection, already buffered.
        second = connection.post(b"two")
        assert (second.status, second.body, second.headers["retry-after"]) == (
            429,
            b"slow down",
            "7",
        )
        third = connection.post(b"three", content_encoding="gzip")
        assert third.status == 500 and third.body == b"broken"
        assert third.headers["x-sentry-rate-limits"] == "60:transaction"
    assert requests[0].endswith(b"one") and b"X-Sentry-Auth: Sentry sentry_key=k" in requests[0]
    assert b"Content-Encoding: gzip" in requests[1] and b"Content-Encoding" not in requests[0]


def test_a_connection_the_server_dropped_while_idle_is_retried_once() -> None:
    def answer_then_close(conn: socket.socket, body: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        # The server keeps nothing open: the next request finds the connection closed.

    with raw_server(answer_then_close, answer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")) as (
        url,
        requests,
    ):
        connection = EnvelopeConnection(url, {})
        assert connection.post(b"first").status == 200
        assert connection.post(b"second").status == 200
    assert [r.rsplit(b"\r\n\r\n", 1)[1] for r in requests] == [b"first", b"second"]


def test_garbage_answers_raise_and_close_the_connection() -> None:
    with raw_server(answer(b"SSH-2.0-OpenSSH\r\n\r\n")) as (url, _):
        connection = EnvelopeConnection(url, {})
        with pytest.raises(ProtocolError, match="status line"):
            connection.post(b"x")


def test_a_silent_server_times_out() -> None:
    release = threading.Event()
    with raw_server(lambda conn, body: release.wait(5)) as (url, _):
        connection = EnvelopeConnection(url, {}, timeout=0.2)
        with pytest.raises(TimeoutError):
            connection.post(b"x")
        release.set()


def test_refused_connection_raises_oserror() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    connection = EnvelopeConnection(f"http://127.0.0.1:{port}/api/1/envelope/", {})
    with pytest.raises(ConnectionRefusedError):
        connection.post(b"x")


def test_rejects_urls_it_cannot_speak_to() -> None:
    with pytest.raises(ValueError, match="http"):
        EnvelopeConnection("ftp://127.0.0.1/x", {})
