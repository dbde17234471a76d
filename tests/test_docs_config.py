"""docs/configuration.md is generated from the settings declarations and names every variable
the code reads."""

import importlib.util
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: Where variables are read: the core package and the instrumentors.
SOURCES = (ROOT / "otel_sentry_biz", ROOT / "instrumentors")
VARIABLE = re.compile(r"\bOTEL_SENTRY_BIZ_[A-Z][A-Z0-9_]*\b")


def test_configuration_page_matches_the_settings_table():
    spec = importlib.util.spec_from_file_location("gen_config", DOCS / "_gen_config.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (DOCS / "configuration.md").read_text() == module.render(), (
        "docs/configuration.md is stale: run python docs/_gen_config.py"
    )


def test_every_variable_the_code_reads_is_documented():
    page = (DOCS / "configuration.md").read_text()
    read = {
        name: path.relative_to(ROOT).as_posix()
        for source in SOURCES
        for path in sorted(source.rglob("*.py"))
        for name in VARIABLE.findall(path.read_text(encoding="utf-8"))
    }
    missing = {name: where for name, where in read.items() if f"`{name}`" not in page}
    assert not missing, (
        f"read but not in docs/configuration.md: {missing}; declare each in "
        "otel_sentry_biz/config.py VARIABLES (or the instrumentor's settings) and run "
        "python docs/_gen_config.py"
    )
