"""Sentry down under sustained load: what it costs the app, how much memory, what arrives.

    python benchmarks/outage_load.py                   # 250 requests/s x 4 spans, 20 s each
    python benchmarks/outage_load.py --rate 1000 --duration 30 --only up --only down-memory

A child process runs ``otel_sentry_biz.configure(dsn=..., traces_sample_rate=1.0)`` and drives
the request-shaped workload of ``pipeline_overhead.py`` (a SERVER root and three children;
every ``--error-every``-th request fails with an exception) at a fixed rate, paced with sleeps,
for a fixed time. The receiver (:class:`~otel_sentry_biz.receiver.LocalReceiver`) runs in a
process of its own. Scenarios, all measured in the same run:

* ``up``: the receiver listens the whole time (the baseline);
* ``down-memory``: nothing listens on the DSN's port for the first ``--down-fraction`` of the
  time, then the receiver starts on that port; in-memory outbox;
* ``down-sqlite``: the same with ``OTEL_SENTRY_BIZ_OUTBOX`` (the durable SQLite outbox);
* ``down-small-queue``: the same as ``down-memory`` with ``OTEL_SENTRY_BIZ_MAX_QUEUE_MB`` so
  small that the outage overflows it: memory must level off and the drops be counted.

Printed per scenario: the app thread's wall time per span (only while it handles requests,
not while it sleeps between them) overall, while the receiver is down and after it is back;
the app thread's CPU time per span; peak RSS growth (sampled every 0.5 s by the parent) and
its growth rate over the last third of the outage; spans produced; events built, delivered
(unique event ids) and duplicated; drops by reason as the exporter counts them; how long the
first delivery and the backlog's drain took after the receiver came back. Then the ratio of
the app thread's cost with the receiver down to the cost with it up.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from statistics import median
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
SCENARIOS = ("up", "down-memory", "down-sqlite", "down-small-queue")
SPANS_PER_REQUEST = 4
WARMUP_REQUESTS = 200
PUBLIC_KEY = "0123456789abcdef0123456789abcdef"
TICK = 0.01  # the app wakes every 10 ms and handles the requests due by then
SMALL_QUEUE_MB = 4
#: The app thread's cost with the receiver down may exceed the cost with it up by this much.
TARGET_RATIO = 1.05


# -- the app (runs in the child) --------------------------------------------------------------


def failing_request(tracer: Any, i: int) -> None:
    """The workload's request shape, with the innermost call raising."""
    from opentelemetry.trace import SpanKind

    try:
        with tracer.start_as_current_span(
            "POST /orders/{order_id}/pay",
            kind=SpanKind.SERVER,
            attributes={"http.request.method": "POST", "http.route": "/orders/{order_id}/pay"},
        ):
            with tracer.start_as_current_span(
                "SELECT orders",
                kind=SpanKind.CLIENT,
                attributes={"db.system.name": "postgresql", "db.namespace": "shop"},
            ):
                pass
            with tracer.start_as_current_span(
                "POST", kind=SpanKind.CLIENT, attributes={"url.full": "http://127.0.0.1:9/pay"}
            ):
                pass
            with tracer.start_as_current_span("charge card"):
                raise ValueError(f"card declined for order {i}")
    except ValueError:
        pass


class Monitor(threading.Thread):
    """Samples the pipeline's queues every 0.25 s (cheap reads, no locks held for long)."""

    def __init__(self, pipeline: Any) -> None:
        super().__init__(name="outage_load.monitor", daemon=True)
        self.samples: list[tuple[float, int, int, int]] = []
        self._pipeline = pipeline
        self._halt = threading.Event()

    def sample(self) -> tuple[float, int, int, int]:
        stats = self._pipeline.exporter.stats()
        buffer = self._pipeline.processor.next
        sent = sum(stats["sent"].values())
        return (time.monotonic(), stats["queued"], buffer.buffered_spans, sent)

    def run(self) -> None:
        while not self._halt.wait(0.25):
            self.samples.append(self.sample())

    def stop(self) -> None:
        self._halt.set()
        self.join()


