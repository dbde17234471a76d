"""Secrets recognised by their value inside free text, and the checksums that confirm them.

Each detector is a precompiled regex, a cheap *trigger* (substrings that must be present for
the regex to be worth running) and, where the shape alone is ambiguous, a validator: card
numbers must pass Luhn, IBANs ISO 7064 mod 97 at their country's length, ``Basic`` credentials
must decode to ``user:password``. Every pattern is linear in the text length (no nested
unbounded repetition), so hostile input cannot make scrubbing slow.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable, Optional

Span = tuple[int, int]
Locate = Callable[["re.Match[str]"], Optional[Span]]

#: Every built-in detector, in the order they run. ``docs/scrubbing.md`` lists the same.
DETECTOR_NAMES = (
    "private_key",
    "jwt",
    "url_password",
    "bearer",
    "api_key",
    "secret_assignment",
    "email",
    "card",
    "ssn",
    "iban",
    "password_mention",
)

# -- checksums --------------------------------------------------------------------------------


def luhn_valid(digits: str) -> bool:
    """ISO/IEC 7812 check digit (``"4111111111111111"`` -> True)."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


#: IBAN length per country (SWIFT IBAN registry). Countries Relay recognises but that are not
#: listed here are accepted at whatever length passes mod 97 without trimming.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30,
    "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22,
    "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
_IBAN_OTHER = frozenset({
    "DZ", "AO", "BJ", "BF", "BI", "CV", "CM", "CF", "TD", "KM", "CG", "CI", "DJ", "GQ", "GA",
    "GW", "HN", "IR", "MG", "ML", "MA", "MZ", "NI", "NE", "SN", "TG",
})  # fmt: skip


def iban_valid(compact: str) -> bool:
    """ISO 13616 check: move the first four characters to the end, read as base 36, mod 97."""
    if not 15 <= len(compact) <= 34 or not compact.isalnum() or not compact.isascii():
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in rearranged.upper())
    return int(number) % 97 == 1


def card_valid(digits: str) -> bool:
    """A payment card number: 13-19 digits, a card-network first digit (2-6) and Luhn."""
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn_valid(digits)


def card_int(value: int) -> bool:
    """An integer that is a card number (``4111111111111111``)."""
    return 10**12 <= value < 10**19 and card_valid(str(value))


def _basic_credentials(token: str) -> bool:
    padded = token + "=" * (-len(token) % 4)
    try:
        decoded = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded


# -- detectors --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Detector:
    """One kind of secret: where to look (``pattern``), when to bother (the triggers)."""

    name: str
    pattern: re.Pattern[str]
    locate: Locate
    #: Lowercase substrings of which one must occur in the lowercased text (empty: no test).
    any_of: tuple[str, ...] = ()
    #: Substrings that must all occur in the text as it is.
    all_of: tuple[str, ...] = ()
    #: A cheap regex that must find something in the text (one C scan instead of many
    #: ``in`` tests; benchmarks/scrub_corpus.py --timing).
    gate: Optional[re.Pattern[str]] = None
    #: ASCII digits the text must hold (a card has 13 or more): counted once per text.
    min_digits: int = 0
    #: ASCII capitals the text must hold (an IBAN starts with two).
    min_capitals: int = 0

    def applies(self, text: str, lowered: str) -> bool:
        # Plain loops, not any(<generator>): twice as fast on the short strings that
        # dominate events (benchmarks/scrub_corpus.py --timing).
        for needle in self.all_of:
            if needle not in text:
                return False
        if self.gate is not None and self.gate.search(text) is None:
            return False
        if not self.any_of:
            return True
        for needle in self.any_of:  # noqa: SIM110
            if needle in lowered:
                return True
        return False


def _group(number: int, validate: Optional[Callable[[str], bool]] = None) -> Locate:
    def locate(match: re.Match[str]) -> Optional[Span]:
        if validate is not None and not validate(match.group(number)):
            return None
        return match.span(number)

    return locate


_CARD_GROUP = re.compile(r"[0-9]+")


def _locate_card(match: re.Match[str]) -> Optional[Span]:
    """The card at the start of a run of digit groups: the whole run, else the longest
    prefix of whole groups that is one (``4111 1111 1111 1111 15 EUR``). A card after
    leading groups (``qty 15 4111...``) is found when the search resumes at the next group."""
    text = match.group()
    end = len(text)
    while end > 0:
        digits = text[:end].replace(" ", "").replace("-", "")
        if len(digits) < 13:
            return None
        if card_valid(digits):
            return match.start(), match.start() + end
        end = max(text.rfind(" ", 0, end), text.rfind("-", 0, end))
        while end > 0 and text[end - 1] in " -":
            end -= 1
    return None


def _locate_iban(match: re.Match[str]) -> Optional[Span]:
    start, end = match.span()
    text = match.string
    compact = text[start:end].replace(" ", "")
    country = compact[:2]
    length = IBAN_LENGTHS.get(country)
    if length is None:
        if country in _IBAN_OTHER and " " not in text[start:end] and iban_valid(compact):
            return start, end
        return None
    if len(compact) < length or not iban_valid(compact[:length]):
        return None
    # Map the country length back onto the (possibly spaced) text; it must end a token.
    seen = 0
    for index in range(start, end):
        if text[index] != " ":
            seen += 1
            if seen == length:
                stop = index + 1
                if stop < len(text) and text[stop].isalnum():
                    return None
                return start, stop
    return None


