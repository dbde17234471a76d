"""Which span attributes become Sentry tags, and what the resource says about the process.

Every attribute goes into the event's data; only business attributes (``biz.<key>``) that
look like dimensions become tags, because tags are indexed, counted and limited: a tag
holding an order id or an amount would bloat Sentry's tag store and be useless to filter by.
Tag keys and values are checked against the limits Relay enforces (see the constants) so no
tag is trimmed or rejected on the server. :func:`resource_info` turns OTel resource
attributes into Sentry's release, environment, server name and contexts.

Example::

    >>> TagMapper().split({"biz.customer": "ACME", "biz.amount": 12.5})
    ({'customer': 'ACME'}, {'biz.customer': 'ACME', 'biz.amount': 12.5})
"""

from __future__ import annotations

import logging
import math
import string
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Optional

from otel_sentry_biz.attributes import BIZ_PREFIX

__all__ = [
    "BIZ_PREFIX",
    "ResourceInfo",
    "TagMapper",
    "TagPolicy",
    "json_safe",
    "resource_info",
]

logger = logging.getLogger("otel_sentry_biz.sentry.tags")

#: Sentry's documented tag key limit (and older Relays'); Relay 0.10 trims keys beyond 200.
MAX_TAG_KEY_LENGTH = 32
#: Relay trims tag values beyond 200 characters and rejects values containing a newline.
MAX_TAG_VALUE_LENGTH = 200
#: Relay rejects a tag key with any other character.
TAG_KEY_CHARS = frozenset(string.ascii_letters + string.digits + "_.:-")
#: Tag keys Relay moves, drops or overwrites (checked by the tests): the value would be lost.
RELAY_OWNED_TAG_KEYS = frozenset(
    ("environment", "release", "dist", "user", "filename", "function", "server_name", "site")
)
#: Tag keys Sentry derives from the event and its contexts.
SENTRY_DERIVED_TAG_KEYS = frozenset(
    ("level", "logger", "transaction", "url", "handled", "mechanism", "os", "runtime", "trace")
)
#: A business key must not take these (nor a ``sentry:`` key): it is tagged ``biz.<key>``.
RESERVED_TAG_KEYS = RELAY_OWNED_TAG_KEYS | SENTRY_DERIVED_TAG_KEYS
RESERVED_TAG_PREFIXES = ("sentry:",)
#: Value types tagged by the default policy: floats are amounts, sequences are lists.
DEFAULT_TAG_TYPES: tuple[type, ...] = (str, bool, int)
#: Value types an explicit ``allow`` set may tag.
ALLOWED_TAG_TYPES: tuple[type, ...] = (str, bool, int, float)
#: Business keys whose distinct values are tracked; beyond this a new key is not tagged.
MAX_TRACKED_KEYS = 256
#: Relay reads integers as i64/u64 and turns larger ones into 0: those become strings.
MIN_JSON_INT, MAX_JSON_INT = -(2**63), 2**64 - 1
MAX_JSON_DEPTH = 8

#: Sentry contexts filled from resource attributes: context -> field -> attribute names
#: (first present wins). ``cloud_resource`` uses OTel's names, as Sentry's does.
RESOURCE_CONTEXTS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "app": {"app_name": ("service.name",), "app_version": ("service.version",)},
    "runtime": {
        "name": ("process.runtime.name",),
        "version": ("process.runtime.version",),
        "raw_description": ("process.runtime.description",),
    },
    "os": {
        "name": ("os.name", "os.type"),
        "version": ("os.version",),
        "build": ("os.build_id",),
        "raw_description": ("os.description",),
    },
    "cloud_resource": {
        name: (name,)
        for name in (
            "cloud.provider",
            "cloud.account.id",
            "cloud.region",
            "cloud.availability_zone",
            "cloud.platform",
            "host.id",
            "host.type",
        )
    },
}
SERVICE_NAME = "service.name"
SERVICE_VERSION = "service.version"
#: The SDK's service name when none is configured: not a name worth a release.
DEFAULT_SERVICE_NAME_PREFIX = "unknown_service"
ENVIRONMENT_ATTRIBUTES: tuple[str, ...] = ("deployment.environment.name", "deployment.environment")
SERVER_NAME_ATTRIBUTE = "host.name"
#: Relay's release and environment rules: these characters are invalid in both.
INVALID_NAME_CHARS = frozenset([chr(c) for c in range(32)] + ["\x7f", "/", "\\"])
MAX_RELEASE_LENGTH = 200
RESTRICTED_RELEASES = frozenset({".", "..", "latest"})
MAX_ENVIRONMENT_LENGTH = 64
RESTRICTED_ENVIRONMENTS = frozenset({"none"})


