"""Reading a TOML configuration file (rules, quality schemas, fingerprint rules).

One place for what every such file needs: the path read as UTF-8, parse errors and
unreadable files told as one line that names the file and the fix. Each loader turns a
:class:`TomlFileProblem` into its own error type (``RuleError``, ``SchemaError``, ...).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Union

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.9/3.10 only
    import tomli as tomllib

PathLike = Union[str, "os.PathLike[str]"]


class TomlFileProblem(ValueError):
    """The file could not be read or is not TOML; the message names it and the fix."""


def read_toml_text(path: PathLike) -> tuple[str, str]:
    """``(source, text)`` of the file at ``path``: its name for messages, and its content."""
    source = os.fspath(path)
    try:
        return source, Path(source).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TomlFileProblem(f"{source}: no such file: check the path") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: a NUL in the path
        raise TomlFileProblem(f"{source}: cannot read it ({exc})") from None


def parse_toml(text: str, source: str, *, tables: str) -> dict[str, Any]:
    """The TOML document of ``text``; ``tables`` (``[[rule]]``) is the shape to suggest."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TomlFileProblem(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:  # the TOML parser recurses per nesting level
        raise TomlFileProblem(f"{source}: nested too deeply: use {tables} tables") from None
