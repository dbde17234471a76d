"""Business attributes -> Sentry tags and data; resource -> release, environment, contexts."""

from __future__ import annotations

import logging
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sentry_relay import StoreNormalizer, parse_release

from otel_sentry_biz.sentry.tags import (
    BIZ_PREFIX,
    MAX_TAG_KEY_LENGTH,
    MAX_TAG_VALUE_LENGTH,
    MAX_TRACKED_KEYS,
    RESERVED_TAG_KEYS,
    ResourceInfo,
    TagMapper,
    TagPolicy,
    json_safe,
    resource_info,
)
from tests.relay_oracle import meta_errors

# Trimming on: that is where Relay enforces the length limits.
RELAY = StoreNormalizer(enable_trimming=True)


def _relay(**fields) -> dict:
    event = {"event_id": "a" * 32, "message": "m", "platform": "python", **fields}
    return RELAY.normalize_event(event)


def test_biz_prefix_is_the_attribute_prefix():
    assert BIZ_PREFIX == "biz."


def test_default_policy_tags_strings_bools_and_ints_not_floats_or_lists():
    tags, _ = TagMapper().split(
        {
            "biz.customer": "ACME",
            "biz.priority": 2,
            "biz.vip": True,
            "biz.amount": 1520.0,
            "biz.skus": ("a", "b"),
            "http.method": "GET",
        }
    )
    assert tags == {"customer": "ACME", "priority": "2", "vip": "true"}


def test_every_attribute_is_in_data_json_safe():
    _, data = TagMapper().split(
        {
            "biz.customer": "ACME",
            "biz.skus": ("a", "b"),
            "blob": b"\xffok",
            "ratio": float("nan"),
            "limit": float("-inf"),
            "huge": 2**70,
            "nested": {"k": (1, 2)},
            "text": "\ud800x",
        }
    )
    assert data == {
        "biz.customer": "ACME",
        "biz.skus": ["a", "b"],
        "blob": "\ufffdok",
        "ratio": "nan",
        "limit": "-inf",
        "huge": str(2**70),
        "nested": {"k": [1, 2]},
        "text": "?x",
    }


@pytest.mark.parametrize(
    "value",
    ["", "   ", "x" * (MAX_TAG_VALUE_LENGTH + 1), "two\nlines", "carriage\rreturn", None],
)
def test_values_that_are_not_tag_shaped_stay_in_data_only(value):
    tags, data = TagMapper().split({"biz.note": value})
    assert tags == {}
    assert "biz.note" in data


def test_values_are_stripped_as_relay_would():
    assert TagMapper().split({"biz.customer": "  ACME "})[0] == {"customer": "ACME"}


def test_value_of_exactly_the_limit_is_tagged():
    value = "v" * MAX_TAG_VALUE_LENGTH
    assert TagMapper().split({"biz.code": value})[0] == {"code": value}


def test_keys_are_sanitized_to_relays_characters():
    tags, _ = TagMapper().split({"biz.order type": "retail", "biz.région": "EU"})
    assert tags == {"order_type": "retail", "r_gion": "EU"}


def test_keys_longer_than_the_limit_are_not_tagged():
    long_key = "k" * (MAX_TAG_KEY_LENGTH + 1)
    exact_key = "k" * MAX_TAG_KEY_LENGTH
    tags, data = TagMapper().split({BIZ_PREFIX + long_key: "v", BIZ_PREFIX + exact_key: "v"})
    assert tags == {exact_key: "v"}
    assert BIZ_PREFIX + long_key in data


RELAY_OWNED_TAGS = ("environment", "release", "dist", "user", "filename", "function")
RELAY_OWNED_TAGS += ("server_name", "site")


@pytest.mark.parametrize("key", RELAY_OWNED_TAGS)
def test_relay_drops_or_overwrites_these_tag_keys(key):
    # The reason they are reserved: sent as they are, the business value is lost.
    normalized = _relay(tags={key: "biz-value"}, server_name="host-1", site="s")
    assert [key, "biz-value"] not in (normalized.get("tags") or [])
    assert key in RESERVED_TAG_KEYS


