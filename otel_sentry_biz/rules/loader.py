"""Rules files: TOML in, a validated :class:`RuleSet` out, or every problem with its fix.

>>> rules = load_rules("rules.toml")                  # RuleError lists every problem
>>> check_rules_file("rules.toml")                    # the same problems as strings
[]

A file has optional top-level ``state`` (a store URL) and ``[alert_tiers]``, and one
``[[rule]]`` table per rule whose keys are the fields of its kind (see ``docs/rules.md``). It
may also hold ``[[schema]]`` tables for ``validate_batch``, checked here and read with
:func:`otel_sentry_biz.rules.quality.load_schemas`.
Nothing is half-loaded: a file with one bad rule loads no rule.
"""

from __future__ import annotations

import difflib
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Optional, Union

from otel_sentry_biz.rules.engine import RuleError, RuleSet, rule_label, rule_problems
from otel_sentry_biz.rules.kinds import KINDS
from otel_sentry_biz.rules.spec import RuleSpec
from otel_sentry_biz.rules.state import StateStore, state_url_problem
from otel_sentry_biz.toml_file import TomlFileProblem, parse_toml, read_toml_text

PathLike = Union[str, "os.PathLike[str]"]

_TOP_LEVEL = ("rule", "state", "alert_tiers", "schema")
#: Rule sets shipped with the package, loadable by name (``OTEL_SENTRY_BIZ_RULES=billing``).
SETS_DIRECTORY = Path(__file__).with_name("sets")


@dataclass(frozen=True)
class RulesFile:
    """What a rules file declares: its rules and its optional settings."""

    source: str
    rules: tuple[RuleSpec, ...]
    state: Optional[str] = None
    alert_tiers: Optional[Mapping[str, str]] = None


def load_rules(
    path: PathLike,
    *,
    state: Union[str, StateStore, None] = None,
    clock: Callable[[], float] = time.time,
) -> RuleSet:
    """The rules of the TOML file at ``path``, compiled. ``state`` overrides the file's store.

    Raises :class:`RuleError` naming the file, each bad rule and the fix.
    """
    declared = read_rules_file(path)
    return RuleSet(
        declared.rules,
        state=state or declared.state,
        alert_tiers=declared.alert_tiers,
        clock=clock,
        source=declared.source,
    )


def check_rules_file(path: PathLike) -> list[str]:
    """Every problem of the rules file at ``path`` (empty when it is fine); never raises.

    For ``otel-sentry-biz rules check FILE``: checks syntax, kinds, fields, values and the
    state URL's form, without connecting to the store.
    """
    try:
        declared = read_rules_file(path)
    except RuleError as exc:
        return exc.problems
    problem = state_url_problem(declared.state) if declared.state else None
    return [f"{declared.source}: state: {problem}"] if problem else []


def read_rules_file(path: PathLike) -> RulesFile:
    """Parse and validate the file at ``path`` without compiling it (no store is opened)."""
    try:
        source, text = read_toml_text(path)
    except TomlFileProblem as exc:
        raise RuleError([str(exc)]) from None
    return parse_rules(text, source)


