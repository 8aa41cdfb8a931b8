"""Views, procedures, functions and triggers: their headers, parameters and dependencies.

The definition is the statement's text, verbatim. Dependencies of a view come from sqlglot's
T-SQL parse of its query (tables it reads, CTE names excluded); when sqlglot cannot parse it,
and for procedure and trigger bodies (which mix statements sqlglot does not read, such as
``SET ROWCOUNT``), they come from the names that follow FROM, JOIN, APPLY, INTO, UPDATE and
EXEC in the tokens.
"""

from __future__ import annotations

from typing import Literal

import sqlglot
from sqlglot import exp

from datamigrate_agent.extract._cursor import Cursor, StatementError
from datamigrate_agent.extract._tokens import Token
from datamigrate_agent.extract._types import parse_type, resolve_type, split_name
from datamigrate_agent.metadata import Parameter, Routine, Trigger, UserType, View

__all__ = ["parse_function", "parse_procedure", "parse_trigger", "parse_view"]

_NAME_AFTER = frozenset({"FROM", "JOIN", "APPLY", "INTO", "UPDATE", "EXEC", "EXECUTE"})


def _qualify(parts: list[str], default_schema: str) -> str:
    schema, name = split_name(parts, default_schema)
    return f"{schema}.{name}"


def token_dependencies(cur: Cursor, start: int, default_schema: str) -> list[str]:
    """Names that follow FROM/JOIN/APPLY/INTO/UPDATE/EXEC (and commas in a FROM list)."""
    found: list[str] = []
    toks = cur.tokens
    in_from = False
    i = start
    while i < cur.end:
        tok = toks[i]
        if tok.kind == "word" and tok.upper in _NAME_AFTER:
            in_from = tok.upper == "FROM"
            i = _take_name(cur, i + 1, default_schema, found)
            continue
        if in_from and tok.is_op(","):
            i = _take_name(cur, i + 1, default_schema, found)
            continue
        if tok.kind == "word" and tok.upper in ("WHERE", "GROUP", "ORDER", "HAVING", "UNION"):
            in_from = False
        i += 1
    return sorted(set(found), key=found.index)


def _take_name(cur: Cursor, i: int, default_schema: str, found: list[str]) -> int:
    toks = cur.tokens
    if i >= cur.end or toks[i].kind not in ("word", "qid") or toks[i].value.startswith("#"):
        return i
    parts = [toks[i].value]
    j = i + 1
    while j + 1 < cur.end and toks[j].is_op(".") and toks[j + 1].kind in ("word", "qid"):
        parts.append(toks[j + 1].value)
        j += 2
    if j < cur.end and toks[j].is_op("("):
        return j  # a function call such as OPENQUERY(...) or a table-valued function
    if toks[i].kind == "word" and toks[i].upper in _KEYWORDS_NOT_NAMES and len(parts) == 1:
        return j
    found.append(_qualify(parts, default_schema))
    return j


_KEYWORDS_NOT_NAMES = frozenset({"SELECT", "DELETED", "INSERTED", "VALUES", "OPENJSON"})


def sqlglot_dependencies(query: str, default_schema: str) -> list[str] | None:
    """Tables a query reads, by sqlglot's T-SQL parser; None when it cannot parse ``query``."""
    try:
        tree = sqlglot.parse_one(query, read="tsql")
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError):
        return None
    if tree is None:
        return None
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    found: list[str] = []
    for table in tree.find_all(exp.Table):
        if not table.name or (not table.db and table.name.lower() in ctes):
            continue
        parts = [p for p in (table.db, table.name) if p]
        found.append(_qualify(parts, default_schema))
    return sorted(set(found), key=found.index)


def _module_head(cur: Cursor, kind_words: tuple[str, ...]) -> None:
    cur.expect_word("CREATE", "ALTER")
    if cur.accept_word("OR"):
        cur.expect_word("ALTER")
    cur.expect_word(*kind_words)


def _skip_to_as(cur: Cursor) -> None:
    """Skip ``WITH SCHEMABINDING, ENCRYPTION, ...`` and the like up to the body's AS."""
    while not cur.at_end():
        tok = cur.peek()
        assert tok is not None
        if tok.is_word("AS"):
            cur.next()
            return
        if tok.is_op("("):
            cur.group()
            continue
        cur.next()
    raise StatementError("no AS before the body")


def parse_view(cur: Cursor, default_schema: str) -> tuple[View, str]:
    """``CREATE [OR ALTER] VIEW name [(cols)] [WITH ...] AS query``: the view and its query."""
    start = cur.i
    _module_head(cur, ("VIEW",))
    schema, name = split_name(cur.name(), default_schema)
    if (tok := cur.peek()) is not None and tok.is_op("("):
        cur.group()
    _skip_to_as(cur)
    query_start = cur.i
    query = cur.source(query_start, cur.end)
    deps = sqlglot_dependencies(query, default_schema)
    if deps is None:
        deps = token_dependencies(cur, query_start, default_schema)
    view = View(schema=schema, name=name, definition=cur.source(start, cur.end), dependencies=deps)
    return view, query


