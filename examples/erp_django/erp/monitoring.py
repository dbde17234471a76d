"""The ERP's monitoring: one monitor per module, who the user is, and the start-up call.

The seed's ``core/sentry`` package (init, decorators, utils, middleware, before_send filter)
comes down to this module: ``biz.module`` replaces the four copies of
``monitor_<module>_operation``, the request middleware in settings replaces the hand-written
one, and 404/403 answers are not errors to begin with, so nothing needs filtering.
"""

from __future__ import annotations

from typing import Any, Optional

import otel_sentry_biz as biz

#: One factory, one monitor per ERP module: operations named ``<module>.<operation>``,
#: tagged ``module:<module>``. Losing an order is worse than a slow quality report.
sales = biz.module("sales", impact="HIGH")
inventory = biz.module("inventory", category="data_quality")
production = biz.module("production")
quality = biz.module("quality", impact="HIGH")


def user_of(request: Any) -> Optional[dict[str, Any]]:
    """The ERP's user of ``request`` (``OTEL_SENTRY_BIZ_USER_FROM_REQUEST``).

    The id always reaches Sentry; username, e-mail and full name only when
    ``SENTRY_SEND_DEFAULT_PII=true`` (the seed's rule: no personal data by default).
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return {
        "id": user.pk,
        "username": user.get_username(),
        "email": user.email,
        "name": user.get_full_name(),
    }


def start_monitoring(**overrides: Any) -> biz.Pipeline:
    """``biz.configure()`` with the ``OTEL_SENTRY_BIZ`` setting; ``overrides`` win."""
    from django.conf import settings

    return biz.configure(**{**getattr(settings, "OTEL_SENTRY_BIZ", {}), **overrides})
