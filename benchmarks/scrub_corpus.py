"""Secrets that survive Sentry's default server-side scrubbing vs ours, and our cost per event.

    python benchmarks/scrub_corpus.py            # the comparison over tests/scrub/corpus.py
    python benchmarks/scrub_corpus.py --timing   # microseconds per typical event

"Relay defaults" is what Sentry stores for a new project: Relay's normalization, then
``sentry_relay.pii_strip_event`` with ``convert_datascrubbing_config`` of the default
data-scrubbing settings (Data Scrubber and Use Default Scrubbers on).
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from otel_sentry_biz.scrub import Scrubber
from tests.scrub.corpus import (
    build_corpus,
    relay_defaults,
    surviving,
    transaction_event,
)


def compare() -> int:
    scrubber = Scrubber()
    cases = build_corpus()
    planted = sum(len(case.secrets) for case in cases)
    decoys = sum(len(case.decoys) for case in cases)
    totals: Counter[str] = Counter()
    by_field: dict[str, Counter[str]] = {}
    worse: list[str] = []
    for case in cases:
        relay = relay_defaults(case.event)
        ours = scrubber.scrub_event(case.event)
        both = relay_defaults(ours)
        left_relay, left_ours = surviving(case.secrets, relay), surviving(case.secrets, ours)
        counts = by_field.setdefault(case.field, Counter())
        counts["planted"] += len(case.secrets)
        counts["relay"] += len(left_relay)
        counts["ours"] += len(left_ours)
        totals["relay"] += len(left_relay)
        totals["ours"] += len(left_ours)
        totals["both"] += len(surviving(case.secrets, both))
        totals["decoys_relay"] += len(surviving(case.decoys, relay))
        totals["decoys_ours"] += len(surviving(case.decoys, ours))
        worse += [f"{case.name}: {s}" for s in left_ours if s not in left_relay]
    print(f"corpus: {len(cases)} events, {planted} planted secrets, {decoys} decoys")
    print(f"{'field':18} {'planted':>7} {'relay':>6} {'ours':>5}")
    for name in sorted(by_field):
        c = by_field[name]
        print(f"{name:18} {c['planted']:7} {c['relay']:6} {c['ours']:5}")
    print(f"secrets surviving Relay defaults:          {totals['relay']:3} / {planted}")
    print(f"secrets surviving our scrubber:            {totals['ours']:3} / {planted}")
    print(f"secrets surviving ours, then Relay:        {totals['both']:3} / {planted}")
    print(f"removed by Relay but surviving ours:       {len(worse):3}")
    print(
        f"decoys kept (not secrets) Relay / ours:    {totals['decoys_relay']} / "
        f"{totals['decoys_ours']} of {decoys}"
    )
    for line in worse:
        print("  WORSE:", line)
    return 1 if worse else 0


def typical_transaction(spans: int = 20, seed: int = 0) -> dict[str, Any]:
    """A checkout transaction: db, http and business spans with the data they usually carry.

    ``seed`` varies every id, URL and SQL literal, as consecutive real events do.
    """
    event = transaction_event()
    template = event["spans"]
    out = []
    for index in range(spans):
        n = seed * 1000 + index
        span = copy.deepcopy(template[index % len(template)])
        span["span_id"] = f"{n:016x}"
        span.setdefault("tags", {})["customer"] = "ACME"
        if span["op"] == "db":
            span["description"] = f"SELECT id, total FROM orders WHERE customer_id = {n} LIMIT 50"
            span["data"]["db.query.text"] = span["description"]
        elif span["op"] == "http.client":
            span["description"] = f"GET https://erp.internal/api/orders/{n}?expand=lines"
            span["data"].update(
                {
                    "http.response.status_code": 200,
                    "server.address": "erp.internal",
                    "url.full": f"https://erp.internal/api/orders/{n}?expand=lines",
                    "network.protocol.version": "1.1",
                }
            )
        else:
            span["data"].update({"biz.amount": 15.2 * n, "biz.currency": "EUR", "biz.items": 3})
            span["data"]["biz.order_id"] = f"ORD-{n}"
        out.append(span)
    event["spans"] = out
    event["tags"]["work_request"] = f"WR-{seed}"
    return event


def _best(run: Any, batches: list[list[Any]]) -> float:
    """Microseconds per item of ``run``: the best batch (the least disturbed by other load)."""
    best = float("inf")
    gc.disable()
    try:
        for batch in batches:
            started = time.perf_counter()
            for item in batch:
                run(item)
            best = min(best, (time.perf_counter() - started) / len(batch))
    finally:
        gc.enable()
    return best * 1e6


def timing() -> None:
    scrubber = Scrubber()
    for spans, per_batch in ((20, 20), (100, 5)):
        # Fresh ids, URLs and SQL literals in every event, as consecutive real events have:
        # their strings are new to the scrubber's cache.
        distinct = [
            [typical_transaction(spans, seed=b * per_batch + i + 1) for i in range(per_batch)]
            for b in range(40)
        ]
        same = [[typical_transaction(spans)] * per_batch for _ in range(40)]
        print(
            f"transaction, {spans:3} spans, distinct events: "
            f"{_best(scrubber.scrub_event, distinct):8.1f} µs per event"
        )
        print(
            f"transaction, {spans:3} spans, repeated event:  "
            f"{_best(scrubber.scrub_event, same):8.1f} µs per event"
        )
        print(
            f"  for scale, json.dumps of the same events:  "
            f"{_best(json.dumps, distinct):8.1f} µs per event"
        )
    errors = [c.event for c in build_corpus() if c.event.get("type") != "transaction"]
    print(
        f"corpus error events, first sight (mean):    "
        f"{_best(Scrubber().scrub_event, [errors]):8.1f} µs per event"
    )
    attributes = typical_transaction(3)["spans"][1]["data"]
    print(
        f"span attributes (5 keys, repeated):         "
        f"{_best(scrubber.scrub_attributes, [[attributes] * 200] * 20):8.1f} µs per mapping"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timing", action="store_true", help="measure µs per event")
    args = parser.parse_args()
    if args.timing:
        timing()
        return 0
    return compare()


if __name__ == "__main__":
    sys.exit(main())