# Defined before TagPolicy: the TagMapper default argument builds one at import time.
def _business_keys(keys: Iterable[str], argument: str) -> frozenset[str]:
    if isinstance(keys, str):
        raise ValueError(f"TagPolicy {argument}={keys!r}: expected a set of keys, not a string")
    return frozenset(key[len(BIZ_PREFIX) :] if key.startswith(BIZ_PREFIX) else key for key in keys)


@dataclass(frozen=True)
class TagPolicy:
    """Which business attributes may become tags.

    ``allow`` names business keys (without ``biz.``) tagged for any scalar value, floats
    included; None means the default policy (str, bool and int values). ``deny`` always
    wins. A key that shows more than ``max_distinct_values`` distinct values in this
    process stops being tagged: that keeps ids and other high-cardinality values out of
    Sentry's tag store.
    Example::

        TagMapper(TagPolicy(deny=frozenset({"customer_email"}), max_distinct_values=200))
    """

    allow: Optional[frozenset[str]] = None
    deny: frozenset[str] = frozenset()
    max_distinct_values: int = 1000

    def __post_init__(self) -> None:
        # Copy what the caller passed (a list, a set) and accept "biz."-prefixed keys.
        if self.allow is not None:
            object.__setattr__(self, "allow", _business_keys(self.allow, "allow"))
        object.__setattr__(self, "deny", _business_keys(self.deny, "deny"))
        limit = self.max_distinct_values
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(
                f"TagPolicy max_distinct_values={limit!r}: must be an int >= 1 "
                "(to tag no business attributes, use allow=frozenset())"
            )


#: A business attribute the policy would tag: (business key, tag key, tag value).
TagCandidate = tuple[str, str, str]


