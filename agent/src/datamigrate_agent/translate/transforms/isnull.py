"""ISNULL(a, b) has the type of ``a`` (COALESCE takes the highest-precedence type).

The replacement is converted to ``a``'s type, and a string replacement longer than ``a``'s
declared length is cut, as SQL Server does: ``ISNULL(code_char3, 'unknown')`` gives 'unk'.
"""

from __future__ import annotations

from sqlglot import exp

from datamigrate_agent.translate._context import Context
from datamigrate_agent.translate._typing import INTS, STRING, TEMPORAL, is_string
from datamigrate_agent.translate.transforms._util import lit

__all__ = ["transform"]


def _family(dt: exp.DataType) -> str:
    if dt.this in {exp.DType.BIT, exp.DType.BOOLEAN}:
        return "bit"
    if dt.this in INTS:
        return "int"
    if dt.this in STRING:
        return "string"
    if dt.this in TEMPORAL:
        return "temporal"
    return dt.this.value


def transform(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Give every ISNULL's replacement the type of its first argument."""
    for node in list(tree.find_all(exp.Coalesce)):
        if not node.args.get("is_null") or len(node.expressions) != 1:
            continue
        first, second = ctx.type_of(node.this), node.expressions[0]
        if first is None or isinstance(second, exp.Null):
            continue
        other = ctx.type_of(second)
        if is_string(first) and (other is None or is_string(other)):
            _cut(node, second, first)
        elif other is None or _family(other) != _family(first):
            second.replace(exp.Cast(this=second.copy(), to=first.copy()))
    return tree


def _cut(node: exp.Coalesce, second: exp.Expression, first: exp.DataType) -> None:
    params = first.expressions
    if not params or not params[0].name.isdigit():
        return
    length = int(params[0].name)
    if isinstance(second, (exp.Literal, exp.National)) and len(second.name) > length:
        second.replace(lit(second.name[:length]))
    elif not isinstance(second, (exp.Literal, exp.National)):
        second.replace(exp.Left(this=second.copy(), expression=exp.Literal.number(length)))
