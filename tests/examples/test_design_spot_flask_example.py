"""examples/design_spot_flask: journeys, a funnel, security events and fingerprint rules on a
real Flask site, driven by real HTTP clients.

The app's scripted session runs once per module against a real receiver (which keeps every
envelope as it arrived) and writes its OTel metrics with the SDK's console exporter; each
test reads one part of what arrived. Every event passed Relay's normalizer (``run_example``).
"""

from __future__ import annotations

import json
import runpy
import signal
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import clean_env, serving
from tests.examples.conftest import EXAMPLES, ExampleRun, run_example

pytestmark = pytest.mark.slow

APP = EXAMPLES / "design_spot_flask" / "app.py"
STEPS = ["visit", "signup", "first_post", "publish"]


def _visitors() -> dict[str, Any]:
    """The example's scripted session: the passwords it types, the attacker's address."""
    return runpy.run_path(str(APP.with_name("visitors.py")), run_name="design_spot_visitors")


VISITORS = _visitors()


@dataclass(frozen=True)
class SpotRun:
    run: ExampleRun
    #: Every envelope as the receiver got it (decompressed, not parsed).
    raw: list[bytes]
    #: The console metric exporter's JSON documents.
    metrics: list[dict[str, Any]]

    def transactions(self, name: str) -> list[dict[str, Any]]:
        found = [t for t in self.run.transactions if t["transaction"] == name]
        return sorted(found, key=lambda t: t["start_timestamp"])


@pytest.fixture(scope="module")
def spot(tmp_path_factory: pytest.TempPathFactory) -> SpotRun:
    scratch = tmp_path_factory.mktemp("design_spot")
    envelopes, metrics = scratch / "envelopes", scratch / "metrics.jsonl"
    run = run_example(
        "design_spot_flask", scratch, store_dir=envelopes, DESIGN_SPOT_METRICS_FILE=str(metrics)
    )
    raw = [path.read_bytes() for path in sorted(envelopes.glob("*.envelope"))]
    documents = [json.loads(line) for line in metrics.read_text().splitlines() if line]
    return SpotRun(run, raw, documents)


def measurement(event: dict[str, Any], name: str) -> tuple[float, str]:
    found = event["measurements"][name]
    return found["value"], found["unit"]


def test_the_report_shows_the_session_and_the_funnel(spot: SpotRun) -> None:
    lines = spot.run.stdout.splitlines()
    assert lines[:5] == [
        "Scripted session: 27 requests",
        "  ana      GET / 200, POST /signup 201, POST /login 200, POST /posts 201, "
        "POST /posts/1/publish 200",
        "  ben      GET / 200, POST /signup 201, POST /login 401, POST /login 200, "
        "POST /posts 400, POST /posts 500, POST /posts 201, POST /posts/1/publish 403, "
        "POST /posts/2/discard 200",
        "  cara     GET / 200, GET /search 200",
        "  attacker POST /login 401 x11",
    ]
    start = lines.index("Funnel onboarding: 3 entered, 1 converted (33.33%)")
    assert lines[start + 1 : start + 5] == [
        "  visit        3  100.00% of entries, 100.00% of the previous step",
        "  signup       2   66.67% of entries,  66.67% of the previous step",
        "  first_post   2   66.67% of entries, 100.00% of the previous step",
        "  publish      1   33.33% of entries,  50.00% of the previous step",
    ]
    assert lines[-1] == "Sent to SENTRY_DSN: {'transaction': 27, 'error': 2, 'violation': 3}"
    assert len(spot.run.transactions) == 27  # one per request


def test_each_journey_is_followed_across_its_requests(spot: SpotRun) -> None:
    signups = spot.transactions("POST /signup")
    logins = [t for t in spot.transactions("POST /login") if "journey.step" in t["tags"]]
    posts = [t for t in spot.transactions("POST /posts") if "journey.step" in t["tags"]]
    (published,) = [
        t for t in spot.transactions("POST /posts/<int:post_id>/publish") if "journey" in t["tags"]
    ]
    (discarded,) = spot.transactions("POST /posts/<int:post_id>/discard")
    ana, ben = (s["tags"]["journey.id"] for s in signups)
    assert ana != ben
    # The browser's cookie carried each journey id to the next requests.
    assert [t["tags"]["journey.id"] for t in logins] == [ana, ben]
    assert [t["tags"]["journey.id"] for t in posts] == [ana, ben]
    assert published["tags"]["journey.id"] == ana
    assert discarded["tags"]["journey.id"] == ben
    for event in [*signups, *logins, *posts, published, discarded]:
        assert event["tags"]["journey"] == "onboarding"
    for login in logins:
        assert (login["tags"]["journey.step"], measurement(login, "journey_step")) == (
            "logged_in",
            (1.0, "none"),
        )
    for post in posts:
        assert (post["tags"]["journey.step"], measurement(post, "journey_step")) == (
            "first_post",
            (2.0, "none"),
        )
    assert published["tags"]["journey.outcome"] == "completed"
    assert published["tags"]["user_id"] == "1"
    assert discarded["tags"]["journey.outcome"] == "abandoned"
    assert discarded["tags"]["journey.abandon_reason"] == "draft_discarded"
    assert discarded["tags"]["user_id"] == "2"
    for ended in (published, discarded):
        assert measurement(ended, "journey_steps") == (2.0, "none")
        duration, unit = measurement(ended, "journey_duration")
        assert unit == "millisecond"
        started = next(s for s in signups if s["tags"]["journey.id"] == ended["tags"]["journey.id"])
        # From the sign-up request to this one (both included in the wall-clock span).
        assert 0 < duration <= (ended["timestamp"] - started["start_timestamp"]) * 1000