def _parameters(cur: Cursor, start: int, end: int, types: dict[str, UserType]) -> list[Parameter]:
    params: list[Parameter] = []
    for n, (a, b) in enumerate(cur.split_commas(start, end), 1):
        item = cur.sub(a, b)
        tok = item.next()
        if tok.kind != "var":
            raise StatementError(f"expected a parameter name, found {tok.value!r}", tok.start)
        item.accept_word("AS")
        shape = resolve_type(parse_type(item), types)
        item.accept_word("VARYING")
        default = None
        if item.accept_op("="):
            d_start = item.i
            while not item.at_end() and not item.peek().is_word("OUT", "OUTPUT", "READONLY"):  # type: ignore[union-attr]
                item.next()
            default = item.source(d_start, item.i)
        output = item.accept_word("OUT", "OUTPUT") is not None
        item.accept_word("READONLY")
        if not item.at_end():
            raise item.error(f"unexpected text in parameter {tok.value}")
        params.append(
            Parameter(
                name=tok.value, ordinal=n, data_type=shape.data_type, max_length=shape.max_length,
                precision=shape.precision, scale=shape.scale, output=output, default=default,
            )
        )  # fmt: skip
    return params


def _param_range(cur: Cursor, stop_words: tuple[str, ...]) -> tuple[int, int]:
    """The tokens of a parameter list, with or without its parentheses, up to ``stop_words``."""
    if (tok := cur.peek()) is not None and tok.is_op("("):
        return cur.group()
    start = cur.i
    depth = 0
    while not cur.at_end():
        tok = cur.peek()
        assert tok is not None
        if depth == 0 and tok.kind == "word" and tok.upper in stop_words:
            break
        depth += 1 if tok.is_op("(") else -1 if tok.is_op(")") else 0
        cur.next()
    return start, cur.i


def parse_procedure(cur: Cursor, default_schema: str, types: dict[str, UserType]) -> Routine:
    """``CREATE [OR ALTER] PROC[EDURE] name [;n] [params] [WITH ...] [FOR REPLICATION] AS``."""
    start = cur.i
    _module_head(cur, ("PROC", "PROCEDURE"))
    schema, name = split_name(cur.name(), default_schema)
    if cur.accept_op(";"):
        cur.next()  # numbered procedure group
    p_start, p_end = _param_range(cur, ("AS", "WITH", "FOR"))
    params = _parameters(cur, p_start, p_end, types)
    _skip_to_as(cur)
    return Routine(
        schema=schema, name=name, kind="procedure", definition=cur.source(start, cur.end),
        parameters=params, dependencies=token_dependencies(cur, cur.i, default_schema),
    )  # fmt: skip


def parse_function(cur: Cursor, default_schema: str, types: dict[str, UserType]) -> Routine:
    """``CREATE [OR ALTER] FUNCTION name (params) RETURNS ...``: scalar, inline or table."""
    start = cur.i
    _module_head(cur, ("FUNCTION",))
    schema, name = split_name(cur.name(), default_schema)
    p_start, p_end = cur.group()
    params = _parameters(cur, p_start, p_end, types)
    cur.expect_word("RETURNS")
    returns: str | None = None
    kind: Literal["scalar", "table", "inline"]
    if cur.accept_word("TABLE"):
        kind = "inline"
    elif (tok := cur.peek()) is not None and tok.kind == "var":
        cur.next()
        cur.expect_word("TABLE")
        cur.group()
        kind = "table"
    else:
        t_start = cur.i
        parse_type(cur)
        returns = cur.source(t_start, cur.i)
        kind = "scalar"
    body = cur.i
    return Routine(
        schema=schema, name=name, kind=kind, definition=cur.source(start, cur.end),
        parameters=params, returns=returns,
        dependencies=token_dependencies(cur, body, default_schema),
    )  # fmt: skip


def parse_trigger(cur: Cursor, default_schema: str) -> Trigger | None:
    """``CREATE TRIGGER name ON table {FOR|AFTER|INSTEAD OF} events AS``; None for DDL ones."""
    start = cur.i
    _module_head(cur, ("TRIGGER",))
    schema, name = split_name(cur.name(), default_schema)
    cur.expect_word("ON")
    if (tok := cur.peek()) is not None and tok.is_word("DATABASE", "ALL"):
        return None
    table_schema, table = split_name(cur.name(), schema)
    events: list[str] = []
    while not cur.at_end() and not cur.peek().is_word("AS"):  # type: ignore[union-attr]
        tok2: Token = cur.next()
        if tok2.kind == "word" and tok2.upper in ("INSERT", "UPDATE", "DELETE"):
            events.append(tok2.upper)
    return Trigger(
        schema=table_schema, name=name, table=table, events=events,
        definition=cur.source(start, cur.end),
    )  # fmt: skip
