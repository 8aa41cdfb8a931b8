"""BIT is a 0/1 flag, not DuckDB's bit string: booleans on every target.

``flag = 1`` becomes ``flag = TRUE`` (PostgreSQL has no boolean = integer), any non-zero
value stored in a BIT is TRUE, and the ``types`` transform maps the type to BOOLEAN.
"""

from __future__ import annotations

from sqlglot import exp

from datamigrate_agent.translate._context import Context
from datamigrate_agent.translate._typing import is_int
from datamigrate_agent.translate.transforms._util import tsql_type

__all__ = ["is_bit", "to_boolean", "transform"]

_COMPARE = (exp.EQ, exp.NEQ)


def is_bit(dt: exp.DataType | None) -> bool:
    """The T-SQL BIT type."""
    return dt is not None and dt.this in {exp.DType.BIT, exp.DType.BOOLEAN}


def to_boolean(value: exp.Expression) -> exp.Expression:
    """A value stored into a BIT: literals become TRUE/FALSE, anything else is cast."""
    if isinstance(value, exp.Literal):
        if value.is_string:
            text = value.this.strip().lower()
            if text in {"true", "false"}:
                return exp.Boolean(this=text == "true")
            return exp.Boolean(this=float(text) != 0)
        return exp.Boolean(this=float(value.this) != 0)
    if isinstance(value, (exp.Null, exp.Boolean)):
        return value
    if isinstance(value, exp.Neg) and isinstance(value.this, exp.Literal):
        return exp.Boolean(this=True)
    return exp.Cast(this=value, to=tsql_type("BIT"))


def transform(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Compare BIT values with booleans; assign booleans in UPDATE ... SET."""
    for node in list(tree.find_all(*_COMPARE)):
        left, right = ctx.type_of(node.left), ctx.type_of(node.right)
        if is_bit(left) and not is_bit(right) and (right is None or is_int(right)):
            node.set("expression", to_boolean(node.right))
        elif is_bit(right) and not is_bit(left) and (left is None or is_int(left)):
            node.set("this", to_boolean(node.left))
    return tree
