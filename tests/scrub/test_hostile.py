"""Property-based: the scrubber never raises, never hangs, and never lets a planted secret out,
whatever surrounds it and wherever it sits."""

from __future__ import annotations

import math
import string
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_sentry_biz.scrub import FILTERED, Scrubber, ScrubConfig
from otel_sentry_biz.scrub.detectors import IBAN_LENGTHS
from tests.scrub.corpus import strings_in

scrubber = Scrubber()
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- arbitrary input --------------------------------------------------------------------------

_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    _text,
    st.binary(max_size=40),
    st.sampled_from(["\udcff", "\x00", "é" * 3, "[Filtered]", "%s"]),
)
_keys = st.one_of(
    _text,
    st.integers(),
    st.none(),
    st.sampled_from(["password", "http.request.header.cookie", "type", "value", "op", "spans"]),
)
_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(_keys, children, max_size=4),
        st.lists(st.tuples(_text, children), max_size=3),  # Relay's pair lists
    ),
    max_leaves=25,
)
_event_keys = st.one_of(
    st.sampled_from(
        [
            "message",
            "logentry",
            "exception",
            "breadcrumbs",
            "request",
            "user",
            "tags",
            "extra",
            "contexts",
            "spans",
            "transaction",
            "event_id",
            "timestamp",
            "type",
            "sdk",
        ]
    ),
    _text,
)


@SETTINGS
@given(st.dictionaries(_event_keys, _values, max_size=6))
def test_any_event_is_scrubbed_without_raising(event):
    out = scrubber.scrub_event(event)
    assert set(out) == set(event)


@SETTINGS
@given(st.dictionaries(_keys, _values, max_size=6))
def test_any_attributes_are_scrubbed_without_raising_and_idempotently(attributes):
    once = scrubber.scrub_attributes(attributes)
    assert _same(scrubber.scrub_attributes(once), once)


@SETTINGS
@given(st.text(max_size=300))
def test_any_text_is_scrubbed_without_raising_and_idempotently(text):
    once = scrubber.scrub_text(text)
    assert scrubber.scrub_text(once) == once


def test_deep_nesting_and_cycles_end_at_max_depth():
    deep: Any = "ana@example.com"
    for _ in range(5000):
        deep = {"a": [deep]}
    cyclic: dict[str, Any] = {"name": "x"}
    cyclic["self"] = cyclic
    out = Scrubber(ScrubConfig(max_depth=16)).scrub_attributes({"deep": deep, "cyclic": cyclic})
    assert "ana@example.com" not in list(strings_in(out))


def test_huge_hostile_strings_finish_quickly():
    hostile = [
        "1 " * 500_000,
        "a@" * 500_000,
        "password=" * 100_000,
        "x:" * 500_000,
        "'" * 1_000_000,
        "-----BEGIN RSA PRIVATE KEY-----" + "a" * 1_000_000,
        "4111 " * 200_000,
    ]
    for text in hostile:
        started = time.perf_counter()
        scrubber.scrub_text(text)
        scrubber.scrub_attributes({"db.statement": text, "note": text})
        assert time.perf_counter() - started < 2.0, text[:20]


def test_a_long_text_is_cut_without_leaving_part_of_a_card():
    text = "x " * 8185 + "4111 1111 1111 1111 end"
    out = scrubber.scrub_text(text)
    assert out.endswith("...") and "4111" not in out


# -- planted secrets --------------------------------------------------------------------------

_alnum = string.ascii_letters + string.digits