def child(args: argparse.Namespace) -> None:
    """Run the paced workload once; print one JSON line with what happened."""
    sys.path.insert(0, str(HERE))
    from pipeline_overhead import run_workload

    import otel_sentry_biz as biz

    pipeline = biz.configure(dsn=args.dsn, traces_sample_rate=1.0, environment="production")
    tracer = pipeline.tracer_provider.get_tracer("bench")
    error_every = args.error_every

    def request(i: int) -> None:
        if error_every and i % error_every == error_every - 1:
            failing_request(tracer, i)
        else:
            run_workload(tracer, 1)

    for i in range(WARMUP_REQUESTS):
        request(i)
    time.sleep(0.5)  # the warm-up's conversion is done before the clock starts
    _answer({"ready": True})
    sys.stdin.readline()  # "go": the parent has taken its RSS baseline

    monitor = Monitor(pipeline)
    monitor.start()
    chunks: list[tuple[float, float, float, int]] = []  # (at, wall s, cpu s, requests)
    started = time.monotonic()
    end = started + args.duration
    done = 0
    catch_up = max(1, int(args.rate * 0.05))  # a late tick does at most 50 ms of requests
    perf, cpu = time.perf_counter, time.thread_time
    while True:
        now = time.monotonic()
        if now >= end:
            break
        due = min(int((now - started) * args.rate) - done, catch_up)
        if due > 0:
            wall0, cpu0 = perf(), cpu()
            for i in range(done, done + due):
                request(WARMUP_REQUESTS + i)
            chunks.append((now, perf() - wall0, cpu() - cpu0, due))
            done += due
        time.sleep(max(0.0, TICK - (time.monotonic() - now)))
    workload_ended = time.monotonic()

    # Let the backlog drain: everything converted and acknowledged by the receiver.
    drained_at: Optional[float] = None
    deadline = workload_ended + args.drain_limit
    while time.monotonic() < deadline:
        at, queued, buffered, _ = monitor.sample()
        if queued == 0 and buffered == 0 and pipeline.exporter.stats()["pending_spans"] == 0:
            drained_at = at
            break
        time.sleep(0.05)
    monitor.stop()
    stats = pipeline.exporter.stats()
    buffer_dropped = pipeline.processor.next.dropped_spans
    if drained_at is not None:
        pipeline.shutdown()  # delivers the last client report: what we dropped, by reason
    _answer(
        {
            "requests": done,
            "warmup_requests": WARMUP_REQUESTS,
            "errors_every": error_every,
            "started": started,
            "workload_ended": workload_ended,
            "drained_at": drained_at,
            "chunks": chunks,
            "samples": monitor.samples,
            "stats": stats,
            "buffer_dropped": buffer_dropped,
        }
    )
    os._exit(0)  # measured; no exit-time flushing


# -- the receiver (runs in its own process) -------------------------------------------------


def serve_receiver(port: int) -> None:
    from otel_sentry_biz.receiver import LocalReceiver

    receiver = LocalReceiver(port, public_key=PUBLIC_KEY).start()
    _answer({"ready": True})
    for line in sys.stdin:
        if line.strip() == "count":
            _answer(_receiver_counts(receiver))
        elif line.strip() == "quit":
            break
    receiver.stop()


def _receiver_counts(receiver: Any) -> dict[str, Any]:
    transactions = receiver.events("transaction")
    errors = receiver.events("event")
    unique: dict[str, dict[str, Any]] = {e["event_id"]: e for e in transactions}
    discarded: dict[str, int] = {}
    for report in receiver.client_reports():
        for row in report.get("discarded_events", ()):
            key = f"{row['reason']}:{row['category']}"
            discarded[key] = discarded.get(key, 0) + row["quantity"]
    return {
        "requests": receiver.requests,
        "transactions": len(transactions),
        "unique_transactions": len(unique),
        "spans": sum(1 + len(e.get("spans", ())) for e in unique.values()),
        "errors": len(errors),
        "unique_errors": len({e["event_id"] for e in errors}),
        "client_reports": discarded,
    }


