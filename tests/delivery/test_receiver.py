"""LocalReceiver over real HTTP: authentication, encodings, scripted answers, storage, restart."""

from __future__ import annotations

import gzip
import http.client
import json
import time
import zlib
from pathlib import Path
from typing import Optional

import pytest
from sentry_sdk.envelope import Envelope

from otel_sentry_biz.receiver import LocalReceiver
from otel_sentry_biz.sentry import envelopes
from otel_sentry_biz.sentry.sender import SEND_ERROR
from tests.delivery.helpers import (
    RecordingReceiver,
    error_event,
    errors,
    eventually,
    put_all,
    transaction_event,
)

ENCODERS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "identity": lambda raw: raw,
    "": lambda raw: raw,
}


def envelope_bytes(event: Optional[dict] = None) -> bytes:
    return envelopes.serialize(envelopes.build_envelope(event or error_event()))


def post(
    receiver: LocalReceiver,
    body: bytes,
    *,
    encoding: str = "gzip",
    key: Optional[str] = "receiver's",
    path: Optional[str] = None,
    connection: Optional[http.client.HTTPConnection] = None,
) -> tuple[int, dict[str, str], dict]:
    """POST ``body`` (encoded as ``encoding``) over a real socket; status, headers, JSON."""
    headers = {"Content-Type": "application/x-sentry-envelope"}
    if encoding:
        headers["Content-Encoding"] = encoding
    if key is not None:
        key = receiver.public_key if key == "receiver's" else key
        headers["X-Sentry-Auth"] = f"Sentry sentry_key={key}, sentry_version=7"
    own = connection is None
    connection = connection or http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=5)
    try:
        connection.request(
            "POST",
            path or f"/api/{receiver.project_id}/envelope/",
            body=ENCODERS.get(encoding, lambda raw: raw)(body),
            headers=headers,
        )
        response = connection.getresponse()
        payload = json.loads(response.read() or b"{}")
        return response.status, {k.lower(): v for k, v in response.getheaders()}, payload
    finally:
        if own:
            connection.close()


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "identity", ""])
def test_envelopes_are_accepted_gzipped_deflated_or_plain(
    receiver: RecordingReceiver, encoding: str
) -> None:
    event = error_event("plain or not")
    status, _, answer = post(receiver, envelope_bytes(event), encoding=encoding)
    assert status == 200
    assert answer == {"id": event["event_id"]}
    assert receiver.events() == [event]
    assert receiver.events("event") == [event]
    assert receiver.events("transaction") == []
    assert receiver.requests == 1
    assert receiver.rejected == 0


def test_a_transaction_is_kept_as_a_transaction(receiver: RecordingReceiver) -> None:
    event = transaction_event()
    assert post(receiver, envelope_bytes(event))[0] == 200
    assert receiver.events("transaction") == [event]
    assert receiver.events("event") == []


@pytest.mark.parametrize(
    ("body", "encoding"),
    [(b"not gzip at all", "gzip"), (envelope_bytes(), "br"), (b"\xff\xfe{{{", "identity")],
)
def test_unreadable_bodies_are_rejected(
    receiver: RecordingReceiver, body: bytes, encoding: str
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=5)
    connection.request(  # sent as is: the claimed encoding (or the envelope) is a lie
        "POST",
        f"/api/{receiver.project_id}/envelope/",
        body=body,
        headers={
            "Content-Encoding": encoding,
            "X-Sentry-Auth": f"Sentry sentry_key={receiver.public_key}",
        },
    )
    response = connection.getresponse()
    assert response.status == 400
    assert "bad envelope" in json.loads(response.read())["detail"]
    connection.close()
    assert receiver.rejected == 1
    assert receiver.envelopes == []


def test_a_wrong_or_missing_public_key_is_rejected_and_counted(
    receiver: RecordingReceiver,
) -> None:
    status, _, answer = post(receiver, envelope_bytes(), key="0" * 32)
    assert status == 401
    assert "sentry_key" in answer["detail"]
    assert post(receiver, envelope_bytes(), key=None)[0] == 401
    assert receiver.rejected == 2
    assert receiver.envelopes == []
    # the key may also come as a query parameter, as Sentry allows
    path = f"/api/{receiver.project_id}/envelope/?sentry_key={receiver.public_key}"
    assert post(receiver, envelope_bytes(), key=None, path=path)[0] == 200
    assert len(receiver.events()) == 1
    assert receiver.rejected == 2


def test_a_sender_with_the_wrong_key_gets_its_events_dropped(
    receiver: RecordingReceiver, make_sender
) -> None:
    wrong = f"http://{'f' * 32}@127.0.0.1:{receiver.port}/{receiver.project_id}"
    sender, outbox = make_sender(dsn=wrong)
    put_all(outbox, sender, errors(2))
    assert sender.flush(5.0)
    assert eventually(lambda: receiver.rejected >= 2)
    assert receiver.events() == []
    assert sender.stats()["dropped"] == {f"{SEND_ERROR}:error": 2}
    assert "HTTP 401" in sender.stats()["last_error"]


