"""Literals: N'...' is plain text; date strings in SQL Server's layouts become ISO text;
0x... constants become binary values in binary columns and integers elsewhere.

SQL Server reads '2/26/1998', '19980226' and 'Feb 26 1998 10:00AM' as datetimes (us_english,
month-day-year; two-digit years below 50 are 20xx); DuckDB reads only ISO text, so literals
compared with or stored into date/time columns are rewritten to ISO form.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlglot import exp

from datamigrate_agent.translate._context import Context
from datamigrate_agent.translate.transforms._util import lit

__all__ = ["binary_literal", "iso_datetime", "transform"]

_TIME = r"(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?\s*([AaPp][Mm])?)?"
_LAYOUTS = [
    (re.compile(rf"^(\d{{4}})-(\d{{1,2}})-(\d{{1,2}}){_TIME}$"), "ymd"),
    (re.compile(rf"^(\d{{4}})(\d{{2}})(\d{{2}}){_TIME}$"), "ymd"),
    (re.compile(rf"^(\d{{1,2}})[/.-](\d{{1,2}})[/.-](\d{{2,4}}){_TIME}$"), "mdy"),
]
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_NAMED = re.compile(rf"^([A-Za-z]{{3}})[a-z]*\s+(\d{{1,2}}),?\s+(\d{{4}}){_TIME}$")


def _year(text: str) -> int:
    year = int(text)
    if len(text) <= 2:
        year += 2000 if year < 50 else 1900  # two digit year cutoff 2049
    return year


def iso_datetime(text: str) -> str | None:
    """ISO text for a SQL Server date/time string, or None when it is not one."""
    value = text.strip()
    for pattern, order in _LAYOUTS:
        match = pattern.match(value)
        if match:
            a, b, c = match.group(1), match.group(2), match.group(3)
            y, m, d = (int(a), int(b), int(c)) if order == "ymd" else (_year(c), int(a), int(b))
            return _compose(y, m, d, match.groups()[3:])
    match = _NAMED.match(value)
    if match and match.group(1).lower() in _MONTHS:
        month = _MONTHS[match.group(1).lower()]
        return _compose(int(match.group(3)), month, int(match.group(2)), match.groups()[3:])
    return None


def _compose(y: int, m: int, d: int, time: tuple[str | None, ...]) -> str | None:
    hour, minute, second, fraction, ampm = time
    try:
        day = dt.date(y, m, d)
    except ValueError:
        return None
    if hour is None:
        return day.isoformat()
    h = int(hour) % 12 + (12 if ampm and ampm.lower() == "pm" else 0) if ampm else int(hour)
    out = f"{day.isoformat()} {h:02d}:{int(minute):02d}:{int(second or 0):02d}"
    return out + (f".{fraction}" if fraction else "")


def binary_literal(node: exp.HexString, ctx: Context) -> exp.Expression:
    """A ``0x...`` constant as a binary value on the target."""
    import sqlglot

    text = ctx.target.BINARY_LITERAL.format(hex=node.this)
    out = sqlglot.parse_one(text, dialect=ctx.dialect)
    for hex_node in out.find_all(exp.HexString):
        hex_node.meta["dm_binary"] = True
    return out


def transform(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Replace N'...' with plain literals and remaining 0x... constants with integers."""
    for node in list(tree.find_all(exp.National)):
        node.replace(lit(node.name))
    for node in list(tree.find_all(exp.HexString)):
        if len(node.this) <= 15 and not node.meta.get("dm_binary"):
            node.replace(exp.Literal.number(int(node.this or "0", 16)))
    return tree
