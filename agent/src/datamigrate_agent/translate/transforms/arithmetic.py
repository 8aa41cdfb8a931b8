"""Integer arithmetic: int / int truncates toward zero, AVG of integers is an integer, and
CAST of a decimal to an integer truncates (targets round). A string operand of ``-``, ``*``,
``/`` or ``%`` converts to the other operand's number type, as T-SQL's precedence says.

``%`` needs nothing: every target's remainder takes the dividend's sign, as T-SQL's does.
"""

from __future__ import annotations

from sqlglot import exp

from datamigrate_agent.translate._context import Context
from datamigrate_agent.translate._typing import is_int, is_numeric, is_string
from datamigrate_agent.translate.transforms._util import bottom_up

__all__ = ["int_divide", "transform"]


def int_divide(left: exp.Expression, right: exp.Expression, ctx: Context) -> exp.Expression:
    """``left / right`` with T-SQL integer semantics on the target."""
    if ctx.target.INT_DIVISION_TRUNCATES:
        # typed=True tells sqlglot this is integer division, so it writes a plain ``/``.
        return exp.Div(this=left, expression=right, typed=True, safe=False)
    return exp.IntDiv(this=left, expression=right)


def transform(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Rewrite integer division, integer AVG and decimal-to-integer casts."""
    for node in bottom_up(tree, exp.Sub, exp.Mul, exp.Mod, exp.Div):
        _string_operand_to_number(node, ctx)
    for node in bottom_up(tree, exp.Div, exp.Avg, exp.Cast):
        new = _rewrite(node, ctx)
        if new is not node:
            if node is tree:
                return new
            node.replace(new)
    return tree


def _string_operand_to_number(node: exp.Binary, ctx: Context) -> None:
    """``'7' * 2``: the string converts to the number's type (data type precedence)."""
    left, right = ctx.type_of(node.left), ctx.type_of(node.right)
    if is_string(left) and is_numeric(right):
        node.set("this", exp.Cast(this=node.left, to=right.copy()))
    elif is_string(right) and is_numeric(left):
        node.set("expression", exp.Cast(this=node.right, to=left.copy()))


def _rewrite(node: exp.Expression, ctx: Context) -> exp.Expression:
    if isinstance(node, exp.Div):
        if is_int(ctx.type_of(node.left)) and is_int(ctx.type_of(node.right)):
            return int_divide(node.left, node.right, ctx)
        return node
    if isinstance(node, exp.Avg):
        return _avg(node, ctx)
    if isinstance(node, exp.Cast) and is_int(node.to) and node.to.this != exp.DType.BIT:
        source = ctx.type_of(node.this)
        if is_numeric(source) and not is_int(source):
            node.set("this", exp.func("TRUNC", node.this))
    return node


def _avg(node: exp.Avg, ctx: Context) -> exp.Expression:
    if isinstance(node.parent, exp.Window):
        return node
    arg = node.this
    inner = arg.this if isinstance(arg, exp.Distinct) else arg
    if isinstance(arg, exp.Distinct) and len(arg.expressions) == 1:
        inner = arg.expressions[0]
    if not is_int(ctx.type_of(inner)):
        return node
    total = exp.Sum(this=arg.copy())
    count = exp.Count(this=arg.copy())
    return exp.paren(int_divide(total, count, ctx))
