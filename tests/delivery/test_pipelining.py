"""Pipelined delivery: several envelopes written before their answers are read.

The sender pipelines over its one kept-alive connection, in windows that grow while
everything is delivered. These tests run it against a raw HTTP/1.1 server on 127.0.0.1 that
sees exactly how the requests arrive (several in one read means they were pipelined) and
that can be told to behave like the servers that do not serve pipelining: ones that answer
the first request of a read and discard the rest, ones that refuse the rest with 400, and
ones that close the connection after a few answers. Whatever the server does, every
envelope must arrive, once, and nothing may be dropped as refused because of pipelining.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any, Callable

import pytest

from otel_sentry_biz.sentry.outbox import MemoryOutbox
from otel_sentry_biz.sentry.sender import EnvelopeSender
from tests.delivery.helpers import errors, put_all, transactions

SENDER_LOG = "otel_sentry_biz.sentry.sender"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
REFUSED = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\n\r\nbad request"
RATE_LIMITED = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 0\r\nContent-Length: 0\r\n\r\n"
#: Given the requests that arrived in one read (one or more), answer: the raw answers to
#: send, in order, for the first ones; requests left without an answer are discarded.
Policy = Callable[[list[bytes]], list[bytes]]


def serve_all(requests: list[bytes]) -> list[bytes]:
    return [OK] * len(requests)


def first_only(requests: list[bytes]) -> list[bytes]:
    """A server that reads one request per read and drops what came with it."""
    return [OK]


def refuse_the_rest(requests: list[bytes]) -> list[bytes]:
    """A proxy that refuses pipelined requests with 400."""
    return [OK] + [REFUSED] * (len(requests) - 1)


class RawSentry:
    """An HTTP/1.1 server that records how requests arrive and answers as ``policy`` says.

    ``kept`` counts the event ids it answered 200 (what Sentry would have stored);
    ``reads`` holds how many requests each read of a socket held.
    """

    def __init__(self, policy: Policy = serve_all, *, close_after: int = 0) -> None:
        self.policy = policy
        self.close_after = close_after  # answer "Connection: close" after this many
        self.kept: Counter[str] = Counter()
        self.reads: list[int] = []
        self.posted: list[list[str]] = []  # the event ids of each read, in order
        self.connections = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.dsn = f"http://key@127.0.0.1:{self._listener.getsockname()[1]}/1"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer, answered = b"", 0
        with conn:
            while True:
                try:
                    chunk = conn.recv(1 << 20)
                except OSError:
                    return
                if not chunk:
                    return
                buffer += chunk
                requests, buffer = _split_requests(buffer)
                if not requests:
                    continue
                answers = self.policy(requests)
                buffer = b"" if len(answers) < len(requests) else buffer
                with self._lock:
                    self.reads.append(len(requests))
                    self.posted.append([_event_id(request) for request in requests])
                out = []
                for request, raw in zip(requests, answers):
                    answered += 1
                    if raw == OK and _event_id(request):
                        with self._lock:
                            self.kept[_event_id(request)] += 1
                    if self.close_after and answered == self.close_after:
                        out.append(raw.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1))
                        conn.sendall(b"".join(out))
                        return
                    out.append(raw)
                conn.sendall(b"".join(out))


def _split_requests(buffer: bytes) -> tuple[list[bytes], bytes]:
    """The complete requests' bodies at the start of ``buffer``, and what is left of it."""
    bodies = []
    while b"\r\n\r\n" in buffer:
        head, _, rest = buffer.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        if len(rest) < length:
            break
        bodies.append(rest[:length])
        buffer = rest[length:]
    return bodies, buffer


def _event_id(body: bytes) -> str:
    """The envelope's event id; "" for a client report, the bytes for a plain body."""
    try:
        return json.loads(body.split(b"\n", 1)[0]).get("event_id", "")
    except ValueError:  # not an envelope: the connection tests post plain bytes
        return body.decode("latin-1")


@pytest.fixture
def start() -> Iterator[Callable[..., tuple[RawSentry, EnvelopeSender, MemoryOutbox]]]:
    made: list[tuple[RawSentry, EnvelopeSender]] = []

    def make(
        policy: Policy = serve_all, close_after: int = 0, **options: Any
    ) -> tuple[RawSentry, EnvelopeSender, MemoryOutbox]:
        server = RawSentry(policy, close_after=close_after)
        outbox = MemoryOutbox()
        settings: dict[str, Any] = {
            "timeout": 0.5,
            "backoff_base": 0.01,
            "backoff_cap": 0.05,
            "client_report_interval": 3600.0,
            **options,
        }
        sender = EnvelopeSender(server.dsn, outbox, **settings)
        made.append((server, sender))
        return server, sender, outbox

    yield make
    for server, sender in made:
        sender.shutdown(timeout=0.3)
        server.close()


