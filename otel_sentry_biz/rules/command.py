"""``otel-sentry-biz rules check FILE...``: validate rules files the way start-up would."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Optional, TextIO

from otel_sentry_biz.rules.loader import check_rules_file, read_rules_file, resolve_rules


def check_command(targets: Sequence[str], out: Optional[TextIO] = None) -> int:
    """Check each rules file (or shipped set name); print every problem, or ``ok``.

    Returns the exit status: 0 when every file is valid, 1 otherwise.
    """
    out = out or sys.stdout
    failed = False
    for target in targets:
        try:
            path = resolve_rules(target)
        except ValueError as exc:
            print(exc, file=out)
            failed = True
            continue
        problems = check_rules_file(path)
        for problem in problems:
            print(problem, file=out)
        if problems:
            failed = True
        else:
            print(f"{path}: ok, {len(read_rules_file(path).rules)} rules", file=out)
    return 1 if failed else 0
