"""docs/mapping.md is generated from the mapping tables: it must not drift from them."""

from __future__ import annotations

import importlib.util
import pathlib

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs"


def _generator():
    spec = importlib.util.spec_from_file_location("gen_mapping", DOCS / "_gen_mapping.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mapping_page_matches_the_tables():
    assert (DOCS / "mapping.md").read_text(encoding="utf-8") == _generator().render(), (
        "docs/mapping.md is stale: run python docs/_gen_mapping.py"
    )


def test_mapping_page_shows_every_status_table_entry():
    from otel_sentry_biz.sentry.status import GRPC_STATUS, HTTP_STATUS

    page = _generator().render()
    for code, status in HTTP_STATUS.items():
        assert f"| `{code}` | `{status}` |" in page
    for code, status in GRPC_STATUS.items():
        assert f"| {code} |" in page and f"`{status}`" in page
