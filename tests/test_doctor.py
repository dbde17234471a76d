"""otel-sentry-biz doctor: every problem listed, hazards named, volume estimated."""

from __future__ import annotations

import io
import socket

from otel_sentry_biz.config import Settings
from otel_sentry_biz.doctor import check, report, volume
from otel_sentry_biz.receiver import LocalReceiver


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_sound_setup_has_no_problems() -> None:
    with LocalReceiver() as receiver:
        out = io.StringIO()
        status = report(out, environ={"SENTRY_DSN": receiver.dsn, "SENTRY_ENVIRONMENT": "dev"})
    assert status == 0, out.getvalue()
    assert "no problems found" in out.getvalue()
    assert "answers" in out.getvalue()


def test_every_bad_setting_is_listed_not_just_the_first() -> None:
    settings, found = check(
        {
            "SENTRY_DSN": "http://k@127.0.0.1:9/1",
            "SENTRY_TRACES_SAMPLE_RATE": "2",
            "SENTRY_SAMPLE_RATE": "often",
            "SENTRY_MAX_EVENTS_PER_ISSUE": "-1",
        }
    )
    assert settings is None
    joined = "\n".join(found.problems)
    for variable in (
        "SENTRY_TRACES_SAMPLE_RATE",
        "SENTRY_SAMPLE_RATE",
        "SENTRY_MAX_EVENTS_PER_ISSUE",
    ):
        assert variable in joined
    assert len(found.problems) == 3


def test_production_hazards_and_a_silent_dsn_host_are_problems() -> None:
    _, found = check(
        {
            "SENTRY_DSN": f"http://k@127.0.0.1:{_closed_port()}/1",
            "SENTRY_ENVIRONMENT": "production",
            "SENTRY_DEBUG": "true",
            "SENTRY_SEND_DEFAULT_PII": "true",
        },
        connect_timeout=1.0,
    )
    joined = "\n".join(found.problems)
    assert "does not answer" in joined
    assert "SENTRY_DEBUG=false" in joined
    assert "SENTRY_SEND_DEFAULT_PII=false" in joined


def test_a_missing_dsn_is_a_problem_and_exits_1() -> None:
    out = io.StringIO()
    assert report(out, environ={}) == 1
    assert "SENTRY_DSN is not set" in out.getvalue()


def test_volume_follows_the_rates_and_keeps_failed_traces() -> None:
    settings = Settings.load({}, traces_sample_rate=0.1, sample_rate=1.0)
    estimate = volume(settings, requests_per_second=1.0, error_rate=0.01, price=0.000045)
    month = 30 * 24 * 3600
    assert estimate["requests"] == month
    # 10% of traces, plus the failed ones among the other 90% (business-aware keep).
    assert round(estimate["transactions"]) == round(month * 0.1 + month * 0.01 * 0.9)
    assert round(estimate["errors"]) == round(month * 0.01)
    assert abs(estimate["cost"] - estimate["events"] * 0.000045) < 1e-6
