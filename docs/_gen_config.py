"""Regenerate docs/configuration.md from the settings declarations.

The core settings come from ``otel_sentry_biz.config.VARIABLES``; the instrumentors' from
``otel_sentry_biz_instrumentors.sqlalchemy.settings.VARIABLES`` and
``otel_sentry_biz_instrumentors.http.settings.VARIABLES``.

Run: python docs/_gen_config.py  (tests/test_docs_config.py fails when the page is stale)
"""

from __future__ import annotations

import dataclasses
import enum
import html
import pathlib

from otel_sentry_biz.config import PROFILES, VARIABLES
from otel_sentry_biz_instrumentors.celery.semconv import DUP_TOKEN as MESSAGING_DUP
from otel_sentry_biz_instrumentors.celery.semconv import OPT_IN_VARIABLE
from otel_sentry_biz_instrumentors.http import settings as http
from otel_sentry_biz_instrumentors.http.django import USER_HOOK_SETTING
from otel_sentry_biz_instrumentors.sqlalchemy import settings as sql

PAGE = pathlib.Path(__file__).with_name("configuration.md")

INTRO = """# Configuration reference

Settings come from, in order of precedence: arguments to `configure()` (or to
`SentrySpanExporter(...)`), then environment variables, then the defaults of the active
**profile**. The profile is `OTEL_SENTRY_BIZ_PROFILE`, or else chosen from
`SENTRY_ENVIRONMENT` (`dev`/`development`/`local`/`test` → development,
`staging`/`stage`/`preprod` → staging, anything else → production).

Invalid values stop start-up with a `ConfigError` that names the variable, the value and the
fix; the DSN's secret is never shown. Standard `OTEL_*` variables (service name, resource
attributes, sampler, exporters) keep their OpenTelemetry meaning; when `OTEL_TRACES_SAMPLER`
is set it wins over `SENTRY_TRACES_SAMPLE_RATE`.

`otel-sentry-biz doctor` checks the settings of the first table and lists every problem at
once (see the [command line](cli.md)). The instrumentors read a few variables of their own:
see [Instrumentor variables](#instrumentor-variables).

*This page is generated from `otel_sentry_biz/config.py` and the instrumentors' settings by
`python docs/_gen_config.py`.*
"""

INSTRUMENTORS_INTRO = """## Instrumentor variables

Read by each instrumentor when it is instrumented (`instrument()`, or `opentelemetry-instrument`
at start-up), not by `configure()`; profiles do not change them. Arguments to `instrument()`
(or to the middleware) win over variables.

### SQLAlchemy

A bad value stops `instrument()` with a `ConfigError` naming the argument or variable, the
value and what it must be. See [the SQLAlchemy instrumentor](instrumentors/sqlalchemy.md).
"""

HTTP_INTRO = """### HTTP clients and servers

`SENTRY_SEND_DEFAULT_PII` and `OTEL_SENTRY_BIZ_SENSITIVE_KEYS` (above) apply to HTTP capture
too: the first allows the user's e-mail, name and IP address on server spans, the second adds
keys whose query and header values are redacted. See
[the HTTP instrumentors](instrumentors/http.md#settings).
"""

#: What the SQLAlchemy parsers accept: sqlalchemy/settings.py declares no such text (yet).
SQL_VALID = {
    "OTEL_SENTRY_BIZ_SQL_LITERALS": "use true or false",
    "OTEL_SENTRY_BIZ_SQL_SLOW_MS": "use milliseconds, 0 or more (0 turns the check off)",
    "OTEL_SENTRY_BIZ_SQL_N_PLUS_ONE": "use a whole number, 2 or more (0 turns the check off)",
    "OTEL_SENTRY_BIZ_SQL_IMPACT": "use LOW, MEDIUM, HIGH or CRITICAL",
}

DJANGO_SETTING = (
    f"`{USER_HOOK_SETTING}` is a **Django setting** (in `settings.py`), not an environment "
    'variable: a callable, or its dotted path, `user_from_request(request) -> {"id": ...}`; by '
    "default `BizDjangoMiddleware` reads `request.user`."
)

SEMCONV_INTRO = f"""### Standard OpenTelemetry variables the instrumentors read

`{OPT_IN_VARIABLE}` (comma-separated) is read as contrib's instrumentors read it, so both
agree in one process. The stable names are always written (unlike contrib, also when the
variable is unset); these values add the old names too:
"""

#: (token, instrumentor, effect) for OTEL_SEMCONV_STABILITY_OPT_IN.
SEMCONV_TOKENS = (
    ("http/dup", "HTTP clients and servers", "`http.method`, `http.url`, `http.status_code`, ..."),
    ("database/dup", "SQLAlchemy", "`db.system`, `db.statement`, `db.name`, ..."),
    (MESSAGING_DUP, "Celery", "the messaging names of semconv 1.24 and before"),
)


def _show(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, (frozenset, tuple)) and not value:
        return "empty"
    if isinstance(value, enum.Enum):
        value = value.value
    return f"`{value}`"


def _cell(text: str) -> str:
    """Plain text as one Markdown table cell: `<name>` stays visible, `|` ends no cell."""
    return html.escape(text, quote=False).replace("|", "\\|")


def _core() -> list[str]:
    lines = [
        "| Variable | Meaning | " + " | ".join(PROFILES) + " | If invalid |",
        "|---|---|" + "---|" * len(PROFILES) + "---|",
    ]
    for variable in VARIABLES:
        defaults = " | ".join(_show(variable.default_for(p)) for p in PROFILES)
        argument = f"<br>argument `{variable.field}`"
        lines.append(
            f"| `{variable.env}`{argument} | {_cell(variable.doc)} | {defaults} "
            f"| {_cell(variable.fix)} |"
        )
    return lines


def _sqlalchemy() -> list[str]:
    defaults = {field.name: field.default for field in dataclasses.fields(sql.SQLSettings)}
    lines = [
        INSTRUMENTORS_INTRO,
        "| Variable | Meaning | Default | If invalid |",
        "|---|---|---|---|",
    ]
    for variable in sql.VARIABLES:
        lines.append(
            f"| `{variable.name}`<br>argument `{variable.field}` | {_cell(variable.meaning)} "
            f"| {_show(defaults[variable.field])} | {SQL_VALID[variable.name]} |"
        )
    return [*lines, ""]


def _http() -> list[str]:
    lines = [HTTP_INTRO, "| Variable | Meaning | Default | If invalid |", "|---|---|---|---|"]
    for variable in http.VARIABLES:
        lines.append(
            f"| `{variable.name}`<br>argument `{variable.field}` | {_cell(variable.meaning)} "
            f"| {variable.default} | {variable.valid} |"
        )
    return [*lines, "", DJANGO_SETTING, ""]


def _semconv() -> list[str]:
    lines = [SEMCONV_INTRO, "| Value | Instrumentor | Old names added |", "|---|---|---|"]
    lines += [f"| `{token}` | {who} | {effect} |" for token, who, effect in SEMCONV_TOKENS]
    return lines


def render() -> str:
    lines = [INTRO, "", *_core(), "", *_sqlalchemy(), *_http(), *_semconv()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    PAGE.write_text(render())
