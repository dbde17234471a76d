"""Regenerate docs/cli.md from the parser of the ``otel-sentry-biz`` command.

Every page section is the ``--help`` text of one command, exactly as the terminal shows it
(at a fixed width, so the page does not depend on the terminal that renders it).

Run: python docs/_gen_cli.py  (tests/test_docs_build.py fails when the page is stale)
"""

from __future__ import annotations

import argparse
import pathlib
from collections.abc import Iterator

from otel_sentry_biz.cli import PROG, build_parser

PAGE = pathlib.Path(__file__).with_name("cli.md")
WIDTH = 100

INTRO = f"""# Command line

`{PROG}` is installed with the package. Each section below is the `--help` of one
command (`{PROG} COMMAND --help` prints the same): what it does, examples, exit
status and the variables it reads. Every setting is described in the
[configuration reference](configuration.md).

*This page is generated from `otel_sentry_biz/cli.py` by `python docs/_gen_cli.py`.*
"""


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser under ``parser``, depth first, with the words that select it."""
    yield path, parser
    for action in parser._actions:
        # A sub-command action keeps its parsers in ``choices``, a dict name -> parser.
        choices = action.choices if isinstance(action.choices, dict) else {}
        for name, sub in choices.items():
            if isinstance(sub, argparse.ArgumentParser):
                yield from _commands(sub, (*path, name))


def _help(parser: argparse.ArgumentParser) -> str:
    # Python 3.9's heading for options; 3.10 and later say "options:".
    return parser.format_help().replace("optional arguments:", "options:").rstrip()


def render() -> str:
    lines = [INTRO]
    for path, parser in _commands(build_parser(width=WIDTH)):
        lines += [f"## `{' '.join((PROG, *path))}`", "", "```text", _help(parser), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    PAGE.write_text(render())
