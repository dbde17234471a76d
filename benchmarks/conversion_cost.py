"""CPU the Sentry exporter spends per span turning finished spans into envelope bytes.

    python benchmarks/conversion_cost.py                  # 3,000 traces x 4 spans, best of 5
    python benchmarks/conversion_cost.py --traces 5000 --repeat 9
    python benchmarks/conversion_cost.py --profile        # cProfile of export(), by own time

No network and no threads: the spans of ``pipeline_overhead.py``'s request-shaped workload
are made once, then each conversion stage runs over all of them and is timed with
``time.process_time`` (CPU, so other processes on a shared machine disturb it less than wall
time would). Stages, in the order ``SentrySpanExporter`` runs them:

* ``assemble``: grouping spans into segments (``SegmentAssembler``), in batches of 64;
* ``errors+violations``: looking for exceptions, violations and messages (none here);
* ``transactions``: building the transaction events (``EventFactory.transactions``);
* ``scrub``: ``Scrubber.scrub_event`` on each;
* ``fit``: ``fit_event`` (Relay's size limits);
* ``envelope``: ``envelopes.build_envelope`` and ``envelopes.serialize`` (the bytes POSTed);

then ``export()`` end to end, into an outbox that only counts, on new spans each pass (the
stages reuse theirs, so what they remember helps them). Each figure is the best of
``--repeat`` passes, in ns per span. The garbage collector is off while timing: the pipeline
defers it around each batch too (``span_buffer._collection_deferred``).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline_overhead import SPANS_PER_TRACE, run_workload

DSN = "http://key@127.0.0.1:9/1"  # never contacted: the sender is not woken
BATCH = 64  # BufferedSpanProcessor's batch size


def make_spans(traces: int) -> list[Any]:
    """The finished spans of ``traces`` request-shaped traces, as the exporter receives them."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    class Keep(SpanExporter):
        def __init__(self) -> None:
            self.spans: list[Any] = []

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            self.spans.extend(spans)
            return SpanExportResult.SUCCESS

    keep = Keep()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(keep))
    run_workload(provider.get_tracer("bench"), traces)
    return keep.spans


class CountingOutbox:
    """An outbox that counts what it is given and keeps nothing."""

    def __init__(self) -> None:
        self.entries = 0
        self.bytes = 0

    def put(self, entry: Any) -> bool:
        self.entries += 1
        self.bytes += len(entry.payload)
        return True

    def __len__(self) -> int:
        return 0

    def take(self, max_items: int, skip: Callable[[str], bool]) -> list[Any]:
        return []

    def drops(self) -> dict[tuple[str, str], int]:
        return {}

    def take_unreported_drops(self) -> dict[tuple[str, str], int]:
        return {}


def new_exporter(outbox: Any = None) -> Any:
    from otel_sentry_biz.sentry.exporter import SentrySpanExporter

    exporter = SentrySpanExporter(DSN, outbox=CountingOutbox() if outbox is None else outbox)
    exporter._sender.notify = lambda: None  # measure conversion only
    return exporter


def best(function: Callable[[], Any], spans: int, repeat: int) -> float:
    """Least CPU ns per span of ``repeat`` calls of ``function``."""
    least = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        function()
        least = min(least, time.process_time() - started)
    return least * 1e9 / spans


def stages(spans: list[Any], repeat: int) -> dict[str, float]:
    from otel_sentry_biz.sentry import envelopes
    from otel_sentry_biz.sentry.limits import fit_event
    from otel_sentry_biz.sentry.segments import SegmentAssembler

    exporter = new_exporter()
    factory, scrubber = exporter._factory, exporter._scrubber
    batches = [spans[i : i + BATCH] for i in range(0, len(spans), BATCH)]

    def assemble() -> list[Any]:
        assembler = SegmentAssembler(max_pending_spans=10**9)
        return [segment for batch in batches for segment in assembler.add(batch)]

    segments = assemble()
    events = [event for segment in segments for event in factory.transactions(segment)]
    scrubbed = [fit_event(scrubber.scrub_event(event)) for event in events]
    count = len(spans)
    return {
        "assemble": best(assemble, count, repeat),
        "errors+violations": best(
            lambda: [
                (factory.errors(s), factory.violations(s), factory.messages(s)) for s in segments
            ],
            count,
            repeat,
        ),
        "transactions": best(
            lambda: [factory.transactions(segment) for segment in segments], count, repeat
        ),
        "scrub": best(lambda: [scrubber.scrub_event(event) for event in events], count, repeat),
        "fit": best(lambda: [fit_event(event) for event in scrubbed], count, repeat),
        "envelope": best(
            lambda: [
                envelopes.serialize(
                    envelopes.build_envelope(event, trace_header=exporter._trace_header(event, seg))
                )
                for event, seg in zip(scrubbed, segments)
            ],
            count,
            repeat,
        ),
    }


def whole_export(traces: int, repeat: int) -> tuple[float, int, float]:
    """ns per span of ``export()`` in batches of 64, envelopes, average bytes.

    Each pass has spans of its own and a fresh exporter, as a process would: nothing one
    pass remembered (texts scrubbed, names inferred) is reused by the next.
    """
    least = float("inf")
    outbox = CountingOutbox()
    for _ in range(repeat):
        spans = make_spans(traces)
        batches = [spans[i : i + BATCH] for i in range(0, len(spans), BATCH)]
        outbox = CountingOutbox()
        exporter = new_exporter(outbox)
        started = time.process_time()
        for batch in batches:
            exporter.export(batch)
        least = min(least, time.process_time() - started)
    return (
        least * 1e9 / (traces * SPANS_PER_TRACE),
        outbox.entries,
        outbox.bytes / max(1, outbox.entries),
    )


def profile(spans: list[Any]) -> None:
    import cProfile
    import pstats

    exporter = new_exporter()
    batches = [spans[i : i + BATCH] for i in range(0, len(spans), BATCH)]
    profiler = cProfile.Profile()
    profiler.enable()
    for batch in batches:
        exporter.export(batch)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--traces", type=int, default=3000, help="traces (4 spans each)")
    parser.add_argument("--repeat", type=int, default=5, help="passes per stage; best kept")
    parser.add_argument("--profile", action="store_true", help="cProfile export() instead")
    args = parser.parse_args()
    spans = make_spans(args.traces)
    if args.profile:
        profile(spans)
        return 0
    gc.disable()
    print(
        f"{args.traces} traces x {SPANS_PER_TRACE} spans, best of {args.repeat}, "
        f"Python {sys.version.split()[0]}; CPU ns per span"
    )
    for stage, ns in stages(spans, args.repeat).items():
        print(f"  {stage:<18} {ns:>8,.0f}")
    ns, envelopes, size = whole_export(args.traces, args.repeat)
    print(f"  {'export()':<18} {ns:>8,.0f}   ({envelopes} envelopes, {size:,.0f} B average)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
