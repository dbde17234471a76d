"""The migration guides are true: their code runs, their rules load.

Every ```python block of docs/migration/*.md that follows an HTML comment ``<!-- run ... -->``
runs as a script in a fresh process whose ``SENTRY_DSN`` points at a real
:class:`~otel_sentry_biz.receiver.LocalReceiver`; everything it sends must pass Relay's
normalizer and show what the comment promises. Every ```toml block loads with the rules or
the fingerprint loader. A block after ``<!-- file: NAME -->`` is also written to ``NAME`` in the
working directory of that page's runnable blocks, so a page runs the very rules it shows.

The ``run`` comment lists what the receiver must get, each item once at least:

- ``KEY=VALUE``: an event tagged ``KEY:VALUE`` (as Relay normalizes tags);
- ``fingerprint:A/B/C``: an event with the fingerprint ``["A", "B", "C"]``;
- ``measurement:NAME``: a transaction with the measurement ``NAME``;
- ``absent:TEXT``: no event holds ``TEXT`` anywhere (scrubbing);
- ``same_trace``: every event belongs to one trace;
- ``env:NAME=VALUE``: not an expectation, the block runs with that environment variable.

A block that does not call ``configure(`` itself runs after ``biz.configure()``, as the pages
say: the pipeline is set up once, at start-up.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from otel_sentry_biz.receiver import LocalReceiver
from otel_sentry_biz.rules.loader import parse_rules
from otel_sentry_biz.sentry.fingerprints import parse_fingerprint_rules
from tests.e2e.conftest import clean_env
from tests.relay_oracle import assert_valid, tags_of

GUIDES = Path(__file__).resolve().parents[1] / "docs" / "migration"
PAGES = sorted(GUIDES.glob("*.md"))
#: An optional HTML comment, then a fenced block: its language and its text.
BLOCK = re.compile(
    r"(?:<!--\s*(?P<directive>[^\n]*?)\s*-->\n)?^```(?P<lang>\w*)\n(?P<body>.*?)^```",
    re.DOTALL | re.MULTILINE,
)
PRELUDE = "import otel_sentry_biz\n\notel_sentry_biz.configure()\n"


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    body: str
    directive: str

    @property
    def name(self) -> str:
        return f"{self.page.name}:{self.line}"


@dataclass
class Promise:
    """What a ``run`` comment promises, and the environment it asks for."""

    tags: list[tuple[str, str]] = field(default_factory=list)
    fingerprints: list[list[str]] = field(default_factory=list)
    measurements: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    same_trace: bool = False
    env: dict[str, str] = field(default_factory=dict)


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    return [
        Block(
            page,
            text.count("\n", 0, found.start("body")) + 1,
            found["lang"],
            found["body"],
            found["directive"] or "",
        )
        for found in BLOCK.finditer(text)
    ]


def runnable(block: Block) -> bool:
    return block.lang == "python" and re.match(r"run\b", block.directive) is not None


def promise_of(directive: str) -> Promise:
    promise = Promise()
    for item in directive.split()[1:]:
        kind, _, rest = item.partition(":")
        if kind == "env" and "=" in rest:
            name, _, value = rest.partition("=")
            promise.env[name] = value
        elif kind == "fingerprint" and rest:
            promise.fingerprints.append(rest.split("/"))
        elif kind == "measurement" and rest:
            promise.measurements.append(rest)
        elif kind == "absent" and rest:
            promise.absent.append(rest)
        elif item == "same_trace":
            promise.same_trace = True
        elif "=" in item and ":" not in item.split("=", 1)[0]:
            key, _, value = item.partition("=")
            promise.tags.append((key, value))
        else:
            raise AssertionError(f"unknown item {item!r} in <!-- {directive} -->")
    return promise


def files_of(page: Path) -> dict[str, str]:
    return {
        block.directive.split(":", 1)[1].strip(): block.body
        for block in blocks(page)
        if block.directive.startswith("file:")
    }


RUNNABLE = [block for page in PAGES for block in blocks(page) if runnable(block)]
TOML = [block for page in PAGES for block in blocks(page) if block.lang == "toml"]


def run_block(block: Block, cwd: Path) -> tuple[subprocess.CompletedProcess[str], list[dict]]:
    """Run ``block`` against a fresh receiver; what it printed and every event received."""
    promise = promise_of(block.directive)
    for name, text in files_of(block.page).items():
        (cwd / name).write_text(text, encoding="utf-8")
    source = block.body if "configure(" in block.body else PRELUDE + block.body
    script = cwd / "block.py"
    script.write_text(source, encoding="utf-8")
    with LocalReceiver() as receiver:
        done = subprocess.run(
            [sys.executable, str(script)],
            env=clean_env(SENTRY_DSN=receiver.dsn, **promise.env),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=cwd,
        )
        events = receiver.events()
    return done, events


def unmet(promise: Promise, events: list[dict[str, Any]]) -> list[str]:
    """The items of ``promise`` that ``events`` do not show."""
    tags = [tags_of(assert_valid(event)) for event in events]
    missing = [f"{k}={v}" for k, v in promise.tags if not any(t.get(k) == v for t in tags)]
    missing += [
        "fingerprint:" + "/".join(parts)
        for parts in promise.fingerprints
        if not any(event.get("fingerprint") == parts for event in events)
    ]
    missing += [
        f"measurement:{name}"
        for name in promise.measurements
        if not any(name in (event.get("measurements") or {}) for event in events)
    ]
    everything = json.dumps(events)
    missing += [f"absent:{text}" for text in promise.absent if text in everything]
    traces = {(event.get("contexts") or {}).get("trace", {}).get("trace_id") for event in events}
    if promise.same_trace and len(traces) != 1:
        missing.append(f"same_trace (got {len(traces)} traces)")
    return missing


@pytest.mark.slow
@pytest.mark.parametrize("block", RUNNABLE, ids=[block.name for block in RUNNABLE])
def test_a_runnable_block_delivers_what_its_page_promises(block: Block, tmp_path: Path) -> None:
    done, events = run_block(block, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    # The app's own log output (Flask's "Exception on ...") may reach stderr; ours must not.
    ours = [line for line in done.stderr.splitlines() if "otel_sentry_biz" in line]
    ours = [line for line in ours if not line.lstrip().startswith('File "')]
    assert ours == [], f"{block.name} wrote to stderr:\n{done.stderr}"
    assert events, f"{block.name} sent nothing"
    problems = unmet(promise_of(block.directive), events)
    summary = [(e.get("type", "error"), e.get("tags"), e.get("fingerprint")) for e in events]
    assert not problems, f"{block.name}: not received {problems}; received {summary}"


@pytest.mark.parametrize("block", TOML, ids=[block.name for block in TOML])
def test_every_toml_block_loads(block: Block) -> None:
    if "[[fingerprint]]" in block.body:
        assert parse_fingerprint_rules(block.body, block.name).rules
    else:
        assert parse_rules(block.body, block.name).rules


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_every_page_has_a_runnable_block(page: Path) -> None:
    assert any(runnable(block) for block in blocks(page)), f"{page.name}: no <!-- run --> block"


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_every_run_comment_is_on_a_python_block_and_understood(page: Path) -> None:
    for block in blocks(page):
        if block.directive.startswith("run"):
            assert block.lang == "python", f"{block.name}: <!-- run --> before a {block.lang} block"
            promise_of(block.directive)  # raises on an item it does not know
