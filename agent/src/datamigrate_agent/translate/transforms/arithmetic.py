"""Integer arithmetic: int / int truncates toward zero, AVG of integers is an integer, AVG of
money is money (4 decimals, truncated as SQL Server's money division truncates), and CAST of
a decimal to an integer truncates (targets round). A string operand of ``-``, ``*``,
``/`` or ``%`` converts to the other operand's number type, as T-SQL's precedence says.

``%`` needs nothing: every target's remainder takes the dividend's sign, as T-SQL's does.
"""

from __future__ import annotations

from sqlglot import exp

from datamigrate_agent.translate._context import Context
from datamigrate_agent.translate._typing import is_int, is_money, is_numeric, is_string
from datamigrate_agent.translate.transforms._util import bottom_up, tsql_type

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
    arg = node.this
    inner = arg.this if isinstance(arg, exp.Distinct) else arg
    if isinstance(arg, exp.Distinct) and len(arg.expressions) == 1:
        inner = arg.expressions[0]
    kind = ctx.type_of(inner)
    window = node.parent if isinstance(node.parent, exp.Window) else None
    if is_money(kind):
        return _money_avg(node, window, ctx)
    if window is not None or not is_int(kind):
        return node
    total = exp.Sum(this=arg.copy())
    count = exp.Count(this=arg.copy())
    return exp.paren(int_divide(total, count, ctx))


def _money_avg(node: exp.Avg, window: exp.Window | None, ctx: Context) -> exp.Expression:
    """AVG(money) is money: SUM / COUNT in ten-thousandths, truncated toward zero.

    The targets' decimal AVG keeps more decimals (DuckDB returns a DOUBLE), so the sum is
    scaled to an integer, divided as integers and scaled back, exactly.
    """
    total: exp.Expression = exp.Sum(this=node.this.copy())
    count: exp.Expression = exp.Count(this=node.this.copy())
    if window is not None:
        total, count = (_over(window, f) for f in (total, count))
    scaled = exp.Cast(this=exp.Mul(this=total, expression=exp.Literal.number(10000)),
                      to=tsql_type("BIGINT"))  # fmt: skip
    quotient = exp.paren(int_divide(scaled, count, ctx))
    money = exp.Cast(this=exp.Mul(this=quotient, expression=exp.Literal.number("0.0001")),
                     to=tsql_type("MONEY"))  # fmt: skip
    if window is not None:
        window.replace(money)
        return node
    return money


def _over(window: exp.Window, aggregate: exp.Expression) -> exp.Window:
    copy = window.copy()
    copy.set("this", aggregate)
    return copy