@pytest.mark.parametrize(
    "path", ["/api/999/envelope/", "/api/1/unknown/", "/envelope/", "/api/1/envelope/extra/"]
)
def test_unknown_endpoints_and_projects_are_404(receiver: RecordingReceiver, path: str) -> None:
    assert post(receiver, envelope_bytes(), path=path)[0] == 404
    assert receiver.requests == 0
    assert receiver.envelopes == []


def test_the_store_endpoint_takes_a_plain_event(receiver: RecordingReceiver) -> None:
    event = error_event("old-style store")
    body = json.dumps(event).encode()
    status, _, answer = post(receiver, body, path=f"/api/{receiver.project_id}/store/")
    assert status == 200
    assert answer == {"id": event["event_id"]}
    assert receiver.events("event") == [event]


def test_scripted_answers_then_200_again(receiver: RecordingReceiver) -> None:
    receiver.respond_with(503, {"Retry-After": "7"}, times=2)
    receiver.respond_with(429, {"X-Sentry-Rate-Limits": "60:transaction"})
    answers = [post(receiver, envelope_bytes()) for _ in range(4)]
    assert [status for status, _, _ in answers] == [503, 503, 429, 200]
    assert answers[0][1]["retry-after"] == "7"
    assert answers[2][1]["x-sentry-rate-limits"] == "60:transaction"
    assert "retry-after" not in answers[3][1]
    assert len(receiver.envelopes) == 1  # scripted failures keep nothing
    assert receiver.requests == 4


@pytest.mark.parametrize("status", [200, 202])
def test_a_scripted_success_keeps_the_envelope_and_its_headers(
    receiver: RecordingReceiver, status: int
) -> None:
    receiver.respond_with(status, {"X-Sentry-Rate-Limits": "60:transaction:organization"})
    event = error_event()
    got, headers, answer = post(receiver, envelope_bytes(event))
    assert got == status
    assert headers["x-sentry-rate-limits"] == "60:transaction:organization"
    assert answer == {"id": event["event_id"]}
    assert receiver.events() == [event]


def test_a_scripted_delay_holds_the_answer(receiver: RecordingReceiver) -> None:
    receiver.respond_with(200, delay=0.3)
    started = time.monotonic()
    assert post(receiver, envelope_bytes())[0] == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    assert post(receiver, envelope_bytes())[0] == 200
    assert time.monotonic() - started < 0.3


def test_store_dir_keeps_every_envelope_in_its_own_file(tmp_path: Path) -> None:
    store = tmp_path / "store"
    sent = [error_event("one"), transaction_event(), error_event("three")]
    with LocalReceiver(store_dir=store) as receiver:
        for event in sent[:2]:
            assert post(receiver, envelope_bytes(event))[0] == 200
        first_two = {p.name: p.read_bytes() for p in store.iterdir()}
        receiver.clear()  # forget what arrived, but never overwrite what was stored
        assert receiver.envelopes == []
        assert post(receiver, envelope_bytes(sent[2]), encoding="identity")[0] == 200
    files = sorted(store.iterdir())
    assert [f.name for f in files] == ["000001.envelope", "000002.envelope", "000003.envelope"]
    for name, content in first_two.items():
        assert (store / name).read_bytes() == content
    for path, event in zip(files, sent):
        stored = Envelope.deserialize(path.read_bytes())  # decoded, as Sentry would read it
        assert stored.headers["event_id"] == event["event_id"]
        assert stored.items[0].payload.json == event


def test_without_store_dir_nothing_is_written(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with LocalReceiver() as receiver:
        assert post(receiver, envelope_bytes())[0] == 200
    assert list(tmp_path.iterdir()) == []


def test_stop_closes_kept_alive_connections_and_start_reopens_the_same_port(
    receiver: RecordingReceiver,
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=2)
    assert post(receiver, envelope_bytes(), connection=connection)[0] == 200
    port, dsn = receiver.port, receiver.dsn
    receiver.stop()
    with pytest.raises((http.client.HTTPException, OSError)):
        post(receiver, envelope_bytes(), connection=connection)  # the same kept-alive socket
    with pytest.raises(OSError):
        post(receiver, envelope_bytes())
    assert len(receiver.envelopes) == 1
    receiver.start()
    assert (receiver.port, receiver.dsn) == (port, dsn)
    assert post(receiver, envelope_bytes())[0] == 200
    assert len(receiver.envelopes) == 2
    receiver.stop()
    receiver.stop()  # idempotent


def test_wait_for_gives_up_after_its_timeout(receiver: RecordingReceiver) -> None:
    started = time.monotonic()
    assert receiver.wait_for(lambda r: len(r.events()) > 0, timeout=0.2) is False
    assert 0.2 <= time.monotonic() - started < 1.0
    assert post(receiver, envelope_bytes())[0] == 200
    assert receiver.wait_for(lambda r: len(r.events()) > 0, timeout=0.2) is True


def test_client_reports_are_read_back(receiver: RecordingReceiver) -> None:
    import datetime

    report = envelopes.client_report_envelope(
        {("queue_overflow", "transaction"): 4},
        datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
    )
    assert post(receiver, envelopes.serialize(report))[0] == 200
    assert receiver.client_reports() == [
        {
            "timestamp": "2024-01-02T03:04:05.000000Z",
            "discarded_events": [
                {"reason": "queue_overflow", "category": "transaction", "quantity": 4}
            ],
        }
    ]
    assert receiver.events() == []
