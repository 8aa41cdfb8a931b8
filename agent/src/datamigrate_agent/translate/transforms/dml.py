"""T-SQL-only forms of INSERT, UPDATE, DELETE and MERGE: refused with the reason, or rewritten.

Refused, because the target either rejects the SQL sqlglot writes or reads it differently:
``UPDATE t SET ... FROM X AS t`` (the target named through FROM: on PostgreSQL and DuckDB a
table in FROM is a second copy, joined to the target), ``DELETE alias FROM ...`` and ``DELETE
t FROM t JOIN ...``, ``UPDATE TOP (n)`` and ``DELETE TOP (n)`` (n arbitrary rows: refused from
the text by ``top_reason``, as sqlglot parses only some of their forms) and ``OUTPUT`` (rows of
the ``inserted``/``deleted`` pseudo-tables and ``$action``, which RETURNING does not have).
``WHEN NOT MATCHED BY SOURCE`` is refused where the target's release that runs it may be
newer than the user's server (PostgreSQL 17). Rewritten: ``SET t.col = ...`` qualified with
the target's own name or alias loses the qualifier, which the targets do not accept in SET; a
MERGE target keeps its spelling.
"""

from __future__ import annotations

import re

from sqlglot import exp

from datamigrate_agent.translate._context import Context
from datamigrate_agent.translate.errors import TranslationError

__all__ = ["top_reason", "transform"]

_TOP = re.compile(r"\b(UPDATE|DELETE)\s+TOP\s*\(", re.I)
_NOT_CODE = re.compile(r"'(?:[^']|'')*'|--[^\n]*|/\*.*?\*/|\[[^\]]*\]", re.S)


def top_reason(text: str, dialect: str) -> str | None:
    """Why ``UPDATE TOP (n)`` / ``DELETE TOP (n)`` in ``text`` is refused, or None."""
    match = _TOP.search(_NOT_CODE.sub(" ", text))
    if match is None:
        return None
    verb = match.group(1).upper()
    return (
        f"{verb} TOP (n) changes n arbitrary rows; {dialect} has no such limit: rewrite it "
        f"with a WHERE on the rows meant (for example a key IN (SELECT key ... ORDER BY ... "
        "LIMIT n))"
    )


def transform(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Refuse what no target runs as written; unqualify SET columns of the target."""
    if not isinstance(tree, (exp.Insert, exp.Update, exp.Delete, exp.Merge)):
        return tree
    verb = tree.key.upper()
    if tree.args.get("returning") is not None:
        raise TranslationError(
            f"{verb} ... OUTPUT returns rows of T-SQL's inserted/deleted pseudo-tables (and "
            f"$action in MERGE); {ctx.dialect} has no such rows, rewrite it by hand"
        )
    if isinstance(tree, exp.Update):
        _update(tree, ctx)
    elif isinstance(tree, exp.Delete):
        _delete(tree, ctx)
    elif isinstance(tree, exp.Merge):
        _merge(tree, ctx)
    return tree


def _merge(tree: exp.Merge, ctx: Context) -> None:
    since = ctx.target.MERGE_BY_SOURCE_SINCE
    if since and any(w.args.get("source") for w in tree.find_all(exp.When)):
        raise TranslationError(
            f"MERGE ... WHEN NOT MATCHED BY SOURCE needs {since} or later, and the server's "
            "release is not known here; rewrite it by hand as UPDATE or DELETE ... WHERE NOT "
            "EXISTS (the matching source row), run before a MERGE without that clause"
        )
    for update in tree.find_all(exp.Update):
        _unqualify_set(update, _names(tree.this))
    if ctx.target.QUOTE_IDENTIFIERS and isinstance(tree.this, exp.Table):
        # sqlglot's MERGE writer for PostgreSQL lower-cases an unquoted target table in place
        # ("customers" for a table created as "Customers"); quoted names it leaves alone.
        for identifier in tree.this.find_all(exp.Identifier):
            identifier.set("quoted", True)


def _update(tree: exp.Update, ctx: Context) -> None:
    target = tree.this
    names = _names(target)
    from_ = tree.args.get("from_") or tree.args.get("from")
    if from_ is not None:
        sources = [t for t in from_.find_all(exp.Table) if _names(t) & names]
        if sources:
            raise TranslationError(
                f"UPDATE {target.name} ... FROM names the updated table in FROM "
                f"({sources[0].sql('tsql')}): T-SQL updates those joined rows, {ctx.dialect} "
                "would join a second copy of the table; rewrite as UPDATE <table> SET ... "
                "FROM <the other tables> WHERE <the join condition>"
            )
    _unqualify_set(tree, names)


def _delete(tree: exp.Delete, ctx: Context) -> None:
    target = tree.this
    if tree.args.get("tables") or (isinstance(target, exp.Table) and target.args.get("joins")):
        raise TranslationError(
            "DELETE <alias> FROM <tables> (T-SQL's second FROM, deleting through an alias or a "
            f"join) has no {ctx.dialect} form; rewrite as DELETE FROM <table> WHERE "
            "EXISTS (...) over the joined tables"
        )


def _names(table: exp.Expression) -> set[str]:
    """The lower-case names a table is referred to by: its name and its alias."""
    if not isinstance(table, exp.Table):
        return set()
    return {n.lower() for n in (table.name, table.alias) if n}


def _unqualify_set(update: exp.Update, names: set[str]) -> None:
    for assignment in update.expressions:
        column = assignment.this if isinstance(assignment, exp.EQ) else None
        if isinstance(column, exp.Column) and column.table.lower() in names:
            column.set("table", None)
            column.set("db", None)
            column.set("catalog", None)
