"""Pacer: background threads rest while the app is busy, and only then."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from otel_sentry_biz.pacer import NeverRest, Pacer


def _rest_took(pacer: Pacer, cpu_seconds: float, **kwargs: Any) -> float:
    started = time.monotonic()
    pacer.rest(cpu_seconds, **kwargs)
    return time.monotonic() - started


def test_no_rest_while_the_app_is_idle() -> None:
    pacer = Pacer(duty_cycle=0.5, idle_after=0.01)
    time.sleep(0.02)
    assert not pacer.app_is_busy()
    assert _rest_took(pacer, 0.2) < 0.1


def test_rests_in_proportion_to_the_work_while_the_app_produces_spans() -> None:
    pacer = Pacer(duty_cycle=0.5)
    pacer.arrivals += 1
    # duty 0.5, one working thread: rest as long as it worked.
    assert 0.09 <= _rest_took(pacer, 0.1) < 0.4


def test_urgent_work_does_not_rest() -> None:
    pacer = Pacer(duty_cycle=0.5)
    pacer.arrivals += 1
    assert _rest_took(pacer, 0.2, urgent=True) < 0.1


def test_the_duty_cycle_is_shared_by_all_working_threads() -> None:
    pacer = Pacer(duty_cycle=0.5)
    pacer.arrivals += 1
    other = threading.Thread(target=pacer.rest, args=(0.0,))
    other.start()
    other.join()
    # Two threads working: each rests (2 / 0.5 - 1) = 3 times its work.
    pacer.arrivals += 1
    assert _rest_took(pacer, 0.05) >= 0.14


def test_never_rest() -> None:
    pacer = NeverRest()
    pacer.arrivals += 1
    assert _rest_took(pacer, 1.0) < 0.1


def test_duty_cycle_is_validated() -> None:
    with pytest.raises(ValueError, match="duty_cycle"):
        Pacer(duty_cycle=1.5)


def test_a_rest_ends_when_its_event_is_set() -> None:
    pacer = Pacer(duty_cycle=0.01)
    pacer.arrivals += 1
    hurry = threading.Event()
    threading.Timer(0.05, hurry.set).start()
    # 0.1 s of work at a 1% duty cycle: a 0.5 s rest (the cap), cut short at 0.05 s.
    assert _rest_took(pacer, 0.1, until=hurry) < 0.3
    hurry.clear()
    pacer.arrivals += 1
    assert _rest_took(pacer, 0.1, until=hurry) >= 0.45  # not set: the whole rest
