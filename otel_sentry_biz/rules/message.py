"""Message and fingerprint templates that never raise.

Templates are ``str.format`` strings over a span's attributes and a rule's computed values:
``"Work request {work_request} total ${value:,.2f} exceeds ${limit:,.0f}"``. They are
rendered on the thread that ends a span, so a missing key renders as ``<name?>`` and a format
spec that does not fit the value (``{customer:.2f}``) falls back to ``str(value)``, instead of
raising into the application. Dotted names (``{http.route}``) are looked up whole.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any, Callable


class _Missing:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __format__(self, spec: str) -> str:
        return f"<{self.name}?>"

    def __str__(self) -> str:
        return f"<{self.name}?>"

    __repr__ = __str__


class Values(Mapping[str, Any]):
    """Computed values first, then whatever ``lookup`` finds on the span."""

    __slots__ = ("_computed", "_lookup")

    def __init__(self, computed: Mapping[str, Any], lookup: Callable[[str], Any]) -> None:
        self._computed = computed
        self._lookup = lookup

    def __getitem__(self, name: str) -> Any:
        if name in self._computed:
            return self._computed[name]
        value = self._lookup(name) if name else None
        return _Missing(name) if value is None else value

    def __iter__(self):  # pragma: no cover - formatting only looks keys up
        return iter(self._computed)

    def __len__(self) -> int:  # pragma: no cover
        return len(self._computed)


class _SafeFormatter(string.Formatter):
    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        # The whole name is the key: attribute names contain dots, and templates come from
        # configuration, so attribute access and indexing on values is not offered.
        return kwargs[field_name], field_name

    def format_field(self, value: Any, format_spec: str) -> str:
        try:
            return format(value, format_spec)
        except (TypeError, ValueError):
            return str(value)

    def convert_field(self, value: Any, conversion: Any) -> Any:
        try:
            return super().convert_field(value, conversion)
        except ValueError:
            return value


_formatter = _SafeFormatter()


def render(template: str, values: Mapping[str, Any]) -> str:
    """``template`` filled from ``values``; never raises for a missing or mismatched value."""
    try:
        return _formatter.vformat(template, (), values)
    except Exception:  # a template validated at load time cannot get here; stay safe anyway
        return template
