"""Regenerate docs/mapping.md from the mapping tables in otel_sentry_biz.sentry.

Run: python docs/_gen_mapping.py  (tests/sentry/test_mapping_doc.py fails when the page is stale)
"""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Iterable, Mapping

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))

from otel_sentry_biz import attributes as attr  # noqa: E402
from otel_sentry_biz.sentry import events, ops, stacktrace, status, tags, user  # noqa: E402

PAGE = pathlib.Path(__file__).with_name("mapping.md")

INTRO = """# OTel → Sentry mapping

How a finished OpenTelemetry span becomes Sentry data: its **op**, **description** and
**transaction name** (`otel_sentry_biz/sentry/ops.py`), its **status**
(`sentry/status.py`), its **tags, data and contexts** (`sentry/tags.py`), the **user** of
its events (`sentry/user.py`) and its **exceptions** (`sentry/stacktrace.py`). Old and
stable semantic conventions are both read; where both are present the stable name wins.

*This page is generated from those modules' tables by `python docs/_gen_mapping.py`.*
"""

OPS_PROSE = """## Op, description, transaction name

An explicit attribute always wins: `{op}` sets the op, `{description}` the description,
`{transaction_name}` the transaction name (source `custom`), and `{source}` the
transaction source when it is one Relay knows ({sources}). Otherwise the span's family is
the first row below with any trigger attribute present:
"""

FAMILY_RULES = {
    "db": "Query text, else query summary, else `<operation> <table>`, else the span name.",
    "http": (
        "Server: `<METHOD> <route>` (source `route`), else `<METHOD> <path>` without query "
        "string (source `url`; `/` counts as `route`), else the span name. Client: "
        "`<METHOD> <url>` without userinfo, query string or fragment (source `url`), the URL "
        "rebuilt from scheme, server address, port and path when there is no full URL. "
        "Method `_OTHER` is replaced by `http.request.method_original`."
    ),
    "rpc": (
        "`<service>/<method>` (or the fully-qualified `rpc.method`), with a leading `/` for "
        "gRPC as on the wire; source `route`."
    ),
    "celery": "The task name (`celery.task_name`), source `task`.",
    "messaging": (
        "The span name (semconv's low-cardinality `<operation> <destination>`); source `task` "
        "for `queue.process` / `queue.receive`."
    ),
}

STATUS_PROSE = """## Status

The first source that gives a status decides: the HTTP response status code
({http_attributes}), then the gRPC status code (`{grpc_attribute}`, or
`{rpc_attribute}` when `rpc.system(.name)` is one of {grpc_systems}), then the OTel span
status. Codes may be ints or numeric strings; gRPC codes may also be names (`NOT_FOUND`,
`not_found`). An HTTP code outside 100..599 is ignored. A code meaning `ok` never hides an
OTel `ERROR` status: such a span is `internal_error`. The HTTP table is sentry-sdk's
(`get_span_status_from_http_code`) except for {refinements}, whose HTTP meaning is a gRPC
status word for word.
"""

TAGS_PROSE = """## Tags and data

Every span attribute goes into the span's (or event's) **data**, made JSON-safe: bytes
decoded (invalid UTF-8 replaced), tuples and sets as lists, NaN and infinities as strings,
integers outside Relay's 64-bit range as strings, nesting capped at {depth} levels.

Only **business attributes** (`{prefix}<key>`) become **tags**, under `<key>`:

- Default policy: values of type {default_types}; floats (amounts) and sequences never.
- `TagPolicy(allow=...)`: exactly those keys, values of type {allowed_types}.
- `TagPolicy(deny=...)` always wins.
- A value is tagged only if, after stripping, it is non-empty, at most {max_value} characters
  and has no line break (Relay rejects newlines and trims longer values).
- A key is sanitized to Relay's characters (`a-zA-Z0-9_.:-`, others become `_`) and tagged
  only if at most {max_key} characters (Sentry's documented limit; Relay 0.10 itself trims at
  200). Keys that Relay moves, drops or overwrites, or that Sentry derives from the event
  ({reserved}), and `sentry:` keys, keep their `{prefix}` prefix.
- A key that shows more than `max_distinct_values` (default 1000) distinct values in the
  process stops being tagged (logged once); at most {max_keys} keys are tracked.
"""

