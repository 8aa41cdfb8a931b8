"""String functions with T-SQL's edge behaviour.

- LEN ignores trailing spaces (``LEN('ab  ')`` is 2) and converts numbers to text.
- CHARINDEX is case-insensitive under a CI collation, returns 0 when not found, and its
  optional start position counts from the start of the string.
- SUBSTRING with a start below 1 still counts the characters before position 1 (Snowflake,
  BigQuery and Databricks treat such a start as 1).
- STUFF is NULL for a start outside the string and deletes when the insertion is NULL.
- CONCAT() treats NULL as '' and converts numbers to text.
- REPLACE matches case-insensitively under a CI collation (REPLACE('ABC', 'b', 'x') is
  'AxC'): a constant search string with letters becomes a case-insensitive regex replace.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp

from datamigrate_agent.translate._context import Context
from datamigrate_agent.translate._typing import is_string
from datamigrate_agent.translate.transforms._util import (
    bottom_up,
    case_insensitive,
    lit,
    num,
    tsql_type,
)

__all__ = ["rtrim", "transform"]

#: Targets whose SUBSTRING treats a start below 1 as 1.
_SUBSTRING_CLAMPS = {"snowflake", "bigquery", "databricks"}


def rtrim(node: exp.Expression) -> exp.Expression:
    """``RTRIM(node, ' ')``: trailing spaces only, as SQL Server's padding rules."""
    return exp.Trim(this=node, expression=lit(" "), position="TRAILING")


def _text(node: exp.Expression, ctx: Context) -> exp.Expression:
    """``node`` as a string: drop sqlglot's own TEXT cast, cast numbers to VARCHAR."""
    if isinstance(node, exp.Cast) and node.to.this == exp.DType.TEXT and not node.meta.get("dm"):
        node = node.this
    if (
        is_string(ctx.type_of(node))
        or isinstance(node, exp.National)
        or (isinstance(node, exp.Literal) and node.is_string)
    ):
        return node
    return exp.Cast(this=node, to=tsql_type("VARCHAR(8000)"))


def transform(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Rewrite LEN, CHARINDEX, SUBSTRING, STUFF, LEFT/RIGHT, CONCAT and REPLACE."""
    handlers = {
        exp.Length: _len,
        exp.StrPosition: _charindex,
        exp.Substring: _substring,
        exp.Stuff: _stuff,
        exp.Concat: _concat,
        exp.Left: _left_right,
        exp.Right: _left_right,
        exp.Replace: _replace,
    }
    for node in bottom_up(tree, *handlers):
        new = handlers[type(node)](node, ctx)
        if new is not node:
            if node is tree:
                return new
            node.replace(new)
    return tree


def _len(node: exp.Length, ctx: Context) -> exp.Expression:
    return exp.Length(this=rtrim(_text(node.this, ctx)))


def _left_right(node: exp.Expression, ctx: Context) -> exp.Expression:
    node.set("this", _text(node.this, ctx))
    return node


def _charindex(node: exp.StrPosition, ctx: Context) -> exp.Expression:
    haystack, needle = _text(node.this, ctx), _text(node.args["substr"], ctx)
    if case_insensitive(ctx, node.this, node.args["substr"]):
        haystack, needle = exp.Lower(this=haystack), exp.Lower(this=needle)
    start = node.args.get("position")
    if start is None or (start.is_int and start.to_py() <= 1):
        return exp.StrPosition(this=haystack, substr=needle)
    tail = exp.Substring(this=haystack, start=start.copy())
    found = exp.StrPosition(this=tail, substr=needle)
    shifted = exp.Sub(this=exp.Add(this=found.copy(), expression=start.copy()), expression=num(1))
    return exp.Case(
        ifs=[exp.If(this=exp.EQ(this=found, expression=num(0)), true=num(0))], default=shifted
    )


def _substring(node: exp.Substring, ctx: Context) -> exp.Expression:
    start, length = node.args.get("start"), node.args.get("length")
    if ctx.dialect not in _SUBSTRING_CLAMPS or start is None or length is None:
        return node
    if start.is_int and start.to_py() >= 1:
        return node
    first = exp.Greatest(this=start.copy(), expressions=[num(1)])
    end = exp.Add(this=start.copy(), expression=length.copy())
    count = exp.Greatest(this=exp.Sub(this=end, expression=first.copy()), expressions=[num(0)])
    return exp.Substring(this=node.this, start=first, length=count)


def _stuff(node: exp.Stuff, ctx: Context) -> exp.Expression:
    text, start = _text(node.this, ctx), node.args["start"]
    length, insert = node.args["length"], node.args["expression"]
    head = exp.Substring(
        this=text.copy(), start=num(1), length=exp.Sub(this=start.copy(), expression=num(1))
    )
    tail = exp.Substring(this=text.copy(), start=exp.Add(this=start.copy(), expression=length))
    body = exp.DPipe(
        this=exp.DPipe(this=head, expression=exp.Coalesce(this=insert, expressions=[lit("")])),
        expression=tail,
    )
    outside = exp.or_(
        exp.LT(this=start.copy(), expression=num(1)),
        exp.GT(this=start.copy(), expression=exp.Length(this=text.copy())),
    )
    return exp.Case(ifs=[exp.If(this=outside, true=exp.Null())], default=body)


def _concat(node: exp.Concat, ctx: Context) -> exp.Expression:
    parts: list[exp.Expression] = []
    for arg in node.expressions:
        if isinstance(arg, (exp.Literal, exp.National)) and arg.is_string:
            parts.append(arg)
        else:
            parts.append(exp.Coalesce(this=_text(arg, ctx), expressions=[lit("")]))
    if not parts:
        return lit("")
    out = parts[0]
    for part in parts[1:]:
        out = exp.DPipe(this=out, expression=part)
    return exp.paren(out) if len(parts) > 1 else out


def _replace(node: exp.Replace, ctx: Context) -> exp.Expression:
    search, replacement = node.expression, node.args.get("replacement")
    if not case_insensitive(ctx, node.this) or not isinstance(search, (exp.Literal, exp.National)):
        return node
    if replacement is None or not re.search(r"[A-Za-z]", search.name):
        return node
    pattern = re.escape(search.name)
    if not isinstance(replacement, (exp.Literal, exp.National)) or re.search(
        r"[\\$]", replacement.name
    ):
        return node  # the replacement could hold regex syntax: keep a plain REPLACE
    replacement = lit(replacement.name)
    texts = {
        "s": _text(node.this, ctx).sql(ctx.dialect),
        "p": lit(pattern).sql(ctx.dialect),
        "pi": lit("(?i)" + pattern).sql(ctx.dialect),
        "r": replacement.sql(ctx.dialect),
    }
    return sqlglot.parse_one(ctx.target.CI_REPLACE.format(**texts), dialect=ctx.dialect)
