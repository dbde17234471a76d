"""Whole events and attribute mappings through the scrubber, checked by Relay's normalizer."""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path

import pytest

from otel_sentry_biz.config import ConfigError
from otel_sentry_biz.scrub import FILTERED, Scrubber, ScrubConfig, parse_names, parse_patterns
from tests.relay_oracle import assert_valid
from tests.scrub.corpus import error_event, strings_in, transaction_event

scrubber = Scrubber()


def test_a_transaction_loses_secrets_in_span_data_descriptions_tags_and_trace_data():
    event = transaction_event()
    event["tags"]["contact"] = "ana@example.com"
    event["contexts"]["trace"]["data"]["biz.refresh_token"] = "rt-123456"
    db, http, _ = event["spans"]
    db["description"] = "SELECT * FROM cards WHERE number = '4111111111111111'"
    db["data"]["db.query.text"] = db["description"]
    http["description"] = "GET https://erp.internal/orders?api_key=k-abcdef&page=2"
    http["data"]["http.request.header.authorization"] = "Bearer abc"
    http["data"]["url.full"] = "https://erp.internal/orders?api_key=k-abcdef&page=2"

    out = scrubber.scrub_event(event)

    assert out["tags"]["contact"] == FILTERED
    assert out["contexts"]["trace"]["data"]["biz.refresh_token"] == FILTERED
    db_out, http_out, _ = out["spans"]
    assert db_out["description"] == "SELECT * FROM cards WHERE number = %s"
    assert db_out["data"]["db.query.text"] == "SELECT * FROM cards WHERE number = %s"
    assert http_out["description"] == "GET https://erp.internal/orders?api_key=[Filtered]&page=2"
    assert http_out["data"]["http.request.header.authorization"] == FILTERED
    assert http_out["data"]["url.full"].endswith("?api_key=[Filtered]&page=2")
    # identity and timing are untouched
    for key in ("event_id", "start_timestamp", "timestamp", "transaction", "type"):
        assert out[key] == event[key]
    assert [s["span_id"] for s in out["spans"]] == [s["span_id"] for s in event["spans"]]
    assert_valid(out)


def test_an_error_loses_secrets_in_message_exception_breadcrumbs_request_and_extra():
    event = error_event()
    event["logentry"] = {"formatted": "charge for ana@example.com failed"}
    event["exception"]["values"][0]["value"] = "declined: card 4111 1111 1111 1111"
    event["breadcrumbs"] = {
        "values": [
            {"category": "query", "message": "SELECT * FROM u WHERE pw = 'hunter2'"},
            {"category": "http", "data": {"url": "https://x.example/a?token=abc"}},
        ]
    }
    event["request"] = {
        "url": "https://shop.example.com/checkout?session=s-1&step=2",
        "headers": [["Authorization", "Bearer abc"], ["Accept", "text/html"]],
        "cookies": {"sessionid": "s-123", "theme": "dark"},
        "env": {"REMOTE_ADDR": "10.0.0.1"},
    }
    event["user"] = {"id": "u-1", "ip_address": "10.0.0.1", "email": "ana@example.com"}
    event["extra"] = {"config": {"db": {"password": "pw", "host": "db.internal"}}}

    out = scrubber.scrub_event(event)

    assert out["logentry"]["formatted"] == "charge for [Filtered] failed"
    assert out["exception"]["values"][0]["value"] == "declined: card [Filtered]"
    crumbs = out["breadcrumbs"]["values"]
    assert crumbs[0]["message"] == "SELECT * FROM u WHERE pw = %s"
    assert crumbs[1]["data"]["url"] == "https://x.example/a?token=[Filtered]"
    request = out["request"]
    assert request["url"] == "https://shop.example.com/checkout?session=[Filtered]&step=2"
    assert request["headers"] == [["Authorization", FILTERED], ["Accept", "text/html"]]
    assert request["cookies"] == {"sessionid": FILTERED, "theme": FILTERED}
    assert request["env"] == {"REMOTE_ADDR": FILTERED}
    assert out["user"] == {"id": "u-1", "email": FILTERED}  # the IP is removed, as sentry-sdk does
    assert out["extra"]["config"]["db"] == {"password": FILTERED, "host": "db.internal"}
    assert_valid(out)


def test_secrets_nested_deep_in_lists_and_dicts_are_found():
    event = error_event()
    event["extra"] = {"a": [{"b": [{"c": ("x", {"api_key": "k1"}, "mail ana@example.com")}]}]}
    out = scrubber.scrub_event(event)
    inner = out["extra"]["a"][0]["b"][0]["c"]
    assert inner == ("x", {"api_key": FILTERED}, "mail [Filtered]")


def test_a_container_under_a_sensitive_key_keeps_its_shape():
    out = scrubber.scrub_attributes(
        {"credentials": {"user": "app", "pass": "p", "ttl": 3, "on": True, "none": None}}
    )
    assert out == {
        "credentials": {
            "user": FILTERED,
            "pass": FILTERED,
            "ttl": FILTERED,
            "on": True,
            "none": None,
        }
    }


