"""A stand-in for the card processor's SDK: it charges test cards and declines two of them.

Like some real SDKs, it puts the whole card number in its error message: exactly what must
never reach Sentry. The app does not clean it up; the package's scrubber does.
"""

from __future__ import annotations

import itertools
import threading
from decimal import Decimal

PROVIDER = "fakepay"
#: Test cards the processor declines, and why (the processors' public test numbers).
DECLINED_CARDS = {
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
}


class CardDeclined(Exception):
    """The processor refused the charge; ``code`` says why."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class Gateway:
    """Charges cards; charge ids are numbered, so every run gives the same ones."""

    def __init__(self) -> None:
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def charge(self, card_number: str, amount: Decimal, currency: str) -> str:
        """Charge ``amount``; the charge id, or CardDeclined."""
        digits = "".join(c for c in card_number if c.isdigit())
        code = DECLINED_CARDS.get(digits)
        if code is not None:
            raise CardDeclined(f"Your card {card_number} was declined ({code})", code)
        with self._lock:
            return f"ch_{next(self._numbers):06d}"