class TagMapper:
    """Split span attributes into Sentry tags and data.

    Holds the per-key distinct-value guard: bounded memory (hashes of at most
    ``max_distinct_values`` values for at most 256 keys) and safe to share between threads.
    """

    def __init__(self, policy: TagPolicy = TagPolicy()) -> None:
        self._policy = policy
        self._seen: dict[str, set[int]] = {}
        self._blocked: set[str] = set()
        self._lock = threading.Lock()
        self._warned_full = False

    def split(self, attributes: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
        """(tags, data) of a span's attributes.

        Business attributes (``biz.<key>``) eligible under the policy give ``tags[<key>]`` as
        a string; every attribute, business ones included, gives ``data[key]`` as a JSON-safe
        value (bytes decoded, tuples as lists, NaN and infinities as strings).
        """
        candidates, data = self.candidates(attributes)
        return self.admitted(candidates), data

    def candidates(
        self, attributes: Mapping[str, Any]
    ) -> tuple[list[TagCandidate], dict[str, Any]]:
        """What :meth:`split` decides from the attributes alone: (candidates, data).

        A candidate is a business attribute the policy would tag, as (business key, tag key,
        tag value); :meth:`admitted` then decides which are tags now. A pure function of the
        attributes (and the policy): the exporter reuses it for spans that repeat them.
        """
        candidates: list[TagCandidate] = []
        data: dict[str, Any] = {}
        for key, value in attributes.items():
            name = key if isinstance(key, str) else str(key)
            kind = type(value)
            if (kind is str and value.isascii()) or (
                kind is int and MIN_JSON_INT <= value <= MAX_JSON_INT
            ):
                data[name] = value  # json_safe's own first answer, without a call per value
            else:
                data[name] = json_safe(value)
            if name.startswith(BIZ_PREFIX):
                candidate = self._candidate(name[len(BIZ_PREFIX) :], value)
                if candidate is not None:
                    candidates.append(candidate)
        return candidates, data

    def admitted(self, candidates: Iterable[TagCandidate]) -> dict[str, str]:
        """The tags of ``candidates`` (in order) whose key still takes new values.

        Each value is counted towards its key's distinct values, as :meth:`split` does.
        """
        tags: dict[str, str] = {}
        for key, tag_key, text in candidates:
            if key not in self._blocked and self._admit(key, text):
                tags[tag_key] = text
        return tags

    def _candidate(self, key: str, value: Any) -> Optional[TagCandidate]:
        policy = self._policy
        if key in policy.deny:
            return None
        if policy.allow is None:
            text = _tag_value(value, DEFAULT_TAG_TYPES)
        elif key in policy.allow:
            text = _tag_value(value, ALLOWED_TAG_TYPES)
        else:
            return None
        tag_key = _tag_key(key)
        if text is None or tag_key is None:
            return None
        return key, tag_key, text

    def _admit(self, key: str, text: str) -> bool:
        """Count ``text`` as a value of ``key``; False once the key has too many values."""
        digest = hash(text)  # per-process counting only: the salted hash is fine, and small
        # A value already counted is admitted without the lock (it runs for every business
        # attribute of every span): a set is only ever added to, and a blocked key's set is
        # dropped whole, so a read that races a block answers as if it came just before it.
        seen = self._seen.get(key)
        if seen is not None and digest in seen:
            return True
        with self._lock:
            seen = self._seen.get(key)
            if seen is None:
                if key in self._blocked:
                    return False
                if len(self._seen) + len(self._blocked) >= MAX_TRACKED_KEYS:
                    if not self._warned_full:
                        self._warned_full = True
                        logger.warning(
                            "more than %d business attribute keys seen; new keys are kept "
                            "in span data but no longer tagged",
                            MAX_TRACKED_KEYS,
                        )
                    return False
                seen = self._seen[key] = set()
            if digest in seen:
                return True
            if len(seen) >= self._policy.max_distinct_values:
                del self._seen[key]
                self._blocked.add(key)
                logger.warning(
                    "business attribute %r has more than %d distinct values; it is kept in "
                    "span data but no longer tagged (raise TagPolicy.max_distinct_values or "
                    "deny the key to silence this)",
                    BIZ_PREFIX + key,
                    self._policy.max_distinct_values,
                )
                return False
            seen.add(digest)
            return True


@dataclass(frozen=True)
class ResourceInfo:
    """What the OTel resource says about the process, in Sentry's terms."""

    contexts: dict[str, dict] = field(default_factory=dict)
    release: Optional[str] = None
    environment: Optional[str] = None
    server_name: Optional[str] = None


def resource_info(resource_attributes: Mapping[str, Any]) -> ResourceInfo:
    """Release, environment, server name and contexts from resource attributes.

    ``release`` is ``<service.name>@<service.version>`` (just the version when the service
    has the SDK's default name); values Relay would reject become None, never an error.
    The whole resource is kept in ``contexts["otel"]["resource"]``. Example::

        resource_info(provider.resource.attributes).release  # "billing@1.4.2"
    """
    attributes = dict(resource_attributes)
    service = _first_text(attributes, (SERVICE_NAME,))
    if service is not None and service.startswith(DEFAULT_SERVICE_NAME_PREFIX):
        service = None
        del attributes[SERVICE_NAME]  # only for the derived fields: "otel" keeps it
    contexts: dict[str, dict] = {}
    for context, fields in RESOURCE_CONTEXTS.items():
        values = {}
        for name, keys in fields.items():
            value = _first_text(attributes, keys)
            if value is not None:
                values[name] = value
        if values:
            contexts[context] = values
    contexts["otel"] = {"resource": {str(k): json_safe(v) for k, v in resource_attributes.items()}}
    version = _first_text(attributes, (SERVICE_VERSION,))
    release = None
    if version is not None:
        release = _valid_name(
            f"{service}@{version}" if service else version, MAX_RELEASE_LENGTH, RESTRICTED_RELEASES
        )
    environment = _valid_name(
        _first_text(attributes, ENVIRONMENT_ATTRIBUTES),
        MAX_ENVIRONMENT_LENGTH,
        RESTRICTED_ENVIRONMENTS,
    )
    server_name = _first_text(attributes, (SERVER_NAME_ATTRIBUTE,))
    if server_name is not None and (len(server_name) > MAX_TAG_VALUE_LENGTH or "\n" in server_name):
        server_name = None  # Relay files server_name as a tag: same limits
    return ResourceInfo(contexts, release, environment, server_name)


def json_safe(value: Any, _depth: int = 0) -> Any:
    """``value`` as something JSON and Relay keep as is (see the module constants)."""
    kind = type(value)
    # Fast paths for what span attributes almost always hold (called for every attribute).
    if kind is str and value.isascii():
        return value
    if kind is int and MIN_JSON_INT <= value <= MAX_JSON_INT:
        return value
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value if value.isascii() else _valid_utf8(value)
    if isinstance(value, int):
        return value if MIN_JSON_INT <= value <= MAX_JSON_INT else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    if _depth >= MAX_JSON_DEPTH:
        return _valid_utf8(str(value))
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(item, _depth + 1) for item in value]
    return _valid_utf8(str(value))


