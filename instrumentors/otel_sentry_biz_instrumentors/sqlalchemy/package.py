"""What this instrumentor instruments: checked by ``opentelemetry-instrument`` before loading it."""

_instruments = ("sqlalchemy >= 1.4, < 3",)
