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
    ctes = {c.alias.lower() for c in tree.find_all(exp.CTE)}
    for table in list(tree.find_all(exp.Table)):
        if not table.name or (not table.db and table.name.lower() in ctes):
            continue
        if ctx.resolve_table is not None and _in_query(table):
            _resolve(table, ctx)
        else:
            _qualify(table, tree, ctx)
    for column in tree.find_all(exp.Column):
        if column.args.get("db") is not None:
            column.set("catalog", None)
            column.set("db", None)
    return tree


def _in_query(table: exp.Table) -> bool:
    return isinstance(table.parent, (exp.From, exp.Join))


def _resolve(table: exp.Table, ctx: Context) -> None:
    assert ctx.resolve_table is not None
    text = ctx.resolve_table(table.db, table.name)
    if text is None:
        _qualify(table, table.root(), ctx)
        return
    placeholder = f"__dm_ref_{len(ctx.placeholders)}__"
    ctx.placeholders[placeholder] = text
    alias = table.args.get("alias") or exp.TableAlias(this=exp.to_identifier(table.name))
    table.replace(exp.Table(this=exp.to_identifier(placeholder), alias=alias))


def _qualify(table: exp.Table, tree: exp.Expression, ctx: Context) -> None:
    table.set("catalog", None)
    schema = table.db
    if schema.lower() in _DEFAULT_SCHEMAS:
        table.set("db", None)
    elif isinstance(tree, exp.Create) and table.parent is tree.this:
        statement = f"CREATE SCHEMA IF NOT EXISTS {exp.to_identifier(schema).sql(ctx.dialect)}"
        if statement not in ctx.before:
            ctx.before.insert(0, statement)
