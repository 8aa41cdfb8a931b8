"""Statements that change the session rather than the data, and statements with no SQL.

Skipped (kept in the script result with a reason, printed by nobody): ``GO`` (already gone),
``SET`` options, ``USE``, database-level CREATE/ALTER/DROP DATABASE, ``sp_addtype``
(recorded: later columns of the alias type get its base type). Applied to later statements:
``SET DATEFIRST n``, ``SET ROWCOUNT n``, ``SET IDENTITY_INSERT t OFF`` (moves the identity's
sequence past the highest explicit value, as SQL Server moves the seed).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from datamigrate_agent.translate._context import Context
from datamigrate_agent.translate.errors import TranslationError

__all__ = ["Handled", "apply", "rewrite_if_drop", "skip_reason"]

_SKIPS = [
    (re.compile(r"^\s*USE\b", re.I), "USE selects a database; the target connection decides"),
    (
        re.compile(r"^\s*(CREATE|ALTER|DROP)\s+DATABASE\b", re.I),
        "database-level statement; the target connection decides the database",
    ),
    (
        re.compile(r"^\s*IF\s+.*\bDROP\s+DATABASE\b", re.I | re.S),
        "database-level statement; the target connection decides the database",
    ),
    (
        re.compile(r"^\s*ALTER\s+TABLE\s+.+?\s(NOCHECK|CHECK)\s+CONSTRAINT\b", re.I | re.S),
        "switches constraint checking, which only matters while loading data",
    ),
    (re.compile(r"^\s*UPDATE\s+STATISTICS\b", re.I), "refreshes optimizer statistics"),
    (
        re.compile(
            r"^\s*(IF|EXEC|EXECUTE)\b.*\b(sysdatabases|sp_dboption|SERVERPROPERTY|DB_NAME\s*\(|"
            r"ALTER\s+DATABASE|DROP\s+DATABASE)",
            re.I | re.S,
        ),
        "server administration (database options, checks on the server)",
    ),
    (
        re.compile(r"^\s*(CHECKPOINT|DBCC)\b", re.I),
        "server maintenance statement",
    ),
]
_ADDTYPE = re.compile(
    r"^\s*EXEC(?:UTE)?\s+(?:\w+\.)*sp_addtype\s+(?:@typename\s*=\s*)?\[?'?(\w+)'?\]?\s*,\s*"
    r"(?:@phystype\s*=\s*)?'?([\w\s(),]+?)'?\s*(,.*)?$",
    re.I | re.S,
)
_SESSION_SETS = {"DATEFIRST", "ROWCOUNT", "IDENTITY_INSERT"}


@dataclass
class Handled:
    """A session statement's outcome: target statements to run (if any) and why it is skipped."""

    statements: list[str] = field(default_factory=list)
    skipped: str | None = None


def skip_reason(text: str) -> str | None:
    """Why ``text`` has no target SQL, or None when it should be translated."""
    for pattern, reason in _SKIPS:
        if pattern.match(text):
            return reason
    set_match = re.match(r"^\s*SET\s+(\w+)", text, re.I)
    if set_match and set_match.group(1).upper() not in _SESSION_SETS:
        if not text.lstrip()[3:].lstrip().startswith("@"):
            return f"SET {set_match.group(1).upper()} is a session option with no target effect"
    return None


def apply(tree: exp.Expression, ctx: Context, state: Any) -> Handled | None:
    """Handle session statements (SET, sp_addtype) against the script ``state``."""
    if isinstance(tree, exp.Command):
        return _command(tree, ctx, state)
    if isinstance(tree, exp.Execute):
        return _execute(tree.sql("tsql"), state)
    if not isinstance(tree, exp.Set):
        return None
    if not tree.expressions:
        return Handled(skipped="SET with no recognised option")
    handled = Handled()
    for item in tree.expressions:
        _set_item(item, ctx, state, handled)
    return handled


