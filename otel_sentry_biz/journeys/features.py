"""Feature usage: which product features are used, how, and in which requests.

>>> biz.feature_used("post_creator", usage="video_created", file_size=1024)

Counts one use in the OTel counter ``biz.feature.used`` (attributes ``biz.feature`` and, when
given, ``biz.feature.usage``), so adoption is charted in any metrics backend. The current
span gets the attribute ``biz.feature`` (the Sentry transaction is tagged ``feature``: errors
and latency of requests that used it are one search away) and a ``biz.feature.used`` event
carrying the details. Keep ``feature`` and ``usage`` to a known set of names; details such
as sizes or ids belong in the keyword arguments, which reach the span event only.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from otel_sentry_biz.journeys import signals

_logger = logging.getLogger("otel_sentry_biz.journeys")


def feature_used(feature: str, *, usage: Optional[str] = None, **attrs: Any) -> None:
    """Count one use of ``feature`` and mark the current span; never raises.

    >>> biz.feature_used("export_csv")
    >>> biz.feature_used("post_creator", usage="video_created", file_size=1024)
    """
    try:
        tags = {signals.FEATURE: str(feature)}
        if usage is not None:
            tags[signals.FEATURE_USAGE] = str(usage)
        signals.shared().add(signals.FEATURE_USED, tags)
        signals.mark_current_span(signals.FEATURE_USED, tags, attrs)
    except Exception:
        _logger.exception("feature use of %r could not be recorded; the request goes on", feature)
