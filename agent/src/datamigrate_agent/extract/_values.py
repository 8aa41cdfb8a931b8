"""INSERT values: literal expressions evaluated and converted to a column's JSON form.

The conversions follow SQL Server's implicit conversions for what sample scripts write:
numbers and ``$money`` literals, ``'...'``/``N'...'`` strings, ``0x`` binary, ``NULL``,
``DEFAULT``, ``CAST``/``CONVERT`` of a literal, and the clock/GUID functions. Date strings are
read under the script's ``SET DATEFORMAT`` (``mdy`` unless the script says otherwise) with SQL
Server's two-digit-year cutoff (49 -> 2049, 50 -> 1950).
"""

from __future__ import annotations

import decimal
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

from datamigrate_agent.extract._cursor import Cursor, StatementError
from datamigrate_agent.metadata import CHARACTER_TYPES, HEX_VALUE_TYPES, Column

__all__ = ["Raw", "convert_value", "parse_expression"]

_INT_TYPES = frozenset({"bigint", "int", "smallint", "tinyint"})
_EXACT_TYPES = frozenset({"decimal", "numeric", "money", "smallmoney", "float", "real"})
_TEXT_TYPES = CHARACTER_TYPES | {"text", "ntext", "xml", "sql_variant", "sysname"}
_DATETIME_TYPES = frozenset({"datetime", "smalldatetime", "datetime2", "datetimeoffset"})
_CLOCK_FUNCTIONS = frozenset(
    {"GETDATE", "SYSDATETIME", "GETUTCDATE", "SYSUTCDATETIME", "SYSDATETIMEOFFSET"}
)
_CLOCK_WORDS = frozenset({"CURRENT_TIMESTAMP"})
_GUID_FUNCTIONS = frozenset({"NEWID", "NEWSEQUENTIALID"})
_CAST_FUNCTIONS = frozenset({"CAST", "TRY_CAST"})
_CONVERT_FUNCTIONS = frozenset({"CONVERT", "TRY_CONVERT"})


@dataclass(slots=True, frozen=True)
class Raw:
    """An evaluated literal before conversion: kind is null, num, str, hex, default, now, guid."""

    kind: str
    text: str = ""


NULL = Raw("null")


def parse_expression(cur: Cursor) -> Raw:
    """Evaluate one literal expression at the cursor (consumes exactly it).

    Besides single literals, string concatenation with ``+`` is evaluated (data scripts write
    line breaks as ``N'a' + CHAR(13) + CHAR(10) + N'b'``); NULL in it yields NULL.
    """
    value = _primary(cur)
    while (tok := cur.peek()) is not None and tok.is_op("+") and value.kind in ("str", "null"):
        cur.next()
        right = _primary(cur)
        if right.kind not in ("str", "null"):
            raise cur.error("+ between a string and a non-string")
        value = NULL if NULL in (value, right) else Raw("str", value.text + right.text)
    return value


def _primary(cur: Cursor) -> Raw:
    tok = cur.peek()
    if tok is None:
        raise cur.error("expected a value")
    if tok.is_op("-") or tok.is_op("+"):
        cur.next()
        inner = _primary(cur)
        if inner.kind != "num":
            raise cur.error("unary sign before a non-number")
        negative = tok.value == "-" and not inner.text.startswith("-")
        return Raw("num", ("-" + inner.text) if negative else inner.text.lstrip("-"))
    if tok.is_op("("):
        start, end = cur.group()
        inner_cur = cur.sub(start, end)
        value = parse_expression(inner_cur)
        if not inner_cur.at_end():
            raise inner_cur.error("unsupported expression in a value")
        return value
    cur.next()
    if tok.kind == "num":
        return Raw("num", tok.value)
    if tok.kind == "money":
        return Raw("num", tok.value[1:].replace(" ", "").replace("\t", ""))
    if tok.kind == "str":
        return Raw("str", tok.value)
    if tok.kind == "hex":
        return Raw("hex", tok.value[2:])
    if tok.kind == "word":
        return _word_expression(cur, tok.upper)
    cur.i -= 1
    raise cur.error("unsupported value")


def _word_expression(cur: Cursor, word: str) -> Raw:
    if word == "NULL":
        return NULL
    if word == "DEFAULT":
        return Raw("default")
    if word in _CLOCK_WORDS:
        return Raw("now")
    nxt = cur.peek()
    if nxt is None or not nxt.is_op("("):
        cur.i -= 1
        raise cur.error("unsupported value")
    start, end = cur.group()
    if word in _CLOCK_FUNCTIONS or word in _GUID_FUNCTIONS:
        if start != end:
            raise cur.error(f"{word}() takes no arguments")
        return Raw("now" if word in _CLOCK_FUNCTIONS else "guid")
    inner = cur.sub(start, end)
    if word in _CAST_FUNCTIONS:
        value = parse_expression(inner)
        inner.expect_word("AS")
        inner.skip_rest()
        return value
    if word in ("CHAR", "NCHAR"):
        code = parse_expression(inner)
        if code.kind != "num" or not inner.at_end():
            raise inner.error(f"{word}() of a non-number")
        return Raw("str", chr(int(decimal.Decimal(code.text))))
    if word in _CONVERT_FUNCTIONS:
        items = cur.split_commas(start, end)
        if len(items) < 2:
            raise inner.error("CONVERT needs a type and a value")
        value_cur = cur.sub(*items[1])
        value = parse_expression(value_cur)
        if not value_cur.at_end():
            raise value_cur.error("unsupported expression in CONVERT")
        return value
    raise StatementError(f"unsupported function {word}() in a value", cur.tokens[start - 2].start)


