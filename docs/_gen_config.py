"""Regenerate docs/configuration.md from otel_sentry_biz.config.VARIABLES.

Run: python docs/_gen_config.py  (tests/test_docs_config.py fails when the page is stale)
"""

from __future__ import annotations

import pathlib

from otel_sentry_biz.config import PROFILES, VARIABLES

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

*This page is generated from `otel_sentry_biz/config.py` by `python docs/_gen_config.py`.*
"""


def _show(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, (frozenset, tuple)) and not value:
        return "empty"
    return f"`{value}`"


def render() -> str:
    lines = [
        INTRO,
        "",
        "| Variable | Meaning | " + " | ".join(PROFILES) + " | If invalid |",
        "|---|---|" + "---|" * len(PROFILES) + "---|",
    ]
    for variable in VARIABLES:
        defaults = " | ".join(_show(variable.default_for(p)) for p in PROFILES)
        argument = f"<br>argument `{variable.field}`"
        lines.append(
            f"| `{variable.env}`{argument} | {variable.doc} | {defaults} | {variable.fix} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    PAGE.write_text(render())
