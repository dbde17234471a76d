"""``otel-sentry-biz doctor``: is this process's monitoring set up right, and what will it cost?

Checks every setting (listing every problem, not just the first), production hazards (debug
on, PII on), that the DSN's host answers, that the outbox path is writable, which
instrumentors ``opentelemetry-instrument`` would load; then estimates the monthly event
volume and cost for a request rate, as the agent seed's cost table does.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Optional, TextIO
from urllib.parse import urlsplit

from otel_sentry_biz.config import VARIABLES, ConfigError, Settings

#: Sentry's on-demand price per event quoted by the agent seed; pass --price for your plan.
DEFAULT_PRICE_PER_EVENT = 0.000045
SECONDS_PER_MONTH = 30 * 24 * 3600


@dataclass
class Findings:
    """What the doctor found: problems fail the check, notes only inform."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def check(
    environ: Optional[Mapping[str, str]] = None, *, connect_timeout: float = 3.0
) -> tuple[Optional[Settings], Findings]:
    """Check the settings in ``environ`` (default: this process's environment)."""
    env = dict(os.environ if environ is None else environ)
    found = Findings()
    for variable in VARIABLES:
        raw = env.get(variable.env, "").strip()
        if not raw:
            continue
        try:
            Settings.load({variable.env: raw})
        except ConfigError as exc:
            found.problems.append(str(exc))
    if found.problems:
        return None, found
    settings = Settings.load(env)
    _check_dsn(settings, found, connect_timeout)
    _check_production(settings, found)
    _check_outbox(settings, found)
    return settings, found


def instrumentors() -> list[tuple[str, str]]:
    """(name, state) of every installed OTel instrumentor: would it load here?"""
    from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

    rows = []
    try:
        found = list(entry_points(group="opentelemetry_instrumentor"))
    except TypeError:  # Python 3.9
        found = list(entry_points().get("opentelemetry_instrumentor", []))
    for entry_point in sorted(found, key=lambda e: e.name):
        try:
            instrumentor = entry_point.load()()
            conflict = get_dependency_conflicts(instrumentor.instrumentation_dependencies())
        except Exception as exc:  # a broken plugin must not break the doctor
            rows.append((entry_point.name, f"broken: {type(exc).__name__}: {exc}"))
            continue
        rows.append(
            (entry_point.name, "would load" if conflict is None else f"skipped: {conflict}")
        )
    return rows


def volume(
    settings: Settings, requests_per_second: float, error_rate: float, price: float
) -> dict[str, float]:
    """Monthly transactions, errors, events and cost for a request rate."""
    requests = requests_per_second * SECONDS_PER_MONTH
    transactions = requests * settings.traces_sample_rate
    errors = requests * error_rate * settings.sample_rate
    # Business-aware keep: failed requests outside the sample still send their transaction.
    transactions += requests * error_rate * (1 - settings.traces_sample_rate)
    events = transactions + errors
    return {
        "requests": requests,
        "transactions": transactions,
        "errors": errors,
        "events": events,
        "cost": events * price,
    }


def report(
    out: TextIO,
    *,
    requests_per_second: float = 10.0,
    error_rate: float = 0.01,
    price: float = DEFAULT_PRICE_PER_EVENT,
    environ: Optional[Mapping[str, str]] = None,
) -> int:
    """Print the doctor's findings; 0 when there is no problem, 1 otherwise."""
    settings, found = check(environ)
    if settings is not None:
        print(
            f"profile {settings.profile}, environment {settings.environment or '(from resource)'}",
            file=out,
        )
        print(
            f"rates: traces {settings.traces_sample_rate}, errors {settings.sample_rate}, "
            f"max {settings.max_events_per_issue} events per issue per hour",
            file=out,
        )
    print("\ninstrumentors (opentelemetry-instrument):", file=out)
    for name, state in instrumentors() or [("(none installed)", "")]:
        print(f"  {name:<24} {state}", file=out)
    if settings is not None:
        estimate = volume(settings, requests_per_second, error_rate, price)
        print(
            f"\nexpected volume at {requests_per_second:g} requests/s, "
            f"{error_rate:.1%} failing (30 days):",
            file=out,
        )
        print(f"  requests      {estimate['requests']:>14,.0f}", file=out)
        print(f"  transactions  {estimate['transactions']:>14,.0f}", file=out)
        print(f"  errors        {estimate['errors']:>14,.0f}  (before per-issue caps)", file=out)
        print(f"  events        {estimate['events']:>14,.0f}", file=out)
        print(f"  cost          {estimate['cost']:>14,.2f} $ at ${price:g}/event", file=out)
    for note in found.notes:
        print(f"note: {note}", file=out)
    if found.problems:
        print(f"\n{len(found.problems)} problem(s):", file=out)
        for problem in found.problems:
            print(f"  - {problem}", file=out)
        return 1
    print("\nno problems found", file=out)
    return 0


def _check_dsn(settings: Settings, found: Findings, timeout: float) -> None:
    if not settings.dsn:
        found.problems.append(
            "SENTRY_DSN is not set: nothing will reach Sentry; set it to your project's DSN"
        )
        return
    parts = urlsplit(settings.dsn)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            pass
    except OSError as exc:
        found.problems.append(
            f"the DSN's host {parts.hostname}:{port} does not answer ({exc.strerror or exc}): "
            "check the DSN, DNS and outbound firewall rules"
        )
    else:
        found.notes.append(f"the DSN's host {parts.hostname}:{port} answers")


def _check_production(settings: Settings, found: Findings) -> None:
    if settings.profile != "production":
        return
    if settings.debug:
        found.problems.append(
            "SENTRY_DEBUG is on in production: it logs every event; set SENTRY_DEBUG=false"
        )
    if settings.send_default_pii:
        found.problems.append(
            "SENTRY_SEND_DEFAULT_PII is on in production: user data goes to Sentry; "
            "set SENTRY_SEND_DEFAULT_PII=false unless your privacy review allows it"
        )
    if settings.traces_sample_rate >= 1.0:
        found.notes.append(
            "every trace is sent in production (SENTRY_TRACES_SAMPLE_RATE=1.0): see the "
            "volume below; failed traces are kept whatever the rate"
        )


def _check_outbox(settings: Settings, found: Findings) -> None:
    if not settings.outbox:
        found.notes.append("the outbox is in memory: set OTEL_SENTRY_BIZ_OUTBOX to survive crashes")
        return
    folder = Path(settings.outbox).resolve().parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        found.problems.append(
            f"OTEL_SENTRY_BIZ_OUTBOX={settings.outbox!r}: {folder} is not a writable folder"
        )