@dataclass(slots=True)
class ValueContext:
    """Script settings that change how values read."""

    dateformat: str = "mdy"
    #: What the clock functions return: the extraction time, as SQL Server would at load time.
    now: datetime = datetime(1900, 1, 1)
    #: Namespace for deterministic NEWID() values.
    table_key: str = ""


def convert_value(raw: Raw, col: Column, ctx: ValueContext, row_index: int) -> Any:
    """The JSON form of ``raw`` stored in ``col`` (see the metadata module's conventions)."""
    if raw.kind == "null":
        return None
    if raw.kind == "guid":
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"datamigrate:{ctx.table_key}:{row_index}"))
    dtype = col.data_type
    try:
        if raw.kind == "now":
            return _clock(dtype, ctx.now)
        if dtype in _INT_TYPES:
            return _to_int(raw)
        if dtype == "bit":
            return _to_bit(raw)
        if dtype in _EXACT_TYPES:
            return _to_decimal(raw)
        if dtype in _TEXT_TYPES:
            return _to_text(raw)
        if dtype in HEX_VALUE_TYPES:
            return _to_hex(raw)
        if dtype == "uniqueidentifier":
            return str(uuid.UUID(_text_only(raw).strip()))
        if raw.kind == "hex" and dtype in ("datetime", "smalldatetime"):
            return _binary_datetime(raw.text, dtype)
        if dtype in _DATETIME_TYPES or dtype in ("date", "time"):
            return parse_datetime(_text_only(raw), dtype, ctx.dateformat)
    except (ValueError, decimal.InvalidOperation) as e:
        raise StatementError(f"value {raw.text[:40]!r} does not fit column {col.name}: {e}") from e
    return _to_text(raw)


def _clock(dtype: str, now: datetime) -> Any:
    if dtype == "date":
        return now.date().isoformat()
    if dtype == "time":
        return now.time().isoformat()
    if dtype in _DATETIME_TYPES:
        return now.isoformat()
    return now.isoformat(sep=" ")


def _binary_datetime(hexdigits: str, dtype: str) -> str:
    """SQL Server's stored form, which SSMS 2008 scripts as ``CAST(0x... AS DateTime)``.

    datetime: 4 bytes of days since 1900-01-01 and 4 of 1/300 s ticks since midnight;
    smalldatetime: 2 bytes of days and 2 of minutes. Both big-endian, days signed.
    """
    data = bytes.fromhex(_even(hexdigits))
    half = 4 if dtype == "datetime" else 2
    if len(data) != 2 * half:
        raise ValueError(f"{len(data)} bytes are not a {dtype}")
    days = int.from_bytes(data[:half], "big", signed=dtype == "datetime")
    units = int.from_bytes(data[half:], "big")
    offset = (
        timedelta(milliseconds=round(units * 10 / 3)) if half == 4 else timedelta(minutes=units)
    )
    return (datetime(1900, 1, 1) + timedelta(days=days) + offset).isoformat()


def _text_only(raw: Raw) -> str:
    if raw.kind not in ("str", "num"):
        raise ValueError(f"a {raw.kind} value is not text")
    return raw.text


def _to_int(raw: Raw) -> int:
    text = _text_only(raw).strip()
    number = decimal.Decimal(text)
    if raw.kind == "str" and number != number.to_integral_value():
        raise ValueError("not an integer")
    return int(number)  # a decimal literal into an int column truncates, as in SQL Server


def _to_bit(raw: Raw) -> bool:
    text = _text_only(raw).strip().upper()
    if text in ("TRUE", "FALSE"):
        return text == "TRUE"
    return decimal.Decimal(text) != 0


def _to_decimal(raw: Raw) -> decimal.Decimal:
    text = _text_only(raw).strip()
    if raw.kind == "str":
        text = text.lstrip("$").replace(",", "")
    return decimal.Decimal(text)


def _to_text(raw: Raw) -> str:
    if raw.kind == "hex":
        return bytes.fromhex(_even(raw.text)).decode("latin-1")
    return _text_only(raw)


