"""What tracing costs the app, and what actually arrives, for four OTel -> backend pipelines.

    python benchmarks/pipeline_overhead.py            # 5,000 traces x 4 spans, median of 3 rounds
    python benchmarks/pipeline_overhead.py --traces 20000 --repeat 5

The workload is request-shaped: a SERVER root with a db child, an http-client child and an
internal child, a few attributes each, in a tight loop. Each pipeline runs in its own process
(and each receiver in another), so nothing is shared and background CPU is billed correctly.
Runs go in rounds, each pipeline once per round, so that a shared machine's drift over the
minutes of a run falls on all of them alike:

* ``bare``: the OTel SDK with ``BatchSpanProcessor`` and a no-op exporter (the floor);
* ``sentry-sdk``: sentry-sdk's own OTel bridge (``SentrySpanProcessor``) to a local receiver;
* ``otlp``: ``BatchSpanProcessor`` + the OTLP/HTTP protobuf exporter to a local OTLP receiver;
* ``ours``: ``otel_sentry_biz.configure()`` to a local Sentry-protocol receiver.

Printed per pipeline: wall ns per span on the app thread, process CPU ns per span (all
threads, until delivery ends), the part of it the garbage collector took, peak RSS growth,
spans the receiver got, and the ratios the targets are about. Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from statistics import median
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
PIPELINES = ("bare", "sentry-sdk", "otlp", "ours")
SPANS_PER_TRACE = 4
WARMUP_TRACES = 200

# Targets from the core pipeline issue, as ratios measured in the same run.
MAX_APP_VS_BARE = 1.5
MAX_APP_VS_SENTRY_SDK = 0.2
MIN_DELIVERED = 1.0
MAX_CPU_PER_DELIVERED_VS_OTLP = 1.0


# -- the workload (runs in the child) --------------------------------------------------------


def run_workload(tracer: Any, traces: int) -> None:
    from opentelemetry.trace import SpanKind, Status, StatusCode

    for i in range(traces):
        with tracer.start_as_current_span(
            "GET /orders/{order_id}",
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": "GET",
                "http.route": "/orders/{order_id}",
                "url.path": f"/orders/{i}",
                "biz.customer_id": f"C{i % 97}",
            },
        ) as root:
            with tracer.start_as_current_span(
                "SELECT orders",
                kind=SpanKind.CLIENT,
                attributes={
                    "db.system.name": "postgresql",
                    "db.query.text": "SELECT * FROM orders WHERE id = $1",
                    "db.namespace": "shop",
                },
            ):
                pass
            with tracer.start_as_current_span(
                "GET",
                kind=SpanKind.CLIENT,
                attributes={
                    "http.request.method": "GET",
                    "url.full": "http://127.0.0.1:9/prices",
                    "http.response.status_code": 200,
                },
            ):
                pass
            with tracer.start_as_current_span("price order", attributes={"biz.amount": i % 500}):
                pass
            root.set_attribute("http.response.status_code", 200)
            root.set_status(Status(StatusCode.OK))


# -- the pipelines (each returns a tracer and a "deliver everything" callable) ---------------


def setup_bare(endpoint: str) -> tuple[Any, Callable[[], int]]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class CountingNoopExporter(SpanExporter):
        exported = 0

        def export(self, spans: Any) -> SpanExportResult:
            CountingNoopExporter.exported += len(spans)
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(CountingNoopExporter()))

    def deliver() -> int:
        provider.force_flush(60_000)
        return CountingNoopExporter.exported

    return provider.get_tracer("bench"), deliver


def setup_sentry_sdk(endpoint: str) -> tuple[Any, Callable[[], int]]:
    import sentry_sdk
    from opentelemetry.propagate import set_global_textmap
    from opentelemetry.sdk.trace import TracerProvider
    from sentry_sdk.integrations.opentelemetry import SentryPropagator, SentrySpanProcessor

    sentry_sdk.init(dsn=endpoint, traces_sample_rate=1.0, instrumenter="otel")
    provider = TracerProvider()
    provider.add_span_processor(SentrySpanProcessor())
    set_global_textmap(SentryPropagator())

    def deliver() -> int:
        sentry_sdk.flush(timeout=60)
        return -1

    return provider.get_tracer("bench"), deliver


def setup_otlp(endpoint: str) -> tuple[Any, Callable[[], int]]:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))

    def deliver() -> int:
        provider.force_flush(60_000)
        return -1

    return provider.get_tracer("bench"), deliver


def setup_ours(endpoint: str) -> tuple[Any, Callable[[], int]]:
    import otel_sentry_biz as biz

    pipeline = biz.configure(dsn=endpoint, traces_sample_rate=1.0, environment="production")

    def deliver() -> int:
        if not pipeline.force_flush(60_000):
            print("ours: force_flush timed out", file=sys.stderr)
        return -1

    return pipeline.tracer_provider.get_tracer("bench"), deliver


SETUPS = {
    "bare": setup_bare,
    "sentry-sdk": setup_sentry_sdk,
    "otlp": setup_otlp,
    "ours": setup_ours,
}


def child(pipeline: str, endpoint: str, traces: int) -> None:
    """Run one pipeline once and print its measurements as a JSON line."""
    import psutil

    tracer, deliver = SETUPS[pipeline](endpoint)
    run_workload(tracer, WARMUP_TRACES)
    deliver()
    process = psutil.Process()
    rss_before = process.memory_info().rss
    collecting = _CollectorClock()
    gc.callbacks.append(collecting)
    cpu_before = time.process_time()
    started = time.perf_counter()
    run_workload(tracer, traces)
    app_seconds = time.perf_counter() - started
    exported = deliver()
    cpu_seconds = time.process_time() - cpu_before
    gc.callbacks.remove(collecting)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    spans = traces * SPANS_PER_TRACE
    print(
        json.dumps(
            {
                "app_ns_per_span": app_seconds * 1e9 / spans,
                "cpu_seconds": cpu_seconds,
                "gc_seconds": collecting.seconds,
                "rss_growth_mb": max(0, peak_rss - rss_before) / 2**20,
                "exported": exported,
            }
        )
    )
    sys.stdout.flush()
    os._exit(0)  # measured; don't let exit-time flushing of slow pipelines delay the run


class _CollectorClock:
    """A ``gc.callbacks`` entry adding up the time the cyclic garbage collector runs.

    It runs holding the GIL, on whichever thread allocated last, so its wall time is CPU
    time taken from the app (or our background threads): its cost grows with the objects
    a pipeline keeps alive (spans waiting to be exported), which the "GC ns/span" column
    shows apart.
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started


