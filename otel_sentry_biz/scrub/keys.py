"""Which keys name a secret: the denylists and the matcher that applies them.

A key is normalised before matching: camelCase is split, everything lowercased and every run
of separators (``.``, ``-``, space, ``:``, ``/``...) becomes ``_``. So ``X-Api-Key``,
``http.request.header.x_api_key`` and ``xApiKey`` all read ``x_api_key``. A denylist entry
matches when it is a whole run of words of the normalised key (``token`` matches
``oauth.access_token`` but not ``gen_ai.usage.input_tokens``); a few unambiguous stems
(:data:`SECRET_STEMS`) match anywhere (``biz.userpassword``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: sentry-sdk's ``scrubber.DEFAULT_DENYLIST`` (2.x), copied so that ours is provably at least
#: as wide; ``tests/scrub/test_keys.py`` checks it against the installed sentry-sdk.
SENTRY_SDK_DENYLIST = (
    "password",
    "passwd",
    "secret",
    "api_key",
    "apikey",
    "auth",
    "credentials",
    "mysql_pwd",
    "privatekey",
    "private_key",
    "token",
    "session",
    "csrftoken",
    "sessionid",
    "x_csrftoken",
    "x_forwarded_for",
    "set_cookie",
    "cookie",
    "authorization",
    "proxy-authorization",
    "x_api_key",
    "aiohttp_session",
    "connect.sid",
    "csrf_token",
    "csrf",
    "_csrf",
    "_csrf_token",
    "PHPSESSID",
    "_session",
    "symfony",
    "user_session",
    "_xsrf",
    "XSRF-TOKEN",
)

#: sentry-sdk's ``scrubber.DEFAULT_PII_DENYLIST``: scrubbed unless ``send_default_pii``.
SENTRY_SDK_PII_DENYLIST = ("x_forwarded_for", "x_real_ip", "ip_address", "remote_addr")

#: Our additions to the secret denylist (whole words of the normalised key).
EXTRA_DENYLIST = (
    "passphrase",
    "pwd",
    "pin",
    "otp",
    "totp",
    "mfa_code",
    "two_factor",
    "2fa",
    "client_secret",
    "access_key",
    "secret_key",
    "signing_key",
    "encryption_key",
    "dsn",
    "jwt",
    "bearer",
    "sid",
    "signature",
    "sig",
    "x_amz_security_token",
    "ssn",
    "social_security_number",
    "card_number",
    "credit_card",
    "cc_number",
    "cvv",
    "cvc",
    "iban",
)

#: Our additions to the PII denylist: OTel's semantic-convention names for the same data.
EXTRA_PII_DENYLIST = (
    "client_address",
    "client_ip",
    "user_ip",
    "forwarded",
    "email",
    "e_mail",
    "phone",
    "phone_number",
    "user_full_name",
    "user_name",
    "username",
)

#: Stems that name a secret wherever they occur in the normalised key. ``token`` spares
#: counters (``input_tokens``, ``tokenizer``, ``token_count``); ``auth`` spares ``author``.
SECRET_STEMS = (
    r"password",
    r"passwd",
    r"passphrase",
    r"secret",
    r"credential",
    r"api_?key",
    r"private_?key",
    r"access_?key",
    r"mysql_pwd",
    r"authorization",
    r"auth(?!or|entic)",
    r"token(?!s(?:_|$)|iz|_count|_usage|_type)",
    r"csrf",
    r"xsrf",
    r"sessid",
    r"session_?id",
    r"cookie",
)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[^a-z0-9]+")
_CACHE_LIMIT = 4096


def normalize_key(key: str, *, split_camel: bool = True) -> str:
    """``"X-Api-Key"`` -> ``"x_api_key"``; ``"accessToken"`` -> ``"access_token"``."""
    if split_camel:
        key = _CAMEL.sub("_", key)
    return _SEPARATORS.sub("_", key.lower()).strip("_")


class KeyMatcher:
    """Decide whether a mapping key names a secret. Results are cached per key.

    >>> KeyMatcher().is_sensitive("http.request.header.authorization")
    True
    """

    def __init__(
        self,
        denylist: Iterable[str] = (),
        *,
        send_default_pii: bool = False,
        safe_keys: Iterable[str] = (),
    ) -> None:
        words = {*SENTRY_SDK_DENYLIST, *EXTRA_DENYLIST, *denylist}
        if not send_default_pii:
            words.update(SENTRY_SDK_PII_DENYLIST)
            words.update(EXTRA_PII_DENYLIST)
        # "token" is left to its stem, which spares counters (token_count, input_tokens).
        entries = sorted(
            {normalize_key(w, split_camel=False) for w in words} - {"", "token"},
            key=len,
            reverse=True,
        )
        self.words: tuple[str, ...] = tuple(entries)
        self._words = re.compile(
            r"(?:^|_)(?:" + "|".join(re.escape(w) for w in entries) + r")(?:_|$)"
        )
        self._stems = re.compile("|".join(SECRET_STEMS))
        self._safe = frozenset(normalize_key(k, split_camel=False) for k in safe_keys)
        #: Decisions made so far, key -> sensitive (read it to skip a call on hot paths).
        self.decided: dict[str, bool] = {}

    def is_sensitive(self, key: str) -> bool:
        """True when the value under ``key`` must be replaced whole."""
        cached = self.decided.get(key)
        if cached is not None:
            return cached
        result = self._decide(key)
        if len(self.decided) >= _CACHE_LIMIT:
            self.decided.clear()  # keys are few in practice; a flood of unique keys stays bounded
        self.decided[key] = result
        return result

    def _decide(self, key: str) -> bool:
        plain = normalize_key(key, split_camel=False)
        if plain in self._safe:
            return False
        camel = normalize_key(key)
        if camel in self._safe:
            return False
        for form in (plain, camel) if camel != plain else (plain,):
            if self._words.search(form) or self._stems.search(form):
                return True
        return False
