"""Hostile values: what an application (or an attacker feeding it) may hand the package."""

from __future__ import annotations

import datetime
import decimal
import enum
from typing import Any

from hypothesis import strategies as st

# -- text ---------------------------------------------------------------------------------

#: Every code point, lone surrogates and control characters included.
any_char = st.characters(exclude_categories=())
weird_char = st.sampled_from(
    ["\x00", "\n", "\r", "\t", "\x7f", "\u2028", "\ufeff", "\u200b", "\ud800", "\udfff", "é", "😀"]
)
short_text = st.text(st.one_of(any_char, weird_char), max_size=30)
#: Lengths around the limits that matter: tag values (200), sentry-sdk (1024), the scrubber's
#: cut (16384), Relay's (8192 for messages), and up to ~100 KB.
_sizes = st.one_of(
    st.sampled_from([0, 1, 199, 200, 201, 1024, 1025, 8192, 8193, 16384, 16385, 100_000]),
    st.integers(0, 100_000),
)
huge_text = st.builds(
    lambda chunk, size: (chunk * (size // len(chunk) + 1))[:size],
    st.text(st.one_of(any_char, weird_char), min_size=1, max_size=12),
    _sizes,
)
any_text = st.one_of(short_text, huge_text)
span_name = any_text

# -- attribute keys -------------------------------------------------------------------------

#: Keys the bridge reads: naming, status, tags, measurements, scrubbing, judgement.
KNOWN_KEYS = (
    "http.route",
    "http.request.method",
    "http.method",
    "http.response.status_code",
    "http.status_code",
    "http.target",
    "http.url",
    "url.full",
    "url.path",
    "server.address",
    "db.system",
    "db.system.name",
    "db.query.text",
    "db.statement",
    "db.operation.name",
    "db.collection.name",
    "messaging.system",
    "messaging.destination.name",
    "messaging.operation.type",
    "rpc.system",
    "rpc.service",
    "rpc.method",
    "rpc.grpc.status_code",
    "celery.task_name",
    "sentry.op",
    "sentry.name",
    "sentry.description",
    "sentry.source",
    "biz.impact",
    "biz.category",
    "biz.operation",
    "biz.handled",
    "biz.customer",
    "biz.amount",
    "biz.work_request",
    "exception.type",
    "exception.message",
    "exception.stacktrace",
    "http.request.header.authorization",
    "user.email",
    "transaction",
)
known_key = st.sampled_from(KNOWN_KEYS)
attribute_key = st.one_of(
    known_key,
    short_text,
    st.builds(lambda text: "biz." + text, short_text),
    st.builds(lambda key, text: f"{key}.{text}", known_key, short_text),
    st.sampled_from(
        ["", ".", "biz.", "biz..x", "a\nb", "biz.a\x00b", "biz.ключ", "biz." + "k" * 300]
    ),
)

# -- OTel attribute values (span.set_attribute) --------------------------------------------

floats = st.floats(allow_nan=True, allow_infinity=True)
ints = st.one_of(
    st.integers(),
    st.integers(-(2**300), 2**300),
    st.sampled_from([2**53 + 1, 2**63, -(2**63) - 1, 2**64]),
)
scalar = st.one_of(st.booleans(), ints, floats, any_text, st.binary(max_size=64))
otel_value = st.one_of(
    scalar,
    st.lists(st.booleans(), max_size=5),
    st.lists(ints, max_size=5),
    st.lists(floats, max_size=5),
    st.lists(short_text, max_size=5),
    st.lists(scalar, max_size=5),  # mixed: the SDK drops it
    st.tuples(),
    st.none(),  # dropped by the SDK with a warning
)
#: The judgement attributes, drawn often and with unknown values too (an unknown biz.impact
#: once made the exporter drop the whole segment).
JUDGEMENT_KEYS = ("biz.impact", "biz.category")
_JUDGEMENTS = ["HIGH", "low", "urgent", "data_quality", "money", " Critical "]


otel_attributes = st.dictionaries(
    st.one_of(attribute_key, st.sampled_from(JUDGEMENT_KEYS)),
    st.one_of(otel_value, st.sampled_from(_JUDGEMENTS)),
    max_size=12,
)

# -- business values (biz.context / biz.record / capture_error / violation) ----------------


class Color(enum.Enum):
    RED = "red"
    SELF = float("nan")


class Unprintable:
    """An object whose str() raises (its repr works, so hypothesis can show an example)."""

    def __str__(self) -> str:
        raise RuntimeError("__str__ exploded")

    def __repr__(self) -> str:
        return "Unprintable()"


class Slow:
    """An object whose str() is huge (1 MB)."""

    def __str__(self) -> str:
        return "s" * 1_000_000


def cyclic_dict() -> dict:
    looped: dict[str, Any] = {"name": "loop"}
    looped["self"] = looped
    return looped


def cyclic_list() -> list:
    looped: list[Any] = [1]
    looped.append(looped)
    return looped


def deep_list(depth: int) -> list:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def deep_dict(depth: int) -> dict:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"d": value}
    return value


#: Values every Python app may pass; a well-behaved API coerces or skips each of them.
PRINTABLE_ODDITIES = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True),
    st.just(decimal.Decimal("1e999999")),
    st.datetimes(timezones=st.none() | st.just(datetime.timezone.utc)),
    st.dates(),
    st.sampled_from([Color.RED, Color.SELF]),
    st.just(Slow()),
    st.builds(cyclic_dict),
    st.builds(deep_dict, st.integers(1, 200)),
    st.frozensets(st.integers(), max_size=3),
    st.complex_numbers(allow_nan=True),
    st.just(object()),
    st.just(type),
)
#: Values that cannot be coerced without care: recursion and raising __str__.
UNCOERCIBLE = st.one_of(
    st.builds(Unprintable),
    st.builds(cyclic_list),
    st.builds(deep_list, st.integers(1, 3000)),
    st.builds(deep_dict, st.integers(1000, 3000)),  # str() raises RecursionError
    st.lists(st.builds(Unprintable), min_size=1, max_size=2),
)
business_value = st.recursive(
    st.one_of(st.none(), scalar, PRINTABLE_ODDITIES),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(short_text, children, max_size=3),
        st.sets(st.integers(), max_size=3),
    ),
    max_leaves=8,
)
any_business_value = st.one_of(business_value, UNCOERCIBLE)
#: Parameters of the business API that ``**kwargs`` cannot carry (they are the API's own).
RESERVED = frozenset(
    {
        "propagate",
        "op",
        "impact",
        "category",
        "kind",
        "exc",
        "rule",
        "message",
        "group",
        "risk",
        "name",
    }
)
#: ``**kwargs`` keys may be any str at all (bar the API's own parameter names).
business_key = st.one_of(
    short_text,
    st.sampled_from(
        [
            "operation",
            "handled",
            "violation.rule",
            "biz.x",
            "window_risk",
            "customer",
            "category_code",
        ]
    ),
).filter(lambda key: key not in RESERVED)
business_kwargs = st.dictionaries(business_key, business_value, max_size=6)
hostile_kwargs = st.dictionaries(business_key, any_business_value, max_size=6)