def _pattern_locate(pattern: re.Pattern[str]) -> Locate:
    group = "secret" if "secret" in pattern.groupindex else 0
    return _group(group)  # type: ignore[arg-type]


PRIVATE_KEY = re.compile(
    r"-----BEGIN[A-Z ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
    r"(.+?)(?:-----END[A-Z ]{0,40}PRIVATE KEY(?: BLOCK)?-----|\Z)",
    re.DOTALL,
)
JWT = re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")
URL_PASSWORD = re.compile(r"(?i)\b[a-z][a-z0-9+.\-]{0,31}://[^\s/?#@:]{0,256}:([^\s/?#@]{1,256})@")
BEARER = re.compile(r"(?i)\bbearer[ \t]+([A-Za-z0-9\-._~+/]+=*)")
BASIC = re.compile(r"(?i)\bbasic[ \t]+([A-Za-z0-9+/]{6,}={0,2})(?![\w+/=])")
API_KEY = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    r"(?:sk|pk|rk)_(?:live|test)_[0-9A-Za-z]{8,}"
    r"|gh[pousr]_[0-9A-Za-z]{20,}"
    r"|github_pat_[0-9A-Za-z_]{20,}"
    r"|(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}(?![0-9A-Z])"
    r"|xox[abposre]-[0-9A-Za-z-]{10,}"
    r"|sk-(?:proj-|ant-|live-)?[0-9A-Za-z_-]{20,}"
    r"|AIza[0-9A-Za-z_-]{35}"
    r"|glpat-[0-9A-Za-z_-]{20,}"
    r"|npm_[0-9A-Za-z]{36}"
    r"|SG\.[0-9A-Za-z_-]{16,}\.[0-9A-Za-z_-]{16,}"
    r"|(?<=hooks\.slack\.com/services/)[A-Za-z0-9/]{20,}"
    r")"
)
EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])(?<!//)[A-Za-z0-9._%+\-]+@"
    r"[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b"
)
CARD = re.compile(r"(?<![\w.])[0-9](?:[ -]?[0-9]){12,18}(?![\w])")
SSN = re.compile(
    r"(?<![\w-])(?!000|666|9[0-9][0-9])[0-9]{3}-(?!00)[0-9]{2}-(?!0000)[0-9]{4}(?![\w-])"
)
IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?:[ ]?[A-Za-z0-9]){11,30}(?![A-Za-z0-9])")

#: Words whose mention in a data value (not a message) makes Relay's defaults drop the value;
#: searched in the lowercased text.
MENTION = re.compile(
    r"pass(?:wo?r?d|phrase)|secret|credential|api[-_ ]?key|private[-_ ]?key|mysql_pwd"
)


#: The fixed prefixes of :data:`API_KEY`, to skip it cheaply on texts without any.
_API_KEY_GATE = re.compile(
    r"_live_|_test_|gh[pousr]_|github_pat_|A[KS]IA|ABIA|ACCA|xox|sk-|AIza|glpat-|npm_|SG\.|"
    r"hooks\.slack"
)


def builtin_detectors(enabled: frozenset[str]) -> tuple[Detector, ...]:
    """The enabled detectors that need no configuration, in the order they run.

    ``secret_assignment`` and ``password_mention`` are applied by the text scrubber itself.
    """
    detectors = [
        Detector("private_key", PRIVATE_KEY, _group(1), all_of=("-----",)),
        Detector("jwt", JWT, _group(0), all_of=("eyJ",)),
        Detector("url_password", URL_PASSWORD, _group(1), all_of=("://", "@")),
        Detector("bearer", BEARER, _group(1), any_of=("bearer",)),
        Detector("bearer", BASIC, _group(1, _basic_credentials), any_of=("basic",)),
        Detector("api_key", API_KEY, _group(0), gate=_API_KEY_GATE),
        Detector("email", EMAIL, _group(0), all_of=("@",)),
        Detector("card", CARD, _locate_card, min_digits=13),
        Detector("ssn", SSN, _group(0), all_of=("-",), min_digits=9),
        Detector("iban", IBAN, _locate_iban, min_digits=2, min_capitals=2),
    ]
    return tuple(d for d in detectors if d.name in enabled)


def custom_detectors(patterns: Sequence[tuple[str, re.Pattern[str]]]) -> tuple[Detector, ...]:
    """User patterns: the whole match is replaced, or only its ``(?P<secret>...)`` group."""
    return tuple(Detector(name, pattern, _pattern_locate(pattern)) for name, pattern in patterns)


_NOT_DIGITS = bytes(b for b in range(256) if not 0x30 <= b <= 0x39)
_NOT_CAPITALS = bytes(b for b in range(256) if not 0x41 <= b <= 0x5A)


def count_digits_and_capitals(text: str) -> tuple[int, int]:
    """ASCII digits and capitals in ``text``, by C-level byte deletion (no per-char Python
    loop, no regex scan; benchmarks/scrub_corpus.py --timing)."""
    data = text.encode("ascii", "ignore")
    return len(data.translate(None, _NOT_DIGITS)), len(data.translate(None, _NOT_CAPITALS))
