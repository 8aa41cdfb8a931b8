"""DATEDIFF, DATEPART, DATENAME and the current-time functions, with T-SQL's rules.

DATEDIFF counts the boundaries crossed between two instants (DATEDIFF(year, '2023-12-31
23:59:59', '2024-01-01') is 1), never whole elapsed units, and its week boundaries are always
Sundays whatever DATEFIRST says. Every part is built from portable pieces (EXTRACT and a day
difference of DATE values), so each target counts the same way:

- year, quarter, month: differences of ``year*12 + month`` style ordinals;
- day (and dayofyear, weekday): DATE difference; week: ``(days + dow(start) - dow(end)) / 7``;
- hour, minute, second, millisecond, microsecond: the coarser difference times the factor
  plus the difference of the finer fields.

DATEPART(weekday) and DATEPART(week) follow ``Options.datefirst`` (and ``SET DATEFIRST``);
DATENAME(month/weekday) gives English names (us_english). GETDATE() and SYSDATETIME() are
local time without time zone; GETUTCDATE() is UTC.
"""

from __future__ import annotations

from contextvars import ContextVar

import sqlglot
from sqlglot import exp

from datamigrate_agent.translate._context import Context
from datamigrate_agent.translate.errors import TranslationError
from datamigrate_agent.translate.targets import Target
from datamigrate_agent.translate.transforms._util import bottom_up, lit, num, tsql_type
from datamigrate_agent.translate.transforms.literals import iso_datetime

__all__ = ["transform"]

#: T-SQL datepart spellings (and sqlglot's normalised names) -> canonical part.
_PARTS = {
    **dict.fromkeys(["YEAR", "YY", "YYYY"], "year"),
    **dict.fromkeys(["QUARTER", "QQ", "Q"], "quarter"),
    **dict.fromkeys(["MONTH", "MM", "M"], "month"),
    **dict.fromkeys(["DAYOFYEAR", "DY", "Y", "DOY"], "dayofyear"),
    **dict.fromkeys(["DAY", "DD", "D"], "day"),
    **dict.fromkeys(["WEEK", "WK", "WW"], "week"),
    **dict.fromkeys(["WEEKDAY", "DW", "W", "DAYOFWEEK", "DOW"], "weekday"),
    **dict.fromkeys(["HOUR", "HH"], "hour"),
    **dict.fromkeys(["MINUTE", "MI", "N"], "minute"),
    **dict.fromkeys(["SECOND", "SS", "S"], "second"),
    **dict.fromkeys(["MILLISECOND", "MS"], "millisecond"),
    **dict.fromkeys(["MICROSECOND", "MCS", "US"], "microsecond"),
    **dict.fromkeys(["NANOSECOND", "NS"], "nanosecond"),
    **dict.fromkeys(["ISO_WEEK", "ISOWK", "ISOWW", "WEEKISO"], "iso_week"),
}
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
#: The target of the transform call in progress (EXTRACT spellings and result type).
_TARGET: ContextVar[Target] = ContextVar("target")
#: Fields with a fractional part on some targets (floored by the callers).
_FRACTIONAL = {"second", "millisecond", "microsecond"}
#: A Sunday: day numbers counted from it give the day of the week on every target.
_SUNDAY = "1899-12-31"


def _part(unit: exp.Expression | None) -> str:
    name = (unit.name if unit is not None else "DAY").upper()
    if name not in _PARTS:
        raise TranslationError(f"unknown datepart {name.lower()}")
    return _PARTS[name]


def _instant(node: exp.Expression) -> exp.Expression:
    """A DATEDIFF/DATEPART argument as a timestamp (string literals are datetimes in T-SQL)."""
    if isinstance(node, exp.TimeStrToTime):
        node = node.this
    if isinstance(node, exp.TsOrDsToDate):
        node = node.this
    if isinstance(node, exp.Literal) and not node.is_string:
        # A number as a datetime counts days from 1900-01-01 (DATEADD(dd, n, 0) idioms).
        base = exp.Cast(this=lit("1900-01-01 00:00:00"), to=tsql_type("DATETIME2"))
        if node.to_py() == 0:
            return base
        return exp.DateAdd(this=base, expression=node.copy(), unit=exp.var("DAY"))
    if isinstance(node, (exp.Literal, exp.National)):
        text = iso_datetime(node.name) or node.name.replace("T", " ")
        return exp.Cast(this=lit(text), to=tsql_type("DATETIME2"))
    return node


def _cast(node: exp.Expression, to: str) -> exp.Expression:
    """CAST unless ``node`` is already a cast to ``to`` (or, for DATE, a date literal cast)."""
    if isinstance(node, exp.Cast) and node.to.this == tsql_type(to).this:
        return node.copy()
    if isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal) and to == "DATE":
        return exp.Cast(this=node.this.copy(), to=tsql_type("DATE"))
    return exp.Cast(this=node.copy(), to=tsql_type(to))


def _as_date(node: exp.Expression) -> exp.Expression:
    return _cast(node, "DATE")