def test_the_input_is_not_modified():
    event = transaction_event()
    event["spans"][1]["data"]["http.request.header.authorization"] = "Bearer abc"
    before = copy.deepcopy(event)
    scrubber.scrub_event(event)
    assert event == before


def test_scrubbing_is_idempotent():
    event = error_event()
    event["logentry"] = {"formatted": "password=hunter2 for ana@example.com, card 4111111111111111"}
    event["extra"] = {
        "url": "postgres://u:pw@h/db",
        "jwt": "eyJhbGciOi.eyJzdWIi.sig",
        "k": "Bearer x",
    }
    once = scrubber.scrub_event(event)
    assert scrubber.scrub_event(once) == once


def test_attributes_keep_otel_value_types():
    attributes = {
        "biz.amount": 15.2,
        "biz.items": 3,
        "biz.flag": True,
        "biz.tags": ("a", "ana@example.com"),
        "db.statement": "SELECT * FROM t WHERE id = 7",
        "biz.user_password": "p",
    }
    assert scrubber.scrub_attributes(attributes) == {
        "biz.amount": 15.2,
        "biz.items": 3,
        "biz.flag": True,
        "biz.tags": ("a", FILTERED),
        "db.statement": "SELECT * FROM t WHERE id = %s",
        "biz.user_password": FILTERED,
    }
    assert scrubber.scrub_attributes(None) == {}


def test_send_default_pii_keeps_personal_data_keys_but_not_secrets():
    pii = Scrubber(ScrubConfig(send_default_pii=True))
    out = pii.scrub_attributes({"client.address": "10.0.0.1", "user.email": "x", "api_key": "k"})
    assert out == {"client.address": "10.0.0.1", "user.email": "x", "api_key": FILTERED}


def test_extra_denylist_and_safe_keys():
    custom = Scrubber(ScrubConfig(denylist=("customer_ref",), safe_keys=("biz.auth_method",)))
    out = custom.scrub_attributes(
        {"biz.customer_ref": "C-77", "biz.auth_method": "sso", "biz.auth_token": "t"}
    )
    assert out == {
        "biz.customer_ref": FILTERED,
        "biz.auth_method": "sso",
        "biz.auth_token": FILTERED,
    }
    # safe by name, still searched by value
    assert custom.scrub_attributes({"biz.auth_method": "sso for ana@example.com"}) == {
        "biz.auth_method": "sso for [Filtered]"
    }


def test_the_config_lists_are_copied_not_kept():
    names = ["customer_ref"]
    config = ScrubConfig(denylist=names)
    names.append("other")
    assert config.denylist == ("customer_ref",)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"replacement": ""}, "argument replacement=''"),
        ({"patterns": {"bad": "("}}, "argument patterns['bad']='(' is not a valid regex"),
        ({"patterns": {"empty": "x*"}}, "matches the empty string"),
        ({"detectors": frozenset({"emial"})}, "unknown name(s) emial: use any of"),
        ({"max_depth": 0}, "argument max_depth=0 is invalid"),
        ({"replacement": "token=abc"}, "is itself scrubbed"),
    ],
)
def test_invalid_settings_name_the_argument_and_the_fix(arguments, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        Scrubber(ScrubConfig(**arguments))


def test_patterns_and_names_from_variable_text():
    assert parse_patterns('{"internal_id": "\\\\bID-\\\\d{6,}\\\\b"}') == (
        ("internal_id", r"\bID-\d{6,}\b"),
    )
    assert parse_patterns("  ") == ()
    with pytest.raises(ValueError, match="not JSON"):
        parse_patterns("ID-\\d+")
    with pytest.raises(ValueError, match="not a valid regex"):
        parse_patterns('{"x": "("}')
    with pytest.raises(ValueError, match="JSON object of strings"):
        parse_patterns('["x"]')
    assert parse_names("iban, customer_pin,,") == ("iban", "customer_pin")


def test_secrets_in_bytes_and_odd_keys_are_found():
    out = scrubber.scrub_attributes({1: b"mail ana@example.com", (2, 3): "x", None: "password=p"})
    assert out == {1: "mail [Filtered]", (2, 3): "x", None: "password=[Filtered]"}
    assert not any("ana@" in text for text in strings_in(out))


def test_the_scrub_package_does_not_import_the_settings_module_at_import_time():
    # otel_sentry_biz.config reads its variables with parse_patterns / parse_names: a
    # top-level import back would be a cycle.
    package = Path(__file__).resolve().parents[2] / "otel_sentry_biz" / "scrub"
    for module in package.glob("*.py"):
        for node in ast.parse(module.read_text()).body:
            if isinstance(node, ast.ImportFrom):
                assert node.module != "otel_sentry_biz.config", module.name


def test_password_can_be_made_a_safe_key():
    # The marker check once ran as a data value, whose password-mention rule replaced it
    # whole: a scrubber with "password" as a safe key could not be made at all.
    scrubber = Scrubber(ScrubConfig(safe_keys=("password",)))
    assert scrubber.scrub_attributes({"password": "hunter2"}) == {"password": "hunter2"}
