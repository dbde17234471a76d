"""Run an example app once against a real local receiver and keep what arrived."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from otel_sentry_biz.receiver import LocalReceiver
from tests.e2e.conftest import clean_env
from tests.relay_oracle import assert_valid

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@dataclass(frozen=True)
class ExampleRun:
    """An example's output and everything the receiver got from it."""

    stdout: str
    events: list[dict[str, Any]]
    client_reports: list[dict[str, Any]]

    @property
    def transactions(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == "transaction"]

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [e for e in self.events if "exception" in e]

    @property
    def violations(self) -> list[dict[str, Any]]:
        return [e for e in self.events if "business_violation" in e.get("contexts", {})]

    def discarded(self, reason: str, category: str) -> int:
        return sum(
            item["quantity"]
            for report in self.client_reports
            for item in report.get("discarded_events", [])
            if (item["reason"], item["category"]) == (reason, category)
        )


def run_example(
    name: str, cwd: Path, *, dsn: bool = True, store_dir: Optional[Path] = None, **env: str
) -> ExampleRun:
    """Run ``examples/<name>/app.py`` with SENTRY_DSN pointing at a fresh receiver.

    Every event that arrived is checked by Relay's normalizer. With ``dsn=False`` the app gets
    no SENTRY_DSN (it starts its own receiver), and nothing is expected here. With
    ``store_dir``, the receiver also writes each envelope there as it arrived (one file each).
    """
    with LocalReceiver(store_dir=store_dir) as receiver:
        if dsn:
            env["SENTRY_DSN"] = receiver.dsn
        done = subprocess.run(
            [sys.executable, str(EXAMPLES / name / "app.py")],
            env=clean_env(**env),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=cwd,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Traceback" not in done.stderr, done.stderr  # nothing failed inside, either
        events = receiver.events()
        reports = receiver.client_reports()
    for event in events:
        assert_valid(event)
    return ExampleRun(done.stdout, events, reports)
