"""The documentation site builds strictly, covers the public API, and its generated pages are
current: the command line manual and the on-call page."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from otel_sentry_biz import config

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: Modules whose ``__all__`` is public: every name must have its entry in the API reference.
PUBLIC_MODULES = (
    "otel_sentry_biz",
    "otel_sentry_biz.rules",
    "otel_sentry_biz_instrumentors.celery",
    "otel_sentry_biz_instrumentors.http",
    "otel_sentry_biz_instrumentors.sqlalchemy",
    "otel_sentry_biz_instrumentors.threading",
)
_MISSING = object()


def _generator(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run Python with ``args`` from the checkout, without this shell's SENTRY_* / OTEL_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "OTEL_"))}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for module in ("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(module, reason=f"{module} is missing: pip install -e '.[docs]'")
    site_dir = tmp_path_factory.mktemp("site")
    result = _run("-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir))
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr}"
    return site_dir


def _resolve(path: str) -> Any:
    """The object a mkdocstrings anchor (``package.module.Name``) documents."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            found = getattr(found, name, _MISSING)
        return found
    return _MISSING


@pytest.mark.slow
def test_the_site_builds_strictly_with_every_page_in_the_nav(site: Path) -> None:
    built = {p.parent.relative_to(site).as_posix() for p in site.rglob("index.html")}
    pages = {
        p.relative_to(DOCS).with_suffix("").as_posix()
        for p in DOCS.rglob("*.md")
        if p.name != "index.md"
    }
    assert pages <= built, f"pages not built: {sorted(pages - built)}"


@pytest.mark.slow
@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_has_its_entry_in_the_api_reference(site: Path, module_name) -> None:
    # The reference page, or another API page (docs/api/*.md) for a family of names.
    pages = [p.read_text(encoding="utf-8") for p in (site / "api").rglob("*.html")]
    anchors = {a for page in pages for a in re.findall(r'id="(otel_sentry_biz[\w.]*)"', page)}
    module = importlib.import_module(module_name)
    missing = []
    for name in module.__all__:
        wanted = getattr(module, name)
        # The entry must document that very object, not a namesake (the module
        # otel_sentry_biz.context is not the function otel_sentry_biz.context).
        if not any(
            anchor.rsplit(".", 1)[-1] == name and _resolve(anchor) is wanted for anchor in anchors
        ):
            missing.append(name)
    assert not missing, f"no entry in docs/api/ for {module_name}: {missing}"


def test_every_setting_is_on_the_configuration_page() -> None:
    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    from otel_sentry_biz_instrumentors.sqlalchemy.settings import VARIABLES as SQL_VARIABLES

    names = [v.env for v in config.VARIABLES] + [v.name for v in SQL_VARIABLES]
    assert [name for name in names if f"`{name}`" not in page] == []


def test_the_cli_page_is_the_parser_s_help() -> None:
    expected = _generator("_gen_cli").render()
    assert (DOCS / "cli.md").read_text(encoding="utf-8") == expected, (
        "docs/cli.md is stale: run python docs/_gen_cli.py"
    )


def test_the_cli_page_has_a_section_per_command() -> None:
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    for command in ("demo", "rules check", "outbox status", "outbox flush", "send-test", "doctor"):
        section = page.split(f"## `otel-sentry-biz {command}`", 1)[1].split("\n## ", 1)[0]
        assert "examples:" in section and "exit status:" in section, command


@pytest.mark.slow
def test_the_on_call_page_is_what_the_demo_produces_now() -> None:
    result = _run(str(DOCS / "_gen_oncall.py"), "--stdout")
    assert result.returncode == 0, result.stderr
    assert (DOCS / "on-call.md").read_text(encoding="utf-8") == result.stdout, (
        "docs/on-call.md is stale: run python docs/_gen_oncall.py"
    )


def test_the_on_call_page_shows_the_cards_with_stable_placeholders() -> None:
    page = (DOCS / "on-call.md").read_text(encoding="utf-8")
    assert "PaymentDeclined: card refused for Umbrella Gas" in page
    assert "fingerprint `biz-violation / work_request_limit / WR-1003`" in page
    assert "`business_impact:CRITICAL`" in page
    # No id of a real run: 32-hex event and trace ids, 16-hex span ids, epoch timestamps.
    assert not re.search(r"\b[0-9a-f]{16}(?:[0-9a-f]{16})?\b", page)
    assert not re.search(r"\b1[0-9]{9}\.[0-9]+\b", page)