def _luhn(partial: str) -> str:
    total = 0
    for index, char in enumerate(reversed(partial)):
        value = int(char) * (2 if index % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return partial + str((10 - total % 10) % 10)


@st.composite
def cards(draw):
    prefix = draw(st.sampled_from(["4", "51", "55", "34", "37", "6011", "2221", "2720", "35"]))
    length = 15 if prefix in ("34", "37") else draw(st.sampled_from([16, 16, 19]))
    body = draw(
        st.text("0123456789", min_size=length - 1 - len(prefix), max_size=length - 1 - len(prefix))
    )
    number = _luhn(prefix + body)
    style = draw(st.sampled_from(["plain", "spaces", "dashes"]))
    if style == "plain":
        return number, number
    sep = " " if style == "spaces" else "-"
    text = sep.join(number[i : i + 4] for i in range(0, len(number), 4))
    return text, text


@st.composite
def ibans(draw):
    country = draw(st.sampled_from(sorted(IBAN_LENGTHS)))
    bban = draw(
        st.text(
            string.ascii_uppercase + string.digits * 3,
            min_size=IBAN_LENGTHS[country] - 4,
            max_size=IBAN_LENGTHS[country] - 4,
        )
    )
    number = "".join(str(int(c, 36)) for c in bban + country + "00")
    iban = f"{country}{98 - int(number) % 97:02d}{bban}"
    if draw(st.booleans()):
        iban = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return iban, iban


@st.composite
def emails(draw):
    local = draw(st.text(_alnum, min_size=1, max_size=12)) + draw(
        st.sampled_from(["", ".x", "+tag", "_1", "-ops"])
    )
    domain = draw(st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=10))
    tld = draw(st.sampled_from(["com", "org", "co.uk", "io", "example"]))
    address = f"{local}@{domain}.{tld}"
    return address, address


@st.composite
def ssns(draw):
    area = draw(st.integers(1, 899).filter(lambda n: n != 666))
    ssn = f"{area:03d}-{draw(st.integers(1, 99)):02d}-{draw(st.integers(1, 9999)):04d}"
    return ssn, ssn


def _secret_token(draw, size=24):
    return "Zq9" + draw(st.text(_alnum, min_size=size, max_size=size))


@st.composite
def tokens(draw):
    body = _secret_token(draw)
    kind = draw(
        st.sampled_from(["bearer", "stripe", "github", "pat", "aws", "slack", "jwt", "openai"])
    )
    if kind == "bearer":
        return f"Bearer {body}", body
    if kind == "stripe":
        key = draw(st.sampled_from(["sk_live_", "sk_test_", "pk_live_", "rk_test_"])) + body
    elif kind == "github":
        key = draw(st.sampled_from(["ghp_", "gho_", "ghs_"])) + body + "abcdefghijkl"
    elif kind == "pat":
        key = "github_pat_" + body
    elif kind == "aws":
        key = "AKIA" + draw(
            st.text(string.ascii_uppercase + string.digits, min_size=16, max_size=16)
        )
    elif kind == "slack":
        key = draw(st.sampled_from(["xoxb-", "xoxp-"])) + "1234567890-" + body
    elif kind == "openai":
        key = "sk-proj-" + body
    else:
        key = f"eyJhbGciOiJIUzI1NiJ9.eyJ{body}.{body[::-1]}"
    return key, key


@st.composite
def assignments(draw):
    value = _secret_token(draw, draw(st.integers(3, 20)))
    name = draw(
        st.sampled_from(
            [
                "password",
                "api_key",
                "access_token",
                "client_secret",
                "X-Api-Key",
                "passwd",
                "auth_token",
                "apiKey",
                "db.password",
                "session_id",
            ]
        )
    )
    form = draw(
        st.sampled_from(
            [
                "{n}={v}",
                "{n}: {v}",
                "{n} = {v}",
                '"{n}": "{v}"',
                "'{n}': '{v}'",
                "?{n}={v}&x=1",
                "{n} is {v}",
            ]
        )
    )
    return form.format(n=name, v=value), value


@st.composite
def url_passwords(draw):
    password = _secret_token(draw, 8)
    scheme = draw(st.sampled_from(["postgres", "https", "redis", "amqp", "ftp"]))
    return f"{scheme}://user:{password}@db.internal:5432/x", password


_secrets = st.one_of(cards(), ibans(), emails(), ssns(), tokens(), assignments(), url_passwords())
_delimiters = st.sampled_from([" ", "\n", ", ", " (", ") ", ": ", "; ", " <", "> ", " [", "] "])
_noise = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
_path = st.lists(st.one_of(st.text("abxyz", min_size=1, max_size=4), st.integers(0, 2)), max_size=6)
_top = st.sampled_from(
    [
        "message",
        "extra",
        "tags",
        "contexts",
        "breadcrumbs",
        "request",
        "spans",
        "transaction",
        "user",
        "exception",
        "data",
    ]
)


def _place(value: Any, path: list[Any]) -> Any:
    for step in reversed(path):
        value = [None] * step + [value] if isinstance(step, int) else {step: value}
    return value


