"""CONVERT(type, value [, style]) and TRY_CONVERT.

CONVERT raises on bad input in SQL Server, so it becomes CAST (sqlglot writes TRY_CAST, which
turns errors into NULLs); TRY_CONVERT becomes TRY_CAST. A date style formats a date or time
into text, or reads text in that layout; a shorter target length cuts the text, as
``CONVERT(varchar(10), GETDATE(), 120)`` gives just the date. ``CONVERT(money, x)`` is a
DECIMAL(19,4) cast through the type mapping.
"""

from __future__ import annotations

from sqlglot import exp

from datamigrate_agent.translate._context import Context
from datamigrate_agent.translate._typing import is_string, is_temporal
from datamigrate_agent.translate.errors import TranslationError
from datamigrate_agent.translate.transforms._util import bottom_up, lit, num, tsql_type

__all__ = ["STYLES", "transform"]

#: Date/time styles -> strftime layout (sqlglot converts it to each target's format).
STYLES = {
    1: "%m/%d/%y",
    101: "%m/%d/%Y",
    2: "%y.%m.%d",
    102: "%Y.%m.%d",
    3: "%d/%m/%y",
    103: "%d/%m/%Y",
    4: "%d.%m.%y",
    104: "%d.%m.%Y",
    5: "%d-%m-%y",
    105: "%d-%m-%Y",
    10: "%m-%d-%y",
    110: "%m-%d-%Y",
    11: "%y/%m/%d",
    111: "%Y/%m/%d",
    12: "%y%m%d",
    112: "%Y%m%d",
    8: "%H:%M:%S",
    108: "%H:%M:%S",
    24: "%H:%M:%S",
    20: "%Y-%m-%d %H:%M:%S",
    120: "%Y-%m-%d %H:%M:%S",
    21: "%Y-%m-%d %H:%M:%S.%f",
    121: "%Y-%m-%d %H:%M:%S.%f",
    23: "%Y-%m-%d",
    126: "%Y-%m-%dT%H:%M:%S.%f",
}
#: Output length of each layout (``%f`` is written with 3 digits by SQL Server).
_WIDTH = {"%Y": 4, "%y": 2, "%m": 2, "%d": 2, "%H": 2, "%M": 2, "%S": 2, "%f": 3}


def _width(layout: str) -> int:
    width, i = 0, 0
    while i < len(layout):
        if layout[i] == "%":
            width += _WIDTH[layout[i : i + 2]]
            i += 2
        else:
            width += 1
            i += 1
    return width


def transform(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Rewrite CONVERT / TRY_CONVERT calls."""
    for node in bottom_up(tree, exp.Convert):
        new = _convert(node, ctx)
        if node is tree:
            return new
        node.replace(new)
    return tree


def _convert(node: exp.Convert, ctx: Context) -> exp.Expression:
    to, value, style = node.this, node.expression, node.args.get("style")
    cast_class = exp.TryCast if node.args.get("safe") else exp.Cast
    if style is None or not isinstance(to, exp.DataType):
        return cast_class(this=value, to=to)
    if not style.is_int:
        raise TranslationError(f"CONVERT style {style.sql('tsql')} must be a constant")
    code = style.to_py()
    source = ctx.type_of(value)
    if is_string(to) and (is_temporal(source) or source is None) and code in STYLES:
        return _format(value, to, STYLES[code])
    if is_temporal(to) and code in STYLES:
        parsed = exp.StrToTime(this=value, format=lit(STYLES[code].replace("%f", "%f")))
        return exp.Cast(this=parsed, to=to)
    if code in {0, 100, 1, 2, 126} or not is_temporal(to):
        # Money/float styles (0, 1, 2, 126) only change how numbers are written.
        return cast_class(this=value, to=to)
    raise TranslationError(f"CONVERT style {code} is not supported")


def _format(value: exp.Expression, to: exp.DataType, layout: str) -> exp.Expression:
    stamp = exp.Cast(this=value, to=tsql_type("DATETIME2"))
    text: exp.Expression = exp.TimeToStr(this=stamp, format=lit(layout))
    text.meta["dm"] = True
    if "%f" in layout:
        # strftime's %f has 6 digits, SQL Server writes 3: cut the last three.
        text = exp.Left(this=text, expression=num(_width(layout) + 3 - 3))
    params = to.expressions
    if params and params[0].name.isdigit() and int(params[0].name) < _width(layout):
        text = exp.Left(this=text, expression=num(int(params[0].name)))
    return text
