"""The rewrites, one module per semantic kind, in the order they run.

Each is ``transform(tree, ctx) -> tree``. Type-dependent rewrites (``+``, ``/``, comparisons,
ISNULL, BIT) run first, while every column still carries its T-SQL type; ``types`` maps
data types to the target, and ``tables`` rewrites table references last.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from datamigrate_agent.translate._context import Context
from datamigrate_agent.translate.transforms import (
    apply,
    arithmetic,
    bits,
    compare,
    concat,
    convert,
    cte,
    datetime,
    ddl,
    dml,
    grouping,
    guards,
    inserts,
    isnull,
    keys,
    literals,
    strings,
    tables,
    top,
    types,
)

__all__ = ["TRANSFORMS", "VALUES_TRANSFORMS", "transforms_for"]

Transform = Callable[[exp.Expression, Context], exp.Expression]

TRANSFORMS: list[Transform] = [
    guards.transform,
    dml.transform,
    ddl.transform,
    keys.transform,
    inserts.transform,
    bits.transform,
    convert.transform,
    concat.transform,
    isnull.transform,
    arithmetic.transform,
    strings.transform,
    grouping.transform,
    compare.transform,
    datetime.transform,
    top.transform,
    apply.transform,
    cte.transform,
    types.transform,
    literals.transform,
    tables.transform,
]

#: Enough for ``INSERT ... VALUES`` rows of constants (most of a data script): OUTPUT refused,
#: value conversion, money casts, literal forms and table names.
VALUES_TRANSFORMS: list[Transform] = [
    dml.transform,
    inserts.transform,
    types.transform,
    literals.transform,
    tables.transform,
]

_CONSTANTS = (exp.Literal, exp.National, exp.Null, exp.Boolean, exp.HexString)


def _constant(node: exp.Expression) -> bool:
    if isinstance(node, exp.Neg):
        node = node.this
    if isinstance(node, exp.Cast):
        node = node.this
    return isinstance(node, _CONSTANTS)


def transforms_for(tree: exp.Expression) -> list[Transform]:
    """The transforms ``tree`` needs: the short list for rows of constants, else all."""
    values = tree.expression if isinstance(tree, exp.Insert) else None
    if isinstance(values, exp.Values) and all(
        _constant(v) for row in values.expressions for v in row.expressions
    ):
        return VALUES_TRANSFORMS
    return TRANSFORMS