def _command(tree: exp.Command, ctx: Context, state: Any) -> Handled | None:
    rest = tree.expression
    text = f"{tree.this} {rest.sql('tsql') if isinstance(rest, exp.Expression) else rest or ''}"
    if str(tree.this).upper() == "SET":
        handled = Handled()
        _set_item(exp.var(text[4:].strip()), ctx, state, handled)
        return handled
    if str(tree.this).upper() in {"EXEC", "EXECUTE"}:
        return _execute(text, state)
    return None


def _execute(text: str, state: Any) -> Handled:
    match = _ADDTYPE.match(text)
    if match is None:
        raise TranslationError("EXEC calls a stored procedure; it has no target equivalent")
    state.schema.aliases[match.group(1).lower()] = match.group(2).strip()
    return Handled(skipped=f"sp_addtype: {match.group(1)} is {match.group(2).strip()}")


def _set_item(item: exp.Expression, ctx: Context, state: Any, handled: Handled) -> None:
    # sqlglot reads ``SET IDENTITY_INSERT t OFF`` as an alias: ``t AS OFF``.
    text = re.sub(r"\s+AS\s+", " ", item.sql("tsql"))
    name, _, value = re.sub(r"\s*=\s*", " ", text, count=1).partition(" ")
    name, value = name.upper(), value.strip()
    if name == "DATEFIRST" and value.isdigit():
        state.options = dataclasses.replace(state.options, datefirst=int(value))
        handled.skipped = f"SET DATEFIRST {value}: applied to the statements that follow"
    elif name == "ROWCOUNT" and value.isdigit():
        state.rowcount = int(value)
        handled.skipped = f"SET ROWCOUNT {value}: applied as LIMIT to the SELECTs that follow"
    elif name == "IDENTITY_INSERT":
        handled.statements += _identity_insert(value, ctx)
        handled.skipped = None if handled.statements else "SET IDENTITY_INSERT: nothing to move"
    else:
        handled.skipped = f"SET {name} is a session option with no target effect"


def _identity_insert(value: str, ctx: Context) -> list[str]:
    table_text, _, switch = value.rpartition(" ")
    if switch.upper() != "OFF":
        return []
    table = exp.to_table(table_text, dialect="tsql")
    identity = ctx.schema.identity(table)
    if identity is None or identity.highest is None:
        return []
    next_value = identity.highest + identity.increment
    identity.highest = None
    name = exp.to_table(table_text, dialect="tsql")
    name.set("db", None)
    quote = ctx.target.QUOTE_IDENTIFIERS
    table_sql = name.sql(ctx.dialect, identify=quote)
    column = exp.to_identifier(identity.column).sql(ctx.dialect, identify=quote)
    if ctx.target.IDENTITY_STYLE == "sequence":
        identity.generation += 1
        sequence = f"{identity.sequence}_{identity.generation}"
        return [
            f"CREATE SEQUENCE {sequence} START WITH {next_value} INCREMENT BY {identity.increment}",
            f"ALTER TABLE {table_sql} ALTER COLUMN {column} SET DEFAULT nextval('{sequence}')",
        ]
    if ctx.dialect == "postgres":
        return [f"ALTER TABLE {table_sql} ALTER COLUMN {column} RESTART WITH {next_value}"]
    return []


_IF_DROP = re.compile(
    r"^\s*IF\s+(?:EXISTS\s*\(.*\)|OBJECT_ID\s*\(.*?\)\s+IS\s+NOT\s+NULL)\s+"
    r"DROP\s+(TABLE|VIEW|PROCEDURE|PROC|FUNCTION|TRIGGER|INDEX|SEQUENCE)\s+(.+)$",
    re.I | re.S,
)


def rewrite_if_drop(text: str) -> str:
    """``IF EXISTS (...) DROP TABLE t`` (an SSMS preamble) -> ``DROP TABLE IF EXISTS t``."""
    match = _IF_DROP.match(text)
    if match is None:
        return text
    return f"DROP {match.group(1).upper()} IF EXISTS {match.group(2).strip()}"
