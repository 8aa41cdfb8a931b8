"""INSERT: BIT values become booleans, explicit IDENTITY values are remembered."""

from __future__ import annotations

from sqlglot import exp

from datamigrate_agent.translate._context import Context
from datamigrate_agent.translate.transforms.bits import to_boolean

__all__ = ["transform"]


def transform(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Rewrite ``INSERT ... VALUES`` rows against the target table's known columns."""
    if not isinstance(tree, exp.Insert):
        return tree
    target = tree.this
    table = target.this if isinstance(target, exp.Schema) else target
    columns = ctx.schema.columns(table) if isinstance(table, exp.Table) else None
    if not columns:
        return tree
    if isinstance(target, exp.Schema):
        names = [c.name.lower() for c in target.expressions]
    else:
        names = list(columns)
    values = tree.expression
    if not isinstance(values, exp.Values):
        return tree
    identity = ctx.schema.identity(table)
    for row in values.expressions:
        for name, value in zip(names, row.expressions, strict=False):
            dtype = columns.get(name)
            if dtype is not None and dtype.this == exp.DType.BIT:
                value.replace(to_boolean(value))
            if identity and name == identity.column.lower() and value.is_int:
                identity.highest = max(identity.highest or value.to_py(), value.to_py())
    return tree
