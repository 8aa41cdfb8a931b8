"""Names: dbt model and source names from SQL Server names, and identifier quoting."""

from __future__ import annotations

import re

__all__ = ["snake", "quote", "QUOTE_CHARS", "object_key", "source_name"]

#: Identifier quote character per target.
QUOTE_CHARS = {"bigquery": "`", "databricks": "`"}
_NON_WORD = re.compile(r"[^0-9a-zA-Z]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake(name: str) -> str:
    """``Order Details`` -> ``order_details``, ``CustOrderHist`` -> ``cust_order_hist``."""
    words = _NON_WORD.sub("_", _CAMEL.sub("_", name)).strip("_").lower()
    words = re.sub(r"_+", "_", words) or "object"
    return f"_{words}" if words[0].isdigit() else words


def quote(name: str, target: str) -> str:
    """``name`` quoted for ``target``, embedded quote characters doubled (or escaped)."""
    q = QUOTE_CHARS.get(target, '"')
    if q == "`":
        return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"
    return '"' + name.replace('"', '""') + '"'


def object_key(schema: str, name: str) -> str:
    """The state's identity of an object: ``schema.name`` in lower case."""
    return f"{schema}.{name}".lower()


def source_name(database: str | None, fallback: str, schema: str) -> str:
    """dbt source name for a SQL Server schema: the database, plus the schema unless dbo."""
    base = snake(database or fallback)
    return base if schema.lower() == "dbo" else f"{base}_{snake(schema)}"
