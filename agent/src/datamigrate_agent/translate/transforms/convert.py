"""CONVERT(type, value [, style]) and TRY_CONVERT.

CONVERT raises on bad input in SQL Server, so it becomes CAST (sqlglot writes TRY_CAST, which
turns errors into NULLs); TRY_CONVERT becomes TRY_CAST. A date style formats a date or time
into text, or reads text in that layout; a shorter target length cuts the text, as
``CONVERT(varchar(10), GETDATE(), 120)`` gives just the date. ``CONVERT(money, x)`` is a
DECIMAL(19,4) cast through the type mapping. A datetime converted to text without a style
(CAST too) uses style 0, ``mon dd yyyy hh:miAM`` with space-padded day and hour
('Jul  4 2024  1:05PM'), built from DATEPART pieces so every target writes the same text.
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
    """Rewrite CONVERT / TRY_CONVERT calls and datetime-to-text casts."""
    for node in bottom_up(tree, exp.Convert, exp.Cast):
        new = _convert(node, ctx) if isinstance(node, exp.Convert) else _cast(node, ctx)
        if node is tree:
            return new
        node.replace(new)
    return tree


def _convert(node: exp.Convert, ctx: Context) -> exp.Expression:
    to, value, style = node.this, node.expression, node.args.get("style")
    cast_class = exp.TryCast if node.args.get("safe") else exp.Cast
    if not isinstance(to, exp.DataType):
        return cast_class(this=value, to=to)
    if (style is None or (style.is_int and style.to_py() in {0, 100})) and _style0_applies(
        value, to, ctx
    ):
        return _style0(value, to)
    if style is None:
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


_OLD_DATETIMES = {exp.DType.DATETIME, exp.DType.SMALLDATETIME}
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def _style0_applies(value: exp.Expression, to: exp.DataType, ctx: Context) -> bool:
    source = ctx.type_of(value)
    return is_string(to) and source is not None and source.this in _OLD_DATETIMES


def _cast(node: exp.Cast, ctx: Context) -> exp.Expression:
    if node.meta.get("dm") or not _style0_applies(node.this, node.to, ctx):
        return node
    return _style0(node.this, node.to)


def _part(name: str, value: exp.Expression) -> exp.Expression:
    """DATEPART(name, value); the datetime transform writes it for the target."""
    return exp.Extract(this=exp.var(name), expression=value.copy())


def _text(node: exp.Expression) -> exp.Expression:
    cast = exp.Cast(this=node, to=tsql_type("VARCHAR(30)"))
    cast.meta["dm"] = True
    return cast


def _pad(node: exp.Expression, fill: str) -> exp.Expression:
    return exp.Pad(this=_text(node), expression=num(2), fill_pattern=lit(fill), is_left=True)


def _style0(value: exp.Expression, to: exp.DataType) -> exp.Expression:
    """Style 0/100: 'mon dd yyyy hh:miAM', day and hour padded with a space."""
    month = exp.Case(
        ifs=[
            exp.If(this=exp.EQ(this=_part("month", value), expression=num(i + 1)), true=lit(m))
            for i, m in enumerate(_MONTHS)
        ]
    )
    hour = _part("hour", value)
    twelve = exp.Add(
        this=exp.paren(
            exp.Mod(
                this=exp.paren(exp.Add(this=hour.copy(), expression=num(11))), expression=num(12)
            )
        ),
        expression=num(1),
    )
    noon = exp.Case(
        ifs=[exp.If(this=exp.LT(this=hour.copy(), expression=num(12)), true=lit("AM"))],
        default=lit("PM"),
    )
    pieces = [
        month,
        lit(" "),
        _pad(_part("day", value), " "),
        lit(" "),
        _text(_part("year", value)),
        lit(" "),
        _pad(twelve, " "),
        lit(":"),
        _pad(_part("minute", value), "0"),
        noon,
    ]
    out = pieces[0]
    for piece in pieces[1:]:
        out = exp.DPipe(this=out, expression=piece)
    params = to.expressions
    if params and params[0].name.isdigit() and int(params[0].name) < 19:
        return exp.Left(this=exp.paren(out), expression=num(int(params[0].name)))
    return exp.paren(out)


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