def deliver(sender: EnvelopeSender, outbox: MemoryOutbox, count: int) -> list[str]:
    """Queue ``count`` envelopes before the sender starts (a backlog), deliver them."""
    entries = errors(count // 2) + transactions(count - count // 2)
    put_all(outbox, sender, entries)
    sender.start()
    assert sender.flush(10.0), sender.stats()
    return [entry.event_id for entry in entries]


def test_a_backlog_goes_pipelined_in_windows_that_grow_to_the_depth(start: Callable) -> None:
    server, sender, outbox = start(pipeline_depth=8)
    sent = deliver(sender, outbox, 60)
    assert server.kept == Counter(sent)  # each once
    # Windows of 1, 2, 4, then 8 requests arrived in one read each.
    assert server.reads[:4] == [1, 2, 4, 8]
    assert max(server.reads) == 8
    assert server.connections == 1
    stats = sender.stats()
    assert stats["pipeline_depth"] == 8
    assert stats["sent"] == {"error": 30, "transaction": 30}


def test_depth_one_sends_one_request_at_a_time(start: Callable) -> None:
    server, sender, outbox = start(pipeline_depth=1)
    sent = deliver(sender, outbox, 20)
    assert server.kept == Counter(sent)
    assert set(server.reads) == {1}


@pytest.mark.parametrize("policy", [first_only, refuse_the_rest], ids=["discards", "refuses"])
def test_a_server_that_does_not_serve_pipelining_still_gets_everything_once(
    start: Callable, policy: Policy, caplog: pytest.LogCaptureFixture
) -> None:
    server, sender, outbox = start(policy, pipeline_depth=8)
    with caplog.at_level(logging.INFO, logger=SENDER_LOG):
        sent = deliver(sender, outbox, 12)
    assert server.kept == Counter(sent)  # nothing lost, nothing twice
    stats = sender.stats()
    assert stats["pipeline_depth"] == 1
    assert stats["dropped"] == {}  # a 400 to a pipelined request is not Sentry's "never"
    assert "does not serve pipelined requests" in caplog.text
    # It found out on its first window of two; one at a time from then on.
    assert server.reads[:2] == [1, 2] and set(server.reads[2:]) == {1}


def test_a_server_closing_after_a_few_answers_loses_nothing_and_keeps_pipelining(
    start: Callable,
) -> None:
    server, sender, outbox = start(close_after=5, pipeline_depth=8)
    sent = deliver(sender, outbox, 40)
    assert server.kept == Counter(sent)
    assert server.connections >= 8  # a new connection after every fifth answer
    assert sender.stats()["pipeline_depth"] == 8
    assert sender.stats()["last_error"] is None  # a clean close is no failure


def test_a_late_refusal_goes_again_alone_and_is_dropped_only_then(start: Callable) -> None:
    """Even once pipelining was seen working (a proxy in between may change its mind), a
    4xx to a later request of a window is only Sentry's "never" when it was sent alone."""
    refuse = set()

    def refuse_one(requests: list[bytes]) -> list[bytes]:
        return [REFUSED if _event_id(body) in refuse else OK for body in requests]

    server, sender, outbox = start(refuse_one, pipeline_depth=4)
    first = deliver(sender, outbox, 12)
    bad, *good = transactions(4)
    refuse.add(bad.event_id)
    put_all(outbox, sender, [*good[:2], bad, good[2]])
    assert sender.flush(5.0)
    assert server.kept == Counter(first + [entry.event_id for entry in good])  # each once
    assert [ids for ids in server.posted if bad.event_id in ids][-1] == [bad.event_id]
    stats = sender.stats()
    assert stats["dropped"] == {"send_error:transaction": 1}
    assert stats["pipeline_depth"] == 4


def test_a_server_error_in_a_window_that_ends_pipelining_still_backs_off(
    start: Callable,
) -> None:
    failing = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
    windows = []

    def fail_then_refuse_the_rest(requests: list[bytes]) -> list[bytes]:
        windows.append(len(requests))
        if len(windows) == 2:  # the first window of two: a 503, and the pipelined one refused
            return [failing, REFUSED]
        return [OK] * len(requests)

    server, sender, outbox = start(fail_then_refuse_the_rest, pipeline_depth=8)
    sent = deliver(sender, outbox, 6)
    assert windows[:2] == [1, 2]
    assert server.kept == Counter(sent)
    stats = sender.stats()
    assert stats["pipeline_depth"] == 1
    assert stats["dropped"] == {}
    assert "HTTP 503" in stats["last_error"]  # it backed off, as for any 5xx


def test_a_silent_window_is_a_failure_not_a_verdict_on_pipelining(start: Callable) -> None:
    """No answer at all (Sentry slow, a network blip) says nothing about pipelining."""
    silenced = []

    def silent_once(requests: list[bytes]) -> list[bytes]:
        if len(requests) > 1 and not silenced:
            silenced.append(len(requests))
            return []  # read, never answered: the sender times out
        return [OK] * len(requests)

    server, sender, outbox = start(silent_once, pipeline_depth=8)
    sent = deliver(sender, outbox, 24)
    assert silenced == [2]
    assert server.kept == Counter(sent)
    assert sender.stats()["pipeline_depth"] == 8
    assert max(server.reads) == 8  # pipelining went on once it answered again


def test_a_server_closing_after_every_answer_gets_no_request_in_vain(start: Callable) -> None:
    server, sender, outbox = start(close_after=1, pipeline_depth=8)
    sent = deliver(sender, outbox, 12)
    assert server.kept == Counter(sent)
    assert sum(server.reads) == 12  # the window never grows on a connection that closes


def test_a_rate_limit_answer_brings_the_window_back_to_one(start: Callable) -> None:
    """A refusing Sentry gets one request per pause, as without pipelining."""
    limited_once: set[str] = set()

    def limit_once(requests: list[bytes]) -> list[bytes]:
        answers = []
        for body in requests:
            event_id = _event_id(body)
            answers.append(RATE_LIMITED if event_id in limited_once else OK)
            limited_once.discard(event_id)
        return answers

    server, sender, outbox = start(limit_once, pipeline_depth=8)
    first = deliver(sender, outbox, 31)
    assert server.reads == [1, 2, 4, 8, 8, 8]  # the window has grown to the depth
    later = transactions(16)
    limited_once.add(later[0].event_id)
    put_all(outbox, sender, later)
    assert sender.flush(5.0)
    # The 429 came in a window with others (delivered); the limited envelope then went
    # again alone: the window was back to one.
    limited = later[0].event_id
    tries = [index for index, ids in enumerate(server.posted) if limited in ids]
    assert len(tries) == 2
    assert len(server.posted[tries[0]]) > 1 and server.posted[tries[1]] == [limited]
    assert server.kept == Counter(first + [entry.event_id for entry in later])


def test_the_connection_writes_a_window_at_once_and_reads_answers_in_order() -> None:
    from otel_sentry_biz.sentry.connection import EnvelopeConnection

    answers = [b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n%d" % n for n in range(3)]
    server = RawSentry(lambda requests: answers[: len(requests)])
    try:
        connection = EnvelopeConnection(server.dsn.replace("key@", "") + "/", {}, timeout=2.0)
        exchange = connection.post_all([(b"a", None), (b"b", "gzip"), (b"c", None)])
        assert exchange.error is None
        assert [answer.body for answer in exchange.answers] == [b"0", b"1", b"2"]
        assert server.reads == [3]
        connection.close()
    finally:
        server.close()


def test_the_connection_reports_answers_read_before_the_server_went_silent() -> None:
    from otel_sentry_biz.sentry.connection import EnvelopeConnection

    server = RawSentry(first_only)
    try:
        connection = EnvelopeConnection(server.dsn.replace("key@", "") + "/", {}, timeout=0.3)
        exchange = connection.post_all([(b"a", None), (b"b", None)])
        assert [answer.status for answer in exchange.answers] == [200]
        assert isinstance(exchange.error, socket.timeout)
    finally:
        server.close()


@pytest.mark.parametrize(("variable", "pipelined"), [(None, True), ("1", False)])
def test_the_exporter_pipelines_unless_its_variable_says_1(
    monkeypatch: pytest.MonkeyPatch, variable: Any, pipelined: bool
) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_sentry_biz.sentry.exporter import SentrySpanExporter

    if variable is None:
        monkeypatch.delenv("OTEL_SENTRY_BIZ_PIPELINE_DEPTH", raising=False)
    else:
        monkeypatch.setenv("OTEL_SENTRY_BIZ_PIPELINE_DEPTH", variable)
    server = RawSentry()
    finished = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(finished))
    for n in range(30):
        with provider.get_tracer("t").start_as_current_span(f"job {n}"):
            pass
    exporter = SentrySpanExporter(dsn=server.dsn)
    try:
        exporter.export(finished.get_finished_spans())  # 30 transactions queued at once: a backlog
        assert exporter.force_flush(5000)
        assert sum(server.kept.values()) == 30
        assert (max(server.reads) > 1) is pipelined
    finally:
        exporter.shutdown()
        server.close()


def test_a_depth_below_one_fails_at_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from otel_sentry_biz.config import ConfigError, Settings

    with pytest.raises(ConfigError, match=r"OTEL_SENTRY_BIZ_PIPELINE_DEPTH.*positive integer"):
        Settings.load({"OTEL_SENTRY_BIZ_PIPELINE_DEPTH": "0"})


@pytest.mark.parametrize(("depth", "pipelined"), [(8, True), (1, False)])
def test_outbox_flush_sends_a_backlog_at_the_depth_it_is_given(
    tmp_path: Any, depth: int, pipelined: bool
) -> None:
    import io

    from otel_sentry_biz.sentry import outbox_command
    from otel_sentry_biz.sentry.sqlite_outbox import SQLiteOutbox

    server = RawSentry()
    outbox = SQLiteOutbox(str(tmp_path / "outbox.sqlite3"))
    entries = transactions(20)
    for entry in entries:
        outbox.put(entry)
    out = io.StringIO()
    try:
        status = outbox_command.flush(outbox, server.dsn, 10.0, out, pipeline_depth=depth)
    finally:
        outbox.close()
        server.close()
    assert status == 0, out.getvalue()
    assert "delivered 20 envelopes, 0 left" in out.getvalue()
    assert server.kept == Counter(entry.event_id for entry in entries)
    assert (max(server.reads) > 1) is pipelined
