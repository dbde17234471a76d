"""Zero code: ``opentelemetry-instrument`` loads the SQLAlchemy and threading instrumentors.

The app queries SQLite from thread-pool tasks; each statement span must parent under the
request span with its business context, while contrib's threading instrumentor (installed here)
is loaded too. Until the entry points are in ``pyproject.toml``, a stand-in distribution on
``PYTHONPATH`` declares them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ENTRY_POINTS = {
    "otel_sentry_biz_sqlalchemy": "otel_sentry_biz_instrumentors.sqlalchemy:SQLAlchemyInstrumentor",
    "otel_sentry_biz_threading": "otel_sentry_biz_instrumentors.threading:ThreadingInstrumentor",
}

APP = """
    import json
    from concurrent.futures import ThreadPoolExecutor

    import sqlalchemy as sa
    from opentelemetry import trace
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import otel_sentry_biz as biz

    memory = InMemorySpanExporter()
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(memory))
    tracer = trace.get_tracer("app")
    engine = sa.create_engine("sqlite://")

    def lookup(i):
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT :i"), {"i": i})

    with biz.context(customer="ACME"), tracer.start_as_current_span("request"):
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lookup, range(3)))
    names = {s.context.span_id: s.name for s in memory.get_finished_spans()}
    print(json.dumps([
        [s.name, s.instrumentation_scope.name, names.get(s.parent.span_id) if s.parent else None,
         s.attributes.get("biz.customer")]
        for s in memory.get_finished_spans()
    ]))
"""


def _declare_missing_entry_points(where: Path) -> None:
    registered = {ep.name for ep in entry_points(group="opentelemetry_instrumentor")}
    missing = {name: target for name, target in ENTRY_POINTS.items() if name not in registered}
    if not missing:
        return
    dist_info = where / "otel_sentry_biz_entry_points-0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: otel-sentry-biz-entry-points\nVersion: 0\n"
    )
    lines = [f"{name} = {target}" for name, target in missing.items()]
    (dist_info / "entry_points.txt").write_text(
        "[opentelemetry_instrumentor]\n" + "\n".join(lines) + "\n"
    )


def test_opentelemetry_instrument_traces_statements_in_pool_tasks(tmp_path):
    command = shutil.which("opentelemetry-instrument", path=os.path.dirname(sys.executable))
    if command is None:
        pytest.skip("opentelemetry-instrument is not installed next to this Python")
    _declare_missing_entry_points(tmp_path)
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])),
        "OTEL_TRACES_SAMPLER": "always_on",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    env.pop("SENTRY_DSN", None)
    done = subprocess.run(
        [command, sys.executable, "app.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    spans = json.loads(done.stdout.strip().splitlines()[-1])
    statements = [s for s in spans if s[1] == "otel_sentry_biz_instrumentors.sqlalchemy"]
    assert statements == [["SELECT", statements[0][1], "request", "ACME"]] * 3