EVENT_TAGS_PROSE = """### Which spans tag an event

- A **transaction** is tagged with its root's business tags, then those of every span in it
  (a request's business context is usually entered below its root).
- An **error**, **message** or **violation** is tagged with its span's business tags, then
  its parent's, and so on up to the root, then those of the spans below its span (nearest
  first): not with a sibling's, since an error in one invoice line is not about the line
  beside it. The business facts recorded with it (`capture_error`'s context, the business
  context of `violation()`) come first.
- A violation's **findings** (`{violation_data}<key>`: `limit`, `value`, `breach`, ...) are
  data in `contexts.business_violation.data`, never tags; the only one tagged is `{tier}`.
  Its judgement is tagged `{impact_tag}`, `{category_tag}` and `{rule_tag}`;
  business facts that are no tags (amounts) are in `contexts.business_violation.business`.
"""

USER_PROSE = """## User

Every event of a request carries Sentry's **user** (what "users affected" counts), from the
nearest span of its chain (the event's span, its parent, ... the root) that names one; a
transaction's from its root. The HTTP middlewares set these on the SERVER span
(`docs/instrumentors/http.md`); the first attribute present wins:
"""

RESOURCE_PROSE = """## Resource: release, environment, server name, contexts

- **release**: `<service.name>@<service.version>`, or the bare version when the service name
  is the SDK default (`{default_service}…`). Characters Relay rejects (control characters,
  `/`, `\\`) become `-`; longer than {max_release} characters or a restricted name
  ({restricted_releases}) gives no release.
- **environment**: {environment_attributes}, first present; same character rule, at most
  {max_environment} characters, not `None`.
- **server_name**: `{server_name}` (at most {max_value} characters, it becomes a tag).
- **contexts**: the whole resource in `otel.resource`, and these fields when present:
"""

EXCEPTIONS_PROSE = """## Exceptions

`exception.stacktrace` (Python's `traceback.format_exception` text) is read back into
`exception.values`: the cause first, the raised exception last (its type and message come from
`exception.type` / `exception.message`; a dotted type gives `module`). Both chain sentences
are understood; exception-group members are skipped (the group itself is kept); text that is
not a Python traceback gives one value without frames. Frames are oldest first with
`filename`, `abs_path`, `lineno`, `function`, `context_line` (never the `~~^^` caret lines),
`module` when the path lies under `sys.path`, and `in_app` — false for `site-packages`,
`dist-packages`, `<frozen …>`, the interpreter's standard library and the packages this library
wraps calls with (`otel_sentry_biz`, `otel_sentry_biz_instrumentors`, `opentelemetry`,
`sentry_sdk`, `wrapt`) wherever they are installed, true otherwise.
At most {max_frames} frames per exception (first and last halves, as Relay keeps them) and the
last {max_exceptions} exceptions of a chain.
"""


def _code(values: Iterable[object]) -> str:
    return ", ".join(f"`{value}`" for value in values)


def _name(value: object) -> str:
    return getattr(value, "name", str(value))