@pytest.mark.parametrize("key", [*sorted(RESERVED_TAG_KEYS), "sentry:user"])
def test_reserved_keys_keep_their_prefix_so_relay_keeps_them(key):
    tags, _ = TagMapper().split({BIZ_PREFIX + key: "value"})
    assert tags == {BIZ_PREFIX + key: "value"}
    normalized = _relay(tags=tags, release="svc@1.0", server_name="host-1")
    assert normalized["release"] == "svc@1.0"
    assert [BIZ_PREFIX + key, "value"] in normalized["tags"]


def test_explicit_allow_means_exactly_those_keys_floats_included():
    mapper = TagMapper(TagPolicy(allow=frozenset({"amount", "biz.region"})))
    tags, _ = mapper.split({"biz.amount": 1520.5, "biz.region": "EU", "biz.customer": "ACME"})
    assert tags == {"amount": "1520.5", "region": "EU"}


def test_explicit_allow_still_applies_the_length_limits():
    mapper = TagMapper(TagPolicy(allow=frozenset({"note"})))
    assert mapper.split({"biz.note": "n" * 500})[0] == {}


def test_deny_wins_over_allow():
    policy = TagPolicy(allow=frozenset({"customer"}), deny=frozenset({"biz.customer"}))
    assert TagMapper(policy).split({"biz.customer": "ACME"})[0] == {}
    assert TagMapper(TagPolicy(deny={"customer"})).split({"biz.customer": "ACME"})[0] == {}


def test_policy_copies_the_callers_sets():
    allowed = {"customer"}
    policy = TagPolicy(allow=allowed)
    allowed.add("amount")
    assert policy.allow == frozenset({"customer"})


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "10"])
def test_policy_rejects_a_bad_distinct_value_limit(bad):
    with pytest.raises(ValueError, match="max_distinct_values"):
        TagPolicy(max_distinct_values=bad)


def test_high_cardinality_key_stops_being_tagged_and_is_logged_once(caplog):
    mapper = TagMapper(TagPolicy(max_distinct_values=3))
    with caplog.at_level(logging.WARNING, logger="otel_sentry_biz.sentry.tags"):
        tagged = [mapper.split({"biz.order": f"o{i}", "biz.region": "EU"})[0] for i in range(6)]
    assert [t.get("order") for t in tagged] == ["o0", "o1", "o2", None, None, None]
    assert all(t["region"] == "EU" for t in tagged)
    assert mapper.split({"biz.order": "o0"})[0] == {}  # the key is off, even for old values
    warnings = [r for r in caplog.records if "biz.order" in r.getMessage()]
    assert len(warnings) == 1


def test_repeated_values_do_not_count_as_distinct():
    mapper = TagMapper(TagPolicy(max_distinct_values=2))
    for _ in range(100):
        for value in ("a", "b"):
            assert mapper.split({"biz.kind": value})[0] == {"kind": value}


def test_number_of_tracked_keys_is_bounded(caplog):
    mapper = TagMapper()
    with caplog.at_level(logging.WARNING, logger="otel_sentry_biz.sentry.tags"):
        for i in range(MAX_TRACKED_KEYS + 10):
            tags, _ = mapper.split({f"biz.k{i}": "v"})
            assert bool(tags) == (i < MAX_TRACKED_KEYS)
    assert sum("keys seen" in r.getMessage() for r in caplog.records) == 1


def test_guard_is_exact_under_concurrent_use():
    limit = 50
    mapper = TagMapper(TagPolicy(max_distinct_values=limit))
    tagged: list[str] = []
    lock = threading.Lock()

    def worker(offset: int) -> None:
        for i in range(100):
            tags, _ = mapper.split({"biz.order": f"o{(offset * 100 + i)}"})
            if tags:
                with lock:
                    tagged.append(tags["order"])

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(tagged) == limit


TAGGABLE = st.one_of(st.text(max_size=300), st.integers(), st.booleans(), st.floats())


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=60).map(lambda k: BIZ_PREFIX + k), TAGGABLE, max_size=8))
def test_relay_accepts_every_tag_we_produce_unchanged(attributes):
    mapper = TagMapper(TagPolicy(allow=frozenset(k[len(BIZ_PREFIX) :] for k in attributes)))
    tags, data = mapper.split(attributes)
    normalized = _relay(tags=tags, extra=data)
    assert not meta_errors(normalized), tags
    assert sorted(map(tuple, normalized.get("tags") or [])) == sorted(tags.items())


