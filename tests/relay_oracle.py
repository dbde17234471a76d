"""Sentry's own Relay normalizer as the protocol oracle: an event it flags is a bug of ours."""

from __future__ import annotations

from typing import Any

from sentry_relay import StoreNormalizer

# Trimming on: an over-long tag, name or value is a complaint, not silently cut.
_normalizer = StoreNormalizer(enable_trimming=True)


def meta_errors(value: Any, path: str = "") -> list[str]:
    """Every ``_meta`` entry Relay left in a normalized event, with its path."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "_meta":
                found.append(f"{path or '<root>'}: {item}")
            else:
                found.extend(meta_errors(item, f"{path}.{key}" if path else str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(meta_errors(item, f"{path}[{index}]"))
    return found


def assert_valid(event: dict[str, Any]) -> dict[str, Any]:
    """Normalize ``event`` with Relay; fail with every complaint Relay had."""
    normalized = _normalizer.normalize_event(event)
    errors = meta_errors(normalized)
    assert not errors, f"Relay flagged the {event.get('type', 'error')} event: {errors}"
    assert not normalized.get("errors"), normalized.get("errors")
    return normalized


def tags_of(normalized: dict[str, Any]) -> dict[str, str]:
    """Relay turns the tags object into a list of pairs; read it back as a dict."""
    tags = normalized.get("tags") or {}
    return dict(tags) if isinstance(tags, dict) else {k: v for k, v in tags}