# -- the parent: receivers, repeats, the table -----------------------------------------------


class Receiver:
    """A receiver process (see receivers.py) for one pipeline's run."""

    def __init__(self, kind: str) -> None:
        self._process = subprocess.Popen(
            [sys.executable, str(HERE / "receivers.py"), kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.endpoint = self._ask(None)["endpoint"]

    def _ask(self, command: str | None) -> dict[str, Any]:
        assert self._process.stdin and self._process.stdout
        if command:
            self._process.stdin.write(command + "\n")
            self._process.stdin.flush()
        return json.loads(self._process.stdout.readline())

    def settled_count(self, expected: int, patience: float = 3.0, limit: float = 120.0) -> int:
        """Spans received, once the count reaches ``expected`` or stops moving."""
        deadline = time.monotonic() + limit
        last, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            count = self._ask("count")["spans"]
            if count >= expected:
                return count
            if count != last:
                last, last_change = count, time.monotonic()
            elif time.monotonic() - last_change > patience:
                break
            time.sleep(0.2)
        return last

    def close(self) -> None:
        try:
            self._ask_quit()
        finally:
            self._process.wait(timeout=10)

    def _ask_quit(self) -> None:
        assert self._process.stdin
        self._process.stdin.write("quit\n")
        self._process.stdin.flush()


def run_once(pipeline: str, traces: int) -> dict[str, Any]:
    kind = {"bare": None, "sentry-sdk": "sentry", "otlp": "otlp", "ours": "sentry"}[pipeline]
    receiver = Receiver(kind) if kind else None
    try:
        endpoint = receiver.endpoint if receiver else ""
        output = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                pipeline,
                "--endpoint",
                endpoint,
                "--traces",
                str(traces),
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=900,
        ).stdout
        result = json.loads(output.strip().splitlines()[-1])
        total = (traces + WARMUP_TRACES) * SPANS_PER_TRACE
        received = receiver.settled_count(total) if receiver else result["exported"]
        # The warm-up traces went through the same pipeline; count only the measured ones.
        warmup = WARMUP_TRACES * SPANS_PER_TRACE
        result["delivered"] = max(0, min(received, total) - warmup) / (traces * SPANS_PER_TRACE)
        return result
    finally:
        if receiver:
            receiver.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--traces", type=int, default=5000, help="traces per run (4 spans each)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per pipeline; median kept")
    parser.add_argument("--only", choices=PIPELINES, action="append", help="run only these")
    parser.add_argument("--child", choices=PIPELINES, help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.endpoint, args.traces)
        return 0

    spans = args.traces * SPANS_PER_TRACE
    pipelines = args.only or PIPELINES
    # Round by round, each pipeline once per round: a shared machine drifts over minutes,
    # and every pipeline then sees the same drift, so ratios in the same run stay fair.
    measured: dict[str, list[dict[str, Any]]] = {pipeline: [] for pipeline in pipelines}
    for _ in range(args.repeat):
        for pipeline in pipelines:
            measured[pipeline].append(run_once(pipeline, args.traces))
    results: dict[str, dict[str, float]] = {}
    for pipeline, runs in measured.items():
        results[pipeline] = {
            "app": median(r["app_ns_per_span"] for r in runs),
            "cpu": median(r["cpu_seconds"] * 1e9 / spans for r in runs),
            "gc": median(r["gc_seconds"] * 1e9 / spans for r in runs),
            "cpu_delivered": median(
                r["cpu_seconds"] * 1e9 / max(1.0, r["delivered"] * spans) for r in runs
            ),
            "rss": median(r["rss_growth_mb"] for r in runs),
            "delivered": min(r["delivered"] for r in runs),
        }
    print_table(results, args)
    return check_targets(results)


def print_table(results: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    print(
        f"{args.traces} traces x {SPANS_PER_TRACE} spans, median of {args.repeat} runs, "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    bare = results.get("bare", {}).get("app")
    header = (
        f"{'pipeline':<11} {'app ns/span':>12} {'x bare':>7} {'CPU ns/span':>12} "
        f"{'CPU ns/delivered':>17} {'GC ns/span':>11} {'peak RSS +MB':>13} {'delivered':>10}"
    )
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        ratio = f"{r['app'] / bare:.2f}" if bare else "-"
        print(
            f"{name:<11} {r['app']:>12,.0f} {ratio:>7} {r['cpu']:>12,.0f} "
            f"{r['cpu_delivered']:>17,.0f} {r['gc']:>11,.0f} {r['rss']:>13.1f} "
            f"{r['delivered']:>9.1%}"
        )


def check_targets(results: dict[str, dict[str, float]]) -> int:
    """Print PASS/FAIL for each target that this run can judge; 1 if any failed."""
    ours = results.get("ours")
    if not ours:
        return 0
    checks: list[tuple[str, bool]] = []
    if "bare" in results:
        ratio = ours["app"] / results["bare"]["app"]
        checks.append(
            (
                f"app thread vs bare OTel {ratio:.2f}x <= {MAX_APP_VS_BARE}x",
                ratio <= MAX_APP_VS_BARE,
            )
        )
    if "sentry-sdk" in results:
        ratio = ours["app"] / results["sentry-sdk"]["app"]
        checks.append(
            (
                f"app thread vs sentry-sdk's bridge {ratio:.2f}x <= {MAX_APP_VS_SENTRY_SDK}x",
                ratio <= MAX_APP_VS_SENTRY_SDK,
            )
        )
    delivered = ours["delivered"]
    checks.append((f"spans delivered {delivered:.1%} >= 100%", delivered >= MIN_DELIVERED))
    if "otlp" in results:
        ratio = ours["cpu_delivered"] / results["otlp"]["cpu_delivered"]
        limit = MAX_CPU_PER_DELIVERED_VS_OTLP
        checks.append((f"CPU per delivered span vs OTLP {ratio:.2f}x <= {limit}x", ratio <= limit))
    print()
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
