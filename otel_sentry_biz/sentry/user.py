"""Sentry's ``user`` of an event, from the user attributes of a span.

The HTTP middlewares put the signed-in user on the request's SERVER span (``user.id``; with
``send_default_pii`` also ``user.name``, ``user.full_name``, ``user.email`` and the peer's
``client.address``). Sentry counts "users affected" by an issue from the event's ``user``, so
every event of the request carries it. Everything this module knows is :data:`USER_FIELDS`
(rendered into ``docs/mapping.md``).

Example::

    >>> user_of({"user.id": "u-42", "user.email": "ana@example.com"}, send_default_pii=False)
    {'id': 'u-42'}
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, Optional

#: Sentry user field -> span attributes, first present wins (OTel's stable name first, then
#: the old ``enduser.id``).
USER_FIELDS: Mapping[str, tuple[str, ...]] = {
    "id": ("user.id", "enduser.id"),
    "username": ("user.name",),
    "name": ("user.full_name",),
    "email": ("user.email",),
    "ip_address": ("client.address",),
}
#: Personal data: sent only with ``send_default_pii``, as sentry-sdk does. The id is not:
#: it names the user without saying who they are.
PII_USER_FIELDS = frozenset({"username", "name", "email", "ip_address"})
#: Every attribute :func:`user_of` reads (a span without any has no user: one set test).
USER_ATTRIBUTES = frozenset(name for names in USER_FIELDS.values() for name in names)


def user_of(attributes: Mapping[str, Any], *, send_default_pii: bool) -> Optional[dict[str, str]]:
    """The Sentry ``user`` that ``attributes`` name, or None when they name none.

    ``ip_address`` only when ``client.address`` is an IP address: Relay rejects anything else
    (a host name, a Unix socket path).
    """
    if USER_ATTRIBUTES.isdisjoint(attributes):
        return None
    user: dict[str, str] = {}
    for field, names in USER_FIELDS.items():
        if field in PII_USER_FIELDS and not send_default_pii:
            continue
        for name in names:
            value = attributes.get(name)
            if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
                user[field] = str(value)
                break
    address = user.get("ip_address")
    if address is not None and not _is_ip(address):
        del user["ip_address"]
    return user or None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
