"""The durable outbox end to end: an app killed with SIGKILL loses nothing it had queued."""

from __future__ import annotations

import collections
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from otel_sentry_biz.receiver import LocalReceiver
from tests.e2e.conftest import BIN, clean_env
from tests.relay_oracle import assert_valid

pytestmark = pytest.mark.slow

PUBLIC_KEY = "0" * 32

APP = """
import sys, time
from opentelemetry.trace import SpanKind
import otel_sentry_biz as biz

pipeline = biz.configure(traces_sample_rate=1.0)
tracer = pipeline.tracer_provider.get_tracer("billing")
for n in range({requests}):
    with tracer.start_as_current_span("POST /invoices", kind=SpanKind.SERVER):
        with biz.context(work_request=f"WR-{{n}}"):
            with tracer.start_as_current_span("price"):
                pass
try:
    with tracer.start_as_current_span("POST /invoices", kind=SpanKind.SERVER):
        raise ValueError("unit price missing")
except ValueError:
    pass
pipeline.force_flush({flush_millis})
print("queued", flush=True)
time.sleep(60)  # the test kills us before this ends
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_app(tmp_path: Path, dsn: str, outbox: Path, **format_args: int) -> subprocess.Popen:
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent(APP.format(**format_args)))
    return subprocess.Popen(
        [sys.executable, str(app)],
        env=clean_env(SENTRY_DSN=dsn, OTEL_SENTRY_BIZ_OUTBOX=str(outbox)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "otel-sentry-biz"), *args],
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _kill(app: subprocess.Popen) -> None:
    os.kill(app.pid, signal.SIGKILL)
    app.wait(timeout=10)
    app.stdout.close()
    app.stderr.close()


def test_what_was_queued_while_sentry_was_down_survives_kill_9(tmp_path: Path) -> None:
    port = _free_port()
    dsn = f"http://{PUBLIC_KEY}@127.0.0.1:{port}/1"
    outbox = tmp_path / "outbox.sqlite3"
    app = _start_app(tmp_path, dsn, outbox, requests=20, flush_millis=300)
    try:
        assert app.stdout.readline().strip() == "queued", app.stderr.read()
    finally:
        _kill(app)

    status = _cli("outbox", "status", "--path", str(outbox))
    assert status.returncode == 0, status.stderr
    # 20 requests, and the failed one: its transaction and its error.
    assert "queued: 22 envelopes" in status.stdout
    assert "transaction: 21" in status.stdout and "error: 1" in status.stdout
    shown = _cli("outbox", "show", OTEL_SENTRY_BIZ_OUTBOX=str(outbox))
    queued_ids = {line.split()[1] for line in shown.stdout.splitlines()[1:]}
    assert len(queued_ids) == 22

    with LocalReceiver(port, public_key=PUBLIC_KEY) as receiver:
        flushed = _cli("outbox", "flush", "--path", str(outbox), "--dsn", dsn)
        assert flushed.returncode == 0, flushed.stdout + flushed.stderr
        assert "delivered 22 envelopes, 0 left" in flushed.stdout
        events = receiver.events()
    assert {event["event_id"] for event in events} == queued_ids
    assert len(events) == 22  # each exactly once
    for event in events:
        assert_valid(event)
    assert "queued: 0 envelopes" in _cli("outbox", "status", "--path", str(outbox)).stdout


def test_an_app_killed_mid_send_resends_on_restart_without_new_duplicates(
    tmp_path: Path,
) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    with LocalReceiver(public_key=PUBLIC_KEY) as receiver:
        # Every answer takes 1 s: the app is killed while a request is in flight.
        receiver.respond_with(200, delay=1.0, times=1000)
        app = _start_app(tmp_path, receiver.dsn, outbox, requests=5, flush_millis=200)
        try:
            assert app.stdout.readline().strip() == "queued", app.stderr.read()
            assert receiver.wait_for(lambda r: r.requests >= 1, timeout=10)
        finally:
            _kill(app)
        receiver.clear(script=True)  # answer at once from now on
        restarted = _start_app(tmp_path, receiver.dsn, outbox, requests=0, flush_millis=10_000)
        try:
            assert restarted.stdout.readline().strip() == "queued", restarted.stderr.read()
        finally:
            _kill(restarted)
        # The first run's 6 transactions and 1 error, plus the restarted run's own 2.
        assert receiver.wait_for(lambda r: len({e["event_id"] for e in r.events()}) >= 9, 10)
        events = receiver.events()
    counts = collections.Counter(event["event_id"] for event in events)
    assert len(counts) == 9
    # At most the one in flight when the app died arrives twice, with the same event id.
    assert sum(counts.values()) - len(counts) <= 1


def test_outbox_commands_name_the_fix_when_there_is_no_outbox(tmp_path: Path) -> None:
    missing = _cli("outbox", "status")
    assert missing.returncode == 2
    assert "OTEL_SENTRY_BIZ_OUTBOX" in missing.stderr and "--path" in missing.stderr
    wrong = _cli("outbox", "show", "--path", str(tmp_path / "nope.sqlite3"))
    assert wrong.returncode == 2 and "no outbox file" in wrong.stderr


def test_an_unusable_outbox_path_stops_start_up_naming_the_variable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    app = tmp_path / "app.py"
    app.write_text("import otel_sentry_biz as biz\nbiz.configure()\n")
    result = subprocess.run(
        [sys.executable, str(app)],
        env=clean_env(
            SENTRY_DSN=f"http://{PUBLIC_KEY}@127.0.0.1:9/1",
            OTEL_SENTRY_BIZ_OUTBOX=str(blocker / "outbox.sqlite3"),
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "OTEL_SENTRY_BIZ_OUTBOX" in result.stderr and "writable file path" in result.stderr


def test_outbox_flush_names_a_bad_pipeline_depth(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    from otel_sentry_biz.sentry.sqlite_outbox import SQLiteOutbox

    SQLiteOutbox(str(outbox)).close()  # an app's outbox file, empty
    flushed = _cli(
        "outbox",
        "flush",
        "--path",
        str(outbox),
        "--dsn",
        f"http://{PUBLIC_KEY}@127.0.0.1:9/1",
        OTEL_SENTRY_BIZ_PIPELINE_DEPTH="0",
    )
    assert flushed.returncode == 2
    assert "OTEL_SENTRY_BIZ_PIPELINE_DEPTH" in flushed.stderr
    assert "positive integer" in flushed.stderr
