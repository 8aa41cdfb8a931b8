"""Table references: the default schema ``dbo`` and database names drop; other schemas stay
(and a CREATE TABLE in one creates it first); with ``resolve_table`` each reference becomes
the caller's text, for example ``{{ ref('stg_shop__orders') }}``.
"""

from __future__ import annotations

from sqlglot import exp

from datamigrate_agent.translate._context import Context

__all__ = ["transform"]

_DEFAULT_SCHEMAS = {"dbo", ""}


def transform(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Rewrite table and column qualifiers."""
    for table in list(tree.find_all(exp.Table)):
        if not table.name or _cte_reference(table):
            continue
        if ctx.resolve_table is not None and _is_source(table):
            _resolve(table, ctx)
        else:
            _qualify(table, tree, ctx)
    for column in tree.find_all(exp.Column):
        if column.args.get("db") is not None:
            column.set("catalog", None)
            column.set("db", None)
    return tree


def _is_source(table: exp.Table) -> bool:
    """A table a query reads: in FROM, a JOIN, or first in a parenthesised join
    (``A JOIN (B JOIN C ON ...) ON ...`` parses B as the ``this`` of an unnamed subquery)."""
    parent = table.parent
    if isinstance(parent, (exp.From, exp.Join)):
        return True
    return isinstance(parent, exp.Subquery) and table.arg_key == "this"


def _cte_reference(table: exp.Table) -> bool:
    """Whether ``table`` names a CTE in scope: one of an enclosing query's WITH, or, inside a
    CTE body, that CTE itself or an earlier one of the same WITH (T-SQL has no forward
    references). A schema-qualified name is always a table."""
    if table.db:
        return False
    name = table.name.lower()
    child: exp.Expression = table
    node = table.parent
    while node is not None:
        if isinstance(node, exp.With):
            ctes = node.expressions
            upto = next((i for i, c in enumerate(ctes) if c is child), len(ctes) - 1)
            if any(c.alias.lower() == name for c in ctes[: upto + 1]):
                return True
        else:
            with_ = node.args.get("with_") or node.args.get("with")
            if isinstance(with_, exp.With) and with_ is not child:
                if any(c.alias.lower() == name for c in with_.expressions):
                    return True
        child, node = node, node.parent
    return False


def _resolve(table: exp.Table, ctx: Context) -> None:
    assert ctx.resolve_table is not None
    text = ctx.resolve_table(table.db, table.name)
    if text is None:
        _qualify(table, table.root(), ctx)
        return
    placeholder = f"__dm_ref_{len(ctx.placeholders)}__"
    ctx.placeholders[placeholder] = text
    alias = table.args.get("alias") or exp.TableAlias(this=exp.to_identifier(table.name))
    # Changed in place: a parenthesised join hangs its JOINs on the first table's ``joins``.
    table.set("this", exp.to_identifier(placeholder))
    table.set("db", None)
    table.set("catalog", None)
    table.set("alias", alias)


def _qualify(table: exp.Table, tree: exp.Expression, ctx: Context) -> None:
    table.set("catalog", None)
    schema = table.db
    if schema.lower() in _DEFAULT_SCHEMAS:
        table.set("db", None)
    elif isinstance(tree, exp.Create) and table.parent is tree.this:
        statement = f"CREATE SCHEMA IF NOT EXISTS {exp.to_identifier(schema).sql(ctx.dialect)}"
        if statement not in ctx.before:
            ctx.before.insert(0, statement)