def test_json_safe_caps_nesting():
    deep: list = []
    for _ in range(50):
        deep = [deep]
    assert _relay(extra={"deep": json_safe(deep)}).get("_meta") is None


# -- resource_info ------------------------------------------------------------------------


RESOURCE = {
    "service.name": "billing",
    "service.version": "1.4.2",
    "deployment.environment.name": "staging",
    "host.name": "web-1",
    "process.runtime.name": "cpython",
    "process.runtime.version": "3.11.7",
    "process.runtime.description": "3.11.7 (main) [GCC 12.2.0]",
    "os.type": "linux",
    "os.version": "6.1.0",
    "cloud.provider": "aws",
    "cloud.region": "eu-west-1",
    "telemetry.sdk.name": "opentelemetry",
}


def test_resource_gives_release_environment_server_name_and_contexts():
    info = resource_info(RESOURCE)
    assert (info.release, info.environment, info.server_name) == (
        "billing@1.4.2",
        "staging",
        "web-1",
    )
    assert info.contexts["app"] == {"app_name": "billing", "app_version": "1.4.2"}
    assert info.contexts["runtime"] == {
        "name": "cpython",
        "version": "3.11.7",
        "raw_description": "3.11.7 (main) [GCC 12.2.0]",
    }
    assert info.contexts["os"] == {"name": "linux", "version": "6.1.0"}
    assert info.contexts["cloud_resource"] == {"cloud.provider": "aws", "cloud.region": "eu-west-1"}
    assert info.contexts["otel"] == {"resource": RESOURCE}


def test_relay_accepts_the_resource_fields_unchanged():
    info = resource_info(RESOURCE)
    normalized = _relay(
        release=info.release,
        environment=info.environment,
        server_name=info.server_name,
        contexts=info.contexts,
    )
    assert not meta_errors(normalized)
    assert normalized["release"] == "billing@1.4.2"
    assert normalized["contexts"]["cloud_resource"]["cloud.region"] == "eu-west-1"
    assert normalized["contexts"]["otel"]["resource"]["service.name"] == "billing"


def test_old_deployment_environment_attribute_is_read():
    assert resource_info({"deployment.environment": "prod"}).environment == "prod"


def test_default_service_name_gives_a_bare_version_release_and_no_app_name():
    info = resource_info({"service.name": "unknown_service:python", "service.version": "2.0"})
    assert info.release == "2.0"
    assert "app_name" not in info.contexts.get("app", {})
    assert info.contexts["otel"]["resource"]["service.name"] == "unknown_service:python"


def test_no_version_means_no_release():
    assert resource_info({"service.name": "billing"}).release is None


def test_empty_resource_gives_only_the_otel_context():
    assert resource_info({}) == ResourceInfo({"otel": {"resource": {}}}, None, None, None)


@pytest.mark.parametrize(
    ("name", "version", "release"),
    [
        ("team/billing", "1.0", "team-billing@1.0"),
        ("billing", "1.0\tbeta", "billing@1.0-beta"),
        ("unknown_service", "latest", None),
        ("billing", "v" * 300, None),
    ],
)
def test_release_is_made_valid_or_dropped(name, version, release):
    info = resource_info({"service.name": name, "service.version": version})
    assert info.release == release
    if release is not None:
        parse_release(release)  # raises if Relay would reject it


@pytest.mark.parametrize(
    ("value", "environment"),
    [("prod/eu", "prod-eu"), ("None", None), ("   ", None), ("e" * 65, None), ("e" * 64, "e" * 64)],
)
def test_environment_is_made_valid_or_dropped(value, environment):
    info = resource_info({"deployment.environment.name": value})
    assert info.environment == environment
    if environment is not None:
        assert not meta_errors(_relay(environment=environment))


def test_overlong_host_name_is_not_a_server_name():
    assert resource_info({"host.name": "h" * 201}).server_name is None