def test_each_funnel_step_carries_the_cohort_conversion_so_far(spot: SpotRun) -> None:
    found = [
        (t["transaction"], t["tags"]["funnel.step"], measurement(t, "funnel_onboarding_conversion"))
        for t in sorted(spot.run.transactions, key=lambda t: t["start_timestamp"])
        if t["tags"].get("funnel") == "onboarding"
    ]
    # All three visit first; ana goes through, then ben: each step counts against 3 entries.
    assert found == [
        ("GET /", "visit", (100.0, "percent")),
        ("GET /", "visit", (100.0, "percent")),
        ("GET /", "visit", (100.0, "percent")),
        ("POST /signup", "signup", (33.33, "percent")),
        ("POST /posts", "first_post", (33.33, "percent")),
        ("POST /posts/<int:post_id>/publish", "publish", (33.33, "percent")),
        ("POST /signup", "signup", (66.67, "percent")),
        ("POST /posts", "first_post", (66.67, "percent")),
    ]


def test_a_burst_of_failed_logins_is_one_security_issue(spot: SpotRun) -> None:
    failures = [
        t
        for t in spot.transactions("POST /login")
        if t["tags"].get("security.event") == "auth_failure"
    ]
    assert Counter(t["tags"]["security.user"] for t in failures) == {"ana": 11, "ben": 1}
    for failure in failures:
        (span,) = [s for s in failure["spans"] if s["op"] == "security"]
        assert span["description"] == "security.auth_failure"
        # Personal data: the client address is not sent without send_default_pii.
        assert failure["tags"]["security.client_ip"] == "[Filtered]"
    (issue,) = [v for v in spot.run.violations if v["tags"]["error_category"] == "security"
                and v["tags"]["violation_rule"] == "auth_failures_per_user"]  # fmt: skip
    assert issue["fingerprint"] == ["biz-violation", "auth_failures_per_user", "ana"]
    assert issue["level"] == "error"
    assert issue["tags"]["business_impact"] == "HIGH"
    assert issue["logentry"]["formatted"] == (
        "6 failed authentications for user ana within 5m (limit 5)"
    )
    assert issue["transaction"] == "POST /login"
    assert issue["contexts"]["business_violation"]["group"] == "ana"
    assert issue["contexts"]["trace"]["trace_id"] in {
        f["contexts"]["trace"]["trace_id"] for f in failures if f["tags"]["security.user"] == "ana"
    }


def test_a_suspicious_search_and_a_denied_publish_are_security_events(spot: SpotRun) -> None:
    (search,) = spot.transactions("GET /search")
    assert (search["tags"]["security.event"], search["tags"]["pattern"]) == (
        "suspicious_activity",
        "sql_injection",
    )
    (suspicious,) = [
        v for v in spot.run.violations if v["tags"]["violation_rule"] == "suspicious_activity"
    ]
    assert suspicious["fingerprint"] == ["biz-violation", "suspicious_activity"]
    assert suspicious["transaction"] == "GET /search"
    denied = [
        t
        for t in spot.transactions("POST /posts/<int:post_id>/publish")
        if t["tags"].get("security.event") == "permission_denied"
    ]
    assert [(t["tags"]["user_id"], t["tags"]["error_type"]) for t in denied] == [
        ("2", "posts.NotAuthor")
    ]
    assert denied[0]["contexts"]["trace"]["data"]["http.response.status_code"] == 403
    # Refusing is the answer, not a failure: no error event for it.
    assert not [e for e in spot.run.errors if e["exception"]["values"][-1]["type"] == "NotAuthor"]


