"""Sentry ``exception.values`` from OTel's ``exception.stacktrace`` text.

OTel records a Python exception as three strings; the stack trace is the text of
``traceback.format_exception``: chained exceptions separated by a sentence, frames as
``File "...", line N, in f`` followed by the source line and, since Python 3.11, caret lines.
This module reads that text back into Sentry's structure: one value per exception, the
cause first and the raised exception last, frames oldest first. It never raises: text it
does not understand gives a single value without frames.

Example::

    >>> exception_values("ValueError", "bad", None)
    [{'type': 'ValueError', 'value': 'bad'}]
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
import sys
import sysconfig
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Optional

#: Lines that end one exception of a chain and announce the next.
CHAIN_SEPARATORS = frozenset(
    {
        "The above exception was the direct cause of the following exception:",
        "During handling of the above exception, another exception occurred:",
    }
)
TRACEBACK_HEADER = "Traceback (most recent call last):"
#: An exception group prints its own traceback with a "  + " / "  | " margin.
GROUP_HEADER = "  + Exception Group Traceback (most recent call last):"
GROUP_MARGIN = "  | "
#: Relay keeps at most 250 frames (the first and last halves): so do we, before sending.
MAX_FRAMES = 250
#: A chain longer than this keeps its last (most recent) exceptions.
MAX_EXCEPTIONS = 25
#: A cause's message read from the text stops after the line that crosses this many
#: characters (bounded work on huge input); the raised exception's message is never cut.
MAX_VALUE_CHARS = 8192
#: Path fragments of installed third-party code.
THIRD_PARTY_MARKERS = (
    "/site-packages/",
    "/dist-packages/",
    "\\site-packages\\",
    "\\dist-packages\\",
)
#: Packages whose frames are never the application's, wherever they are installed: this
#: library (an editable install is not under site-packages) and what it wraps calls with.
LIBRARY_PACKAGES = (
    "otel_sentry_biz",
    "otel_sentry_biz_instrumentors",
    "opentelemetry",
    "sentry_sdk",
    "wrapt",
)
#: Shipped with the library but app code: the demo is what a newcomer runs, and its frames
#: are the ones an on-call reader is meant to look at.
APP_PACKAGES = ("otel_sentry_biz.demo",)

# Exceptions are rare, so a regex is fine here; \d{1,10} with ASCII keeps int() cheap and safe.
_FRAME = re.compile(
    r'\s*File "(?P<path>.*)", line (?P<lineno>\d{1,10})(?:, in (?P<func>.*))?$', re.A
)


def _stdlib_dirs() -> tuple[str, ...]:
    dirs = {os.path.dirname(os.__file__)}
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        base = {"base": prefix, "platbase": prefix, "installed_base": prefix}
        for name in ("stdlib", "platstdlib"):
            dirs.add(sysconfig.get_path(name, vars=base))
    return tuple(sorted(d.rstrip(os.sep) + os.sep for d in dirs if d))


#: Standard-library directories of this interpreter (and of the one a venv was made from).
STDLIB_DIRS: tuple[str, ...] = _stdlib_dirs()


def exception_values(exc_type: str, exc_message: str, stacktrace: Optional[str]) -> list[dict]:
    """Sentry's ``exception.values``: causes first, the raised exception last.

    ``exc_type`` and ``exc_message`` (OTel's ``exception.type`` / ``exception.message``) name
    the raised exception; ``stacktrace`` supplies its frames and its causes. A dotted type
    gives ``module`` (``requests.exceptions.ConnectionError``). ``mechanism`` is left to the
    caller. Never raises. Example::

        values = exception_values(event["exception.type"], event["exception.message"],
                                  event.get("exception.stacktrace"))
    """
    try:
        return _values(exc_type, exc_message, _parse(stacktrace) if stacktrace else [])
    except Exception:  # "never raises": text we cannot read gives the exception without frames
        bare = _Block(type=exc_type or "Exception", value_lines=[exc_message])
        return [_value(bare, ())]


def _values(exc_type: str, exc_message: str, blocks: list[_Block]) -> list[dict]:
    if not blocks:
        blocks = [_Block()]
    last = blocks[-1]
    parsed_type = last.type
    last.type = exc_type or parsed_type or "Exception"
    if parsed_type and "." not in last.type and parsed_type.endswith("." + last.type):
        last.type = parsed_type  # an unqualified type: the traceback line has the module
    last.value_lines = [exc_message] if exc_message else last.value_lines
    roots = _roots(tuple(entry for entry in sys.path if isinstance(entry, str)))
    return [_value(block, roots) for block in blocks]


@dataclass
class _Block:
    """One exception of the chain as read from the text."""

    head: list[dict[str, Any]] = field(default_factory=list)
    tail: deque = field(default_factory=lambda: deque(maxlen=MAX_FRAMES // 2))
    type: Optional[str] = None
    value_lines: list[str] = field(default_factory=list)
    value_chars: int = 0

    def add_frame(self, frame: dict[str, Any]) -> None:
        # First and last halves, as Relay trims: bounded memory on a runaway recursion.
        if len(self.head) < MAX_FRAMES // 2:
            self.head.append(frame)
        else:
            self.tail.append(frame)

    def last_frame(self) -> Optional[dict[str, Any]]:
        if self.tail:
            return self.tail[-1]
        return self.head[-1] if self.head else None

    def add_value_line(self, line: str) -> None:
        if self.value_chars < MAX_VALUE_CHARS:
            self.value_lines.append(line)
            self.value_chars += len(line) + 1


def _parse(text: str) -> list[_Block]:
    blocks: deque[_Block] = deque(maxlen=MAX_EXCEPTIONS)
    block: Optional[_Block] = None
    state = "start"  # start | frames | exception | separated
    in_group = False
    for raw in io.StringIO(text):
        line = raw.rstrip("\r\n")
        if in_group:
            if line.startswith(GROUP_MARGIN):
                line = line[len(GROUP_MARGIN) :]
            elif line.startswith(("  +", "    ")):
                continue  # the group's sub-exceptions: not part of the chain
            else:
                in_group = False
        if line.strip() in CHAIN_SEPARATORS:
            state, block = "separated", None
            continue
        if state in ("start", "separated") and line in (TRACEBACK_HEADER, GROUP_HEADER):
            in_group = line == GROUP_HEADER
            block = _Block()
            blocks.append(block)
            state = "frames"
            continue
        if state == "frames" and block is not None:
            state = _frame_line(block, line)
        elif state == "exception" and block is not None:
            block.add_value_line(line)
        elif state in ("start", "separated") and _starts_exception(line, state):
            # A cause that was never raised prints without a traceback.
            block = _Block()
            blocks.append(block)
            _exception_line(block, line)
            state = "exception"
    for each in blocks:
        while each.value_lines and not each.value_lines[-1].strip():
            each.value_lines.pop()  # the blank line before a separator
    return list(blocks)


def _frame_line(block: _Block, line: str) -> str:
    """Read one line of a traceback body; return the parser's next state."""
    match = _FRAME.match(line) if line.startswith("  File ") else None
    if match:
        frame: dict[str, Any] = {"abs_path": match["path"], "lineno": int(match["lineno"])}
        if match["func"]:
            frame["function"] = match["func"]
        block.add_frame(frame)
        return "frames"
    if line.startswith("    "):
        frame = block.last_frame()
        source = line.strip()
        # The first source line is the context; caret lines (~~^^) and the rest are not.
        if frame is not None and "context_line" not in frame and source.strip("~^ "):
            frame["context_line"] = source
        return "frames"
    if not line or line[0].isspace():
        return "frames"  # "[Previous line repeated N more times]", blank lines
    _exception_line(block, line)
    return "exception"


def _exception_line(block: _Block, line: str) -> None:
    name, sep, message = line.partition(": ")
    if _is_type_name(name):
        block.type = name
        block.add_value_line(message if sep else "")
    else:
        block.type = "Exception"
        block.add_value_line(line)


def _starts_exception(line: str, state: str) -> bool:
    if not line or line[0].isspace():
        return False
    # After a separator anything is the next exception; before any, only a real type name.
    return state == "separated" or _is_type_name(line.partition(": ")[0])


def _is_type_name(name: str) -> bool:
    parts = name.split(".")
    return all(part.isidentifier() or part == "<locals>" for part in parts)


def _value(block: _Block, roots: tuple[str, ...]) -> dict[str, Any]:
    type_name = block.type or "Exception"
    value: dict[str, Any] = {"type": type_name, "value": "\n".join(block.value_lines)}
    module, dot, short = type_name.rpartition(".")
    if dot and module and short:
        value["type"], value["module"] = short, module
    frames = [_frame(frame, roots) for frame in (*block.head, *block.tail)]
    if frames:
        value["stacktrace"] = {"frames": frames}
    return value


def _frame(frame: dict[str, Any], roots: tuple[str, ...]) -> dict[str, Any]:
    path = frame["abs_path"]
    module, filename = _module_of(path, roots)
    out = {"filename": filename, **frame, "in_app": _in_app(path)}
    if module:
        out["module"] = module
    return out


def _in_app(path: str) -> bool:
    if path.startswith("<"):
        return not path.startswith("<frozen ")  # frozen stdlib, unlike <string> / <stdin>
    if any(marker in path for marker in THIRD_PARTY_MARKERS):
        return False
    if path.startswith(STDLIB_DIRS):
        return False
    library, app = _package_dirs()
    return not path.startswith(library) or path.startswith(app)


@lru_cache(maxsize=1)
def _package_dirs() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The directories of :data:`LIBRARY_PACKAGES` and of :data:`APP_PACKAGES`.

    Asked of the import system on the first frame (not when this module is imported: the
    packages are looked up, never imported), so an editable install's finder is consulted;
    a package that is not installed has no directory.
    """
    return _dirs_of(LIBRARY_PACKAGES), _dirs_of(APP_PACKAGES)


def _dirs_of(names: tuple[str, ...]) -> tuple[str, ...]:
    """The directories of packages ``names``, as imported and with links resolved."""
    dirs: set[str] = set()
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):  # a broken or half-initialised package: skip it
            continue
        for location in (spec and spec.submodule_search_locations) or ():
            for form in (os.path.abspath(location), os.path.realpath(location)):
                dirs.add(form.rstrip(os.sep) + os.sep)
    return tuple(sorted(dirs))


@lru_cache(maxsize=8)
def _roots(sys_path: tuple[str, ...]) -> tuple[str, ...]:
    """Import roots, longest first, so a path gets its most specific module name."""
    roots = {os.path.abspath(entry).rstrip(os.sep) + os.sep for entry in sys_path}
    roots.discard(os.sep)  # "/" on sys.path would turn every path into a module name
    return tuple(sorted(roots, key=len, reverse=True))


@lru_cache(maxsize=2048)
def _module_of(path: str, roots: tuple[str, ...]) -> tuple[Optional[str], str]:
    """(module, filename relative to its import root) or (None, path) when not derivable."""
    if path.startswith("<frozen ") and path.endswith(">"):
        return path[len("<frozen ") : -1], path
    if not path.endswith(".py"):
        return None, path
    for root in roots:
        if path.startswith(root):
            relative = path[len(root) :]
            parts = relative[: -len(".py")].split(os.sep)
            if parts[-1] == "__init__" and len(parts) > 1:
                parts.pop()
            if all(part.isidentifier() for part in parts):
                return ".".join(parts), relative
            return None, path
    return None, path
