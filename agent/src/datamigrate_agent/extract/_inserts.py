"""INSERT statements as sample rows: ``INSERT [INTO] t [(cols)] VALUES ... | SELECT ...``."""

from __future__ import annotations

from dataclasses import dataclass

from datamigrate_agent.extract._cursor import Cursor, StatementError
from datamigrate_agent.extract._ddl import DdlContext, TableBuilder
from datamigrate_agent.extract._values import Raw, parse_expression
from datamigrate_agent.metadata import Column

__all__ = ["InsertRows", "read_insert"]


@dataclass(slots=True)
class InsertRows:
    """The rows one INSERT adds: ``rows[i][j]`` is the value for ``columns[j]``."""

    target: TableBuilder
    columns: list[Column]
    rows: list[list[Raw]]


def read_insert(cur: Cursor, ctx: DdlContext) -> InsertRows:
    """Read an INSERT whose values are literals; StatementError for any other kind."""
    cur.expect_word("INSERT")
    if cur.accept_word("TOP"):
        cur.group()
        cur.accept_word("PERCENT")
    cur.accept_word("INTO")
    target = ctx.table(cur.name())
    if cur.accept_word("WITH"):
        cur.group()
    columns = _target_columns(cur, target)
    if cur.accept_word("VALUES"):
        rows = _values_rows(cur)
    elif (tok := cur.peek()) is not None and tok.is_word("SELECT"):
        rows = _select_rows(cur)
    elif cur.accept_words("DEFAULT", "VALUES"):
        return InsertRows(target, [], [[]])
    elif (tok := cur.peek()) is not None and tok.is_word("EXEC", "EXECUTE"):
        raise cur.error("INSERT ... EXEC takes its rows from a procedure, not from the script")
    else:
        raise cur.error("expected VALUES or SELECT")
    if not cur.at_end():
        raise cur.error("unexpected text after the INSERT")
    for row in rows:
        if len(row) != len(columns):
            raise StatementError(
                f"INSERT into {target.schema}.{target.name} gives {len(row)} values "
                f"for {len(columns)} columns"
            )
    return InsertRows(target, columns, rows)


def _target_columns(cur: Cursor, target: TableBuilder) -> list[Column]:
    """The listed columns, or (no list) every column SQL Server expects a value for."""
    if (tok := cur.peek()) is not None and tok.is_op("("):
        start, end = cur.group()
        names = []
        for a, b in cur.split_commas(start, end):
            item = cur.sub(a, b)
            names.append(item.name()[-1])
            if not item.at_end():
                raise item.error("expected a column name")
        return [target.column(n) for n in names]
    return [
        c
        for c in target.columns
        if c.identity is None and c.computed is None and c.data_type != "timestamp"
    ]


def _row(cur: Cursor, start: int, end: int) -> list[Raw]:
    row = []
    for a, b in cur.split_commas(start, end):
        item = cur.sub(a, b)
        row.append(parse_expression(item))
        if not item.at_end():
            raise item.error("unsupported expression in a value")
    return row


def _values_rows(cur: Cursor) -> list[list[Raw]]:
    rows = [_row(cur, *cur.group())]
    while cur.accept_op(","):
        rows.append(_row(cur, *cur.group()))
    return rows


def _select_rows(cur: Cursor) -> list[list[Raw]]:
    """``SELECT a, b [UNION [ALL] SELECT c, d ...]`` of literals (no FROM)."""
    rows = []
    while True:
        cur.expect_word("SELECT")
        cur.accept_word("ALL", "DISTINCT")
        start = cur.i
        while not cur.at_end() and not cur.peek().is_word("UNION", "FROM", "WHERE"):  # type: ignore[union-attr]
            if cur.peek().is_op("("):  # type: ignore[union-attr]
                cur.group()
            else:
                cur.next()
        if not cur.at_end() and cur.peek().is_word("FROM", "WHERE"):  # type: ignore[union-attr]
            raise cur.error("INSERT ... SELECT reads other tables; its rows are not in the script")
        rows.append(_select_items(cur, start, cur.i))
        if not cur.accept_word("UNION"):
            return rows
        cur.accept_word("ALL")


def _select_items(cur: Cursor, start: int, end: int) -> list[Raw]:
    row = []
    for a, b in cur.split_commas(start, end):
        item = cur.sub(a, b)
        first, second = item.peek(), item.peek(1)
        if first is not None and first.kind in ("word", "qid") and second is not None:
            if second.is_op("="):  # alias = value
                item.next()
                item.next()
        row.append(parse_expression(item))
        item.accept_word("AS")
        if not item.at_end():
            item.ident()  # a column alias
        if not item.at_end():
            raise item.error("unsupported expression in a SELECT value")
    return row
