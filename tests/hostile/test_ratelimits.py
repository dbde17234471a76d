"""Property 6: Sentry's answers. Retry-After and X-Sentry-Rate-Limits values (any text) never
raise and never give a negative, NaN or infinite wait; any bytes as an HTTP answer give an
Answer or an OSError, never anything else, and never a wait the sender cannot honour."""

from __future__ import annotations

import math
from typing import Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_sentry_biz.sentry.connection import Answer, EnvelopeConnection, ProtocolError
from otel_sentry_biz.sentry.ratelimits import (
    MAX_RETRY_AFTER,
    RateLimits,
    parse_rate_limits,
    parse_retry_after,
)
from tests.hostile.budget import budget
from tests.hostile.strategies import any_text, short_text

_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["1e308", "1e309", "-0", "nan", "NaN", "inf", "-inf", "1_0", " 60 ", "0x10"]),
)
_dates = st.one_of(
    st.datetimes().map(lambda moment: moment.strftime("%a, %d %b %Y %H:%M:%S GMT")),
    st.sampled_from(
        [
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Mon, 01 Jan 0001 00:00:00 +2359",
            "Fri, 31 Dec 9999 23:59:59 -2359",
            "Sun Nov  6 08:49:37 1994",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "31 Dec 9999 23:59:60 +9999",
            "0 0 0 0 0",
        ]
    ),
)
retry_after = st.one_of(any_text, _numbers, _dates, st.none())
_categories = st.lists(
    st.one_of(st.sampled_from(["transaction", "error", "span", "", " ", "default"]), short_text),
    max_size=3,
).map(";".join)
_entries = st.builds(
    lambda number, categories, scope, extra: f"{number}:{categories}:{scope}{extra}",
    _numbers,
    _categories,
    st.sampled_from(["organization", "project", "key", "", "x"]),
    st.sampled_from(["", ":reason", ":a:b:c", "::"]),
)
rate_limits = st.one_of(
    any_text,
    st.lists(st.one_of(_entries, short_text), max_size=5).map(", ".join),
    st.none(),
)
#: Clocks: now, the epoch, far future, and the odd values a mocked clock may give.
nows = st.one_of(
    st.just(1_750_000_000.0),
    st.floats(min_value=0, max_value=1e12),
    st.sampled_from([0.0, 1e15, 2.0**53]),
)


def _a_wait(seconds: Optional[float]) -> None:
    if seconds is not None:
        assert isinstance(seconds, float)
        assert math.isfinite(seconds) and seconds >= 0, seconds


@budget(300)
@given(value=retry_after, now=nows)
def test_retry_after_never_raises_nor_gives_a_bad_wait(value: Optional[str], now: float) -> None:
    _a_wait(parse_retry_after(value, now))


@budget(300)
@given(value=rate_limits, now=nows)
def test_rate_limits_never_raise_nor_give_a_bad_deadline(value: Optional[str], now: float) -> None:
    deadlines = parse_rate_limits(value, now)
    for category, deadline in deadlines.items():
        assert category is None or isinstance(category, str)
        _a_wait(deadline - now)
        assert math.isfinite(deadline)


@budget(200)
@given(
    status=st.one_of(st.integers(0, 999), st.sampled_from([200, 429, 500, 413])),
    retry=retry_after,
    limits=rate_limits,
    now=nows,
    lowercase=st.booleans(),
)
def test_answers_leave_finite_limits(
    status: int, retry: Optional[str], limits: Optional[str], now: float, lowercase: bool
) -> None:
    headers = {}
    if retry is not None:
        headers["retry-after" if lowercase else "Retry-After"] = retry
    if limits is not None:
        headers["x-sentry-rate-limits" if lowercase else "X-Sentry-Rate-Limits"] = limits
    state = RateLimits()
    state.update_from_response(status, headers, now)
    expiry = state.next_expiry(now)
    if expiry is not None:
        _a_wait(expiry - now)
    for seconds in state.snapshot(now).values():
        _a_wait(float(seconds))
    # A limit, when one was set, ends within the longest pause honoured.
    assert expiry is None or expiry - now <= MAX_RETRY_AFTER + 1.0
    if state.is_limited("transaction", now):
        assert expiry is not None  # a pause always has an end the sender can wait for


# -- the answer as bytes --------------------------------------------------------------------


class _Replay:
    """A socket that answers with fixed bytes, ``size`` bytes per recv()."""

    def __init__(self, data: bytes, size: int) -> None:
        self._data = data
        self._size = size

    def sendall(self, data: bytes) -> None:
        pass

    def recv(self, limit: int) -> bytes:
        chunk, self._data = self._data[: min(limit, self._size)], self._data[self._size :]
        return chunk

    def close(self) -> None:
        pass


_status_lines = st.sampled_from(
    [b"HTTP/1.1 200 OK", b"HTTP/1.1 429 Too Many", b"HTTP/1.0 503 x", b"HTTP/1.1 2000", b""]
)
_header_lines = st.lists(
    st.one_of(
        st.sampled_from(
            [
                b"Content-Length: 2",
                b"Content-Length: -1",
                b"Content-Length: 99999999999999999999",
                b"Content-Length: \xd9\xa1",
                b"Transfer-Encoding: chunked",
                b"Connection: close",
                b"Retry-After: 1e308",
                b"X-Sentry-Rate-Limits: 60::organization",
                b"X-Sentry-Rate-Limits: nan:error:key",
            ]
        ),
        st.binary(max_size=40),
    ),
    max_size=5,
)
_bodies = st.one_of(
    st.binary(max_size=80),
    st.sampled_from(
        [b"{}", b"2\r\nok\r\n0\r\n\r\n", b"-5\r\nok\r\n0\r\n\r\n", b"zz\r\n", b"0\r\n"]
    ),
)


@budget(300)
@given(
    status=_status_lines,
    headers=_header_lines,
    body=_bodies,
    raw=st.binary(max_size=200),
    use_raw=st.booleans(),
    size=st.integers(1, 64),
)
def test_any_answer_bytes_give_an_answer_or_an_os_error(
    status: bytes, headers: list[bytes], body: bytes, raw: bytes, use_raw: bool, size: int
) -> None:
    data = raw if use_raw else b"\r\n".join([status, *headers]) + b"\r\n\r\n" + body
    connection = EnvelopeConnection("http://127.0.0.1:9/api/1/envelope/", {}, timeout=0.1)
    connection._sock = _Replay(data, size)  # type: ignore[assignment]  # no network
    try:
        answer = connection.post(b"{}")
    except OSError:
        return  # ProtocolError, or the server closing: the sender retries with backoff
    assert isinstance(answer, Answer)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in answer.headers.items())
    state = RateLimits()
    state.update_from_response(answer.status, answer.headers, 1_750_000_000.0)
    expiry = state.next_expiry(1_750_000_000.0)
    if expiry is not None:
        _a_wait(expiry - 1_750_000_000.0)


@pytest.mark.parametrize("size_line", [b"zz", b"\x00", b"1g"])
def test_a_bad_chunk_size_is_a_protocol_error(size_line: bytes) -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    connection = EnvelopeConnection("http://127.0.0.1:9/api/1/envelope/", {}, timeout=0.1)
    connection._sock = _Replay(head + size_line + b"\r\nok\r\n0\r\n\r\n", 4096)  # type: ignore[assignment]
    with pytest.raises(ProtocolError, match="chunk size"):
        connection.post(b"{}")