@SETTINGS
@given(_secrets, _noise, _delimiters, _delimiters, _noise, _path, _top)
def test_a_planted_secret_never_survives(secret, before, left, right, after, path, top):
    text, core = secret
    carrier = before + left + text + right + after
    event = {"event_id": "0" * 32, top: _place(carrier, path) if path else carrier}
    leaked = [s for s in strings_in(scrubber.scrub_event(event)) if core in s]
    assert not leaked, (carrier, leaked)
    attributes = scrubber.scrub_attributes({"x.y": _place(carrier, path)})
    assert not [s for s in strings_in(attributes) if core in s]


@SETTINGS
@given(
    st.sampled_from(
        [
            "password",
            "secret",
            "api_key",
            "authorization",
            "x-auth-token",
            "biz.user_password",
            "Cookie",
            "sessionId",
        ]
    ),
    _values,
    _path,
)
def test_anything_under_a_sensitive_key_is_replaced(key, value, path):
    out = scrubber.scrub_attributes({"root": _place({key: value}, path)})
    for leaf in _leaves(_at(out["root"], path)[key]):
        assert leaf in (FILTERED, "", None, True, False) or _is_blank(leaf), leaf


def _at(value: Any, path: list[Any]) -> Any:
    for step in path:
        value = value[step]
    return value


def _leaves(value: Any) -> list[Any]:
    """The values in a structure; names (dict keys, the first of [name, value] pairs) aside."""
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if value and isinstance(value, (list, tuple)) and all(_is_pair(item) for item in value):
        return [leaf for item in value for leaf in _leaves(item[1])]
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def _is_pair(item: Any) -> bool:
    return isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str)


def _is_blank(value: Any) -> bool:
    """A float that is not a number: nothing to hide."""
    return isinstance(value, float) and not math.isfinite(value)


def _same(a: Any, b: Any) -> bool:
    """Equality that treats NaN as equal to itself."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    return a == b


#: Top-level fields scrub_event has rules of its own for.
_FIELDS_WITH_RULES = ("message", "logentry", "user", "measurements")


@SETTINGS
@given(
    st.dictionaries(
        _event_keys.filter(lambda key: key not in _FIELDS_WITH_RULES), _values, max_size=6
    )
)
def test_an_event_is_scrubbed_alike_on_its_short_and_its_field_by_field_route(event):
    # Without a field that has rules of its own, scrub_event walks the event as any mapping;
    # a "message" that is not text (so no rule applies) makes it go field by field instead.
    short = scrubber.scrub_event(event)
    by_field = scrubber.scrub_event({**event, "message": 0})
    assert by_field.pop("message") == 0
    assert short == by_field


def test_an_id_seen_before_is_kept_and_anything_else_under_an_id_key_is_scrubbed():
    local = Scrubber()
    span_id = "00f067aa0ba902b7"
    for _ in range(2):  # the second time the id is remembered
        event = {"span_id": span_id, "spans": [{"span_id": span_id, "parent_span_id": span_id}]}
        assert local.scrub_event(event) == event
    leaked = {"span_id": "password=hunter2 and more", "trace_id": "ana@example.com"}
    text = " ".join(strings_in(local.scrub_event(leaked)))
    assert "hunter2" not in text and "ana@example.com" not in text


def test_a_card_number_under_an_id_key_of_the_app_is_scrubbed():
    # Ids are copied unread only where events hold their own (the event, its trace context
    # and its spans); the app's attributes named like them are data: 16 digits may be a card.
    card = "4111111111111111"
    local = Scrubber()
    assert local.scrub_attributes({"span_id": card, "event_id": card}) == {
        "span_id": "[Filtered]",
        "event_id": "[Filtered]",
    }
    event = {
        "event_id": "0" * 32,
        "contexts": {"trace": {"span_id": "00f067aa0ba902b7", "data": {"trace_id": card}}},
        "tags": {"segment_id": card},
        "spans": [{"span_id": "00f067aa0ba902b7", "data": {"span_id": card}}],
    }
    scrubbed = local.scrub_event(event)
    assert card not in " ".join(strings_in(scrubbed))
    assert scrubbed["event_id"] == "0" * 32
    assert scrubbed["contexts"]["trace"]["span_id"] == "00f067aa0ba902b7"
    assert scrubbed["spans"][0]["span_id"] == "00f067aa0ba902b7"
