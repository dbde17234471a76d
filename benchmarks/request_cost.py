"""CPU per envelope of POSTing envelopes to the local receiver, one at a time or pipelined.

    python benchmarks/request_cost.py                 # 2,000 envelopes, depths 1, 8 and 32
    python benchmarks/request_cost.py --depth 1 --depth 16

Sentry takes one transaction per envelope, so our sender makes one HTTP request per traced
request; on loopback the kernel's work for each request is billed to the sending process.
This measures that floor with plain sockets (no sender, no outbox): the real envelopes of
``pipeline_overhead.py``'s workload, sent over one kept-alive connection to
:class:`~otel_sentry_biz.receiver.LocalReceiver` (in a process of its own), ``depth`` requests
written before their answers are read (1: one at a time; more: HTTP/1.1 pipelining, what
the sender does while envelopes wait, in windows of up to ``OTEL_SENTRY_BIZ_PIPELINE_DEPTH``,
8 by default). Printed: thread CPU microseconds per envelope, best of
``--repeat`` passes per depth, the depths alternated.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conversion_cost import BATCH, make_spans, new_exporter
from pipeline_overhead import Receiver


class _Keep:
    """An outbox that keeps the payloads it is given."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []

    def put(self, entry: Any) -> bool:
        self.payloads.append(entry.payload)
        return True

    def __len__(self) -> int:
        return 0

    def take(self, max_items: int, skip: Any) -> list[Any]:
        return []

    def drops(self) -> dict[tuple[str, str], int]:
        return {}

    def take_unreported_drops(self) -> dict[tuple[str, str], int]:
        return {}


def envelopes(traces: int) -> list[bytes]:
    keep = _Keep()
    exporter = new_exporter(keep)
    spans = make_spans(traces)
    for start in range(0, len(spans), BATCH):
        exporter.export(spans[start : start + BATCH])
    return keep.payloads


def _request_head(dsn: str) -> tuple[str, int, bytes]:
    from sentry_sdk.consts import EndpointType
    from sentry_sdk.utils import Dsn

    parsed = Dsn(dsn)
    url = urlsplit(parsed.to_auth().get_api_url(EndpointType.ENVELOPE))
    head = (
        f"POST {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"X-Sentry-Auth: Sentry sentry_key={parsed.public_key}, sentry_version=7\r\n"
        "Content-Type: application/x-sentry-envelope\r\n"
    ).encode("latin-1")
    return url.hostname or "127.0.0.1", url.port or 80, head


def _read_answers(sock: socket.socket, count: int, buffer: bytes) -> bytes:
    """Read ``count`` answers (Content-Length bodies); return what is left over."""
    for _ in range(count):
        while b"\r\n\r\n" not in buffer:
            buffer += sock.recv(65536)
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(buffer) < length:
            buffer += sock.recv(65536)
        buffer = buffer[length:]
    return buffer


def cpu_per_envelope(dsn: str, payloads: list[bytes], depth: int) -> float:
    """Thread CPU microseconds per envelope, ``depth`` requests in flight at a time."""
    host, port, head = _request_head(dsn)
    requests = [b"%sContent-Length: %d\r\n\r\n%s" % (head, len(p), p) for p in payloads]
    with socket.create_connection((host, port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        left = b""
        started = time.thread_time()
        for start in range(0, len(requests), depth):
            chunk = requests[start : start + depth]
            sock.sendall(b"".join(chunk))
            left = _read_answers(sock, len(chunk), left)
        return (time.thread_time() - started) * 1e6 / len(requests)


def sender_cpu_per_envelope(dsn: str, payloads: list[bytes], depth: int) -> float:
    """CPU microseconds per envelope of :class:`EnvelopeSender`'s thread, ``pipeline_depth``.

    The envelopes are queued at once (a backlog: what a busy app leaves the sender), and it
    is never paced. Its thread's CPU comes from the OS's per-thread counters (psutil), which
    tick in 10 ms steps on Linux: use a few thousand envelopes.
    """
    import psutil

    from otel_sentry_biz.pacer import NeverRest
    from otel_sentry_biz.sentry.outbox import MemoryOutbox, OutboxEntry
    from otel_sentry_biz.sentry.sender import EnvelopeSender

    outbox = MemoryOutbox(max_bytes=2**31)
    sender = EnvelopeSender(dsn, outbox, pipeline_depth=depth, pacer=NeverRest())
    sender.start()
    thread_id = sender._thread.native_id  # type: ignore[union-attr]

    def thread_cpu() -> float:
        times = {t.id: t for t in psutil.Process().threads()}[thread_id]
        return times.user_time + times.system_time

    before = thread_cpu()
    for payload in payloads:
        event_id = json.loads(payload.split(b"\n", 1)[0])["event_id"]
        outbox.put(OutboxEntry.new(event_id, "transaction", payload))
    sender.notify()
    if not sender.flush(120.0):
        raise SystemExit(f"the sender did not deliver {len(payloads)} envelopes in 2 minutes")
    spent = thread_cpu() - before
    sender.shutdown(1.0)
    return spent * 1e6 / len(payloads)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envelopes", type=int, default=2000, help="envelopes per pass")
    parser.add_argument("--depth", type=int, action="append", help="requests in flight")
    parser.add_argument("--repeat", type=int, default=3, help="passes per depth; best kept")
    args = parser.parse_args()
    depths = args.depth or [1, 8, 32]
    payloads = envelopes(args.envelopes)
    receiver = Receiver("sentry")
    try:
        best = {depth: float("inf") for depth in depths}
        sender_best = {depth: float("inf") for depth in depths}
        for _ in range(args.repeat):
            for depth in depths:
                best[depth] = min(best[depth], cpu_per_envelope(receiver.endpoint, payloads, depth))
                sender_best[depth] = min(
                    sender_best[depth], sender_cpu_per_envelope(receiver.endpoint, payloads, depth)
                )
        received = receiver.settled_count(len(payloads) * 4 * len(depths) * args.repeat * 2)
    finally:
        receiver.close()
    size = sum(map(len, payloads)) // len(payloads)
    print(f"{len(payloads)} envelopes of {size:,} B on average, best of {args.repeat}")
    print("  in flight   plain sockets   EnvelopeSender's thread   (us CPU per envelope)")
    for depth, micros in best.items():
        print(f"  {depth:>9}   {micros:13.1f}   {sender_best[depth]:23.1f}")
    print(f"  (the receiver counted {received:,} spans)")
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    os._exit(status)  # the exporter that made the envelopes has nothing to flush at exit