def _table(header: tuple[str, ...], rows: Iterable[tuple[object, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _mapping_table(title: str, header: tuple[str, str], mapping: Mapping) -> list[str]:
    rows = [(f"`{_name(key)}`", f"`{value}`") for key, value in mapping.items()]
    return [f"**{title}**", "", *_table(header, rows)]


def _ops() -> list[str]:
    lines = [
        OPS_PROSE.format(
            **ops.OVERRIDES,
            sources=_code(sorted(ops.SOURCES)),
        )
    ]
    rows = [
        (index, family, _code(triggers), FAMILY_RULES[family])
        for index, (family, triggers) in enumerate(ops.INFERENCE_ORDER, start=1)
    ]
    fallback = (
        "The span name; op by span kind (below): `function` is sentry-sdk's op for in-process "
        "work (`@sentry_sdk.trace`), `default` is what Relay assigns when it cannot tell."
    )
    rows.append((len(rows) + 1, "fallback", "—", fallback))
    lines += _table(("Order", "Family", "Triggers", "Description / transaction name"), rows)
    lines += ["**Semantic-convention aliases** (first present wins)", ""]
    lines += _table(("Concept", "Attributes"), ((c, _code(k)) for c, k in ops.SEMCONV.items()))
    lines += _mapping_table(
        f"HTTP op by span kind (otherwise `{ops.HTTP_DEFAULT_OP}`)", ("Kind", "Op"), ops.HTTP_OPS
    )
    lines += _mapping_table(
        f"Database op by `db.system` (otherwise `{ops.DB_DEFAULT_OP}`)",
        ("System", "Op"),
        ops.DB_OPS,
    )
    lines += _mapping_table(
        f"gRPC op by span kind, for {_code(sorted(ops.GRPC_SYSTEMS))} "
        f"(other RPC systems: `{ops.RPC_DEFAULT_OP}`)",
        ("Kind", "Op"),
        ops.GRPC_OPS,
    )
    lines += _mapping_table("Messaging op by operation", ("Operation", "Op"), ops.MESSAGING_OPS)
    lines += _mapping_table("Celery op by `celery.action`", ("Action", "Op"), ops.CELERY_OPS)
    lines += _mapping_table(
        f"Queue op by span kind when the operation is unknown (otherwise `{ops.QUEUE_DEFAULT_OP}`)",
        ("Kind", "Op"),
        ops.QUEUE_OPS_BY_KIND,
    )
    lines += _mapping_table("Fallback op by span kind", ("Kind", "Op"), ops.FALLBACK_OPS)
    lines += [
        f"Transaction names are cut to {ops.MAX_TRANSACTION_NAME} characters and ops to "
        f"{ops.MAX_OP}, the lengths Relay keeps.",
        "",
    ]
    return lines


def _status() -> list[str]:
    lines = [
        STATUS_PROSE.format(
            http_attributes=_code(status.HTTP_STATUS_ATTRIBUTES),
            grpc_attribute=status.GRPC_STATUS_ATTRIBUTE,
            rpc_attribute=status.RPC_STATUS_ATTRIBUTE,
            grpc_systems=_code(sorted(status.GRPC_CODE_SYSTEMS)),
            refinements=_code(sorted(status.REFINED_OVER_SENTRY_SDK)),
        )
    ]
    lines += _mapping_table("HTTP status codes", ("Code", "Status"), status.HTTP_STATUS)
    by_class = {f"{cls}xx": value for cls, value in status.HTTP_STATUS_BY_CLASS.items()}
    lines += _mapping_table("Any other HTTP code, by class", ("Class", "Status"), by_class)
    names = {code: name for name, code in status.GRPC_CODE_BY_NAME.items()}
    rows = [(code, f"`{names[code]}`", f"`{value}`") for code, value in status.GRPC_STATUS.items()]
    lines += ["**gRPC status codes**", "", *_table(("Code", "Name", "Status"), rows)]
    lines += _mapping_table("OTel span status", ("Status code", "Status"), status.OTEL_STATUS)
    return lines


def _tags() -> list[str]:
    lines = [
        TAGS_PROSE.format(
            depth=tags.MAX_JSON_DEPTH,
            prefix=tags.BIZ_PREFIX,
            default_types=_code(t.__name__ for t in tags.DEFAULT_TAG_TYPES),
            allowed_types=_code(t.__name__ for t in tags.ALLOWED_TAG_TYPES),
            max_value=tags.MAX_TAG_VALUE_LENGTH,
            max_key=tags.MAX_TAG_KEY_LENGTH,
            reserved=_code(sorted(tags.RESERVED_TAG_KEYS)),
            max_keys=tags.MAX_TRACKED_KEYS,
        ),
        EVENT_TAGS_PROSE.format(
            violation_data=attr.VIOLATION_DATA_PREFIX,
            tier=events.TIER_DATA_KEY,
            impact_tag=events.IMPACT_TAG,
            category_tag=events.CATEGORY_TAG,
            rule_tag=events.RULE_TAG,
        ),
        *_user(),
        RESOURCE_PROSE.format(
            default_service=tags.DEFAULT_SERVICE_NAME_PREFIX,
            max_release=tags.MAX_RELEASE_LENGTH,
            restricted_releases=_code(sorted(tags.RESTRICTED_RELEASES)),
            environment_attributes=_code(tags.ENVIRONMENT_ATTRIBUTES),
            max_environment=tags.MAX_ENVIRONMENT_LENGTH,
            server_name=tags.SERVER_NAME_ATTRIBUTE,
            max_value=tags.MAX_TAG_VALUE_LENGTH,
        ),
    ]
    rows = [
        (f"`{context}`", f"`{name}`", _code(keys))
        for context, fields in tags.RESOURCE_CONTEXTS.items()
        for name, keys in fields.items()
    ]
    lines += _table(("Context", "Field", "Resource attributes"), rows)
    return lines


def _user() -> list[str]:
    rows = [
        (
            f"`{field}`",
            _code(names),
            "with `send_default_pii`" if field in user.PII_USER_FIELDS else "always",
        )
        for field, names in user.USER_FIELDS.items()
    ]
    return [
        USER_PROSE,
        *_table(("Sentry `user` field", "Span attributes", "Sent"), rows),
        "`ip_address` only when the address is an IP (Relay rejects anything else).",
        "",
    ]


def _exceptions() -> list[str]:
    return [
        EXCEPTIONS_PROSE.format(
            max_frames=stacktrace.MAX_FRAMES,
            max_exceptions=stacktrace.MAX_EXCEPTIONS,
        )
    ]


def render() -> str:
    """The whole page; deterministic (no paths of the machine that renders it)."""
    lines = [INTRO, *_ops(), *_status(), *_tags(), *_exceptions()]
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    PAGE.write_text(render())
