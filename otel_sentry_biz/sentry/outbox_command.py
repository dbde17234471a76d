"""``otel-sentry-biz outbox status|show|flush``: look into a durable outbox and drain it."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Optional, TextIO

from otel_sentry_biz.config import ConfigError
from otel_sentry_biz.sentry.sender import EnvelopeSender
from otel_sentry_biz.sentry.sqlite_outbox import SQLiteOutbox


def open_outbox(path: Optional[str]) -> SQLiteOutbox:
    """The outbox at ``path`` (``--path`` or ``OTEL_SENTRY_BIZ_OUTBOX``); it must exist."""
    if not path:
        raise ConfigError(
            "no outbox to look at: pass --path FILE or set OTEL_SENTRY_BIZ_OUTBOX to the "
            "outbox file your app uses"
        )
    if not Path(path).is_file():
        raise ConfigError(
            f"no outbox file at {path!r}: give the path your app's OTEL_SENTRY_BIZ_OUTBOX names"
        )
    return SQLiteOutbox(path)


def status(outbox: SQLiteOutbox, out: TextIO) -> int:
    """Queued envelopes by category, bytes, the oldest one's age, and drops so far."""
    pending = outbox.pending()
    by_category = Counter(str(row["category"]) for row in pending)
    print(f"outbox {outbox.path}", file=out)
    print(f"  queued: {len(pending)} envelopes, {outbox.size_bytes:,} bytes", file=out)
    for category, count in sorted(by_category.items()):
        print(f"    {category}: {count}", file=out)
    if pending:
        oldest = min(float(row["created_at"]) for row in pending)  # type: ignore[arg-type]
        print(f"  oldest: {_age(time.time() - oldest)} ago", file=out)
    drops = outbox.drops()
    print(f"  dropped so far: {sum(drops.values())}", file=out)
    for (reason, category), count in sorted(drops.items()):
        print(f"    {reason} {category}: {count}", file=out)
    return 0


def show(outbox: SQLiteOutbox, out: TextIO, limit: int = 50) -> int:
    """One line per queued envelope, oldest first."""
    rows = outbox.pending(limit)
    if not rows:
        print("outbox is empty", file=out)
        return 0
    print(
        f"{'id':>6}  {'event id':<32}  {'category':<11} {'bytes':>7}  {'age':>6}  tries", file=out
    )
    now = time.time()
    for row in rows:
        leased = f"  (sending: {row['leased_by']})" if row["leased_by"] else ""
        print(
            f"{row['id']:>6}  {row['event_id']:<32}  {row['category']:<11} {row['bytes']:>7,}  "
            f"{_age(now - float(row['created_at'])):>6}  {row['attempts']}{leased}",  # type: ignore[arg-type]
            file=out,
        )
    return 0


def flush(
    outbox: SQLiteOutbox,
    dsn: Optional[str],
    timeout: float,
    out: TextIO,
    *,
    pipeline_depth: int = 8,
) -> int:
    """Deliver everything queued to ``dsn`` now; 0 when the outbox emptied in time."""
    if not dsn:
        raise ConfigError("no DSN to deliver to: pass --dsn or set SENTRY_DSN")
    before = len(outbox)
    sender = EnvelopeSender(dsn, outbox, pipeline_depth=pipeline_depth)
    sender.start()
    emptied = sender.flush(timeout)
    sender.shutdown(timeout=1.0)
    left = len(outbox)
    print(f"delivered {before - left} envelopes, {left} left", file=out)
    if not emptied:
        print(f"not empty after {timeout:.0f} s: {sender.stats()['last_error']}", file=out)
        return 1
    return 0


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"