class Receiver:
    def __init__(self, port: int) -> None:
        self._process = subprocess.Popen(
            [sys.executable, __file__, "--receiver", str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert json.loads(self._readline())["ready"]

    def _readline(self) -> str:
        assert self._process.stdout
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the receiver process died")
        return line

    def counts(self) -> dict[str, Any]:
        assert self._process.stdin
        self._process.stdin.write("count\n")
        self._process.stdin.flush()
        return json.loads(self._readline())

    def settled_counts(self, expected: int, patience: float = 2.0, limit: float = 60.0) -> dict:
        """Counts once the unique events reach ``expected`` or stop moving."""
        deadline = time.monotonic() + limit
        last, last_change = -1, time.monotonic()
        while True:
            counts = self.counts()
            got = counts["unique_transactions"] + counts["unique_errors"]
            if got >= expected or time.monotonic() > deadline:
                return counts
            if got != last:
                last, last_change = got, time.monotonic()
            elif time.monotonic() - last_change > patience:
                return counts
            time.sleep(0.2)

    def close(self) -> None:
        assert self._process.stdin
        try:
            self._process.stdin.write("quit\n")
            self._process.stdin.flush()
        except BrokenPipeError:
            pass
        self._process.wait(timeout=10)


# -- the parent ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _child_env(scenario: str, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "OTEL_"))}
    if scenario == "down-sqlite":
        env["OTEL_SENTRY_BIZ_OUTBOX"] = str(workdir / "outbox.sqlite3")
    if scenario == "down-small-queue":
        env["OTEL_SENTRY_BIZ_MAX_QUEUE_MB"] = str(SMALL_QUEUE_MB)
    return env


def run_scenario(scenario: str, args: argparse.Namespace) -> dict[str, Any]:
    import psutil

    port = _free_port()
    dsn = f"http://{PUBLIC_KEY}@127.0.0.1:{port}/1"
    workdir = Path(tempfile.mkdtemp(prefix="outage_load."))
    stderr = (workdir / "stderr.txt").open("w")  # the sender's warnings while Sentry is down
    receiver: Optional[Receiver] = Receiver(port) if scenario == "up" else None
    up_at: Optional[float] = time.monotonic() if receiver else None
    app = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--child",
            "--dsn",
            dsn,
            "--rate",
            str(args.rate),
            "--duration",
            str(args.duration),
            "--error-every",
            str(args.error_every),
            "--drain-limit",
            str(args.drain_limit),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env=_child_env(scenario, workdir),
    )
    lines: queue.Queue[str] = queue.Queue()
    assert app.stdout and app.stdin

    def read_lines() -> None:
        assert app.stdout
        for line in app.stdout:
            lines.put(line)
        lines.put("")

    threading.Thread(target=read_lines, daemon=True).start()
    try:
        ready = lines.get(timeout=120)
        if not ready:
            raise RuntimeError(f"{scenario}: the app process died during start-up")
        process = psutil.Process(app.pid)
        rss_base = process.memory_info().rss
        app.stdin.write("go\n")
        app.stdin.flush()
        t0 = time.monotonic()
        restart_at = t0 + args.duration * args.down_fraction
        rss: list[tuple[float, int]] = []
        result: Optional[dict[str, Any]] = None
        while result is None:
            rss.append((time.monotonic(), process.memory_info().rss))
            if receiver is None and time.monotonic() >= restart_at:
                receiver = Receiver(port)  # on the DSN's port: Sentry is back
                up_at = time.monotonic()
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if not line:
                raise RuntimeError(
                    f"{scenario}: the app process died:\n{(workdir / 'stderr.txt').read_text()}"
                )
            result = json.loads(line)
        app.wait(timeout=30)
        assert receiver is not None and up_at is not None
        stats = result["stats"]
        built = sum(stats["events"].values())
        result["received"] = receiver.settled_counts(built)
        result.update(scenario=scenario, rss_base=rss_base, rss=rss, up_at=up_at, t0=t0)
        return summarise(result, args)
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
        if receiver is not None:
            receiver.close()
        stderr.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _cost(chunks: list[list[float]]) -> dict[str, float]:
    """Wall and CPU ns per span over ``chunks``; the median chunk too (robust to a preemption)."""
    requests = sum(c[3] for c in chunks)
    if not requests:
        return {"wall": float("nan"), "cpu": float("nan"), "median": float("nan"), "spans": 0}
    spans = requests * SPANS_PER_REQUEST
    return {
        "wall": sum(c[1] for c in chunks) * 1e9 / spans,
        "cpu": sum(c[2] for c in chunks) * 1e9 / spans,
        "median": median(c[1] * 1e9 / (c[3] * SPANS_PER_REQUEST) for c in chunks),
        "spans": spans,
    }


def summarise(r: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    up_at, t0 = r["up_at"], r["t0"]
    down = r["scenario"] != "up"
    chunks = r["chunks"]
    mb = 2**20
    rss_growth = [(at, (value - r["rss_base"]) / mb) for at, value in r["rss"]]
    outage = [(at, g) for at, g in rss_growth if at < up_at] if down else []
    slope = float("nan")  # MB/s over the last third of the outage: ~0 once memory levels off
    if len(outage) >= 4:
        last_third = [(at, g) for at, g in outage if at >= outage[-1][0] - (up_at - t0) / 3]
        if len(last_third) >= 2 and last_third[-1][0] > last_third[0][0]:
            slope = (last_third[-1][1] - last_third[0][1]) / (last_third[-1][0] - last_third[0][0])
    # The app's monitor: (at, envelopes queued, spans buffered, envelopes sent so far).
    samples = r["samples"]
    backlog = max((s[1] for s in samples if s[0] <= up_at), default=0)
    sent_at_up = max((s[3] for s in samples if s[0] <= up_at), default=0)
    first_delivery = next(
        (s[0] - up_at for s in samples if s[0] > up_at and s[3] > sent_at_up), None
    )
    threshold = max(10, int(args.rate * 0.1))  # "drained": under 100 ms worth of requests
    drained = next(
        (s[0] - up_at for s in samples if s[0] > up_at and s[1] <= threshold and s[2] < 1000),
        None,
    )
    if drained is None and r["drained_at"] is not None:
        drained = r["drained_at"] - up_at
    stats, received = r["stats"], r["received"]
    requests = r["requests"] + r["warmup_requests"]
    dropped = {**stats["dropped_before_queue"], **stats["dropped"]}
    if r["buffer_dropped"]:
        dropped["span_buffer_overflow:span"] = r["buffer_dropped"]
    return {
        "scenario": r["scenario"],
        "cost": _cost(chunks),
        "cost_down": _cost([c for c in chunks if c[0] < up_at]) if down else None,
        "cost_back": _cost([c for c in chunks if c[0] >= up_at]) if down else None,
        "peak_rss_mb": max(growth for _, growth in rss_growth),
        "rss_at_up_mb": outage[-1][1] if outage else None,
        "rss_slope_mb_s": slope,
        "max_buffered_spans": max((s[2] for s in samples), default=0),
        "spans": requests * SPANS_PER_REQUEST,
        "requests": requests,
        "built": stats["events"],
        "received": received,
        "dropped": dropped,
        "outbox_dropped": stats["dropped"],
        "backlog": backlog,
        "first_delivery_s": first_delivery if down else None,
        "drain_s": drained if down else None,
        "all_delivered_after_end_s": (
            r["drained_at"] - r["workload_ended"] if r["drained_at"] is not None else None
        ),
        "queued_at_end": stats["queued"],
        "rate_achieved": r["requests"] / args.duration,
    }


def _fmt(value: Optional[float], spec: str) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return format(value, spec)


def _table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    line = "  ".join(
        h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths))
    )
    print(line)
    print("-" * len(line))
    for row in rows:
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))
            )
        )


def merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One scenario's repeated runs: the median run, with the median of each cost figure."""
    ordered = sorted(runs, key=lambda r: r["cost"]["wall"])
    merged = dict(ordered[len(ordered) // 2])
    for phase in ("cost", "cost_down", "cost_back"):
        if merged[phase] is not None:
            merged[phase] = {
                key: median(r[phase][key] for r in runs) for key in ("wall", "cpu", "median")
            }
    merged["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    merged["runs"] = len(runs)
    return merged


def print_report(
    results: list[dict[str, Any]], args: argparse.Namespace, all_runs: list[dict[str, Any]]
) -> int:
    print(
        f"{args.rate} requests/s x {SPANS_PER_REQUEST} spans for {args.duration:g} s, "
        f"{args.repeat} run(s) per scenario "
        f"(1 request in {args.error_every} fails), receiver down for the first "
        f"{args.down_fraction:.0%} in the down-* scenarios; Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs"
    )
    print()
    print("The app thread (wall ns per span while handling requests) and memory")
    _table(
        [
            [
                r["scenario"],
                f"{r['rate_achieved']:.0f}",
                f"{r['cost']['wall']:,.0f}",
                _fmt(r["cost_down"] and r["cost_down"]["wall"], ",.0f"),
                _fmt(r["cost_back"] and r["cost_back"]["wall"], ",.0f"),
                f"{r['cost']['median']:,.0f}",
                f"{r['cost']['cpu']:,.0f}",
                f"{r['peak_rss_mb']:.1f}",
                _fmt(r["rss_at_up_mb"], ".1f"),
                _fmt(r["rss_slope_mb_s"], ".2f"),
                f"{r['max_buffered_spans']:,}",
            ]
            for r in results
        ],
        [
            "scenario",
            "req/s",
            "ns/span",
            "down",
            "back",
            "median",
            "CPU ns",
            "peak RSS +MB",
            "+MB at up",
            "MB/s late",
            "max buffered",
        ],
    )
    print()
    print("Delivery (unique event ids the receiver kept / events the exporter queued)")
    rows = []
    for r in results:
        got, built = r["received"], r["built"]
        dup = (got["transactions"] - got["unique_transactions"]) + (
            got["errors"] - got["unique_errors"]
        )
        rows.append(
            [
                r["scenario"],
                f"{r['spans']:,}",
                f"{got['spans']:,}",
                f"{got['unique_transactions']:,}/{built.get('transaction', 0):,}",
                f"{got['unique_errors']:,}/{built.get('error', 0) + built.get('violation', 0):,}",
                str(dup),
                f"{r['backlog']:,}",
                _fmt(r["first_delivery_s"], ".1f"),
                _fmt(r["drain_s"], ".1f"),
                _fmt(r["all_delivered_after_end_s"], ".1f"),
            ]
        )
    _table(
        rows,
        [
            "scenario",
            "spans made",
            "spans got",
            "transactions",
            "errors",
            "dup",
            "backlog",
            "1st delivery s",
            "drained s",
            "done s after load",
        ],
    )
    print()
    for r in results:
        print(
            f"{r['scenario']}: dropped {r['dropped'] or '{}'}; client reports said "
            f"{r['received']['client_reports'] or '{}'}"
        )

    checks: list[tuple[bool, str]] = []
    by_name = {r["scenario"]: r for r in results}
    up = by_name.get("up")
    for r in results:
        if up is None or r is up:
            continue
        ratio = r["cost"]["wall"] / up["cost"]["wall"]
        checks.append(
            (
                ratio <= TARGET_RATIO,
                f"{r['scenario']}: app thread vs receiver up {ratio:.3f}x <= {TARGET_RATIO}x "
                f"(while down {r['cost_down']['wall'] / up['cost']['wall']:.3f}x, after "
                f"{r['cost_back']['wall'] / up['cost']['wall']:.3f}x; median chunk "
                f"{r['cost']['median'] / up['cost']['median']:.3f}x; "
                f"CPU {r['cost']['cpu'] / up['cost']['cpu']:.3f}x)",
            )
        )
    for r in all_runs:  # every run must account for every event
        got = r["received"]
        built = sum(r["built"].values())
        delivered = got["unique_transactions"] + got["unique_errors"]
        lost = sum(r["outbox_dropped"].values())
        reported = got["client_reports"] == r["dropped"]
        ok = delivered + lost == built and r["queued_at_end"] == 0 and reported
        bound = "" if lost or r["scenario"] == "down-small-queue" else ", none beyond the bound"
        checks.append(
            (
                ok and (lost == 0 or r["scenario"] == "down-small-queue"),
                f"{r['scenario']}: delivered {delivered:,} + dropped {lost:,} = queued "
                f"{built:,}{bound}; client reports {'match' if reported else 'DIFFER'}",
            )
        )
    small, unbounded = by_name.get("down-small-queue"), by_name.get("down-memory")
    if small and unbounded and unbounded["rss_slope_mb_s"] == unbounded["rss_slope_mb_s"]:
        checks.append(
            (
                small["rss_slope_mb_s"] <= 0.5 * unbounded["rss_slope_mb_s"],
                f"down-small-queue: memory levels off once the outbox is full: "
                f"{small['rss_slope_mb_s']:.2f} MB/s late in the outage vs "
                f"{unbounded['rss_slope_mb_s']:.2f} MB/s with room to grow",
            )
        )
    print()
    for ok, text in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for ok, _ in checks) else 1


def _answer(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=250, help="requests per second (4 spans)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    parser.add_argument(
        "--down-fraction", type=float, default=0.6, help="share of the time Sentry is down"
    )
    parser.add_argument("--error-every", type=int, default=100, help="1 request in N fails")
    parser.add_argument("--drain-limit", type=float, default=60.0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per scenario; medians of the costs kept"
    )
    parser.add_argument("--only", choices=SCENARIOS, action="append", help="run only these")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dsn", default="", help=argparse.SUPPRESS)
    parser.add_argument("--receiver", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receiver is not None:
        serve_receiver(args.receiver)
        return 0
    if args.child:
        child(args)
        return 0
    scenarios = args.only or SCENARIOS
    runs: dict[str, list[dict[str, Any]]] = {scenario: [] for scenario in scenarios}
    for _ in range(args.repeat):  # interleaved: a slow spell of the machine hits them all
        for scenario in scenarios:
            runs[scenario].append(run_scenario(scenario, args))
    results = [merge(runs[scenario]) for scenario in scenarios]
    status = print_report(results, args, [r for each in runs.values() for r in each])
    if args.json:
        print(json.dumps(results, indent=1))
    return status


if __name__ == "__main__":
    sys.exit(main())
