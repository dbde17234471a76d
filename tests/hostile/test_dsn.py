"""Property 5: DSNs. Any text, and near-valid URLs, either make a working exporter or raise
ConfigError naming SENTRY_DSN or its fix; nothing else escapes, and the DSN's secret never
appears in the error, in the logs or in the exporter's stats."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Optional

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from otel_sentry_biz.config import VARIABLES, ConfigError
from otel_sentry_biz.sentry.exporter import SentrySpanExporter
from tests.hostile.budget import budget
from tests.hostile.harness import error_logs
from tests.hostile.strategies import any_text, short_text

FIX = next(variable.fix for variable in VARIABLES if variable.env == "SENTRY_DSN")


@pytest.fixture(scope="module", autouse=True)
def clean_environment() -> Iterator[None]:
    """SentrySpanExporter(dsn=...) reads every other setting from the environment."""
    saved = {
        key: os.environ.pop(key)
        for key in list(os.environ)
        if key.startswith(("SENTRY_", "OTEL_SENTRY_BIZ_"))
    }
    yield
    os.environ.update(saved)


def _note(label: str) -> None:
    if currently_in_test_context():
        event(label)


def _exporter_or_config_error(dsn: str, secret: Optional[str] = None) -> str:
    """ "accepted" or "rejected" (a ConfigError naming SENTRY_DSN or the fix).

    Any other exception propagates; with ``secret``, neither the error, the exporter's stats
    nor any log record may contain it (asserted here, for every caller).
    """
    with error_logs("otel_sentry_biz", "sentry_sdk", level=logging.DEBUG) as records:
        try:
            exporter = SentrySpanExporter(dsn=dsn)
        except ConfigError as exc:
            outcome, shown = "rejected", f"{exc} {exc.args!r}"
            assert "SENTRY_DSN" in str(exc) or FIX in str(exc), str(exc)
        else:
            outcome, shown = "accepted", repr(exporter.stats())
            exporter.shutdown(100)
    logged = "\n".join(f"{record.getMessage()} {record.exc_text or ''}" for record in records)
    if secret:
        assert secret not in shown, f"the secret leaks in {shown!r}"
        assert secret not in logged, "the secret leaks in the logs"
    _note(outcome)
    return outcome


#: DSN parts, each hostile or near-valid.
_schemes = st.sampled_from(["https", "http", "HTTPS", "ftp", "", "https:", "h ttps", "sentry"])
_keys = st.one_of(st.sampled_from(["key", "", "k:ey", "k@y", "abc123"]), short_text)
_hosts = st.one_of(
    st.sampled_from(
        [
            "o1.ingest.sentry.io",
            "127.0.0.1",
            "[::1]",
            "[::1",
            "",
            "xn--bcher-kva.example",
            "host name",
            "h\tost",
            "a" * 300,
        ]
    ),
    short_text,
)
_ports = st.sampled_from(["", ":", ":0", ":9", ":65535", ":65536", ":-1", ":abc", ":99999999999"])
_paths = st.sampled_from(["", "/", "/sentry", "/a/b", "//", "/..", "/%2F", "/?"])
_projects = st.one_of(
    st.sampled_from(["1", "42", "", "x", "-1", "4 2", "\uff14\uff12", "1.0", "0", "9" * 50]),
    short_text,
)
_suffixes = st.sampled_from(["", "/", "?a=b", "#frag", "\n", " ", "/extra"])
#: A secret no other part of the URL can contain by chance.
_secrets = st.text("0123456789abcdef", min_size=16, max_size=32).map(lambda hex_: "zQx" + hex_)


@budget(60)
@given(dsn=st.one_of(any_text, st.sampled_from(["https://key@host/1", "http://k@h/1 "])))
def test_any_text_is_a_dsn_or_a_config_error_naming_it(dsn: str) -> None:
    assert _exporter_or_config_error(dsn) in ("accepted", "rejected")


_VALID = {
    "scheme": "https",
    "key": "key",
    "host": "o1.ingest.sentry.io",
    "port": "",
    "path": "",
    "project": "42",
    "suffix": "",
}
_HOSTILE = {
    "scheme": _schemes,
    "key": _keys,
    "host": _hosts,
    "port": _ports,
    "path": _paths,
    "project": _projects,
    "suffix": _suffixes,
}


@st.composite
def near_valid_dsns(draw: st.DrawFn) -> tuple[str, str]:
    """(dsn, secret): a valid DSN with its secret, and one or two parts made hostile."""
    broken = set(draw(st.lists(st.sampled_from(sorted(_HOSTILE)), max_size=2)))
    part = {name: draw(_HOSTILE[name]) if name in broken else _VALID[name] for name in _VALID}
    secret = draw(_secrets)
    dsn = (
        f"{part['scheme']}://{part['key']}:{secret}@{part['host']}{part['port']}{part['path']}"
        f"/{part['project']}{part['suffix']}"
    )
    return dsn, secret


@budget(120)
@given(case=near_valid_dsns())
def test_near_valid_dsns_never_leak_their_secret(case: tuple[str, str]) -> None:
    dsn, secret = case
    assert _exporter_or_config_error(dsn, secret) in ("accepted", "rejected")


def test_the_secret_of_a_valid_dsn_is_not_sent_or_logged() -> None:
    secret = "zQxdeadbeefdeadbeef"
    assert _exporter_or_config_error(f"http://public:{secret}@127.0.0.1:9/1", secret) == "accepted"


# -- known bugs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dsn",
    [
        "https://key@\u0445\u043e\u0441\u0442.example/1",
        "https://\u043a\u043b\u044e\u0447@host/1",
        "https://key@host/\u043f/1",
    ],
    ids=["host", "key", "path"],
)
def test_a_dsn_with_a_non_latin1_host_key_or_path_is_a_config_error(dsn: str) -> None:
    try:
        exporter = SentrySpanExporter(dsn=dsn)
    except ConfigError as exc:
        assert "SENTRY_DSN" in str(exc) or FIX in str(exc)
        return
    except Exception as exc:
        raise AssertionError(f"raised {type(exc).__name__}: {exc}") from exc
    exporter.shutdown(100)  # or it works: fine too


@pytest.mark.parametrize("dsn", ["https://key@[::1]/42", "http://key@[::1]:9000/42"])
def test_an_ipv6_dsn_works_or_is_a_config_error(dsn: str) -> None:
    # sentry-sdk's Dsn loses the address's brackets: rejected, naming the fix, until supported.
    assert _exporter_or_config_error(dsn) == "rejected"


def test_a_dsn_missing_its_host_does_not_leak_the_secret() -> None:
    secret = "zQx0123456789abcdef"
    assert _exporter_or_config_error(f"https://key:{secret}/1", secret) == "rejected"
