"""``otel-sentry-biz demo``: the billing workload through the whole pipeline.

With no DSN it starts a local Sentry-protocol receiver on 127.0.0.1 and prints what Sentry
would show; with ``SENTRY_DSN`` (or ``--dsn``) it sends there instead.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Optional, TextIO

from otel_sentry_biz.demo import billing, report
from otel_sentry_biz.pipeline import configure

DEMO_RESOURCE = {
    "service.name": "billing-demo",
    "service.version": "1.0.0",
    "deployment.environment.name": "demo",
}


def run_demo(dsn: Optional[str] = None, stream: TextIO = sys.stdout, timeout: float = 30.0) -> int:
    """Run the demo; return a process exit code (0 when everything was delivered)."""
    from otel_sentry_biz.receiver import LocalReceiver

    receiver = None
    if dsn is None:
        receiver = LocalReceiver()
        receiver.start()
        dsn = receiver.dsn
    scratch = tempfile.TemporaryDirectory(prefix="otel-sentry-biz-demo-")
    # The demo queues in a durable SQLite outbox, as a production app would: its own file
    # unless OTEL_SENTRY_BIZ_OUTBOX names one.
    outbox = os.environ.get("OTEL_SENTRY_BIZ_OUTBOX") or os.path.join(scratch.name, "outbox.db")
    try:
        pipeline = configure(
            dsn=dsn,
            traces_sample_rate=1.0,
            sample_rate=1.0,
            debug=False,
            resource=DEMO_RESOURCE,
            outbox=outbox,
        )
        db = billing.open_database()
        outcome = billing.run(db)
        delivered = pipeline.force_flush(int(timeout * 1000))
        stats = pipeline.exporter.stats() if pipeline.exporter is not None else {}
        pipeline.shutdown()
        print(f"Processed {outcome.processed} work requests, {outcome.failed} failed.", file=stream)
        if receiver is not None:
            destination = f"local receiver on 127.0.0.1:{receiver.port}"
            print(report.render(receiver.events(), destination), file=stream)
        else:
            print(f"Sent to your Sentry project: {stats.get('sent', stats)}", file=stream)
            print("Look for environment 'demo' and service billing-demo in Sentry.", file=stream)
        if not delivered:
            print(f"Not everything was delivered within {timeout:.0f} s: {stats}", file=stream)
            return 1
        return 0
    finally:
        if receiver is not None:
            receiver.stop()
        scratch.cleanup()