def test_fingerprint_rules_group_errors_by_operation_and_user_type(spot: SpotRun) -> None:
    errors = {e["exception"]["values"][-1]["type"]: e for e in spot.run.errors}
    assert set(errors) == {"ValidationError", "MediaError"}
    validation, media = errors["ValidationError"], errors["MediaError"]
    # fingerprints.toml, rule "validation": whatever the stack or message.
    assert validation["fingerprint"] == ["validation", "post.post_creation", "customer"]
    assert validation["level"] == "warning"
    # Rule "by operation and user type": Sentry's grouping, split.
    assert media["fingerprint"] == ["{{ default }}", "post.process_media", "customer"]
    assert media["level"] == "error"  # process_media is declared HIGH
    for error in (validation, media):
        assert error["transaction"] == "POST /posts"
        assert error["tags"]["user_type"] == "customer"
    (slow,) = [v for v in spot.run.violations if v["tags"]["violation_rule"] == "slow_operation"]
    # Violations match no rule of the file: their own grouping stays.
    assert slow["fingerprint"] == ["biz-violation", "slow_operation", "post.process_media"]
    assert slow["contexts"]["business_violation"]["data"]["biz.threshold_ms"] == 250.0


def test_no_password_or_attacker_address_reaches_sentry(spot: SpotRun) -> None:
    secrets = [*VISITORS["GUESSES"], *VISITORS["PASSWORDS"].values(), VISITORS["MISTYPED"]]
    secrets.append(VISITORS["ATTACKER_IP"])
    assert len(spot.raw) >= len(spot.run.events)  # every envelope was kept
    assert any(b"auth_failures_per_user" in raw for raw in spot.raw)  # the search sees content
    for raw in spot.raw:
        for secret in secrets:
            assert secret.encode() not in raw, secret


def test_the_otel_metrics_count_journeys_funnel_steps_and_features(spot: SpotRun) -> None:
    (document,) = spot.metrics  # one export, at shutdown
    (resource,) = document["resource_metrics"]
    assert resource["resource"]["attributes"]["service.name"] == "design-spot"
    (scope,) = [s for s in resource["scope_metrics"] if s["scope"]["name"] == "otel_sentry_biz"]
    points = {
        (metric["name"], tuple(sorted(point["attributes"].items()))): point
        for metric in scope["metrics"]
        for point in metric["data"]["data_points"]
    }
    counts = {key: point.get("value", point.get("count")) for key, point in points.items()}
    journey = ("biz.journey", "onboarding")
    funnel = ("biz.funnel", "onboarding")
    assert counts == {
        ("biz.journey.started", (journey,)): 2,
        ("biz.journey.step", (journey, ("biz.journey.step", "logged_in"))): 2,
        ("biz.journey.step", (journey, ("biz.journey.step", "first_post"))): 2,
        ("biz.journey.completed", (journey,)): 1,
        ("biz.journey.abandoned", (journey, ("biz.journey.abandon_reason", "draft_discarded"))): 1,
        ("biz.journey.duration", (journey, ("biz.journey.outcome", "completed"))): 1,
        ("biz.journey.duration", (journey, ("biz.journey.outcome", "abandoned"))): 1,
        **{
            ("biz.funnel.step", (funnel, ("biz.funnel.step", step))): reached
            for step, reached in zip(STEPS, [3, 2, 2, 1])
        },
        ("biz.feature.used", (("biz.feature", "post_creator"), ("biz.feature.usage", "image"))): 1,
        ("biz.feature.used", (("biz.feature", "post_creator"), ("biz.feature.usage", "video"))): 1,
        ("biz.feature.used", (("biz.feature", "search"),)): 1,
    }
    # An exemplar links the completion to the very request: the publish transaction's trace.
    (completed,) = points[("biz.journey.completed", (journey,))]["exemplars"]
    (published,) = [
        t
        for t in spot.transactions("POST /posts/<int:post_id>/publish")
        if t["tags"].get("journey.outcome") == "completed"
    ]
    assert f"{completed['trace_id']:032x}" == published["contexts"]["trace"]["trace_id"]


def test_serve_mode_serves_until_interrupted_then_reports(tmp_path: Path) -> None:
    # No SENTRY_DSN: the app's own receiver, and what it got in the report at the end.
    command = [sys.executable, str(APP), "--serve", "--port", "0"]
    with serving(command, tmp_path, clean_env()) as (server, first):
        assert first.startswith("Serving on http://127.0.0.1:"), first + server.stderr.read()
        answer = requests.get(first.split()[2] + "/", timeout=10)
        assert answer.json() == {"site": "design spot", "signed_in": False}
        assert "visitor" in answer.cookies  # the funnel's subject, for the next requests
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, out + err
    lines = out.splitlines()
    assert "Funnel onboarding: 1 entered, 0 converted (0%)" in lines
    assert "  biz.funnel.step{biz.funnel=onboarding, biz.funnel.step=visit} 1" in lines
    marks = lines.index("Sentry received 1 transactions; journey and funnel marks:")
    assert lines[marks + 1 :] == [
        "  GET /                              user -  funnel.step=visit "
        "funnel_onboarding_conversion=100%",
        "Issues:",
    ]