def _extract(part: str, node: exp.Expression) -> exp.Expression:
    target = _TARGET.get()
    field = target.EXTRACT_FIELDS.get(part.upper(), part.upper())
    extract = exp.Extract(this=exp.var(field), expression=_cast(node, "DATETIME2"))
    extract.meta["dm"] = True
    if target.EXTRACT_IS_NUMERIC and part not in _FRACTIONAL:
        return exp.Cast(this=extract, to=tsql_type("INT"))
    return extract


def _days(start: exp.Expression, end: exp.Expression, ctx: Context) -> exp.Expression:
    """Whole days between the DATE parts of two instants (day boundaries crossed)."""
    if ctx.dialect in {"postgres"}:
        return exp.paren(exp.Sub(this=_as_date(end), expression=_as_date(start)))
    return exp.DateDiff(this=_as_date(end), expression=_as_date(start), unit=exp.var("DAY"))


def _dow(node: exp.Expression, ctx: Context) -> exp.Expression:
    """Day of week, Sunday = 0 (any Sunday-first numbering works in a difference)."""
    days = _days(exp.Cast(this=lit(_SUNDAY), to=tsql_type("DATE")), node, ctx)
    return exp.Mod(
        this=exp.paren(
            exp.Add(this=exp.paren(exp.Mod(this=days, expression=num(7))), expression=num(7))
        ),
        expression=num(7),
    )


def _diff_field(part: str, start: exp.Expression, end: exp.Expression) -> exp.Expression:
    wrap = _floor if part in _FRACTIONAL else (lambda node: node)
    return exp.Sub(this=wrap(_extract(part, end)), expression=wrap(_extract(part, start)))


def _floor(node: exp.Expression) -> exp.Expression:
    return exp.Floor(this=node)


def _scaled(coarse: exp.Expression, factor: int, fine: exp.Expression) -> exp.Expression:
    return exp.Add(this=exp.Mul(this=exp.paren(coarse), expression=num(factor)), expression=fine)


def datediff(part: str, start: exp.Expression, end: exp.Expression, ctx: Context) -> exp.Expression:
    """T-SQL DATEDIFF(part, start, end) as boundary counting on the target."""
    from datamigrate_agent.translate.transforms.arithmetic import int_divide

    if part == "year":
        return _diff_field("year", start, end)
    if part in {"quarter", "month"}:
        years = _diff_field("year", start, end)
        factor = 4 if part == "quarter" else 12
        return _scaled(years, factor, _diff_field(part, start, end))
    if part in {"day", "dayofyear", "weekday"}:
        return _days(start, end, ctx)
    if part in {"week", "iso_week"}:
        shift = 6 if part == "iso_week" else 0
        spread = exp.Sub(
            this=exp.Add(this=_days(start, end, ctx), expression=_shifted_dow(start, shift, ctx)),
            expression=_shifted_dow(end, shift, ctx),
        )
        return exp.paren(int_divide(exp.paren(spread), num(7), ctx))
    ladder = {
        "hour": ("day", 24, "hour"),
        "minute": ("hour", 60, "minute"),
        "second": ("minute", 60, "second"),
    }
    if part in ladder:
        coarse, factor, fine = ladder[part]
        return _scaled(datediff(coarse, start, end, ctx), factor, _diff_field(fine, start, end))
    if part in {"millisecond", "microsecond"}:
        factor = 60_000 if part == "millisecond" else 60_000_000
        return _scaled(datediff("minute", start, end, ctx), factor, _diff_field(part, start, end))
    raise TranslationError(f"DATEDIFF({part}) has no portable translation")


def _shifted_dow(node: exp.Expression, shift: int, ctx: Context) -> exp.Expression:
    dow = _dow(node, ctx)
    if not shift:
        return dow
    return exp.Mod(this=exp.paren(exp.Add(this=dow, expression=num(shift))), expression=num(7))


def _weekday(node: exp.Expression, ctx: Context) -> exp.Expression:
    """DATEPART(weekday): 1 on the DATEFIRST day (7 = Sunday)."""
    offset = ctx.options.datefirst % 7
    dow = _dow(node, ctx)
    shifted = exp.Mod(
        this=exp.paren(exp.Add(this=dow, expression=num(7 - offset))), expression=num(7)
    )
    return exp.Add(this=exp.paren(shifted), expression=num(1))


def _week(node: exp.Expression, ctx: Context) -> exp.Expression:
    """DATEPART(week): week 1 holds January 1st; weeks start on the DATEFIRST day."""
    from datamigrate_agent.translate.transforms.arithmetic import int_divide

    jan1 = exp.DateTrunc(this=_as_date(node), unit=exp.var("YEAR"))
    jan1_weekday = exp.Sub(this=_weekday(jan1, ctx), expression=num(1))
    day_of_year = _extract("dayofyear", node)
    span = exp.Add(this=exp.Sub(this=day_of_year, expression=num(1)), expression=jan1_weekday)
    return exp.Add(this=exp.paren(int_divide(exp.paren(span), num(7), ctx)), expression=num(1))