def _to_hex(raw: Raw) -> str:
    if raw.kind == "hex":
        return _even(raw.text).lower()
    if raw.kind == "str":
        return raw.text.encode("utf-8").hex()
    number = int(decimal.Decimal(raw.text))
    return number.to_bytes(max(1, (number.bit_length() + 7) // 8), "big", signed=False).hex()


def _even(hexdigits: str) -> str:
    """SQL Server pads an odd-length hex literal on the left (0x1 is 0x01)."""
    return ("0" + hexdigits) if len(hexdigits) % 2 else hexdigits


# === dates and times ===

_MONTHS = {
    name: n
    for n, names in enumerate(
        [
            ("JAN", "JANUARY"), ("FEB", "FEBRUARY"), ("MAR", "MARCH"), ("APR", "APRIL"),
            ("MAY",), ("JUN", "JUNE"), ("JUL", "JULY"), ("AUG", "AUGUST"),
            ("SEP", "SEPT", "SEPTEMBER"), ("OCT", "OCTOBER"), ("NOV", "NOVEMBER"),
            ("DEC", "DECEMBER"),
        ],
        1,
    )
    for name in names
}  # fmt: skip

_TIME = re.compile(
    r"(?:^|(?<=[\sT]))(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:[.:](\d{1,7}))?)?\s*([AP]M)?"
    r"\s*(Z|[+-]\d{1,2}:\d{2})?\s*$",
    re.IGNORECASE,
)
_HOUR_AMPM = re.compile(r"(?:^|(?<=\s))(\d{1,2})\s*([AP]M)\s*$", re.IGNORECASE)
_NUMERIC_DATE = re.compile(r"^(\d{1,4})([-/.])(\d{1,2})\2(\d{1,4})$")
_UNSEPARATED = re.compile(r"^(\d{4})(\d{2})(\d{2})$|^(\d{2})(\d{2})(\d{2})$")


def _year(text: str) -> int:
    year = int(text)
    if len(text) <= 2:
        year += 2000 if year <= 49 else 1900
    return year


def _split_time(text: str) -> tuple[str, time, timezone | None]:
    m = _TIME.search(text)
    if m is None:
        m2 = _HOUR_AMPM.search(text)
        if m2 is None:
            return text.strip(), time(0), None
        hour = _ampm(int(m2[1]), m2[2])
        return text[: m2.start()].strip().rstrip("T"), time(hour), None
    hour = _ampm(int(m[1]), m[5]) if m[5] else int(m[1])
    fraction = (m[4] or "0")[:6].ljust(6, "0")
    tz = None
    if m[6]:
        tz = UTC if m[6].upper() == "Z" else _offset(m[6])
    parsed = time(hour, int(m[2]), int(m[3] or 0), int(fraction))
    return text[: m.start()].strip().rstrip("T").strip(), parsed, tz


def _ampm(hour: int, marker: str) -> int:
    if hour > 12:
        raise ValueError("hour over 12 with AM/PM")
    return (hour % 12) + (12 if marker.upper() == "PM" else 0)


def _offset(text: str) -> timezone:
    sign = -1 if text[0] == "-" else 1
    hours, minutes = text[1:].split(":")
    return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))


def _numeric_date(m: re.Match[str], dateformat: str) -> date:
    a, b, c = m[1], m[3], m[4]
    if len(a) == 4:  # a four-digit year first is always y-m-d
        return date(int(a), int(b), int(c))
    order = dict(zip(dateformat, (a, b, c), strict=True))
    return date(_year(order["y"]), int(order["m"]), int(order["d"]))


def _alpha_date(text: str) -> date:
    words = re.findall(r"[A-Za-z]+|\d+", text)
    month = next((_MONTHS[w.upper()] for w in words if w.upper() in _MONTHS), None)
    numbers = [w for w in words if w.isdigit()]
    if month is None or len(numbers) != 2:
        raise ValueError(f"unrecognised date {text!r}")
    year_first = len(numbers[0]) == 4
    year, day = (numbers[0], numbers[1]) if year_first else (numbers[1], numbers[0])
    return date(_year(year), month, int(day))


def _parse_date(text: str, dateformat: str) -> date:
    if not text:
        return date(1900, 1, 1)
    if m := _UNSEPARATED.match(text):
        if m[1]:
            return date(int(m[1]), int(m[2]), int(m[3]))
        return date(_year(m[4]), int(m[5]), int(m[6]))
    if m := _NUMERIC_DATE.match(text):
        return _numeric_date(m, dateformat)
    return _alpha_date(text)


def parse_datetime(text: str, dtype: str, dateformat: str = "mdy") -> str:
    """A SQL Server date/time string as ISO 8601 for a column of type ``dtype``."""
    date_part, clock, tz = _split_time(text.strip())
    day = _parse_date(date_part, dateformat)
    if dtype == "date":
        return day.isoformat()
    if dtype == "time":
        return clock.isoformat()
    stamp = datetime.combine(day, clock)
    if dtype == "datetimeoffset":
        return stamp.replace(tzinfo=tz or UTC).isoformat()
    return stamp.isoformat()
