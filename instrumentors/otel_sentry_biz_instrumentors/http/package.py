"""The libraries each HTTP instrumentor instruments (``instrumentation_dependencies()``)."""

_instruments_requests = ("requests >= 2.0, < 3.0",)
# We wrap httpcore's pools, which httpx uses for every network request.
_instruments_httpx = ("httpx >= 0.23.0, < 1.0", "httpcore >= 0.15.0, < 2.0")
_instruments_urllib3 = ("urllib3 >= 1.26.0, < 3.0",)
# urllib.request is in the standard library: nothing to check.
_instruments_urllib: tuple[str, ...] = ()