# -- helpers ------------------------------------------------------------------------------


def tag_text(value: str) -> Optional[str]:
    """``value`` as a Sentry tag value (stripped, one line, at most 200 chars), or None."""
    return _tag_value(value, (str,))


def _tag_value(value: Any, types: tuple[type, ...]) -> Optional[str]:
    if not isinstance(value, types):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value.strip()  # Relay strips; count the value Sentry will show
    elif isinstance(value, float) and not math.isfinite(value):
        return None
    else:
        text = str(value)
    if not text or len(text) > MAX_TAG_VALUE_LENGTH or "\n" in text or "\r" in text:
        return None
    return text if text.isascii() else _valid_utf8(text)


@lru_cache(maxsize=1024)
def _tag_key(key: str) -> Optional[str]:
    """The Sentry tag key of business key ``key``, or None when it cannot be one."""
    if key in RESERVED_TAG_KEYS or key.startswith(RESERVED_TAG_PREFIXES):
        key = BIZ_PREFIX + key
    tag = "".join(char if char in TAG_KEY_CHARS else "_" for char in key)
    if not tag.strip("_") or len(tag) > MAX_TAG_KEY_LENGTH:
        return None
    return tag


def _first_text(attributes: Mapping[str, Any], keys: tuple[str, ...]) -> Optional[str]:
    for key in keys:
        value = attributes.get(key)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            text = _valid_utf8(str(value)).strip()
            if text:
                return text
    return None


def _valid_name(text: Optional[str], max_length: int, restricted: frozenset[str]) -> Optional[str]:
    """A release or environment name as Relay accepts it, or None."""
    if text is None:
        return None
    name = "".join("-" if char in INVALID_NAME_CHARS else char for char in text).strip()
    if not name or len(name) > max_length or name.lower() in restricted:
        return None
    return name


def _valid_utf8(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: no JSON encoder may choke on them later
        return text.encode("utf-8", "replace").decode("utf-8")
    return text
