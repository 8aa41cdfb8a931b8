"""``+`` means string concatenation, addition, or date arithmetic, by operand types.

With CONCAT_NULL_YIELDS_NULL ON (the default) a NULL operand makes ``a + b`` NULL, so string
``+`` becomes ``||`` (NULL-propagating on every target), never CONCAT() (which skips NULLs).
A string plus a number converts the string to the number's type, as T-SQL's type precedence
does (``'10' + 5`` is 15); ``datetime + n`` adds n days. When neither operand's type is known
``+`` stays addition.
"""

from __future__ import annotations

from sqlglot import exp

from datamigrate_agent.translate._context import Context
from datamigrate_agent.translate._typing import is_numeric, is_string, is_temporal
from datamigrate_agent.translate.transforms._util import bottom_up

__all__ = ["transform"]


def transform(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Rewrite every ``+`` and date ``-`` by the types of its operands."""
    for node in bottom_up(tree, exp.Add, exp.Sub):
        new = _rewrite(node, ctx)
        if new is not node:
            if node is tree:
                return new
            node.replace(new)
    return tree


def _rewrite(node: exp.Binary, ctx: Context) -> exp.Expression:
    left, right = ctx.type_of(node.left), ctx.type_of(node.right)
    if is_temporal(left) and is_numeric(right):
        days = node.right if isinstance(node, exp.Add) else exp.Neg(this=exp.paren(node.right))
        return exp.DateAdd(this=node.left, expression=days, unit=exp.var("DAY"))
    if isinstance(node, exp.Sub):
        return node
    if is_temporal(right) and is_numeric(left):
        return exp.DateAdd(this=node.right, expression=node.left, unit=exp.var("DAY"))
    if is_string(left) and (is_string(right) or right is None):
        return exp.DPipe(this=node.left, expression=node.right)
    if is_string(right) and left is None:
        return exp.DPipe(this=node.left, expression=node.right)
    if is_string(left) and is_numeric(right):
        node.set("this", exp.Cast(this=node.left, to=right.copy()))
    elif is_string(right) and is_numeric(left):
        node.set("expression", exp.Cast(this=node.right, to=left.copy()))
    return node
