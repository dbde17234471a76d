"""in_app: the application's frames are, this library's and its helpers' never are.

The repository is installed editable (``pip install -e``), so ``otel_sentry_biz`` is not under
site-packages here: its frames are told apart by where its package lives, not by the path.
"""

from __future__ import annotations

import importlib
import os

import pytest

import otel_sentry_biz as biz
from otel_sentry_biz import operations
from otel_sentry_biz.sentry.stacktrace import LIBRARY_PACKAGES, exception_values
from tests.pipelines import sentry_pipeline

APP_FILE = os.path.abspath(__file__)


class CardDeclined(Exception):
    pass


def _check_card(amount: int) -> None:
    if amount < 0:
        raise CardDeclined(f"cannot charge {amount}")


@biz.operation("charge card")
def charge(amount: int) -> None:
    _check_card(amount)


def _frames(event: dict) -> list[dict]:
    (value,) = [v for v in event["exception"]["values"] if v["type"] == "CardDeclined"]
    return value["stacktrace"]["frames"]


def test_operation_wrapper_frame_is_not_in_app_and_the_apps_frames_are(use_processor):
    with sentry_pipeline(use_processor) as delivered:
        with pytest.raises(CardDeclined):
            charge(-5)
        (event,) = delivered.issues(1)  # Relay-checked

    frames = _frames(event)
    app = [f for f in frames if f["abs_path"] == APP_FILE]
    assert [f["function"] for f in app] == ["charge", "_check_card"]
    assert all(f["in_app"] is True for f in app)
    ours = [f for f in frames if f["abs_path"] == os.path.abspath(operations.__file__)]
    assert ours, "the operation wrapper's frame is in the stack trace"
    assert [f["in_app"] for f in ours] == [False] * len(ours)
    assert all(f["in_app"] is False for f in frames if f not in app)


def _traceback_through(paths: list[str]) -> str:
    lines = ["Traceback (most recent call last):"]
    for path in paths:
        lines += [f'  File "{path}", line 1, in f', "    f()"]
    return "\n".join([*lines, "ValueError: bad", ""])


@pytest.mark.parametrize("package", LIBRARY_PACKAGES)
def test_library_packages_are_not_in_app_wherever_installed(package):
    root = next(iter(importlib.import_module(package).__path__))
    inside = os.path.join(root, "module.py")
    # a sibling directory whose name only starts like the package's is not the package
    lookalike = os.path.join(f"{root}_app", "views.py")
    (value,) = exception_values("ValueError", "bad", _traceback_through([inside, lookalike]))
    lookalike_in_app = "site-packages" not in root  # an editable install's sibling is app code
    assert [f["in_app"] for f in value["stacktrace"]["frames"]] == [False, lookalike_in_app]


def test_the_demo_shipped_inside_the_library_is_app_code():
    # The demo is what a newcomer runs and what docs/on-call.md shows: its frames are the
    # app's, while the library module beside it is not.
    package = next(iter(importlib.import_module("otel_sentry_biz").__path__))
    demo = os.path.join(package, "demo", "billing.py")
    library = os.path.join(package, "operations.py")
    (value,) = exception_values("ValueError", "bad", _traceback_through([library, demo]))
    assert [f["in_app"] for f in value["stacktrace"]["frames"]] == [False, True]