def parse_rules(text: str, source: str = "<rules>") -> RulesFile:
    """Parse and validate rules-file ``text``; ``source`` names it in error messages."""
    try:
        document = parse_toml(text, source, tables="[[rule]]")
    except TomlFileProblem as exc:
        raise RuleError([str(exc)]) from None
    problems: list[str] = []
    for key in document:
        if key not in _TOP_LEVEL:
            problems.append(
                f"{source}: unknown top-level key {key!r}{_did_you_mean(key, _TOP_LEVEL)}: a "
                "rules file has [[rule]] tables, and optionally state, [alert_tiers] and "
                "[[schema]] tables"
            )
    state = document.get("state")
    if state is not None and not isinstance(state, str):
        problems.append(f'{source}: state must be a URL string, e.g. "sqlite:////tmp/r.db"')
        state = None
    tiers = document.get("alert_tiers")
    if tiers is not None and not isinstance(tiers, dict):
        problems.append(f'{source}: alert_tiers must be a table: [alert_tiers] HIGH = "..."')
        tiers = None
    tables = document.get("rule", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        problems.append(f"{source}: 'rule' must be an array of tables: write each as [[rule]]")
        tables = []
    if not tables and not problems:
        problems.append(f"{source}: no rules: add a [[rule]] table per rule (see docs/rules.md)")
    if "schema" in document:
        # Batch schemas for validate_batch may live beside the rules (see load_schemas).
        from otel_sentry_biz.rules.quality import schemas_from_tables

        problems.extend(schemas_from_tables(document["schema"], source)[1])
    specs: list[tuple[int, RuleSpec]] = []
    for number, table in enumerate(tables, start=1):
        spec = _spec(table, number, source, problems)
        if spec is not None:
            specs.append((number, spec))
    problems.extend(rule_problems(specs, source))
    if tiers is not None:
        from otel_sentry_biz.rules.alerting import alert_tiers

        try:
            alert_tiers(tiers)
        except ValueError as exc:
            problems.append(f"{source}: {exc}")
    if problems:
        raise RuleError(problems)
    return RulesFile(source, tuple(spec for _, spec in specs), state, tiers)


def rules_from_setting(
    setting: str, *, state: Union[str, StateStore, None] = None
) -> Optional[RuleSet]:
    """One RuleSet from a comma-separated list of rules files and shipped set names.

    >>> rules_from_setting(os.environ.get("OTEL_SENTRY_BIZ_RULES", ""))

    For ``OTEL_SENTRY_BIZ_RULES`` / ``configure(rules=...)``. Rule names must be unique across
    the files; ``state`` wins over the files' own, which must agree. None for an empty setting.
    """
    declared = [read_rules_file(resolve_rules(item)) for item in _items(setting)]
    if not declared:
        return None
    states = {d.state for d in declared if d.state}
    if state is None and len(states) > 1:
        raise RuleError(
            [
                f"the rules files name different state stores ({', '.join(sorted(states))}): "
                "name one store in one file, or pass state="
            ]
        )
    tiers: dict[str, str] = {}
    for each in declared:
        tiers.update(each.alert_tiers or {})
    return RuleSet(
        [spec for each in declared for spec in each.rules],
        state=state or next(iter(states), None),
        alert_tiers=tiers,
        source=",".join(d.source for d in declared),
    )


def shipped_sets() -> list[str]:
    """Names of the rule sets shipped with the package."""
    return sorted(p.stem for p in SETS_DIRECTORY.glob("*.toml"))


def _items(setting: str) -> list[str]:
    return [item.strip() for item in setting.split(",") if item.strip()]


def validate_rules_setting(setting: str) -> Optional[str]:
    """Parser for ``OTEL_SENTRY_BIZ_RULES``: the setting, or None when empty.

    Raises :class:`RuleError` (a ``ValueError``) listing every problem of every file, so a bad
    rules file fails at start-up, not in a request.
    """
    problems = []
    for item in _items(setting):
        try:
            problems.extend(check_rules_file(resolve_rules(item)))
        except RuleError as exc:
            problems.extend(exc.problems)
    if not problems:
        # Each file is sound; together they must be too (e.g. no rule name used twice).
        try:
            combined = rules_from_setting(setting, state="memory://")
        except RuleError as exc:
            problems.extend(exc.problems)
        else:
            if combined is not None:
                combined.close()
    if problems:
        raise RuleError(problems)
    return setting.strip() or None


def resolve_rules(item: str) -> str:
    """The path of rules file ``item``, or of the shipped set it names (``billing``)."""
    if os.sep in item or "/" in item or item.endswith(".toml"):
        return item
    shipped = SETS_DIRECTORY / f"{item}.toml"
    try:
        exists = shipped.is_file()
    except (OSError, ValueError):  # a name too long for a path, or holding a NUL
        exists = False
    if not exists:
        names = ", ".join(shipped_sets()) or "none"
        raise RuleError(
            [
                f"{item!r} is neither a rules file (give a path ending in .toml) nor a shipped "
                f"rule set ({names})"
            ]
        )
    return str(shipped)


def _spec(
    table: Mapping[str, Any], number: int, source: str, problems: list[str]
) -> Optional[RuleSpec]:
    kind = table.get("kind")
    label = rule_label(source, number, table.get("name"), kind or "no kind")
    choices = ", ".join(KINDS)
    if kind is None:
        problems.append(f"{label}: missing field 'kind': use one of {choices}")
        return None
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        hint = _did_you_mean(str(kind), KINDS)
        problems.append(f"{label}: unknown kind {kind!r}{hint}: use one of {choices}")
        return None
    known = [f.name for f in fields(cls)]
    unknown = [key for key in table if key not in known and key != "kind"]
    for key in unknown:
        problems.append(
            f"{label}: unknown field {key!r}{_did_you_mean(key, known)}: a {kind} rule has "
            f"{', '.join(known)}"
        )
    if unknown:
        return None
    return cls(**{key: value for key, value in table.items() if key != "kind"})


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
