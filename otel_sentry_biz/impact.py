"""Business impact and error category: the two judgements every error and violation carries."""

from __future__ import annotations

import enum
from typing import Union


class Impact(str, enum.Enum):
    """How much an error or violation hurts the business (the billing seed's four levels)."""

    CRITICAL = "CRITICAL"  # financial or billing impact: payments, invoices, audit
    HIGH = "HIGH"  # data or process impact: lost uploads, failed jobs, broken integrations
    MEDIUM = "MEDIUM"  # data-quality impact: validation and format problems
    LOW = "LOW"  # operational impact: minor processing issues

    @classmethod
    def parse(cls, value: Union[Impact, str]) -> Impact:
        """Accept an ``Impact`` or its name in any case; raise ``ValueError`` naming the choices."""
        if isinstance(value, Impact):
            return value
        try:
            return cls[str(value).strip().upper()]
        except KeyError:
            choices = ", ".join(member.value for member in cls)
            raise ValueError(f"unknown impact {value!r}: use one of {choices}") from None


class Category(str, enum.Enum):
    """What kind of problem it is, for triage (the seeds' ``error_category`` tag)."""

    DATA_QUALITY = "data_quality"
    BUSINESS_LOGIC = "business_logic"
    INTEGRATION = "integration"
    SYSTEM_RESOURCE = "system_resource"
    SECURITY = "security"
    PERFORMANCE = "performance"

    @classmethod
    def parse(cls, value: Union[Category, str]) -> Category:
        """Accept a ``Category`` or its value in any case; ``ValueError`` names the choices."""
        if isinstance(value, Category):
            return value
        text = str(value).strip().lower()
        for member in cls:
            if member.value == text:
                return member
        choices = ", ".join(member.value for member in cls)
        raise ValueError(f"unknown category {value!r}: use one of {choices}")


#: Sentry event level for each impact. One table for errors and violations alike, so the level
#: an on-call engineer filters on always means the same thing.
LEVEL_BY_IMPACT: dict[Impact, str] = {
    Impact.CRITICAL: "fatal",
    Impact.HIGH: "error",
    Impact.MEDIUM: "warning",
    Impact.LOW: "info",
}
