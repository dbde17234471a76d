"""Settings: one frozen dataclass built from arguments, then variables, then profile defaults.

Every variable is declared once in :data:`VARIABLES` (name, field, parser, per-profile default,
meaning); ``docs/configuration.md`` is generated from that table. Validation happens here, at
start-up, and every error names the variable, the bad value and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from sentry_sdk.utils import BadDsn, Dsn

from otel_sentry_biz.classify import parse_judgement

if TYPE_CHECKING:
    from otel_sentry_biz.sentry.fingerprints import FingerprintRules

PROFILES = ("development", "staging", "production")

#: Environment names that select a profile when OTEL_SENTRY_BIZ_PROFILE is not set.
_PROFILE_ALIASES = {
    "development": "development",
    "dev": "development",
    "local": "development",
    "test": "development",
    "staging": "staging",
    "stage": "staging",
    "preprod": "staging",
    "production": "production",
    "prod": "production",
}


class ConfigError(ValueError):
    """A setting is invalid; the message names the variable (or argument) and the fix."""


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError("must be between 0.0 and 1.0")
    return value


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _name_set(text: str) -> Optional[frozenset[str]]:
    names = frozenset(part.strip() for part in text.split(",") if part.strip())
    return names or None


def _dsn(text: str) -> Optional[str]:
    text = text.strip()
    if not text:
        return None
    # The parser's own messages may quote the DSN, secret included: never pass them on.
    if not text.isascii():
        raise ValueError("not a DSN: it must be ASCII (an IDN host in its xn-- form)")
    try:
        parsed = Dsn(text)
    except (BadDsn, ValueError):
        raise ValueError("not a DSN: expected https://<public_key>@<host>/<project_id>") from None
    if ":" in (parsed.host or ""):  # sentry-sdk's Dsn loses an IPv6 address's brackets
        raise ValueError("IPv6 addresses are not supported in a DSN yet: use a host name")
    return text


def _profile(text: str) -> str:
    if text not in PROFILES:
        raise ValueError(f"must be one of {', '.join(PROFILES)}")
    return text


def _classification(text: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        type_name, sep, spec = item.partition("=")
        if not sep or not type_name.strip() or not spec.strip():
            raise ValueError(f"{item!r} is not ExceptionType=IMPACT/category")
        parse_judgement(spec)
        pairs.append((type_name.strip(), spec.strip()))
    return tuple(pairs)


def _text(text: str) -> Optional[str]:
    return text.strip() or None


@dataclass(frozen=True)
class Variable:
    """One setting: its environment variable, parser, default per profile and meaning."""

    field: str
    env: str
    parse: Callable[[str], Any]
    default: Any  # a value, or a {profile: value} mapping
    doc: str
    fix: str

    def default_for(self, profile: str) -> Any:
        if isinstance(self.default, Mapping):
            return self.default[profile]
        return self.default


def _per_profile(development: Any, staging: Any, production: Any) -> dict[str, Any]:
    return {"development": development, "staging": staging, "production": production}


#: Every setting. Profile defaults follow the booking seed's development / staging / production.
VARIABLES: tuple[Variable, ...] = (
    Variable(
        "dsn",
        "SENTRY_DSN",
        _dsn,
        None,
        "Where to send events. Unset: the Sentry bridge is off (spans still flow to other "
        "exporters).",
        "set it to your project's DSN, https://<key>@<host>/<project>",
    ),
    Variable(
        "environment",
        "SENTRY_ENVIRONMENT",
        _text,
        None,
        "Sentry environment. Unset: the resource's deployment.environment(.name), else "
        '"production".',
        "use a short name such as production",
    ),
    Variable(
        "release",
        "SENTRY_RELEASE",
        _text,
        None,
        "Sentry release. Unset: the resource's service.name@service.version.",
        "use e.g. billing@1.4.2",
    ),
    Variable(
        "profile",
        "OTEL_SENTRY_BIZ_PROFILE",
        _profile,
        None,
        "Which defaults apply. Unset: chosen from the environment name (dev/staging/prod), "
        "else production.",
        "use development, staging or production",
    ),
    Variable(
        "sample_rate",
        "SENTRY_SAMPLE_RATE",
        _rate,
        1.0,
        "Share of error events sent. Every error is kept by default; per-issue caps limit "
        "volume instead of random loss.",
        "use a number from 0.0 to 1.0",
    ),
    Variable(
        "traces_sample_rate",
        "SENTRY_TRACES_SAMPLE_RATE",
        _rate,
        _per_profile(1.0, 0.5, 0.05),
        "Share of traces sent as transactions (parent-based, trace-id ratio). Traces left "
        "out are still recorded: their errors and violations are sent, with their "
        "transaction (business-aware keep).",
        "use a number from 0.0 to 1.0",
    ),
    Variable(
        "profiles_sample_rate",
        "SENTRY_PROFILES_SAMPLE_RATE",
        _rate,
        _per_profile(1.0, 0.2, 0.02),
        "Accepted for compatibility with the seeds' settings; profiling is not done by this "
        "package.",
        "use a number from 0.0 to 1.0",
    ),
    Variable(
        "debug",
        "SENTRY_DEBUG",
        _bool,
        _per_profile(True, False, False),
        "Log what the bridge does at DEBUG level (logger otel_sentry_biz).",
        "use true or false",
    ),
    Variable(
        "send_default_pii",
        "SENTRY_SEND_DEFAULT_PII",
        _bool,
        False,
        "Allow personal data (user e-mail, IP, names) in events.",
        "use true or false",
    ),
    Variable(
        "max_breadcrumbs",
        "SENTRY_MAX_BREADCRUMBS",
        _positive_int,
        100,
        "Breadcrumbs kept per error event.",
        "use a positive integer such as 100",
    ),
    Variable(
        "max_events_per_issue",
        "SENTRY_MAX_EVENTS_PER_ISSUE",
        _positive_int,
        50,
        "Events sent per unique issue per hour.",
        "use a positive integer such as 50",
    ),
    Variable(
        "tag_allowlist",
        "OTEL_SENTRY_BIZ_TAGS",
        _name_set,
        None,
        "Business keys that become Sentry tags (comma-separated). Unset: every short "
        "string, bool or int business attribute whose key stays below 1000 distinct values.",
        "list keys without the biz. prefix, e.g. customer,work_request",
    ),
    Variable(
        "tag_denylist",
        "OTEL_SENTRY_BIZ_TAGS_DENY",
        _name_set,
        None,
        "Business keys never made tags (comma-separated).",
        "list keys without the biz. prefix",
    ),
    Variable(
        "sensitive_keys",
        "OTEL_SENTRY_BIZ_SENSITIVE_KEYS",
        _name_set,
        None,
        "More business keys that are never propagated as baggage (comma-separated).",
        "list keys without the biz. prefix",
    ),
    Variable(
        "scrub_keys",
        "OTEL_SENTRY_BIZ_SCRUB_KEYS",
        lambda text: _parse_names(text),
        (),
        "More key names whose values are always scrubbed, on top of sentry-sdk's default "
        "denylist (comma-separated; matched in dotted and prefixed keys too).",
        "list key names, e.g. iban,customer_pin",
    ),
    Variable(
        "scrub_safe_keys",
        "OTEL_SENTRY_BIZ_SCRUB_SAFE_KEYS",
        lambda text: _parse_names(text),
        (),
        "Key names never scrubbed by name (their values are still checked for secrets).",
        "list key names, e.g. token_count",
    ),
    Variable(
        "scrub_patterns",
        "OTEL_SENTRY_BIZ_SCRUB_PATTERNS",
        lambda text: _parse_patterns(text),
        (),
        'Custom secret patterns, a JSON object {"name": "regex"}; the match (or its '
        "(?P<secret>...) group) is replaced by [Filtered].",
        'use a JSON object such as {"order_token": "ord_[0-9a-f]{24}"}',
    ),
    Variable(
        "classification",
        "OTEL_SENTRY_BIZ_CLASSIFY",
        _classification,
        (),
        "Impact/category overrides by exception type: Type=IMPACT/category, comma-separated.",
        "write e.g. PaymentDeclined=CRITICAL/business_logic,Timeout=HIGH",
    ),
    Variable(
        "max_spans_per_transaction",
        "OTEL_SENTRY_BIZ_MAX_SPANS",
        _positive_int,
        1000,
        "Child spans per Sentry transaction; larger segments are split into several.",
        "use a positive integer such as 1000",
    ),
    Variable(
        "max_buffered_spans",
        "OTEL_SENTRY_BIZ_MAX_BUFFERED_SPANS",
        _positive_int,
        30_000,
        "Finished spans held in memory while waiting to be converted: the span buffer's "
        "memory budget (a typical span takes about 1.2 KB; from three quarters full the "
        "buffer is drained at full speed, beyond it spans are dropped and counted).",
        "use a positive integer such as 30000",
    ),
    Variable(
        "max_queue_mb",
        "OTEL_SENTRY_BIZ_MAX_QUEUE_MB",
        _positive_int,
        64,
        "Megabytes of encoded envelopes held while Sentry is slow or unreachable.",
        "use a positive integer such as 64",
    ),
    Variable(
        "pipeline_depth",
        "OTEL_SENTRY_BIZ_PIPELINE_DEPTH",
        _positive_int,
        8,
        "Envelopes written to Sentry before their answers are read (HTTP/1.1 pipelining, "
        "over the one kept-alive connection), while a backlog waits: fewer system calls per "
        "envelope, and one round trip per window to a far-away Sentry. A server found not "
        "to serve pipelined requests gets one at a time from then on; 1 turns it off.",
        "use a positive integer such as 8 (1: one request at a time)",
    ),
    Variable(
        "outbox",
        "OTEL_SENTRY_BIZ_OUTBOX",
        _text,
        None,
        "A file path: envelopes wait for delivery in this SQLite file, so what was queued "
        "survives a crash or restart of the app (several processes may share one file). "
        "Unset: in memory.",
        "use a writable file path such as /var/lib/myapp/sentry-outbox.sqlite3",
    ),
    Variable(
        "rules",
        "OTEL_SENTRY_BIZ_RULES",
        lambda text: _rules(text),
        None,
        "Business rules: rules files and shipped rule sets, comma-separated (e.g. "
        "billing,/etc/app/rules.toml). Validated at start-up; see docs/rules.md.",
        "fix the problems listed, or check a file with: otel-sentry-biz rules check FILE",
    ),
    Variable(
        "rules_state",
        "OTEL_SENTRY_BIZ_RULES_STATE",
        lambda text: _state_url(text),
        None,
        "Where windowed rules keep their counts: memory:// (one process), "
        "sqlite:////path/state.db (processes on one host), redis://host:6379/0 (a fleet). "
        "Unset: the rules file's own state setting, else memory://.",
        "use memory://, sqlite:////path/state.db or redis://127.0.0.1:6379/0",
    ),
    Variable(
        "fingerprints",
        "OTEL_SENTRY_BIZ_FINGERPRINTS",
        lambda text: _fingerprints(text),
        None,
        "Fingerprint rules: a TOML file of [[fingerprint]] tables choosing the Sentry issue of "
        "errors, violations and messages by operation, error type, user type or tag. "
        "Validated at start-up; see docs/fingerprints.md.",
        "fix the problems listed, each names the rule and the fix (see docs/fingerprints.md)",
    ),
)


def _parse_names(text: str) -> tuple[str, ...]:
    from otel_sentry_biz.scrub.config import parse_names

    return parse_names(text)


def _parse_patterns(text: str) -> tuple[tuple[str, str], ...]:
    from otel_sentry_biz.scrub import Scrubber, ScrubConfig
    from otel_sentry_biz.scrub.config import parse_patterns

    patterns = parse_patterns(text)
    try:  # the scrubber's own checks (a pattern matching "", or the marker), now, not later
        Scrubber(ScrubConfig(patterns=patterns))
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return patterns


def _state_url(text: str) -> Optional[str]:
    text = text.strip()
    if not text:
        return None
    from otel_sentry_biz.rules.state import state_url_problem

    problem = state_url_problem(text)
    if problem:
        raise ValueError(problem)
    return text


def _rules(text: str) -> Optional[str]:
    # Imported here: the rules package itself imports ConfigError from this module.
    from otel_sentry_biz.rules.loader import validate_rules_setting

    return validate_rules_setting(text)


def _fingerprints(text: str) -> Optional[str]:
    from otel_sentry_biz.sentry.fingerprints import fingerprints_setting

    return fingerprints_setting(text)


_BY_FIELD = {variable.field: variable for variable in VARIABLES}


@dataclass(frozen=True)
class Settings:
    """Validated configuration of the pipeline. Build it with :meth:`Settings.load`."""

    dsn: Optional[str]
    environment: Optional[str]
    release: Optional[str]
    profile: str
    sample_rate: float
    traces_sample_rate: float
    profiles_sample_rate: float
    debug: bool
    send_default_pii: bool
    max_breadcrumbs: int
    max_events_per_issue: int
    tag_allowlist: Optional[frozenset[str]]
    tag_denylist: Optional[frozenset[str]]
    sensitive_keys: Optional[frozenset[str]]
    scrub_keys: tuple[str, ...]
    scrub_safe_keys: tuple[str, ...]
    scrub_patterns: tuple[tuple[str, str], ...]
    classification: tuple[tuple[str, str], ...]
    max_spans_per_transaction: int
    max_buffered_spans: int
    max_queue_mb: int
    pipeline_depth: int
    outbox: Optional[str]
    rules: Optional[str]
    rules_state: Optional[str]
    #: A TOML path, or FingerprintRules built in Python (given as an argument).
    fingerprints: Union[str, FingerprintRules, None]

    @classmethod
    def load(cls, environ: Optional[Mapping[str, str]] = None, **arguments: Any) -> Settings:
        """Arguments win over variables, variables over the profile's defaults.

        >>> Settings.load({"SENTRY_TRACES_SAMPLE_RATE": "0.2"}, environment="staging")

        Raises :class:`ConfigError` naming the variable or argument, the value and the fix.
        """
        env = os.environ if environ is None else environ
        unknown = set(arguments) - set(_BY_FIELD)
        if unknown:
            raise ConfigError(
                f"unknown setting(s) {', '.join(sorted(unknown))}: "
                f"use one of {', '.join(sorted(_BY_FIELD))}"
            )
        explicit: dict[str, Any] = {}
        for variable in VARIABLES:
            if variable.field in arguments and arguments[variable.field] is not None:
                explicit[variable.field] = _check_argument(variable, arguments[variable.field])
            elif env.get(variable.env, "").strip():
                explicit[variable.field] = _parse_variable(variable, env[variable.env])
        profile = explicit.get("profile") or _profile_for(explicit.get("environment"))
        values = {
            v.field: explicit[v.field] if v.field in explicit else v.default_for(profile)
            for v in VARIABLES
        }
        values["profile"] = profile
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        current.update(changes)
        return Settings(**current)


def _profile_for(environment: Optional[str]) -> str:
    if environment is None:
        return "production"
    return _PROFILE_ALIASES.get(environment.strip().lower(), "production")


def _parse_variable(variable: Variable, raw: str) -> Any:
    try:
        return variable.parse(raw)
    except ValueError as exc:
        shown = "<redacted>" if variable.field == "dsn" else repr(raw)
        raise ConfigError(f"{variable.env}={shown} is invalid ({exc}): {variable.fix}") from None


def _check_argument(variable: Variable, value: Any) -> Any:
    if isinstance(value, str) and variable.parse is not _text:
        try:
            return variable.parse(value)
        except ValueError as exc:
            shown = "<redacted>" if variable.field == "dsn" else repr(value)
            raise ConfigError(
                f"argument {variable.field}={shown} is invalid ({exc}): {variable.fix}"
            ) from None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return variable.parse(str(value))
        except ValueError as exc:
            raise ConfigError(
                f"argument {variable.field}={value!r} is invalid ({exc}): {variable.fix}"
            ) from None
    if isinstance(value, (set, frozenset, list, tuple)) and variable.parse is _name_set:
        return frozenset(str(v) for v in value) or None
    return value
