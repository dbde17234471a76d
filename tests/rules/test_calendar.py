"""calendar: future dates, weekend work and after-hours activity, in a time zone."""

from __future__ import annotations

import pytest

from otel_sentry_biz.rules import Calendar
from tests.rules.conftest import MONDAY_10H

FUTURE = Calendar(name="future_work_date", check="future", attribute="work_date", impact="CRITICAL")
WEEKEND = Calendar(name="weekend_work", check="weekend", attribute="work_date", impact="LOW")
AFTER_HOURS = Calendar(
    name="after_hours_change", check="after_hours", hours="07:00-18:00", timezone="Europe/Berlin"
)
HOUR = 3600.0


def test_a_future_work_date_is_reported(judge):
    judge.use(FUTURE)  # the clock says Monday 2025-06-02
    (found,) = judge.span(work_date="2025-06-03")
    assert found["biz.violation.message"] == "work_date 2025-06-03 is in the future"
    (found,) = judge.span(work_date="2030-01-01T08:00:00Z")
    assert found["biz.violation.impact"] == "CRITICAL"


@pytest.mark.parametrize("date", ["2025-06-02", "2025-05-30", "2025-06-02T09:59:00+00:00", "bad"])
def test_past_and_present_dates_stay_clean(judge, date):
    judge.use(FUTURE)
    assert judge.span(work_date=date) == []


def test_weekend_work_is_reported(judge):
    judge.use(WEEKEND)
    (found,) = judge.span(work_date="2025-06-07")
    assert found["biz.violation.message"] == "work_date 2025-06-07 is on a Saturday"
    assert found["biz.violation.data.alert_tier"] == "daily_digest"


def test_weekday_work_stays_clean_and_weekend_days_are_configurable(judge):
    judge.use(WEEKEND)
    assert [judge.span(work_date=f"2025-06-0{day}") for day in range(2, 7)] == [[]] * 5
    judge.use(Calendar(name="friday_off", check="weekend", attribute="work_date", weekend=["fri"]))
    assert len(judge.span(work_date="2025-06-06")) == 1
    assert judge.span(work_date="2025-06-07") == []


def test_after_hours_activity_is_judged_in_the_configured_time_zone(judge):
    judge.use(AFTER_HOURS)
    # 17:30 UTC is 19:30 in Berlin (summer time): after hours there.
    (found,) = judge.span("UPDATE lines", at=MONDAY_10H + 7.5 * HOUR)
    assert "19:30 Europe/Berlin" in found["biz.violation.message"]


def test_activity_in_working_hours_stays_clean(judge):
    judge.use(AFTER_HOURS)
    assert judge.span("UPDATE lines", at=MONDAY_10H) == []  # 12:00 in Berlin
    assert judge.span("UPDATE lines", at=MONDAY_10H - 4.5 * HOUR) == []  # 07:30 in Berlin
    judge.use(Calendar(name="utc_hours", check="after_hours", hours="07:00-18:00"))
    assert judge.span("UPDATE lines", at=MONDAY_10H + 7.5 * HOUR) == []  # 17:30 UTC


def test_night_shift_hours_cross_midnight(judge):
    judge.use(Calendar(name="night_shift", check="after_hours", hours="22:00-06:00"))
    assert judge.span(at=MONDAY_10H + 13 * HOUR) == []  # 23:00
    assert len(judge.span(at=MONDAY_10H)) == 1  # 10:00 is outside the night shift
