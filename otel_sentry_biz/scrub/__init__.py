"""Remove secrets and personal data before anything leaves the process.

>>> from otel_sentry_biz.scrub import Scrubber, ScrubConfig
>>> event = Scrubber(ScrubConfig(denylist=("iban",))).scrub_event(event)

See ``docs/scrubbing.md`` for what is found, where, and how it compares with Sentry's own
server-side scrubbing.
"""

from otel_sentry_biz.scrub.config import (
    ALL_DETECTORS,
    FILTERED,
    ScrubConfig,
    parse_names,
    parse_patterns,
)
from otel_sentry_biz.scrub.keys import KeyMatcher, normalize_key
from otel_sentry_biz.scrub.scrubber import Scrubber
from otel_sentry_biz.scrub.sql import scrub_sql

__all__ = [
    "ALL_DETECTORS",
    "FILTERED",
    "KeyMatcher",
    "ScrubConfig",
    "Scrubber",
    "normalize_key",
    "parse_names",
    "parse_patterns",
    "scrub_sql",
]
