"""Fit an event into the sizes Relay accepts, so nothing is trimmed or flagged on arrival.

Relay trims (and marks with ``_meta``) an exception type or module over 256 characters, an
exception value or message over 8 KiB, breadcrumb strings over 2 KiB and custom contexts over
about 8 KiB. Our events copy app data (span names, attributes, resource attributes, exception
texts) into those fields, so they are cut here, visibly ("..."), before the envelope is built.
"""

from __future__ import annotations

import json
from typing import Any

from otel_sentry_biz.scrub.scrubber import Scrubbed

MAX_EXCEPTION_NAME = 256
MAX_MESSAGE = 8192
MAX_BREADCRUMB_TEXT = 2048
#: Serialized size budget of one custom context (Relay's bag limit is a little larger).
MAX_CONTEXT_BYTES = 7000
_MAX_CONTEXT_STRING = 256
_ELLIPSIS = "..."


def fit_event(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` (changed in place, and returned) within Relay's size limits."""
    for value in (event.get("exception") or {}).get("values") or ():
        for key, limit in (("type", MAX_EXCEPTION_NAME), ("module", MAX_EXCEPTION_NAME)):
            value[key] = _cut(value.get(key), limit)
        value["value"] = _cut(value.get("value"), MAX_MESSAGE)
    logentry = event.get("logentry")
    if isinstance(logentry, dict):
        logentry["formatted"] = _cut(logentry.get("formatted"), MAX_MESSAGE)
    if "message" in event:
        event["message"] = _cut(event.get("message"), MAX_MESSAGE)
    for crumb in (event.get("breadcrumbs") or {}).get("values") or ():
        crumb["message"] = _cut(crumb.get("message"), MAX_BREADCRUMB_TEXT)
        if isinstance(crumb.get("data"), dict):
            crumb["data"] = _fit_bag(crumb["data"], MAX_BREADCRUMB_TEXT)
    contexts = event.get("contexts")
    if isinstance(contexts, dict):
        for name, context in contexts.items():
            if name != "trace" and isinstance(context, dict) and not _fitted(context):
                contexts[name] = fit_context(context)
    return event


def fit_context(context: dict[str, Any]) -> dict[str, Any]:
    """A custom context as ``fit_event`` leaves it: within Relay's size for one context.

    Marked as fitted when it is a :class:`~otel_sentry_biz.scrub.Scrubbed` part (a resource's
    context, made once and shared by its events): ``fit_event`` then leaves it alone instead
    of measuring it again in every event.
    """
    fitted = _fit_bag(context, MAX_CONTEXT_BYTES)
    if isinstance(context, Scrubbed):
        # Cut or not, what is left is what the same walk left of it.
        return Scrubbed.made(fitted, context.by, context.depth, fitted=True)
    return fitted


def _fitted(context: dict[str, Any]) -> bool:
    return type(context) is Scrubbed and context.fitted


def _cut(text: Any, limit: int) -> Any:
    if not isinstance(text, str) or len(text) <= limit:
        return text
    return text[: limit - len(_ELLIPSIS)] + _ELLIPSIS


def _fit_bag(bag: dict[str, Any], budget: int) -> dict[str, Any]:
    """A context or data bag under ``budget`` serialized bytes: long strings cut, then keys."""
    if _size(bag) <= budget:
        return bag
    bag = _cut_strings(bag, _MAX_CONTEXT_STRING)
    if _size(bag) <= budget:
        return bag
    kept: dict[str, Any] = {}
    used = 2
    for key, value in bag.items():
        cost = _size({key: value})
        if used + cost > budget - 64:
            kept["_truncated"] = True
            break
        kept[key] = value
        used += cost
    return kept


def _cut_strings(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        return _cut(value, limit)
    if isinstance(value, dict):
        return {key: _cut_strings(item, limit) for key, item in value.items()}
    if isinstance(value, list):
        return [_cut_strings(item, limit) for item in value]
    return value


#: ``json.dumps(value, default=str)`` without building an encoder per call (a third of its
#: cost on a small context; fit_event sizes every custom context of every event).
_SIZER = json.JSONEncoder(default=str)


def _size(value: Any) -> int:
    try:
        return len(_SIZER.encode(value))
    except (TypeError, ValueError):
        return MAX_CONTEXT_BYTES * 2
