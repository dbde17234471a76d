"""Fixtures of the hostile-input suite: module-scoped, so hypothesis may share them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.hostile.harness import Harness


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    running = Harness()
    yield running
    running.close()