def datepart(part: str, node: exp.Expression, ctx: Context) -> exp.Expression:
    """T-SQL DATEPART(part, node) on the target."""
    if part == "weekday":
        return _weekday(node, ctx)
    if part == "week":
        return _week(node, ctx)
    if part == "iso_week":
        return exp.Extract(this=exp.var("WEEK"), expression=_as_date(node))
    if part == "millisecond":
        return exp.Mod(this=_floor(_extract("millisecond", node)), expression=num(1000))
    if part == "microsecond":
        return exp.Mod(this=_floor(_extract("microsecond", node)), expression=num(1_000_000))
    if part == "second":
        return _floor(_extract("second", node))
    if part == "nanosecond":
        micro = exp.Mod(this=_floor(_extract("microsecond", node)), expression=num(1_000_000))
        return exp.Mul(this=micro, expression=num(1000))
    return _extract(part, node)


def _names(value: exp.Expression, names: list[str], first: int) -> exp.Expression:
    ifs = [
        exp.If(this=exp.EQ(this=value.copy(), expression=num(i + first)), true=lit(n))
        for i, n in enumerate(names)
    ]
    return exp.Case(ifs=ifs)


def datename(part: str, node: exp.Expression, ctx: Context) -> exp.Expression:
    """T-SQL DATENAME(part, node): English month and day names, numbers as text otherwise."""
    if part == "month":
        return _names(_extract("month", node), _MONTHS, 1)
    if part == "weekday":
        return _names(_dow(node, ctx), _DAYS, 0)
    return exp.Cast(this=datepart(part, node, ctx), to=tsql_type("VARCHAR(30)"))


def transform(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Rewrite DATEDIFF, DATEPART, DATENAME, YEAR/MONTH/DAY and GETDATE family calls."""
    token = _TARGET.set(ctx.target)
    try:
        return _transform(tree, ctx)
    finally:
        _TARGET.reset(token)


def _transform(tree: exp.Expression, ctx: Context) -> exp.Expression:
    for node in bottom_up(
        tree,
        exp.DateAdd,
        exp.DateDiff,
        exp.Extract,
        exp.TimeToStr,
        exp.CurrentTimestamp,
        exp.Anonymous,
        exp.Year,
        exp.Month,
        exp.Day,
    ):
        new = _rewrite(node, ctx)
        if new is not node:
            if node is tree:
                return new
            node.replace(new)
    return tree


def _rewrite(node: exp.Expression, ctx: Context) -> exp.Expression:
    if isinstance(node, exp.DateAdd) and isinstance(node.this, (exp.Literal, exp.National)):
        # DATEADD keeps the type of its date argument; a literal is a datetime, not a date.
        node.set("this", _instant(node.this))
        return node
    if isinstance(node, exp.DateDiff):
        start, end = _instant(node.expression), _instant(node.this)
        return exp.paren(datediff(_part(node.args.get("unit")), start, end, ctx))
    if isinstance(node, exp.Extract) and not node.meta.get("dm"):
        return _extract_of(node, ctx)
    if isinstance(node, (exp.Year, exp.Month, exp.Day)):
        part = type(node).__name__.lower()
        return _extract(part, _instant(node.this))
    if isinstance(node, exp.TimeToStr) and node.args.get("format") is not None:
        return _datename(node, ctx)
    if isinstance(node, exp.CurrentTimestamp):
        return _local_now(ctx)
    if isinstance(node, exp.Anonymous) and node.name.upper() == "GETUTCDATE":
        utc = exp.AtTimeZone(this=exp.CurrentTimestamp(), zone=lit("UTC"))
        return exp.Cast(this=utc, to=tsql_type("DATETIME2"))
    return node


def _local_now(ctx: Context) -> exp.Expression:
    text = ctx.target.LOCAL_NOW
    if text.endswith("()") and text[:-2].isidentifier():
        # An anonymous call: sqlglot would turn current_localtimestamp() into LOCALTIMESTAMP.
        return exp.Anonymous(this=text[:-2])
    return sqlglot.parse_one(text, dialect=ctx.dialect)


def _extract_of(node: exp.Extract, ctx: Context) -> exp.Expression:
    part = _part(node.this)
    out = datepart(part, _instant(node.expression), ctx)
    for extract in out.find_all(exp.Extract):
        extract.meta["dm"] = True
    if isinstance(out, exp.Extract):
        out.meta["dm"] = True
    return out


def _datename(node: exp.TimeToStr, ctx: Context) -> exp.Expression:
    fmt = node.args["format"].name
    value = node.this.this if isinstance(node.this, exp.Cast) else node.this
    parts = {"%B": "month", "%A": "weekday", "%Y": "year", "%d": "day"}
    if fmt not in parts or node.meta.get("dm"):
        return node
    out = datename(parts[fmt], _instant(value), ctx)
    for extract in out.find_all(exp.Extract):
        extract.meta["dm"] = True
    return out
