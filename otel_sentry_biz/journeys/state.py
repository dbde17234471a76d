"""Where journeys and funnels keep their records: the rules' state store, shared by processes.

A journey started in one request is often completed in another, served by another process or
host; a funnel counts sessions across all of them. Both keep their records on the same
:mod:`state store <otel_sentry_biz.rules.state>` as windowed rules, chosen by
``OTEL_SENTRY_BIZ_RULES_STATE`` (``memory://`` for one process, ``sqlite:////path`` for one
host, ``redis://`` for a fleet) or by :func:`use_state` at start-up.

>>> use_state("sqlite:////var/lib/app/state.db")
>>> default_store().put_if_absent("biz.journey:42", '{"n": "signup"}', ttl=86400)
'{"n": "signup"}'
>>> default_store().get("biz.journey:42")
'{"n": "signup"}'
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from typing import Any, Callable, Optional, TypeVar, Union

from otel_sentry_biz.rules.state import (
    DEFAULT_STATE_URL,
    StateStore,
    StateStoreError,
    StoreUnavailable,
    open_store,
)

_logger = logging.getLogger("otel_sentry_biz.journeys")

#: The variable that names the store, shared with the windowed rules.
STATE_VARIABLE = "OTEL_SENTRY_BIZ_RULES_STATE"

_lock = threading.Lock()
_store: Optional[StateStore] = None
_owned = False  # we opened _store from a URL, so we close it when it is replaced


def use_state(state: Union[str, StateStore]) -> StateStore:
    """Keep journey and funnel records in ``state``: a store URL or an open store.

    >>> use_state("redis://127.0.0.1:6379/0")

    Call at start-up: a bad URL, or an object lacking the store's operations, raises
    :class:`~otel_sentry_biz.rules.state.StateStoreError` naming the fix. A store this module
    opened from a URL is closed when another replaces it; one passed in stays the caller's.
    """
    global _store, _owned
    if isinstance(state, StateStore):
        store, owned = state, False
    else:  # a URL; open_store names the fix for anything else
        store, owned = open_store(state), True
    with _lock:
        previous, previous_owned = _store, _owned
        _store, _owned = store, owned
    if previous is not None and previous_owned and previous is not store:
        previous.close()
    return store


def default_store() -> StateStore:
    """The store set by :func:`use_state`, else the one ``OTEL_SENTRY_BIZ_RULES_STATE`` names.

    Opened on first use. Runs inside a request, so it never raises: a URL that cannot be
    opened is logged with the fix and this process keeps its records in memory.
    """
    global _store, _owned
    if _store is not None:
        return _store
    with _lock:
        if _store is None:
            _store, _owned = _open_from_environment(), True
        return _store


def _open_from_environment() -> StateStore:
    url = os.environ.get(STATE_VARIABLE, "").strip() or DEFAULT_STATE_URL
    try:
        return open_store(url)
    except StateStoreError as exc:
        _logger.error(
            "%s: %s; journeys and funnels keep their records in this process's memory until "
            "it is fixed (call otel_sentry_biz.configure() at start-up to fail early instead)",
            STATE_VARIABLE,
            exc,
        )
        return open_store(DEFAULT_STATE_URL)


def key_part(value: Any, max_length: int) -> Optional[str]:
    """``value`` (an id from the app, or its client) as part of a store key; None when it is
    not a string or int of 1-``max_length`` printable characters."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value)
    return text if 0 < len(text) <= max_length and text.isprintable() else None


Method = TypeVar("Method", bound=Callable[..., Any])


def never_raises(action: str) -> Callable[[Method], Method]:
    """Decorate a recording method so it never raises into the app's request.

    A store that cannot answer (:class:`StoreUnavailable`; its circuit breaker has already
    logged why) is counted in the object's ``dropped``; anything else is logged with its
    traceback. The method then returns None.
    """

    def decorate(method: Method) -> Method:
        @functools.wraps(method)
        def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except StoreUnavailable as exc:
                self.dropped += 1
                _logger.debug("%s not recorded: the state store is unavailable (%s)", action, exc)
            except Exception:
                _logger.exception("%s could not be recorded; the request goes on", action)
            return None

        return guarded  # type: ignore[return-value]

    return decorate
