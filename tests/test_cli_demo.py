"""The ``otel-sentry-biz`` console script, run as a user runs it: a subprocess, a clean env."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from otel_sentry_biz.demo import billing
from otel_sentry_biz.receiver import LocalReceiver
from otel_sentry_biz.version import __version__

COMMAND = str(Path(sys.executable).parent / "otel-sentry-biz")
WORK_REQUESTS = sorted({line[0] for line in billing.LINES})


def run(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "OTEL_"))}
    return subprocess.run(
        [COMMAND, *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def section(report: str, title: str) -> tuple[int, list[str]]:
    """The count in a ``Title (n)`` heading and the indented lines under it."""
    match = re.search(rf"^{re.escape(title)} \((\d+)\)\n((?:  .*\n?)*)", report, re.MULTILINE)
    assert match, f"no {title!r} section in:\n{report}"
    return int(match.group(1)), match.group(2).splitlines()


def tags(report: str) -> dict[str, str]:
    block = report.split("Tags (searchable in Sentry)\n", 1)[1]
    return dict(line.strip().split(": ", 1) for line in block.splitlines() if line.strip())


@pytest.fixture(scope="module")
def demo() -> subprocess.CompletedProcess[str]:
    return run("demo", "--timeout", "20")


def test_demo_exits_0_and_reports_what_it_processed(demo) -> None:
    assert demo.returncode == 0, demo.stderr
    failed = 1  # the ERP upload of WR-1007 fails
    assert f"Processed {len(WORK_REQUESTS) - failed} work requests, {failed} failed." in (
        demo.stdout
    )
    assert re.search(r"local receiver on 127\.0\.0\.1:\d+", demo.stdout)
    assert "Not everything was delivered" not in demo.stdout
    assert "Traceback" not in demo.stderr


def test_demo_shows_one_transaction_per_work_request_plus_the_load(demo) -> None:
    count, lines = section(demo.stdout, "Transactions")
    assert count == len(lines) == len(WORK_REQUESTS) + 1
    assert sum("process_work_request" in line for line in lines) == len(WORK_REQUESTS)
    assert any(line.strip().startswith("load_work_requests") for line in lines)
    for number in WORK_REQUESTS:
        assert any(f"work_request={number}" in line for line in lines), number
    failing = [line for line in lines if "status=internal_error" in line]
    assert len(failing) == 1
    assert "work_request=WR-1007" in failing[0]
    assert all("db x1" in line for line in lines)


def test_demo_shows_the_declined_payment_and_the_failed_erp_upload(demo) -> None:
    count, lines = section(demo.stdout, "Errors")
    assert count == 2
    text = "\n".join(lines)
    assert "PaymentDeclined: card refused for Umbrella Gas" in text
    assert "handled, business_impact=CRITICAL, error_category=business_logic" in text
    assert "ConnectionError: ERP refused the upload of WR-1007" in text
    assert "UNHANDLED, business_impact=HIGH, error_category=integration" in text
    assert "work_request=WR-1006" in text
    assert "work_request=WR-1007" in text


def test_demo_shows_the_planted_violations_by_impact(demo) -> None:
    count, lines = section(demo.stdout, "Business rule violations by impact")
    assert count == 3
    text = "\n".join(lines)
    high = text.index("  HIGH (2)")
    medium = text.index("  MEDIUM (1)")
    assert high < medium  # ordered by impact
    assert "CRITICAL (" not in text  # the CRITICAL event is an error, not a violation
    assert "work_request_limit: WR-1003: total $15,960.00 exceeds $15,000" in text
    assert "unit_price_range: WR-1004: unit price $1,250.00" in text
    assert "one_foreman_per_work_request: WR-1005 has 2 foremen: Chen, Novak" in text
    assert "fingerprint=biz-violation/work_request_limit/WR-1003" in text
    assert text.count("level=error") == 2
    assert text.count("level=warning") == 1


def test_demo_lists_the_business_tags_searchable_in_sentry(demo) -> None:
    found = tags(demo.stdout)
    assert found["business_impact"] == "CRITICAL, HIGH, MEDIUM"
    assert found["error_category"] == "business_logic, data_quality, integration"
    assert set(found["violation_rule"].split(", ")) == {
        "one_foreman_per_work_request",
        "unit_price_range",
        "work_request_limit",
    }
    assert "Umbrella Gas" in found["customer"]
    assert found["work_request"].startswith("WR-1001, WR-1002")
    assert {"operation", "customer", "work_request"} <= set(found)


def test_demo_sends_to_the_dsn_it_is_given() -> None:
    with LocalReceiver() as receiver:
        result = run("demo", "--timeout", "20", SENTRY_DSN=receiver.dsn)
        assert result.returncode == 0, result.stderr
        assert "Sent to your Sentry project" in result.stdout
        assert "local receiver" not in result.stdout
        transactions = receiver.events("transaction")
        assert len(transactions) == len(WORK_REQUESTS) + 1
        assert {t["environment"] for t in transactions} == {"demo"}
        assert any(e.get("exception") for e in receiver.events("event"))
        assert receiver.rejected == 0


def test_help() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "usage: otel-sentry-biz" in result.stdout
    assert "demo" in result.stdout
    assert "SENTRY_DSN" in result.stdout


def test_demo_help() -> None:
    result = run("demo", "--help")
    assert result.returncode == 0
    assert "usage: otel-sentry-biz demo" in result.stdout
    assert "--dsn" in result.stdout
    assert "--timeout" in result.stdout


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"otel-sentry-biz {__version__}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["demo", "--bogus"], "unrecognized arguments: --bogus"),
        (["demo", "--timeout", "soon"], "argument --timeout: invalid float value: 'soon'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_a_bad_option_fails_with_a_clear_message(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "usage: otel-sentry-biz" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_no_command_shows_the_help_and_fails() -> None:
    result = run()
    assert result.returncode == 2
    assert "usage: otel-sentry-biz" in result.stdout


def test_a_bad_dsn_is_a_configuration_error_that_hides_the_secret() -> None:
    result = run("demo", "--dsn", "http://public:hunter2@sentry.example.com")
    assert result.returncode == 2
    assert "configuration error" in result.stderr
    assert "DSN" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_rules_check_reports_every_problem_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nname = "big"\nkind = "threshold"\nattribute = "amount"\n')
    result = run("rules", "check", "billing", str(bad))
    assert result.returncode == 1
    assert "billing.toml: ok, 12 rules" in result.stdout
    assert "bad.toml" in result.stdout + result.stderr and "'big'" in result.stdout + result.stderr


def test_rules_check_passes_a_valid_file(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(
        '[[rule]]\nname = "big"\nkind = "threshold"\nattribute = "amount"\nabove = 15000\n'
        'impact = "HIGH"\nmessage = "amount {value}"\n'
    )
    result = run("rules", "check", str(good))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok, 1 rules" in result.stdout or "ok, 1 rule" in result.stdout


def test_send_test_sends_each_kind_and_says_where_to_find_it() -> None:
    with LocalReceiver() as receiver:
        result = run("send-test", "--all", "--dsn", receiver.dsn)
        assert result.returncode == 0, result.stdout + result.stderr
        run_id = re.search(r"otel_sentry_biz_test:(\w+)", result.stdout).group(1)
        assert receiver.wait_for(lambda r: len(r.events()) >= 7, timeout=10)
        events = receiver.events()
    tagged = [e for e in events if e.get("tags", {}).get("otel_sentry_biz_test") == run_id]

    def kind(event: dict) -> str:
        if "business_violation" in event.get("contexts", {}):
            return "violation"
        if "exception" in event:
            return "error"
        return "message" if "logentry" in event else "transaction"

    # The error's, the message's and the violation's spans are transactions too.
    assert sorted(map(kind, tagged)) == ["error", "message", *["transaction"] * 4, "violation"]


def test_send_test_needs_a_kind_and_a_dsn() -> None:
    assert run("send-test").returncode == 2
    no_dsn = run("send-test", "--error")
    assert no_dsn.returncode == 2 and "SENTRY_DSN" in no_dsn.stderr
