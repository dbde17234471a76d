"""What this instrumentor instruments: the standard library only."""

_instruments: tuple[str, ...] = ()
