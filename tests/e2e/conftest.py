"""End-to-end fixtures: a real Sentry-protocol receiver and apps run in subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from otel_sentry_biz.receiver import LocalReceiver

BIN = Path(sys.executable).parent


@pytest.fixture
def receiver() -> Iterator[LocalReceiver]:
    with LocalReceiver() as running:
        yield running


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment minus any Sentry/OTel settings of the machine, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "OTEL_"))}
    env.update(extra)
    return env


@contextmanager
def serving(
    command: list[str], cwd: Path, env: dict[str, str]
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A server started with ``command``, and the first line it printed (where it listens).

    The test stops it (a signal, a request) and reads its output with ``communicate``; one
    still running on the way out (a failed assertion) is killed and reaped, so no server
    outlives its test.
    """
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd
    )
    try:
        yield process, process.stdout.readline() if process.stdout else ""
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def run_app(
    tmp_path: Path, source: str, *command_prefix: str, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    """Write ``source`` to app.py and run it (optionally behind ``opentelemetry-instrument``)."""
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent(source))
    prefix = [str(BIN / command_prefix[0]), *command_prefix[1:]] if command_prefix else []
    return subprocess.run(
        [*prefix, sys.executable, str(app)],
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
    )
