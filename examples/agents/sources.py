"""The external data sources the agents call, simulated: each fails the way it is told to.

In production these are HTTP APIs (market data, news, SEC filings). Here each is an async
call that answers after a short delay, or raises what ``fails`` returns for that call.
"""

from __future__ import annotations

import asyncio
from typing import Callable, Optional


class ExternalAPIError(Exception):
    """A data source answered with an error."""


class RateLimited(ExternalAPIError):
    """A data source answered 429 Too Many Requests."""


class SourceUnavailable(ExternalAPIError):
    """A data source answered 503 Service Unavailable."""


class FeedTimeout(TimeoutError):
    """A data source did not answer in time."""


#: Given the 1-based number of a call, the exception it fails with (None: it succeeds).
Failures = Callable[[int], Optional[Exception]]


class DataSource:
    """An async data source named ``name`` that fails as ``fails`` says."""

    def __init__(self, name: str, fails: Failures = lambda call: None) -> None:
        self.name = name
        self.calls = 0
        self._fails = fails

    async def fetch(self, company: str) -> dict[str, object]:
        self.calls += 1
        call = self.calls
        await asyncio.sleep(0.002)  # the network
        error = self._fails(call)
        if error is not None:
            raise error
        return {"source": self.name, "company": company, "items": 3}
